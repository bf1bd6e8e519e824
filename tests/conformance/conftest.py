"""Print the kill matrix of the broken-agent runs at the end of the session."""

from __future__ import annotations

import pytest
from kill_matrix import render


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = render()
    if lines:
        terminalreporter.section("conformance kill matrix (faults x checks)")
        for line in lines:
            terminalreporter.write_line(line)
