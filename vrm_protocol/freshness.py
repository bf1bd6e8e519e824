"""Freshness, audience and replay (spec §9).

The library owns no clock: every check takes ``now`` from the caller, so an
agent (and its test driver's clock offset) decides what time it is.

* Freshness (spec §9.1): a message is acceptable from ``created - skew``
  until ``expires + skew``. Its validity window must be non-empty and no
  longer than the receiver's maximum lifetime. Timestamps are instants
  (VRM-FRESH-012): a leap second or 31 February is ``schema-invalid``; and
  every instant up to ``9999-12-31T23:59:59Z`` is judged without overflow,
  an instant beyond what ``datetime`` holds (year 9999 plus the skew) being
  the far future (VRM-FRESH-013).
* Audience (spec §9.2): the receiver's identifier must be in ``to``.
* Replay (spec §9.3): a receiver remembers (sender, message id) with the
  message digest until the message has expired. The same id with the same
  digest is an identical resend (answered with the original receipt); with a
  different digest it is a replay (``409 replay``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final, Protocol

from vrm_protocol.errors import ErrorCode, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_LIFETIME",
    "DEFAULT_SKEW",
    "InvalidTimestampError",
    "MemoryReplayGuard",
    "ReplayGuard",
    "ReplayVerdict",
    "check_audience",
    "check_freshness",
    "check_replay",
    "format_timestamp",
    "later",
    "parse_timestamp",
]

#: Allowed clock difference between sender and receiver (spec §9.1).
DEFAULT_SKEW: Final = timedelta(seconds=300)
#: Longest validity window (``expires - created``) a receiver accepts by default
#: (spec §9.1). Bounding it bounds how long a replay guard must remember an id.
DEFAULT_MAX_LIFETIME: Final = timedelta(days=30)

# ASCII digits only: ``\d`` would also match other scripts' digits.
_TIMESTAMP: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_LATEST: Final = datetime.max.replace(tzinfo=UTC)


class InvalidTimestampError(RemoteProtocolError, ValueError):
    """A string that is not a protocol timestamp, or not an instant (``schema-invalid``).

    A :class:`RemoteProtocolError`, so that decoding raises only protocol
    errors (issue 9, D4); also a ``ValueError``, as callers have always
    caught it.
    """

    def __init__(self, detail: str, *, path: str | None = None) -> None:
        super().__init__(ErrorCode.SCHEMA_INVALID, detail, path=path)


def parse_timestamp(value: str, *, path: str | None = None) -> datetime:
    """Parse a protocol timestamp: RFC 3339, UTC, ``Z``, whole seconds (spec §5.1).

    The timestamp must name an instant (spec §9.1, VRM-FRESH-012): a date
    that does not exist (31 February, year 0) or a leap second (``:60``,
    which RFC 3339 allows and the protocol's schema does not) is refused.
    ``path``, when given, is the JSON Pointer the error names.

    Raises:
        InvalidTimestampError: (``schema-invalid``, also a ``ValueError``)
            ``value`` is not of the form ``2026-11-23T10:00:00Z`` or is not a
            real date and time.
    """
    if not isinstance(value, str) or _TIMESTAMP.fullmatch(value) is None:
        raise InvalidTimestampError(
            f"{str(value)[:40]!r} is not a timestamp of the form 2026-11-23T10:00:00Z", path=path
        )
    # Slicing the fixed positions is exact after the match and several times
    # faster than strptime; datetime() still rejects impossible dates and second 60.
    try:
        return datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise InvalidTimestampError(f"{value!r} is not an instant: {error}", path=path) from None


def later(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, or the last (first) instant ``datetime`` holds if that overflows.

    An instant beyond year 9999 is the far future (spec §9.1, VRM-FRESH-013):
    comparing with it gives the right answer where the sum cannot be
    represented, so a valid timestamp never makes a check fail.
    """
    try:
        return moment + delta
    except OverflowError:
        return _LATEST if delta > timedelta(0) else _EARLIEST


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as a protocol timestamp (UTC, ``Z``, whole seconds).

    Fractions of a second are dropped (truncated).

    Raises:
        ValueError: ``moment`` is naive (has no time zone).
    """
    _require_aware(moment, "moment")
    utc = moment.astimezone(UTC)
    # Not strftime: its %Y drops the leading zeros of years before 1000.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"
    )


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def check_freshness(
    created: datetime,
    expires: datetime,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
    *,
    max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
) -> None:
    """Require a message to be valid at ``now`` (spec §9.1).

    Rules, in order (sums beyond year 9999 are the far future, VRM-FRESH-013):

    1. ``expires <= created``: the window is empty; the message expired at
       its creation: MESSAGE_EXPIRED.
    2. ``now >= expires + skew``: MESSAGE_EXPIRED.
    3. ``created > now + skew``: MESSAGE_NOT_YET_VALID.
    4. ``expires - created > max_lifetime``: LIFETIME_TOO_LONG (spec §9.1,
       VRM-FRESH-005: one code per fault).

    Raises:
        RemoteProtocolError: MESSAGE_EXPIRED, MESSAGE_NOT_YET_VALID or LIFETIME_TOO_LONG.
        ValueError: a datetime is naive, or ``skew`` is negative.
    """
    for name, moment in (("created", created), ("expires", expires), ("now", now)):
        _require_aware(moment, name)
    if skew < timedelta(0):
        raise ValueError("skew must not be negative")
    if expires <= created:
        raise RemoteProtocolError(
            ErrorCode.MESSAGE_EXPIRED,
            f"expires ({format_timestamp(expires)}) is not after created "
            f"({format_timestamp(created)})",
            path="/expires",
        )
    if now >= later(expires, skew):
        raise RemoteProtocolError(
            ErrorCode.MESSAGE_EXPIRED,
            f"the message expired at {format_timestamp(expires)}; it is now "
            f"{format_timestamp(now)} (skew {int(skew.total_seconds())} s)",
            path="/expires",
        )
    if created > later(now, skew):
        raise RemoteProtocolError(
            ErrorCode.MESSAGE_NOT_YET_VALID,
            f"the message is created at {format_timestamp(created)}; it is now "
            f"{format_timestamp(now)} (skew {int(skew.total_seconds())} s)",
            path="/created",
        )
    if expires - created > max_lifetime:
        raise RemoteProtocolError(
            ErrorCode.LIFETIME_TOO_LONG,
            f"the message lives {expires - created}; the receiver accepts at most {max_lifetime}",
            path="/expires",
        )


def check_audience(to: Sequence[str], receiver: str) -> None:
    """Require ``receiver`` to be one of the message's addressees (spec §9.2).

    Identifiers are compared as exact strings: a ``did:jwk`` spelled another
    way is not the receiver (spec §3.1, VRM-SIG-026).

    Raises:
        RemoteProtocolError: WRONG_AUDIENCE (also when ``to`` is not a list).
    """
    if not isinstance(to, list | tuple) or receiver not in to:
        raise RemoteProtocolError(
            ErrorCode.WRONG_AUDIENCE,
            f"the message is addressed to "
            f"{str(list(to) if isinstance(to, list | tuple) else to)[:200]}, not to {receiver!r}",
            path="/to",
        )


class ReplayVerdict(Enum):
    """What :func:`check_replay` concluded about a (sender, id) that is not a replay."""

    #: Never seen: process it (and remember it once it is durably stored).
    NEW = "new"
    #: Seen with the same digest: an identical resend; answer with the original receipt.
    DUPLICATE = "duplicate"


class ReplayGuard(Protocol):
    """Memory of the (sender, message id) pairs a receiver has accepted (spec §9.3).

    Agents implement it over their durable store, so that the memory survives
    restarts; :class:`MemoryReplayGuard` is the in-memory version.
    """

    def seen(self, sender: str, message_id: str) -> str | None:
        """The digest stored for (sender, message id), or ``None`` if never seen."""
        ...

    def remember(self, sender: str, message_id: str, expires: datetime, digest: str) -> None:
        """Store (sender, message id) -> digest until at least ``expires`` (+ skew)."""
        ...


def check_replay(guard: ReplayGuard, *, sender: str, message_id: str, digest: str) -> ReplayVerdict:
    """Classify a verified message against the replay guard (spec §9.3).

    Does not remember the message: the caller does that when it commits the
    message, so that a crash in between cannot leave a remembered id whose
    message was never stored.

    Raises:
        RemoteProtocolError: REPLAY if another message (another digest) was
            already accepted under this (sender, id).
    """
    stored = guard.seen(sender, message_id)
    if stored is None:
        return ReplayVerdict.NEW
    if stored == digest:
        return ReplayVerdict.DUPLICATE
    raise RemoteProtocolError(
        ErrorCode.REPLAY,
        f"another message with id {message_id!r} was already received from this sender",
        path="/id",
    )


@dataclass(slots=True)
class _Remembered:
    digest: str
    expires: datetime


class MemoryReplayGuard:
    """An in-memory :class:`ReplayGuard` (for tests and library users; not durable)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Remembered] = {}

    def seen(self, sender: str, message_id: str) -> str | None:
        """The digest stored for (sender, message id), or ``None``."""
        entry = self._entries.get((sender, message_id))
        return entry.digest if entry is not None else None

    def remember(self, sender: str, message_id: str, expires: datetime, digest: str) -> None:
        """Store (sender, message id) -> digest; the first digest stored wins.

        Raises:
            ValueError: ``expires`` is naive.
        """
        _require_aware(expires, "expires")
        self._entries.setdefault((sender, message_id), _Remembered(digest, expires))

    def purge(self, now: datetime, skew: timedelta = DEFAULT_SKEW) -> int:
        """Forget entries whose messages can no longer pass the freshness check.

        Returns the number of entries forgotten.

        Raises:
            ValueError: ``now`` is naive.
        """
        _require_aware(now, "now")
        stale = [key for key, entry in self._entries.items() if now >= later(entry.expires, skew)]
        for key in stale:
            del self._entries[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._entries)
