"""The suite's kill matrix: which checks catch which fault of a reference agent.

The broken-agent tests record here what a full suite run against each fault
found; ``conftest.py`` prints the matrix and the kill rate at the end of the
session, so a reader sees at a glance that every fault is caught, and by what.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.catalog import requirements_index


@dataclass(frozen=True, slots=True)
class Kill:
    """One fault of one agent, and what the full suite run said about it."""

    role: str
    fault: str
    expected_check: str
    caught: bool
    failing_checks: tuple[str, ...]
    #: The MUST requirements whose expectations the catching check found broken.
    requirements: tuple[str, ...] = ()


RECORDED: list[Kill] = []


def render() -> list[str]:
    """The matrix as text lines (empty when no broken agent ran)."""
    if not RECORDED:
        return []
    width = max(len(f"{kill.role}:{kill.fault}") for kill in RECORDED)
    lines = [f"{'fault':<{width}}  caught  by (checks failing or warning in the full run)"]
    for kill in sorted(RECORDED, key=lambda k: (k.role, k.fault)):
        mark = "yes" if kill.caught else "NO"
        found = ", ".join(kill.failing_checks) or "-"
        lines.append(f"{kill.role + ':' + kill.fault:<{width}}  {mark:<6}  {found}")
    killed = sum(kill.caught for kill in RECORDED)
    lines.append(f"kill rate {killed}/{len(RECORDED)} = {100 * killed / len(RECORDED):.0f}%")
    caught = sorted({r for kill in RECORDED if kill.caught for r in kill.requirements})
    lines.append(
        f"MUSTs with a fault the suite catches: {len(caught)} of {len(must_requirements())}"
    )
    lines.append("  " + " ".join(caught))
    return lines


def must_requirements() -> list[str]:
    """Every MUST requirement of the registry."""
    return sorted(
        requirement_id
        for requirement_id, requirement in requirements_index().items()
        if requirement.level.value == "MUST"
    )
