"""Starting the reference agents as real processes on 127.0.0.1 for the suite to judge.

Each agent runs as ``vrm {vendor|buyer} serve --port 0 --data-dir D
--test-mode ...`` with its output in a log file; the base URL is
read from its ``listening on http://127.0.0.1:PORT`` line. A JSON state file
beside the log lets ``restart_agent.py`` (the suite's ``--restart-command``)
restart it on the same port.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
RESTART_SCRIPT = Path(__file__).resolve().parent / "restart_agent.py"
_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:(\d+))")
#: The ``vrm`` command as users run it: the console script beside this interpreter.
_SCRIPT = Path(sys.executable).parent / "vrm"
VRM_COMMAND: tuple[str, ...] = (
    (str(_SCRIPT),)
    if _SCRIPT.exists()
    else (sys.executable, "-c", "from vrm_protocol.cli import main; main()")
)


@dataclass(frozen=True, slots=True)
class RunningAgent:
    """A started agent: where it listens and how to restart it."""

    base_url: str
    state_file: Path
    log_file: Path

    @property
    def restart_command(self) -> str:
        """The shell command that restarts the agent on the same port."""
        return shlex.join([sys.executable, str(RESTART_SCRIPT), str(self.state_file)])

    def log(self) -> str:
        """Everything the agent printed so far (for assertion messages)."""
        return self.log_file.read_text("utf-8", errors="replace")[-4000:]


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            # Not our child (started by the restart script): poll for its end.
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            finished = 0
        if finished:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@contextlib.contextmanager
def running_agent(
    kind: str,
    work_dir: Path,
    extra_args: Sequence[str] = (),
    *,
    test_mode: bool = True,
    data_dir: bool = True,
) -> Iterator[RunningAgent]:
    """Run a reference agent (``vendor`` or ``buyer``) for the duration of the block
    (in test mode, with its test driver, unless ``test_mode`` is false; with a data
    directory in ``work_dir`` unless ``data_dir`` is false: ``extra_args`` then name
    its store, e.g. ``--store postgresql://...``).

    Raises:
        RuntimeError: the agent exited or did not announce its address in time.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    log_file = work_dir / "agent.log"
    state_file = work_dir / "agent.json"
    argv = [
        *VRM_COMMAND,
        kind,
        "serve",
        "--port",
        "0",
        *(["--data-dir", str(work_dir / "data")] if data_dir else []),
        *(["--test-mode"] if test_mode else []),
        *extra_args,
    ]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        match = None
        while match is None:
            match = _LISTENING.search(log_file.read_bytes())
            if match is not None:
                break
            if process.poll() is not None:
                raise RuntimeError(
                    f"{kind} agent exited with {process.returncode}:\n"
                    + log_file.read_text(errors="replace")[-4000:]
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{kind} agent did not announce its address within "
                    f"{START_TIMEOUT_SECONDS:.0f} s:\n" + log_file.read_text(errors="replace")
                )
            time.sleep(0.05)
        base_url = match.group(1).decode()
        port = int(match.group(2))
        state_file.write_text(
            json.dumps({"pid": process.pid, "argv": argv, "port": port, "log": str(log_file)})
        )
        yield RunningAgent(base_url, state_file, log_file)
    finally:
        pid = process.pid
        if state_file.exists():
            pid = int(json.loads(state_file.read_text())["pid"])
        _stop(pid)
        if pid != process.pid:
            _stop(process.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
