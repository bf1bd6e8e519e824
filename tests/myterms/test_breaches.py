"""Notices that are what they say, her side (spec §6.9, VRM-MYT-007): the suite,
as a vendor in service with the real buyer agent, sends a programme offer
labelled technical; her agent refuses it, reports it and records the breach
(in her store, shown by the driver state). With the fault, the check fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.myterms.conftest import verdict


@pytest.mark.parametrize(
    ("fault", "expected"), [(None, "pass"), ("quiet-on-mislabelled-notice", "fail")]
)
def test_a_mislabelled_notice_is_a_recorded_breach(
    fault: str | None, expected: str, tmp_path: Path
) -> None:
    found, result = verdict(
        "buyer", "BUY-GUARD-MISLABELLED-NOTICE", tmp_path, ["--fault", fault] if fault else []
    )
    shown = ("reason", "expectations", "log")
    assert found == expected, {k: v for k, v in result.items() if k in shown}
