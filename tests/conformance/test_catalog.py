"""The coverage gate: every MUST of the requirements registry is judged by a check
or waived with a reason, and every check cites requirements that exist."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from conformance.catalog import (
    CoverageGap,
    Requirement,
    all_checks,
    coverage_gaps,
    requirements_index,
    traceability,
    waivers,
)
from conformance.cli import conformance as conformance_cli
from conformance.context import CheckContext
from conformance.model import Level
from conformance.registry import CheckRegistry
from vrm_protocol.vocabulary import Role

CHECKS_DIR = Path(__file__).resolve().parents[2] / "conformance" / "checks"
CITATION = re.compile(r'requirements?=\(?\s*"([^"]+)"')


def test_the_suite_covers_every_must_or_waives_it() -> None:
    gaps = coverage_gaps()
    assert gaps == [], "\n".join(gap.describe() for gap in gaps)


def test_the_coverage_command_is_the_gate() -> None:
    result = CliRunner().invoke(conformance_cli, ["coverage"])
    assert result.exit_code == 0, result.output


def test_every_citation_in_the_checks_is_a_registry_id() -> None:
    # Expectations cite requirements too (requirement="..."): those are read by
    # people in reports, so they must resolve as well as the declared ones.
    known = set(requirements_index())
    cited: set[str] = set()
    for path in CHECKS_DIR.glob("*.py"):
        cited.update(CITATION.findall(path.read_text("utf-8")))
    assert cited, "the scan found no citation at all"
    assert sorted(cited - known) == []


def test_every_waiver_has_a_reason_and_a_must() -> None:
    index = requirements_index()
    excused = waivers()
    assert excused, "waivers.toml is read"
    for requirement, reason in excused.items():
        assert len(reason) > 40, f"{requirement}: a waiver explains itself"
        assert index[requirement].level is Level.MUST


def test_traceability_lists_checks_under_requirements() -> None:
    trace = traceability()
    catalogue = all_checks()
    assert trace["VRM-SIG-002"] == sorted(
        check_id for check_id, info in catalogue.items() if "VRM-SIG-002" in info["requirements"]
    )
    assert "SEC-ALG-NONE" in trace["VRM-SIG-002"]
    for requirement, checks in trace.items():
        assert checks == sorted(checks)
        assert all(requirement in catalogue[check]["requirements"] for check in checks)


def _registry(*citations: str) -> CheckRegistry:
    registry = CheckRegistry()

    async def body(ctx: CheckContext) -> None:
        return None

    registry.check("T-ONE", title="t", step="search", requirements=citations, roles=(Role.VENDOR,))(
        body
    )
    return registry


def _requirement(requirement_id: str, level: Level) -> Requirement:
    return Requirement(requirement_id, level, frozenset({"vendor"}), f"{requirement_id} text")


def test_the_gate_finds_each_kind_of_gap() -> None:
    index = {
        "R-MUST-CHECKED": _requirement("R-MUST-CHECKED", Level.MUST),
        "R-MUST-UNCHECKED": _requirement("R-MUST-UNCHECKED", Level.MUST),
        "R-MUST-WAIVED": _requirement("R-MUST-WAIVED", Level.MUST),
        "R-SHOULD": _requirement("R-SHOULD", Level.SHOULD),
    }
    gaps = coverage_gaps(
        registry=_registry("R-MUST-CHECKED", "R-NO-SUCH"),
        index=index,
        excused={
            "R-MUST-WAIVED": "cannot be seen on the wire",
            "R-GONE": "the requirement was withdrawn",
            "R-MUST-CHECKED": "waived, yet a check cites it",
        },
    )
    assert [(gap.kind, gap.requirement) for gap in gaps] == [
        ("unknown-requirement", "R-NO-SUCH"),
        ("untested-must", "R-MUST-UNCHECKED"),
        ("stale-waiver", "R-GONE"),
        ("stale-waiver", "R-MUST-CHECKED"),
    ]
    assert isinstance(gaps[0], CoverageGap)
    assert "T-ONE" in gaps[0].describe()
    clean = coverage_gaps(
        registry=_registry("R-MUST-CHECKED", "R-MUST-UNCHECKED"),
        index=index,
        excused={"R-MUST-WAIVED": "cannot be seen on the wire"},
    )
    assert clean == []
