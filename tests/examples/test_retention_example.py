"""examples/retention_offers.py runs as a user would run it (real agents over HTTP),
and says what it did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "retention_offers.py"


def test_retention_example_keeps_within_consent(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # What Dave allowed is sent; the promotion he did not allow is not.
    assert "sent: test-drive-invitation (other, events)" in out
    assert "sent: warranty-extension (warranty-extension, warranty)" in out
    assert (
        "not sent: area-promotion (promotions): the individual does not allow promotions "
        "notifications" in out
    )
    # Erin allows promotions but shared no area: the promotion for her area is not sent.
    assert "it depends on location.home-area, which the individual did not share" in out
    # After Dave's exit nothing but safety and recalls may go: nothing is sent.
    assert "not sent: new-model-information: the relationship's state or re-engagement" in out
    assert "The manufacturer recorded 7 touchpoints not sent, with the reasons." in out
