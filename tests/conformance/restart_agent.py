"""Restart a reference agent in place: the suite's ``--restart-command`` in tests.

Usage: ``python restart_agent.py STATE_FILE``

``STATE_FILE`` (JSON, written by ``tests/conformance/agent_processes.py``) names the
running agent's pid, its argv, port and log file. The agent is stopped with
SIGTERM, started again with the same argv but ``--port`` set to the port it
had (so its party id, the base URL, is unchanged) and the same data
directory, and the new pid is written back. The script returns once the new
process has printed its ``listening on`` line, leaving it running in its own
session; the test's teardown stops whichever pid the state file names last.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STOP_TIMEOUT_SECONDS = 15.0
START_TIMEOUT_SECONDS = 30.0


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _with_port(argv: list[str], port: int) -> list[str]:
    fixed = list(argv)
    index = fixed.index("--port")
    fixed[index + 1] = str(port)
    return fixed


def main(state_path: Path) -> int:
    """Restart the agent the state file names; 0 on success, 1 otherwise."""
    state = json.loads(state_path.read_text("utf-8"))
    port = int(state["port"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(state["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _port_open(port):
        if time.monotonic() > deadline:
            print(f"agent on port {port} did not stop", file=sys.stderr)
            return 1
        time.sleep(0.05)
    log_path = Path(state["log"])
    with log_path.open("ab") as log:
        log.write(b"\n--- restarted ---\n")
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(
            _with_port(state["argv"], port),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state["pid"] = process.pid
    state_path.write_text(json.dumps(state), "utf-8")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with log_path.open("rb") as log:
            log.seek(offset)
            if b"listening on http://" in log.read():
                return 0
        if process.poll() is not None:
            print(f"agent exited with {process.returncode} on restart", file=sys.stderr)
            return 1
        time.sleep(0.05)
    print("agent did not announce itself after the restart", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
