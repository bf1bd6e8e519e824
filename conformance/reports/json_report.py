"""The JSON result file: the complete, machine-readable record of a run."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.results import RunResult

__all__ = ["write_json"]


def write_json(run: RunResult, path: Path) -> None:
    """Write the run (verdicts, evidence, transcript) as indented JSON.

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
