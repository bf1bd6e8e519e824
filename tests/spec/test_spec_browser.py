"""The generated HTML in a real browser: it renders, and its DOM has the TOC and
every requirement id.

Needs Debian's chromium (``.ci/run`` installs it). Without it the test fails,
unless ``VRM_ALLOW_NO_BROWSER=1`` says that skipping is acceptable here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.specgen import build_spec
from tools.specgen.build import HTML_FILE
from vrm_protocol.requirements import load_requirements

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_COPY = ROOT / "out" / "spec-screenshot.png"
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.browser


def _chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        if os.environ.get("VRM_ALLOW_NO_BROWSER") == "1":
            pytest.skip("chromium is not installed and VRM_ALLOW_NO_BROWSER=1 allows skipping")
        pytest.fail(
            "chromium is not installed: .ci/run installs it (apt-get install chromium); "
            "set VRM_ALLOW_NO_BROWSER=1 to skip this test where no browser can be installed"
        )
    return found


def _run(browser: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, timeout=120, check=False)


def test_spec_renders_in_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    page = tmp_path / "vrm-protocol.html"
    page.write_bytes(build_spec(ROOT)[HTML_FILE])
    screenshot = tmp_path / "first-page.png"

    shot = _run(
        browser,
        tmp_path / "profile-shot",
        "--window-size=1280,1600",
        f"--screenshot={screenshot}",
        page.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr.decode(errors="replace")[-2000:]
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 10_000  # a blank page compresses to far less
    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, SCREENSHOT_COPY)

    dump = _run(browser, tmp_path / "profile-dom", "--dump-dom", page.as_uri())
    assert dump.returncode == 0, dump.stderr.decode(errors="replace")[-2000:]
    dom = dump.stdout.decode()
    assert 'id="toc"' in dom
    assert 'href="#sec-17"' in dom
    missing = [rid for rid in load_requirements() if f'id="{rid}"' not in dom]
    assert missing == []
