"""The generated HTML as people read it, in a real browser, at a phone's width
(390 px) and a desktop's (1280 px): it renders, its DOM has the contents and
every requirement id, and it gives a reader what the reader needs:

* no horizontal overflow of the page (wide tables and diagrams scroll in
  their own boxes, so that every column stays reachable);
* the state diagrams' labels at 11 px or more as rendered;
* on a phone, the contents do not fill the first screen (the text comes
  first); on a desktop, they are a side navigation that stays in view;
* every table has a caption, every heading a link to itself, and no code word
  is broken (at a hyphen or anywhere) unless it is a long one.

Screenshots go to ``out/spec/``: the first screen and the state diagrams at
each width. Needs Debian's chromium (``.ci/run`` installs it). Without it the
test fails, unless ``VRM_ALLOW_NO_BROWSER=1`` says that skipping is acceptable.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.chromium_cdp import open_browser, require_chromium
from tools.specgen import build_spec
from tools.specgen.build import HTML_FILE
from vrm_protocol.requirements import load_requirements

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "spec"
#: The smallest size a diagram's label may be drawn at, in CSS pixels.
MIN_LABEL_PX = 11.0

pytestmark = pytest.mark.browser

WIDTHS = {"phone": (390, 844, True), "desktop": (1280, 900, False)}

#: Measured in the page: what a reader needs (see the module docstring).
MEASURE = """
(() => {
  const page = document.documentElement;
  const labels = [...document.querySelectorAll('figure.diagram svg text')];
  const sizes = labels.map((text) => {
    const size = parseFloat(getComputedStyle(text).fontSize);
    const matrix = text.getScreenCTM();
    return size * (matrix ? Math.hypot(matrix.a, matrix.b) : 1);
  });
  const nav = document.getElementById('toc').getBoundingClientRect();
  const navOnFirstScreen = Math.max(
    0, Math.min(nav.bottom, innerHeight) - Math.max(nav.top, 0));
  const inline = [...document.querySelectorAll('main code:not(.long)')].filter(
    (code) => !code.closest('pre'));
  const broken = inline.filter((code) => code.getClientRects().length > 1)
    .map((code) => code.textContent);
  const tables = [...document.querySelectorAll('table')];
  const unscrollable = tables.filter((table) => {
    const box = table.closest('.scroll');
    return !box || getComputedStyle(box).overflowX !== 'auto';
  }).length;
  const headings = [...document.querySelectorAll('main h1[id], main h2[id], main h3[id]')];
  const linked = headings.filter(
    (h) => h.querySelector('a.self-link[href="#' + CSS.escape(h.id) + '"]')).length;
  return JSON.stringify({
    viewport: innerWidth,
    pageWidth: page.scrollWidth,
    labels: labels.length,
    smallestLabel: Math.min(...sizes),
    navOnFirstScreen: navOnFirstScreen / innerHeight,
    navPosition: getComputedStyle(document.getElementById('toc')).position,
    navLeft: nav.left,
    brokenCode: broken.slice(0, 10),
    tables: tables.length,
    uncaptioned: tables.filter((table) => !table.caption).length,
    unscrollable,
    headings: headings.length,
    selfLinked: linked,
    diagrams: document.querySelectorAll('figure.diagram svg').length,
    tokens: document.querySelectorAll('pre.jws').length,
    tokensInView: [...document.querySelectorAll('pre.jws')].filter(
      (pre) => !pre.closest('details') || pre.closest('details').open).length,
  });
})()
"""


async def _look(browser_path: str, page: Path, profile: Path) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    async with open_browser(browser_path, profile) as browser:
        for name, (width, height, mobile) in WIDTHS.items():
            await browser.load(page.as_uri(), width=width, height=height, mobile=mobile)
            measured[name] = json.loads(await browser.evaluate(MEASURE))
            shot = await browser.screenshot(SCREENSHOTS / f"{name}-first-screen.png")
            measured[name]["screenshot"] = len(shot)
            await browser.evaluate("document.getElementById('sec-7.1').scrollIntoView()")
            await browser.screenshot(SCREENSHOTS / f"{name}-states.png")
            await browser.evaluate(
                "document.getElementById('diagram-before-the-deal').scrollIntoView()"
            )
            await browser.screenshot(SCREENSHOTS / f"{name}-diagram.png")
            await browser.evaluate("document.getElementById('sec-16.5').scrollIntoView()")
            await browser.screenshot(SCREENSHOTS / f"{name}-table.png")
            await browser.evaluate(
                "document.querySelector('#sec-17 ~ details.example').scrollIntoView()"
            )
            await browser.screenshot(SCREENSHOTS / f"{name}-worked-example.png")
        measured["dom"] = await browser.evaluate("document.documentElement.outerHTML")
    return measured


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    browser_path = require_chromium()
    directory = tmp_path_factory.mktemp("spec-browser")
    page = directory / "vrm-protocol.html"
    page.write_bytes(build_spec(ROOT)[HTML_FILE])
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    return asyncio.run(_look(browser_path, page, directory / "profile"))


def test_spec_renders_with_contents_and_every_requirement(measured: dict[str, Any]) -> None:
    dom = str(measured["dom"])
    assert 'id="toc"' in dom
    assert 'href="#sec-18"' in dom
    missing = [rid for rid in load_requirements() if f'id="{rid}"' not in dom]
    assert missing == []
    for name in WIDTHS:
        assert measured[name]["screenshot"] > 10_000  # a blank page compresses to far less
        assert (SCREENSHOTS / f"{name}-first-screen.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_no_horizontal_overflow_of_the_page(measured: dict[str, Any], width: str) -> None:
    seen = measured[width]
    assert seen["pageWidth"] <= seen["viewport"], seen


@pytest.mark.parametrize("width", list(WIDTHS))
def test_diagram_labels_are_readable(measured: dict[str, Any], width: str) -> None:
    seen = measured[width]
    assert seen["diagrams"] >= 3
    assert seen["labels"] > 20
    assert seen["smallestLabel"] >= MIN_LABEL_PX, seen


def test_on_a_phone_the_contents_do_not_fill_the_first_screen(measured: dict[str, Any]) -> None:
    assert measured["phone"]["navOnFirstScreen"] <= 0.25, measured["phone"]


def test_on_a_desktop_the_contents_are_a_side_navigation(measured: dict[str, Any]) -> None:
    desktop = measured["desktop"]
    assert desktop["navPosition"] == "sticky"
    assert desktop["navLeft"] == 0
    assert desktop["navOnFirstScreen"] > 0.5


def test_the_worked_example_is_compact(measured: dict[str, Any]) -> None:
    """Every signed token is one click away, not spread over the page."""
    assert measured["phone"]["tokens"] > 20
    assert measured["phone"]["tokensInView"] == 0


@pytest.mark.parametrize("width", list(WIDTHS))
def test_tables_headings_and_code_words(measured: dict[str, Any], width: str) -> None:
    seen = measured[width]
    assert seen["tables"] > 30
    assert seen["uncaptioned"] == 0
    assert seen["unscrollable"] == 0
    assert seen["headings"] > 100
    assert seen["selfLinked"] == seen["headings"]
    assert seen["brokenCode"] == []
