"""Size and structure limits, applied to raw bytes before any parsing (spec §8.1, §11.6).

A receiver bounds the work a stranger can make it do *before* it decodes
JSON: the token's size is compared first, then the payload bytes are
stripped of their strings (in C) and what is left, the skeleton of brackets
and commas, bounds nesting depth and array length; string tokens bound
string length. Nothing recurses, so a payload of ten thousand ``[`` costs a
few passes, not a stack overflow in the JSON parser.

The common case costs a few C-level passes: counts that cannot exceed a
limit, or peeling innermost containers off (at most depth-limit + 1
passes). Only a payload that exceeds a limit, or has unclosed containers,
is scanned one byte at a time, by the scan that defines the limits and
names the first fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final

from vrm_protocol.canonical import longest_json_string, strip_json_strings
from vrm_protocol.errors import ErrorCode, RemoteProtocolError

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "check_nesting",
    "check_structure",
    "check_token_size",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """The receiver's limits (spec §11.6). Every field is a maximum, inclusive.

    Attributes:
        max_message_bytes: size of the compact JWS as received.
        max_nesting_depth: arrays and objects open at once (the top-level
            object counts as depth 1).
        max_array_items: elements of any one array.
        max_string_length: bytes of any one JSON string token as written,
            quotes and escapes included (member names too).
    """

    max_message_bytes: int = 65536
    max_nesting_depth: int = 16
    max_array_items: int = 256
    max_string_length: int = 16384

    def __post_init__(self) -> None:
        for name in ("max_message_bytes", "max_nesting_depth", "max_array_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_string_length < 2:
            raise ValueError("max_string_length must be at least 2 (the quotes)")


#: The limits a receiver applies unless configured otherwise.
DEFAULT_LIMITS: Final = Limits()

# Every byte except the structural ones the scan looks at.
_NOT_STRUCTURAL: Final = bytes(sorted(set(range(256)) - set(b"[]{},")))
# An innermost container of a skeleton: an opener, the commas directly in it,
# a closer. (Any closer closes the container opened last, as in the scan.)
_INNERMOST: Final = re.compile(rb"[\[{],*[\]}]")
#: Maps both openers to "(" and both closers to ")" (the depth check ignores the kind).
_TO_PARENTHESES: Final = bytes.maketrans(b"[{]}", b"(())")
_OPEN_ARRAY: Final = ord("[")
_OPEN_OBJECT: Final = ord("{")
_CLOSE: Final = frozenset(b"]}")


@cache
def _long_innermost_array(max_array_items: int) -> re.Pattern[bytes]:
    """An innermost array with more than ``max_array_items`` elements (as many commas)."""
    return re.compile(rb"\[,{%d,}[\]}]" % max_array_items)


def check_token_size(token: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a token larger than ``limits.max_message_bytes`` (spec §8.1).

    Raises:
        RemoteProtocolError: PAYLOAD_TOO_LARGE.
    """
    if len(token) > limits.max_message_bytes:
        raise RemoteProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"message is {len(token)} bytes; the limit is {limits.max_message_bytes}",
        )


def check_nesting(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    """Bound nesting depth, array length and string length of JSON bytes (spec §8.1).

    A byte-level scan that runs before the JSON parser: it tracks ``[`` and
    ``{`` outside strings (escaped quotes do not end a string). It is not a
    validator: malformed JSON that stays within the limits passes here and is
    refused by the parser later with ``malformed-json``.

    Raises:
        RemoteProtocolError: NESTING_TOO_DEEP when more than
            ``limits.max_nesting_depth`` arrays/objects are open at once;
            PAYLOAD_TOO_LARGE when an array has more than
            ``limits.max_array_items`` elements or a string token is longer than
            ``limits.max_string_length`` bytes.
    """
    if (
        len(payload) <= limits.max_string_length
        and payload.count(b"[") + payload.count(b"{") <= limits.max_nesting_depth
        and payload.count(b",") < limits.max_array_items
    ):
        # Counted with the strings (where brackets and commas are no structure),
        # these overestimate depth and array length: within the limits even so.
        # A short text (a JOSE header) is judged without being stripped.
        return
    check_structure(payload, strip_json_strings(payload), limits)


def check_structure(
    payload: bytes, outside_strings: bytes, limits: Limits = DEFAULT_LIMITS
) -> None:
    """:func:`check_nesting`, given ``strip_json_strings(payload)`` already computed.

    For a caller that needs the text outside the strings again (the
    signing profile's canonical check does): the payload is stripped once.
    ``outside_strings`` must be exactly
    :func:`~vrm_protocol.canonical.strip_json_strings` of ``payload``.

    Raises:
        RemoteProtocolError: as :func:`check_nesting`.
    """
    # String tokens are measured and removed in C (bytes.split or the regex
    # engine); what is left of the payload is its skeleton of brackets and
    # commas. (No string can be longer than the payload: short payloads skip
    # the measuring.)
    longest = 0
    if len(payload) > limits.max_string_length and not _strings_fit(
        payload, limits.max_string_length
    ):
        longest = longest_json_string(payload)
    if longest > limits.max_string_length:
        raise RemoteProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"a string of {longest} bytes exceeds the limit of {limits.max_string_length}",
        )
    skeleton = outside_strings.translate(None, _NOT_STRUCTURAL)
    max_depth = limits.max_nesting_depth
    openers = skeleton.count(b"[") + skeleton.count(b"{")
    long_arrays_possible = skeleton.count(b",") >= limits.max_array_items
    if openers <= max_depth and not long_arrays_possible:
        return  # no container can be deeper or longer than these counts allow
    if long_arrays_possible:
        if _skeleton_within_limits(skeleton, limits):
            return
    elif _depth_within_limit(skeleton.translate(_TO_PARENTHESES, b","), max_depth):
        return
    # The peeling found a fault, or the skeleton has unclosed containers:
    # the exact scan decides, and names the first fault.
    _scan(skeleton, limits)


def _strings_fit(payload: bytes, max_string_length: int) -> bool:
    """Whether no string token of ``payload`` can be longer than ``max_string_length``, cheaply.

    ``True`` is certain; ``False`` means "measure" (:func:`longest_json_string`).
    Without escapes, a string token longer than the limit holds a run of at
    least ``max_string_length - 1`` bytes without a quote, and any run of at
    least ``2 * block - 1`` bytes covers one whole aligned block of ``block``
    bytes. So when every whole block holds a quote (one ``find`` per block,
    in C) no string is too long, and the payload is not split into its tokens.
    """
    block = max_string_length // 2 - 1
    if block < 1 or b"\\" in payload:
        return False  # an escaped quote inside a string would hide a long one
    find = payload.find
    return all(
        find(b'"', start, start + block) >= 0 for start in range(0, len(payload) - block + 1, block)
    )


def _depth_within_limit(parentheses: bytes, max_depth: int) -> bool:
    """Whether a skeleton reduced to ``(`` and ``)`` nests at most ``max_depth`` deep.

    Each pass removes every innermost pair at once (``bytes.replace``, in C);
    a pair is removed in the pass equal to its height, so a text whose
    parentheses all match is as deep as the number of passes it takes. At
    most ``max_depth + 1`` passes run. ``False`` means too deep *or* an
    opener is never closed (the depth then depends on what precedes it).
    """
    for _ in range(max_depth):
        peeled = parentheses.replace(b"()", b"")
        if len(peeled) == len(parentheses):
            break  # nothing left to peel
        parentheses = peeled
    else:
        if b"()" in parentheses:
            return False  # a pair survived max_depth passes: too deep
    # What remains are closers without an opener (ignored, as by the scan)
    # and, in malformed text, openers without a closer.
    return b"(" not in parentheses


def _skeleton_within_limits(skeleton: bytes, limits: Limits) -> bool:
    """Whether a well-bracketed skeleton is within the depth and array limits.

    Peels the innermost containers off, all at once, pass after pass (in C).
    Each pass removes one level, so a skeleton whose brackets all match is
    as deep as the number of passes it takes; an array is measured by its
    commas when it is innermost, its nested containers having been peeled
    off with their own commas. At most ``max_nesting_depth + 1`` passes run.
    ``False`` means a limit is exceeded *or* an opener is never closed (the
    depth then depends on what precedes it): :func:`_scan` decides those.
    """
    long_array = _long_innermost_array(limits.max_array_items)
    for _ in range(limits.max_nesting_depth):
        if long_array.search(skeleton) is not None:
            return False
        peeled = _INNERMOST.sub(b"", skeleton)
        if len(peeled) == len(skeleton):
            break  # nothing left to peel
        skeleton = peeled
    else:
        if _INNERMOST.search(skeleton) is not None:
            return False  # a container survived max_nesting_depth passes: too deep
    # What remains are closers without an opener (ignored, as by the scan)
    # and, in malformed text, openers without a closer.
    return b"[" not in skeleton and b"{" not in skeleton


def _scan(skeleton: bytes, limits: Limits) -> None:
    """The exact scan of a skeleton, one byte at a time (the definition of the limits).

    Raises:
        RemoteProtocolError: NESTING_TOO_DEEP or PAYLOAD_TOO_LARGE, for the
            first fault in the text.
    """
    max_depth = limits.max_nesting_depth
    max_commas = limits.max_array_items - 1
    # One entry per open container: the number of commas seen directly in it,
    # or -1 for an object (whose members are not counted).
    open_containers: list[int] = []
    for byte in skeleton:
        if byte in (_OPEN_ARRAY, _OPEN_OBJECT):
            open_containers.append(0 if byte == _OPEN_ARRAY else -1)
            if len(open_containers) > max_depth:
                raise RemoteProtocolError(
                    ErrorCode.NESTING_TOO_DEEP,
                    f"JSON nests deeper than {max_depth} arrays/objects",
                )
        elif byte in _CLOSE:
            if open_containers:
                open_containers.pop()
        elif open_containers and open_containers[-1] >= 0:  # a comma inside an array
            open_containers[-1] += 1
            if open_containers[-1] > max_commas:
                raise RemoteProtocolError(
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"an array has more than {limits.max_array_items} elements",
                )
