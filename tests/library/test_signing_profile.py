"""The JWS signing profile (spec §8): known answers, round trips and the attacks of RFC 8725.

Attack tokens come from the conformance suite's forger (``conformance.forge``),
an implementation independent of the library's signer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.forge import JoseSigner, compact, hmac_with_public_key, tamper_signature
from vrm_protocol.canonical import b64url_decode, b64url_encode, canonical_json
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, VerifyingKey, key_resolver
from vrm_protocol.limits import Limits
from vrm_protocol.signing_profile import (
    ALLOWED_ALGORITHMS,
    sign_compact,
    verify_compact,
    verify_signature,
)
from vrm_protocol.vocabulary import ATTESTATION_TYP, MESSAGE_TYP

# RFC 8037 Appendix A.1 key and A.4 example JWS ("Example of Ed25519 signing").
RFC8037_PRIVATE = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_JWS = (
    b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    b"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)

PAYLOAD = canonical_json({"body": {"note": "Sally wants a family car"}, "type": "personal-rfi"})


def _code(token: bytes, resolve: Any, **options: Any) -> ErrorCode:
    with pytest.raises(RemoteProtocolError) as caught:
        verify_compact(token, resolve_key=resolve, **options)
    return caught.value.code


@pytest.fixture(params=["EdDSA", "ES256"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return SigningKey.generate(request.param)


@pytest.fixture
def resolve(key: SigningKey) -> Any:
    return key_resolver(KeySet([key.public()]))


@pytest.fixture
def forger(key: SigningKey) -> JoseSigner:
    return JoseSigner(key.alg, key.kid, key.to_private_jwk())


def _header(key: SigningKey, **members: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": MESSAGE_TYP}
    for name, value in members.items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    return header


# -- known answers --------------------------------------------------------------------------------


def test_rfc8037_a4_signature_verifies() -> None:
    key = SigningKey.from_private_jwk(RFC8037_PRIVATE)
    signing_input, _, signature = RFC8037_JWS.rpartition(b".")
    verify_signature(signing_input, b64url_decode(signature), key.public())
    # Ed25519 is deterministic: signing the same input gives the published signature.
    assert b64url_encode(key.sign(signing_input)).encode() == signature
    assert b64url_decode(RFC8037_JWS.split(b".")[1]) == b"Example of Ed25519 signing"


def test_rfc8037_a4_token_fails_the_profile_for_its_header() -> None:
    # {"alg":"EdDSA"} has no typ and no kid: the profile refuses it before any key lookup.
    resolve = key_resolver(KeySet([SigningKey.from_private_jwk(RFC8037_PRIVATE).public()]))
    assert _code(RFC8037_JWS, resolve) is ErrorCode.INVALID_TYP


def test_rfc8037_a4_signature_fails_with_a_flipped_bit() -> None:
    key = SigningKey.from_private_jwk(RFC8037_PRIVATE).public()
    signing_input, _, signature = RFC8037_JWS.rpartition(b".")
    raw = bytearray(b64url_decode(signature))
    raw[0] ^= 1
    with pytest.raises(RemoteProtocolError) as caught:
        verify_signature(signing_input, bytes(raw), key)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE


# -- round trips ----------------------------------------------------------------------------------


def test_sign_and_verify(key: SigningKey, resolve: Any) -> None:
    token = sign_compact(PAYLOAD, key)
    verified = verify_compact(token, resolve_key=resolve)
    assert verified.payload == PAYLOAD
    assert dict(verified.header) == {"alg": key.alg, "kid": key.kid, "typ": MESSAGE_TYP}
    assert verified.key == key.public()
    assert verified.signing_input == token.rpartition(b".")[0]
    assert verified.document == json.loads(PAYLOAD)
    # The header is canonical JSON, so a token is a function of key and payload.
    assert b64url_decode(token.split(b".")[0]) == canonical_json(dict(verified.header))


def test_signatures_are_raw_64_bytes(key: SigningKey) -> None:
    signature = b64url_decode(sign_compact(PAYLOAD, key).split(b".")[2])
    assert len(signature) == 64


def test_suite_signed_tokens_verify(key: SigningKey, resolve: Any, forger: JoseSigner) -> None:
    # Interoperability with an independent signer (PyJWT's algorithm objects).
    token = compact(_header(key), PAYLOAD, forger)
    assert verify_compact(token, resolve_key=resolve).payload == PAYLOAD


def test_attestation_typ_is_a_different_context(key: SigningKey, resolve: Any) -> None:
    token = sign_compact(PAYLOAD, key, typ=ATTESTATION_TYP)
    assert verify_compact(token, resolve_key=resolve, typ=ATTESTATION_TYP).payload == PAYLOAD
    assert _code(token, resolve) is ErrorCode.INVALID_TYP


def test_did_jwk_signer_verifies_without_a_key_set() -> None:
    identity = PairwiseIdentity.generate()
    token = sign_compact(PAYLOAD, identity.signing_key)
    assert verify_compact(token, resolve_key=key_resolver(None)).key.kid == identity.kid


@settings(max_examples=50, deadline=None)
@given(
    alg=st.sampled_from(sorted(ALLOWED_ALGORITHMS)),
    value=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=6),
)
def test_round_trip_property(alg: str, value: dict[str, str]) -> None:
    key = SigningKey.generate(alg)
    payload = canonical_json(value)
    verified = verify_compact(sign_compact(payload, key), resolve_key=KeySet([key.public()]).get)
    assert verified.payload == payload
    assert verified.document == value


_BIT_FLIP_KEYS = {alg: SigningKey.generate(alg) for alg in ("EdDSA", "ES256")}
_BIT_FLIP_TOKENS = {alg: sign_compact(PAYLOAD, key) for alg, key in _BIT_FLIP_KEYS.items()}


@settings(max_examples=400, deadline=None)
@given(alg=st.sampled_from(["EdDSA", "ES256"]), data=st.data())
def test_any_single_bit_flip_is_rejected(alg: str, data: st.DataObject) -> None:
    token = bytearray(_BIT_FLIP_TOKENS[alg])
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    token[position] ^= 1 << bit
    resolve = KeySet([_BIT_FLIP_KEYS[alg].public()]).get
    with pytest.raises(RemoteProtocolError):
        verify_compact(bytes(token), resolve_key=resolve)


# -- the attacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_every_case(key: SigningKey, resolve: Any, spelling: str) -> None:
    token = compact(_header(key, alg=spelling), PAYLOAD, None)
    assert _code(token, resolve) is ErrorCode.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize("alg", ["eddsa", "EDDSA", "es256", "ES384", "EdDSA ", "RS256", ""])
def test_algorithms_compare_exactly(
    key: SigningKey, resolve: Any, forger: JoseSigner, alg: str
) -> None:
    token = compact(_header(key, alg=alg), PAYLOAD, forger)
    assert _code(token, resolve) is ErrorCode.UNSUPPORTED_ALGORITHM


def test_alg_missing_or_not_a_string(key: SigningKey, resolve: Any, forger: JoseSigner) -> None:
    assert _code(compact(_header(key, alg=None), PAYLOAD, forger), resolve) is (
        ErrorCode.UNSUPPORTED_ALGORITHM
    )
    assert _code(compact(_header(key, alg=["EdDSA"]), PAYLOAD, forger), resolve) is (
        ErrorCode.UNSUPPORTED_ALGORITHM
    )


def test_hmac_keyed_with_the_public_key(key: SigningKey, resolve: Any) -> None:
    token = hmac_with_public_key(_header(key, alg="HS256"), PAYLOAD, key.public().to_jwk())
    assert _code(token, resolve) is ErrorCode.UNSUPPORTED_ALGORITHM


def test_caller_allow_list_narrows(resolve: Any, key: SigningKey) -> None:
    token = sign_compact(PAYLOAD, key)
    other = ({"EdDSA", "ES256"} - {key.alg}).pop()
    assert _code(token, resolve, algorithms={other}) is ErrorCode.UNSUPPORTED_ALGORITHM


def test_caller_allow_list_cannot_widen(resolve: Any, key: SigningKey) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        verify_compact(sign_compact(PAYLOAD, key), resolve_key=resolve, algorithms={"HS256"})
    assert caught.value.code is ErrorCode.UNSUPPORTED_ALGORITHM


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "http://127.0.0.1:9/jwks.json"),
        ("x5u", "http://127.0.0.1:9/cert.pem"),
        ("x5c", ["bm90IGEgY2VydA"]),
        ("x5t", "AAAA"),
        ("x5t#S256", "AAAA"),
        ("b64", True),
        ("zip", "DEF"),
        ("cty", "json"),
        ("org.example.unknown", 1),
    ],
)
def test_forbidden_header_members(
    key: SigningKey, resolve: Any, forger: JoseSigner, member: str, value: Any
) -> None:
    token = compact({**_header(key), member: value}, PAYLOAD, forger)
    assert _code(token, resolve) is ErrorCode.INVALID_HEADER


def test_embedded_jwk_is_never_trusted(resolve: Any, key: SigningKey) -> None:
    attacker = SigningKey.generate(key.alg)
    forged = JoseSigner(attacker.alg, attacker.kid, attacker.to_private_jwk())
    header = {**_header(key, kid=attacker.kid), "jwk": attacker.public().to_jwk()}
    assert _code(compact(header, PAYLOAD, forged), resolve) is ErrorCode.INVALID_HEADER
    # Without the jwk member the attacker's kid is simply unknown.
    assert _code(compact(_header(key, kid=attacker.kid), PAYLOAD, forged), resolve) is (
        ErrorCode.UNKNOWN_KEY
    )


def test_crit_is_refused(key: SigningKey, resolve: Any, forger: JoseSigner) -> None:
    header = {**_header(key), "crit": ["org.example.x"], "org.example.x": True}
    assert _code(compact(header, PAYLOAD, forger), resolve) is ErrorCode.UNSUPPORTED_CRITICAL


def test_b64_false(key: SigningKey, resolve: Any, forger: JoseSigner) -> None:
    header = {**_header(key), "b64": False, "crit": ["b64"]}
    token = compact(header, PAYLOAD.replace(b".", b"_"), forger, encode_payload=False)
    # The raw payload is not base64url, but the header is judged first (the suite's SEC-HDR-B64).
    assert _code(token, resolve) is ErrorCode.UNSUPPORTED_CRITICAL
    # Encoded payload, b64:false without crit: the member alone is refused.
    token = compact({**_header(key), "b64": False}, PAYLOAD, forger)
    assert _code(token, resolve) is ErrorCode.INVALID_HEADER


@pytest.mark.parametrize("typ", ["JWT", "vrm+JWS", "application/vrm+jws", "", None, 1])
def test_wrong_or_missing_typ(key: SigningKey, resolve: Any, forger: JoseSigner, typ: Any) -> None:
    header = _header(key, typ=typ) if typ is not None else _header(key, typ=None)
    assert _code(compact(header, PAYLOAD, forger), resolve) is ErrorCode.INVALID_TYP


@pytest.mark.parametrize("kid", [None, "", 5])
def test_missing_kid(key: SigningKey, resolve: Any, forger: JoseSigner, kid: Any) -> None:
    header = _header(key, kid=None)
    if kid is not None:
        header["kid"] = kid
    assert _code(compact(header, PAYLOAD, forger), resolve) is ErrorCode.INVALID_HEADER


def test_duplicate_header_member(key: SigningKey, resolve: Any, forger: JoseSigner) -> None:
    raw = (
        f'{{"alg":"{key.alg}","alg":"none","kid":{json.dumps(key.kid)},"typ":"{MESSAGE_TYP}"}}'
    ).encode()
    assert _code(compact(raw, PAYLOAD, forger), resolve) is ErrorCode.DUPLICATE_MEMBER


def test_header_is_not_an_object(key: SigningKey, resolve: Any, forger: JoseSigner) -> None:
    for raw in (b"[]", b'"EdDSA"', b"{", b"\xff"):
        assert _code(compact(raw, PAYLOAD, forger), resolve) is ErrorCode.MALFORMED_JWS


def test_non_canonical_header_order_is_accepted(
    key: SigningKey, resolve: Any, forger: JoseSigner
) -> None:
    # Only the payload must be canonical; other signers may order header members freely.
    raw = f'{{"typ":"{MESSAGE_TYP}", "kid":{json.dumps(key.kid)}, "alg":"{key.alg}"}}'.encode()
    assert verify_compact(compact(raw, PAYLOAD, forger), resolve_key=resolve).payload == PAYLOAD


def test_unknown_kid(key: SigningKey, resolve: Any) -> None:
    stranger = SigningKey.generate(key.alg)
    assert _code(sign_compact(PAYLOAD, stranger), resolve) is ErrorCode.UNKNOWN_KEY


def test_resolver_raising_key_error_is_unknown_key(key: SigningKey) -> None:
    empty: dict[str, VerifyingKey] = {}
    assert _code(sign_compact(PAYLOAD, key), empty.__getitem__) is ErrorCode.UNKNOWN_KEY


def test_header_alg_must_match_the_keys_algorithm() -> None:
    # An Ed25519 key published under kid "k"; a token claiming ES256 under "k"
    # signed by a P-256 key: the key decides, not the header (RFC 8725 §2.1).
    ed = SigningKey.generate("EdDSA").with_kid("k")
    p256 = SigningKey.generate("ES256").with_kid("k")
    resolve = KeySet([ed.public()]).get
    forged = compact(
        {"alg": "ES256", "kid": "k", "typ": MESSAGE_TYP},
        PAYLOAD,
        JoseSigner("ES256", "k", p256.to_private_jwk()),
    )
    assert _code(forged, resolve) is ErrorCode.UNKNOWN_KEY


def test_bad_signature(key: SigningKey, resolve: Any) -> None:
    assert _code(tamper_signature(sign_compact(PAYLOAD, key)), resolve) is ErrorCode.BAD_SIGNATURE


def test_empty_signature(key: SigningKey, resolve: Any) -> None:
    token = sign_compact(PAYLOAD, key).rpartition(b".")[0] + b"."
    assert _code(token, resolve) is ErrorCode.BAD_SIGNATURE


def test_signature_by_another_key_under_the_right_kid(key: SigningKey, resolve: Any) -> None:
    impostor = SigningKey.generate(key.alg).with_kid(key.kid)
    assert _code(sign_compact(PAYLOAD, impostor), resolve) is ErrorCode.BAD_SIGNATURE


def test_es256_der_signature_is_refused() -> None:
    key = SigningKey.generate("ES256")
    token = sign_compact(PAYLOAD, key)
    signing_input = token.rpartition(b".")[0]
    private = ec.derive_private_key(
        int.from_bytes(b64url_decode(key.to_private_jwk()["d"]), "big"), ec.SECP256R1()
    )
    der = private.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    forged = signing_input + b"." + b64url_encode(der).encode()
    assert _code(forged, KeySet([key.public()]).get) is ErrorCode.BAD_SIGNATURE


# -- framing --------------------------------------------------------------------------------------


def test_framing(key: SigningKey, resolve: Any) -> None:
    token = sign_compact(PAYLOAD, key)
    header, payload, signature = token.split(b".")
    malformed = [
        header + b"." + payload,  # two segments
        token + b".",  # four segments
        token + b"." + signature,
        b"." + payload + b"." + signature,  # empty header
        header + b".." + signature,  # detached payload
        header + b"=." + payload + b"." + signature,  # padding
        header + b"." + payload + b"." + signature + b"==",
        header + b"." + payload + b" ." + signature,  # whitespace
        token + b"\n",
        header.replace(b"J", b"+", 1) + b"." + payload + b"." + signature,  # standard alphabet
    ]
    for candidate in malformed:
        assert _code(candidate, resolve) is ErrorCode.MALFORMED_JWS, candidate


def test_token_must_be_bytes(key: SigningKey, resolve: Any) -> None:
    with pytest.raises(TypeError):
        verify_compact(sign_compact(PAYLOAD, key).decode(), resolve_key=resolve)  # type: ignore[arg-type]


# -- limits and payload ---------------------------------------------------------------------------


def test_size_limit_comes_first(key: SigningKey, resolve: Any) -> None:
    token = sign_compact(PAYLOAD, key)
    assert _code(token, resolve, limits=Limits(max_message_bytes=len(token) - 1)) is (
        ErrorCode.PAYLOAD_TOO_LARGE
    )
    assert _code(b"x" * 70_000, resolve) is ErrorCode.PAYLOAD_TOO_LARGE


def test_nesting_limit_before_the_header(key: SigningKey, resolve: Any, forger: JoseSigner) -> None:
    deep = b'{"a":' + b"[" * 40 + b"]" * 40 + b"}"
    # alg none would be refused at the header stage; the nesting stage comes first.
    assert _code(compact(_header(key, alg="none"), deep, None), resolve) is (
        ErrorCode.NESTING_TOO_DEEP
    )


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"type":"offer","type":"receipt"}', ErrorCode.DUPLICATE_MEMBER),
        (b'{\n  "type": "offer"\n}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"b":1,"a":1}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b"[1]", ErrorCode.MALFORMED_JSON),
        (b"not json", ErrorCode.MALFORMED_JSON),
    ],
)
def test_payload_must_be_canonical_after_the_signature(
    key: SigningKey, resolve: Any, forger: JoseSigner, payload: bytes, code: ErrorCode
) -> None:
    token = compact(_header(key), payload, forger)
    assert _code(token, resolve) is code
    # The check can be left to the caller; the signature is still verified.
    verified = verify_compact(token, resolve_key=resolve, require_canonical=False)
    assert verified.payload == payload
    assert verified.document is None


def test_sign_refuses_non_canonical_payloads(key: SigningKey) -> None:
    for payload, code in (
        (b'{"b":1,"a":1}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":1,"a":1}', ErrorCode.DUPLICATE_MEMBER),
        (b"[]", ErrorCode.MALFORMED_JSON),
    ):
        with pytest.raises(LocalProtocolError) as caught:
            sign_compact(payload, key)
        assert caught.value.code is code


def test_sign_refuses_empty_typ_and_kid(key: SigningKey) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        sign_compact(PAYLOAD, key, typ="")
    assert caught.value.code is ErrorCode.INVALID_TYP
    with pytest.raises(LocalProtocolError) as caught:
        sign_compact(PAYLOAD, key.with_kid(""))
    assert caught.value.code is ErrorCode.INVALID_HEADER
