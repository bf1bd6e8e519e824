"""The vendor agent's clock: real UTC time plus an offset the test driver may set.

The library owns no clock (ARCHITECTURE.md, "Agents own all I/O"): every
``now`` the agent judges freshness, offer validity or retention by comes from
here, so that the conformance suite can move the agent's time forward (spec
§14.3) instead of waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vrm_protocol.freshness import format_timestamp, parse_timestamp

__all__ = ["AgentClock", "format_timestamp", "parse_timestamp"]


@dataclass
class AgentClock:
    """Wall-clock time shifted by ``offset`` (zero outside test mode)."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        """The agent's current time, in UTC, to the whole second."""
        return (datetime.now(UTC) + self.offset).replace(microsecond=0)

    def set_offset_seconds(self, seconds: int) -> None:
        """Run ``seconds`` ahead of real time from now on (absolute, not cumulative)."""
        self.offset = timedelta(seconds=seconds)
