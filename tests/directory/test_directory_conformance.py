"""The suite's directory checks against the reference agents, in real processes:
the buyer's search (VRM-DIR-004..006) and the vendor's listing (VRM-DIR-001)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.directory.test_directory_processes import _process

pytestmark = pytest.mark.slow


def _run(role: str, target: str, check: str, out: Path) -> dict[str, str]:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from vrm_protocol.cli import main; main()",
            "conformance",
            "run",
            "--role",
            role,
            "--target",
            target,
            "--check",
            check,
            "--out",
            str(out),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    result = json.loads((out / "result.json").read_text("utf-8"))
    outcomes = {item["id"]: item["verdict"] for item in result["checks"]}
    passed = all(verdict == "pass" for verdict in outcomes.values())
    assert (completed.returncode == 0) == passed, (outcomes, completed.stdout[-2000:])
    return outcomes


@pytest.mark.parametrize(
    ("faults", "verdict"), [((), "pass"), (("--fault", "unverified-listings"), "fail")]
)
def test_the_buyer_searches_anonymously_and_writes_to_verified_vendors_only(
    tmp_path: Path, faults: tuple[str, ...], verdict: str
) -> None:
    with _process(
        "buyer",
        "serve",
        "--port",
        "0",
        "--test-mode",
        "--data-dir",
        str(tmp_path / "buyer"),
        *faults,
    ) as buyer:
        outcomes = _run("buyer", buyer, "BUY-DIRECTORY-SEARCH", tmp_path / "result")
    assert outcomes == {"BUY-DIRECTORY-SEARCH": verdict}


@pytest.mark.parametrize(
    ("faults", "verdict"), [((), "pass"), (("--fault", "listing-foreign-key"), "fail")]
)
def test_the_vendor_lists_itself_with_its_own_key(
    tmp_path: Path, faults: tuple[str, ...], verdict: str
) -> None:
    with _process(
        "vendor",
        "serve",
        "--catalogue",
        "dealer-online",
        "--port",
        "0",
        "--test-mode",
        "--data-dir",
        str(tmp_path / "vendor"),
        *faults,
    ) as vendor:
        outcomes = _run("vendor", vendor, "VEN-DIRECTORY-LISTING", tmp_path / "result")
    assert outcomes == {"VEN-DIRECTORY-LISTING": verdict}
