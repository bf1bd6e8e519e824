"""Debian's chromium, driven over the DevTools protocol, for the browser tests
(the spec's pages, her dashboard).

Headless chromium will not make its window narrower than 500 px, so a phone's
width cannot be had from ``--window-size``: the page is emulated instead
(``Emulation.setDeviceMetricsOverride``), as the browser's own device mode
does, and measured with ``Runtime.evaluate``. The page itself runs no script.
The client is aiohttp's websocket (the test extras install it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

__all__ = ["CHROMIUM", "Browser", "find_chromium", "open_browser", "require_chromium"]

CHROMIUM = "/usr/bin/chromium"
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    """The chromium binary, or ``None`` when it is not installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def require_chromium() -> str:
    """The chromium binary; without one the test fails, unless
    ``VRM_ALLOW_NO_BROWSER=1`` says that skipping is acceptable."""
    found = find_chromium()
    if found is None:
        if os.environ.get("VRM_ALLOW_NO_BROWSER") == "1":
            pytest.skip("chromium is not installed and VRM_ALLOW_NO_BROWSER=1 allows skipping")
        pytest.fail(
            "chromium is not installed: .ci/run installs it (apt-get install chromium); "
            "set VRM_ALLOW_NO_BROWSER=1 to skip this test where no browser can be installed"
        )
    return found


@dataclass
class Browser:
    """One page of a headless chromium, driven over its websocket."""

    websocket: aiohttp.ClientWebSocketResponse
    counter: int = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer.

        Raises:
            RuntimeError: the browser answered with an error.
        """
        self.counter += 1
        ident = self.counter
        await self.websocket.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await self.websocket.receive_json(timeout=60)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def load(self, url: str, *, width: int, height: int, mobile: bool) -> None:
        """Show ``url`` in a viewport of ``width`` x ``height`` CSS pixels."""
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)
        await self._loaded(url)

    async def _loaded(self, what: str, *, after_leaving: bool = False) -> None:
        # A page being replaced may not answer an evaluation: try again.
        for _ in range(200):
            try:
                left = await self.evaluate("window.__leaving === undefined")
                state = await self.evaluate("document.readyState")
            except RuntimeError:
                left, state = False, None
            if state == "complete" and (left or not after_leaving):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{what} did not finish loading")

    async def click(self, selector: str) -> None:
        """Click the middle of the element ``selector`` names with the mouse, as a
        person would, and wait for the page that loads (a form's answer).

        Raises:
            RuntimeError: no such element, or no page loaded after the click.
        """
        where = await self.evaluate(
            "(() => { const e = document.querySelector(" + json.dumps(selector) + ");"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " window.__leaving = true;"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if where is None:
            raise RuntimeError(f"nothing on the page matches {selector}")
        x, y = where
        for kind in ("mousePressed", "mouseReleased"):
            await self.call(
                "Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1
            )
        await self._loaded(f"the page after clicking {selector}", after_leaving=True)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> bytes:
        """A PNG of the viewport, also written to ``path``."""
        result = await self.call("Page.captureScreenshot", format="png")
        data = base64.b64decode(result["data"])
        _write(path, data)
        return data


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _start(binary: str, profile: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@asynccontextmanager
async def open_browser(binary: str, profile: Path) -> AsyncIterator[Browser]:
    """A headless chromium with one page; stopped (by its own pid) on exit."""
    process = _start(binary, profile)
    try:
        assert process.stderr is not None
        endpoint = None
        for line in process.stderr:
            found = _LISTENING.search(line)
            if found:
                endpoint = found.group(1)
                break
        if endpoint is None:
            raise RuntimeError("chromium did not open its DevTools endpoint")
        # Keep reading what chromium logs, or a full pipe would stop it.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        port = re.search(r":(\d+)/", endpoint)
        assert port is not None
        async with aiohttp.ClientSession() as session:
            listing = await session.get(f"http://127.0.0.1:{port.group(1)}/json/list")
            pages = [page for page in json.loads(await listing.text()) if page["type"] == "page"]
            async with session.ws_connect(
                pages[0]["webSocketDebuggerUrl"], max_msg_size=0
            ) as websocket:
                yield Browser(websocket)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
