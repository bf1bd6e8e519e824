"""Generate the canonical-JSON test vectors: ``conformance/vectors/canonical/*.json``
(RFC 8785; spec §8.3, §14.2).

Run ``python -m conformance.vectors.generate_canonical`` from the repository
root. The output is deterministic; ``tests/library/test_canonical_vectors.py``
fails when the committed files differ from what this script makes.

Every vector gives the payload bytes (``input`` as text and, for
byte-exactness, ``inputBase64url``) and what a receiver concludes about them
as a message payload after the signature check (spec §8.3):

* ``expected.valid``: the bytes are the RFC 8785 serialization of a JSON
  object; otherwise ``expected.error`` is ``duplicate-member``,
  ``non-canonical-payload`` or ``malformed-json``;
* ``expected.canonical``: where the input is JSON without duplicate member
  names, the canonical serialization of its value (what a correct RFC 8785
  implementation outputs for it).

The canonical outputs come from the ``rfc8785`` package (the library's
reference path); the RFC's own examples are checked against the RFC text in
``tests/library/test_canonical.py``.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from vrm_protocol.canonical import (
    b64url_encode,
    canonical_json_reference,
    parse_canonical,
)
from vrm_protocol.errors import ProtocolError, RemoteProtocolError

__all__ = ["CANONICAL_DIR", "build_vectors", "main", "write_vectors"]

CANONICAL_DIR: Final = Path(__file__).resolve().parent / "canonical"

# RFC 8785 §3.2.2, the example input.
_RFC8785_EXAMPLE = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
# RFC 8785 §3.2.3, the sorting example.
_RFC8785_SORTING = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
# RFC 8785 Appendix B: IEEE 754 bit patterns (the finite ones).
_RFC8785_NUMBERS = (
    "0000000000000000",
    "8000000000000000",
    "0000000000000001",
    "8000000000000001",
    "7fefffffffffffff",
    "ffefffffffffffff",
    "4340000000000000",
    "c340000000000000",
    "4430000000000000",
    "44b52d02c7e14af5",
    "44b52d02c7e14af6",
    "44b52d02c7e14af7",
    "444b1ae4d6e2ef4e",
    "444b1ae4d6e2ef4f",
    "444b1ae4d6e2ef50",
    "3eb0c6f7a0b5ed8c",
    "3eb0c6f7a0b5ed8d",
    "41b3de4355555553",
    "41b3de4355555554",
    "41b3de4355555555",
    "41b3de4355555556",
    "41b3de4355555557",
    "becbf647612f3696",
    "43143ff3c1cb0959",
)

_REQUIREMENT_CANONICAL = "VRM-SIG-011"
_REQUIREMENT_DUPLICATES = "VRM-SIG-012"


def _as_json_number(text: str) -> int | float:
    # RFC 8785 §3.2.2.3: a JSON number is an IEEE 754 double; integers beyond
    # the exactly representable range are read as the double they round to.
    number = int(text)
    return number if -(2**53 - 1) <= number <= 2**53 - 1 else float(text)


def _conclusion(payload: bytes) -> dict[str, Any]:
    expected: dict[str, Any]
    try:
        parse_canonical(payload)
    except RemoteProtocolError as error:
        expected = {"valid": False, "error": error.code.value}
    else:
        expected = {"valid": True}
    if expected.get("error") in (None, "non-canonical-payload"):
        try:
            value = json.loads(payload.decode("utf-8"), parse_int=_as_json_number)
            expected["canonical"] = canonical_json_reference(value).decode("utf-8")
        except (ValueError, ProtocolError):
            pass  # no canonical form (e.g. a number beyond the double range)
    return expected


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every canonical vector by file name."""
    vectors: dict[str, dict[str, Any]] = {}

    def add(
        name: str,
        description: str,
        payload: bytes,
        *,
        requirement: str = _REQUIREMENT_CANONICAL,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        vector: dict[str, Any] = {"id": f"canonical-{name}", "description": description}
        vector["requirement"] = requirement
        vector.update(extra or {})
        vector["input"] = payload.decode("utf-8", errors="replace")
        vector["inputBase64url"] = b64url_encode(payload)
        vector["expected"] = _conclusion(payload)
        vectors[f"{name}.json"] = vector

    example = _RFC8785_EXAMPLE.encode("utf-8")
    add(
        "rfc8785-example",
        "The example input of RFC 8785 §3.2.2 (whitespace, numbers, escapes).",
        example,
    )
    canonical_example = canonical_json_reference(json.loads(example))
    add("rfc8785-example-output", "The canonical output of RFC 8785 §3.2.2.", canonical_example)
    sorting = _RFC8785_SORTING.encode("utf-8")
    add(
        "rfc8785-sorting",
        "The sorting example of RFC 8785 §3.2.3 (UTF-16 code unit order).",
        sorting,
    )
    add(
        "rfc8785-sorting-output",
        "The canonical output of RFC 8785 §3.2.3: the emoji (surrogates D83D DE00) sorts "
        "before U+FB33, unlike in code point order.",
        canonical_json_reference(json.loads(sorting)),
    )
    by_code_point = json.dumps(
        dict(sorted(json.loads(sorting).items())), ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    add(
        "sorting-by-code-point",
        "The RFC 8785 §3.2.3 members sorted by code point instead of UTF-16 code unit.",
        by_code_point,
    )
    for ieee in _RFC8785_NUMBERS:
        (number,) = struct.unpack(">d", bytes.fromhex(ieee))
        # Python's repr: the shortest round-trip spelling, which is sometimes
        # canonical (5e-324) and sometimes not (1e-06 for 0.000001, 1e+21's
        # neighbours, 9007199254740992.0).
        spelled = b'{"n":' + repr(number).encode("ascii") + b"}"
        add(
            f"number-{ieee}",
            f"RFC 8785 Appendix B: the double with bits {ieee}, written as {number!r}.",
            spelled,
            extra={"ieee754": ieee},
        )
    cases: list[tuple[str, str, bytes, str]] = [
        ("empty-object", "The empty object.", b"{}", _REQUIREMENT_CANONICAL),
        (
            "whitespace",
            "Insignificant whitespace after a colon.",
            b'{"a": 1}',
            _REQUIREMENT_CANONICAL,
        ),
        ("trailing-newline", "A newline after the object.", b'{"a":1}\n', _REQUIREMENT_CANONICAL),
        ("member-order", "Members not in sorted order.", b'{"b":1,"a":2}', _REQUIREMENT_CANONICAL),
        (
            "nested-order",
            "Nested members not in sorted order.",
            b'{"a":{"d":1,"c":2}}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "integer-as-float",
            "1.0 where the canonical number is 1.",
            b'{"a":1.0}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "exponent-upper",
            "1E30 where the canonical number is 1e+30.",
            b'{"a":1E30}',
            _REQUIREMENT_CANONICAL,
        ),
        ("minus-zero", "-0 where the canonical number is 0.", b'{"a":-0}', _REQUIREMENT_CANONICAL),
        (
            "money-string",
            "Money as a decimal string (the protocol's rule) is canonical as written.",
            b'{"amount":"28500.00","currency":"USD"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "unicode-escaped",
            "A non-ASCII character escaped (\\u00e9) instead of raw UTF-8.",
            b'{"a":"\\u00e9"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "unicode-raw",
            "A non-ASCII character as raw UTF-8: canonical.",
            '{"a":"é€😀"}'.encode(),
            _REQUIREMENT_CANONICAL,
        ),
        (
            "ascii-escaped",
            "An ASCII letter escaped (\\u0041).",
            b'{"a":"\\u0041"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "solidus-escaped",
            "An escaped solidus (\\/), which RFC 8785 writes as /.",
            b'{"a":"\\/"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "control-short-escape",
            "A newline as \\n and a unit separator as \\u001f: canonical.",
            b'{"a":"\\n\\u001f"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "control-upper-hex",
            "A control character escaped with upper-case hex (\\u001F).",
            b'{"a":"\\u001F"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "control-long-escape",
            "A newline escaped as \\u000a instead of \\n.",
            b'{"a":"\\u000a"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "lone-surrogate",
            "An unpaired surrogate escape: no canonical UTF-8 form.",
            b'{"a":"\\ud800"}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "integer-beyond-double",
            "9007199254740993 is not a double; it reads as 9007199254740992.",
            b'{"a":9007199254740993}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "number-overflow",
            "1e400 is beyond the double range: no canonical form.",
            b'{"a":1e400}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "duplicate-member",
            "A member name repeated at the top level.",
            b'{"a":1,"a":1}',
            _REQUIREMENT_DUPLICATES,
        ),
        (
            "duplicate-member-nested",
            "A member name repeated in a nested object.",
            b'{"a":{"b":1,"b":2}}',
            _REQUIREMENT_DUPLICATES,
        ),
        (
            "duplicate-member-escaped",
            'The same member name spelled raw and escaped ("a" and "\\u0061").',
            b'{"a":1,"\\u0061":2}',
            _REQUIREMENT_DUPLICATES,
        ),
        (
            "top-level-array",
            "A JSON array: a payload is an object.",
            b"[1,2]",
            _REQUIREMENT_CANONICAL,
        ),
        ("nan", "NaN is not JSON.", b'{"a":NaN}', _REQUIREMENT_CANONICAL),
        (
            "byte-order-mark",
            "A UTF-8 byte order mark before the object.",
            b'\xef\xbb\xbf{"a":1}',
            _REQUIREMENT_CANONICAL,
        ),
        (
            "invalid-utf8",
            "A byte sequence that is not UTF-8 inside a string.",
            b'{"a":"\xff"}',
            _REQUIREMENT_CANONICAL,
        ),
    ]
    for name, description, payload, requirement in cases:
        add(name, description, payload, requirement=requirement)
    return vectors


def _render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_vectors(directory: Path = CANONICAL_DIR) -> list[Path]:
    """Write every vector into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, vector in sorted(build_vectors().items()):
        path = directory / name
        path.write_text(_render(vector), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write the vectors (default ``conformance/vectors/canonical``)."""
    parser = argparse.ArgumentParser(description="Generate the canonical-JSON test vectors.")
    parser.add_argument("--out", type=Path, default=CANONICAL_DIR, help="output directory")
    arguments = parser.parse_args(argv)
    for path in write_vectors(arguments.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
