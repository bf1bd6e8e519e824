"""The check catalogue: what each check cites, and where the suite falls short.

* :func:`all_checks` — check id -> metadata, including the requirement ids it
  cites. The spec builder uses it (through :func:`traceability`) to print,
  under every requirement, the checks that test it.
* :func:`coverage_gaps` — MUST requirements that no check tests and no
  waiver excuses, and checks that cite requirement ids the registry does not
  have. The CI coverage gate asserts there are none.

Waivers live in ``conformance/waivers.toml``: a requirement that cannot be
judged from the wire (e.g. "keys are stored encrypted at rest") is listed
there with the reason, so that the gap is a decision, not an oversight.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from conformance.model import Level
from conformance.registry import REGISTRY, Check, CheckRegistry

__all__ = [
    "WAIVERS_PATH",
    "CoverageGap",
    "Requirement",
    "all_checks",
    "check_level",
    "coverage_gaps",
    "default_registry",
    "requirements_index",
    "traceability",
    "waivers",
]

WAIVERS_PATH: Final = Path(__file__).resolve().parent / "waivers.toml"


@dataclass(frozen=True, slots=True)
class Requirement:
    """What the suite needs to know of one registry requirement."""

    id: str
    level: Level
    roles: frozenset[str]
    text: str


def default_registry() -> CheckRegistry:
    """The suite's checks (importing the check modules registers them)."""
    import conformance.checks  # noqa: F401  (registers every check)

    return REGISTRY


@cache
def requirements_index() -> dict[str, Requirement]:
    """Every requirement of the protocol's registry, by id."""
    from vrm_protocol.requirements import load_requirements

    index: dict[str, Requirement] = {}
    for requirement in load_requirements().values():
        roles = frozenset(str(role) for role in requirement.roles)
        index[requirement.id] = Requirement(
            id=requirement.id,
            level=Level(str(requirement.level).upper()),
            roles=roles,
            text=requirement.text,
        )
    return index


def check_level(check: Check) -> Level:
    """The check's level: declared, else the strongest level among what it cites.

    A check citing only requirement ids unknown to the registry counts as
    MUST (the coverage gate reports the unknown ids).
    """
    if check.level is not None:
        return check.level
    index = requirements_index()
    levels = [index[req].level for req in check.requirements if req in index]
    if not levels:
        return Level.MUST
    return max(levels, key=lambda level: level.strength)


@cache
def waivers() -> dict[str, str]:
    """Requirement id -> why no check judges it (from ``waivers.toml``).

    Raises:
        tomllib.TOMLDecodeError: the file is not TOML.
        KeyError: an entry lacks ``requirement`` or ``reason``.
        ValueError: an entry's reason is empty.
    """
    if not WAIVERS_PATH.exists():
        return {}
    document = tomllib.loads(WAIVERS_PATH.read_text("utf-8"))
    entries = document.get("waiver", [])
    excused: dict[str, str] = {}
    for entry in entries:
        reason = str(entry["reason"]).strip()
        if not reason:
            # A waiver is a decision someone can read and challenge: no reason, no waiver.
            raise ValueError(f"waiver for {entry['requirement']} gives no reason")
        excused[str(entry["requirement"])] = reason
    return excused


def all_checks() -> dict[str, dict[str, Any]]:
    """Check id -> metadata (title, step, level, roles, requirement ids, needs)."""
    catalogue: dict[str, dict[str, Any]] = {}
    for check in default_registry():
        catalogue[check.id] = {
            "id": check.id,
            "title": check.title,
            "step": check.step,
            "level": check_level(check).value,
            "roles": sorted(role.value for role in check.roles),
            "requirements": list(check.requirements),
            "needs": sorted(check.needs),
            "audit": check.audit,
            "description": check.description,
        }
    return catalogue


def traceability(registry: CheckRegistry | None = None) -> dict[str, list[str]]:
    """Requirement id -> ids of the checks citing it (for the generated spec).

    Reads only the check declarations, never the requirements registry, so
    the spec builder can call it while the registry itself is being built.
    Raises nothing.
    """
    trace: dict[str, list[str]] = {}
    for check in registry if registry is not None else default_registry():
        for requirement in check.requirements:
            trace.setdefault(requirement, []).append(check.id)
    return {requirement: sorted(ids) for requirement, ids in sorted(trace.items())}


@dataclass(frozen=True, slots=True)
class CoverageGap:
    """One hole in the suite's coverage."""

    kind: str  # "untested-must" | "unknown-requirement" | "stale-waiver"
    requirement: str
    detail: str

    def describe(self) -> str:
        """A line for people."""
        return f"{self.kind}: {self.requirement}: {self.detail}"


def coverage_gaps(
    *,
    registry: CheckRegistry | None = None,
    index: Mapping[str, Requirement] | None = None,
    excused: Mapping[str, str] | None = None,
) -> list[CoverageGap]:
    """MUST requirements with no check and no waiver; checks citing unknown ids;
    waivers for requirements that no longer exist or that a check now covers.

    The arguments default to the suite's checks, the protocol's requirements
    registry and ``waivers.toml``.

    Raises:
        vrm_protocol.requirements.RequirementsError: the registry is malformed.
        tomllib.TOMLDecodeError, KeyError: ``waivers.toml`` is malformed.
    """
    index = requirements_index() if index is None else index
    excused = waivers() if excused is None else excused
    cited: dict[str, list[str]] = {}
    gaps: list[CoverageGap] = []
    for check in registry if registry is not None else default_registry():
        for requirement in check.requirements:
            cited.setdefault(requirement, []).append(check.id)
            if requirement not in index:
                gaps.append(
                    CoverageGap(
                        "unknown-requirement",
                        requirement,
                        f"cited by {check.id} but not in the requirements registry",
                    )
                )
    for entry in sorted(index.values(), key=lambda r: r.id):
        if entry.level is Level.MUST and entry.id not in cited and entry.id not in excused:
            gaps.append(CoverageGap("untested-must", entry.id, entry.text))
    for requirement_id in sorted(excused):
        if requirement_id not in index:
            gaps.append(
                CoverageGap("stale-waiver", requirement_id, "waived but not in the registry")
            )
        elif requirement_id in cited:
            gaps.append(
                CoverageGap(
                    "stale-waiver",
                    requirement_id,
                    f"waived but tested by {', '.join(cited[requirement_id])}",
                )
            )
    return gaps
