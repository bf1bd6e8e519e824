"""Keys, JWK/JWKS, RFC 7638 thumbprints, key sets and did:jwk pseudonyms (spec §3, §8.4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.peers.identity import new_key, new_pairwise
from conformance.peers.identity import thumbprint as suite_thumbprint
from vrm_protocol.canonical import b64url_encode, canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import (
    InvalidKeyError,
    KeySet,
    PairwiseIdentity,
    SigningKey,
    VerifyingKey,
    did_jwk_identifier,
    key_resolver,
    resolve_did_jwk,
    thumbprint,
)

# RFC 8037 Appendix A.1 (private) and A.2 (public) Ed25519 key.
RFC8037_PRIVATE = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_PUBLIC = {k: v for k, v in RFC8037_PRIVATE.items() if k != "d"}
# RFC 8037 Appendix A.3.
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
# RFC 7515 Appendix A.3 P-256 key.
RFC7515_EC_PRIVATE = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
}
RFC7515_EC_PUBLIC = {k: v for k, v in RFC7515_EC_PRIVATE.items() if k != "d"}


def _unknown_key(kid: str, resolver: Any) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        resolver(kid)
    assert caught.value.code is ErrorCode.UNKNOWN_KEY


# -- thumbprints ----------------------------------------------------------------------------------


def test_rfc8037_thumbprint() -> None:
    assert thumbprint(RFC8037_PUBLIC) == RFC8037_THUMBPRINT
    key = VerifyingKey.from_jwk(RFC8037_PUBLIC)
    assert key.thumbprint() == RFC8037_THUMBPRINT
    assert key.kid == RFC8037_THUMBPRINT  # no kid given: the thumbprint
    # Optional members do not change the thumbprint (RFC 7638 §3.2).
    assert thumbprint({**RFC8037_PUBLIC, "kid": "x", "use": "sig", "alg": "EdDSA"}) == (
        RFC8037_THUMBPRINT
    )


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_thumbprint_agrees_with_the_suites_independent_implementation(alg: str) -> None:
    signer = new_key(alg)
    assert VerifyingKey.from_jwk(signer.public_jwk).thumbprint() == signer.kid
    key = SigningKey.generate(alg)
    assert suite_thumbprint(key.public().to_jwk()) == key.thumbprint() == key.kid


def test_thumbprint_refuses_unknown_key_types() -> None:
    with pytest.raises(InvalidKeyError):
        thumbprint({"kty": "RSA", "n": "AQAB", "e": "AQAB"})


# -- JWK import -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "jwk",
    [
        {**RFC8037_PUBLIC, "crv": "X25519"},
        {**RFC8037_PUBLIC, "crv": "Ed448"},
        {**RFC7515_EC_PUBLIC, "crv": "P-384"},
        {**RFC7515_EC_PUBLIC, "crv": "secp256k1"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {**RFC8037_PUBLIC, "d": RFC8037_PRIVATE["d"]},  # private member in a public JWK
        {**RFC7515_EC_PUBLIC, "d": RFC7515_EC_PRIVATE["d"]},
        {**RFC8037_PUBLIC, "alg": "ES256"},  # alg of another key type
        {**RFC8037_PUBLIC, "alg": "none"},
        {**RFC8037_PUBLIC, "use": "enc"},
        {**RFC8037_PUBLIC, "x5u": "https://attacker.example/cert"},
        {**RFC8037_PUBLIC, "x": RFC8037_PUBLIC["x"] + "A"},  # not 32 bytes
        {**RFC8037_PUBLIC, "x": RFC8037_PUBLIC["x"][:-1] + "="},  # padding
        {**RFC7515_EC_PUBLIC, "y": RFC7515_EC_PUBLIC["x"]},  # not on the curve
        {"kty": "OKP", "crv": "Ed25519"},  # no x
        {**RFC8037_PUBLIC, "kid": 7},
    ],
)
def test_from_jwk_refuses(jwk: dict[str, Any]) -> None:
    with pytest.raises(InvalidKeyError):
        VerifyingKey.from_jwk(jwk)


def test_from_jwk_accepts_both_key_types_and_keeps_the_kid() -> None:
    ed = VerifyingKey.from_jwk({**RFC8037_PUBLIC, "kid": "k1", "use": "sig", "alg": "EdDSA"})
    assert (ed.alg, ed.kid) == ("EdDSA", "k1")
    ec = VerifyingKey.from_jwk(RFC7515_EC_PUBLIC)
    assert ec.alg == "ES256"
    assert ec.public_members() == {
        "crv": "P-256",
        "kty": "EC",
        "x": RFC7515_EC_PUBLIC["x"],
        "y": RFC7515_EC_PUBLIC["y"],
    }
    assert ec.to_jwk()["kid"] == ec.thumbprint()


@pytest.mark.parametrize("private", [RFC8037_PRIVATE, RFC7515_EC_PRIVATE])
def test_private_jwk_round_trip(private: dict[str, str]) -> None:
    key = SigningKey.from_private_jwk(private)
    exported = key.to_private_jwk()
    assert {name: exported[name] for name in private} == private
    again = SigningKey.from_private_jwk(exported)
    assert again.public() == key.public()
    assert again.kid == key.kid == thumbprint(private)
    assert "d" not in key.public().to_jwk()
    assert private["d"] not in repr(key)


def test_private_jwk_whose_public_part_is_someone_elses_is_refused() -> None:
    other_x = SigningKey.generate("EdDSA").public().public_members()["x"]
    with pytest.raises(InvalidKeyError, match="do not match"):
        SigningKey.from_private_jwk({**RFC8037_PRIVATE, "x": other_x})


def test_generate_refuses_other_algorithms() -> None:
    for alg in ("none", "HS256", "RS256", "eddsa"):
        with pytest.raises(ValueError, match=alg):
            SigningKey.generate(alg)


# -- key sets -------------------------------------------------------------------------------------


def test_key_set_rotation() -> None:
    old, new = SigningKey.generate("ES256"), SigningKey.generate("EdDSA")
    keys = KeySet([old.public()])
    keys.add(new.public())
    keys.add(new.public())  # idempotent
    assert keys.kids == (old.kid, new.kid)
    resolve = key_resolver(keys)
    assert resolve(old.kid) == old.public()
    assert keys.retire(old.kid) == old.public()
    _unknown_key(old.kid, resolve)
    assert resolve(new.kid) == new.public()
    assert len(keys) == 1
    assert old.kid not in keys


def test_key_set_refuses_a_second_key_under_one_kid() -> None:
    keys = KeySet([SigningKey.generate().public().with_kid("k")])
    with pytest.raises(InvalidKeyError):
        keys.add(SigningKey.generate().public().with_kid("k"))


def test_jwks_round_trip_through_json() -> None:
    keys = KeySet([SigningKey.generate("EdDSA").public(), SigningKey.generate("ES256").public()])
    document = json.loads(json.dumps(keys.to_jwks()))
    again = KeySet.from_jwks(document)
    assert list(again) == list(keys)


def test_jwks_of_the_suites_issuer_imports() -> None:
    from conformance.peers.issuer import TestIssuer

    issuer = TestIssuer.ephemeral("https://issuer.example")
    keys = KeySet.from_jwks(issuer.jwks())
    assert keys.get(issuer.signer.kid).alg == "ES256"


@pytest.mark.parametrize(
    "document",
    [{}, {"keys": {}}, {"keys": [RFC8037_PRIVATE]}, {"keys": [{"kty": "oct", "k": "AA"}]}],
)
def test_from_jwks_refuses(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidKeyError):
        KeySet.from_jwks(document)


def test_resolver_without_key_set_knows_only_did_jwk() -> None:
    _unknown_key("some-thumbprint", key_resolver(None))


# -- did:jwk --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_pairwise_identity(alg: str) -> None:
    identity = PairwiseIdentity.generate(alg)
    assert identity.identifier.startswith("did:jwk:")
    assert identity.kid == identity.identifier + "#0"
    resolved = resolve_did_jwk(identity.kid)
    assert resolved == identity.verifying_key()
    assert key_resolver(None)(identity.kid) == resolved
    assert did_jwk_identifier(resolved) == identity.identifier
    restored = PairwiseIdentity.from_private_jwk(identity.to_private_jwk())
    assert restored.identifier == identity.identifier
    assert restored.kid == identity.kid


def test_pairwise_identities_are_unlinkable() -> None:
    identifiers = {PairwiseIdentity.generate().identifier for _ in range(5)}
    assert len(identifiers) == 5


def test_did_jwk_of_the_suites_personas_resolves() -> None:
    identifier, signer = new_pairwise()
    key = resolve_did_jwk(signer.kid)
    assert did_jwk_identifier(key) == identifier
    assert key.public_members() == {k: signer.public_jwk[k] for k in ("crv", "kty", "x")}


def _did(jwk: Any) -> str:
    return "did:jwk:" + b64url_encode(json.dumps(jwk).encode()) + "#0"


@pytest.mark.parametrize(
    "kid",
    [
        "did:jwk:" + b64url_encode(canonical_json(RFC8037_PUBLIC)),  # no #0
        "did:jwk:" + b64url_encode(canonical_json(RFC8037_PUBLIC)) + "#1",
        "did:web:example.com#0",
        "did:jwk:!!!#0",
        "did:jwk:" + b64url_encode(canonical_json(RFC8037_PUBLIC)) + "=#0",
        _did(RFC8037_PRIVATE),  # a private key in an identifier
        _did({"kty": "oct", "k": "c2VjcmV0"}),
        _did([RFC8037_PUBLIC]),
        "did:jwk:" + b64url_encode(b'{"kty":"OKP","kty":"OKP","crv":"Ed25519","x":"AA"}') + "#0",
        "did:jwk:" + "A" * 2000 + "#0",
    ],
)
def test_resolve_did_jwk_refuses(kid: str) -> None:
    _unknown_key(kid, resolve_did_jwk)


# -- Ed25519 signing: libsodium, proven against RFC 8032 and OpenSSL ----------------------------
#
# The library signs Ed25519 with libsodium (as it verifies). Ed25519 is
# deterministic (RFC 8032 §5.1.6), so every implementation makes the same
# signature for one key and message: the RFC 8032 §7.1 and RFC 8037 A.4 known
# answers (test_keys_nobody_owns.py, test_signing_profile.py) and, here, the
# signatures OpenSSL makes through ``cryptography`` for arbitrary keys and messages.


def _ed25519_key(seed: bytes) -> tuple[SigningKey, Ed25519PrivateKey]:
    reference = Ed25519PrivateKey.from_private_bytes(seed)
    public = reference.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public), "d": b64url_encode(seed)}
    return SigningKey.from_private_jwk(jwk), reference


@settings(max_examples=300, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=4096))
def test_ed25519_signatures_are_the_ones_openssl_makes(seed: bytes, message: bytes) -> None:
    key, reference = _ed25519_key(seed)
    signature = key.sign(message)
    assert signature == reference.sign(message)
    key.public().verify(message, signature)
    reference.public_key().verify(signature, message)


def test_a_key_signs_alike_however_it_was_made() -> None:
    generated = SigningKey.generate("EdDSA")
    restored = SigningKey.from_private_jwk(generated.to_private_jwk())
    renamed = generated.with_kid("another-kid")
    pseudonym = PairwiseIdentity.from_signing_key(generated).signing_key
    message = b"header.payload"
    signatures = {key.sign(message) for key in (generated, restored, renamed, pseudonym)}
    assert len(signatures) == 1
