"""The canonical-JSON test vectors (conformance/vectors/canonical): each yields its
expected conclusion through :func:`parse_canonical` and :func:`canonical_json`,
and the committed files are exactly what the generator makes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from conformance.vectors.generate_canonical import CANONICAL_DIR, build_vectors
from vrm_protocol.canonical import b64url_decode, canonical_json, parse_canonical
from vrm_protocol.errors import RemoteProtocolError

VECTOR_FILES = sorted(CANONICAL_DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


def test_there_are_vectors_of_both_outcomes() -> None:
    outcomes = [_load(path)["expected"]["valid"] for path in VECTOR_FILES]
    assert outcomes.count(True) >= 5
    assert outcomes.count(False) >= 20


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda path: path.stem)
def test_vector(path: Path) -> None:
    vector = _load(path)
    assert vector["id"] == f"canonical-{path.stem}"
    payload = b64url_decode(vector["inputBase64url"])
    expected = vector["expected"]
    if expected["valid"]:
        parsed = parse_canonical(payload)
        assert canonical_json(parsed) == payload
    else:
        with pytest.raises(RemoteProtocolError) as caught:
            parse_canonical(payload)
        assert caught.value.code.value == expected["error"]
    if "canonical" in expected:
        canonical = expected["canonical"].encode("utf-8")
        # The canonical form is accepted, and it is a fixed point.
        assert canonical_json(parse_canonical(canonical)) == canonical
        assert (payload == canonical) is expected["valid"]


def test_number_vectors_denote_their_ieee_doubles() -> None:
    numbers = [vector for vector in map(_load, VECTOR_FILES) if "ieee754" in vector]
    assert len(numbers) == 24
    for vector in numbers:
        (number,) = struct.unpack(">d", bytes.fromhex(vector["ieee754"]))
        assert json.loads(vector["input"], parse_int=float)["n"] == number
        assert json.loads(vector["expected"]["canonical"], parse_int=float)["n"] == number


def test_committed_vectors_are_what_the_generator_makes() -> None:
    vectors = build_vectors()
    assert {path.name for path in VECTOR_FILES} == set(vectors), (
        "run: python -m conformance.vectors.generate_canonical"
    )
    for name, vector in vectors.items():
        assert _load(CANONICAL_DIR / name) == vector, f"{name} is stale"
