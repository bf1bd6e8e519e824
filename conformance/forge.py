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
standard library's HMAC; this module only arranges bytes. The Ed25519
forgeries of keys and signatures nobody owns (spec §8.2, §8.4) use
libsodium's point and scalar operations (PyNaCl), never the library's
verifier or signer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm
from nacl import bindings as sodium

__all__ = [
    "ED25519_IDENTITY",
    "ED25519_IDENTITY_NON_CANONICAL",
    "P256_ORDER",
    "JoseSigner",
    "RawSigner",
    "Signs",
    "b64url",
    "canonical_json",
    "compact",
    "high_s_twin",
    "hmac_with_public_key",
    "mixed_order_signer",
    "nonce_free_signer",
    "small_order_signer",
    "tamper_signature",
    "unreduced_s",
]

#: The order n of the P-256 group (SEC 2 §2.4.2). Spec §8.2: an ES256 signature
#: is sent low-S (S at most n/2); its twin (r, n - s) must be refused.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
#: The edwards25519 identity point (0, 1), of order 1 (RFC 8032 §5.1.2 encoding).
ED25519_IDENTITY: Final = bytes([1]) + bytes(31)
#: The identity written with y = p + 1: a second, non-canonical name for it.
ED25519_IDENTITY_NON_CANONICAL: Final = bytes.fromhex(
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
)
#: The order L of the edwards25519 prime-order subgroup (RFC 8032 §5.1).
_ED25519_ORDER: Final = 2**252 + 27742317777372353535851937790883648493
#: A point of order 8 (from C2SP/CCTV's list of low-order encodings).
_ED25519_ORDER_EIGHT: Final = bytes.fromhex(
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
)


class Signs(Protocol):
    """Anything that makes a JWS signature over a signing input."""

    @property
    def alg(self) -> str:
        """The JWS algorithm."""
        ...

    @property
    def kid(self) -> str:
        """The key identifier."""
        ...

    def sign(self, signing_input: bytes) -> bytes:
        """The raw signature bytes."""
        ...


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
    signer: Signs | None,
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


@dataclass(frozen=True, slots=True)
class RawSigner:
    """A signer made of a function: for signatures no honest key would make."""

    alg: str
    kid: str
    make: Callable[[bytes], bytes] = field(repr=False)
    #: The public JWK the signature is meant to verify under.
    public_jwk: Mapping[str, Any] = field(default_factory=dict)

    def sign(self, signing_input: bytes) -> bytes:
        """The forged signature over ``signing_input``."""
        return self.make(signing_input)


def _okp(public: bytes) -> dict[str, str]:
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url(public)}


def _did_jwk(public_jwk: Mapping[str, Any]) -> str:
    return "did:jwk:" + b64url(canonical_json(dict(public_jwk)))


def _ed25519_scalar(seed: bytes) -> bytes:
    """The secret scalar of an Ed25519 seed (RFC 8032 §5.1.5), reduced mod L."""
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    return sodium.crypto_core_ed25519_scalar_reduce(bytes(digest) + bytes(32))


def _challenge(point_r: bytes, public: bytes, message: bytes) -> bytes:
    """H(R || A || M) mod L (RFC 8032 §5.1.7)."""
    return sodium.crypto_core_ed25519_scalar_reduce(
        hashlib.sha512(point_r + public + message).digest()
    )


def small_order_signer(public: bytes = ED25519_IDENTITY) -> tuple[str, RawSigner]:
    """A did:jwk pseudonym whose key is the identity point (or another encoding of it).

    R = identity and S = 0 satisfy S·B = R + H·A for every message when A is
    the identity: anyone can sign as this pseudonym (spec §8.4). Returns the
    identifier and a signer whose ``kid`` is ``identifier#0``.
    """
    identifier = _did_jwk(_okp(public))
    return identifier, RawSigner(
        "EdDSA", identifier + "#0", lambda data: ED25519_IDENTITY + bytes(32), _okp(public)
    )


def mixed_order_signer() -> tuple[str, RawSigner]:
    """A did:jwk pseudonym of mixed order: a fresh key plus a point of order 8.

    Its holder signs with nonces chosen so that H(R, A', M) is a multiple of
    8: the order-8 part then vanishes and the signature verifies without the
    cofactor, while other verifiers (and other messages) disagree, which is
    how such a key lets its holder deny a signature (spec §8.4).
    """
    seed = secrets.token_bytes(32)
    scalar = _ed25519_scalar(seed)
    public = sodium.crypto_core_ed25519_add(
        sodium.crypto_scalarmult_ed25519_base_noclamp(scalar), _ED25519_ORDER_EIGHT
    )

    def sign(data: bytes) -> bytes:
        for _ in range(4096):
            nonce = sodium.crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64))
            point_r = sodium.crypto_scalarmult_ed25519_base_noclamp(nonce)
            h = _challenge(point_r, public, data)
            if h[0] % 8 == 0:
                product = sodium.crypto_core_ed25519_scalar_mul(h, scalar)
                return point_r + sodium.crypto_core_ed25519_scalar_add(nonce, product)
        raise RuntimeError("no nonce found")  # pragma: no cover - one in eight works

    identifier = _did_jwk(_okp(public))
    return identifier, RawSigner("EdDSA", identifier + "#0", sign, _okp(public))


def nonce_free_signer(signer: JoseSigner, point_r: bytes = ED25519_IDENTITY) -> RawSigner:
    """``signer``'s Ed25519 key signing with a fixed R of small order and S = H(R, A, M)·a.

    S·B = R + H·A holds when R is the identity, so a verifier that does not
    look at R accepts it; the profile requires R to be neither of small order
    nor non-canonical (spec §8.2).

    Raises:
        ValueError: ``signer`` is not an Ed25519 key.
    """
    if signer.alg != "EdDSA":
        raise ValueError("a nonce-free signature needs an Ed25519 key")
    scalar = _ed25519_scalar(base64.urlsafe_b64decode(str(signer.private_jwk["d"]) + "="))
    public = base64.urlsafe_b64decode(str(signer.private_jwk["x"]) + "=")

    def sign(data: bytes) -> bytes:
        return point_r + sodium.crypto_core_ed25519_scalar_mul(
            _challenge(point_r, public, data), scalar
        )

    return RawSigner("EdDSA", signer.kid, sign, signer.public_jwk)


def unreduced_s(token: bytes) -> bytes:
    """The Ed25519 token with L added to S: the same equation holds, but S >= L.

    RFC 8032 §5.1.7 requires S < L; otherwise every signature has a second
    spelling (spec §8.2).
    """
    header, payload, signature = token.split(b".")
    raw = base64.urlsafe_b64decode(signature + b"=" * (-len(signature) % 4))
    scalar_s = int.from_bytes(raw[32:], "little") + _ED25519_ORDER
    return b".".join((header, payload, b64url(raw[:32] + scalar_s.to_bytes(32, "little")).encode()))
