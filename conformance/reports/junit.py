"""JUnit XML, as CI servers read it (validated against Jenkins' junit-10.xsd).

One ``testsuite`` per step, one ``testcase`` per check. Verdicts map as CI
expects: ``fail`` -> ``<failure>``, ``harness-error`` -> ``<error>``,
``skipped`` and baselined failures -> ``<skipped>``; a ``warning`` passes
with its unmet SHOULD in ``<system-out>``, since RFC 2119 SHOULDs do not
fail a build.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Final

from conformance import SUITE_NAME
from conformance.model import Verdict, step_rank
from conformance.results import CheckResult, RunResult

__all__ = ["JUNIT_XSD_PATH", "render_junit", "write_junit"]

#: The schema the output is validated against in the suite's own tests.
JUNIT_XSD_PATH: Final = Path(__file__).resolve().parent.parent / "data" / "junit-10.xsd"


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def _details(result: CheckResult) -> str:
    lines = [
        f"{result.check_id}: {result.title}",
        f"requirements: {', '.join(result.requirements)} ({result.level.value})",
        f"verdict: {result.verdict.value} - {result.reason}",
    ]
    for expectation in result.expectations:
        mark = "ok  " if expectation.passed else "FAIL"
        line = f"  [{mark}] {expectation.description}"
        if not expectation.passed:
            line += f" (expected {expectation.expected!r}, got {expectation.actual!r})"
        lines.append(line)
    lines.extend(f"note: {note}" for note in result.notes)
    if result.exchanges:
        lines.append(f"transcript exchanges: {', '.join(map(str, result.exchanges))}")
    return "\n".join(lines)


def _testcase(parent: ET.Element, result: CheckResult, role: str) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        name=f"{result.check_id}: {result.title}",
        classname=f"vrm.conformance.{role}.{result.step}",
        time=_seconds(result.duration_seconds),
    )
    details = _details(result)
    if result.verdict is Verdict.FAIL and result.baselined:
        skipped = ET.SubElement(
            case, "skipped", message=f"expected failure (baseline): {result.reason}"
        )
        skipped.text = details
    elif result.verdict is Verdict.FAIL:
        failure = ET.SubElement(case, "failure", type="fail", message=result.reason)
        failure.text = details
    elif result.verdict is Verdict.HARNESS_ERROR:
        error = ET.SubElement(case, "error", type="harness-error", message=result.reason)
        error.text = details + ("\n\n" + result.traceback if result.traceback else "")
    elif result.verdict is Verdict.SKIPPED:
        ET.SubElement(case, "skipped", message=result.reason)
    system_out = ET.SubElement(case, "system-out")
    prefix = "WARNING (SHOULD not met): " if result.verdict is Verdict.WARNING else ""
    system_out.text = prefix + details


def render_junit(run: RunResult) -> bytes:
    """The run as a JUnit XML document (UTF-8 bytes)."""
    by_step: dict[str, list[CheckResult]] = defaultdict(list)
    for result in run.results:
        by_step[result.step].append(result)
    total_time = sum(result.duration_seconds for result in run.results)
    root = ET.Element(
        "testsuites",
        name=f"{SUITE_NAME} {run.suite_version} (protocol {run.spec_version}) "
        f"{run.role} {run.target}",
        tests=str(len(run.results)),
        failures=str(sum(1 for r in run.results if r.counts_as_failure)),
        errors=str(sum(1 for r in run.results if r.verdict is Verdict.HARNESS_ERROR)),
        time=_seconds(total_time),
    )
    for step in sorted(by_step, key=step_rank):
        results = by_step[step]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{run.role}.{step}",
            tests=str(len(results)),
            failures=str(sum(1 for r in results if r.counts_as_failure)),
            errors=str(sum(1 for r in results if r.verdict is Verdict.HARNESS_ERROR)),
            skipped=str(sum(1 for r in results if r.verdict is Verdict.SKIPPED or r.baselined)),
            time=_seconds(sum(r.duration_seconds for r in results)),
            timestamp=run.started_at,
        )
        properties = ET.SubElement(suite, "properties")
        for name, value in (
            ("suite.version", run.suite_version),
            ("spec.version", run.spec_version),
            ("target.role", run.role),
            ("target.url", run.target),
        ):
            ET.SubElement(properties, "property", name=name, value=value)
        for result in results:
            _testcase(suite, result, run.role)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def write_junit(run: RunResult, path: Path) -> None:
    """Write the run as JUnit XML.

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_junit(run))
