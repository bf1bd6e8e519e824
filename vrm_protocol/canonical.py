"""RFC 8785 canonical JSON, strict parsing of received JSON, and message digests.

A protocol message is signed over its RFC 8785 (JSON Canonicalization Scheme)
serialization (spec §8.3). A receiver verifies the signature over the bytes
as received and then requires those bytes to *be* the canonical
serialization of what they parse to. That one comparison refuses every
ambiguity a JSON text can carry: duplicate member names (RFC 8259 §4 leaves
their meaning undefined), insignificant whitespace, member order, number and
string spellings.

Two serializers produce the canonical bytes:

* the reference path, the ``rfc8785`` package, which implements the whole
  RFC including the ECMAScript number formatting of §3.2.2.3;
* a fast exact path, ``orjson`` with sorted keys, used only for values where
  its output is byte-for-byte the RFC 8785 output: no floating-point numbers,
  integers within the I-JSON range (RFC 7493 §2.2), and no member name with a
  character at or above U+E000 (the only range where sorting by code point,
  as orjson does, differs from sorting by UTF-16 code unit, as RFC 8785 §3.2.3
  requires). The property tests compare both paths on generated values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any, Final

import orjson
import rfc8785

from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_SAFE_INTEGER",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "canonical_json_reference",
    "is_canonical",
    "message_digest",
    "parse_canonical",
    "parse_json_object",
]

#: RFC 7493 §2.2 / RFC 8785 §3.2.2.3: integers beyond ±(2**53 - 1) cannot be
#: represented exactly by every peer's JSON parser, so they are not canonical.
MAX_SAFE_INTEGER: Final = 2**53 - 1

#: Member names at or above U+E000 sort differently by code point (orjson)
#: and by UTF-16 code unit (RFC 8785 §3.2.3); such values take the reference path.
_SORT_ORDER_BOUNDARY: Final = "\ue000"
#: UTF-8 lead bytes of characters at or above U+E000 (0xEE, 0xEF: U+E000-U+FFFF;
#: 0xF0-0xF4: supplementary planes). A payload without them takes the fast path.
_HIGH_LEAD_BYTES: Final = re.compile(rb"[\xee-\xf4]")
_B64URL_ALPHABET: Final = re.compile(rb"[A-Za-z0-9_-]*")


# -- base64url ------------------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2, RFC 4648 §5) of ``data``."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode strict unpadded base64url.

    Strict means: only the 64 URL-safe characters, no padding, no whitespace,
    a length that a base64 encoding can have, and zero unused trailing bits.
    The last rule makes the encoding unique, so that two different token
    strings can never decode to the same bytes (spec §8.2: tokens are
    identified by their exact bytes, spec §8.5).

    Raises:
        ValueError: ``text`` is not strict unpadded base64url.
    """
    raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    if _B64URL_ALPHABET.fullmatch(raw) is None:
        raise ValueError("not base64url: characters outside [A-Za-z0-9_-] (no padding allowed)")
    if len(raw) % 4 == 1:
        raise ValueError("not base64url: impossible length")
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as error:  # pragma: no cover - alphabet checked above
        raise ValueError(f"not base64url: {error}") from error
    if b64url_encode(decoded).encode("ascii") != raw:
        raise ValueError("not base64url: non-zero unused bits (non-canonical encoding)")
    return decoded


# -- serialization --------------------------------------------------------------------------------


def canonical_json_reference(value: Any) -> bytes:
    """RFC 8785 canonical bytes of ``value`` by the reference implementation.

    Raises:
        LocalProtocolError: NON_CANONICAL_PAYLOAD if ``value`` has no canonical
            form (a non-finite float, an integer outside ±(2**53 - 1), a
            string that is not valid Unicode, a non-string member name, or a
            value that is not JSON).
    """
    try:
        encoded: bytes = rfc8785.dumps(value)
    except (ValueError, TypeError, UnicodeError) as error:
        raise LocalProtocolError(
            ErrorCode.NON_CANONICAL_PAYLOAD, f"value has no RFC 8785 form: {error}"
        ) from error
    return encoded


def _fast_path_eligible(value: Any) -> bool:
    """True when orjson's sorted output is exactly the RFC 8785 output of ``value``."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, bool | str):
            continue
        if isinstance(item, int):
            if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            return False
        if isinstance(item, dict):
            for key, member in item.items():
                if type(key) is not str or (key and max(key) >= _SORT_ORDER_BOUNDARY):
                    return False
                stack.append(member)
            continue
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        # floats (ECMAScript number formatting) and everything else: reference path
        return False
    return True


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (spec §8.3).

    Money amounts in the protocol are decimal strings, so messages never need
    floats; floats are nevertheless serialized as RFC 8785 §3.2.2.3 says.

    Raises:
        LocalProtocolError: NON_CANONICAL_PAYLOAD if ``value`` has no canonical
            form (see :func:`canonical_json_reference`).
    """
    if _fast_path_eligible(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # e.g. a lone surrogate: the reference path reports it
            pass
    return canonical_json_reference(value)


# -- strict parsing -------------------------------------------------------------------------------


class _ParseFacts:
    """What the parse hooks observed, to choose the serializer for the comparison."""

    __slots__ = ("fast_path",)

    def __init__(self) -> None:
        self.fast_path = True


def _reject_constant(name: str) -> Any:
    # NaN, Infinity and -Infinity are Python extensions, not JSON (RFC 8259 §6).
    raise ValueError(f"{name} is not JSON")


def _strict_loads(payload: bytes, facts: _ParseFacts, *, what: str) -> Any:
    """Parse UTF-8 JSON text, refusing duplicate member names.

    Raises:
        RemoteProtocolError: MALFORMED_JSON, DUPLICATE_MEMBER or NESTING_TOO_DEEP.
    """

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members: dict[str, Any] = {}
        for name, member in pairs:
            if name in members:
                # spec §8.3: a repeated member name is refused, never resolved.
                raise _DuplicateMemberError(name)
            members[name] = member
        return members

    def parse_float(text: str) -> float:
        facts.fast_path = False
        return float(text)

    def parse_int(text: str) -> int | float:
        number = int(text)
        if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
            return number
        # RFC 8785 §3.2.2.3: every JSON number is an IEEE 754 double; an
        # integer beyond 2**53 - 1 is canonical only as that double's spelling
        # (9007199254740992 is, 9007199254740993 is not).
        facts.fast_path = False
        return float(number) if len(text) < 400 else float("inf")

    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_JSON, f"{what} is not UTF-8: {error.reason}"
        ) from error
    try:
        return json.loads(
            text,
            object_pairs_hook=pairs_hook,
            parse_float=parse_float,
            parse_int=parse_int,
            parse_constant=_reject_constant,
        )
    except _DuplicateMemberError as error:
        raise RemoteProtocolError(
            ErrorCode.DUPLICATE_MEMBER,
            f"{what} repeats the member name {error.name!r}",
        ) from None
    except RecursionError:
        raise RemoteProtocolError(
            ErrorCode.NESTING_TOO_DEEP, f"{what} nests too deeply to parse"
        ) from None
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise RemoteProtocolError(
            ErrorCode.MALFORMED_JSON, f"{what} is not JSON: {error}"
        ) from error


class _DuplicateMemberError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def parse_json_object(payload: bytes, *, what: str = "payload") -> dict[str, Any]:
    """Parse UTF-8 JSON text whose top level is an object, refusing duplicate members.

    Used for JOSE headers, which must be unambiguous but need not be canonical.

    Raises:
        RemoteProtocolError: MALFORMED_JSON (not UTF-8, not JSON, not an
            object), DUPLICATE_MEMBER, or NESTING_TOO_DEEP.
    """
    parsed = _strict_loads(payload, _ParseFacts(), what=what)
    if not isinstance(parsed, dict):
        raise RemoteProtocolError(ErrorCode.MALFORMED_JSON, f"{what} is not a JSON object")
    return parsed


def parse_canonical(payload: bytes) -> dict[str, Any]:
    """Parse a received payload and require it to be canonical (spec §8.3).

    No size or nesting limits are applied here: :mod:`vrm_protocol.limits`
    applies them to the raw bytes before this runs.

    Raises:
        RemoteProtocolError: MALFORMED_JSON (not UTF-8 JSON text, or the top
            level is not an object), DUPLICATE_MEMBER (an object repeats a
            member name), NON_CANONICAL_PAYLOAD (valid JSON, but not the RFC
            8785 serialization of its own value), NESTING_TOO_DEEP (deeper
            than the parser can go).
    """
    facts = _ParseFacts()
    parsed = _strict_loads(payload, facts, what="payload")
    if not isinstance(parsed, dict):
        raise RemoteProtocolError(ErrorCode.MALFORMED_JSON, "payload is not a JSON object")
    if facts.fast_path and _HIGH_LEAD_BYTES.search(payload) is None:
        try:
            canonical = orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # a lone surrogate from a \ud8xx escape: no canonical form
            canonical = b""
    else:
        try:
            canonical = canonical_json_reference(parsed)
        except LocalProtocolError:
            canonical = b""
    if canonical != payload:
        raise RemoteProtocolError(
            ErrorCode.NON_CANONICAL_PAYLOAD,
            "payload is not in RFC 8785 canonical form (member order, whitespace, "
            "number or string spelling)",
        )
    return parsed


def is_canonical(payload: bytes) -> None:
    """Require ``payload`` to be canonical JSON of an object (spec §8.3).

    Returns nothing: the function raises or it does not (use
    :func:`parse_canonical` to get the parsed object as well).

    Raises:
        RemoteProtocolError: as :func:`parse_canonical`.
    """
    parse_canonical(payload)


# -- digests --------------------------------------------------------------------------------------


def message_digest(token: bytes) -> str:
    """The message digest (spec §8.5): ``sha-256:`` + base64url(SHA-256(token bytes)).

    The digest is over the compact JWS exactly as sent or received, so a
    ``messageRef`` binds a reply to those bytes and nothing else.
    """
    return "sha-256:" + b64url_encode(hashlib.sha256(token).digest())
