"""Both reference agents, real, over HTTP on 127.0.0.1 (the transaction tests'
pair: the dealer of seed 000 and Sally's agent); and the suite's run of one
check against a reference agent started as a process, clean or with a fault."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from conformance.cli import conformance as conformance_cli
from tests.transaction.conftest import dealer_store_url, pairs

sys.path.insert(0, str(Path(__file__).parent.parent / "conformance"))
from agent_processes import running_agent

__all__ = ["dealer_store_url", "pairs", "verdict"]


def verdict(role: str, check_id: str, work: Path, extra: list[str]) -> tuple[str, dict[str, Any]]:
    """Run ``vrm conformance run --check check_id`` against a reference ``role``
    agent started with ``extra`` arguments; the check's verdict and result."""
    args = ["--catalogue", "dealer-mayfair", *extra] if role == "vendor" else extra
    with running_agent(role, work / "agent", args) as agent:
        out = work / "results"
        CliRunner().invoke(
            conformance_cli,
            ["run", "--role", role, "--target", agent.base_url, "--check", check_id,
             "--out", str(out), "--quiet", "--run-timeout", "120"],
        )  # fmt: skip
        document = json.loads((out / "result.json").read_text("utf-8"))
        log = agent.log()
    check = next(c for c in document["checks"] if c["id"] == check_id)
    return str(check["verdict"]), {**check, "log": log}
