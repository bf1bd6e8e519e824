"""Every bench script runs (in its ``--tiny`` mode): a bench that no longer runs is caught here.

Nothing is asserted about the figures: tests never assert on time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The bench scripts that need nothing but the library (the agents' benches start servers).
LIBRARY_BENCHES = ("pipeline.py",)


@pytest.mark.parametrize("script", LIBRARY_BENCHES)
def test_the_bench_runs_in_its_tiny_mode(script: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--tiny"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    last_lines = completed.stdout.strip().splitlines()[-2:]
    assert last_lines[0].startswith("decode / raw verify"), completed.stdout[-2000:]
    assert last_lines[1].startswith("encode / raw sign"), completed.stdout[-2000:]
    assert all("target >=" in line for line in last_lines)


def test_the_growth_bench_runs_in_its_tiny_mode() -> None:
    """The vendor in process, relationships a few messages old: it still runs."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "growth.py"), "--tiny"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().splitlines()[-1].startswith("ratio "), completed.stdout


def test_the_interleaving_helper_measures_every_round_of_every_side() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import interleaved
    finally:
        sys.path.remove(str(ROOT / "bench"))
    calls: list[str] = []
    settings = interleaved.Settings(rounds=20, seconds_per_turn=0.0002, warmup_rounds=1)
    result = interleaved.compare(
        "a", lambda: calls.append("a"), "b", lambda: calls.append("b"), settings
    )
    assert len(result.ratios) == 20
    assert len(result.subject.per_round) == len(result.baseline.per_round) == 20
    assert "ratio" in result.line()
    assert "20 rounds" in result.line()
    # Interleaved: both sides ran in every round, not one after the other.
    first_b = calls.index("b")
    assert "a" in calls[first_b:]
