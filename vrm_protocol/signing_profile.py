"""The JWS signing profile: compact serialization under allow-lists (spec §8).

What a verifier accepts, in the order it checks (each stage has its code):

1. size of the token (``payload-too-large``, spec §8.1);
2. framing: exactly three segments of strict unpadded base64url
   (``malformed-jws``, spec §8.2), then the nesting limits on the decoded
   header and payload (``nesting-too-deep``). A payload or signature segment
   that is not base64url is reported after stage 3, so that a header
   announcing an unencoded payload (``b64: false``) is refused for that;
3. the protected header (spec §8.2), a JSON object without repeated members
   (``duplicate-member``) holding exactly ``alg``, ``kid`` and ``typ``:

   * ``alg`` on the caller's explicit allow-list, compared case-sensitively:
     ``none`` in any spelling and every HMAC algorithm are refused
     (``unsupported-algorithm``; RFC 8725 §3.1, §3.2);
   * ``crit`` is refused, since the profile defines no extension
     (``unsupported-critical-header``; RFC 7515 §4.1.11);
   * any other parameter (``jku``, ``jwk``, ``x5u``, ``x5c``, ``x5t``, ``b64``,
     ``zip``, ...) is refused: a key never comes from the header and nothing
     is ever fetched (``invalid-header``; RFC 8725 §3.10);
   * ``typ`` exactly the expected media type (``invalid-typ``; RFC 8725 §3.11);
   * ``kid`` a non-empty string (``invalid-header``);

4. the key ``kid`` names, through the caller's resolver (``unknown-key``),
   whose own algorithm must be the header's (a key is never used with an
   algorithm it was not made for; RFC 8725 §3.1);
5. the signature, over the signing input exactly as received
   (``bad-signature``);
6. the payload bytes are RFC 8785 canonical JSON of an object
   (``malformed-json``, ``duplicate-member``, ``non-canonical-payload``;
   spec §8.3).

Verification never returns a boolean: it returns what was verified or
raises :class:`~vrm_protocol.errors.RemoteProtocolError`.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from vrm_protocol.canonical import (
    b64url_decode,
    canonical_json,
    canonical_json_fast,
    parse_canonical,
    parse_json_object,
    strip_json_strings,
)
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.keys import KeyResolver, SigningKey, VerifyingKey
from vrm_protocol.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_nesting,
    check_structure,
    check_token_size,
)
from vrm_protocol.vocabulary import MESSAGE_TYP

__all__ = [
    "ALLOWED_ALGORITHMS",
    "ALLOWED_HEADER_PARAMETERS",
    "VerifiedJWS",
    "sign_compact",
    "sign_json",
    "verify_compact",
    "verify_signature",
]

#: The algorithms of the profile (spec §8.1): Ed25519 and ECDSA P-256 with SHA-256.
ALLOWED_ALGORITHMS: Final[frozenset[str]] = frozenset({"EdDSA", "ES256"})
#: The only protected header parameters the profile allows (spec §8.2).
ALLOWED_HEADER_PARAMETERS: Final[frozenset[str]] = frozenset({"alg", "kid", "typ"})
#: Encoded protected headers remembered (one per signing key and typ); bounded.
_HEADER_CACHE_SIZE: Final = 1024


@dataclass(frozen=True, slots=True)
class VerifiedJWS:
    """A compact JWS whose header, key and signature passed the profile.

    Attributes:
        header: the protected header as parsed.
        payload: the payload bytes exactly as signed.
        key: the key that verified the signature (its ``kid`` is the header's).
        signing_input: ``BASE64URL(header) || '.' || BASE64URL(payload)`` as received.
        document: the payload parsed (a JSON object) when the canonical check
            ran (the default), else ``None``.
    """

    header: Mapping[str, Any]
    payload: bytes
    key: VerifyingKey
    signing_input: bytes
    document: Mapping[str, Any] | None = field(default=None, compare=False)


def _check_algorithms(algorithms: Collection[str]) -> None:
    if algorithms is ALLOWED_ALGORITHMS:
        return  # the default: the profile itself (no set arithmetic per message)
    widened = set(algorithms) - ALLOWED_ALGORITHMS
    if widened:
        # The caller may narrow the allow-list, never widen it (spec §8.1).
        raise LocalProtocolError(
            ErrorCode.UNSUPPORTED_ALGORITHM,
            f"algorithms {sorted(widened)} are outside the profile {sorted(ALLOWED_ALGORITHMS)}",
        )


def sign_compact(payload: bytes, key: SigningKey, *, typ: str = MESSAGE_TYP) -> bytes:
    """Sign canonical ``payload`` bytes as a compact JWS under the profile (spec §8.2).

    The protected header is exactly ``{"alg", "kid", "typ"}`` in canonical form.

    Raises:
        LocalProtocolError: UNSUPPORTED_ALGORITHM if the key's algorithm is not
            in :data:`ALLOWED_ALGORITHMS`; INVALID_TYP if ``typ`` is empty;
            INVALID_HEADER if the key has an empty ``kid``;
            NON_CANONICAL_PAYLOAD (or MALFORMED_JSON, DUPLICATE_MEMBER) if
            ``payload`` is not RFC 8785 canonical JSON of an object (spec §8.3).
    """
    _check_signing_key(key, typ)
    try:
        parse_canonical(payload)
    except RemoteProtocolError as error:
        raise LocalProtocolError(
            error.code, f"refusing to sign a payload that is not canonical: {error.detail}"
        ) from error
    return _sign(payload, key, typ)


def sign_json(
    value: Mapping[str, Any],
    key: SigningKey,
    *,
    typ: str = MESSAGE_TYP,
    numbers_checked: bool = False,
) -> bytes:
    """Serialize a JSON object as RFC 8785 canonical JSON and sign it (spec §8.2, §8.3).

    The same token as ``sign_compact(canonical_json(value), key, typ=typ)``,
    serialized once: bytes from the fast exact path
    (:func:`~vrm_protocol.canonical.canonical_json_fast`) are canonical by
    construction and are not parsed again; bytes from the reference path
    are checked as :func:`sign_compact` checks them. ``numbers_checked`` is
    :func:`~vrm_protocol.canonical.canonical_json_fast`'s (the caller vouches
    that every number is an integer within ±(2**53 - 1)).

    Raises:
        LocalProtocolError: as :func:`sign_compact`; MALFORMED_JSON if
            ``value`` is not a JSON object (a mapping); NON_CANONICAL_PAYLOAD
            if it has no canonical form.
    """
    if not isinstance(value, Mapping):
        raise LocalProtocolError(
            ErrorCode.MALFORMED_JSON, "refusing to sign a payload that is not a JSON object"
        )
    document = value if isinstance(value, dict) else dict(value)
    payload = canonical_json_fast(document, numbers_checked=numbers_checked)
    if payload is None:
        return sign_compact(canonical_json(document), key, typ=typ)
    _check_signing_key(key, typ)
    return _sign(payload, key, typ)


def _check_signing_key(key: SigningKey, typ: str) -> None:
    if key.alg not in ALLOWED_ALGORITHMS:
        raise LocalProtocolError(
            ErrorCode.UNSUPPORTED_ALGORITHM, f"refusing to sign with {key.alg!r}"
        )
    if not typ:
        raise LocalProtocolError(ErrorCode.INVALID_TYP, "typ must be a non-empty media type")
    if not key.kid:
        raise LocalProtocolError(ErrorCode.INVALID_HEADER, "the signing key has no kid")


@lru_cache(maxsize=_HEADER_CACHE_SIZE)
def _header_segment(alg: str, kid: str, typ: str) -> bytes:
    """``BASE64URL(header) || '.'``: the same for every message a key signs, so built once."""
    header = canonical_json({"alg": alg, "kid": kid, "typ": typ})
    return base64.urlsafe_b64encode(header).rstrip(b"=") + b"."


def _sign(payload: bytes, key: SigningKey, typ: str) -> bytes:
    """The compact JWS of checked, canonical ``payload`` bytes."""
    signing_input = _header_segment(key.alg, key.kid, typ) + (
        base64.urlsafe_b64encode(payload).rstrip(b"=")
    )
    return signing_input + b"." + base64.urlsafe_b64encode(key.sign(signing_input)).rstrip(b"=")


def verify_signature(signing_input: bytes, signature: bytes, key: VerifyingKey) -> None:
    """Verify a raw JWS signature with ``key``, outside the profile's header rules.

    For known-answer tests of the cryptography (RFC 8037 Appendix A.4) and
    for callers that have already applied the profile to the header.

    Raises:
        RemoteProtocolError: BAD_SIGNATURE.
    """
    key.verify(signing_input, signature)


@dataclass(frozen=True, slots=True)
class _Framed:
    """A compact JWS split into its segments; payload and signature decoded if possible."""

    signing_input: bytes
    header: bytes
    payload: bytes | None
    signature: bytes | None
    #: Why the payload or signature segment is not strict base64url, if it is not.
    segment_error: str | None


def _split(token: bytes) -> _Framed:
    """Split a compact JWS; strict framing of the header segment (spec §8.2).

    A payload or signature segment that is not base64url is reported only
    after the header has been judged: a header announcing an unencoded
    payload (RFC 7797 ``b64: false``) is refused for what it announces.
    """
    segments = token.split(b".")
    if len(segments) != 3:
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_JWS,
            f"a compact JWS has 3 segments, this has {len(segments)}",
        )
    header_segment, payload_segment, signature_segment = segments
    if not header_segment:
        raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, "empty header segment")
    try:
        header = b64url_decode(header_segment)
    except ValueError as error:
        raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, f"header segment: {error}") from error
    payload: bytes | None = None
    signature: bytes | None = None
    segment_error: str | None = None
    if not payload_segment:
        # An empty payload segment would be a detached payload (RFC 7515 Appendix F).
        segment_error = "empty payload segment (detached payloads are not used)"
    else:
        try:
            payload = b64url_decode(payload_segment)
            signature = b64url_decode(signature_segment)
        except ValueError as error:
            segment_error = f"payload or signature segment: {error}"
    signing_input = token[: len(header_segment) + 1 + len(payload_segment)]
    return _Framed(signing_input, header, payload, signature, segment_error)


def _check_header(header: Mapping[str, Any], *, typ: str, algorithms: Collection[str]) -> str:
    """Apply the header rules of spec §8.2; return the ``kid``."""
    alg = header.get("alg")
    # Exact, case-sensitive membership: "None" and "NONE" are not "none" to be
    # handled specially; they are simply not on the list (RFC 8725 §3.1).
    if not isinstance(alg, str) or alg not in algorithms:
        raise RemoteProtocolError(
            ErrorCode.UNSUPPORTED_ALGORITHM,
            f"alg {alg!r} is not one of {sorted(algorithms)}",
        )
    if "crit" in header:
        raise RemoteProtocolError(
            ErrorCode.UNSUPPORTED_CRITICAL,
            f"crit {header['crit']!r}: the profile defines no critical extensions",
        )
    extra = set(header) - ALLOWED_HEADER_PARAMETERS
    if extra:
        raise RemoteProtocolError(
            ErrorCode.INVALID_HEADER,
            f"header parameters {sorted(extra)} are not allowed (only alg, kid, typ)",
        )
    if header.get("typ") != typ:
        raise RemoteProtocolError(
            ErrorCode.INVALID_TYP, f"typ {header.get('typ')!r} is not {typ!r}"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise RemoteProtocolError(ErrorCode.INVALID_HEADER, "kid is missing or not a string")
    return kid


def verify_compact(
    token: bytes,
    *,
    resolve_key: KeyResolver,
    typ: str = MESSAGE_TYP,
    algorithms: Collection[str] = ALLOWED_ALGORITHMS,
    limits: Limits = DEFAULT_LIMITS,
    require_canonical: bool = True,
) -> VerifiedJWS:
    """Verify a compact JWS under the profile (see the module docstring for the stages).

    ``require_canonical=False`` skips stage 6 (the payload check) for callers
    that run :func:`~vrm_protocol.canonical.parse_canonical` themselves.

    Raises:
        RemoteProtocolError: PAYLOAD_TOO_LARGE, MALFORMED_JWS, NESTING_TOO_DEEP,
            DUPLICATE_MEMBER, UNSUPPORTED_ALGORITHM, UNSUPPORTED_CRITICAL,
            INVALID_HEADER, INVALID_TYP, UNKNOWN_KEY, BAD_SIGNATURE,
            MALFORMED_JSON, NON_CANONICAL_PAYLOAD.
        LocalProtocolError: UNSUPPORTED_ALGORITHM if ``algorithms`` names an
            algorithm outside :data:`ALLOWED_ALGORITHMS`.
    """
    _check_algorithms(algorithms)
    if not isinstance(token, bytes):
        raise TypeError("token must be bytes")
    check_token_size(token, limits)
    framed = _split(token)
    check_nesting(framed.header, limits)
    payload_outside_strings: bytes | None = None
    if framed.payload is not None:
        # Stripped of its strings once, for the limits now and the canonical check later.
        payload_outside_strings = strip_json_strings(framed.payload)
        check_structure(framed.payload, payload_outside_strings, limits)
    try:
        header = parse_json_object(framed.header, what="protected header")
    except RemoteProtocolError as error:
        if error.code is ErrorCode.MALFORMED_JSON:
            # registry: a header that is not a JSON object is a malformed JWS.
            raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, error.detail) from error
        raise
    kid = _check_header(header, typ=typ, algorithms=algorithms)
    if framed.payload is None or framed.signature is None:
        raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, framed.segment_error or "malformed")
    payload, signature, signing_input = framed.payload, framed.signature, framed.signing_input
    try:
        key = resolve_key(kid)
    except LookupError as error:  # a resolver that forgot to translate a KeyError
        raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, f"unknown kid {kid!r}") from error
    if key.alg != header["alg"]:
        # Key confusion (RFC 8725 §2.1): the key decides its algorithm, not the header.
        raise RemoteProtocolError(
            ErrorCode.UNKNOWN_KEY,
            f"kid {kid!r} names a {key.alg} key; the header says {header['alg']}",
        )
    key.verify(signing_input, signature)
    document = (
        parse_canonical(payload, outside_strings=payload_outside_strings)
        if require_canonical
        else None
    )
    return VerifiedJWS(header, payload, key, signing_input, document)
