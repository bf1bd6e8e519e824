"""The state-stage vectors (conformance/vectors/state/; spec §8.6 stage 14, §14.2):
committed as the generator makes them, run through the library, and covering
every row of the table and every guard rule of every message type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.vectors.generate_state import STATE_DIR, build_vectors
from conformance.vectors_index import run_vector
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.requirements import load_requirements
from vrm_protocol.state_machine import TRANSITION_ROWS

VECTOR_FILES = sorted(STATE_DIR.glob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def test_committed_vectors_are_what_the_generator_makes() -> None:
    vectors = build_vectors()
    assert {path.name for path in VECTOR_FILES} == set(vectors), (
        "run: python -m conformance.vectors.generate_state"
    )
    for name, vector in vectors.items():
        assert _load(STATE_DIR / name) == vector, f"{name} is stale"


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda path: path.stem)
def test_the_library_concludes_what_each_vector_expects(path: Path) -> None:
    passed, detail = run_vector("state", _load(path))
    assert passed, detail


def test_every_row_and_every_guard_rule_has_a_vector() -> None:
    vectors = [_load(path) for path in VECTOR_FILES]
    rows = {
        f"state-row-{r.state.value}-{r.sender.value}-{r.message.value}" for r in TRANSITION_ROWS
    }
    assert rows <= {vector["id"] for vector in vectors}
    refused = {(vector["message"]["type"], vector["expected"].get("error")) for vector in vectors}
    for spec in MESSAGE_TYPES.values():
        for rule in spec.rules:
            assert (spec.type.value, rule.code.value) in refused, (spec.type, rule.code)


def test_every_vector_cites_a_registered_requirement() -> None:
    known = load_requirements()
    for path in VECTOR_FILES:
        assert _load(path)["requirement"] in known, path.name


def test_every_guard_rule_cites_a_registered_requirement() -> None:
    known = load_requirements()
    for spec in MESSAGE_TYPES.values():
        for rule in spec.rules:
            assert rule.requirement in known, (spec.type, rule)
