"""A vendor whose disk fills up (D11): it answers ``503 temporarily-unavailable``
with ``Retry-After`` instead of 500, logs no traceback, keeps serving, and has
applied exactly what it acknowledged.

The vendor runs as a real process on 127.0.0.1 whose file-size limit
(``RLIMIT_FSIZE``) stands in for a full disk: past it every write of the store
fails with an I/O error, as on a full or failing disk. Bounded: at most
``MAX_MESSAGES`` messages are sent.
"""

from __future__ import annotations

import re
import resource
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from tests.e2e.conftest import (
    HTTP_TIMEOUT,
    START_TIMEOUT_SECONDS,
    STORE_FILE,
    VENDOR_ARGS,
    VRM_COMMAND,
    Buyer,
    integrity_check,
    post_token,
)
from vrm_protocol.codec import decode
from vrm_protocol.keys import key_resolver

#: The largest file the vendor process may write: room for its schema and a
#: few dozen messages in the write-ahead log, then "disk full".
FILE_SIZE_LIMIT = 1_500_000
MAX_MESSAGES = 400
_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _message_id(token: bytes) -> str:
    received = decode(token, resolve_key=key_resolver(None), receiver=None, now=datetime.now(UTC))
    return str(received.payload["id"])


def _start_vendor(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start the vendor with its file-size limit; its process, base URL and log file."""
    data_dir = tmp_path / "data"
    out_file, err_file = tmp_path / "vendor.out", tmp_path / "vendor.err"
    argv = [*VRM_COMMAND, "vendor", "serve", *VENDOR_ARGS, "--host", "127.0.0.1"]
    argv += ["--port", "0", "--data-dir", str(data_dir), "--test-mode"]
    with out_file.open("wb") as stdout, err_file.open("wb") as stderr:
        process = subprocess.Popen(
            argv,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            preexec_fn=_limit_file_size,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while (match := _LISTENING.search(out_file.read_bytes())) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(err_file.read_text())
        time.sleep(0.02)
    return process, match.group(1).decode(), err_file


async def test_a_full_disk_answers_503_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, base_url, err_file = _start_vendor(tmp_path)
    try:
        accepted: list[str] = []
        refused: list[str] = []
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            for _ in range(MAX_MESSAGES):
                token = Buyer(base_url).rfi()
                posted = await post_token(session, base_url, token)
                if posted.status == 202:
                    accepted.append(_message_id(token))
                    continue
                problem = posted.problem()
                assert (posted.status, problem["code"]) == (503, "temporarily-unavailable")
                refused.append(_message_id(token))
                if len(refused) == 3:
                    break
            assert accepted, "the store took some messages before the disk filled"
            assert len(refused) == 3, "the disk never filled: raise MAX_MESSAGES"
            async with session.get(base_url + "/.well-known/vrm") as response:
                assert response.status == 200, "the agent still serves"
        assert process.poll() is None
    finally:
        process.kill()
        process.wait(timeout=10)
    log = err_file.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "store is unavailable" in log
    store = data_dir / STORE_FILE
    assert integrity_check(store) == "ok"
    with sqlite3.connect(store) as conn:
        stored = {row[0] for row in conn.execute("SELECT message_id FROM messages")}
    assert set(accepted) <= stored, "every acknowledged message is in the store"
    assert not set(refused) & stored, "nothing of a refused message was applied"
