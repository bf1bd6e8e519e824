"""RFC 8785 canonical JSON, strict parsing, base64url and message digests (spec §8.3, §8.5)."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from vrm_protocol.canonical import (
    MAX_SAFE_INTEGER,
    b64url_decode,
    b64url_encode,
    canonical_json,
    canonical_json_reference,
    is_canonical,
    message_digest,
    parse_canonical,
    parse_json_object,
)
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError

# -- RFC 8785 known answers -----------------------------------------------------------------------

# RFC 8785 §3.2.2, the example input and its canonical output.
RFC8785_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC8785_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)

# RFC 8785 §3.2.3: member names sort by UTF-16 code units, so the emoji (a
# surrogate pair starting 0xD83D) sorts before U+FB33, unlike code point order.
RFC8785_SORTING_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC8785_SORTED_VALUES = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
]

# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialization.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def test_rfc8785_example_is_canonicalized_exactly() -> None:
    assert canonical_json(json.loads(RFC8785_INPUT)) == RFC8785_OUTPUT.encode("utf-8")


def test_rfc8785_example_output_is_accepted_and_input_is_not() -> None:
    assert parse_canonical(RFC8785_OUTPUT.encode("utf-8"))["literals"] == [None, True, False]
    with pytest.raises(RemoteProtocolError) as caught:
        parse_canonical(RFC8785_INPUT.encode("utf-8"))
    assert caught.value.code is ErrorCode.NON_CANONICAL_PAYLOAD


def test_rfc8785_member_names_sort_by_utf16_code_units() -> None:
    canonical = canonical_json(json.loads(RFC8785_SORTING_INPUT))
    assert list(json.loads(canonical).values()) == RFC8785_SORTED_VALUES
    # The canonical form is accepted; the same members in code point order are not.
    parse_canonical(canonical)
    by_code_point = json.dumps(
        dict(sorted(json.loads(RFC8785_SORTING_INPUT).items())),
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    assert by_code_point != canonical
    with pytest.raises(RemoteProtocolError) as caught:
        parse_canonical(by_code_point)
    assert caught.value.code is ErrorCode.NON_CANONICAL_PAYLOAD


@pytest.mark.parametrize(("ieee_hex", "expected"), RFC8785_NUMBERS)
def test_rfc8785_appendix_b_numbers(ieee_hex: str, expected: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee_hex))
    assert canonical_json({"n": number}) == b'{"n":' + expected.encode() + b"}"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 2**53, -(2**53)])
def test_values_without_canonical_form_are_refused_locally(value: float) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        canonical_json({"n": value})
    assert caught.value.code is ErrorCode.NON_CANONICAL_PAYLOAD


def test_safe_integer_bounds_are_canonical() -> None:
    encoded = canonical_json({"max": MAX_SAFE_INTEGER, "min": -MAX_SAFE_INTEGER})
    assert parse_canonical(encoded) == {"max": MAX_SAFE_INTEGER, "min": -MAX_SAFE_INTEGER}


def test_large_integers_are_read_as_the_doubles_they_denote() -> None:
    # RFC 8785 Appendix B: 2**53 and 2**68 are canonical in integer spelling.
    assert parse_canonical(b'{"a":9007199254740992}') == {"a": 2.0**53}
    assert parse_canonical(b'{"a":295147905179352830000}') == {"a": 2.0**68}


# -- strict parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"a":1,"a":2}', ErrorCode.DUPLICATE_MEMBER),
        (b'{"a":{"b":1,"b":1}}', ErrorCode.DUPLICATE_MEMBER),
        (b'{"a":1, "b":2}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"b":1,"a":2}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":1.0}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":1E2}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":-0}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":"\\u0041"}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":"\\u00e9"}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":"\\/"}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":"\\ud800"}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":9007199254740993}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":1' + b"0" * 500 + b"}", ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":1e400}', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'{"a":1}\n', ErrorCode.NON_CANONICAL_PAYLOAD),
        (b'\xef\xbb\xbf{"a":1}', ErrorCode.MALFORMED_JSON),
        (b'{"a":NaN}', ErrorCode.MALFORMED_JSON),
        (b'{"a":Infinity}', ErrorCode.MALFORMED_JSON),
        (b'{"a":1', ErrorCode.MALFORMED_JSON),
        (b'{"a":"\xff"}', ErrorCode.MALFORMED_JSON),
        (b"[1,2]", ErrorCode.MALFORMED_JSON),
        (b'"text"', ErrorCode.MALFORMED_JSON),
        (b"", ErrorCode.MALFORMED_JSON),
    ],
)
def test_parse_canonical_refuses(payload: bytes, code: ErrorCode) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_canonical(payload)
    assert caught.value.code is code
    with pytest.raises(RemoteProtocolError):
        is_canonical(payload)


def test_deep_nesting_beyond_the_parser_is_a_nesting_error() -> None:
    payload = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(RemoteProtocolError) as caught:
        parse_canonical(payload)
    assert caught.value.code is ErrorCode.NESTING_TOO_DEEP


def test_parse_json_object_allows_any_order_but_no_duplicates() -> None:
    assert parse_json_object(b'{ "typ":"x", "alg":"EdDSA" }') == {"typ": "x", "alg": "EdDSA"}
    with pytest.raises(RemoteProtocolError) as caught:
        parse_json_object(b'{"alg":"EdDSA","alg":"none"}')
    assert caught.value.code is ErrorCode.DUPLICATE_MEMBER
    with pytest.raises(RemoteProtocolError) as caught:
        parse_json_object(b"[]")
    assert caught.value.code is ErrorCode.MALFORMED_JSON


def test_non_ascii_payloads_take_the_reference_path_and_agree() -> None:
    value: dict[str, Any] = {"\ufb33": 1, "\U0001f600": 2, "é": "€", "z": "\u2028"}
    encoded = canonical_json(value)
    assert encoded == rfc8785.dumps(value)
    assert parse_canonical(encoded) == value


# -- property tests -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(json_objects)
def test_fast_path_equals_reference_path(value: dict[str, Any]) -> None:
    assert canonical_json(value) == canonical_json_reference(value)


@settings(max_examples=300, deadline=None)
@given(json_objects)
def test_canonical_round_trip(value: dict[str, Any]) -> None:
    encoded = canonical_json(value)
    parsed = parse_canonical(encoded)
    # Parsing and re-serializing is the identity on canonical bytes.
    assert canonical_json(parsed) == encoded


@settings(max_examples=200, deadline=None)
@given(json_objects.filter(lambda value: len(value) >= 1))
def test_pretty_printed_non_empty_objects_are_not_canonical(value: dict[str, Any]) -> None:
    pretty = json.dumps(value, indent=1).encode("utf-8")
    with pytest.raises(RemoteProtocolError) as caught:
        parse_canonical(pretty)
    assert caught.value.code is ErrorCode.NON_CANONICAL_PAYLOAD


# -- base64url and digests ------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.binary(max_size=100))
def test_b64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert b64url_decode(encoded) == data
    assert b64url_decode(encoded.encode("ascii")) == data


@pytest.mark.parametrize(
    "text",
    ["QQ==", "QQ=", "Q", "QQ Q", "QQ\n", "Q+/A", "QR", "AB$", "QUJD\tRA"],
)
def test_b64url_decode_is_strict(text: str) -> None:
    # padding, impossible length, whitespace, the standard alphabet, and
    # non-zero unused bits ("QR" and "QQ" both decode to b"A" leniently).
    with pytest.raises(ValueError, match="base64url"):
        b64url_decode(text)


def _canonical_base64url(text: bytes) -> bool:
    """Whether ``text`` is the unpadded base64url encoding of some bytes (the one spelling)."""
    try:
        decoded = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except ValueError:
        return False
    return b64url_encode(decoded).encode("ascii") == text


@settings(max_examples=500)
@given(
    st.binary(max_size=10)
    | st.text(alphabet="AQgwBCz09-_+/= \n\té\x00", max_size=10).map(str.encode)
)
def test_b64url_decode_accepts_exactly_the_one_spelling(text: bytes) -> None:
    try:
        decoded = b64url_decode(text)
    except ValueError:
        assert not _canonical_base64url(text)
    else:
        assert b64url_encode(decoded).encode("ascii") == text


def test_message_digest_is_sha256_of_the_token_bytes() -> None:
    token = b"eyJhbGciOiJFZERTQSJ9.e30.c2ln"
    expected = base64.urlsafe_b64encode(hashlib.sha256(token).digest()).rstrip(b"=").decode()
    assert message_digest(token) == "sha-256:" + expected
    # the empty input: the well-known SHA-256 of nothing
    assert message_digest(b"") == "sha-256:47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
