"""Keys: generation, JWK/JWKS import and export, RFC 7638 thumbprints, key sets,
and the buyers' pairwise pseudonymous identities (spec §3, §8.4).

Two key types exist in the profile (spec §8.1): Ed25519 (``OKP``, ``alg``
``EdDSA``, RFC 8037) and P-256 (``EC``, ``alg`` ``ES256``, RFC 7518 §3.4).
Every key is bound to exactly one algorithm, so a verifier never lets a
token's header choose how a key is used (RFC 8725 §3.1).

* Vendors and third parties publish a JWKS; a key's ``kid`` is its RFC 7638
  thumbprint (spec §8.4). Rotation: :meth:`KeySet.add` the new key beside
  the old, sign with the new one, :meth:`KeySet.retire` the old.
* Buyers use one fresh key per relationship: the identifier is
  ``did:jwk:<base64url(JWK)>`` and the ``kid`` is that identifier + ``#0``
  (spec §3.1). The key is *derived from the identifier*, so a receiver needs
  no lookup and two vendors share nothing that links the buyer.

Keys nobody owns are refused on import (spec §8.4, VRM-SIG-022): an Ed25519
key must be the canonical encoding of a point of the prime-order subgroup.
A key of small order (the identity, the all-zero encoding, ...) verifies a
trivial signature over every message, so anyone could speak under it; a key
with a small-order component lets its holder make signatures that one
verifier accepts and another refuses, and so deny them later. One
``did:jwk`` spelling per key (spec §3.1, VRM-SIG-026) keeps one key from
having many identities.

No curve arithmetic is done here. Ed25519 is libsodium's (through PyNaCl):
``crypto_core_ed25519_is_valid_point`` checks that a point is canonical, on
the curve, in the prime-order subgroup and not of small order,
``crypto_sign_verify_detached`` refuses a signature whose R is of small
order or not canonical, or whose S is not below the group order L, and
``crypto_sign`` signs (deterministic, RFC 8032 §5.1.6: the same signature
OpenSSL makes, which the tests hold it to, with the RFC 8032 §7.1 and RFC
8037 A.4 known answers). libsodium signs in about three quarters of
OpenSSL's time through ``cryptography``, which matters because every message
sent is signed. Key generation, key import and all of ES256 are the
``cryptography`` package's; this module converts between key objects and
JWKs, arranges signature bytes and keeps ES256 signatures low-S
(VRM-SIG-024, VRM-SIG-025).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Final, Literal, TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from nacl import bindings as _sodium
from nacl.exceptions import BadSignatureError

from vrm_protocol.canonical import (
    b64url_decode,
    b64url_encode,
    canonical_json,
    parse_json_object,
)
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp

__all__ = [
    "DID_JWK_KEY_FRAGMENT",
    "DID_JWK_PREFIX",
    "Algorithm",
    "InvalidKeyError",
    "KeyResolver",
    "KeySet",
    "PairwiseIdentity",
    "SigningKey",
    "VerifyingKey",
    "did_jwk_identifier",
    "evidence_resolver",
    "key_resolver",
    "resolve_did_jwk",
    "thumbprint",
]

Algorithm: TypeAlias = Literal["EdDSA", "ES256"]

#: A function from a JWS ``kid`` to the key it names (spec §8.4).
#: Raises :class:`~vrm_protocol.errors.RemoteProtocolError` (UNKNOWN_KEY).
KeyResolver: TypeAlias = Callable[[str], "VerifyingKey"]

DID_JWK_PREFIX: Final = "did:jwk:"
#: did:jwk has exactly one verification method, ``#0``.
DID_JWK_KEY_FRAGMENT: Final = "#0"
#: A did:jwk of a P-256 key is about 200 characters; anything far longer is refused
#: before it is decoded.
_MAX_DID_JWK_LENGTH: Final = 1024

_KTY_BY_ALG: Final[dict[str, str]] = {"EdDSA": "OKP", "ES256": "EC"}
_CRV_BY_ALG: Final[dict[str, str]] = {"EdDSA": "Ed25519", "ES256": "P-256"}
_ALG_BY_KTY: Final[dict[str, Algorithm]] = {"OKP": "EdDSA", "EC": "ES256"}
#: RFC 7638 §3.2: the required members of each key type, the thumbprint input.
_REQUIRED_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "OKP": ("crv", "kty", "x"),
    "EC": ("crv", "kty", "x", "y"),
}
#: Private-key members of any key type (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
#: A public JWK carrying any of them is refused: it was leaked or is a trap.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: The profile uses no X.509 (spec §8.2): a JWK pointing at certificates is refused.
_X509_MEMBERS: Final = frozenset({"x5u", "x5c", "x5t", "x5t#S256"})
_ED25519_SIGNATURE_BYTES: Final = 64
_COORDINATE_BYTES: Final = 32  # Ed25519 public key, P-256 coordinate and private scalar
#: The order n of the P-256 group (SEC 2 §2.4.2). An ES256 signature (r, s) has a
#: twin (r, n - s) that verifies too; the profile accepts only s <= n / 2.
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_HALF_ORDER: Final = _P256_ORDER // 2
#: (0, -1), the edwards25519 point of order 2 (RFC 8032 §5.1 encoding).
_ORDER_TWO_POINT: Final = bytes.fromhex(
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
)
#: did:jwk resolutions remembered (each costs a subgroup check); bounded.
_DID_JWK_CACHE_SIZE: Final = 4096


def _require_subgroup_check() -> None:
    """Refuse to run on a libsodium that lets mixed-order points through.

    libsodium before the 1.0.20-stable build of 2025-12-31 (CVE-2025-69277,
    fixed in PyNaCl 1.6.2) accepted a prime-order point plus the point of
    order 2 in ``crypto_core_ed25519_is_valid_point``. PyNaCl built against
    an older system libsodium would, so this known answer runs at import:
    without it, keys nobody owns would be accepted silently.
    """
    base = _sodium.crypto_scalarmult_ed25519_base_noclamp((1).to_bytes(32, "little"))
    poisoned = _sodium.crypto_core_ed25519_add(base, _ORDER_TWO_POINT)
    if not _sodium.crypto_core_ed25519_is_valid_point(base) or (
        _sodium.crypto_core_ed25519_is_valid_point(poisoned)
    ):
        raise ImportError(
            "the libsodium under PyNaCl does not check the prime-order subgroup "
            "(CVE-2025-69277): install pynacl>=1.6.2 with its bundled libsodium"
        )


_require_subgroup_check()


class InvalidKeyError(RemoteProtocolError, ValueError):
    """A JWK or JWKS that this profile does not accept (code ``unknown-key``, spec §8.4).

    A :class:`RemoteProtocolError`, so that every decoding function of the
    library raises only protocol errors; also a ``ValueError``, which is how
    local callers (loading their own key file) have always caught it.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.UNKNOWN_KEY, detail)


def _member(jwk: Mapping[str, Any], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidKeyError(f"JWK member {name!r} is missing or not a string")
    return value


def _coordinate(jwk: Mapping[str, Any], name: str) -> bytes:
    try:
        raw = b64url_decode(_member(jwk, name))
    except ValueError as error:
        raise InvalidKeyError(f"JWK member {name!r}: {error}") from error
    if len(raw) != _COORDINATE_BYTES:
        raise InvalidKeyError(f"JWK member {name!r} must encode {_COORDINATE_BYTES} bytes")
    return raw


def _check_optional_members(jwk: Mapping[str, Any], alg: Algorithm) -> None:
    declared_alg = jwk.get("alg")
    if declared_alg is not None and declared_alg != alg:
        raise InvalidKeyError(f"JWK declares alg {declared_alg!r}; a {jwk['kty']} key is {alg}")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise InvalidKeyError(f"JWK 'use' is {use!r}; signing keys have use 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (
        not isinstance(key_ops, list) or not {"verify", "sign"} & set(key_ops)
    ):
        raise InvalidKeyError("JWK 'key_ops' does not allow signing or verification")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise InvalidKeyError("JWK 'kid' must be a non-empty string")
    x509 = _X509_MEMBERS & set(jwk)
    if x509:
        raise InvalidKeyError(f"JWK carries X.509 members {sorted(x509)}; the profile uses none")


def _algorithm_of(jwk: Mapping[str, Any]) -> Algorithm:
    kty = jwk.get("kty")
    alg = _ALG_BY_KTY.get(kty) if isinstance(kty, str) else None
    if alg is None:
        raise InvalidKeyError(f"JWK kty {kty!r} is not supported (OKP Ed25519 or EC P-256)")
    crv = jwk.get("crv")
    if crv != _CRV_BY_ALG[alg]:
        raise InvalidKeyError(f"JWK curve {crv!r} is not supported for kty {kty}")
    return alg


#: A public key as the verifier holds it: the 32 bytes of an Ed25519 point
#: (verified by libsodium), or a P-256 key object (verified by ``cryptography``).
_PublicKey: TypeAlias = bytes | ec.EllipticCurvePublicKey


def _prime_order_point(x: bytes) -> bytes:
    """``x`` if it is a key someone owns, else :class:`InvalidKeyError` (spec §8.4).

    VRM-SIG-022: the canonical encoding (y < p) of a point of the prime-order
    subgroup, neither of small order nor of mixed order.
    """
    if not _sodium.crypto_core_ed25519_is_valid_point(x):
        raise InvalidKeyError(
            "the Ed25519 key is not the canonical encoding of a point of the prime-order "
            "subgroup (a small-order, mixed-order or non-canonical key has no single owner)"
        )
    return x


def _public_from_jwk(jwk: Mapping[str, Any], alg: Algorithm) -> _PublicKey:
    x = _coordinate(jwk, "x")
    if alg == "EdDSA":
        return _prime_order_point(x)
    y = _coordinate(jwk, "y")
    try:
        # SEC 1 uncompressed point; cryptography checks that it is on the curve.
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    except ValueError as error:
        raise InvalidKeyError(f"JWK is not a point on P-256: {error}") from error


def _public_of(private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> _PublicKey:
    """The public half of one of our own private keys (a prime-order point by construction)."""
    public = private.public_key()
    if isinstance(public, Ed25519PublicKey):
        return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return public


def _public_members(public: _PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of a public key, in lexicographic order."""
    if isinstance(public, bytes):
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(public)}
    numbers = public.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url_encode(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
        "y": b64url_encode(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
    }


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, SHA-256, base64url: the ``kid`` of a published key.

    The hash input is the JSON object of the key type's required members
    only, in lexicographic order, without whitespace (RFC 7638 §3.2, §3.3),
    which is exactly their RFC 8785 serialization.

    Raises:
        InvalidKeyError: the key type is not OKP or EC, or a required member
            is missing or not a string.
    """
    if not isinstance(jwk, Mapping):
        raise InvalidKeyError("a JWK is a JSON object")
    kty = jwk.get("kty")
    members = _REQUIRED_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise InvalidKeyError(f"no thumbprint rule for key type {kty!r}")
    required = {name: _member(jwk, name) for name in members}
    return b64url_encode(hashlib.sha256(canonical_json(required)).digest())


# -- verifying keys -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyingKey:
    """A public key bound to one algorithm and published under one ``kid``.

    Build it with :meth:`from_jwk` or :meth:`SigningKey.public`.
    Equality compares algorithm, ``kid`` and key material.
    """

    alg: Algorithm
    kid: str
    #: RFC 7638 required members (the canonical public JWK), as sorted pairs.
    members: tuple[tuple[str, str], ...]
    _public: _PublicKey = field(compare=False, repr=False)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], *, kid: str | None = None) -> VerifyingKey:
        """Import a public JWK under the profile's rules (spec §8.4).

        Accepted: ``kty`` OKP with ``crv`` Ed25519 (the canonical encoding of a
        point of the prime-order subgroup: no small-order, mixed-order or
        non-canonical key, VRM-SIG-022), or ``kty`` EC with ``crv`` P-256 (a
        point on the curve). ``alg``, if present, must be the key
        type's algorithm; ``use``, if present, ``sig``. Refused: any private
        member, any X.509 member. Other members are ignored (RFC 7517 §4).
        The ``kid`` is the argument, else the JWK's ``kid``, else the RFC 7638
        thumbprint.

        Raises:
            InvalidKeyError: the JWK is not an acceptable public key.
        """
        if not isinstance(jwk, Mapping):
            raise InvalidKeyError("a JWK is a JSON object")
        private = _PRIVATE_MEMBERS & set(jwk)
        if private:
            raise InvalidKeyError(f"a public JWK must not carry private members {sorted(private)}")
        alg = _algorithm_of(jwk)
        _check_optional_members(jwk, alg)
        public = _public_from_jwk(jwk, alg)
        return cls._build(alg, public, kid if kid is not None else jwk.get("kid"))

    @classmethod
    def _build(cls, alg: Algorithm, public: _PublicKey, kid: str | None) -> VerifyingKey:
        members = _public_members(public)
        resolved_kid = kid if kid else thumbprint(members)
        return cls(alg, resolved_kid, tuple(members.items()), public)

    def public_members(self) -> dict[str, str]:
        """The RFC 7638 required members: the minimal public JWK (no ``kid``)."""
        return dict(self.members)

    def to_jwk(self) -> dict[str, str]:
        """The public JWK as published in a JWKS: required members, ``kid``, ``alg``, ``use``."""
        return {**self.public_members(), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint of this key (base64url)."""
        return thumbprint(self.public_members())

    def with_kid(self, kid: str) -> VerifyingKey:
        """The same key under another ``kid``."""
        return VerifyingKey(self.alg, kid, self.members, self._public)

    def verify(self, signing_input: bytes, signature: bytes) -> None:
        """Verify a JWS signature over ``signing_input`` (spec §8.2).

        EdDSA: libsodium's verification, which refuses a signature whose R is
        of small order or not canonical, or whose S is not below L
        (VRM-SIG-023), so that nobody but the key holder can make a signature
        and no signature has a second spelling. ES256: the 64-byte ``R || S``
        of RFC 7518 §3.4 (a DER encoding, what many ECDSA libraries emit by
        default, is refused) with S at most n/2 (VRM-SIG-024): the high-S twin
        of a signature would give the same content a second digest (§8.5).

        Raises:
            RemoteProtocolError: BAD_SIGNATURE.
        """
        if len(signature) != 2 * _COORDINATE_BYTES:
            raise RemoteProtocolError(
                ErrorCode.BAD_SIGNATURE,
                f"a {self.alg} signature is {2 * _COORDINATE_BYTES} bytes, not {len(signature)}",
            )
        public = self._public
        if isinstance(public, bytes):
            try:
                _sodium.crypto_sign_open(signature + signing_input, public)
            except BadSignatureError:
                raise RemoteProtocolError(
                    ErrorCode.BAD_SIGNATURE, "the signature does not verify over the bytes received"
                ) from None
            return
        r = int.from_bytes(signature[:_COORDINATE_BYTES], "big")
        s = int.from_bytes(signature[_COORDINATE_BYTES:], "big")
        if s > _P256_HALF_ORDER:
            raise RemoteProtocolError(
                ErrorCode.BAD_SIGNATURE,
                "the ES256 signature has a high S (above n/2): only the low-S form is accepted",
            )
        try:
            public.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise RemoteProtocolError(
                ErrorCode.BAD_SIGNATURE, "the signature does not verify over the bytes received"
            ) from None


# -- signing keys ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key bound to one algorithm and one ``kid``. Never serialized by accident:
    its ``repr`` shows no key material; use :meth:`to_private_jwk` deliberately."""

    alg: Algorithm
    kid: str
    _private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    #: Ed25519 only: libsodium's 64-byte secret key (seed || public key), derived once.
    _sodium_secret: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def generate(cls, alg: str = "EdDSA", *, kid: str | None = None) -> SigningKey:
        """A fresh key pair; ``kid`` defaults to the RFC 7638 thumbprint.

        Raises:
            ValueError: ``alg`` is not EdDSA or ES256.
        """
        private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
        if alg == "EdDSA":
            private = Ed25519PrivateKey.generate()
        elif alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"keys are EdDSA or ES256, not {alg!r}")
        return cls._build(private, kid)

    @classmethod
    def _build(
        cls, private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey, kid: str | None
    ) -> SigningKey:
        resolved_kid = kid if kid else thumbprint(_public_members(_public_of(private)))
        if isinstance(private, Ed25519PrivateKey):
            return cls("EdDSA", resolved_kid, private, _sodium_secret_key(private))
        return cls("ES256", resolved_kid, private)

    @classmethod
    def from_private_jwk(cls, jwk: Mapping[str, Any], *, kid: str | None = None) -> SigningKey:
        """Import a private JWK (as written by :meth:`to_private_jwk`).

        The public members must match the private scalar ``d``. The ``kid`` is
        the argument, else the JWK's ``kid``, else the RFC 7638 thumbprint.

        Raises:
            InvalidKeyError: not an Ed25519 or P-256 private JWK, or its public
                members do not belong to its private key.
        """
        if not isinstance(jwk, Mapping):
            raise InvalidKeyError("a JWK is a JSON object")
        alg = _algorithm_of(jwk)
        _check_optional_members(jwk, alg)
        d = _coordinate(jwk, "d")
        private: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
        try:
            if alg == "EdDSA":
                private = Ed25519PrivateKey.from_private_bytes(d)
            else:
                private = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
        except ValueError as error:
            raise InvalidKeyError(f"JWK 'd' is not a valid {alg} private key: {error}") from error
        expected = _public_members(_public_of(private))
        stated = {name: jwk.get(name) for name in expected}
        if stated != expected:
            raise InvalidKeyError("JWK public members do not match its private key")
        declared_kid = jwk.get("kid")
        return cls._build(private, kid if kid is not None else declared_kid)

    def to_private_jwk(self) -> dict[str, str]:
        """The private JWK (required members, ``d``, ``kid``, ``alg``). Store it 0600."""
        if isinstance(self._private, Ed25519PrivateKey):
            d = self._private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        else:
            d = self._private.private_numbers().private_value.to_bytes(_COORDINATE_BYTES, "big")
        return {
            **_public_members(_public_of(self._private)),
            "d": b64url_encode(d),
            "kid": self.kid,
            "alg": self.alg,
        }

    def public(self) -> VerifyingKey:
        """The public half, under the same ``kid`` and algorithm."""
        return VerifyingKey._build(self.alg, _public_of(self._private), self.kid)

    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint of the public key (base64url)."""
        return thumbprint(_public_members(_public_of(self._private)))

    def with_kid(self, kid: str) -> SigningKey:
        """The same key under another ``kid``."""
        return SigningKey(self.alg, kid, self._private, self._sodium_secret)

    def sign(self, signing_input: bytes) -> bytes:
        """The raw JWS signature over ``signing_input`` (RFC 7515 §5.1 step 5).

        EdDSA: the 64-byte Ed25519 signature (RFC 8037 §3.1), by libsodium.
        ES256: the 64-byte ``R || S`` (RFC 7518 §3.4), converted from the DER
        that ``cryptography`` produces, with RFC 6979 deterministic nonces
        where the OpenSSL in use supports them. Both are deterministic then.
        ES256 signatures are always low-S (S at most n/2, VRM-SIG-025):
        receivers refuse the high-S form.
        """
        if isinstance(self._private, Ed25519PrivateKey):
            secret = self._sodium_secret or _sodium_secret_key(self._private)
            signed = _sodium.crypto_sign(signing_input, secret)
            # crypto_sign returns signature || message; the signature is the first 64 bytes.
            return signed[:_ED25519_SIGNATURE_BYTES]
        try:
            # RFC 6979 deterministic nonces: no dependence on the RNG at signing
            # time, and reproducible signatures (the test vectors rely on it).
            der = self._private.sign(
                signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
            )
        except UnsupportedAlgorithm:  # OpenSSL < 3.2: randomized ECDSA is still correct
            der = self._private.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        if s > _P256_HALF_ORDER:
            # (r, n - s) is the same signature's other form; OpenSSL emits either.
            s = _P256_ORDER - s
        return r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")


def _sodium_secret_key(private: Ed25519PrivateKey) -> bytes:
    """libsodium's secret key (seed || public key) of an Ed25519 private key."""
    seed = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    _, secret = _sodium.crypto_sign_seed_keypair(seed)
    return bytes(secret)


# -- key sets -------------------------------------------------------------------------------------


class KeySet:
    """A party's published verification keys, by ``kid`` (a JWKS, RFC 7517 §5; spec §11.2).

    Rotation (spec §8.4): :meth:`add` the new key, start signing with it, and
    :meth:`retire` the old one once messages signed with it have expired.
    A key retired ``at`` an instant stays published under ``retired`` with its
    ``retiredAt`` (spec §13.4, key history): it no longer verifies a message
    a receiver takes now (:meth:`get`), but it still verifies, as evidence, a
    message created before it was retired (:meth:`evidence_key`).
    """

    __slots__ = ("_keys", "_retired")

    def __init__(
        self,
        keys: Iterable[VerifyingKey] = (),
        retired: Iterable[tuple[VerifyingKey, datetime]] = (),
    ) -> None:
        self._keys: dict[str, VerifyingKey] = {}
        self._retired: dict[str, tuple[VerifyingKey, datetime]] = {}
        for key in keys:
            self.add(key)
        for key, at in retired:
            if key.kid in self._keys or key.kid in self._retired:
                raise InvalidKeyError(f"kid {key.kid!r} is published twice")
            self._retired[key.kid] = (key, at)

    def add(self, key: VerifyingKey) -> None:
        """Publish ``key`` under its ``kid``; adding the same key again is a no-op.

        Raises:
            InvalidKeyError: another key is already published under that ``kid``,
                or the key was retired (a retired key is never used again).
        """
        if key.kid in self._retired:
            raise InvalidKeyError(f"kid {key.kid!r} names a retired key")
        existing = self._keys.get(key.kid)
        if existing is not None and existing != key:
            raise InvalidKeyError(f"kid {key.kid!r} already names another key")
        self._keys[key.kid] = key

    def retire(self, kid: str, *, at: datetime | None = None) -> VerifyingKey:
        """Stop using the key ``kid`` for new messages and return it.

        With ``at`` (timezone-aware), the key stays published under ``retired``
        with that ``retiredAt``, so that the messages it signed stay verifiable
        as evidence (spec §13.4); without it, it is no longer published at all.

        Raises:
            KeyError: no key is published under ``kid``.
            ValueError: ``at`` is naive.
        """
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise ValueError("at must be timezone-aware")
        key = self._keys.pop(kid)
        if at is not None:
            self._retired[kid] = (key, at)
        return key

    def get(self, kid: str) -> VerifyingKey:
        """The current key published under ``kid``: the one a message taken now
        must be signed with (a retired key is ``unknown-key`` here).

        Raises:
            RemoteProtocolError: UNKNOWN_KEY.
        """
        key = self._keys.get(kid)
        if key is None:
            what = "was retired" if kid in self._retired else "is not published"
            raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, f"the key of kid {kid!r} {what}")
        return key

    def evidence_key(self, kid: str, created: datetime) -> VerifyingKey:
        """The key that verifies, as evidence, a message signed under ``kid`` and
        created at ``created``: a current key, or a retired one if the message
        was created before the key was retired (spec §13.4).

        Raises:
            RemoteProtocolError: UNKNOWN_KEY.
        """
        if kid in self._keys:
            return self._keys[kid]
        entry = self._retired.get(kid)
        if entry is None:
            raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, f"no key is published under {kid!r}")
        key, retired_at = entry
        if created >= retired_at:
            raise RemoteProtocolError(
                ErrorCode.UNKNOWN_KEY,
                f"the key of kid {kid!r} was retired at {format_timestamp(retired_at)}, "
                f"before the message was created ({format_timestamp(created)})",
            )
        return key

    def retired_at(self, kid: str) -> datetime | None:
        """When the key ``kid`` was retired, or ``None`` when it is not a retired key."""
        entry = self._retired.get(kid)
        return entry[1] if entry is not None else None

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[VerifyingKey]:
        return iter(list(self._keys.values()))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={list(self._keys)!r}, retired={list(self._retired)!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        """The current ``kid`` values, in the order the keys were added."""
        return tuple(self._keys)

    @property
    def retired_kids(self) -> tuple[str, ...]:
        """The retired ``kid`` values, in the order the keys were retired."""
        return tuple(self._retired)

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document served at ``/vrm/jwks.json`` (spec §11.2): ``keys``, and
        ``retired`` (each JWK with its ``retiredAt``) when a key was retired."""
        document: dict[str, list[dict[str, str]]] = {
            "keys": [key.to_jwk() for key in self._keys.values()]
        }
        if self._retired:
            document["retired"] = [
                {**key.to_jwk(), "retiredAt": format_timestamp(at)}
                for key, at in self._retired.values()
            ]
        return document

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any]) -> KeySet:
        """Import a JWKS. Every key, current or retired, must be acceptable (see
        :meth:`VerifyingKey.from_jwk`); a retired key carries its ``retiredAt``.

        Raises:
            InvalidKeyError: not a JWKS, an unacceptable key, two keys under one
                ``kid``, or a retired key without a valid ``retiredAt``.
        """
        keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(keys, list):
            raise InvalidKeyError("a JWKS is an object with a 'keys' array")
        retired_entries = document.get("retired", [])
        if not isinstance(retired_entries, list):
            raise InvalidKeyError("a JWKS's 'retired' member is an array")
        retired: list[tuple[VerifyingKey, datetime]] = []
        for entry in retired_entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("retiredAt"), str):
                raise InvalidKeyError("a retired key carries its 'retiredAt' timestamp")
            try:
                at = parse_timestamp(str(entry["retiredAt"]))
            except (ValueError, ProtocolError) as error:
                raise InvalidKeyError(f"retiredAt is not a timestamp: {error}") from None
            jwk = {name: value for name, value in entry.items() if name != "retiredAt"}
            retired.append((VerifyingKey.from_jwk(jwk), at))
        return cls([VerifyingKey.from_jwk(jwk) for jwk in keys], retired)


def evidence_resolver(key_set: KeySet | None, created: datetime) -> KeyResolver:
    """A :data:`KeyResolver` for verifying a stored message as evidence (spec §13.4):
    ``did:jwk`` kids resolve from themselves; others from ``key_set``'s current
    keys or from a key retired after ``created`` (the message's ``created``)."""

    def resolve(kid: str) -> VerifyingKey:
        if kid.startswith(DID_JWK_PREFIX):
            return resolve_did_jwk(kid)
        if key_set is None:
            raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, f"no key set knows kid {kid!r}")
        return key_set.evidence_key(kid, created)

    return resolve


# -- did:jwk --------------------------------------------------------------------------------------


def did_jwk_identifier(key: VerifyingKey) -> str:
    """The ``did:jwk`` identifier of ``key``: base64url of its canonical minimal public JWK.

    Only the required members are encoded (no ``kid``, ``use`` or ``alg``), so
    the identifier carries the key and nothing else (spec §3.1). This is the
    one spelling a receiver accepts (VRM-SIG-026).
    """
    return DID_JWK_PREFIX + b64url_encode(canonical_json(key.public_members()))


def resolve_did_jwk(kid: str) -> VerifyingKey:
    """The key a ``did:jwk:...#0`` key identifier names (spec §3.1, §8.4).

    The key is decoded from the identifier itself; nothing is fetched. The
    identifier must be canonical (VRM-SIG-026): ``did:jwk:`` and the unpadded
    base64url of the RFC 8785 JSON of exactly the key's RFC 7638 required
    members. Any other spelling of the same key is refused, or one key would
    have unlimited identifiers (and one buyer unlimited pseudonyms under one
    key). The key must be one someone owns (VRM-SIG-022).

    Resolutions are remembered (a bounded cache): the subgroup check costs
    about as much as verifying a signature.

    Raises:
        RemoteProtocolError: UNKNOWN_KEY if ``kid`` is not
            ``did:jwk:<base64url(JWK)>#0`` in canonical form, or the JWK is not
            an acceptable public key.
    """
    if not isinstance(kid, str):
        raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, "a key identifier is a string")
    if len(kid) > _MAX_DID_JWK_LENGTH:
        raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, "did:jwk key identifier is too long")
    return _resolve_did_jwk(kid)


@lru_cache(maxsize=_DID_JWK_CACHE_SIZE)
def _resolve_did_jwk(kid: str) -> VerifyingKey:
    if not kid.startswith(DID_JWK_PREFIX) or not kid.endswith(DID_JWK_KEY_FRAGMENT):
        raise RemoteProtocolError(
            ErrorCode.UNKNOWN_KEY, f"{kid!r} is not a did:jwk key identifier ending in '#0'"
        )
    encoded = kid[len(DID_JWK_PREFIX) : -len(DID_JWK_KEY_FRAGMENT)]
    try:
        document = parse_json_object(b64url_decode(encoded), what="did:jwk JWK")
        key = VerifyingKey.from_jwk(document, kid=kid)
    except (ValueError, RemoteProtocolError) as error:
        raise RemoteProtocolError(
            ErrorCode.UNKNOWN_KEY, f"did:jwk does not encode an acceptable public key: {error}"
        ) from error
    if did_jwk_identifier(key) != kid[: -len(DID_JWK_KEY_FRAGMENT)]:
        raise RemoteProtocolError(
            ErrorCode.UNKNOWN_KEY,
            "the did:jwk is not in canonical form: 'did:jwk:' and the base64url of the "
            "RFC 8785 JSON of exactly the key's RFC 7638 required members (spec §3.1)",
        )
    return key


def key_resolver(key_set: KeySet | None) -> KeyResolver:
    """A :data:`KeyResolver`: ``did:jwk`` kids resolve from themselves, others from ``key_set``.

    The resolver only finds a key; whether the key belongs to the message's
    ``from`` is the codec's check (spec §9.1, ``key-sender-mismatch``).
    """

    def resolve(kid: str) -> VerifyingKey:
        if kid.startswith(DID_JWK_PREFIX):
            return resolve_did_jwk(kid)
        if key_set is None:
            raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, f"no key set knows kid {kid!r}")
        return key_set.get(kid)

    return resolve


@dataclass(frozen=True, slots=True)
class PairwiseIdentity:
    """A buyer's pseudonym for one relationship (spec §3.1): a ``did:jwk`` and its key.

    The signing key's ``kid`` is ``identifier + "#0"``.
    """

    identifier: str
    signing_key: SigningKey = field(repr=False)

    @classmethod
    def generate(cls, alg: str = "EdDSA") -> PairwiseIdentity:
        """A fresh pseudonym with a fresh key pair (never reuse one across vendors).

        Raises:
            ValueError: ``alg`` is not EdDSA or ES256.
        """
        return cls.from_signing_key(SigningKey.generate(alg))

    @classmethod
    def from_signing_key(cls, key: SigningKey) -> PairwiseIdentity:
        """The pseudonym of an existing key (the ``kid`` is replaced by the did:jwk one)."""
        identifier = did_jwk_identifier(key.public())
        return cls(identifier, key.with_kid(identifier + DID_JWK_KEY_FRAGMENT))

    @classmethod
    def from_private_jwk(cls, jwk: Mapping[str, Any]) -> PairwiseIdentity:
        """Restore a pseudonym from its stored private JWK.

        Raises:
            InvalidKeyError: as :meth:`SigningKey.from_private_jwk`.
        """
        return cls.from_signing_key(SigningKey.from_private_jwk(jwk))

    @property
    def kid(self) -> str:
        """The key identifier: ``identifier#0``."""
        return self.signing_key.kid

    @property
    def key(self) -> SigningKey:
        """The signing key (the same object as :attr:`signing_key`)."""
        return self.signing_key

    def to_private_jwk(self) -> dict[str, str]:
        """The private JWK to store (0600) so that the pseudonym survives restarts."""
        return self.signing_key.to_private_jwk()

    def verifying_key(self) -> VerifyingKey:
        """The public key, as a receiver resolves it from the identifier."""
        return self.signing_key.public()
