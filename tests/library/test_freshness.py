"""Freshness, audience, timestamps and replay (spec §9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import (
    DEFAULT_MAX_LIFETIME,
    DEFAULT_SKEW,
    MemoryReplayGuard,
    ReplayGuard,
    ReplayVerdict,
    check_audience,
    check_freshness,
    check_replay,
    format_timestamp,
    parse_timestamp,
)

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def _freshness_code(created: datetime, expires: datetime, **options: object) -> ErrorCode | None:
    try:
        check_freshness(created, expires, NOW, **options)  # type: ignore[arg-type]
    except RemoteProtocolError as error:
        return error.code
    return None


def test_default_skew_is_five_minutes() -> None:
    assert timedelta(seconds=300) == DEFAULT_SKEW


def test_a_current_message_is_fresh() -> None:
    assert _freshness_code(NOW - HOUR, NOW + HOUR) is None


def test_expiry_boundary_with_skew() -> None:
    # Acceptable until expires + skew, exclusive.
    assert _freshness_code(NOW - 2 * HOUR, NOW - DEFAULT_SKEW + SECOND) is None
    assert _freshness_code(NOW - 2 * HOUR, NOW - DEFAULT_SKEW) is ErrorCode.MESSAGE_EXPIRED
    assert _freshness_code(NOW - 2 * timedelta(days=2), NOW - timedelta(days=1)) is (
        ErrorCode.MESSAGE_EXPIRED
    )


def test_created_boundary_with_skew() -> None:
    assert _freshness_code(NOW + DEFAULT_SKEW, NOW + HOUR) is None
    assert _freshness_code(NOW + DEFAULT_SKEW + SECOND, NOW + HOUR) is (
        ErrorCode.MESSAGE_NOT_YET_VALID
    )
    assert _freshness_code(NOW + HOUR, NOW + timedelta(days=1)) is ErrorCode.MESSAGE_NOT_YET_VALID


def test_zero_skew_is_strict() -> None:
    zero = timedelta(0)
    assert _freshness_code(NOW - HOUR, NOW, skew=zero) is ErrorCode.MESSAGE_EXPIRED
    assert _freshness_code(NOW + SECOND, NOW + HOUR, skew=zero) is ErrorCode.MESSAGE_NOT_YET_VALID


def test_an_empty_window_has_expired() -> None:
    assert _freshness_code(NOW, NOW) is ErrorCode.MESSAGE_EXPIRED
    assert _freshness_code(NOW, NOW - SECOND) is ErrorCode.MESSAGE_EXPIRED


def test_lifetime_beyond_the_maximum() -> None:
    assert _freshness_code(NOW, NOW + DEFAULT_MAX_LIFETIME) is None
    assert _freshness_code(NOW, NOW + DEFAULT_MAX_LIFETIME + SECOND) is (
        ErrorCode.LIFETIME_TOO_LONG
    )
    assert _freshness_code(NOW, NOW + 2 * HOUR, max_lifetime=HOUR) is (ErrorCode.LIFETIME_TOO_LONG)


def test_other_time_zones_compare_by_instant() -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 11, 23, 11, 0, 0, tzinfo=plus_two)  # 09:00Z
    assert _freshness_code(created, created + HOUR) is None


def test_naive_datetimes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_freshness(NOW.replace(tzinfo=None), NOW + HOUR, NOW)
    with pytest.raises(ValueError, match="skew"):
        check_freshness(NOW, NOW + HOUR, NOW, -SECOND)


def test_audience() -> None:
    check_audience(["http://127.0.0.1:8001", "did:jwk:abc"], "did:jwk:abc")
    for to in (["http://127.0.0.1:8001"], [], ["did:jwk:ab"], ["DID:JWK:ABC"]):
        with pytest.raises(RemoteProtocolError) as caught:
            check_audience(to, "did:jwk:abc")
        assert caught.value.code is ErrorCode.WRONG_AUDIENCE
    # a string is not a list: "abc" in "did:jwk:abc" must not pass as substring
    with pytest.raises(RemoteProtocolError):
        check_audience("did:jwk:abc", "abc")


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T10:00:00",
        "2026-11-23T10:00:00.5Z",
        "2026-11-23T10:00:00+00:00",
        "2026-11-23t10:00:00z",
        "2026-11-23 10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-23T24:00:00Z",
        " 2026-11-23T10:00:00Z",
    ],
)
def test_parse_timestamp_is_strict(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_timestamp_round_trip() -> None:
    assert parse_timestamp("2026-11-23T10:00:00Z") == NOW
    assert format_timestamp(NOW + timedelta(microseconds=999_999)) == "2026-11-23T10:00:00Z"
    assert format_timestamp(datetime(2026, 11, 23, 12, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-11-23T10:00:00Z"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 11, 23))


def test_replay_guard() -> None:
    guard: ReplayGuard = MemoryReplayGuard()
    sender, message_id = "did:jwk:abc", "urn:uuid:1"
    assert check_replay(guard, sender=sender, message_id=message_id, digest="sha-256:A") is (
        ReplayVerdict.NEW
    )
    guard.remember(sender, message_id, NOW + HOUR, "sha-256:A")
    assert check_replay(guard, sender=sender, message_id=message_id, digest="sha-256:A") is (
        ReplayVerdict.DUPLICATE
    )
    with pytest.raises(RemoteProtocolError) as caught:
        check_replay(guard, sender=sender, message_id=message_id, digest="sha-256:B")
    assert caught.value.code is ErrorCode.REPLAY
    # ids are per sender: another sender may use the same id
    assert check_replay(guard, sender="did:jwk:xyz", message_id=message_id, digest="B") is (
        ReplayVerdict.NEW
    )


def test_replay_guard_keeps_the_first_digest_and_purges_expired_entries() -> None:
    guard = MemoryReplayGuard()
    guard.remember("a", "1", NOW, "first")
    guard.remember("a", "1", NOW, "second")
    assert guard.seen("a", "1") == "first"
    guard.remember("a", "2", NOW + HOUR, "other")
    assert guard.purge(NOW + DEFAULT_SKEW - SECOND) == 0
    assert guard.purge(NOW + DEFAULT_SKEW) == 1
    assert guard.seen("a", "1") is None
    assert guard.seen("a", "2") == "other"
    assert len(guard) == 1
