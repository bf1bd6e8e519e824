"""Implementation reports (spec §14.4): several runs, one table per requirement.

In the manner of W3C implementation reports: one row per requirement of the
registry, one column per implementation (a ``result.json`` of a conformance
run, with the role it was judged in), and in each cell the verdict the suite
reached for that implementation on that requirement:

* ``fail``, ``harness-error``, ``warning``, ``pass``: the worst verdict of the
  checks that cite the requirement and ran, each check judged for that
  requirement by the expectations that cite it when it has any (a check that
  failed on another requirement passed this one), and by its own verdict
  otherwise;
* ``skipped``: every such check was skipped;
* ``untested``: no check that ran (or that exists) cites it;
* ``not-applicable``: it does not bind the implementation's role.

The report is JSON valid against
``schemas/reports/implementation-report.schema.json``, with an HTML rendering.
Verdicts are copied from the result files, never edited (VRM-CONF-010).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from vrm_protocol.requirements import Requirement, load_requirements
from vrm_protocol.vocabulary import PROTOCOL_VERSION, Role

__all__ = [
    "REPORT_FORMAT",
    "VERDICT_ORDER",
    "ReportError",
    "build_implementation_report",
    "load_result",
    "render_implementation_html",
]

REPORT_FORMAT: Final = "vrm-implementation-report/1"
#: Worst first: the verdict of a requirement is the first of these its checks got.
VERDICT_ORDER: Final = ("fail", "harness-error", "warning", "pass", "skipped")
_CELL_VERDICTS: Final = (*VERDICT_ORDER, "untested", "not-applicable")


class ReportError(ValueError):
    """A result file the report cannot read."""


def load_result(path: Path) -> dict[str, Any]:
    """A ``result.json`` of a conformance run.

    Raises:
        ReportError: the file is unreadable, not JSON, or not a run's result.
    """
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"{path}: {error}") from error
    if (
        not isinstance(document, dict)
        or document.get("role") not in {role.value for role in Role}
        or not isinstance(document.get("checks"), list)
    ):
        raise ReportError(f"{path}: not the result.json of a conformance run")
    return document


def _check_verdict_for(check: Mapping[str, Any], requirement: str) -> str:
    """What one check says about one requirement it cites."""
    verdict = str(check.get("verdict"))
    if verdict in {"skipped", "harness-error"}:
        return verdict
    expectations = [
        expectation
        for expectation in check.get("expectations") or []
        if isinstance(expectation, Mapping) and expectation.get("requirement") == requirement
    ]
    if not expectations:
        return verdict
    failed = [expectation for expectation in expectations if not expectation.get("passed")]
    if any(expectation.get("level", "MUST") == "MUST" for expectation in failed):
        return "fail"
    if failed:
        return "warning"
    return "pass"


def _worst(verdicts: Sequence[str]) -> str:
    for verdict in VERDICT_ORDER:
        if verdict in verdicts:
            return verdict
    return "untested"


def _cell(requirement: Requirement, result: Mapping[str, Any]) -> str:
    if Role(str(result["role"])) not in requirement.roles:
        return "not-applicable"
    verdicts = [
        _check_verdict_for(check, requirement.id)
        for check in result["checks"]
        if isinstance(check, Mapping) and requirement.id in (check.get("requirements") or [])
    ]
    return _worst(verdicts)


def build_implementation_report(
    results: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    traceability: Mapping[str, Sequence[str]] | None = None,
    requirements: Mapping[str, Requirement] | None = None,
) -> dict[str, Any]:
    """The report of ``results`` (name, result.json document), one column each.

    ``traceability`` (requirement -> check ids) lists the checks of each row;
    by default the checks the results cite.

    Raises:
        ReportError: two implementations share a name, or none is given.
    """
    if not results:
        raise ReportError("an implementation report needs at least one result")
    names = [name for name, _ in results]
    if len(set(names)) != len(names):
        raise ReportError(f"implementation names must differ: {names}")
    registry = requirements if requirements is not None else load_requirements()
    cited: dict[str, set[str]] = {}
    for _, result in results:
        for check in result["checks"]:
            for requirement in check.get("requirements") or []:
                cited.setdefault(str(requirement), set()).add(str(check.get("id")))
    implementations = [
        {
            "name": name,
            "role": str(result["role"]),
            "target": str(result.get("target", "")),
            "suiteVersion": str((result.get("suite") or {}).get("version", "")),
            "startedAt": str(result.get("startedAt", "")),
            "counts": {
                str(key): int(value)
                for key, value in (result.get("summary") or {}).items()
                if isinstance(value, int)
            },
        }
        for name, result in results
    ]
    rows: list[dict[str, Any]] = []
    for requirement in registry.values():
        checks = (
            traceability.get(requirement.id, ())
            if traceability is not None
            else cited.get(requirement.id, ())
        )
        cells = {name: _cell(requirement, result) for name, result in results}
        rows.append(
            {
                "id": requirement.id,
                "level": requirement.level.value,
                "binds": requirement.binds.value,
                "checks": sorted(set(checks)),
                "results": cells,
                "passing": sum(1 for verdict in cells.values() if verdict == "pass"),
            }
        )
    musts = [row for row in rows if row["level"] == "MUST"]
    by_implementation = {
        name: {
            verdict: sum(1 for row in musts if row["results"][name] == verdict)
            for verdict in _CELL_VERDICTS
        }
        for name in names
    }
    return {
        "format": REPORT_FORMAT,
        "specVersion": PROTOCOL_VERSION,
        "implementations": implementations,
        "requirements": rows,
        "summary": {
            "mustRequirements": len(musts),
            "mustWithTwoPassing": sum(1 for row in musts if row["passing"] >= 2),
            "byImplementation": by_implementation,
        },
    }


def render_implementation_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page (no script, nothing fetched)."""
    names = [str(item["name"]) for item in report["implementations"]]
    head = "".join(
        f"<th scope='col'>{html.escape(name)}<br><small>{html.escape(str(item['role']))}"
        "</small></th>"
        for name, item in zip(names, report["implementations"], strict=True)
    )
    body = []
    for row in report["requirements"]:
        cells = "".join(
            f"<td class='{html.escape(row['results'][name])}'>"
            f"{html.escape(row['results'][name])}</td>"
            for name in names
        )
        checks = ", ".join(html.escape(check) for check in row["checks"]) or "none"
        body.append(
            f"<tr><th scope='row'><code>{html.escape(row['id'])}</code></th>"
            f"<td>{html.escape(row['level'])}</td><td>{html.escape(row['binds'])}</td>"
            f"{cells}<td>{row['passing']}</td><td class='checks'>{checks}</td></tr>"
        )
    summary = report["summary"]
    lines = "".join(
        f"<li>{html.escape(name)}: "
        + ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count)
        + "</li>"
        for name, counts in summary["byImplementation"].items()
    )
    style = (
        "body{font:15px/1.5 system-ui,sans-serif;margin:1rem}"
        ".scroll{overflow-x:auto}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccd;padding:.2rem .4rem;text-align:left;vertical-align:top}"
        "caption{text-align:left;font-weight:bold;margin:.5rem 0}"
        ".pass{background:#e3f4e1}.fail,.harness-error{background:#f9dede}"
        ".warning{background:#fbf0d0}.skipped,.untested{background:#eef}"
        ".not-applicable{color:#889}.checks{font-size:.85em}"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Implementation report, protocol {html.escape(str(report['specVersion']))}"
        f"</title><style>{style}</style></head><body>"
        f"<h1>Implementation report: VRM/CRM protocol {html.escape(str(report['specVersion']))}"
        "</h1>"
        f"<p>{summary['mustRequirements']} MUST requirements; "
        f"{summary['mustWithTwoPassing']} passed by at least two implementations.</p>"
        f"<ul>{lines}</ul>"
        "<div class='scroll'><table><caption>Verdict per requirement and implementation"
        "</caption><thead><tr><th scope='col'>Requirement</th><th scope='col'>Level</th>"
        f"<th scope='col'>Binds</th>{head}<th scope='col'>Passing</th>"
        "<th scope='col'>Checks</th></tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div></body></html>\n"
    )
