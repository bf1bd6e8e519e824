"""The live terminal view: a progress bar and one line per verdict as it lands."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from conformance import SUITE_NAME
from conformance.context import RunOptions
from conformance.model import Verdict
from conformance.registry import Check
from conformance.results import CheckResult, RunResult

__all__ = ["LiveProgress", "skip_reasons", "skip_summary_lines"]

_STYLE = {
    Verdict.PASS: "green",
    Verdict.FAIL: "bold red",
    Verdict.WARNING: "yellow",
    Verdict.SKIPPED: "dim",
    Verdict.HARNESS_ERROR: "bold magenta",
}


def skip_reasons(run: RunResult) -> list[tuple[str, list[str]]]:
    """Why checks were skipped: each reason once, with the ids of its checks, in run order.

    A skipped check judged nothing, so a summary that only counts skips hides
    what the target lacks (a trusted issuer, a restart command, a message type):
    the reasons belong on the console, not only in ``result.json``.
    """
    grouped: dict[str, list[str]] = {}
    for result in run.results:
        if result.verdict is Verdict.SKIPPED:
            grouped.setdefault(result.reason or "no reason given", []).append(result.check_id)
    return list(grouped.items())


def skip_summary_lines(run: RunResult) -> list[str]:
    """Plain lines for the summary: ``skipped ID, ID: reason``, one per reason."""
    return [f"skipped {', '.join(ids)}: {reason}" for reason, ids in skip_reasons(run)]


class LiveProgress:
    """A :class:`~conformance.runner.ProgressListener` drawing on a rich console."""

    def __init__(self, console: Console | None = None, *, verbose: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.verbose = verbose
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._task: TaskID | None = None

    def run_started(self, checks: Sequence[Check], options: RunOptions) -> None:
        """Print the header and start the bar."""
        from conformance import SPEC_VERSION, SUITE_VERSION

        self.console.print(
            f"[bold]{SUITE_NAME} {SUITE_VERSION}[/bold] (protocol {SPEC_VERSION}): "
            f"{len(checks)} check(s) against the {options.role.value} at {options.target}"
        )
        self._progress.start()
        self._task = self._progress.add_task("starting", total=len(checks))

    def check_started(self, check: Check) -> None:
        """Show which check runs now."""
        if self._task is not None:
            self._progress.update(self._task, description=f"{check.step}: {check.id}")

    def check_finished(self, result: CheckResult) -> None:
        """Print the verdict line and advance the bar."""
        label = result.verdict.value + (" (expected)" if result.baselined else "")
        style = "dim" if result.baselined else _STYLE[result.verdict]
        line = f"[{style}]{label:>14}[/{style}]  {result.check_id}  [dim]{result.title}[/dim]"
        self._progress.console.print(line, highlight=False)
        if result.verdict is not Verdict.PASS or self.verbose:
            self._progress.console.print(f"{'':>16}[dim]{result.reason}[/dim]", highlight=False)
        if self._task is not None:
            self._progress.advance(self._task)

    def run_finished(self, run: RunResult) -> None:
        """Stop the bar and print the summary."""
        self._progress.stop()
        table = Table(title="Summary", show_header=True)
        counts = run.counts()
        for name in counts:
            table.add_column(name)
        table.add_row(*(str(value) for value in counts.values()))
        self.console.print(table)
        reasons = skip_reasons(run)
        if reasons:
            skipped = sum(len(ids) for _, ids in reasons)
            self.console.print(f"[bold]Skipped[/bold] ({skipped}), and why:")
            for reason, ids in reasons:
                self.console.print(f"  [dim]{', '.join(ids)}[/dim]", highlight=False)
                self.console.print(f"      {reason}", highlight=False, markup=False)
        for entry in run.stale_baseline:
            self.console.print(f"[yellow]stale baseline entry[/yellow] {entry}")
        self.console.print(f"exit code {int(run.exit_code())}")
