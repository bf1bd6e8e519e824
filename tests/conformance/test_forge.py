"""The suite's own token assembly and identities: they must be exactly what they claim.

A negative check is only as good as its forgery: an ``alg: none`` token that
accidentally carried a valid EdDSA header would test nothing.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from conformance.forge import (
    b64url,
    canonical_json,
    compact,
    hmac_with_public_key,
    tamper_signature,
)
from conformance.peers.identity import new_key, new_pairwise, signer_from_private_jwk, thumbprint
from conformance.peers.messages import digest, envelope, sign


def _segments(token: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    header, payload, signature = token.split(b".")

    def decode(segment: bytes) -> bytes:
        return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))

    return json.loads(decode(header)), decode(payload), decode(signature)


def test_thumbprint_matches_rfc_8037_example() -> None:
    # RFC 8037 Appendix A.3: the thumbprint of the Ed25519 example key.
    key = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    with pytest.raises(ValueError, match="no thumbprint rule"):
        thumbprint({"kty": "RSA", "n": "x", "e": "AQAB"})


def test_signatures_verify_with_cryptography() -> None:
    signer = new_key("EdDSA")
    payload = canonical_json({"hello": "world"})
    token = sign({"hello": "world"}, signer)
    header, body, signature = _segments(token)
    assert header == {"alg": "EdDSA", "kid": signer.kid, "typ": "vrm+jws"}
    assert body == payload
    public = Ed25519PublicKey.from_public_bytes(
        base64.urlsafe_b64decode(signer.public_jwk["x"] + "==")
    )
    signing_input = token.rsplit(b".", 1)[0]
    public.verify(signature, signing_input)  # raises if the signature is wrong
    tampered = tamper_signature(token)
    assert tampered != token
    with pytest.raises(InvalidSignature):
        public.verify(_segments(tampered)[2], signing_input)


def test_es256_signatures_are_raw_64_bytes() -> None:
    signer = new_key("ES256")
    _, _, signature = _segments(sign({"a": 1}, signer))
    assert len(signature) == 64  # r || s, not DER (RFC 7518 §3.4)
    assert signer_from_private_jwk(signer.private_jwk).kid == signer.kid


def test_forged_headers_are_exactly_as_asked() -> None:
    signer = new_key("EdDSA")
    none_token = compact({"alg": "nOnE", "kid": signer.kid, "typ": "vrm+jws"}, b"{}", None)
    header, _, signature = _segments(none_token)
    assert header["alg"] == "nOnE"
    assert signature == b""
    raw = b'{"alg":"EdDSA","alg":"none"}'
    assert none_token.count(b".") == 2
    duplicate = compact(raw, b"{}", signer)
    assert base64.urlsafe_b64decode(duplicate.split(b".")[0] + b"==") == raw
    unencoded = compact(
        {"alg": "EdDSA", "b64": False, "crit": ["b64"]}, b'{"a":1}', signer, encode_payload=False
    )
    assert unencoded.split(b".")[1] == b'{"a":1}'
    hmac_token = hmac_with_public_key({"alg": "HS256", "kid": signer.kid}, b"{}", signer.public_jwk)
    assert _segments(hmac_token)[0]["alg"] == "HS256"
    assert len(_segments(hmac_token)[2]) == 32


def test_pairwise_identities_are_did_jwk_and_unrelated() -> None:
    first, first_signer = new_pairwise()
    second, second_signer = new_pairwise()
    assert first.startswith("did:jwk:")
    assert first_signer.kid == first + "#0"
    assert first != second
    assert first_signer.public_jwk["x"] != second_signer.public_jwk["x"]
    encoded = first.removeprefix("did:jwk:")
    jwk = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    assert jwk == {"crv": "Ed25519", "kty": "OKP", "x": first_signer.public_jwk["x"]}
    assert "d" not in jwk


def test_envelope_and_digest() -> None:
    from datetime import UTC, datetime

    now = datetime(2030, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    payload = envelope("personal-rfi", {"x": 1}, sender="did:jwk:abc", to=["http://v"], now=now)
    assert payload["thread"] == payload["id"]
    assert payload["created"] == "2030-01-02T03:04:05Z"
    assert payload["expires"] == "2030-01-03T03:04:05Z"
    assert "replyTo" not in payload
    assert digest(b"abc") == "sha-256:" + b64url(
        bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    )
