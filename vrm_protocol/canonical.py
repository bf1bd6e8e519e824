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
    "Base64urlError",
    "b64url_decode",
    "b64url_encode",
    "canonical_json",
    "canonical_json_fast",
    "canonical_json_reference",
    "is_canonical",
    "longest_json_string",
    "message_digest",
    "parse_canonical",
    "parse_json_object",
    "strip_json_strings",
]

#: RFC 7493 §2.2 / RFC 8785 §3.2.2.3: integers beyond ±(2**53 - 1) cannot be
#: represented exactly by every peer's JSON parser, so they are not canonical.
MAX_SAFE_INTEGER: Final = 2**53 - 1

#: Member names at or above U+E000 sort differently by code point (orjson)
#: and by UTF-16 code unit (RFC 8785 §3.2.3); such values take the reference path.
#: UTF-8 lead bytes of characters at or above U+E000 (0xEE, 0xEF: U+E000-U+FFFF;
#: 0xF0-0xF4: supplementary planes). A payload without them takes the fast path.
_HIGH_LEAD_BYTES: Final = re.compile(rb"[\xee-\xf4]")
_B64URL_ALPHABET_BYTES: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
#: The 6-bit value of each base64url character (index = byte value; bytes
#: outside the alphabet, never looked up, map to 63).
_B64URL_VALUES: Final = bytes(
    _B64URL_ALPHABET_BYTES.find(bytes([byte])) % 64 for byte in range(256)
)
#: The unused low bits of the last character, by the length of the final group.
_UNUSED_BITS: Final = {2: 0x0F, 3: 0x03}
_B64URL_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
# A complete JSON string token (escapes included), in the "unrolled loop" form
# that the regex engine runs without backtracking.
_STRING_TOKEN: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Maps every digit to "0", so that a run of sixteen digits is one substring search.
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
#: Sixteen digits in a row may exceed MAX_SAFE_INTEGER (sixteen digits).
_LONG_NUMBER: Final = b"0" * len(str(MAX_SAFE_INTEGER))


# -- base64url ------------------------------------------------------------------------------------


class Base64urlError(RemoteProtocolError, ValueError):
    """Text that is not strict unpadded base64url (``malformed-jws``, spec §8.2).

    A :class:`RemoteProtocolError`, so that decoding raises only protocol
    errors (issue 9, D4); also a ``ValueError``, as callers have always
    caught it (and re-coded it where base64url encodes something else, such
    as a JWK member).
    """

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.MALFORMED_JWS, detail)


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
        Base64urlError: (``malformed-jws``, also a ``ValueError``) ``text`` is
            not strict unpadded base64url.
    """
    if isinstance(text, str):
        if not text.isascii():
            raise Base64urlError("not base64url: characters outside [A-Za-z0-9_-]")
        raw = text.encode("ascii")
    elif isinstance(text, bytes | bytearray | memoryview):
        raw = bytes(text)
    else:
        raise Base64urlError(f"not base64url: a {type(text).__name__}, not text")
    # The standard alphabet's own characters and padding are refused here
    # (memchr, in C); every other character outside the alphabet is refused
    # by the strict decoder below, after "-" and "_" are mapped to "+" and "/".
    if b"+" in raw or b"/" in raw or b"=" in raw:
        raise Base64urlError("not base64url: characters outside [A-Za-z0-9_-] (no padding allowed)")
    remainder = len(raw) % 4
    if remainder == 1:
        raise Base64urlError("not base64url: impossible length")
    try:
        decoded = binascii.a2b_base64(
            raw.translate(_B64URL_TO_STANDARD) + b"=" * (-len(raw) % 4), strict_mode=True
        )
    except binascii.Error:
        raise Base64urlError(
            "not base64url: characters outside [A-Za-z0-9_-] (no padding allowed)"
        ) from None
    # The last character of a 2- or 3-character final group carries 4 or 2
    # bits that encode nothing; requiring them to be zero is what re-encoding
    # and comparing would check, without a second pass over the whole text.
    if remainder and _B64URL_VALUES[raw[-1]] & _UNUSED_BITS[remainder]:
        raise Base64urlError("not base64url: non-zero unused bits (non-canonical encoding)")
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
    """True when orjson's sorted output is exactly the RFC 8785 output of ``value``.

    Member names are not inspected here: orjson refuses a name that is not
    exactly a ``str``, and :func:`canonical_json_fast` refuses output holding
    any character at or above U+E000 (where the two sort orders differ).
    """
    # Exact types first (what json and orjson parsers build): one ``type`` look-up
    # per value instead of a chain of isinstance checks.
    stack: list[Any] = [value]
    push_all = stack.extend
    pop = stack.pop
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict:
            push_all(item.values())
        elif kind is list:
            push_all(item)
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif not _subclass_eligible(item, stack):
            return False
    return True


def _subclass_eligible(item: Any, stack: list[Any]) -> bool:
    """The slower checks for values of subclasses of the JSON types (and tuples)."""
    if isinstance(item, bool | str):
        return True
    if isinstance(item, int):
        return -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER
    if isinstance(item, dict):
        for key, member in item.items():
            if type(key) is not str:
                return False
            stack.append(member)
        return True
    if isinstance(item, list | tuple):
        stack.extend(item)
        return True
    # floats (ECMAScript number formatting) and everything else: reference path
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes of ``value`` (spec §8.3).

    Money amounts in the protocol are decimal strings, so messages never need
    floats; floats are nevertheless serialized as RFC 8785 §3.2.2.3 says.

    Raises:
        LocalProtocolError: NON_CANONICAL_PAYLOAD if ``value`` has no canonical
            form (see :func:`canonical_json_reference`).
    """
    encoded = canonical_json_fast(value)
    return encoded if encoded is not None else canonical_json_reference(value)


def canonical_json_fast(value: Any, *, numbers_checked: bool = False) -> bytes | None:
    """RFC 8785 canonical bytes of ``value`` by the fast exact path, or ``None``.

    ``None`` means the value needs the reference path (floating-point or
    long numbers, a member name at or above U+E000, types other than the
    JSON ones, strings that are not valid Unicode). Bytes returned are the
    canonical form of a value whose objects have unique member names (orjson
    takes member names that are ``str`` exactly), so parsing them again
    cannot fail. Never raises.

    ``numbers_checked=True`` skips the walk over the value that looks for
    numbers off the fast path: the caller vouches that every number in it
    is an ``int`` within ±(2**53 - 1) (never a float), as in the payload of
    a validated message model (the schemas have no number type and bound
    every integer). orjson still refuses anything that is not JSON, and the
    output is still checked for characters at or above U+E000.
    """
    if not numbers_checked and not _fast_path_eligible(value):
        return None
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. a lone surrogate, a key that is not a str: the reference path
        return None
    # A character at or above U+E000 anywhere (member names are what matters)
    # leaves the sort order to the reference implementation.
    return encoded if _below_sort_order_boundary(encoded) else None


# -- lexical helpers ------------------------------------------------------------------------------


def strip_json_strings(text: bytes) -> bytes:
    """The bytes of JSON ``text`` outside its string tokens (member names included).

    What is left is the text's structure and its literals: brackets, colons,
    commas, numbers, ``true``, ``false``, ``null`` (and whatever else malformed
    text holds). An escaped quote does not end a string. An unterminated
    string is dropped together with everything after its opening quote.
    Never raises; the work is done in C (``bytes.split`` or the regex engine).
    """
    if b"\\" not in text:
        # Without escapes every quote opens or closes a string: the pieces
        # between quotes alternate outside, inside, outside, ... and an odd
        # number of quotes leaves the unterminated string as the last piece.
        return b"".join(text.split(b'"')[::2])
    outside = _STRING_TOKEN.sub(b"", text)
    unterminated = outside.find(b'"')
    return outside if unterminated < 0 else outside[:unterminated]


def longest_json_string(text: bytes) -> int:
    """Length in bytes of the longest complete string token of JSON ``text`` (0 if none).

    A token is measured as written: quotes and escapes included. An
    unterminated string is not a token and is not measured. Never raises.
    """
    if b"\\" not in text:
        pieces = text.split(b'"')
        # pieces[1], pieces[3], ... are string contents; only those followed
        # by another piece were closed by a quote.
        closed = pieces[1 : len(pieces) - 1 : 2]
        return max(map(len, closed)) + 2 if closed else 0
    return max(map(len, _STRING_TOKEN.findall(text)), default=0)


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


def _parse_if_canonical(
    payload: bytes, outside_strings: bytes | None = None
) -> dict[str, Any] | None:
    """The object ``payload`` holds if it is provably canonical by the fast route, else ``None``.

    The fast route parses with orjson (which keeps the last of repeated
    members) and serializes the result again. Equal bytes prove that the
    payload is a serialization of an object *without* repeated members (the
    output has none, and the same bytes parse the same way) and, when the
    payload has no floating-point or long numbers and no character at or
    above U+E000, that it is the RFC 8785 serialization (the same conditions
    as :func:`canonical_json`'s fast path). Everything else (``None``) goes to
    the strict parser, which gives the same verdict on these payloads and
    names the fault on the others.
    """
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(parsed) is not dict or not _below_sort_order_boundary(payload):
        return None
    try:
        if orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS) != payload:
            return None
    except TypeError:  # pragma: no cover - orjson parses only what it can serialize
        return None
    if outside_strings is None:
        outside_strings = strip_json_strings(payload)
    if _has_float_or_long_number(outside_strings):
        return None
    return parsed


def _below_sort_order_boundary(encoded: bytes) -> bool:
    """Whether UTF-8 ``encoded`` holds no character at or above U+E000."""
    # isascii() is a word-at-a-time check; only non-ASCII text needs the regex.
    return encoded.isascii() or _HIGH_LEAD_BYTES.search(encoded) is None


def _has_float_or_long_number(structure: bytes) -> bool:
    """Whether the text outside the strings of valid JSON may hold a number off the fast path.

    Outside strings, ``.`` and ``E`` occur only in floating-point numbers, and
    ``e`` only in them and in the literals ``true`` and ``false``. A run of
    sixteen digits may be an integer beyond MAX_SAFE_INTEGER. Substring
    searches and counts (in C) decide.
    """
    if b"." in structure or b"E" in structure:
        return True
    if structure.count(b"e") != structure.count(b"true") + structure.count(b"false"):
        return True
    return _LONG_NUMBER in structure.translate(_DIGITS_TO_ZERO)


def parse_json_object(payload: bytes, *, what: str = "payload") -> dict[str, Any]:
    """Parse UTF-8 JSON text whose top level is an object, refusing duplicate members.

    Used for JOSE headers, which must be unambiguous but need not be canonical.

    Raises:
        RemoteProtocolError: MALFORMED_JSON (not UTF-8, not JSON, not an
            object), DUPLICATE_MEMBER, or NESTING_TOO_DEEP.
    """
    fast = _parse_if_canonical(payload)
    if fast is not None:
        return fast  # canonical text has no repeated member (see _parse_if_canonical)
    parsed = _strict_loads(payload, _ParseFacts(), what=what)
    if not isinstance(parsed, dict):
        raise RemoteProtocolError(ErrorCode.MALFORMED_JSON, f"{what} is not a JSON object")
    return parsed


def parse_canonical(payload: bytes, *, outside_strings: bytes | None = None) -> dict[str, Any]:
    """Parse a received payload and require it to be canonical (spec §8.3).

    No size or nesting limits are applied here: :mod:`vrm_protocol.limits`
    applies them to the raw bytes before this runs. ``outside_strings``, when
    given, must be exactly :func:`strip_json_strings` of ``payload`` (a caller
    that computed it for the limits passes it on, so the payload is stripped
    once).

    Raises:
        RemoteProtocolError: MALFORMED_JSON (not UTF-8 JSON text, or the top
            level is not an object), DUPLICATE_MEMBER (an object repeats a
            member name), NON_CANONICAL_PAYLOAD (valid JSON, but not the RFC
            8785 serialization of its own value), NESTING_TOO_DEEP (deeper
            than the parser can go).
    """
    fast = _parse_if_canonical(payload, outside_strings)
    if fast is not None:
        return fast
    # Not provably canonical on the fast route: the strict parser decides, and
    # names the fault (malformed, duplicate member, or not canonical).
    facts = _ParseFacts()
    parsed = _strict_loads(payload, facts, what="payload")
    if not isinstance(parsed, dict):
        raise RemoteProtocolError(ErrorCode.MALFORMED_JSON, "payload is not a JSON object")
    if facts.fast_path and _below_sort_order_boundary(payload):
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
