"""The specification builder: determinism, anchors, links, and the ways a build fails."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tools.specgen import SpecBuildError, build_spec, main_build
from tools.specgen.build import HTML_FILE, MARKDOWN_FILE, OPENAPI_FILE
from tools.specgen.sections import SECTION_MAP
from vrm_protocol.errors import ErrorCode
from vrm_protocol.requirements import load_requirements

ROOT = Path(__file__).resolve().parents[2]
#: A traceability as the suite hands it over, with one citation of an unknown id.
TRACE = {"VRM-SIG-009": ["SEC-SIG-TAMPERED"], "VRM-NOPE-001": ["SEC-UNKNOWN"]}


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(str(attributes["id"]))
        if attributes.get("href"):
            self.hrefs.append(str(attributes["href"]))
        if attributes.get("src"):
            self.sources.append(str(attributes["src"]))


@pytest.fixture(scope="module")
def outputs() -> dict[str, bytes]:
    return build_spec(ROOT, traceability=TRACE)


@pytest.fixture(scope="module")
def html(outputs: dict[str, bytes]) -> _Collect:
    parser = _Collect()
    parser.feed(outputs[HTML_FILE].decode())
    return parser


def test_build_is_deterministic(outputs: dict[str, bytes]) -> None:
    warnings: list[str] = []
    again = build_spec(ROOT, traceability=TRACE, warnings=warnings)
    assert again == outputs
    assert set(outputs) == {
        HTML_FILE,
        MARKDOWN_FILE,
        OPENAPI_FILE,
        "spec/state-machine.svg",
        "spec/test-keys.json",
        "spec/requirements.json",
        "spec/state-machine-before-the-deal.svg",
        "spec/state-machine-the-deal.svg",
        "spec/state-machine-problems.svg",
        "spec/state-machine-exit-and-re-engagement.svg",
    }
    assert "conformance checks cite 'VRM-NOPE-001', which the registry does not have" in warnings


def test_every_requirement_is_anchored_once_in_html_and_markdown(
    outputs: dict[str, bytes], html: _Collect
) -> None:
    markdown = outputs[MARKDOWN_FILE].decode()
    for requirement_id in load_requirements():
        assert html.ids.count(requirement_id) == 1, requirement_id
        assert markdown.count(f'<a id="{requirement_id}"></a>') == 1, requirement_id


def test_every_internal_link_resolves_and_ids_are_unique(html: _Collect) -> None:
    assert len(html.ids) == len(set(html.ids))
    fragments = [href[1:] for href in html.hrefs if href.startswith("#")]
    assert fragments, "the document links to its own sections"
    assert sorted(set(fragments) - set(html.ids)) == []


def test_markdown_links_resolve_to_its_anchors(outputs: dict[str, bytes]) -> None:
    markdown = outputs[MARKDOWN_FILE].decode()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', markdown))
    links = set(re.findall(r"\]\(#([^)]+)\)", markdown))
    assert links
    assert sorted(links - anchors) == []


def test_html_is_self_contained(html: _Collect) -> None:
    assert not html.tags & {"script", "link", "img", "iframe"}
    assert html.sources == []
    assert all(not href.startswith(("http:", "https:", "//")) for href in html.hrefs)


def test_every_section_of_the_map_is_a_heading(html: _Collect) -> None:
    for section in SECTION_MAP:
        assert f"sec-{section.number}" in html.ids


def test_traceability_shows_checks(outputs: dict[str, bytes]) -> None:
    text = outputs[HTML_FILE].decode()
    block = text[text.index('id="VRM-SIG-009"') :]
    block = block[: block.index("</div>")]
    assert "SEC-SIG-TAMPERED" in block
    untested = text[text.index('id="VRM-SIG-003"') :]
    assert "No conformance check." in untested[: untested.index("</div>")]


def test_generated_registries_come_from_the_code(outputs: dict[str, bytes], html: _Collect) -> None:
    for code in ErrorCode:
        assert f"error-{code.value}" in html.ids
    text = outputs[HTML_FILE].decode()
    assert "<svg" in text
    assert "NEGOTIATION" in text
    assert json.loads(outputs[OPENAPI_FILE])["openapi"].startswith("3.1")
    assert outputs["spec/state-machine.svg"].startswith(b"<svg")


def test_worked_example_follows_the_journey(outputs: dict[str, bytes]) -> None:
    markdown = outputs[MARKDOWN_FILE].decode()
    worked = markdown[markdown.index('<a id="sec-17"></a>') :]
    order = re.findall(r"\*\*Step \d+: `([a-z-]+)`\*\*", worked)
    assert order[0] == "personal-rfi"
    assert order.index("offer-acceptance") < order.index("deal-confirmation")
    assert order.index("exit-notice") < order.index("exit-acknowledgement")


# -- failures ------------------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A copy of the build's inputs that a test may break."""
    shutil.copytree(ROOT / "spec" / "src", tmp_path / "spec" / "src")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    (tmp_path / "conformance" / "vectors").mkdir(parents=True)
    shutil.copy(ROOT / "conformance" / "vectors" / "index.json", tmp_path / "conformance/vectors")
    return tmp_path


def _edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text("utf-8")), "utf-8")


def test_marker_naming_an_unknown_requirement_fails(sandbox: Path) -> None:
    _edit(sandbox / "spec/src/08-signing.md", lambda s: s + "\n{{req VRM-SIG-999}}\n")
    with pytest.raises(SpecBuildError, match="VRM-SIG-999"):
        build_spec(sandbox)


def test_a_requirement_placed_nowhere_fails(sandbox: Path) -> None:
    _edit(sandbox / "spec/src/08-signing.md", lambda s: s.replace("{{req VRM-SIG-018}}", ""))
    with pytest.raises(SpecBuildError, match=r"placed nowhere.*VRM-SIG-018"):
        build_spec(sandbox)


def test_a_requirement_placed_twice_fails(sandbox: Path) -> None:
    _edit(sandbox / "spec/src/08-signing.md", lambda s: s + "\n{{req VRM-SIG-018}}\n")
    with pytest.raises(SpecBuildError, match="already placed"):
        build_spec(sandbox)


def test_a_requirement_outside_its_section_fails(sandbox: Path) -> None:
    _edit(
        sandbox / "spec/src/08-signing.md",
        lambda s: s.replace("{{req VRM-SIG-018}}", "").replace(
            "{{req VRM-SIG-010}}", "{{req VRM-SIG-010}}\n\n{{req VRM-SIG-018}}"
        ),
    )
    with pytest.raises(SpecBuildError, match=re.escape("belongs to §8.5")):
        build_spec(sandbox)


def test_a_heading_off_the_map_fails(sandbox: Path) -> None:
    _edit(
        sandbox / "spec/src/09-freshness.md", lambda s: s.replace("## 9.2 Audience", "## 9.2 Who")
    )
    with pytest.raises(SpecBuildError, match=re.escape("map says 9.2 Audience")):
        build_spec(sandbox)


def test_an_unknown_marker_fails(sandbox: Path) -> None:
    _edit(sandbox / "spec/src/16-registries.md", lambda s: s + "\n{{colour-chart}}\n")
    with pytest.raises(SpecBuildError, match="unknown marker"):
        build_spec(sandbox)


def test_an_invalid_example_fails(sandbox: Path) -> None:
    example = sandbox / "schemas/examples/receipt.rfi-accepted.json"
    document = json.loads(example.read_text())
    document["created"] = "yesterday"
    example.write_text(json.dumps(document))
    with pytest.raises(SpecBuildError, match=re.escape("receipt.rfi-accepted")):
        build_spec(sandbox)


def test_check_mode_reports_stale_outputs_and_writes_nothing(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main_build(sandbox, check=True) == 1
    assert not (sandbox / HTML_FILE).exists()
    assert "stale: spec/vrm-protocol.html" in capsys.readouterr().err
    assert main_build(sandbox) == 0
    assert (sandbox / HTML_FILE).exists()
    assert main_build(sandbox, check=True) == 0
    _edit(sandbox / "spec/src/01-introduction.md", lambda s: s + "\nOne more sentence.\n")
    assert main_build(sandbox, check=True) == 1


def test_a_broken_source_makes_main_build_fail_without_raising(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (sandbox / "spec/src/18-references.md").unlink()
    assert main_build(sandbox) == 1
    assert "lacks sections 18" in capsys.readouterr().err


def test_build_is_byte_identical_across_processes(tmp_path: Path) -> None:
    # Different hash seeds change set and dict-of-set orders: nothing in the
    # output may depend on them.
    script = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from tools.specgen import build_spec\n"
        "outputs = build_spec(Path(sys.argv[1]))\n"
        "for name in sorted(outputs):\n"
        "    print(name, hashlib.sha256(outputs[name]).hexdigest())\n"
    )
    digests = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", script, str(ROOT)],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=120,
        )
        digests.add(result.stdout)
    assert len(digests) == 1
    in_process = build_spec(ROOT)
    expected = "".join(
        f"{name} {hashlib.sha256(in_process[name]).hexdigest()}\n" for name in sorted(in_process)
    )
    assert digests == {expected.encode()}
