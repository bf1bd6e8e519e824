"""Keys nobody owns and malleable signatures (spec §3.1, §8.4, §8.5; issue 9, D1-D3).

An Ed25519 key of small order, of mixed order or in a non-canonical encoding
has no single owner: anyone can "sign" under a small-order key, and the
holder of a mixed-order key can make signatures that one verifier accepts and
another refuses, to deny them later. The profile refuses such keys on import
and refuses signatures whose R is of small order or not canonical, or whose
S is not reduced. An ES256 signature has a twin (r, n - s) that verifies
too; the profile refuses the high-S twin, so the digest of an accepted
message is fixed. A did:jwk has one spelling.

The edge cases are published vectors (``data/ed25519_edge_cases.json``, with
their sources): RFC 8032 §7.1, the eight low-order points and their
non-canonical encodings, the twelve vectors of "Taming the many EdDSAs", and
one vector of each kind from C2SP/CCTV. The profile must refuse every one of
them that has a low-order, mixed-order or non-canonical point or an
unreduced S, and accept the known answers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium

from vrm_protocol.attestations import issue_attestation, verify_attestation
from vrm_protocol.canonical import b64url_decode, b64url_encode, canonical_json
from vrm_protocol.codec import build_message, decode, timestamp
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import MemoryReplayGuard
from vrm_protocol.http_binding import make_poll_token, verify_poll_token
from vrm_protocol.keys import (
    InvalidKeyError,
    KeySet,
    PairwiseIdentity,
    SigningKey,
    VerifyingKey,
    did_jwk_identifier,
    key_resolver,
    resolve_did_jwk,
)
from vrm_protocol.signing_profile import sign_json, verify_compact
from vrm_protocol.vocabulary import ATTESTATION_TYP, MESSAGE_TYP

DATA: Final = json.loads(
    (Path(__file__).parent / "data" / "ed25519_edge_cases.json").read_text("utf-8")
)
#: The order of the prime-order subgroup of edwards25519 (RFC 8032 §5.1: L).
L: Final = 2**252 + 27742317777372353535851937790883648493
#: The order of the P-256 group (SEC 2 §2.4.2: n).
P256_N: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
IDENTITY: Final = bytes([1]) + bytes(31)
#: (0, -1): the point of order 2.
ORDER_2: Final = bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
ORDER_8: Final = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
NOW: Final = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
VENDOR: Final = "https://dealer.vrm-protocol.example"


def _okp(x: bytes) -> dict[str, str]:
    return {"crv": "Ed25519", "kty": "OKP", "x": b64url_encode(x)}


def _did(public: bytes) -> str:
    return "did:jwk:" + b64url_encode(canonical_json(_okp(public)))


def _code(error: BaseException) -> ErrorCode:
    assert isinstance(error, ProtocolError), f"{type(error).__name__}: {error}"
    return error.code


def _profile_verdict(public: bytes, message: bytes, signature: bytes) -> ErrorCode | None:
    """What the profile concludes: None (verified), else the code of its refusal."""
    try:
        key = VerifyingKey.from_jwk(_okp(public))
        key.verify(message, signature)
    except RemoteProtocolError as error:
        return error.code
    return None


def _rfi(sender: str, **changes: Any) -> dict[str, Any]:
    message = build_message(
        "personal-rfi",
        {
            "intent": {"category": "vehicles.cars", "summary": "Family hybrid", "quantity": 1},
            "budget": {"max": {"amount": "32000", "currency": "GBP"}},
            "responseBy": timestamp(NOW + timedelta(days=2)),
        },
        sender=sender,
        to=[VENDOR],
        now=NOW,
    )
    message.update(changes)
    return message


def _assemble(header: dict[str, Any] | bytes, payload: bytes, signature: bytes) -> bytes:
    head = header if isinstance(header, bytes) else canonical_json(header)
    return b".".join(
        (
            b64url_encode(head).encode(),
            b64url_encode(payload).encode(),
            b64url_encode(signature).encode(),
        )
    )


def _signing_input(token: bytes) -> bytes:
    return token.rpartition(b".")[0]


# -- known answers ------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", DATA["rfc8032"], ids=lambda vector: vector["test"])
def test_rfc8032_known_answers_verify_and_sign(vector: dict[str, str]) -> None:
    public = bytes.fromhex(vector["publicKey"])
    message = bytes.fromhex(vector["message"])
    signature = bytes.fromhex(vector["signature"])
    assert _profile_verdict(public, message, signature) is None
    key = SigningKey.from_private_jwk(
        {**_okp(public), "d": b64url_encode(bytes.fromhex(vector["secretKey"]))}
    )
    assert key.sign(message) == signature
    tampered = bytearray(signature)
    tampered[0] ^= 1
    assert _profile_verdict(public, message, bytes(tampered)) is ErrorCode.BAD_SIGNATURE


# -- keys nobody owns: refused on import ----------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    DATA["lowOrderEncodings"],
    ids=lambda entry: entry["encoding"][:8] + entry.get("note", ""),
)
def test_low_order_keys_are_refused_everywhere(entry: dict[str, Any]) -> None:
    public = bytes.fromhex(entry["encoding"])
    with pytest.raises(InvalidKeyError) as caught:
        VerifyingKey.from_jwk(_okp(public))
    assert caught.value.code is ErrorCode.UNKNOWN_KEY
    with pytest.raises(RemoteProtocolError) as resolved:
        resolve_did_jwk(_did(public) + "#0")
    assert resolved.value.code is ErrorCode.UNKNOWN_KEY
    good = PairwiseIdentity.generate().verifying_key().to_jwk()
    with pytest.raises(InvalidKeyError):  # a JWKS holding such a key is refused whole
        KeySet.from_jwks({"keys": [good, {**_okp(public), "kid": "bad"}]})


def test_all_non_canonical_encodings_are_refused() -> None:
    """Every encoding with y >= p (19 values of y, either sign bit) is refused."""
    p = 2**255 - 19
    for y in range(p, 2**255):
        for sign in (0, 1):
            encoded = (y | sign << 255).to_bytes(32, "little")
            with pytest.raises(InvalidKeyError):
                VerifyingKey.from_jwk(_okp(encoded))


@pytest.mark.parametrize("torsion", [ORDER_2, ORDER_8], ids=["order-2", "order-8"])
def test_mixed_order_keys_are_refused(torsion: bytes) -> None:
    """A prime-order key plus a point of small order. (The order-2 case is the
    point libsodium before 1.0.20-stable of 2025-12-31 let through,
    CVE-2025-69277; pyproject requires a PyNaCl that bundles the fix.)"""
    honest = PairwiseIdentity.generate().verifying_key().public_members()
    mixed = sodium.crypto_core_ed25519_add(b64url_decode(honest["x"]), torsion)
    with pytest.raises(InvalidKeyError):
        VerifyingKey.from_jwk(_okp(mixed))


def test_a_mixed_order_key_can_sign_what_it_will_later_deny() -> None:
    """Why mixed-order keys are refused: the holder of a = log(A) publishes
    A' = A + T8 and grinds messages until H(R, A', M) is a multiple of 8, so
    that one verifier (cofactorless, as OpenSSL) accepts and the holder can
    point at others that do not. The profile never gets that far."""
    seed = secrets.token_bytes(32)
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    a = int.from_bytes(digest, "little")
    public = sodium.crypto_scalarmult_ed25519_base_noclamp(
        sodium.crypto_core_ed25519_scalar_reduce(bytes(digest) + bytes(32))
    )
    mixed = sodium.crypto_core_ed25519_add(public, ORDER_8)
    for counter in range(2000):
        message = f"I never said this ({counter})".encode()
        r = secrets.randbelow(L - 1) + 1
        big_r = sodium.crypto_scalarmult_ed25519_base_noclamp(r.to_bytes(32, "little"))
        h = int.from_bytes(hashlib.sha512(big_r + mixed + message).digest(), "little") % L
        if h % 8 == 0:
            break
    else:  # pragma: no cover - one message in 8 qualifies
        pytest.fail("no message found")
    signature = big_r + ((r + h * a) % L).to_bytes(32, "little")
    Ed25519PublicKey.from_public_bytes(mixed).verify(signature, message)  # a forgery elsewhere
    assert _profile_verdict(mixed, message, signature) is ErrorCode.UNKNOWN_KEY


# -- signatures nobody made: refused on verification ---------------------------------------------


def _scalar(seed: bytes) -> int:
    digest = bytearray(hashlib.sha512(seed).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    return int.from_bytes(digest, "little")


def test_small_order_r_is_refused_under_an_honest_key() -> None:
    """R = the identity and S = H(R, A, M)·a satisfies S·B = R + H·A for every
    verifier that does not look at R; the profile refuses it."""
    seed = secrets.token_bytes(32)
    key = SigningKey.from_private_jwk(
        {**_okp(sodium.crypto_sign_seed_keypair(seed)[0]), "d": b64url_encode(seed)}
    )
    public = b64url_decode(key.public().public_members()["x"])
    message = b"Sally accepts the offer"
    h = int.from_bytes(hashlib.sha512(IDENTITY + public + message).digest(), "little") % L
    signature = IDENTITY + (h * _scalar(seed) % L).to_bytes(32, "little")
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)  # OpenSSL accepts it
    assert _profile_verdict(public, message, signature) is ErrorCode.BAD_SIGNATURE


def test_unreduced_s_is_refused() -> None:
    key = SigningKey.generate()
    message = b"Sally accepts the offer"
    signature = key.sign(message)
    s = int.from_bytes(signature[32:], "little")
    twin = signature[:32] + (s + L).to_bytes(32, "little")
    public = b64url_decode(key.public().public_members()["x"])
    assert _profile_verdict(public, message, twin) is ErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize("vector", DATA["speccheck"], ids=lambda vector: str(vector["index"]))
def test_taming_the_many_eddsas_vectors_are_all_refused(vector: dict[str, Any]) -> None:
    """Each of the twelve has a small or mixed-order A or R, or S >= L."""
    verdict = _profile_verdict(
        bytes.fromhex(vector["pub_key"]),
        bytes.fromhex(vector["message"]),
        bytes.fromhex(vector["signature"]),
    )
    conditions = vector["conditions"]
    if conditions["A"] in ("small", "small*", "mixed"):
        assert verdict is ErrorCode.UNKNOWN_KEY
    else:
        assert verdict is ErrorCode.BAD_SIGNATURE


@pytest.mark.parametrize("vector", DATA["cctv"], ids=lambda vector: str(vector["number"]))
def test_cctv_vectors_one_of_each_kind(vector: dict[str, Any]) -> None:
    flags = set(vector["flags"] or ())
    verdict = _profile_verdict(
        bytes.fromhex(vector["key"]), vector["msg"].encode("ascii"), bytes.fromhex(vector["sig"])
    )
    if not flags:
        assert verdict is None  # the one ordinary signature of the set
    elif flags & {"low_order_A", "low_order_component_A", "non_canonical_A"}:
        assert verdict is ErrorCode.UNKNOWN_KEY
    else:
        assert verdict is ErrorCode.BAD_SIGNATURE


# -- the same attacks through the pipelines --------------------------------------------------------


def test_a_small_order_pseudonym_cannot_sign() -> None:
    """The forgery of issue 9: a did:jwk of the identity point and R = identity,
    S = 0, which verifies over any message under a permissive verifier."""
    sender = _did(IDENTITY)
    payload = canonical_json(_rfi(sender))
    header = {"alg": "EdDSA", "kid": sender + "#0", "typ": MESSAGE_TYP}
    token = _assemble(header, payload, IDENTITY + bytes(32))
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(IDENTITY + bytes(32), _signing_input(token))
    with pytest.raises(RemoteProtocolError) as caught:
        decode(token, resolve_key=key_resolver(None), receiver=VENDOR, now=NOW)
    assert caught.value.code is ErrorCode.UNKNOWN_KEY


def test_a_small_order_poller_cannot_poll() -> None:
    poller = _did(IDENTITY)
    payload = canonical_json(
        {
            "after": 0,
            "created": timestamp(NOW),
            "expires": timestamp(NOW + timedelta(minutes=4)),
            "from": poller,
            "to": [VENDOR],
        }
    )
    token = _assemble(
        {"alg": "EdDSA", "kid": poller + "#0", "typ": "vrm-poll+jws"}, payload, IDENTITY + bytes(32)
    )
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert caught.value.code is ErrorCode.UNKNOWN_KEY


def test_a_small_order_attestation_issuer_is_refused() -> None:
    sally = PairwiseIdentity.generate()
    issuer = _did(IDENTITY)
    payload = canonical_json(
        {
            "aud": [VENDOR],
            "claims": {"approves": "the deal"},
            "exp": timestamp(NOW + timedelta(days=1)),
            "iat": timestamp(NOW),
            "iss": issuer,
            "jti": "urn:uuid:7d1c3f4e-2b8a-4c55-9e61-0a3f5b2c9d10",
            "kind": "approval",
            "sub": sally.identifier,
        }
    )
    token = _assemble(
        {"alg": "EdDSA", "kid": issuer + "#0", "typ": ATTESTATION_TYP},
        payload,
        IDENTITY + bytes(32),
    )
    with pytest.raises(RemoteProtocolError) as caught:
        verify_attestation(
            {"kind": "approval", "issuer": issuer, "token": token.decode()},
            trusted_issuers={issuer: None},
            subject=sally.identifier,
            audience=VENDOR,
            now=NOW,
        )
    assert caught.value.code is ErrorCode.ATTESTATION_INVALID
    assert "unknown-key" in caught.value.detail


def test_an_issuer_jwks_with_a_small_order_key_is_refused_whole() -> None:
    issuer_key = SigningKey.generate()
    with pytest.raises(InvalidKeyError) as caught:
        KeySet.from_jwks({"keys": [issuer_key.public().to_jwk(), {**_okp(ORDER_8), "kid": "k"}]})
    assert caught.value.code is ErrorCode.UNKNOWN_KEY


# -- did:jwk has one spelling (D3) -----------------------------------------------------------------


def _spellings(identity: PairwiseIdentity) -> list[str]:
    members = identity.verifying_key().public_members()
    reordered = json.dumps(dict(reversed(list(members.items()))), separators=(",", ":"))
    spaced = json.dumps(members)
    return [
        "did:jwk:" + b64url_encode(reordered.encode()),
        "did:jwk:" + b64url_encode(spaced.encode()),
        "did:jwk:" + b64url_encode(canonical_json({**members, "use": "sig"})),
        "did:jwk:" + b64url_encode(canonical_json({**members, "alg": identity.signing_key.alg})),
        "did:jwk:" + b64url_encode(canonical_json({**members, "kid": "x"})),
        "did:jwk:" + b64url_encode(canonical_json(members) + b"\n"),
    ]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_non_canonical_did_jwk_spellings_are_refused(alg: str) -> None:
    identity = PairwiseIdentity.generate(alg)
    assert did_jwk_identifier(resolve_did_jwk(identity.kid)) == identity.identifier
    for spelling in _spellings(identity):
        with pytest.raises(RemoteProtocolError) as caught:
            resolve_did_jwk(spelling + "#0")
        assert caught.value.code is ErrorCode.UNKNOWN_KEY, spelling
        # ... and a correctly signed message under that spelling is refused.
        message = _rfi(spelling)
        token = sign_json(message, identity.signing_key.with_kid(spelling + "#0"))
        with pytest.raises(RemoteProtocolError) as refused:
            decode(token, resolve_key=key_resolver(None), receiver=VENDOR, now=NOW)
        assert refused.value.code is ErrorCode.UNKNOWN_KEY


def test_a_non_canonical_spelling_of_the_receiver_is_not_the_receiver() -> None:
    """D3: a did:jwk spelled another way is not that party (``to`` compares exactly)."""
    buyer = PairwiseIdentity.generate()
    vendor = SigningKey.generate()
    message = _rfi(VENDOR, to=[_spellings(buyer)[0]])
    with pytest.raises(RemoteProtocolError) as caught:
        decode(
            sign_json(message, vendor),
            resolve_key=key_resolver(KeySet([vendor.public()])),
            receiver=buyer.identifier,
            now=NOW,
        )
    assert caught.value.code is ErrorCode.WRONG_AUDIENCE


# -- ES256: one signature per message -------------------------------------------------------------


def _high_s_twin(token: bytes) -> bytes:
    head, _, signature = token.rpartition(b".")
    raw = b64url_decode(signature)
    s = int.from_bytes(raw[32:], "big")
    return head + b"." + b64url_encode(raw[:32] + (P256_N - s).to_bytes(32, "big")).encode()


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=64))
def test_es256_signatures_are_low_s(data: bytes) -> None:
    key = SigningKey.generate("ES256")
    signature = key.sign(data)
    assert int.from_bytes(signature[32:], "big") <= P256_N // 2


def test_the_high_s_twin_of_an_es256_message_is_refused() -> None:
    identity = PairwiseIdentity.generate("ES256")
    token = sign_json(_rfi(identity.identifier), identity.signing_key)
    twin = _high_s_twin(token)
    # The twin is a valid ECDSA signature: the curve does not tell them apart.
    public = resolve_did_jwk(identity.kid)
    members = public.public_members()
    point = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64url_decode(members["x"]), "big"),
        int.from_bytes(b64url_decode(members["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    raw = b64url_decode(twin.rpartition(b".")[2])
    point.verify(
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        _signing_input(twin),
        ec.ECDSA(hashes.SHA256()),
    )
    guard = MemoryReplayGuard()
    received = decode(token, resolve_key=key_resolver(None), receiver=VENDOR, now=NOW, replay=guard)
    guard.remember(
        received.message.from_, received.message.id, NOW + timedelta(days=1), received.digest
    )
    with pytest.raises(RemoteProtocolError) as caught:
        decode(twin, resolve_key=key_resolver(None), receiver=VENDOR, now=NOW, replay=guard)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE  # not a replay, not a new message
    with pytest.raises(RemoteProtocolError) as profile:
        verify_compact(twin, resolve_key=key_resolver(None))
    assert profile.value.code is ErrorCode.BAD_SIGNATURE


def test_high_s_is_refused_for_poll_tokens_and_attestations() -> None:
    poller = PairwiseIdentity.generate("ES256")
    token = make_poll_token(
        poller.signing_key, poller=poller.identifier, mailbox_owner=VENDOR, after=0, now=NOW
    )
    assert verify_poll_token(token, mailbox_owner=VENDOR, now=NOW).poller == poller.identifier
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(_high_s_twin(token), mailbox_owner=VENDOR, now=NOW)
    assert caught.value.code is ErrorCode.BAD_SIGNATURE
    issuer = SigningKey.generate("ES256")
    issuer_id = "https://credit-union.vrm-protocol.example"
    attestation = issue_attestation(
        kind="ability-to-pay",
        subject=poller.identifier,
        audience=[VENDOR],
        claims={},
        issuer_key=issuer,
        issuer_id=issuer_id,
        now=NOW,
    )
    twin = {**attestation, "token": _high_s_twin(attestation["token"].encode()).decode()}
    with pytest.raises(RemoteProtocolError) as refused:
        verify_attestation(
            twin,
            trusted_issuers={issuer_id: KeySet([issuer.public()])},
            subject=poller.identifier,
            audience=VENDOR,
            now=NOW,
        )
    assert "bad-signature" in refused.value.detail
