"""Size and structure limits on raw bytes, before parsing (spec §8.1, §11.6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrm_protocol.canonical import longest_json_string
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.limits import DEFAULT_LIMITS, Limits, check_nesting, check_token_size


def _code(payload: bytes, limits: Limits = DEFAULT_LIMITS) -> ErrorCode | None:
    try:
        check_nesting(payload, limits)
    except RemoteProtocolError as error:
        return error.code
    return None


def test_defaults() -> None:
    assert DEFAULT_LIMITS.max_message_bytes == 65536
    assert DEFAULT_LIMITS.max_nesting_depth == 16


def test_token_size_is_inclusive() -> None:
    limits = Limits(max_message_bytes=10)
    check_token_size(b"x" * 10, limits)
    with pytest.raises(RemoteProtocolError) as caught:
        check_token_size(b"x" * 11, limits)
    assert caught.value.code is ErrorCode.PAYLOAD_TOO_LARGE


def test_depth_at_the_limit_passes_and_one_more_fails() -> None:
    limits = Limits(max_nesting_depth=4)
    assert _code(b'{"a":[[{"b":1}]]}', limits) is None  # depth 4
    assert _code(b'{"a":[[{"b":[1]}]]}', limits) is ErrorCode.NESTING_TOO_DEEP


def test_ten_thousand_brackets_are_refused_without_parsing() -> None:
    assert _code(b"[" * 10_000) is ErrorCode.NESTING_TOO_DEEP


def test_brackets_inside_strings_do_not_count() -> None:
    limits = Limits(max_nesting_depth=2)
    assert _code(b'{"a":"[[[[{{{{"}', limits) is None
    # an escaped quote does not end the string
    assert _code(b'{"a":"\\"[[[[[[\\\\"}', limits) is None
    assert _code(b'{"a":"\\\\",  "b":[[[1]]]}', limits) is ErrorCode.NESTING_TOO_DEEP


def test_array_items() -> None:
    limits = Limits(max_array_items=3)
    assert _code(b'{"a":[1,2,3]}', limits) is None
    assert _code(b'{"a":[1,2,3,4]}', limits) is ErrorCode.PAYLOAD_TOO_LARGE
    # commas of an object's members and of strings are not array items
    assert _code(b'{"a":1,"b":2,"c":3,"d":4,"e":"x,y,z,w"}', limits) is None
    # items of a nested array are counted for that array only
    assert _code(b'{"a":[[1,2,3],[1,2,3],[1,2,3]]}', limits) is None


def test_string_length_counts_the_token_as_written() -> None:
    limits = Limits(max_string_length=7)
    assert _code(b'{"a":"abcde"}', limits) is None  # 7 bytes with quotes
    assert _code(b'{"a":"abcdef"}', limits) is ErrorCode.PAYLOAD_TOO_LARGE
    assert _code(b'{"abcdef":1}', limits) is ErrorCode.PAYLOAD_TOO_LARGE


def test_unterminated_string_is_left_to_the_parser() -> None:
    assert _code(b'{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[') is None


@pytest.mark.parametrize("field", ["max_message_bytes", "max_nesting_depth", "max_array_items"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(member) for member in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}",\\ab\n'),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(min_value=1, max_value=6))
def test_scan_agrees_with_the_parsed_depth(value: Any, limit: int) -> None:
    payload = json.dumps(value).encode("utf-8")
    expected = ErrorCode.NESTING_TOO_DEEP if _depth(value) > limit else None
    limits = Limits(max_nesting_depth=limit, max_array_items=10, max_string_length=10_000)
    assert _code(payload, limits) is expected


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.text(alphabet='ab"\\', max_size=12) | st.sampled_from(["x" * 20, "y" * 9]),
        max_size=12,
    ),
    st.integers(min_value=2, max_value=24),
)
def test_string_length_verdict_is_the_measured_one(strings: list[str], limit: int) -> None:
    # The cheap window check may only ever skip the measurement when it could not fail.
    payload = json.dumps({"s": strings}).encode("utf-8")
    limits = Limits(max_string_length=limit)
    too_long = longest_json_string(payload) > limit
    assert (_code(payload, limits) is ErrorCode.PAYLOAD_TOO_LARGE) is too_long
