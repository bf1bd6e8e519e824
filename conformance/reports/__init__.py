"""Report writers: JSON result file, JUnit XML, HTML, and the live terminal view."""

from __future__ import annotations

from conformance.reports.html import render_html, write_html
from conformance.reports.json_report import write_json
from conformance.reports.junit import JUNIT_XSD_PATH, render_junit, write_junit
from conformance.reports.live import LiveProgress, skip_reasons, skip_summary_lines

__all__ = [
    "JUNIT_XSD_PATH",
    "LiveProgress",
    "render_html",
    "render_junit",
    "skip_reasons",
    "skip_summary_lines",
    "write_html",
    "write_json",
    "write_junit",
]
