"""The operator: the person running the suite, asked to act when no test driver exists.

A buyer agent acts for a person, so it sends an RFI or accepts an offer only
when told to. A buyer under test that lists ``endpoints.testDriver`` in its
discovery document is told by the suite over HTTP; one that does not is told
by its operator, whom the suite instructs here and then waits for (with a
timeout) until the expected message arrives.
"""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.panel import Panel

__all__ = ["ConsoleOperator", "Operator", "SilentOperator"]


class Operator(Protocol):
    """Someone who can make the target act."""

    def instruct(self, instruction: str, *, timeout_seconds: float) -> None:
        """Tell the operator what to do now; the suite then waits for the result."""


class ConsoleOperator:
    """Prints instructions on the terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def instruct(self, instruction: str, *, timeout_seconds: float) -> None:
        """Show the instruction in a panel with the time the operator has."""
        self.console.print(
            Panel(
                f"{instruction}\n\n[dim]Waiting up to {timeout_seconds:.0f} s.[/dim]",
                title="Operator action needed",
                border_style="yellow",
            )
        )


class SilentOperator:
    """Records instructions without showing them (non-interactive runs, tests).

    Against a target without a test driver every instruction then simply
    times out, and the checks that needed it fail with the instruction as
    their reason.
    """

    def __init__(self) -> None:
        self.instructions: list[str] = []

    def instruct(self, instruction: str, *, timeout_seconds: float) -> None:
        """Remember the instruction."""
        self.instructions.append(instruction)
