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
    default_message_type_output,
    default_output,
    default_schema_dir,
    generate_source,
    lint_schemas,
    load_schemas,
    main_generate,
)
from tools.codegen.generator import field_name, message_types, pascal_case, py_str
from vrm_protocol.vocabulary import MessageType

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
    enum_output = tmp_path / "_generated_vocabulary.py"
    outputs = {"output": output, "message_type_output": enum_output}
    assert main_generate(check=True, schema_dir=schema_copy, **outputs) == 1
    assert main_generate(check=False, schema_dir=schema_copy, **outputs) == 0
    assert output.read_text("utf-8") == default_output().read_text("utf-8")
    assert enum_output.read_text("utf-8") == default_message_type_output().read_text("utf-8")
    assert main_generate(check=True, schema_dir=schema_copy, **outputs) == 0
    capsys.readouterr()

    common = schema_copy / "common.schema.json"
    document = json.loads(common.read_text("utf-8"))
    document["$defs"]["money"]["description"] = "An amount of money in one currency."
    common.write_text(json.dumps(document, indent=2), "utf-8")
    assert main_generate(check=True, schema_dir=schema_copy, **outputs) == 1
    diff = capsys.readouterr().out
    assert "+    An amount of money in one currency." in diff


def _new_message_type(schema_dir: Path, name: str) -> None:
    """A message type that did not exist: its schema file, as its author writes it."""
    document = json.loads((schema_dir / "receipt.schema.json").read_text("utf-8"))
    document["$id"] = document["$id"].replace("receipt.schema.json", f"{name}.schema.json")
    document["title"] = "Gossip"
    document["properties"]["type"] = {"const": name, "description": f"Always `{name}`."}
    document["properties"]["body"] = {"$ref": "#/$defs/GossipBody", "description": "The body."}
    document["$defs"] = {"GossipBody": document["$defs"]["ReceiptBody"]}
    (schema_dir / f"{name}.schema.json").write_text(json.dumps(document, indent=2), "utf-8")


def test_a_new_message_type_is_its_schema_file_and_nothing_else(
    schema_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {
        "output": tmp_path / "_generated.py",
        "message_type_output": tmp_path / "_generated_vocabulary.py",
    }
    _new_message_type(schema_copy, "gossip")
    assert main_generate(check=True, schema_dir=schema_copy, **outputs) == 1
    capsys.readouterr()
    assert main_generate(check=False, schema_dir=schema_copy, **outputs) == 0
    assert main_generate(check=True, schema_dir=schema_copy, **outputs) == 0

    # The lists of message types are generated: the envelope's enum (the type
    # appended, the order of the others kept) and message.schema.json's oneOf.
    envelope = json.loads((schema_copy / "envelope.schema.json").read_text("utf-8"))
    before = [message_type.value for message_type in MessageType]
    assert envelope["properties"]["type"]["enum"] == [*before, "gossip"]
    union = json.loads((schema_copy / "message.schema.json").read_text("utf-8"))
    assert union["oneOf"][-1] == {"$ref": "gossip.schema.json"}
    assert len(union["oneOf"]) == len(before) + 1
    # ... and so is MessageType, with the model of the new type.
    namespace: dict[str, Any] = {}
    exec(outputs["message_type_output"].read_text("utf-8"), namespace)
    generated = namespace["MessageType"]
    assert [member.value for member in generated] == [*before, "gossip"]
    assert generated.GOSSIP == "gossip"
    models = outputs["output"].read_text("utf-8")
    assert "class GossipMessage(BaseMessage):" in models
    assert "MessageType.GOSSIP: GossipMessage," in models

    # Removing the file removes the type everywhere.
    (schema_copy / "gossip.schema.json").unlink()
    assert main_generate(check=False, schema_dir=schema_copy, **outputs) == 0
    envelope = json.loads((schema_copy / "envelope.schema.json").read_text("utf-8"))
    assert envelope["properties"]["type"]["enum"] == before
    assert outputs["message_type_output"].read_text("utf-8") == (
        default_message_type_output().read_text("utf-8")
    )


def test_a_hand_edited_list_of_message_types_is_drift(
    schema_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {
        "output": tmp_path / "_generated.py",
        "message_type_output": tmp_path / "_generated_vocabulary.py",
    }
    assert main_generate(check=False, schema_dir=schema_copy, **outputs) == 0
    union = schema_copy / "message.schema.json"
    document = json.loads(union.read_text("utf-8"))
    popped = document["oneOf"].pop()["$ref"]
    union.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    capsys.readouterr()
    assert main_generate(check=True, schema_dir=schema_copy, **outputs) == 1
    assert f'+    {{\n+      "$ref": "{popped}"' in capsys.readouterr().out


def test_message_types_keep_the_envelope_order_and_append_new_ones() -> None:
    documents = _documents()
    assert message_types(documents) == [message_type.value for message_type in MessageType]
    documents["aardvark.schema.json"] = documents["receipt.schema.json"]
    envelope = documents["envelope.schema.json"]
    envelope["properties"]["type"]["enum"] = ["offer", "no-such-file", "personal-rfi"]
    listed = message_types(documents)
    assert listed[:2] == ["offer", "personal-rfi"]
    assert "no-such-file" not in listed
    assert listed[2] == "aardvark"  # new ones after, in file-name order
    assert set(listed) == {message_type.value for message_type in MessageType} | {"aardvark"}


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
            "must $ref envelope.schema.json",
            lambda d: d.update(
                {"gossip.schema.json": {**d["receipt.schema.json"], "$ref": "common.schema.json"}}
            ),
        ),
        (
            "type must be const 'receipt'",
            lambda d: d["receipt.schema.json"]["properties"]["type"].update({"const": "gossip"}),
        ),
        (
            "lowercase kebab-case",
            lambda d: d.update({"Gossip_Now.schema.json": d["receipt.schema.json"]}),
        ),
        (
            "envelope.schema.json: missing",
            lambda d: d.pop("envelope.schema.json"),
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
