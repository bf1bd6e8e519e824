"""The test vectors (spec §14.2) run through the library and conclude what they say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance.catalog import requirements_index
from conformance.cli import conformance as conformance_cli
from conformance.vectors_index import (
    VECTORS_DIR,
    VectorError,
    build_index,
    run_vector,
    run_vectors,
)

FAMILIES = ("payloads", "jose", "canonical")


def test_every_vector_runs_as_expected() -> None:
    outcomes = run_vectors()
    kinds = {outcome.kind for outcome in outcomes}
    assert set(FAMILIES) <= kinds, f"vector families found: {sorted(kinds)}"
    failures = [f"{o.id}: {o.detail}" for o in outcomes if not o.passed]
    assert failures == []


def test_the_cli_runs_them() -> None:
    result = CliRunner().invoke(conformance_cli, ["vectors", "--run"])
    assert result.exit_code == 0, result.output
    assert "vector(s) passed" in result.output


@pytest.mark.parametrize("family", FAMILIES)
def test_a_vector_with_the_wrong_expectation_fails(family: str, tmp_path: Path) -> None:
    # The runner judges: flip one vector's expectation and it must notice.
    source = next(path for path in sorted((VECTORS_DIR / family).rglob("*.json")))
    document = json.loads(source.read_text("utf-8"))
    expected = document["expected"]
    if expected.get("valid"):
        document["expected"] = {"valid": False, "error": "replay"}
    else:
        document["expected"] = {"valid": True}
    target = tmp_path / family / source.name
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(document), "utf-8")
    outcomes = run_vectors(tmp_path)
    assert [(outcome.kind, outcome.passed) for outcome in outcomes] == [(family, False)]


def test_unknown_families_and_broken_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VectorError, match="no runner"):
        run_vector("telepathy", {"expected": {"valid": True}})
    (tmp_path / "jose").mkdir()
    (tmp_path / "jose" / "bad.json").write_text('{"id": "x"}', "utf-8")
    with pytest.raises(VectorError, match="expected"):
        build_index(tmp_path)


def test_the_index_describes_every_vector(tmp_path: Path) -> None:
    copy = tmp_path / "vectors"
    shutil.copytree(VECTORS_DIR, copy, ignore=shutil.ignore_patterns("*.py", "index.json"))
    index = build_index(copy)
    files = [path for path in copy.rglob("*.json")]
    assert index["count"] == len(files)
    known = set(requirements_index())
    cited = {
        requirement
        for entry in index["vectors"]
        for requirement in entry.get("requirements", [entry["requirement"]])
    }
    assert sorted(cited - known) == [], "every vector tests a requirement of the registry"


def test_the_committed_index_is_fresh() -> None:
    # A vector added without rebuilding the index cannot go unnoticed.
    result = CliRunner().invoke(conformance_cli, ["vectors", "--check"])
    assert result.exit_code == 0, result.output
