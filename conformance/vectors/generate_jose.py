"""Generate the JOSE test vectors: ``conformance/vectors/jose/*.json`` (spec §8, §14.2).

Run ``python -m conformance.vectors.generate_jose`` from the repository root
(or ``python conformance/vectors/generate_jose.py``). Output is
deterministic: the keys are fixed published test keys, the payload is
fixed, Ed25519 is deterministic and ES256 signatures use RFC 6979
deterministic nonces, so running it twice writes identical files. A test
(``tests/library/test_signing_profile_vectors.py``) regenerates the vectors
into a temporary directory and fails if the committed files differ.

The test keys (``jose/test-keys.jwks``, private members included) are for
these vectors ONLY. They are published in RFC 8037 and RFC 7515, or derived
from fixed labels below: never use them for anything else.

Attack tokens are assembled byte by byte here, not by the library's signer
(which refuses to make them); signatures come from the library's keys
(``cryptography`` underneath), HMAC from the standard library. The Ed25519
forgeries (keys and signatures nobody owns, spec §8.2, §8.4) are computed
with libsodium's point and scalar operations (PyNaCl): this module adds no
arithmetic of its own beyond adding the group order to a scalar.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl import bindings as sodium

from vrm_protocol.canonical import b64url_decode, b64url_encode, canonical_json, message_digest
from vrm_protocol.keys import PairwiseIdentity, SigningKey, did_jwk_identifier, thumbprint
from vrm_protocol.vocabulary import MESSAGE_TYP

__all__ = ["JOSE_DIR", "KEYS_FILE_NAME", "build_vectors", "main", "vector_keys", "write_vectors"]

JOSE_DIR: Final = Path(__file__).resolve().parent / "jose"
KEYS_FILE_NAME: Final = "test-keys.jwks"

# RFC 8037 Appendix A.1: the Ed25519 example key (TEST ONLY).
_VENDOR_ED25519: Final = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
# RFC 7515 Appendix A.3: the P-256 example key (TEST ONLY).
_VENDOR_P256: Final = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
}


#: The order L of the edwards25519 prime-order subgroup (RFC 8032 §5.1).
_ED25519_ORDER: Final = 2**252 + 27742317777372353535851937790883648493
#: The order n of the P-256 group (SEC 2 §2.4.2).
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
#: The identity point (0, 1), of order 1: every scalar multiple of it is itself.
_IDENTITY: Final = bytes([1]) + bytes(31)
#: The identity again, written with y = p + 1 (not canonical).
_IDENTITY_NON_CANONICAL: Final = bytes.fromhex(
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
)
#: A point of order 8 (C2SP/CCTV's list of low-order encodings).
_ORDER_EIGHT: Final = bytes.fromhex(
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"
)


def _ed25519_scalar(seed: bytes) -> bytes:
    """The secret scalar of an Ed25519 seed (RFC 8032 §5.1.5), reduced mod L."""
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    return sodium.crypto_core_ed25519_scalar_reduce(bytes(digest) + bytes(32))


def _challenge(point_r: bytes, public: bytes, message: bytes) -> bytes:
    """H(R || A || M) mod L, as RFC 8032 §5.1.7 computes it."""
    return sodium.crypto_core_ed25519_scalar_reduce(
        hashlib.sha512(point_r + public + message).digest()
    )


def _okp(public: bytes) -> dict[str, str]:
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(public)}


def _did_jwk_kid(public_members: Mapping[str, Any]) -> str:
    return "did:jwk:" + b64url_encode(canonical_json(dict(public_members))) + "#0"


def _ed25519_from_label(label: str) -> SigningKey:
    """A fixed Ed25519 key: the private key is SHA-256 of a public label (TEST ONLY)."""
    seed = hashlib.sha256(label.encode("utf-8")).digest()
    private = Ed25519PrivateKey.from_private_bytes(seed)
    x = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey.from_private_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(x), "d": b64url_encode(seed)}
    )


def vector_keys() -> dict[str, SigningKey]:
    """The named test keys of the vectors (TEST ONLY)."""
    buyer = PairwiseIdentity.from_signing_key(
        _ed25519_from_label("vrm-protocol test vectors: buyer pseudonym")
    )
    return {
        "vendor-ed25519": SigningKey.from_private_jwk(_VENDOR_ED25519),
        "vendor-p256": SigningKey.from_private_jwk(_VENDOR_P256),
        "buyer-did-jwk": buyer.signing_key,
        "attacker-ed25519": _ed25519_from_label("vrm-protocol test vectors: attacker"),
    }


def _payload(sender: str, receiver: str) -> dict[str, Any]:
    return {
        "vrm": "1.0",
        "type": "personal-rfi",
        "id": "urn:uuid:7d1c3f4e-2b8a-4c55-9e61-0a3f5b2c9d10",
        "thread": "urn:uuid:7d1c3f4e-2b8a-4c55-9e61-0a3f5b2c9d10",
        "from": sender,
        "to": [receiver],
        "created": "2026-11-23T10:00:00Z",
        "expires": "2026-11-24T10:00:00Z",
        "body": {
            "intent": {
                "category": "vehicles.cars",
                "summary": "Child-friendly, low-emission family car with a good sound system",
            },
            "responseBy": "2026-11-30T10:00:00Z",
        },
    }


# -- assembling tokens ----------------------------------------------------------------------------

Signer = Callable[[bytes], bytes]


def _assemble(
    header: Mapping[str, Any] | bytes,
    payload: bytes,
    sign: Signer | None,
    *,
    encode_payload: bool = True,
) -> str:
    header_bytes = header if isinstance(header, bytes) else canonical_json(dict(header))
    payload_segment = b64url_encode(payload) if encode_payload else payload.decode("utf-8")
    signing_input = f"{b64url_encode(header_bytes)}.{payload_segment}".encode()
    signature = sign(signing_input) if sign is not None else b""
    return f"{signing_input.decode()}.{b64url_encode(signature)}"


def _header(key: SigningKey, **members: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid, "typ": MESSAGE_TYP}
    for name, value in members.items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    return header


def _flip_signature_bit(token: str) -> str:
    head, _, signature = token.rpartition(".")
    raw = bytearray(b64url_decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{b64url_encode(bytes(raw))}"


def _der_signature(key_jwk: Mapping[str, str], signing_input: bytes) -> bytes:
    private = ec.derive_private_key(
        int.from_bytes(b64url_decode(key_jwk["d"]), "big"), ec.SECP256R1()
    )
    return private.sign(signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


# -- the vectors ----------------------------------------------------------------------------------


def build_vectors() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """All JOSE vectors by file name, and the test-key document.

    Each vector names the receiver's known keys (``jwks``, public members
    only); ``did:jwk`` kids resolve from themselves. ``expected.valid`` is
    ``true`` when the token passes every JOSE stage of the inbound pipeline:
    limits, framing, protected header, key, signature and canonical payload.
    """
    keys = vector_keys()
    ed, p256, buyer, attacker = (
        keys["vendor-ed25519"],
        keys["vendor-p256"],
        keys["buyer-did-jwk"],
        keys["attacker-ed25519"],
    )
    buyer_id = did_jwk_identifier(buyer.public())
    vendor_id = "https://dealer.vrm-protocol.example"
    receiver_keys = {"keys": [ed.public().to_jwk(), p256.public().to_jwk()]}
    no_keys: dict[str, Any] = {"keys": []}
    payload = canonical_json(_payload(buyer_id, vendor_id))
    vendor_payload = canonical_json(_payload(vendor_id, buyer_id))

    vectors: dict[str, dict[str, Any]] = {}

    def add(
        name: str,
        description: str,
        requirement: str,
        token: str,
        expected: dict[str, Any],
        *,
        jwks: Mapping[str, Any] = receiver_keys,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        vector: dict[str, Any] = {
            "id": f"jose-{name}",
            "description": description,
            "requirement": requirement,
            "typ": MESSAGE_TYP,
            "token": token,
            "jwks": dict(jwks),
        }
        if limits is not None:
            vector["limits"] = dict(limits)
        vector["expected"] = expected
        vectors[f"{name}.json"] = vector

    def valid(token: str, key: SigningKey, signed_payload: bytes) -> dict[str, Any]:
        return {
            "valid": True,
            "kid": key.kid,
            "digest": message_digest(token.encode("ascii")),
            "payload": json.loads(signed_payload),
        }

    def invalid(code: str) -> dict[str, Any]:
        return {"valid": False, "error": code}

    # -- valid tokens --
    token = _assemble(_header(ed), vendor_payload, ed.sign)
    add(
        "valid-eddsa",
        "A vendor's EdDSA (Ed25519) message, kid = RFC 7638 thumbprint of a JWKS key.",
        "VRM-SIG-001",
        token,
        valid(token, ed, vendor_payload),
    )
    token = _assemble(_header(p256), vendor_payload, p256.sign)
    add(
        "valid-es256",
        "A vendor's ES256 message; the signature is the 64-byte R || S (RFC 7518 §3.4).",
        "VRM-SIG-003",
        token,
        valid(token, p256, vendor_payload),
    )
    token = _assemble(_header(buyer), payload, buyer.sign)
    add(
        "valid-did-jwk",
        "A buyer's message signed by its pairwise did:jwk key (kid = identifier + '#0'), "
        "resolved from the kid itself with no JWKS.",
        "VRM-SIG-013",
        token,
        valid(token, buyer, payload),
        jwks=no_keys,
    )
    reordered = (
        f'{{"typ": "{MESSAGE_TYP}", "kid": {json.dumps(ed.kid)}, "alg": "EdDSA"}}'
    ).encode()
    token = _assemble(reordered, vendor_payload, ed.sign)
    add(
        "valid-header-member-order",
        "Protected header members in another order with spaces: only the payload must be "
        "canonical, the header need only be a JSON object with exactly alg, kid, typ.",
        "VRM-SIG-001",
        token,
        valid(token, ed, vendor_payload),
    )

    # -- algorithms (RFC 8725 §2.1, §3.1) --
    for spelling, name in (("none", "lower"), ("None", "title"), ("NONE", "upper")):
        add(
            f"alg-none-{name}",
            f"alg {spelling!r} with an empty signature: refused in every letter case.",
            "VRM-SIG-002",
            _assemble(_header(ed, alg=spelling), vendor_payload, None),
            invalid("unsupported-algorithm"),
        )
    public_secret = canonical_json(ed.public().to_jwk())
    add(
        "alg-hs256-public-key",
        "HS256 keyed with the canonical JSON of the sender's public JWK (algorithm confusion).",
        "VRM-SIG-002",
        _assemble(
            _header(ed, alg="HS256"),
            vendor_payload,
            lambda data: hmac.new(public_secret, data, hashlib.sha256).digest(),
        ),
        invalid("unsupported-algorithm"),
    )
    add(
        "alg-wrong-case",
        "alg 'eddsa': algorithm names compare case-sensitively.",
        "VRM-SIG-002",
        _assemble(_header(ed, alg="eddsa"), vendor_payload, ed.sign),
        invalid("unsupported-algorithm"),
    )
    add(
        "alg-key-type-mismatch",
        "Header alg ES256 with the kid of the receiver's Ed25519 key, signed by a P-256 key: "
        "the key's type decides the algorithm, never the header.",
        "VRM-SIG-002",
        _assemble(_header(ed, alg="ES256"), vendor_payload, p256.sign),
        invalid("unknown-key"),
    )

    # -- header parameters (RFC 8725 §3.10, RFC 7515 §4.1.11) --
    attacker_header = _header(ed, kid=attacker.kid)
    injected: dict[str, Any] = {
        "jku": "http://127.0.0.1:9/jwks.json",
        "jwk": attacker.public().to_jwk(),
        "x5u": "http://127.0.0.1:9/cert.pem",
        "x5c": [b64url_encode(b"not a certificate")],
    }
    for parameter, value in injected.items():
        add(
            f"header-{parameter}",
            f"An injected {parameter} with a token signed by the attacker's key: refused "
            "without fetching or trusting anything it names.",
            "VRM-SIG-006",
            _assemble({**attacker_header, parameter: value}, vendor_payload, attacker.sign),
            invalid("invalid-header"),
        )
    add(
        "header-crit-unknown",
        "crit naming an extension the profile does not define.",
        "VRM-SIG-007",
        _assemble(
            {
                **_header(ed),
                "crit": ["org.example.must-understand"],
                "org.example.must-understand": True,
            },
            vendor_payload,
            ed.sign,
        ),
        invalid("unsupported-critical-header"),
    )
    add(
        "header-b64-false",
        "b64: false (RFC 7797) without crit, payload still encoded: the member is not allowed.",
        "VRM-SIG-006",
        _assemble({**_header(ed), "b64": False}, vendor_payload, ed.sign),
        invalid("invalid-header"),
    )
    add(
        "header-b64-false-unencoded",
        "b64: false with crit ['b64'] and an unencoded payload: the header is judged before "
        "the payload segment, and crit is refused.",
        "VRM-SIG-007",
        _assemble(
            {**_header(ed), "b64": False, "crit": ["b64"]},
            vendor_payload.replace(b".", b"_"),
            ed.sign,
            encode_payload=False,
        ),
        invalid("unsupported-critical-header"),
    )
    duplicate_header = (
        f'{{"alg":"EdDSA","alg":"none","kid":{json.dumps(ed.kid)},"typ":"{MESSAGE_TYP}"}}'
    ).encode()
    add(
        "header-duplicate-member",
        "The protected header repeats alg (EdDSA, then none).",
        "VRM-SIG-012",
        _assemble(duplicate_header, vendor_payload, ed.sign),
        invalid("duplicate-member"),
    )
    add(
        "typ-wrong",
        "typ 'JWT' instead of 'vrm+jws' (RFC 8725 §3.11 explicit typing).",
        "VRM-SIG-005",
        _assemble(_header(ed, typ="JWT"), vendor_payload, ed.sign),
        invalid("invalid-typ"),
    )
    add(
        "typ-missing",
        "No typ in the protected header.",
        "VRM-SIG-005",
        _assemble(_header(ed, typ=None), vendor_payload, ed.sign),
        invalid("invalid-typ"),
    )
    add(
        "kid-missing",
        "No kid in the protected header: the key would have to be guessed.",
        "VRM-SIG-006",
        _assemble(_header(ed, kid=None), vendor_payload, ed.sign),
        invalid("invalid-header"),
    )

    # -- keys --
    add(
        "kid-unknown",
        "Signed by a key the receiver does not know, under that key's thumbprint.",
        "VRM-SIG-013",
        _assemble(_header(attacker), vendor_payload, attacker.sign),
        invalid("unknown-key"),
    )
    add(
        "kid-did-jwk-wrong-fragment",
        "A did:jwk kid ending in '#1': did:jwk has exactly one key, '#0'.",
        "VRM-SIG-013",
        _assemble(_header(buyer, kid=buyer_id + "#1"), payload, buyer.sign),
        invalid("unknown-key"),
        jwks=no_keys,
    )

    # -- signatures --
    add(
        "signature-bad",
        "One bit of a valid EdDSA signature flipped.",
        "VRM-SIG-009",
        _flip_signature_bit(_assemble(_header(ed), vendor_payload, ed.sign)),
        invalid("bad-signature"),
    )
    add(
        "signature-empty",
        "An empty signature segment under an allowed algorithm.",
        "VRM-SIG-009",
        _assemble(_header(ed), vendor_payload, None),
        invalid("bad-signature"),
    )
    add(
        "signature-other-key",
        "A valid signature by another Ed25519 key under the receiver-known kid.",
        "VRM-SIG-009",
        _assemble(_header(ed), vendor_payload, attacker.sign),
        invalid("bad-signature"),
    )
    add(
        "es256-der-signature",
        "An ES256 signature in DER (ASN.1) encoding instead of the 64-byte R || S.",
        "VRM-SIG-003",
        _assemble(_header(p256), vendor_payload, lambda data: _der_signature(_VENDOR_P256, data)),
        invalid("bad-signature"),
    )

    # -- keys nobody owns (spec §8.4, VRM-SIG-022) --
    small_kid = _did_jwk_kid(_okp(_IDENTITY))
    add(
        "key-small-order-did-jwk",
        "A did:jwk of the identity point (small order), with R = identity and S = 0: a "
        "'signature' over any message that a verifier checking neither A nor R accepts. "
        "The key is refused on import.",
        "VRM-SIG-022",
        _assemble(
            {"alg": "EdDSA", "kid": small_kid, "typ": MESSAGE_TYP},
            canonical_json(_payload(small_kid[:-2], vendor_id)),
            lambda data: _IDENTITY + bytes(32),
        ),
        invalid("unknown-key"),
        jwks=no_keys,
    )
    odd_kid = _did_jwk_kid(_okp(_IDENTITY_NON_CANONICAL))
    add(
        "key-non-canonical-point",
        "A did:jwk whose x is the identity written with y = p + 1 (not canonical, and of "
        "small order), with R = identity and S = 0. The key is refused on import.",
        "VRM-SIG-022",
        _assemble(
            {"alg": "EdDSA", "kid": odd_kid, "typ": MESSAGE_TYP},
            canonical_json(_payload(odd_kid[:-2], vendor_id)),
            lambda data: _IDENTITY + bytes(32),
        ),
        invalid("unknown-key"),
        jwks=no_keys,
    )
    mixed_seed = hashlib.sha256(b"vrm-protocol test vectors: mixed-order key").digest()
    mixed_scalar = _ed25519_scalar(mixed_seed)
    mixed_public = sodium.crypto_core_ed25519_add(
        sodium.crypto_scalarmult_ed25519_base_noclamp(mixed_scalar), _ORDER_EIGHT
    )
    mixed_kid = _did_jwk_kid(_okp(mixed_public))
    mixed_header = {"alg": "EdDSA", "kid": mixed_kid, "typ": MESSAGE_TYP}
    mixed_payload = canonical_json(_payload(mixed_kid[:-2], vendor_id))

    def mixed_sign(data: bytes) -> bytes:
        # The key holder tries nonces until H(R, A', M) is a multiple of 8: then
        # the order-8 part of A' vanishes and S = r + H·a verifies without the
        # cofactor, while a cofactored verifier may differ on other messages.
        for counter in range(4096):
            nonce = sodium.crypto_core_ed25519_scalar_reduce(
                hashlib.sha512(mixed_seed + counter.to_bytes(4, "big")).digest()
            )
            point_r = sodium.crypto_scalarmult_ed25519_base_noclamp(nonce)
            h = _challenge(point_r, mixed_public, data)
            if h[0] % 8 == 0:
                scalar_s = sodium.crypto_core_ed25519_scalar_add(
                    nonce, sodium.crypto_core_ed25519_scalar_mul(h, mixed_scalar)
                )
                return point_r + scalar_s
        raise AssertionError("no nonce found")  # pragma: no cover - one in eight works

    add(
        "key-mixed-order-did-jwk",
        "A did:jwk of a prime-order key plus a point of order 8 (mixed order), with a "
        "signature its holder made to verify without the cofactor. A key with a small-order "
        "component lets its holder sign what some verifiers refuse, and deny it later: the "
        "key is refused on import.",
        "VRM-SIG-022",
        _assemble(mixed_header, mixed_payload, mixed_sign),
        invalid("unknown-key"),
        jwks=no_keys,
    )
    small_order_jwk = {**_okp(_ORDER_EIGHT), "alg": "EdDSA", "use": "sig"}
    small_order_jwk["kid"] = thumbprint(small_order_jwk)
    add(
        "key-small-order-in-jwks",
        "A correct signature by a key the receiver knows, but the JWKS that publishes it also "
        "holds a key of small order: the key set is refused whole.",
        "VRM-SIG-022",
        _assemble(_header(ed), vendor_payload, ed.sign),
        invalid("unknown-key"),
        jwks={"keys": [*receiver_keys["keys"], small_order_jwk]},
    )
    buyer_members = buyer.public().public_members()
    reordered_did = (
        "did:jwk:"
        + b64url_encode(json.dumps(dict(reversed(list(buyer_members.items())))).encode())
        + "#0"
    )
    add(
        "did-jwk-non-canonical",
        "The buyer's own key under a did:jwk spelled another way (members reordered, with "
        "spaces), correctly signed: one key has one did:jwk, and any other spelling is refused.",
        "VRM-SIG-026",
        _assemble(
            _header(buyer, kid=reordered_did),
            canonical_json(_payload(reordered_did[:-2], vendor_id)),
            buyer.sign,
        ),
        invalid("unknown-key"),
        jwks=no_keys,
    )

    # -- signatures nobody made (spec §8.2, VRM-SIG-023, VRM-SIG-024) --
    ed_public = b64url_decode(_VENDOR_ED25519["x"])
    ed_scalar = _ed25519_scalar(b64url_decode(_VENDOR_ED25519["d"]))

    def small_order_r(point_r: bytes) -> Signer:
        def sign(data: bytes) -> bytes:
            # S·B = R + H·A holds with S = H·a when R is the identity: no nonce at all.
            scalar_s = sodium.crypto_core_ed25519_scalar_mul(
                _challenge(point_r, ed_public, data), ed_scalar
            )
            return point_r + scalar_s

        return sign

    add(
        "signature-small-order-r",
        "An EdDSA signature under the receiver's known key whose R is the identity point "
        "(small order) and S = H(R, A, M)·a: it satisfies S·B = R + H·A, but R must not be of "
        "small order.",
        "VRM-SIG-023",
        _assemble(_header(ed), vendor_payload, small_order_r(_IDENTITY)),
        invalid("bad-signature"),
    )
    add(
        "signature-non-canonical-r",
        "As signature-small-order-r, with R written non-canonically (the identity with y = p + 1).",
        "VRM-SIG-023",
        _assemble(_header(ed), vendor_payload, small_order_r(_IDENTITY_NON_CANONICAL)),
        invalid("bad-signature"),
    )

    def unreduced(data: bytes) -> bytes:
        signature = ed.sign(data)
        scalar_s = int.from_bytes(signature[32:], "little") + _ED25519_ORDER
        return signature[:32] + scalar_s.to_bytes(32, "little")

    add(
        "signature-s-not-reduced",
        "A valid EdDSA signature with L added to S: the same equation holds, but S must be "
        "less than L (RFC 8032 §5.1.7), or every signature would have a second spelling.",
        "VRM-SIG-023",
        _assemble(_header(ed), vendor_payload, unreduced),
        invalid("bad-signature"),
    )

    def high_s(data: bytes) -> bytes:
        signature = p256.sign(data)  # low-S, as the profile sends
        scalar_s = _P256_ORDER - int.from_bytes(signature[32:], "big")
        return signature[:32] + scalar_s.to_bytes(32, "big")

    add(
        "es256-high-s",
        "The high-S twin (r, n - s) of a valid ES256 signature: it verifies as plain ECDSA, "
        "but would give the same message a second token and digest. Only low-S is accepted.",
        "VRM-SIG-024",
        _assemble(_header(p256), vendor_payload, high_s),
        invalid("bad-signature"),
    )

    # -- framing --
    good = _assemble(_header(ed), vendor_payload, ed.sign)
    head, body, signature = good.split(".")
    add(
        "truncated",
        "Two segments: the signature segment dropped.",
        "VRM-SIG-004",
        f"{head}.{body}",
        invalid("malformed-jws"),
    )
    add(
        "four-segments",
        "Four dot-separated segments.",
        "VRM-SIG-004",
        f"{good}.{signature}",
        invalid("malformed-jws"),
    )
    add(
        "padding",
        "The header segment carries base64 padding ('='): segments are unpadded base64url.",
        "VRM-SIG-004",
        f"{head}=.{body}.{signature}",
        invalid("malformed-jws"),
    )
    add(
        "standard-base64-alphabet",
        "A segment uses '+' from the standard base64 alphabet instead of base64url.",
        "VRM-SIG-004",
        f"{head}.{body}.{signature[:10]}+{signature[11:]}",
        invalid("malformed-jws"),
    )
    last = signature[-1]
    # 64 signature bytes leave 4 unused bits in the last character; setting one of
    # them gives another string for the same bytes (a malleable token, spec §8.5).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    nonzero = alphabet[alphabet.index(last) | 0x01]
    add(
        "non-canonical-base64",
        "The signature's last character has a non-zero unused bit: the same bytes under "
        "another string. Strict base64url refuses it, so a token has one spelling.",
        "VRM-SIG-004",
        f"{head}.{body}.{signature[:-1]}{nonzero}",
        invalid("malformed-jws"),
    )

    # -- payload bytes --
    duplicated = vendor_payload.replace(
        b'"type":"personal-rfi"', b'"type":"personal-rfi","type":"receipt"', 1
    )
    add(
        "payload-duplicate-member",
        "The signed payload repeats the member 'type'.",
        "VRM-SIG-012",
        _assemble(_header(ed), duplicated, ed.sign),
        invalid("duplicate-member"),
    )
    pretty = json.dumps(json.loads(vendor_payload), indent=2).encode("utf-8")
    add(
        "payload-non-canonical",
        "The same members, signed pretty-printed (not RFC 8785).",
        "VRM-SIG-011",
        _assemble(_header(ed), pretty, ed.sign),
        invalid("non-canonical-payload"),
    )
    add(
        "payload-not-an-object",
        "The signed payload is a JSON array.",
        "VRM-SIG-011",
        _assemble(_header(ed), b"[1,2,3]", ed.sign),
        invalid("malformed-json"),
    )

    # -- limits (receiver-declared, given in the vector) --
    deep: Any = "bottom"
    for _ in range(20):
        deep = [deep]
    deep_payload = canonical_json(
        {**_payload(vendor_id, buyer_id), "extensions": {"org.example.deep": deep}}
    )
    add(
        "limit-depth",
        "A payload nested 22 deep (object, extensions, 20 arrays) where the limit is 16.",
        "VRM-HTTP-016",
        _assemble(_header(ed), deep_payload, ed.sign),
        invalid("nesting-too-deep"),
        limits={"maxMessageBytes": 65536, "maxDepth": 16},
    )
    add(
        "limit-size",
        "A valid token one byte over a declared maxMessageBytes.",
        "VRM-HTTP-015",
        good,
        invalid("payload-too-large"),
        limits={"maxMessageBytes": len(good) - 1, "maxDepth": 16},
    )

    key_document = {
        "description": "TEST ONLY. Private keys of the JOSE test vectors: the Ed25519 key of "
        "RFC 8037 Appendix A.1, the P-256 key of RFC 7515 Appendix A.3, and keys derived "
        "from public labels (see conformance/vectors/generate_jose.py). Never use them "
        "for anything but these vectors.",
        "keys": {name: key.to_private_jwk() for name, key in keys.items()},
        "identifiers": {"buyer-did-jwk": buyer_id, "vendor": vendor_id},
    }
    return vectors, key_document


def _render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_vectors(directory: Path = JOSE_DIR) -> list[Path]:
    """Write every vector and the test-key file into ``directory``; return the paths."""
    vectors, key_document = build_vectors()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, vector in sorted(vectors.items()):
        path = directory / name
        path.write_text(_render(vector), encoding="utf-8")
        written.append(path)
    keys_path = directory / KEYS_FILE_NAME
    keys_path.write_text(_render(key_document), encoding="utf-8")
    written.append(keys_path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write the vectors (default ``conformance/vectors/jose``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=JOSE_DIR, help="output directory")
    arguments = parser.parse_args(argv)
    for path in write_vectors(arguments.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
