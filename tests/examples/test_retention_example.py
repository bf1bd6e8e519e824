"""examples/retention_offers.py runs as a user would run it, and says what it did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retention_offers.py"


def test_retention_example_keeps_within_consent() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The promotion Dave did not allow is never sent; the test drive he allowed is.
    assert "not sent: 'promotions'" in out
    assert "service-response" in out
    # After the exit a win-back offer is refused with the stable code; a safety notice passes.
    assert "win-back offer refused before it left: reengagement-not-permitted" in out
    assert out.rstrip().endswith("Final state on both sides: exited")
