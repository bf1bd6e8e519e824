"""The self-contained HTML report, grouped by lifecycle step and by requirement.

One file, no external resources (no scripts, fonts or stylesheets fetched),
so that it can be attached to a certification record and read offline.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2

from conformance import SUITE_NAME
from conformance.model import ALL_STEPS, Verdict, step_rank
from conformance.results import CheckResult, RunResult

__all__ = ["render_html", "write_html"]

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("conformance", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_VERDICT_ORDER = [
    Verdict.FAIL,
    Verdict.HARNESS_ERROR,
    Verdict.WARNING,
    Verdict.SKIPPED,
    Verdict.PASS,
]


def _worst(results: list[CheckResult]) -> str:
    verdicts = {r.verdict for r in results if not r.baselined}
    for verdict in _VERDICT_ORDER:
        if verdict in verdicts:
            return verdict.value
    return Verdict.FAIL.value if any(r.baselined for r in results) else Verdict.SKIPPED.value


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def render_html(run: RunResult) -> str:
    """The run as one self-contained HTML document."""
    by_step: dict[str, list[CheckResult]] = defaultdict(list)
    by_requirement: dict[str, list[CheckResult]] = defaultdict(list)
    for result in run.results:
        by_step[result.step].append(result)
        for requirement in result.requirements:
            by_requirement[requirement].append(result)
    exchanges = {exchange.seq: exchange.to_json() for exchange in run.transcript}
    steps = [
        {"name": step, "results": by_step[step], "worst": _worst(by_step[step])}
        for step in sorted(by_step, key=step_rank)
    ]
    requirements = [
        {"id": requirement, "results": results, "worst": _worst(results)}
        for requirement, results in sorted(by_requirement.items())
    ]
    template = _ENVIRONMENT.get_template("report.html.j2")
    return template.render(
        run=run,
        suite_name=SUITE_NAME,
        counts=run.counts(),
        exit_code=int(run.exit_code()),
        steps=steps,
        all_steps=ALL_STEPS,
        requirements=requirements,
        exchanges=exchanges,
        pretty=_pretty,
    )


def write_html(run: RunResult, path: Path) -> None:
    """Write the HTML report.

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(run), encoding="utf-8")
