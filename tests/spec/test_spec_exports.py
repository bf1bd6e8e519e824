"""What the spec build exports besides the document (spec §14.4): the requirements
as JSON, valid against their schema and complete; and the front matter a
standard has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tools.specgen import build_spec
from tools.specgen.build import HTML_FILE, MARKDOWN_FILE, REQUIREMENTS_FILE
from vrm_protocol.requirements import load_requirements
from vrm_protocol.schema_registry import default_registry

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def outputs() -> dict[str, bytes]:
    from conformance.catalog import traceability, waivers

    return build_spec(ROOT, traceability=traceability(), waivers=waivers())


def test_the_requirements_export_is_valid_and_complete(outputs: dict[str, bytes]) -> None:
    export: Any = json.loads(outputs[REQUIREMENTS_FILE])
    assert default_registry().is_valid(export, "reports/requirements.schema.json")
    assert [row["id"] for row in export["requirements"]] == list(load_requirements())
    rows = {row["id"]: row for row in export["requirements"]}
    assert rows["VRM-STATE-018"]["codes"] == ["offer-not-binding"]
    assert rows["VRM-STATE-018"]["sectionTitle"] == "Offers"
    assert any(rule["code"] == "offer-not-binding" for rule in rows["VRM-STATE-018"]["guardRules"])
    assert "state-acceptance-indicative" in rows["VRM-STATE-018"]["vectors"]
    assert rows["VRM-CONF-001"]["checks"] == []
    assert "waiver" in rows["VRM-CONF-001"]


def test_the_committed_export_is_what_the_build_gives(outputs: dict[str, bytes]) -> None:
    assert (ROOT / REQUIREMENTS_FILE).read_bytes() == outputs[REQUIREMENTS_FILE]


def test_front_matter_in_both_renderings(outputs: dict[str, bytes]) -> None:
    html = outputs[HTML_FILE].decode()
    markdown = outputs[MARKDOWN_FILE].decode()
    for text in (html, markdown):
        for part in ("Abstract", "Status of this document", "Editors", "2026-12-06"):
            assert part in text, part
    assert '<time datetime="2026-12-06">' in html
