"""The suite against a vendor of two processes on one PostgreSQL database.

Two ``vrm vendor serve --store postgresql://...`` processes serve one vendor
identity; a loopback balancer (``balancer.py``) in front of them hands each
connection to the next process in turn, and both name the balancer's address
as their party id. ``vrm conformance run`` judges the balancer's address
exactly as it judges any vendor: every check, each relationship's messages
arriving through either process, the test driver's clock moved through one
and read by the other, a restart of one of them (``--restart-command``). Then
both processes must have served, and must show the same state.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from agent_processes import RunningAgent, running_agent
from balancer import Balancer
from test_against_reference import _assert_clean_run, _explain, _run, _verdicts
from test_against_reference import issuer as issuer

pytestmark = pytest.mark.slow


def _port(agent: RunningAgent) -> int:
    return int(agent.base_url.rsplit(":", 1)[1])


def _state(agent: RunningAgent) -> dict[str, Any]:
    with urllib.request.urlopen(agent.base_url + "/vrm/test-driver/state", timeout=30) as response:
        document: dict[str, Any] = json.loads(response.read())
    return document


def test_the_suite_passes_a_vendor_of_two_processes_on_one_database(
    tmp_path: Path, issuer: tuple[Path, Path], postgres_url: str
) -> None:
    balancer = Balancer()
    balancer.bind()
    arguments = [
        "--catalogue",
        "dealer-mayfair",
        "--trust-issuer",
        str(issuer[1]),
        "--store",
        postgres_url,
        "--public-url",
        balancer.url,
    ]
    with (
        running_agent("vendor", tmp_path / "first", arguments, data_dir=False) as first,
        running_agent("vendor", tmp_path / "second", arguments, data_dir=False) as second,
    ):
        balancer.start([_port(first), _port(second)])
        try:
            # The suite sees one vendor at the balancer's address; its restart
            # command restarts the first process (the second serves meanwhile).
            target = RunningAgent(balancer.url, first.state_file, first.log_file)
            out = tmp_path / "results"
            code, document, _ = _run(
                "vendor",
                target,
                out,
                "--restart-command",
                first.restart_command,
                issuer_key=issuer[0],
            )
            explained = _explain(document, first) + "\n--- second ---\n" + second.log()
            _assert_clean_run("vendor", code, document, target, out)
            verdicts = _verdicts(document)
            for check_id in ("SEC-REPLAY-RESTART", "VEN-ATTESTATION-TRUSTED", "VEN-RETENTION"):
                assert verdicts[check_id] in ("pass", "warning"), explained
            # Both processes served the run, and accepted messages of it.
            assert all(count > 0 for count in balancer.served.values()), balancer.served
            for agent in (first, second):
                assert "accepted personal-rfi" in agent.log_file.read_text(errors="replace")
            # One vendor: either process shows the same state, read from the database.
            assert _state(first) == _state(second)
        finally:
            balancer.close()
