"""The agent's one clock: every reading of time an agent makes goes through it.

The library owns no clock (ARCHITECTURE.md, "Agents own all I/O"): an agent
passes ``now`` in. Three readings, for three uses:

* :meth:`Clock.now` — protocol time: the instant freshness, offer validity and
  retention are judged by. Aware UTC, whole seconds (the protocol's
  timestamps have no fractions, spec §5.1). The conformance suite's test
  driver may move it ahead of real time (spec §14.3) instead of waiting;
* :meth:`Clock.wall` — real seconds since the epoch, never shifted: when a
  delivery attempt is due (a retry schedule is real time, whatever the
  protocol clock says);
* :meth:`Clock.monotonic` — for rate budgets and timeouts.

Code of the runtime and of the agents takes a :class:`Clock` and never calls
``datetime.now``, ``time.time`` or ``time.monotonic`` itself, so a test can
inject :class:`ManualClock` and drive time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["AgentClock", "Clock", "ManualClock"]


class Clock(Protocol):
    """What an agent reads time from."""

    def now(self) -> datetime:
        """Protocol time: aware UTC, whole seconds (shifted by the test driver's offset)."""
        ...

    def wall(self) -> float:
        """Real seconds since the epoch (never shifted): schedules."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock: budgets and timeouts."""
        ...

    @property
    def offset(self) -> timedelta:
        """How far protocol time runs ahead of real time (zero outside test mode)."""
        ...

    def set_offset_seconds(self, seconds: int) -> None:
        """Run protocol time ``seconds`` ahead of real time (absolute, not cumulative)."""
        ...


@dataclass
class AgentClock:
    """Real time, with an offset on protocol time that the test driver may set."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        """The agent's current time, in UTC, to the whole second."""
        return (datetime.now(UTC) + self.offset).replace(microsecond=0)

    def wall(self) -> float:
        """Real seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    def set_offset_seconds(self, seconds: int) -> None:
        """Run ``seconds`` ahead of real time from now on (absolute, not cumulative)."""
        self.offset = timedelta(seconds=seconds)


@dataclass
class ManualClock:
    """A clock that moves only when told to (tests, benches).

    ``start`` is protocol time at wall time ``wall_start``; :meth:`advance`
    moves all three readings together.
    """

    start: datetime = field(default_factory=lambda: datetime(2027, 1, 10, 9, 0, tzinfo=UTC))
    wall_start: float = 1_800_000_000.0
    elapsed: float = 0.0
    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        """Protocol time: start + elapsed + offset, whole seconds."""
        moment = self.start + timedelta(seconds=self.elapsed) + self.offset
        return moment.replace(microsecond=0)

    def wall(self) -> float:
        """Wall time: wall_start + elapsed."""
        return self.wall_start + self.elapsed

    def monotonic(self) -> float:
        """Elapsed seconds."""
        return self.elapsed

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass.

        Raises:
            ValueError: ``seconds`` is negative (time does not run back).
        """
        if seconds < 0:
            raise ValueError("time does not run back")
        self.elapsed += seconds

    def set_offset_seconds(self, seconds: int) -> None:
        """Shift protocol time by ``seconds`` (absolute)."""
        self.offset = timedelta(seconds=seconds)
