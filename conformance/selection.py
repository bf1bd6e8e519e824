"""Choosing which checks run: by role, lifecycle step, level, id and requirement.

Id and requirement filters are shell-style patterns (``SEC-*``), matched
case-sensitively against the whole id. Include lists narrow the run to what
they match; exclude lists then remove checks from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from conformance.model import ALL_STEPS, Level, step_rank
from conformance.registry import Check
from vrm_protocol.vocabulary import Role

__all__ = ["Selection", "read_id_list"]


def read_id_list(path: Path) -> list[str]:
    """Read a list of check ids or patterns: one a line; ``#`` starts a comment.

    Raises:
        OSError: the file cannot be read.
    """
    entries: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries


def _matches_any(value: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class Selection:
    """A filter over the check registry. Empty fields select everything."""

    steps: frozenset[str] = frozenset()
    levels: frozenset[Level] = frozenset()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = self.steps - set(ALL_STEPS)
        if unknown:
            raise ValueError(f"unknown step(s) {sorted(unknown)}; steps are {', '.join(ALL_STEPS)}")

    def select(
        self,
        checks: Iterable[Check],
        *,
        role: Role,
        level_of: Callable[[Check], Level],
    ) -> list[Check]:
        """The checks to run for a target of ``role``, in run order.

        Run order: by lifecycle step, then registration order; audit checks
        (which judge everything the run exchanged) come last.
        """
        chosen = [
            check
            for check in checks
            if check.applies_to(role)
            and (not self.steps or check.step in self.steps)
            and (not self.levels or level_of(check) in self.levels)
            and (not self.include or _matches_any(check.id, self.include))
            and not _matches_any(check.id, self.exclude)
            and (
                not self.requirements
                or any(_matches_any(req, self.requirements) for req in check.requirements)
            )
        ]
        order = {check.id: index for index, check in enumerate(chosen)}
        return sorted(chosen, key=lambda c: (c.audit, step_rank(c.step), order[c.id]))

    def unmatched_patterns(self, checks: Iterable[Check]) -> list[str]:
        """Include/exclude patterns that match no check at all (likely typos)."""
        ids = [check.id for check in checks]
        return [
            pattern
            for pattern in (*self.include, *self.exclude)
            if not any(fnmatchcase(check_id, pattern) for check_id in ids)
        ]

    def describe(self) -> dict[str, list[str]]:
        """The filter as JSON, for the result file."""
        return {
            "steps": sorted(self.steps, key=step_rank),
            "levels": sorted(level.value for level in self.levels),
            "include": list(self.include),
            "exclude": list(self.exclude),
            "requirements": list(self.requirements),
        }
