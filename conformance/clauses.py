"""The clause map: which probe covers which clause of a MUST (spec §14, issue 13).

A requirement is covered clause by clause, not as a whole: the map
(``conformance/data/clauses.toml``) lists, for each MUST with several
clauses, its clauses and the checks that probe each. A clause without a check
is a recorded gap with its reason. :func:`clause_problems` keeps the map
consistent with the registry and the catalogue; :func:`clause_coverage`
summarises it for ``vrm conformance clauses``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CLAUSES_PATH",
    "Clause",
    "ClauseCoverage",
    "RequirementClauses",
    "clause_coverage",
    "clause_problems",
    "load_clauses",
]

#: Where the map is kept.
CLAUSES_PATH = Path(__file__).parent / "data" / "clauses.toml"


@dataclass(frozen=True, slots=True)
class Clause:
    """One clause of a requirement and the checks that probe it."""

    text: str
    checks: tuple[str, ...]
    gap: str | None = None

    @property
    def covered(self) -> bool:
        """Whether a check probes the clause."""
        return bool(self.checks)


@dataclass(frozen=True, slots=True)
class RequirementClauses:
    """A requirement's clauses, in the order of its text."""

    requirement: str
    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class ClauseCoverage:
    """The map's totals."""

    requirements: int
    clauses: int
    covered: int
    #: MUST requirements of the registry, and those of them with an entry.
    musts: int
    mapped_musts: int


def _clause(raw: Any, where: str) -> Clause:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: a clause is a table")
    text, checks, gap = raw.get("text"), raw.get("checks"), raw.get("gap")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: a clause needs its text")
    if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
        raise ValueError(f"{where}: checks is a list of check ids")
    if gap is not None and not isinstance(gap, str):
        raise ValueError(f"{where}: gap is a string")
    return Clause(text, tuple(checks), gap)


def load_clauses(path: Path = CLAUSES_PATH) -> list[RequirementClauses]:
    """The clause map, in file order.

    Raises:
        ValueError: the file is not shaped as the map (see its header).
        OSError: it cannot be read.
    """
    document = tomllib.loads(path.read_text("utf-8"))
    entries: list[RequirementClauses] = []
    for index, raw in enumerate(document.get("requirement", [])):
        requirement = raw.get("id") if isinstance(raw, Mapping) else None
        if not isinstance(requirement, str):
            raise ValueError(f"requirement #{index + 1}: no id")
        clauses = raw.get("clauses")
        if not isinstance(clauses, list) or not clauses:
            raise ValueError(f"{requirement}: no clauses")
        entries.append(
            RequirementClauses(
                requirement,
                tuple(_clause(c, f"{requirement} clause {i + 1}") for i, c in enumerate(clauses)),
            )
        )
    return entries


def clause_problems(
    entries: Sequence[RequirementClauses],
    *,
    musts: Mapping[str, str],
    citations: Mapping[str, Sequence[str]],
) -> list[str]:
    """What makes the map inconsistent with the registry and the catalogue.

    ``musts`` maps each MUST requirement id to its text; ``citations`` each
    check id to the requirement ids it cites. Pure.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.requirement in seen:
            problems.append(f"{entry.requirement}: listed twice")
        seen.add(entry.requirement)
        if entry.requirement not in musts:
            problems.append(f"{entry.requirement}: not a MUST requirement of the registry")
        if len(entry.clauses) < 2:
            problems.append(f"{entry.requirement}: one clause needs no entry")
        for clause in entry.clauses:
            if not clause.checks and not clause.gap:
                problems.append(f"{entry.requirement}: {clause.text!r} has no check and no gap")
            if clause.checks and clause.gap:
                problems.append(f"{entry.requirement}: {clause.text!r} has checks and a gap")
            for check in clause.checks:
                if check not in citations:
                    problems.append(f"{entry.requirement}: no check {check}")
                elif entry.requirement not in citations[check]:
                    problems.append(f"{entry.requirement}: {check} does not cite it")
    return problems


def clause_coverage(entries: Sequence[RequirementClauses], *, musts: int) -> ClauseCoverage:
    """The map's totals. Pure."""
    clauses = [clause for entry in entries for clause in entry.clauses]
    return ClauseCoverage(
        requirements=len(entries),
        clauses=len(clauses),
        covered=sum(clause.covered for clause in clauses),
        musts=musts,
        mapped_musts=len(entries),
    )
