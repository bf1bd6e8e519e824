"""Check results, the run result, and the exit code a run ends with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from conformance import SPEC_VERSION, SUITE_NAME, SUITE_VERSION
from conformance.model import Expectation, Level, Verdict
from conformance.transcript import Transcript

__all__ = ["CheckResult", "ExitCode", "RunResult"]


class ExitCode(IntEnum):
    """Exit status of ``vrm conformance run``.

    Non-zero on any unexpected failure or harness error, and when no check
    ran at all: a run that judged nothing must never look like a pass.
    """

    OK = 0
    FAILED = 1
    #: Reserved for click's usage errors.
    USAGE = 2
    HARNESS_ERROR = 3
    NOTHING_RAN = 4
    #: ``--strict-baseline``: a baselined failure now passes; update the baseline.
    STALE_BASELINE = 5


@dataclass(slots=True)
class CheckResult:
    """The verdict of one check, with the evidence for it."""

    check_id: str
    title: str
    step: str
    requirements: tuple[str, ...]
    level: Level
    verdict: Verdict
    reason: str = ""
    expectations: list[Expectation] = field(default_factory=list)
    duration_seconds: float = 0.0
    #: Sequence numbers of the transcript exchanges this check caused or used.
    exchanges: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The failure is listed in the expected-failures baseline: reported, but
    #: it does not fail the run.
    baselined: bool = False
    #: The check is in the baseline but passed: the baseline entry is stale.
    stale_baseline: bool = False
    #: For harness errors: the suite's traceback, to fix the suite with.
    traceback: str | None = None
    #: Where the library and the suite's own verifier disagreed during the
    #: check (each one makes the check a harness error; see conformance.judge).
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts_as_failure(self) -> bool:
        """A failure that fails the run (not baselined)."""
        return self.verdict is Verdict.FAIL and not self.baselined

    @property
    def ran(self) -> bool:
        """Whether the check actually judged the target."""
        return self.verdict in (Verdict.PASS, Verdict.FAIL, Verdict.WARNING)

    def failed_expectations(self) -> list[Expectation]:
        """The expectations that did not hold."""
        return [expectation for expectation in self.expectations if not expectation.passed]

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object for the result file."""
        data: dict[str, Any] = {
            "id": self.check_id,
            "title": self.title,
            "step": self.step,
            "requirements": list(self.requirements),
            "level": self.level.value,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "durationSeconds": round(self.duration_seconds, 3),
            "expectations": [expectation.to_json() for expectation in self.expectations],
            "exchanges": self.exchanges,
        }
        if self.notes:
            data["notes"] = self.notes
        if self.baselined:
            data["baselined"] = True
        if self.stale_baseline:
            data["staleBaseline"] = True
        if self.traceback is not None:
            data["traceback"] = self.traceback
        if self.disagreements:
            data["judgeDisagreements"] = self.disagreements
        return data


@dataclass(slots=True)
class RunResult:
    """Everything a run produced: what was judged, how, and the full transcript."""

    role: str
    target: str
    started_at: str
    finished_at: str = ""
    discovery: dict[str, Any] | None = None
    results: list[CheckResult] = field(default_factory=list)
    transcript: Transcript = field(default_factory=Transcript)
    #: Baseline entries for checks that passed (stale) or are not in the suite.
    stale_baseline: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    suite_version: str = SUITE_VERSION
    spec_version: str = SPEC_VERSION

    def counts(self) -> dict[str, int]:
        """How many checks ended in each verdict (every verdict listed)."""
        counter = Counter(result.verdict.value for result in self.results)
        counts = {verdict.value: counter.get(verdict.value, 0) for verdict in Verdict}
        counts["expected-failures"] = sum(1 for result in self.results if result.baselined)
        counts["total"] = len(self.results)
        return counts

    def exit_code(self, *, strict_baseline: bool = False) -> ExitCode:
        """The exit status this run ends with (see :class:`ExitCode`)."""
        if any(result.verdict is Verdict.HARNESS_ERROR for result in self.results):
            return ExitCode.HARNESS_ERROR
        if any(result.counts_as_failure for result in self.results):
            return ExitCode.FAILED
        if not any(result.ran for result in self.results):
            return ExitCode.NOTHING_RAN
        if strict_baseline and self.stale_baseline:
            return ExitCode.STALE_BASELINE
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The whole run as the JSON result file."""
        return {
            "suite": {"name": SUITE_NAME, "version": self.suite_version},
            "specVersion": self.spec_version,
            "role": self.role,
            "target": self.target,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "discovery": self.discovery,
            "options": self.options,
            "summary": self.counts(),
            "exitCode": int(self.exit_code()),
            "staleBaseline": self.stale_baseline,
            "checks": [result.to_json() for result in self.results],
            "transcript": self.transcript.to_json(),
        }
