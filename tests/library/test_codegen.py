"""The model generator: drift gate, authoring-rule lint, naming, clean output."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tools.codegen import (
    default_output,
    default_schema_dir,
    generate_source,
    lint_schemas,
    load_schemas,
    main_generate,
)
from tools.codegen.generator import field_name, pascal_case, py_str

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_models_are_what_the_schemas_generate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main_generate(check=True)
    assert status == 0, capsys.readouterr().out[-3000:]


def test_the_generated_file_is_ruff_clean() -> None:
    output = default_output()
    for arguments in (["check"], ["format", "--check"]):
        completed = subprocess.run(
            [sys.executable, "-m", "ruff", *arguments, str(output)],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "schemas"
    directory.mkdir()
    for path in default_schema_dir().glob("*.schema.json"):
        shutil.copy(path, directory / path.name)
    return directory


def test_generate_then_check_then_detect_drift(
    schema_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "_generated.py"
    assert main_generate(check=True, schema_dir=schema_copy, output=output) == 1
    assert main_generate(check=False, schema_dir=schema_copy, output=output) == 0
    assert output.read_text("utf-8") == default_output().read_text("utf-8")
    assert main_generate(check=True, schema_dir=schema_copy, output=output) == 0
    capsys.readouterr()

    common = schema_copy / "common.schema.json"
    document = json.loads(common.read_text("utf-8"))
    document["$defs"]["money"]["description"] = "An amount of money in one currency."
    common.write_text(json.dumps(document, indent=2), "utf-8")
    assert main_generate(check=True, schema_dir=schema_copy, output=output) == 1
    diff = capsys.readouterr().out
    assert "+    An amount of money in one currency." in diff


def test_a_schema_breaking_the_rules_fails_generation(
    schema_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = schema_copy / "common.schema.json"
    document = json.loads(common.read_text("utf-8"))
    document["$defs"]["money"]["properties"]["amount"] = {
        "type": "number",
        "description": "a float",
    }
    common.write_text(json.dumps(document), "utf-8")
    output = tmp_path / "_generated.py"
    assert main_generate(check=False, schema_dir=schema_copy, output=output) == 1
    assert "number" in capsys.readouterr().err
    assert not output.exists()


def _documents() -> dict[str, dict[str, Any]]:
    return load_schemas(default_schema_dir())


def _breach(mutate: Any) -> list[str]:
    documents = _documents()
    mutate(documents)
    return lint_schemas(documents)


def test_the_shipped_schemas_follow_the_rules() -> None:
    assert lint_schemas(_documents()) == []


@pytest.mark.parametrize(
    ("needle", "mutate"),
    [
        (
            "outside the allowed subset",
            lambda d: d["common.schema.json"]["$defs"]["money"].update(
                {"if": {"required": ["amount"]}}
            ),
        ),
        (
            "a property needs a description",
            lambda d: d["common.schema.json"]["$defs"]["money"]["properties"]["amount"].pop(
                "description"
            ),
        ),
        (
            "needs a title and a description",
            lambda d: d["common.schema.json"]["$defs"]["money"].pop("title"),
        ),
        (
            "closed or a map",
            lambda d: d["common.schema.json"]["$defs"]["money"].pop("additionalProperties"),
        ),
        (
            "is not one of the four",
            lambda d: d["common.schema.json"]["$defs"]["timestamp"].update({"format": "time"}),
        ),
        (
            "only non-capturing groups",
            lambda d: d["common.schema.json"]["$defs"]["currency"].update(
                {"pattern": "^(?!XXX)[A-Z]{3}$"}
            ),
        ),
        (
            "distinct JSON types",
            lambda d: d["common.schema.json"]["$defs"]["dataValue"]["oneOf"].append(
                {"type": "string", "maxLength": 3}
            ),
        ),
        (
            "MessageType",
            lambda d: d.pop("receipt.schema.json"),
        ),
        (
            "type enum and vocabulary.MessageType differ",
            lambda d: d["envelope.schema.json"]["properties"]["type"]["enum"].append("gossip"),
        ),
    ],
)
def test_lint_names_each_breach(needle: str, mutate: Any) -> None:
    problems = _breach(mutate)
    assert any(needle in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("from", "from_"),
        ("validUntil", "valid_until"),
        ("inResponseTo", "in_response_to"),
        ("copy", "copy_"),
        ("model_config", "model_config_"),
        ("id", "id"),
    ],
)
def test_field_names(member: str, expected: str) -> None:
    assert field_name(member) == expected


def test_class_names() -> None:
    assert pascal_case("partyId") == "PartyId"
    assert pascal_case("personal-rfi") == "PersonalRfi"
    assert pascal_case("OfferBody") == "OfferBody"


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        'quote " and backslash \\',
        "control \t\n\x0b and \u2028 \ufeff",
        "x" * 200,
        "§ " * 90,
        "^(did:jwk:[A-Za-z0-9_-]+|https?://[^\t\n\x0b\x0c\r \xa0\u1680#?]+)$" * 2,
    ],
)
@pytest.mark.parametrize("words", [False, True])
def test_string_literals_round_trip(text: str, words: bool) -> None:
    assert ast.literal_eval(py_str(text, words=words)) == text


def test_generation_is_deterministic() -> None:
    documents = _documents()
    assert generate_source(documents) == generate_source(documents)
