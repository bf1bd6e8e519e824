"""Implementation reports (spec §14.4): several result.json files, one row per
requirement, verdicts copied never edited, valid against their schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conformance.cli import conformance
from conformance.reports.implementation import (
    ReportError,
    build_implementation_report,
    render_implementation_html,
)
from vrm_protocol.requirements import load_requirements
from vrm_protocol.schema_registry import default_registry

SCHEMA = "reports/implementation-report.schema.json"


def _check(check_id: str, requirements: list[str], verdict: str, **failed: str) -> dict[str, Any]:
    expectations = [
        {"description": f"{requirement} holds", "passed": requirement not in failed,
         "level": failed.get(requirement, "MUST"), "requirement": requirement}
        for requirement in requirements
    ]  # fmt: skip
    return {"id": check_id, "requirements": requirements, "verdict": verdict,
            "expectations": expectations}  # fmt: skip


def _result(role: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "suite": {"name": "vrm-conformance", "version": "test"},
        "role": role,
        "target": f"http://127.0.0.1:1/{role}",
        "startedAt": "2027-01-10T09:00:00Z",
        "summary": {"pass": 1},
        "checks": checks,
    }


def test_a_requirement_gets_the_worst_verdict_of_the_checks_that_judge_it() -> None:
    vendor_a = _result("vendor", [
        _check("A", ["VRM-SIG-009", "VRM-SIG-004"], "fail", **{"VRM-SIG-004": "MUST"}),
        _check("B", ["VRM-SIG-005"], "skipped"),
    ])  # fmt: skip
    vendor_b = _result("vendor", [_check("A", ["VRM-SIG-009", "VRM-SIG-004"], "pass")])
    buyer = _result("buyer", [_check("C", ["VRM-BUY-001"], "warning", **{"VRM-BUY-001": "SHOULD"})])
    report = build_implementation_report([("a", vendor_a), ("b", vendor_b), ("her", buyer)])
    assert default_registry().is_valid(report, SCHEMA)
    rows = {row["id"]: row for row in report["requirements"]}
    # Check A failed on VRM-SIG-004 only: it passed VRM-SIG-009 for implementation a.
    assert rows["VRM-SIG-009"]["results"] == {"a": "pass", "b": "pass", "her": "untested"}
    assert rows["VRM-SIG-004"]["results"]["a"] == "fail"
    assert rows["VRM-SIG-005"]["results"]["a"] == "skipped"
    assert rows["VRM-SIG-009"]["passing"] == 2
    assert rows["VRM-VEN-002"]["results"]["her"] == "not-applicable"
    assert rows["VRM-BUY-001"]["results"]["her"] == "warning"
    assert len(rows) == len(load_requirements())
    summary = report["summary"]
    assert summary["mustWithTwoPassing"] >= 1
    assert sum(summary["byImplementation"]["a"].values()) == summary["mustRequirements"]
    page = render_implementation_html(report)
    assert "<caption>" in page
    assert "VRM-SIG-009" in page
    assert "<script" not in page


def test_names_must_differ_and_a_report_needs_a_result() -> None:
    result = _result("vendor", [])
    with pytest.raises(ReportError):
        build_implementation_report([("x", result), ("x", result)])
    with pytest.raises(ReportError):
        build_implementation_report([])


def test_the_command_aggregates_result_files(tmp_path: Path) -> None:
    files = []
    for index, role in enumerate(("vendor", "vendor")):
        path = tmp_path / f"result-{index}.json"
        path.write_text(json.dumps(_result(role, [_check("A", ["VRM-SIG-009"], "pass")])))
        files.append(str(path))
    out, page = tmp_path / "report.json", tmp_path / "report.html"
    outcome = CliRunner().invoke(
        conformance,
        [
            "report",
            *files,
            "--name",
            "one",
            "--name",
            "two",
            "--out",
            str(out),
            "--html",
            str(page),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(out.read_text())
    assert [item["name"] for item in report["implementations"]] == ["one", "two"]
    assert page.read_text().startswith("<!DOCTYPE html>")
    refused = CliRunner().invoke(conformance, ["report", str(tmp_path / "report.html")])
    assert refused.exit_code == 2
