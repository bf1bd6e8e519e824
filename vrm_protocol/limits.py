"""Size and structure limits, applied to raw bytes before any parsing (spec §8.1, §11.6).

A receiver bounds the work a stranger can make it do *before* it decodes
JSON: the token's size is compared first, then one linear scan of the
payload bytes bounds nesting depth, array length and string length. The
scan never recurses, so a payload of ten thousand ``[`` costs one pass, not
a stack overflow in the JSON parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from vrm_protocol.errors import ErrorCode, RemoteProtocolError

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "check_nesting",
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

# A complete JSON string token (escapes included), in the "unrolled loop" form
# that the regex engine runs without backtracking.
_STRING: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Every byte except the structural ones the scan looks at.
_NOT_STRUCTURAL: Final = bytes(sorted(set(range(256)) - set(b'[]{},"')))
_OPEN_ARRAY: Final = ord("[")
_OPEN_OBJECT: Final = ord("{")
_CLOSE: Final = frozenset(b"]}")


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
    # String tokens are measured and then removed by the regex engine (in C);
    # what is left of the payload is its skeleton of brackets and commas.
    # (No string can be longer than the payload: short payloads skip the measuring.)
    longest = 0
    if len(payload) > limits.max_string_length:
        longest = max(map(len, _STRING.findall(payload)), default=0)
    if longest > limits.max_string_length:
        raise RemoteProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"a string of {longest} bytes exceeds the limit of {limits.max_string_length}",
        )
    skeleton = _STRING.sub(b"", payload).translate(None, _NOT_STRUCTURAL)
    unterminated = skeleton.find(b'"')
    if unterminated >= 0:
        # An unterminated string: malformed JSON, left to the parser.
        skeleton = skeleton[:unterminated]
    max_depth = limits.max_nesting_depth
    max_commas = limits.max_array_items - 1
    openers = skeleton.count(b"[") + skeleton.count(b"{")
    if openers <= max_depth and skeleton.count(b",") <= max_commas:
        return  # no container can be deeper or longer than these counts allow
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
