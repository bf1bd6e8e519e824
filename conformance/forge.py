"""Assembling compact JWS tokens byte by byte, including ones the profile forbids.

The library's signer (:mod:`vrm_protocol.signing_profile`) refuses to make a
token outside the profile — as it should. The suite must make exactly such
tokens to see the target refuse them: ``alg: none`` in every letter case,
HMAC keyed with the sender's *public* key (the classic algorithm-confusion
attack, RFC 8725 §2.1 and §3.1), injected ``jku``/``jwk``/``x5u``/``x5c``
headers, unknown ``crit`` entries, ``b64: false`` (RFC 7797), duplicate
member names, tampered or missing signatures, the high-S twin of an ES256
signature.

No cryptography is implemented here: signatures come from PyJWT's algorithm
objects (Ed25519 and ECDSA P-256 over ``cryptography``) and from the
standard library's HMAC; this module only arranges bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

__all__ = [
    "P256_ORDER",
    "JoseSigner",
    "b64url",
    "canonical_json",
    "compact",
    "high_s_twin",
    "hmac_with_public_key",
    "tamper_signature",
]

#: The order n of the P-256 group (SEC 2 §2.4.2). Spec §8.2: an ES256 signature
#: is sent low-S (S at most n/2); its twin (r, n - s) must be refused.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value``."""
    encoded: bytes = rfc8785.dumps(value)
    return encoded


@dataclass(frozen=True, slots=True)
class JoseSigner:
    """A private key the suite signs with, and the ``kid`` it is published under."""

    alg: str
    kid: str
    private_jwk: Mapping[str, Any] = field(repr=False)

    def sign(self, signing_input: bytes) -> bytes:
        """The JWS signature over ``signing_input`` with this key's algorithm.

        Raises:
            ValueError: the algorithm is not EdDSA or ES256.
        """
        document = json.dumps(dict(self.private_jwk))
        if self.alg == "EdDSA":
            okp = OKPAlgorithm()
            ed_key = okp.from_jwk(document)
            if not isinstance(ed_key, Ed25519PrivateKey):
                raise ValueError("EdDSA signing needs an Ed25519 private JWK")
            return okp.sign(signing_input, ed_key)
        if self.alg == "ES256":
            ecdsa = ECAlgorithm(ECAlgorithm.SHA256)
            ec_key = ecdsa.from_jwk(document)
            if not isinstance(ec_key, EllipticCurvePrivateKey):
                raise ValueError("ES256 signing needs a P-256 private JWK")
            signature = ecdsa.sign(signing_input, ec_key)
            s = int.from_bytes(signature[32:], "big")
            if s > P256_ORDER // 2:  # the profile's form is low-S (spec §8.2)
                signature = signature[:32] + (P256_ORDER - s).to_bytes(32, "big")
            return signature
        raise ValueError(f"the suite signs with EdDSA or ES256, not {self.alg!r}")

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public members of the key (private members dropped)."""
        return {
            name: value for name, value in self.private_jwk.items() if name not in {"d", "p", "q"}
        }


def compact(
    header: Mapping[str, Any] | bytes,
    payload: bytes,
    signer: JoseSigner | None,
    *,
    encode_payload: bool = True,
) -> bytes:
    """Assemble ``header.payload.signature``, signing with ``signer`` (or none).

    ``header`` may be raw bytes, so that a test can put duplicate member
    names or non-canonical spacing in it. ``encode_payload=False`` leaves the
    payload unencoded, as RFC 7797 ``b64: false`` asks.
    """
    header_bytes = header if isinstance(header, bytes) else canonical_json(dict(header))
    header_segment = b64url(header_bytes)
    payload_segment = b64url(payload) if encode_payload else payload.decode("utf-8")
    signing_input = f"{header_segment}.{payload_segment}".encode()
    signature = signer.sign(signing_input) if signer is not None else b""
    return f"{header_segment}.{payload_segment}.{b64url(signature)}".encode()


def hmac_with_public_key(
    header: Mapping[str, Any], payload: bytes, public_jwk: Mapping[str, Any]
) -> bytes:
    """An HS256 token keyed with the sender's public key (algorithm confusion).

    A verifier that lets the token's ``alg`` pick the algorithm, and hands the
    public key to HMAC as a secret, would accept it (RFC 8725 §2.1).
    """
    secret = canonical_json(dict(public_jwk))
    header_segment = b64url(canonical_json(dict(header)))
    signing_input = f"{header_segment}.{b64url(payload)}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header_segment}.{b64url(payload)}.{b64url(signature)}".encode()


def tamper_signature(token: bytes) -> bytes:
    """The token with one bit of its signature flipped (still valid base64url)."""
    header, payload, signature = token.split(b".")
    raw = bytearray(base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return b".".join((header, payload, b64url(bytes(raw)).encode()))


def high_s_twin(token: bytes) -> bytes:
    """The ES256 token with its signature (r, s) replaced by (r, n - s).

    Both verify under plain ECDSA: the twin is the same signature's other
    form, so a receiver that accepted both would hold one content under two
    digests. The profile accepts only the low-S form.
    """
    header, payload, signature = token.split(b".")
    raw = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
    twin = raw[:32] + (P256_ORDER - int.from_bytes(raw[32:], "big")).to_bytes(32, "big")
    return b".".join((header, payload, b64url(twin).encode()))
