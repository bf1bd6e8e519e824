"""Third-party attestations (spec §10): issue, verify, and every way one can be wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.forge import JoseSigner, compact
from conformance.peers.issuer import TestIssuer
from vrm_protocol.attestations import issue_attestation, verify_attestation
from vrm_protocol.canonical import b64url_decode, canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey
from vrm_protocol.signing_profile import sign_compact
from vrm_protocol.vocabulary import ATTESTATION_TYP, MESSAGE_TYP

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
ISSUER = "http://127.0.0.1:8400"
VENDOR = "http://127.0.0.1:8001"
CLAIMS = {"range": {"currency": "USD", "max": "30000.00", "min": "0.00"}}


@pytest.fixture
def issuer_key() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture
def buyer() -> PairwiseIdentity:
    return PairwiseIdentity.generate()


def _issue(issuer_key: SigningKey, subject: str, **changes: Any) -> dict[str, str]:
    arguments: dict[str, Any] = {
        "kind": "ability-to-pay",
        "subject": subject,
        "audience": [VENDOR],
        "claims": CLAIMS,
        "issuer_key": issuer_key,
        "issuer_id": ISSUER,
        "now": NOW,
    }
    arguments.update(changes)
    return issue_attestation(**arguments)


def _verify(
    attestation: dict[str, Any], issuer_key: SigningKey, subject: str, **changes: Any
) -> Any:
    arguments: dict[str, Any] = {
        "trusted_issuers": {ISSUER: KeySet([issuer_key.public()])},
        "subject": subject,
        "audience": VENDOR,
        "now": NOW + timedelta(hours=1),
    }
    arguments.update(changes)
    return verify_attestation(attestation, **arguments)


def _code(
    attestation: dict[str, Any], issuer_key: SigningKey, subject: str, **changes: Any
) -> ErrorCode:
    with pytest.raises(RemoteProtocolError) as caught:
        _verify(attestation, issuer_key, subject, **changes)
    return caught.value.code


def test_issue_and_verify(issuer_key: SigningKey, buyer: PairwiseIdentity) -> None:
    attestation = _issue(issuer_key, buyer.identifier)
    assert set(attestation) == {"kind", "issuer", "token"}
    verified = _verify(attestation, issuer_key, buyer.identifier, kind="ability-to-pay")
    assert verified.issuer == ISSUER
    assert verified.subject == buyer.identifier
    assert verified.kind == "ability-to-pay"
    assert verified.claims == CLAIMS
    assert verified.issued == NOW
    assert verified.expires == NOW + timedelta(days=30)
    assert verified.audience == (VENDOR,)
    assert verified.jti.startswith("urn:uuid:")
    assert verified.key_id == issuer_key.kid


def test_token_payload_has_exactly_the_specified_members(
    issuer_key: SigningKey, buyer: PairwiseIdentity
) -> None:
    token = _issue(issuer_key, buyer.identifier)["token"].encode()
    header, payload, _ = token.split(b".")
    assert b64url_decode(header) == canonical_json(
        {"alg": "ES256", "kid": issuer_key.kid, "typ": ATTESTATION_TYP}
    )
    document = json.loads(b64url_decode(payload))
    assert set(document) == {"iss", "sub", "aud", "jti", "iat", "exp", "kind", "claims"}
    assert (document["iat"], document["exp"]) == ("2026-11-23T10:00:00Z", "2026-12-23T10:00:00Z")


def test_the_suites_issuer_is_compatible(buyer: PairwiseIdentity) -> None:
    suite_issuer = TestIssuer.ephemeral(ISSUER)
    attestation = suite_issuer.attest(
        kind="ability-to-pay", subject=buyer.identifier, audience=[VENDOR], now=NOW, claims=CLAIMS
    )
    verified = verify_attestation(
        attestation,
        trusted_issuers={ISSUER: KeySet.from_jwks(suite_issuer.jwks())},
        subject=buyer.identifier,
        audience=VENDOR,
        now=NOW,
    )
    assert verified.claims == CLAIMS


def test_untrusted_issuer(issuer_key: SigningKey, buyer: PairwiseIdentity) -> None:
    attestation = _issue(issuer_key, buyer.identifier)
    assert _code(attestation, issuer_key, buyer.identifier, trusted_issuers={}) is (
        ErrorCode.UNTRUSTED_ISSUER
    )
    # A URL issuer listed without keys is not trusted either (only did:jwk resolve themselves).
    assert _code(attestation, issuer_key, buyer.identifier, trusted_issuers={ISSUER: None}) is (
        ErrorCode.UNTRUSTED_ISSUER
    )


def test_stated_issuer_must_be_the_signed_issuer(
    issuer_key: SigningKey, buyer: PairwiseIdentity
) -> None:
    # An attestation by an untrusted issuer relabelled as the trusted one.
    rogue = SigningKey.generate("ES256")
    attestation = {**_issue(rogue, buyer.identifier, issuer_id="http://rogue"), "issuer": ISSUER}
    assert _code(attestation, issuer_key, buyer.identifier) is ErrorCode.ATTESTATION_INVALID
    # ... even when the rogue key's kid is the trusted key's kid.
    impostor = rogue.with_kid(issuer_key.kid)
    attestation = _issue(impostor, buyer.identifier)
    assert _code(attestation, issuer_key, buyer.identifier) is ErrorCode.ATTESTATION_INVALID


@pytest.mark.parametrize(
    ("changes", "verify_changes"),
    [
        ({"subject": "did:jwk:someone-else"}, {}),  # lifted from another relationship
        ({"audience": ["http://127.0.0.1:9999"]}, {}),  # addressed to another vendor
        ({}, {"kind": "approval"}),  # wrong kind for the purpose
        ({}, {"now": NOW + timedelta(days=31)}),  # expired
        ({}, {"now": NOW - timedelta(hours=1)}),  # issued in the future
        ({"lifetime": timedelta(seconds=1)}, {"now": NOW + timedelta(minutes=10)}),
    ],
)
def test_invalid_attestations(
    issuer_key: SigningKey,
    buyer: PairwiseIdentity,
    changes: dict[str, Any],
    verify_changes: dict[str, Any],
) -> None:
    attestation = _issue(issuer_key, changes.pop("subject", buyer.identifier), **changes)
    assert _code(attestation, issuer_key, buyer.identifier, **verify_changes) is (
        ErrorCode.ATTESTATION_INVALID
    )


def test_wrapper_kind_must_match_the_token(issuer_key: SigningKey, buyer: PairwiseIdentity) -> None:
    attestation = {**_issue(issuer_key, buyer.identifier), "kind": "approval"}
    assert _code(attestation, issuer_key, buyer.identifier) is ErrorCode.ATTESTATION_INVALID


def test_a_message_token_is_not_an_attestation(
    issuer_key: SigningKey, buyer: PairwiseIdentity
) -> None:
    payload = canonical_json(
        {
            "iss": ISSUER,
            "sub": buyer.identifier,
            "aud": [VENDOR],
            "jti": "urn:uuid:x",
            "iat": "2026-11-23T10:00:00Z",
            "exp": "2026-12-23T10:00:00Z",
            "kind": "ability-to-pay",
            "claims": {},
        }
    )
    token = sign_compact(payload, issuer_key, typ=MESSAGE_TYP).decode()
    attestation = {"kind": "ability-to-pay", "issuer": ISSUER, "token": token}
    assert _code(attestation, issuer_key, buyer.identifier) is ErrorCode.ATTESTATION_INVALID


@pytest.mark.parametrize(
    "attestation",
    [
        {"kind": "ability-to-pay", "issuer": ISSUER},
        {"kind": "ability-to-pay", "issuer": ISSUER, "token": 5},
        {"kind": "ability-to-pay", "issuer": ISSUER, "token": "not.a.token"},
        {"kind": "ability-to-pay", "issuer": ISSUER, "token": "é.é.é"},
    ],
)
def test_malformed_attestations(
    issuer_key: SigningKey, buyer: PairwiseIdentity, attestation: dict[str, Any]
) -> None:
    assert _code(attestation, issuer_key, buyer.identifier) is ErrorCode.ATTESTATION_INVALID


def test_malformed_claims(issuer_key: SigningKey, buyer: PairwiseIdentity) -> None:
    def signed(**payload_changes: Any) -> dict[str, str]:
        payload = {
            "iss": ISSUER,
            "sub": buyer.identifier,
            "aud": [VENDOR],
            "jti": "urn:uuid:x",
            "iat": "2026-11-23T10:00:00Z",
            "exp": "2026-12-23T10:00:00Z",
            "kind": "ability-to-pay",
            "claims": {},
            **payload_changes,
        }
        token = sign_compact(canonical_json(payload), issuer_key, typ=ATTESTATION_TYP)
        return {"kind": "ability-to-pay", "issuer": ISSUER, "token": token.decode()}

    for changes in (
        {"aud": VENDOR},  # a string, not a list
        {"exp": "2026-12-23T10:00:00.000Z"},
        {"iat": 1700000000},
        {"claims": ["x"]},
        {"jti": ""},
        {"exp": "2026-11-23T09:00:00Z"},  # expires before issued
    ):
        assert _code(signed(**changes), issuer_key, buyer.identifier) is (
            ErrorCode.ATTESTATION_INVALID
        ), changes


def test_co_decision_maker_approval_by_did_jwk(buyer: PairwiseIdentity) -> None:
    partner = PairwiseIdentity.generate()
    approval = issue_attestation(
        kind="approval",
        subject=buyer.identifier,
        audience=[VENDOR],
        claims={"approves": {"id": "urn:uuid:offer", "digest": "sha-256:abc"}},
        issuer_key=partner.signing_key,
        issuer_id=partner.identifier,
        now=NOW,
        lifetime=timedelta(days=1),
    )
    verified = verify_attestation(
        approval,
        trusted_issuers={partner.identifier: None},
        subject=buyer.identifier,
        audience=VENDOR,
        now=NOW,
        kind="approval",
    )
    assert verified.issuer == partner.identifier
    assert verified.key_id == partner.kid


def test_did_jwk_issuer_cannot_be_impersonated_by_another_did(buyer: PairwiseIdentity) -> None:
    partner, mallory = PairwiseIdentity.generate(), PairwiseIdentity.generate()
    # Mallory signs with her own did:jwk key but names the partner as issuer.
    payload = canonical_json(
        {
            "iss": partner.identifier,
            "sub": buyer.identifier,
            "aud": [VENDOR],
            "jti": "urn:uuid:x",
            "iat": "2026-11-23T10:00:00Z",
            "exp": "2026-11-24T10:00:00Z",
            "kind": "approval",
            "claims": {},
        }
    )
    header = {"alg": "EdDSA", "kid": mallory.kid, "typ": ATTESTATION_TYP}
    token = compact(header, payload, JoseSigner("EdDSA", mallory.kid, mallory.to_private_jwk()))
    attestation = {"kind": "approval", "issuer": partner.identifier, "token": token.decode()}
    with pytest.raises(RemoteProtocolError) as caught:
        verify_attestation(
            attestation,
            trusted_issuers={partner.identifier: None},
            subject=buyer.identifier,
            audience=VENDOR,
            now=NOW,
        )
    assert caught.value.code is ErrorCode.ATTESTATION_INVALID


def test_issue_refuses_bad_arguments(issuer_key: SigningKey, buyer: PairwiseIdentity) -> None:
    with pytest.raises(ValueError, match="audience"):
        _issue(issuer_key, buyer.identifier, audience=VENDOR)
    with pytest.raises(ValueError, match="audience"):
        _issue(issuer_key, buyer.identifier, audience=[])
    with pytest.raises(ValueError, match="lifetime"):
        _issue(issuer_key, buyer.identifier, lifetime=timedelta(0))
