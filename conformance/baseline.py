"""The expected-failures baseline.

An implementation that is not yet fully conformant can still gate its CI on
the suite: failures it already knows about are listed in a baseline file and
reported, but do not fail the run. A listed check that now *passes* is
reported as stale, so the baseline only ever shrinks (``--strict-baseline``
makes a stale entry fail the run).

File format (JSON)::

    {
      "expectedFailures": [
        {"check": "SEC-REPLAY-RESTART", "role": "vendor", "reason": "issue #12"}
      ]
    }

``role`` is optional (absent = both roles); ``reason`` is for people.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.model import Verdict
from conformance.results import CheckResult, RunResult

__all__ = ["Baseline", "BaselineEntry"]


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One expected failure."""

    check: str
    role: str | None = None
    reason: str = ""

    def applies_to(self, role: str) -> bool:
        """Whether the entry covers runs against a target of ``role``."""
        return self.role is None or self.role == role


@dataclass(frozen=True, slots=True)
class Baseline:
    """A set of expected failures."""

    entries: tuple[BaselineEntry, ...] = ()

    @classmethod
    def load(cls, path: Path) -> Baseline:
        """Read a baseline file.

        Raises:
            OSError: the file cannot be read.
            ValueError: the file is not a baseline (the message says where).
        """
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from exc
        return cls.from_json(document, source=str(path))

    @classmethod
    def from_json(cls, document: Any, *, source: str = "baseline") -> Baseline:
        """Build a baseline from its JSON form.

        Raises:
            ValueError: the document is not a baseline.
        """
        if not isinstance(document, dict) or not isinstance(document.get("expectedFailures"), list):
            raise ValueError(f"{source}: expected an object with an 'expectedFailures' list")
        entries: list[BaselineEntry] = []
        for index, item in enumerate(document["expectedFailures"]):
            if not isinstance(item, dict) or not isinstance(item.get("check"), str):
                raise ValueError(f"{source}: expectedFailures[{index}] needs a 'check' string")
            role = item.get("role")
            if role not in (None, "vendor", "buyer"):
                raise ValueError(f"{source}: expectedFailures[{index}].role must be vendor|buyer")
            entries.append(BaselineEntry(item["check"], role, str(item.get("reason", ""))))
        return cls(tuple(entries))

    @classmethod
    def from_failures(cls, run: RunResult, *, reason: str = "") -> Baseline:
        """A baseline listing every check that failed in ``run``."""
        return cls(
            tuple(
                BaselineEntry(result.check_id, run.role, reason)
                for result in run.results
                if result.verdict is Verdict.FAIL
            )
        )

    def to_json(self) -> dict[str, Any]:
        """The baseline as its JSON file content."""
        items: list[dict[str, Any]] = []
        for entry in self.entries:
            item: dict[str, Any] = {"check": entry.check}
            if entry.role is not None:
                item["role"] = entry.role
            if entry.reason:
                item["reason"] = entry.reason
            items.append(item)
        return {"expectedFailures": items}

    def apply(
        self, results: Iterable[CheckResult], *, role: str, known_checks: set[str]
    ) -> list[str]:
        """Mark baselined failures and stale entries on ``results``.

        Returns the stale entries, described for people: checks listed as
        expected failures that passed, and checks the suite does not have.
        """
        listed = {entry.check for entry in self.entries if entry.applies_to(role)}
        stale: list[str] = []
        for result in results:
            if result.check_id not in listed:
                continue
            if result.verdict in (Verdict.FAIL, Verdict.WARNING):
                result.baselined = result.verdict is Verdict.FAIL
            elif result.verdict is Verdict.PASS:
                result.stale_baseline = True
                stale.append(f"{result.check_id}: listed as an expected failure but passed")
        stale.extend(
            f"{check_id}: listed as an expected failure but the suite has no such check"
            for check_id in sorted(listed - known_checks)
        )
        return stale
