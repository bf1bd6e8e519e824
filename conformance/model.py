"""Verdicts, requirement levels, steps and the outcomes a check can raise.

A check judges the target and ends in exactly one :class:`Verdict`:

* ``pass`` — every expectation held;
* ``fail`` — a MUST-level expectation did not hold;
* ``warning`` — only SHOULD-level expectations did not hold (RFC 2119 §3:
  "there may exist valid reasons ... to ignore a particular item");
* ``skipped`` — the target does not declare the capability the check needs
  (the reason says which);
* ``harness-error`` — the suite itself could not judge (a bug in the suite, a
  port it could not bind); never blamed on the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from vrm_protocol.vocabulary import LifecycleStep

__all__ = [
    "ALL_STEPS",
    "DISCOVERY_STEP",
    "WIRE_STEP",
    "CheckFailed",
    "CheckOutcome",
    "CheckSkipped",
    "Expectation",
    "HarnessError",
    "Level",
    "Verdict",
    "step_rank",
]


class Verdict(StrEnum):
    """The result of one check."""

    PASS = "pass"  # noqa: S105  (a verdict, not a password)
    FAIL = "fail"
    WARNING = "warning"
    SKIPPED = "skipped"
    HARNESS_ERROR = "harness-error"


class Level(StrEnum):
    """RFC 2119 requirement levels, strongest first."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"

    @property
    def strength(self) -> int:
        """Larger is stronger: used to pick a check's level from its requirements."""
        return {Level.MUST: 3, Level.SHOULD: 2, Level.MAY: 1}[self]


#: Checks about the discovery document and key publication.
DISCOVERY_STEP: Final = "discovery"
#: Cross-cutting checks of the wire format and the HTTP binding (signatures,
#: freshness, replay, limits) that apply at every lifecycle step.
WIRE_STEP: Final = "wire"
#: Every step a check may belong to, in run and report order.
ALL_STEPS: Final[tuple[str, ...]] = (
    DISCOVERY_STEP,
    *(step.value for step in LifecycleStep),
    WIRE_STEP,
)


def step_rank(step: str) -> int:
    """Position of ``step`` in :data:`ALL_STEPS` (run and report order).

    Raises:
        ValueError: ``step`` is not a known step.
    """
    return ALL_STEPS.index(step)


@dataclass(frozen=True, slots=True)
class Expectation:
    """One thing a check expected of the target, and what it observed.

    ``expected`` and ``actual`` are JSON-serialisable so that reports can show
    them side by side.
    """

    description: str
    passed: bool
    level: Level = Level.MUST
    expected: Any = None
    actual: Any = None
    requirement: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The expectation as a JSON object for the result file."""
        data: dict[str, Any] = {
            "description": self.description,
            "passed": self.passed,
            "level": self.level.value,
        }
        if self.expected is not None:
            data["expected"] = self.expected
        if self.actual is not None:
            data["actual"] = self.actual
        if self.requirement is not None:
            data["requirement"] = self.requirement
        return data


class CheckOutcome(Exception):
    """Raised inside a check to end it early with a verdict."""


class CheckFailed(CheckOutcome):
    """A required expectation did not hold; the check stops here."""

    def __init__(self, expectation: Expectation) -> None:
        super().__init__(expectation.description)
        self.expectation = expectation


class CheckSkipped(CheckOutcome):
    """The check cannot apply to this target; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HarnessError(Exception):
    """The suite could not carry out a check for a reason of its own.

    Raised for the suite's own failures (a port it could not bind, a fixture it
    could not build) so that the verdict is ``harness-error``, not ``fail``:
    the target is never blamed for the suite's problems.
    """
