"""Access grants in the library: the state machine's rows and guard (spec §6.18,
§6.19) and the read proof (spec §11.9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from test_state_machine_support import (
    Outcome,
    access_grant_body,
    access_revocation_body,
    must,
    reach,
)

from vrm_protocol.canonical import canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import SigningKey
from vrm_protocol.read_proof import (
    READ_TYP,
    ReadProof,
    proof_from_authorization,
    sign_read_proof,
    verify_read_proof,
)
from vrm_protocol.signing_profile import sign_compact
from vrm_protocol.state_machine import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

S = RelationshipState
M = MessageType
B = Role.BUYER
V = Role.VENDOR

ENGAGED = (S.NEGOTIATION, S.TRANSACTION, S.WELCOME, S.SERVICING, S.DEVELOPMENT, S.PROBLEM)


# -- the state machine ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", ENGAGED)
def test_a_grant_and_its_revocation_are_side_exchanges_of_every_engaged_state(
    state: RelationshipState,
) -> None:
    j = reach(state)
    body = access_grant_body(j.counterparty, j.now)
    must(j.step(B, M.ACCESS_GRANT, body), state)
    must(j.step(B, M.ACCESS_REVOCATION, access_revocation_body(body["id"])), state)


@pytest.mark.parametrize("state", [S.SEARCH, S.ENQUIRY, S.CLOSED, S.EXITING, S.EXITED])
def test_no_grant_outside_an_engaged_relationship(state: RelationshipState) -> None:
    j = reach(state)
    outcome = j.step(B, M.ACCESS_GRANT, access_grant_body(j.counterparty, j.now))
    assert outcome.state is None
    assert outcome.code in {ErrorCode.ILLEGAL_TRANSITION, ErrorCode.RELATIONSHIP_EXITED}


def test_only_the_individual_grants() -> None:
    j = reach(S.SERVICING)
    outcome = j.step(V, M.ACCESS_GRANT, access_grant_body(j.counterparty, j.now))
    assert outcome == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


def test_a_grant_to_a_party_it_is_not_sent_to_is_refused() -> None:
    # VRM-GRANT-001: the grantee is the addressee.
    j = reach(S.SERVICING)
    body = access_grant_body("https://another-dealer.example", j.now)
    assert j.step(B, M.ACCESS_GRANT, body) == Outcome(None, ErrorCode.SCHEMA_INVALID)


def test_a_grant_whose_until_is_no_instant_is_refused() -> None:
    j = reach(S.SERVICING)
    body = access_grant_body(j.counterparty, j.now) | {"until": "2027-02-31T10:00:00Z"}
    assert j.step(B, M.ACCESS_GRANT, body) == Outcome(None, ErrorCode.SCHEMA_INVALID)


# -- the read proof ------------------------------------------------------------------------------

NOW = datetime(2027, 4, 1, 9, 0, tzinfo=UTC)
GRANT = "urn:uuid:0e6f3a52-8d1c-4b7e-a9f0-3c2d1e4b5a69"
URL = "https://agent.sally.example/vrm/read/Jd8x2PqLw0s7RkT4nVb9Cg"


@pytest.fixture(params=["EdDSA", "ES256"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return SigningKey.generate(request.param)


def _verify(token: str, key: SigningKey, **changes: object) -> ReadProof:
    arguments: dict[str, object] = {
        "resolve_key": {key.kid: key.public()}.__getitem__,
        "key_thumbprint": key.thumbprint(),
        "grant": GRANT,
        "method": "GET",
        "url": URL,
        "now": NOW,
    }
    arguments.update(changes)
    return verify_read_proof(token.encode(), **arguments)  # type: ignore[arg-type]


def _code(token: str, key: SigningKey, **changes: object) -> ErrorCode:
    with pytest.raises(RemoteProtocolError) as raised:
        _verify(token, key, **changes)
    return raised.value.code


def test_a_proof_verifies_and_says_what_it_binds(key: SigningKey) -> None:
    token = sign_read_proof(key, grant=GRANT, method="get", url=URL, now=NOW, jti="j" * 22)
    iat = int(NOW.timestamp())
    assert _verify(token, key) == ReadProof(GRANT, "GET", URL, iat, "j" * 22, key.thumbprint())


def test_a_proof_binds_the_key_the_grant_names(key: SigningKey) -> None:
    token = sign_read_proof(key, grant=GRANT, method="GET", url=URL, now=NOW)
    other = SigningKey.generate()
    assert _code(token, key, key_thumbprint=other.thumbprint()) is ErrorCode.UNKNOWN_KEY


def test_a_proof_binds_the_grant_the_method_the_url_and_the_time(key: SigningKey) -> None:
    token = sign_read_proof(key, grant=GRANT, method="GET", url=URL, now=NOW)
    unauthenticated = ErrorCode.AUTHENTICATION_REQUIRED
    assert _code(token, key, grant="urn:uuid:" + "0" * 36) is unauthenticated
    assert _code(token, key, method="POST") is unauthenticated
    assert _code(token, key, url=URL + "x") is unauthenticated
    assert _code(token, key, now=NOW + timedelta(minutes=3)) is unauthenticated
    assert _code(token, key, now=NOW - timedelta(minutes=3)) is unauthenticated
    _verify(token, key, now=NOW + timedelta(seconds=100))


def test_a_message_token_is_no_proof(key: SigningKey) -> None:
    token = sign_compact(canonical_json({"grant": GRANT}), key).decode()
    assert _code(token, key) is ErrorCode.INVALID_TYP


@pytest.mark.parametrize(
    "payload",
    [
        {"grant": GRANT, "htm": "GET", "htu": URL, "iat": 1},
        {"grant": GRANT, "htm": "GET", "htu": URL, "iat": "1", "jti": "j" * 22},
        {"grant": GRANT, "htm": "GET", "htu": URL, "iat": 1, "jti": "short"},
        {"grant": GRANT, "htm": "GET", "htu": URL, "iat": True, "jti": "j" * 22},
        {"grant": GRANT, "htm": "GET", "htu": URL, "iat": 1, "jti": "j" * 22, "x": 1},
    ],
)
def test_a_payload_not_of_the_proofs_shape_is_schema_invalid(
    key: SigningKey, payload: dict[str, object]
) -> None:
    token = sign_compact(canonical_json(payload), key, typ=READ_TYP).decode()
    assert _code(token, key) is ErrorCode.SCHEMA_INVALID


def test_the_authorization_header() -> None:
    assert proof_from_authorization("VRM-Proof a.b.c") == b"a.b.c"
    assert proof_from_authorization("vrm-proof   a.b.c ") == b"a.b.c"
    for value in (None, "", "Bearer a.b.c", "VRM-Proof", "VRM-Proof a b", "VRM-Poll a.b.c"):
        with pytest.raises(RemoteProtocolError) as raised:
            proof_from_authorization(value)
        assert raised.value.code is ErrorCode.AUTHENTICATION_REQUIRED
