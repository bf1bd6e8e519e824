"""What the generated specification shows: field tables, state diagram, registries."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tools.specgen import build_spec
from tools.specgen.build import HTML_FILE, MARKDOWN_FILE
from tools.specgen.diagram import Edge, render_state_diagram
from tools.specgen.markdown import link_sections, table
from tools.specgen.schema_docs import def_anchor
from vrm_protocol.state_machine import TRANSITION_ROWS, RelationshipState

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def outputs() -> dict[str, bytes]:
    return build_spec(ROOT)


def _members(schema: dict[str, Any], prefix: str = "") -> list[str]:
    names: list[str] = []
    for name, member in schema.get("properties", {}).items():
        names.append(prefix + name)
        if member.get("type") == "object" and "properties" in member:
            names.extend(_members(member, f"{prefix}{name}."))
    return names


def test_field_tables_list_every_member_of_every_schema(outputs: dict[str, bytes]) -> None:
    html = outputs[HTML_FILE].decode()
    for path in sorted((ROOT / "schemas").glob("*.schema.json")):
        stem = path.name.removesuffix(".schema.json")
        if stem == "message":
            continue  # a oneOf over the others, nothing of its own
        document = json.loads(path.read_text())
        definitions = dict(document.get("$defs", {}))
        if stem in {"envelope", "attestation"}:
            definitions[""] = document
        for name, definition in definitions.items():
            assert f'id="{def_anchor(stem, name)}"' in html, (stem, name)
            for member in _members(definition):
                assert f"<code>{member}</code>" in html, (stem, name, member)


def _state_diagram_boxes(svg: str) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    root = ET.fromstring(svg)
    states, labels = [], []
    for rect in root.iter(f"{SVG}rect"):
        box = tuple(float(rect.get(key, "0")) for key in ("x", "y", "width", "height"))
        if rect.get("rx") == "8":
            states.append(box)
        elif rect.get("rx") == "3":
            labels.append(box)
    return states, labels


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return not (
        a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
    )


def test_state_diagram_shows_every_state_and_move(outputs: dict[str, bytes]) -> None:
    svg = outputs["spec/state-machine.svg"].decode()
    root = ET.fromstring(svg)
    texts = {element.text for element in root.iter(f"{SVG}text")}
    for state in RelationshipState:
        assert state.value.upper() in texts
    for row in TRANSITION_ROWS:
        if row.state is not row.target and row.message.value != "exit-notice":
            assert f"{row.message.value} ({row.sender.value})" in texts
    pairs = {(row.state, row.target) for row in TRANSITION_ROWS if row.state is not row.target}
    pairs |= {
        (row.state, row.otherwise)
        for row in TRANSITION_ROWS
        if row.otherwise is not None and row.otherwise is not row.state
    }
    assert len(list(root.iter(f"{SVG}path"))) >= len(pairs)


def test_state_diagram_labels_overlap_neither_states_nor_each_other(
    outputs: dict[str, bytes],
) -> None:
    states, labels = _state_diagram_boxes(outputs["spec/state-machine.svg"].decode())
    assert len(states) == len(RelationshipState)
    for index, label in enumerate(labels):
        assert not any(_overlap(label, state) for state in states)
        assert not any(_overlap(label, other) for other in labels[index + 1 :])


def test_diagram_of_a_small_machine() -> None:
    svg = render_state_diagram(
        ["search", "enquiry", "exiting"],
        [
            Edge("search", "enquiry", "personal-rfi (buyer)"),
            Edge("enquiry", "enquiry", "personal-rfi (buyer)"),
            Edge("enquiry", "exiting", "exit-notice (buyer)", exit=True),
        ],
        initial="search",
        title="small",
    )
    root = ET.fromstring(svg)
    paths = list(root.iter(f"{SVG}path"))
    # Besides the arrowheads' paths: one curve per pair of distinct states (the
    # self-loop is left to the table), the exit drawn dashed and unlabelled.
    drawn = [path for path in paths if path.get("fill") == "none"]
    assert len(drawn) == 2
    assert sorted(str(path.get("stroke-dasharray")) for path in drawn) == ["6 4", "None"]
    labels = [text.text for text in root.iter(f"{SVG}text")]
    assert "personal-rfi (buyer)" in labels
    assert "exit-notice (buyer)" not in labels
    assert svg == render_state_diagram(
        ["search", "enquiry", "exiting"],
        [
            Edge("search", "enquiry", "personal-rfi (buyer)"),
            Edge("enquiry", "enquiry", "personal-rfi (buyer)"),
            Edge("enquiry", "exiting", "exit-notice (buyer)", exit=True),
        ],
        initial="search",
        title="small",
    )


def test_markdown_rendering_points_at_the_diagram_file(outputs: dict[str, bytes]) -> None:
    markdown = outputs[MARKDOWN_FILE].decode()
    assert "[state-machine.svg](state-machine.svg)" in markdown
    assert "(state-machine-before-the-deal.svg)" in markdown
    assert "<svg" not in markdown


def test_section_references_are_linked_outside_code_only() -> None:
    unknown: list[str] = []
    known = {"8", "8.1"}
    text = "See §8.1 and `§8.1`, RFC 9457 §3, RFC 7515 §4.1.11, [§8](#sec-8) and §42."
    linked = link_sections(text, known, unknown)
    assert linked == (
        "See [§8.1](#sec-8.1) and `§8.1`, RFC 9457 §3, RFC 7515 §4.1.11, [§8](#sec-8) and §42."
    )
    assert unknown == ["42"]


def test_tables_escape_pipes_in_cells() -> None:
    rendered = table(["a", "b"], [["`x|y`", "multi\nline"]])
    assert rendered.splitlines() == ["| a | b |", "| --- | --- |", "| `x\\|y` | multi line |"]
