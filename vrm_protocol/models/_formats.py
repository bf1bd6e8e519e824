"""Value semantics that the schema validators and the models share.

The protocol's schemas (spec §5, §6) use four string formats and
ECMA-262 regular expressions. Three engines evaluate them: the reference
validator (``jsonschema``, Python ``re``), the compiled validator
(``jsonschema_rs``, Rust) and the generated pydantic models (Rust regex).
Left alone they disagree at the edges: Python's ``\\d`` matches any Unicode
digit and its ``$`` matches before a trailing newline, while ECMA-262 (what
JSON Schema 2020-12 §6.4 means by a pattern) does neither. So this module
defines each format once, as a function every engine calls, and rewrites each
pattern into an explicit, engine-neutral form before any engine sees it. The
parity tests hold the three engines to the same verdict on every example and
vector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import Final, Literal

from rfc3986_validator import validate_rfc3986  # type: ignore[import-untyped]

__all__ = [
    "FORMAT_CHECKS",
    "UnsupportedPatternError",
    "is_date",
    "is_date_time",
    "is_email",
    "is_uri",
    "translate_pattern",
]

# -- formats (JSON Schema 2020-12 §7.3; the protocol uses exactly these four) ------------------

_DATE_TIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
_FULL_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# RFC 5322 atext for a dot-atom local part; RFC 1035 LDH labels for the domain.
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL: Final = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})+")
_URI_CHARACTERS: Final = re.compile(r"[\x21-\x7e]+")
#: URI verdicts remembered (a URI in a message is at most 2048 characters).
_URI_CACHE_SIZE: Final = 1024


def _calendar_date(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def is_date_time(value: str) -> bool:
    """Whether ``value`` is an RFC 3339 ``date-time`` (RFC 3339 §5.6).

    Calendar validity is checked (no 30 February); a leap second (``:60``)
    is accepted only where one can occur, at 23:59 UTC.
    """
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, _, sign, off_hour, off_minute = match.groups()
    if not _calendar_date(year, month, day):
        return False
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:
        return False
    offset = 0
    if sign is not None:
        if int(off_hour) > 23 or int(off_minute) > 59:
            return False
        offset = (int(off_hour) * 60 + int(off_minute)) * (1 if sign == "+" else -1)
    if int(second) == 60:
        utc_minute_of_day = (int(hour) * 60 + int(minute) - offset) % (24 * 60)
        return utc_minute_of_day == 23 * 60 + 59
    return True


def is_date(value: str) -> bool:
    """Whether ``value`` is an RFC 3339 ``full-date`` that exists in the calendar."""
    match = _FULL_DATE.fullmatch(value)
    return match is not None and _calendar_date(*match.groups())


def is_uri(value: str) -> bool:
    """Whether ``value`` is an absolute URI (RFC 3986 §3, the ``URI`` rule).

    RFC 3986 URIs consist of printable ASCII only; checking that first also
    closes the trailing-newline gap of ``$`` in the RFC 3986 expression.
    """
    if _URI_CHARACTERS.fullmatch(value) is None:
        return False
    return validate_rfc3986(value, rule="URI") is not None


def is_email(value: str) -> bool:
    """Whether ``value`` is an e-mail address this protocol accepts.

    The protocol's subset of RFC 5321 ``Mailbox``: a dot-atom local part of at
    most 64 characters, ``@``, and a domain name of at least two LDH labels.
    Quoted local parts and address literals are refused: they are legal but
    are not how people write their addresses, and accepting them only widens
    what every receiver must handle.
    """
    if _EMAIL.fullmatch(value) is None:
        return False
    local, _, domain = value.rpartition("@")
    return len(local) <= 64 and len(domain) <= 253


#: The format checks every engine uses, by JSON Schema format name. URIs repeat
#: (a relationship's reply address, a vendor's terms URL) and their check is the
#: costliest, so its verdicts are remembered (bounded; the check is a pure function).
FORMAT_CHECKS: Final[Mapping[str, Callable[[str], bool]]] = MappingProxyType(
    {
        "date-time": is_date_time,
        "date": is_date,
        "uri": lru_cache(maxsize=_URI_CACHE_SIZE)(is_uri),
        "email": is_email,
    }
)

# -- patterns (ECMA-262 as JSON Schema 2020-12 §6.4 requires) --------------------------------

#: ECMA-262 WhiteSpace and LineTerminator (what ``\s`` means there), as literal characters.
_ECMA_WHITESPACE: Final = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_ECMA_LINE_TERMINATORS: Final = "\n\r\u2028\u2029"
_CLASS_ESCAPES: Final = {"d": "0-9", "w": "0-9A-Za-z_", "s": _ECMA_WHITESPACE}
_NEGATED_ESCAPES: Final = {"D": "d", "W": "w", "S": "s"}


class UnsupportedPatternError(ValueError):
    """A schema pattern uses ECMA-262 syntax outside the subset every engine shares."""


def translate_pattern(pattern: str, dialect: Literal["python", "ecma"]) -> str:
    """Rewrite an ECMA-262 ``pattern`` so that every engine gives it its ECMA-262 meaning.

    Shorthand classes become explicit ASCII (``\\d``, ``\\w``) or ECMA
    whitespace (``\\s``) classes, ``.`` excludes the ECMA line terminators,
    and for the ``python`` dialect ``$`` becomes ``\\Z`` (Python's ``$`` also
    matches before a final newline). The ``ecma`` dialect is still valid
    ECMA-262 with the same meaning, and is what the Rust engines receive.

    Raises:
        UnsupportedPatternError: the pattern uses a construct whose meaning
            differs between the engines or that one of them lacks (lookaround,
            backreferences, named groups, ``\\b``, property escapes, negated
            shorthands inside a class).
    """
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern):
                raise UnsupportedPatternError(f"{pattern!r}: ends with a lone backslash")
            escaped = pattern[index + 1]
            index += 2
            if escaped in _CLASS_ESCAPES:
                members = _CLASS_ESCAPES[escaped]
                out.append(members if in_class else f"[{members}]")
            elif escaped in _NEGATED_ESCAPES:
                if in_class:
                    raise UnsupportedPatternError(
                        f"{pattern!r}: \\{escaped} inside a character class"
                    )
                out.append(f"[^{_CLASS_ESCAPES[_NEGATED_ESCAPES[escaped]]}]")
            elif escaped in "bBcpPk" or escaped.isdigit():
                raise UnsupportedPatternError(f"{pattern!r}: \\{escaped} is not supported")
            else:
                out.append("\\" + escaped)
            continue
        index += 1
        if in_class:
            if char == "[":
                raise UnsupportedPatternError(f"{pattern!r}: '[' inside a character class")
            if char == "]":
                in_class = False
            out.append(char)
        elif char == "[":
            if pattern.startswith(("]", "^]"), index):
                raise UnsupportedPatternError(f"{pattern!r}: empty character class")
            in_class = True
            out.append(char)
        elif char == ".":
            out.append(f"[^{_ECMA_LINE_TERMINATORS}]")
        elif char == "$":
            out.append(r"\Z" if dialect == "python" else "$")
        elif char == "(" and pattern.startswith("?", index):
            if not pattern.startswith("?:", index):
                raise UnsupportedPatternError(
                    f"{pattern!r}: only non-capturing groups '(?:' are supported"
                )
            out.append(char)
        else:
            out.append(char)
    if in_class:
        raise UnsupportedPatternError(f"{pattern!r}: unterminated character class")
    return "".join(out)
