"""The suite's own verifier: a second, independent judge of what the target signs.

The suite judges every token the target sends (offers, receipts, replies,
notices, problem reports, poll tokens, a co-decision-maker's attestations)
and every JWKS it publishes with :mod:`vrm_protocol`, the code it certifies.
A defect of the library's signing profile (a small-order key it accepted, a
header rule it forgot) would then be inherited by the judge and
hide in both. This module re-implements stages 3 to 7 of the receiver's
processing order (spec §8.6: size and framing, protected header, key,
signature, payload bytes) and the key-sender binding of stage 10 from the
spec's text alone, with ``cryptography`` (OpenSSL) for the two signature
algorithms and its own arithmetic for the Ed25519 group checks the spec adds
(§8.2, §8.4: VRM-SIG-022, VRM-SIG-023). It imports nothing of
``vrm_protocol`` (an import-linter contract keeps it so) and nothing of
libsodium, the library's Ed25519 engine.

:class:`Judge` compares its opinion with the library's verdict on the same
token. Any disagreement is a harness error of the check during which it
happened (the runner reads :attr:`Judge.disagreements`): the suite cannot
tell which of its two verifiers is wrong, so it blames neither the target
nor passes it silently.

Where the spec is exact the judge follows the spec, not the library: a
vendor's ``kid`` is resolved as the RFC 7638 thumbprint of a current key of
its JWKS (VRM-SIG-013), never by a ``kid`` member the JWKS claims; a JWKS is
imported when a key is needed (stage 5), so a malformed token is refused for
its framing first. Where the spec leaves a choice (a JWK's ``alg``, ``use``,
``key_ops`` or X.509 members, a ``kid`` published twice), it refuses what a
key set that names one key per signing use would never hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "ATTESTATION_TYP",
    "MESSAGE_TYP",
    "POLL_TYP",
    "SIGNING_STAGE_CODES",
    "Disagreement",
    "Judge",
    "JudgeLimits",
    "Opinion",
    "canonical_json",
    "check_jwks",
    "compare",
    "verify_token",
]

#: The ``typ`` of a message (spec §8.2), of a mailbox poll token (§11.4) and
#: of an attestation (§10).
MESSAGE_TYP: Final = "vrm+jws"
POLL_TYP: Final = "vrm-poll+jws"
ATTESTATION_TYP: Final = "vrm-attestation+jws"
#: The allow-list of spec §8.1.
_ALGORITHMS: Final = frozenset({"EdDSA", "ES256"})
#: The only protected header parameters (spec §8.2, VRM-SIG-001).
_HEADER_PARAMETERS: Final = frozenset({"alg", "kid", "typ"})
_DID_JWK_PREFIX: Final = "did:jwk:"
_DID_JWK_FRAGMENT: Final = "#0"
#: Private-key members of a JWK (RFC 7518 §6, RFC 8037 §2): a JWKS publishes
#: public key members only (VRM-SIG-015).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_X509_MEMBERS: Final = frozenset({"x5u", "x5c", "x5t", "x5t#S256"})
#: RFC 7638 §3.2: the required members of each key type.
_REQUIRED: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("OKP", "Ed25519"): ("crv", "kty", "x"),
    ("EC", "P-256"): ("crv", "kty", "x", "y"),
}
_ALG_OF: Final[dict[tuple[str, str], str]] = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}

#: The codes of stages 3 to 7 of spec §8.6, the stages this judge re-implements.
SIGNING_STAGE_CODES: Final = frozenset(
    {
        "payload-too-large",
        "malformed-jws",
        "nesting-too-deep",
        "duplicate-member",
        "unsupported-algorithm",
        "unsupported-critical-header",
        "invalid-header",
        "invalid-typ",
        "unknown-key",
        "bad-signature",
        "malformed-json",
        "non-canonical-payload",
    }
)
#: Stages 8 and 9 (version, type, schema): judged before the binding of stage
#: 10, so a token refused there says nothing about its binding.
_BEFORE_BINDING: Final = frozenset(
    {"unsupported-version", "unknown-message-type", "schema-invalid"}
)
_KEY_SENDER_MISMATCH: Final = "key-sender-mismatch"


@dataclass(frozen=True, slots=True)
class JudgeLimits:
    """The receiver's limits the judge applies (spec §11.6; the suite's defaults)."""

    max_message_bytes: int = 65536
    max_depth: int = 16
    max_array_items: int = 256
    max_string_length: int = 16384


@dataclass(frozen=True, slots=True)
class Opinion:
    """What the judge concluded about one token."""

    #: The code of the first failing check of stages 3-7, ``None`` when all passed.
    code: str | None
    detail: str = ""
    #: The ``kid`` that verified the token (valid tokens only).
    kid: str | None = None
    #: The parsed payload (valid tokens only).
    payload: dict[str, Any] | None = None
    #: Stage 10: whether the verifying key belongs to the payload's ``from``
    #: (``None`` when the token did not pass stages 3-7).
    bound: bool | None = None

    @property
    def ok(self) -> bool:
        """Whether the token passed stages 3 to 7."""
        return self.code is None


class _Refused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# -- strict base64url (spec §8.2: one spelling per byte string) -------------------------------

_B64URL: Final = re.compile(rb"[A-Za-z0-9_-]*")


def _b64url(segment: bytes | str, what: str) -> bytes:
    raw = segment.encode("ascii", "replace") if isinstance(segment, str) else segment
    if _B64URL.fullmatch(raw) is None or len(raw) % 4 == 1:
        raise _Refused("malformed-jws", f"{what} is not unpadded base64url")
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as error:
        raise _Refused("malformed-jws", f"{what}: {error}") from None
    # Non-zero unused trailing bits would be a second spelling of the same bytes.
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != raw:
        raise _Refused("malformed-jws", f"{what} is not the one base64url spelling of its bytes")
    return decoded


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- JSON: duplicate-free parsing and RFC 8785 serialization -----------------------------------


class _Duplicate(Exception):
    pass


class _NotJson(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _Duplicate(sorted({name for name in names if names.count(name) > 1})[0])
    return dict(pairs)


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _parse(raw: bytes) -> Any:
    """Strict UTF-8 JSON. Raises _Duplicate or _NotJson."""
    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _NotJson(str(error)) from None


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
_ESCAPES.update({"\f": "\\f", "\r": "\\r"})


def _string(value: str) -> str:
    value.encode("utf-8")  # a lone surrogate has no UTF-8 form, hence no canonical one
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _number(value: int | float) -> str:
    """ECMAScript's Number::toString of the double nearest ``value`` (RFC 8785 §3.2.2.3)."""
    number = float(value)  # OverflowError beyond the double range: no canonical form
    if not math.isfinite(number):
        raise ValueError("not a finite double")
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # repr is the shortest round-tripping decimal; ECMAScript picks the same digits.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    k, n = len(digits), exponent + len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        power = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"
    return sign + text


def _canonical(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        # Members sorted by their names' UTF-16 code units (RFC 8785 §3.2.3).
        names = sorted(value, key=lambda name: name.encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(_string(name) + ":" + _canonical(value[name]) for name in names) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 serialization of a JSON value (the judge's own).

    Raises:
        ValueError: the value has no canonical form (a lone surrogate, a
            number beyond the double range).
    """
    try:
        return _canonical(value).encode("utf-8")
    except (UnicodeEncodeError, OverflowError) as error:
        raise ValueError(str(error)) from None


def judge_payload(raw: bytes) -> dict[str, Any]:
    """Stage 7 (spec §8.3): UTF-8 JSON, an object, no repeated member, its own
    RFC 8785 serialization. Returns the parsed object.

    Raises:
        _Refused: malformed-json, duplicate-member or non-canonical-payload.
    """
    try:
        document = _parse(raw)
    except _Duplicate as error:
        raise _Refused("duplicate-member", f"the payload repeats {error}") from None
    except _NotJson as error:
        raise _Refused("malformed-json", str(error)) from None
    if not isinstance(document, dict):
        raise _Refused("malformed-json", "the payload is not a JSON object")
    try:
        canonical = canonical_json(document)
    except ValueError as error:
        raise _Refused(
            "non-canonical-payload", f"the payload has no canonical form: {error}"
        ) from None
    if canonical != raw:
        raise _Refused("non-canonical-payload", "the payload is not its RFC 8785 serialization")
    return document


# -- limits, judged on the raw bytes (spec §8.6 stage 3, §11.6) --------------------------------


def _check_limits(raw: bytes, limits: JudgeLimits, what: str) -> None:
    """One pass over the bytes: string tokens as written, then nesting and array length."""
    in_string = escaped = False
    start = 0
    for index, byte in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # the closing quote
                in_string = False
                if index - start + 1 > limits.max_string_length:
                    raise _Refused("payload-too-large", f"{what}: a string is too long")
        elif byte == 0x22:
            in_string, start = True, index
    if in_string and len(raw) - start > limits.max_string_length:
        raise _Refused("payload-too-large", f"{what}: a string is too long")
    # Containers: -1 for an object, else the commas seen directly in the array.
    stack: list[int] = []
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            stack.append(0 if byte == 0x5B else -1)
            if len(stack) > limits.max_depth:
                raise _Refused("nesting-too-deep", f"{what} nests deeper than {limits.max_depth}")
        elif byte in b"]}":
            if stack:
                stack.pop()
        elif byte == 0x2C and stack and stack[-1] >= 0:
            stack[-1] += 1
            if stack[-1] >= limits.max_array_items:
                raise _Refused("payload-too-large", f"{what}: an array is too long")


# -- Ed25519 group arithmetic (spec §8.2, §8.4) -------------------------------------------------

_P: Final = 2**255 - 19
_D: Final = -121665 * pow(121666, _P - 2, _P) % _P
_L: Final = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1: Final = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)
_IDENTITY: Final[_Point] = (0, 1, 1, 0)


def _decode_point(encoded: bytes) -> _Point | None:
    """The point of a 32-byte encoding, or ``None`` when it is not the
    canonical encoding of a curve point (RFC 8032 §5.1.3, refusing y >= p and
    the negative zero x)."""
    if len(encoded) != 32:
        return None
    number = int.from_bytes(encoded, "little")
    sign, y = number >> 255, number & ((1 << 255) - 1)
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        x = x * _SQRT_M1 % _P
        if (v * x * x - u) % _P != 0:
            return None
    if x == 0 and sign == 1:
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    cc, dd = 2 * t1 * t2 * _D % _P, 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _multiply(scalar: int, point: _Point) -> _Point:
    result = _IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % _P == 0 and (y - z) % _P == 0


def _small_order(point: _Point) -> bool:
    return _is_identity(_multiply(8, point))


@lru_cache(maxsize=1024)
def _owned_ed25519(encoded: bytes) -> bool:
    """VRM-SIG-022: the canonical encoding of a point of the prime-order subgroup
    (the identity, small-order and mixed-order points refused)."""
    point = _decode_point(encoded)
    return point is not None and not _is_identity(point) and _is_identity(_multiply(_L, point))


# -- keys ---------------------------------------------------------------------------------------

_P256_N: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True, slots=True)
class _Key:
    alg: str
    members: tuple[tuple[str, str], ...]
    public: Ed25519PublicKey | ec.EllipticCurvePublicKey

    @property
    def thumbprint(self) -> str:
        """RFC 7638: SHA-256 of the required members' canonical JSON."""
        return _b64url_encode(hashlib.sha256(canonical_json(dict(self.members))).digest())


def _import_key(jwk: Any) -> _Key:
    """A public JWK the profile accepts (spec §8.1, §8.4). Raises _Refused(unknown-key)."""
    if not isinstance(jwk, Mapping):
        raise _Refused("unknown-key", "a JWK is a JSON object")
    kind = (str(jwk.get("kty")), str(jwk.get("crv")))
    required = _REQUIRED.get(kind)
    if required is None:
        raise _Refused("unknown-key", f"key type {list(kind)} is not Ed25519 or P-256")
    alg = _ALG_OF[kind]
    if _PRIVATE_MEMBERS & set(jwk):
        raise _Refused("unknown-key", "a public JWK carries private members")
    if _X509_MEMBERS & set(jwk):
        raise _Refused("unknown-key", "a JWK carries X.509 members; the profile uses none")
    if jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
        raise _Refused("unknown-key", "the JWK's alg or use is not its key type's signing use")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (
        not isinstance(key_ops, list) or not {"sign", "verify"} & set(key_ops)
    ):
        raise _Refused("unknown-key", "the JWK's key_ops exclude signing")
    if "kid" in jwk and (not isinstance(jwk["kid"], str) or not jwk["kid"]):
        raise _Refused("unknown-key", "the JWK's kid is not a non-empty string")
    coordinates = {}
    for name in required[2:]:
        value = jwk.get(name)
        if not isinstance(value, str):
            raise _Refused("unknown-key", f"JWK member {name} is missing")
        try:
            coordinates[name] = _b64url(value, f"JWK member {name}")
        except _Refused:
            raise _Refused("unknown-key", f"JWK member {name} is not base64url") from None
        if len(coordinates[name]) != 32:
            raise _Refused("unknown-key", f"JWK member {name} is not 32 bytes")
    members = tuple((name, str(jwk[name])) for name in required)
    if alg == "EdDSA":
        if not _owned_ed25519(coordinates["x"]):
            raise _Refused(
                "unknown-key",
                "the Ed25519 key is not the canonical encoding of a point of the prime-order "
                "subgroup (VRM-SIG-022)",
            )
        return _Key(alg, members, Ed25519PublicKey.from_public_bytes(coordinates["x"]))
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + coordinates["x"] + coordinates["y"]
        )
    except ValueError:
        raise _Refused("unknown-key", "the JWK is not a point of P-256") from None
    return _Key(alg, members, public)


def _import_jwks(document: Any) -> dict[str, _Key]:
    """The current keys of a JWKS by thumbprint; the whole set refused if any key,
    current or retired, is one the profile refuses (VRM-SIG-022, VRM-SIG-029)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise _Refused("unknown-key", "a JWKS is an object with a keys array")
    retired = document.get("retired", [])
    if not isinstance(retired, list):
        raise _Refused("unknown-key", "a JWKS's retired member is an array")
    current: dict[str, _Key] = {}
    published: set[str] = set()
    for jwk in document["keys"]:
        key = _import_key(jwk)
        name = jwk.get("kid") or key.thumbprint
        if name in published:
            raise _Refused("unknown-key", f"kid {name} is published twice")
        published.add(name)
        current[key.thumbprint] = key
    for entry in retired:
        at = entry.get("retiredAt") if isinstance(entry, Mapping) else None
        try:
            datetime.fromisoformat(str(at).replace("Z", "+00:00"))
        except ValueError:
            raise _Refused("unknown-key", "a retired key carries no retiredAt instant") from None
        key = _import_key({name: value for name, value in entry.items() if name != "retiredAt"})
        name = entry.get("kid") or key.thumbprint
        if name in published:
            raise _Refused("unknown-key", f"kid {name} is published twice")
        published.add(name)
    return current


def _resolve_did_jwk(kid: str) -> _Key:
    """VRM-SIG-013, VRM-SIG-026: ``did:jwk:`` + base64url(RFC 8785 JSON of exactly
    the key's RFC 7638 required members) + ``#0``, of a key somebody owns."""
    if not kid.endswith(_DID_JWK_FRAGMENT):
        raise _Refused("unknown-key", "a did:jwk key identifier ends in #0")
    encoded = kid[len(_DID_JWK_PREFIX) : -len(_DID_JWK_FRAGMENT)]
    try:
        jwk = _parse(_b64url(encoded, "the did:jwk"))
    except (_Refused, _Duplicate, _NotJson):
        raise _Refused("unknown-key", "the did:jwk does not encode a JSON object") from None
    key = _import_key(jwk)
    if jwk != dict(key.members) or _b64url_encode(canonical_json(jwk)) != encoded:
        raise _Refused("unknown-key", "the did:jwk is not in its canonical form (VRM-SIG-026)")
    return key


def _resolve(kid: str, jwks: Mapping[str, Any] | None) -> _Key:
    if kid.startswith(_DID_JWK_PREFIX):
        return _resolve_did_jwk(kid)
    if jwks is None:
        raise _Refused("unknown-key", f"no key set is known for kid {kid}")
    # A vendor's kid is the RFC 7638 thumbprint of a current key (VRM-SIG-013).
    key = _import_jwks(jwks).get(kid)
    if key is None:
        raise _Refused("unknown-key", f"no current key of the sender's JWKS has thumbprint {kid}")
    return key


# -- signatures (spec §8.1, §8.2) ---------------------------------------------------------------


def _verify(key: _Key, signing_input: bytes, signature: bytes) -> None:
    if len(signature) != 64:
        raise _Refused("bad-signature", f"a {key.alg} signature is 64 bytes, not {len(signature)}")
    if isinstance(key.public, Ed25519PublicKey):
        # VRM-SIG-023: R canonical and not of small order, S below L.
        nonce_point = _decode_point(signature[:32])
        if nonce_point is None or _small_order(nonce_point):
            raise _Refused("bad-signature", "R is not a canonical point of large order")
        if int.from_bytes(signature[32:], "little") >= _L:
            raise _Refused("bad-signature", "S is not below the group order L")
        try:
            key.public.verify(signature, signing_input)
        except InvalidSignature:
            raise _Refused("bad-signature", "the Ed25519 signature does not verify") from None
        return
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if s > _P256_N // 2:  # VRM-SIG-024: only the low-S form
        raise _Refused("bad-signature", "the ES256 signature has a high S")
    try:
        key.public.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise _Refused("bad-signature", "the ES256 signature does not verify") from None


# -- the token ----------------------------------------------------------------------------------


def verify_token(
    token: bytes,
    *,
    jwks: Mapping[str, Any] | None,
    typ: str = MESSAGE_TYP,
    limits: JudgeLimits = JudgeLimits(),
) -> Opinion:
    """Judge ``token`` through stages 3 to 7 of spec §8.6, in their order, and
    the key-sender binding of stage 10 (VRM-SIG-014) when the payload parses.

    ``jwks`` is the sender's published key set (``None`` for a did:jwk sender).
    Never raises for a bad token: the opinion carries the code.
    """
    try:
        return _verify_token(token, jwks, typ, limits)
    except _Refused as refused:
        return Opinion(refused.code, refused.detail)


def _verify_token(
    token: bytes, jwks: Mapping[str, Any] | None, typ: str, limits: JudgeLimits
) -> Opinion:
    # Stage 3: size, framing, nesting on the raw bytes.
    if len(token) > limits.max_message_bytes:
        raise _Refused("payload-too-large", f"{len(token)} bytes")
    segments = token.split(b".")
    if len(segments) != 3:
        raise _Refused("malformed-jws", f"{len(segments)} segments")
    header_segment, payload_segment, signature_segment = segments
    if not header_segment:
        raise _Refused("malformed-jws", "empty header segment")
    header_bytes = _b64url(header_segment, "the header segment")
    _check_limits(header_bytes, limits, "the header")
    payload_bytes: bytes | None = None
    signature: bytes | None = None
    segment_fault = "the payload segment is empty" if not payload_segment else ""
    if payload_segment:
        try:
            payload_bytes = _b64url(payload_segment, "the payload segment")
            signature = _b64url(signature_segment, "the signature segment")
        except _Refused as refused:
            segment_fault = refused.detail
        if payload_bytes is not None:
            _check_limits(payload_bytes, limits, "the payload")
    # Stage 4: the protected header.
    try:
        header = _parse(header_bytes)
    except _Duplicate as error:
        raise _Refused("duplicate-member", f"the header repeats {error}") from None
    except _NotJson as error:
        raise _Refused("malformed-jws", f"the header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise _Refused("malformed-jws", "the header is not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALGORITHMS:
        raise _Refused("unsupported-algorithm", f"alg {alg!r}")
    if "crit" in header:
        raise _Refused("unsupported-critical-header", "crit")
    if set(header) - _HEADER_PARAMETERS:
        raise _Refused("invalid-header", f"parameters {sorted(set(header) - _HEADER_PARAMETERS)}")
    if header.get("typ") != typ:
        raise _Refused("invalid-typ", f"typ {header.get('typ')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _Refused("invalid-header", "kid is not a non-empty string")
    if payload_bytes is None or signature is None:
        raise _Refused("malformed-jws", segment_fault)
    # Stage 5: the key, and its algorithm the header's.
    key = _resolve(kid, jwks)
    if key.alg != alg:
        raise _Refused("unknown-key", f"kid names a {key.alg} key; the header says {alg}")
    # Stage 6: the signature over the bytes as received.
    _verify(key, header_segment + b"." + payload_segment, signature)
    # Stage 7: the payload bytes.
    payload = judge_payload(payload_bytes)
    sender = payload.get("from")
    if kid.startswith(_DID_JWK_PREFIX):
        bound = sender == kid[: -len(_DID_JWK_FRAGMENT)]
    else:
        # The key came from the JWKS the suite fetched for this sender.
        bound = isinstance(sender, str) and not sender.startswith("did:")
    return Opinion(None, "", kid=kid, payload=payload, bound=bound)


def check_jwks(document: Any) -> str | None:
    """Why the judge refuses a published JWKS (``unknown-key``), or ``None``."""
    try:
        _import_jwks(document)
    except _Refused as refused:
        return refused.detail
    return None


# -- comparing with the library -----------------------------------------------------------------


def compare(opinion: Opinion, library_code: str | None, *, binding: bool = True) -> str | None:
    """Why the judge's opinion and the library's verdict disagree, or ``None``.

    Stages 3-7 must end in the same code (or both pass). When both passed
    them, a library refusal at stages 8-9 says nothing of the binding; any
    other library verdict implies that the binding (stage 10) held exactly
    when it is not ``key-sender-mismatch``. ``binding=False`` for a token
    whose payload names no ``from`` (an attestation): stages 3-7 only.
    """
    if opinion.code is not None or library_code in SIGNING_STAGE_CODES:
        if opinion.code == library_code:
            return None
        return (
            f"the library says {library_code or 'valid'}, the suite's verifier says "
            f"{opinion.code or 'valid'}" + (f" ({opinion.detail})" if opinion.detail else "")
        )
    if not binding or library_code in _BEFORE_BINDING:
        return None
    library_bound = library_code != _KEY_SENDER_MISMATCH
    if opinion.bound is library_bound:
        return None
    return (
        f"the library says {library_code or 'valid'}, the suite's verifier finds the key "
        + ("bound" if opinion.bound else "not bound")
        + " to the sender (VRM-SIG-014)"
    )


@dataclass(frozen=True, slots=True)
class Disagreement:
    """The library and the suite's verifier concluded differently about one thing."""

    #: What was judged: ``sha-256:...`` of a token, or a JWKS's URL.
    subject: str
    reason: str
    library: str | None
    judge: str | None

    def describe(self) -> str:
        """One line for a report."""
        return f"{self.subject}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        """For the result file."""
        return {
            "subject": self.subject,
            "reason": self.reason,
            "library": self.library,
            "judge": self.judge,
        }


@dataclass(slots=True)
class Judge:
    """The suite's second opinion, and the disagreements it found in one run.

    The runner takes the disagreements after each check (:meth:`take`) and
    turns that check into a harness error.
    """

    limits: JudgeLimits = JudgeLimits()
    disagreements: list[Disagreement] = field(default_factory=list)
    _taken: int = 0

    def review(
        self,
        token: bytes,
        *,
        sender_jwks: Mapping[str, Any] | None,
        library_code: str | None,
        typ: str = MESSAGE_TYP,
    ) -> Disagreement | None:
        """Judge ``token`` and compare with the library's verdict (its error code,
        ``None`` when it accepted). A disagreement is recorded and returned.

        ``typ`` is what the context requires: a message, a poll token (whose
        ``from`` is bound to its key as a message's is) or an attestation
        (judged through stage 7 only).
        """
        opinion = verify_token(token, jwks=sender_jwks, typ=typ, limits=self.limits)
        reason = compare(opinion, library_code, binding=typ != ATTESTATION_TYP)
        if reason is None:
            return None
        subject = "token sha-256:" + _b64url_encode(hashlib.sha256(token).digest())
        return self._record(Disagreement(subject, reason, library_code, opinion.code))

    def review_jwks(
        self, document: Any, *, library_refusal: str | None, subject: str
    ) -> Disagreement | None:
        """Import a published JWKS and compare with the library's import."""
        refusal = check_jwks(document)
        if (refusal is None) == (library_refusal is None):
            return None
        reason = (
            f"the library {'refuses' if library_refusal else 'accepts'} the JWKS"
            + (f" ({library_refusal})" if library_refusal else "")
            + f", the suite's verifier {'refuses' if refusal else 'accepts'} it"
            + (f" ({refusal})" if refusal else "")
        )
        return self._record(
            Disagreement(
                subject,
                reason,
                "unknown-key" if library_refusal else None,
                "unknown-key" if refusal else None,
            )
        )

    def _record(self, disagreement: Disagreement) -> Disagreement:
        self.disagreements.append(disagreement)
        return disagreement

    def take(self) -> list[Disagreement]:
        """The disagreements recorded since the last call."""
        new = self.disagreements[self._taken :]
        self._taken = len(self.disagreements)
        return new
