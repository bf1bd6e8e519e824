"""The clause map (conformance/data/clauses.toml) stays consistent with the
requirements registry and the catalogue, and `vrm conformance clauses` prints it."""

from __future__ import annotations

from click.testing import CliRunner

from conformance.catalog import all_checks, requirements_index
from conformance.clauses import (
    Clause,
    RequirementClauses,
    clause_coverage,
    clause_problems,
    load_clauses,
)
from conformance.cli import conformance as conformance_cli
from conformance.model import Level


def _musts() -> dict[str, str]:
    return {r.id: r.text for r in requirements_index().values() if r.level is Level.MUST}


def _citations() -> dict[str, list[str]]:
    return {check: list(info["requirements"]) for check, info in all_checks().items()}


def test_the_map_names_only_musts_and_checks_that_cite_them() -> None:
    entries = load_clauses()
    assert entries
    assert clause_problems(entries, musts=_musts(), citations=_citations()) == []


def test_the_clauses_the_issue_names_are_probed() -> None:
    # Issue 13: "an attestation's subject is tested but not its audience; an
    # offer's refusal after being superseded is tested but not that a revision
    # names what it supersedes".
    by_id = {entry.requirement: entry for entry in load_clauses()}
    audience = [c for c in by_id["VRM-ATT-009"].clauses if "aud" in c.text]
    assert audience
    assert all(c.checks for c in audience)
    names = [c for c in by_id["VRM-MSG-006"].clauses if "names what it supersedes" in c.text]
    assert names
    assert all(c.checks for c in names)


def test_inconsistencies_are_found() -> None:
    entries = [
        RequirementClauses("VRM-NOPE-001", (Clause("a", ("NO-CHECK",)), Clause("b", ()))),
        RequirementClauses(
            "VRM-ATT-009", (Clause("sub", ("SEC-AUDIENCE",)), Clause("aud", ("X",), "why"))
        ),
    ]
    problems = clause_problems(entries, musts=_musts(), citations=_citations())
    assert "VRM-NOPE-001: not a MUST requirement of the registry" in problems
    assert "VRM-NOPE-001: no check NO-CHECK" in problems
    assert "VRM-NOPE-001: 'b' has no check and no gap" in problems
    assert "VRM-ATT-009: SEC-AUDIENCE does not cite it" in problems
    assert "VRM-ATT-009: 'aud' has checks and a gap" in problems


def test_coverage_counts_clauses() -> None:
    entries = [RequirementClauses("R", (Clause("a", ("C",)), Clause("b", (), "gap")))]
    totals = clause_coverage(entries, musts=10)
    assert (totals.clauses, totals.covered, totals.requirements, totals.musts) == (2, 1, 1, 10)


def test_the_command_prints_coverage_by_clause() -> None:
    result = CliRunner().invoke(conformance_cli, ["clauses"])
    assert result.exit_code == 0, result.output
    assert "VRM-ATT-009  2/2 clauses probed" in result.output
    assert "VEN-ATTESTATION-AUDIENCE" in result.output
    assert "clauses probed: " in result.output
    gaps = CliRunner().invoke(conformance_cli, ["clauses", "--gaps"])
    assert gaps.exit_code == 0
    assert "VEN-ATTESTATION-AUDIENCE" not in gaps.output
    assert "NONE (" in gaps.output
