"""Her dashboard in a real browser (Debian's chromium, over the DevTools protocol),
between the two real agents, each in its own process on 127.0.0.1.

She grants the vendor her travel dates and the vendor reads them; she opens
her dashboard with the address her agent printed at start-up, sees the grant
in force and revokes it by clicking its button; the page that loads no longer
lists it in force, and the vendor's next read is refused (``grant-revoked``).
The page is measured at a phone's width (390 px) and a desktop's (1280 px):
no horizontal overflow, readable type. Screenshots go to ``out/``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.chromium_cdp import Browser, open_browser, require_chromium
from tests.e2e.conftest import HTTP_TIMEOUT, AgentProcess, Agents
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "out"
TEST_DEADLINE_SECONDS = 90.0
TRAVEL = "travel.dates"
WIDTHS = {"phone": (390, 844, True), "desktop": (1280, 900, False)}
_DASHBOARD = re.compile(r"dashboard: (http://127\.0\.0\.1:\d+/open\?key=\S+)")

#: What a reader needs, measured in the page.
MEASURE = """JSON.stringify({
  viewport: innerWidth,
  pageWidth: document.documentElement.scrollWidth,
  smallestText: Math.min(...[...document.querySelectorAll('p, td, th, a, button, code')]
    .filter((e) => e.getClientRects().length)
    .map((e) => parseFloat(getComputedStyle(e).fontSize))),
  buttons: Math.min(...[...document.querySelectorAll('button')]
    .map((b) => b.getBoundingClientRect().height)),
  inForce: [...document.querySelectorAll('#grants-in-force [data-grant]')]
    .map((e) => e.dataset.grant),
  ended: [...document.querySelectorAll('#grants-ended [data-grant]')]
    .map((e) => [e.dataset.grant, e.textContent]),
  sections: [...document.querySelectorAll('main section h2')].map((h) => h.textContent),
  notice: document.getElementById('notice') ? document.getElementById('notice').textContent : null,
  path: location.pathname + location.search,
})"""


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    started = Agents(tmp_path)
    try:
        yield started
    finally:
        started.close()


def _dashboard_url(buyer: AgentProcess) -> str:
    """The address her agent printed at start-up (the line after ``listening on``)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for out in sorted(buyer.data_dir.parent.glob("buyer-*.out")):
            found = _DASHBOARD.search(out.read_text("utf-8"))
            if found:
                return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"her agent printed no dashboard address: {buyer.log()}")


async def _driver(
    session: aiohttp.ClientSession, agent: AgentProcess, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with session.post(agent.base_url + TEST_DRIVER_PREFIX + path, json=body) as response:
        return response.status, dict(await response.json(content_type=None))


async def _granted(
    session: aiohttp.ClientSession, buyer: AgentProcess, vendor: AgentProcess
) -> str:
    """Her RFP, the vendor's offer, then her grant of her travel dates; the
    vendor reads them once. The grant's id."""
    status, answer = await _driver(session, buyer, "/rfp", {"vendor": vendor.base_url})
    assert status == 200, answer
    for _ in range(200):
        async with session.get(buyer.base_url + TEST_DRIVER_PREFIX + "/state") as response:
            state = await response.json()
        if any(r["state"] == "negotiation" for r in state["relationships"].values()):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"no negotiation: {state}")
    status, granted = await _driver(
        session,
        buyer,
        "/grant",
        {"vendor": vendor.base_url, "items": [TRAVEL], "purposes": ["programme-membership"]},
    )
    assert status == 200, granted
    status, read = await _driver(session, vendor, "/read-grant", {"grant": granted["grant"]})
    assert (status, read["status"]) == (200, 200), read
    return str(granted["grant"])


async def _measure(browser: Browser) -> dict[str, Any]:
    measured: dict[str, Any] = json.loads(await browser.evaluate(MEASURE))
    return measured


async def _session(buyer: AgentProcess, vendor: AgentProcess, profile: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        grant = await _granted(session, buyer, vendor)
        seen["grant"] = grant
        opened = _dashboard_url(buyer)
        origin = opened.split("/open?", 1)[0]
        async with open_browser(require_chromium(), profile) as browser:
            for name, (width, height, mobile) in WIDTHS.items():
                # The first load opens it with the secret; the cookie does the rest.
                url = opened if name == "phone" else origin + "/"
                await browser.load(url, width=width, height=height, mobile=mobile)
                seen[name] = await _measure(browser)
                await browser.screenshot(OUT / f"dashboard-{name}.png")
            await browser.click(f'#grants-in-force [data-grant="{grant}"] button')
            seen["after"] = await _measure(browser)
            await browser.evaluate("document.getElementById('grants').scrollIntoView()")
            await browser.screenshot(OUT / "dashboard-revoked.png")
        seen["read"] = await _driver(session, vendor, "/read-grant", {"grant": grant})
        # And a vendor that would not stop by itself is refused by her agent.
        async with session.get(buyer.base_url + "/vrm/read/x") as response:
            seen["unknown"] = response.status
    return seen


async def test_she_revokes_a_grant_on_her_dashboard_and_the_next_read_is_refused(
    agents: Agents, tmp_path: Path
) -> None:
    require_chromium()
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        vendor = agents.start("vendor")
        buyer = agents.start("buyer")
        seen = await _session(buyer, vendor, tmp_path / "profile")
    grant = seen["grant"]
    for name in WIDTHS:
        page = seen[name]
        # The secret left the address bar (it set the cookie and redirected).
        assert page["path"] == "/", page
        assert page["inForce"] == [grant], page
        assert page["pageWidth"] <= page["viewport"], page
        assert page["smallestText"] >= 12, page
        assert page["buttons"] >= 44, page  # a finger's tap target
        assert len(page["sections"]) == 7, page
        assert (OUT / f"dashboard-{name}.png").read_bytes().startswith(b"\x89PNG")
    after = seen["after"]
    assert after["path"] == "/?done=revoked", after
    assert after["inForce"] == [], after
    assert [g for g, _ in after["ended"]] == [grant], after
    assert "revoked" in after["ended"][0][1], after
    assert "the grantee was told" in (after["notice"] or ""), after
    status, refused = seen["read"]
    assert (status, refused["code"]) == (403, "grant-revoked"), refused
