"""``vrm vendor serve`` as a real process: the listening line, the key file, restarts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reference_vendor.cli import vendor
from reference_vendor.config import KEY_FILE

LISTENING = re.compile(rb"^listening on (http://127\.0\.0\.1:(\d+))$", re.MULTILINE)


@contextlib.contextmanager
def _serving(data_dir: Path, *extra: str) -> Iterator[str]:
    argv = [
        sys.executable,
        "-c",
        "from vrm_protocol.cli import main; main()",
        "vendor",
        "serve",
        "--catalogue",
        "dealer-mayfair",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the agent announces itself
        match = LISTENING.match(line.rstrip(b"\n"))
        assert match, line
        yield match.group(1).decode()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_serve_announces_its_address_and_keeps_its_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with _serving(data_dir, "--test-mode") as base:
        discovery = _get(base + "/.well-known/vrm")
        assert discovery["id"] == base
        assert discovery["endpoints"]["testDriver"] == base + "/vrm/test-driver"
        first_kid = _get(base + "/vrm/jwks.json")["keys"][0]["kid"]
    key_file = data_dir / KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    with _serving(data_dir) as base:
        assert _get(base + "/vrm/jwks.json")["keys"][0]["kid"] == first_kid
        assert "testDriver" not in _get(base + "/.well-known/vrm")["endpoints"]


def test_faults_need_test_mode(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        vendor,
        [
            "serve",
            "--catalogue",
            "dealer-mayfair",
            "--data-dir",
            str(tmp_path),
            "--fault",
            "ignore-exit",
        ],
    )
    assert result.exit_code == 2
    assert "only with --test-mode" in result.output


def test_catalogues_are_listed() -> None:
    result = CliRunner().invoke(vendor, ["catalogues"])
    assert result.exit_code == 0
    assert re.search(r"road-warrior\s+third-party\s+Road Warrior Audio", result.output)
