"""The schema registry: loading, version/type gating, both engines' verdicts, fault paths."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from vrm_protocol import models
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.models._formats import (
    UnsupportedPatternError,
    is_date,
    is_date_time,
    is_email,
    is_uri,
    translate_pattern,
)
from vrm_protocol.schema_registry import (
    SchemaRegistry,
    SchemaRegistryError,
    default_registry,
    json_pointer,
)
from vrm_protocol.vocabulary import MessageType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "schemas" / "examples").glob("*.json"))
VECTORS = sorted((ROOT / "conformance" / "vectors" / "payloads").rglob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def _file_for(payload: dict[str, Any]) -> str:
    return f"{payload['type']}.schema.json"


def _verdict(payload: Any) -> tuple[str, str | None] | None:
    try:
        default_registry().validate_message(payload)
    except RemoteProtocolError as error:
        return (error.code.value, error.path)
    return None


def test_the_default_registry_has_a_schema_for_every_message_type() -> None:
    registry = default_registry()
    assert registry.message_types == frozenset(MessageType)
    assert registry is default_registry()  # built once


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_is_valid_for_both_engines(path: Path) -> None:
    payload = _load(path)
    registry = default_registry()
    registry.validate_message(payload)
    assert registry.is_valid(payload, _file_for(payload))
    assert registry.reference_errors(payload, _file_for(payload)) == []


@pytest.mark.parametrize("path", VECTORS, ids=lambda path: path.stem)
def test_every_payload_vector_gets_its_expected_verdict(path: Path) -> None:
    vector = _load(path)
    expected = vector["expected"]
    outcome = _verdict(vector["payload"])
    if expected["valid"]:
        assert outcome is None
    else:
        assert outcome == (expected["error"], expected.get("path", outcome and outcome[1]))


SCHEMA_JUDGED = [
    path
    for path in VECTORS
    if _load(path)["payload"].get("type") in set(MessageType)
    and _load(path)["payload"].get("vrm") == "1.0"
]


@pytest.mark.parametrize("path", SCHEMA_JUDGED, ids=lambda path: path.stem)
def test_the_compiled_and_reference_engines_agree_on_every_vector(path: Path) -> None:
    payload = _load(path)["payload"]
    registry = default_registry()
    compiled = registry.is_valid(payload, _file_for(payload))
    reference = registry.reference_errors(payload, _file_for(payload))
    assert compiled == (reference == [])


def _example(name: str = "offer.binding-with-trade-in.json") -> dict[str, Any]:
    payload: dict[str, Any] = _load(ROOT / "schemas" / "examples" / name)
    return payload


def test_version_is_judged_before_type_and_schema() -> None:
    payload = _example()
    payload.update(vrm="2.0", type="no-such-type", body={})
    with pytest.raises(RemoteProtocolError) as caught:
        default_registry().validate_message(payload)
    assert caught.value.code is ErrorCode.UNSUPPORTED_VERSION
    assert caught.value.path == "/vrm"


def test_an_unknown_type_is_named_before_the_schema() -> None:
    payload = _example()
    payload.update(type="offer-v2", body={"nonsense": True})
    with pytest.raises(RemoteProtocolError) as caught:
        default_registry().validate_message(payload)
    assert caught.value.code is ErrorCode.UNKNOWN_MESSAGE_TYPE


@pytest.mark.parametrize("value", [["offer"], 7, None])
def test_a_type_that_is_not_a_string_is_unknown(value: Any) -> None:
    payload = _example()
    payload["type"] = value
    with pytest.raises(RemoteProtocolError) as caught:
        default_registry().validate_message(payload)
    assert caught.value.code is ErrorCode.UNKNOWN_MESSAGE_TYPE


def test_a_missing_type_is_a_schema_fault_at_type() -> None:
    payload = _example()
    del payload["type"]
    with pytest.raises(RemoteProtocolError) as caught:
        default_registry().validate_message(payload)
    assert (caught.value.code, caught.value.path) == (ErrorCode.SCHEMA_INVALID, "/type")


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        default_registry().validate_message(["not", "an", "object"])  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.SCHEMA_INVALID


def test_a_schema_fault_carries_its_pointer_and_the_list_of_faults() -> None:
    payload = _example()
    payload["body"]["items"][0]["quantity"] = 0
    payload["body"]["basis"] = "final"
    with pytest.raises(RemoteProtocolError) as caught:
        default_registry().validate_message(payload)
    error = caught.value
    assert error.code is ErrorCode.SCHEMA_INVALID
    listed = {fault["path"] for fault in error.extra["errors"]}
    assert {"/body/items/0/quantity", "/body/basis"} <= listed
    assert error.path in listed
    assert error.to_problem()["path"] == error.path


@pytest.mark.parametrize(
    ("location", "pointer"),
    [(("created",), "/created"), (("body", "validUntil"), "/body/validUntil"),
     (("replyTo", "inbox"), "/replyTo/inbox")],
)  # fmt: skip
@pytest.mark.parametrize("value", [None, 7, True, ["2027-01-21T11:00:00Z"]])
def test_a_format_member_that_is_not_a_string_is_a_schema_fault(
    location: tuple[str, ...], pointer: str, value: Any
) -> None:
    # Formats apply to strings only (JSON Schema 2020-12 §7.1): a null or a
    # number where a timestamp or URI belongs is a type fault, never a crash
    # of the format check that explains it (issue 9, D4).
    payload = _example()
    payload["replyTo"] = {"inbox": "https://buyer.example/inbox"}
    target = payload
    for part in location[:-1]:
        target = target[part]
    target[location[-1]] = value
    with pytest.raises(RemoteProtocolError) as caught:
        default_registry().validate_message(payload)
    assert (caught.value.code, caught.value.path) == (ErrorCode.SCHEMA_INVALID, pointer)


def test_json_pointer_escapes_tilde_and_slash() -> None:
    assert json_pointer(["body", "a/b", "c~d", 3]) == "/body/a~1b/c~0d/3"
    assert json_pointer([]) == ""


def test_the_registry_is_immutable_and_hands_out_copies() -> None:
    registry = default_registry()
    with pytest.raises(AttributeError):
        registry._documents = {}
    schemas = registry.schemas()
    schemas["offer.schema.json"]["properties"]["type"]["const"] = "tampered"
    offer = registry.schema_for(MessageType.OFFER)
    assert offer["properties"]["type"]["const"] == "offer"
    registry.validate_message(_example())


def test_references_outside_the_local_schemas_are_never_fetched() -> None:
    documents = default_registry().schemas()
    documents["probe.schema.json"] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://vrm-protocol.example/schemas/v1/probe.schema.json",
        "$ref": "https://schemas.example.net/remote.schema.json",
    }
    with pytest.raises(SchemaRegistryError):
        SchemaRegistry(documents)


def test_a_document_without_id_is_refused() -> None:
    with pytest.raises(SchemaRegistryError):
        SchemaRegistry({"x.schema.json": {"type": "object"}})


def test_from_directory_reads_only_schema_files(tmp_path: Path) -> None:
    (tmp_path / "binding").mkdir()
    (tmp_path / "reports").mkdir()
    for name, document in default_registry().schemas().items():
        (tmp_path / name).write_text(json.dumps(document), "utf-8")
    (tmp_path / "README.md").write_text("not a schema", "utf-8")
    (tmp_path / "binding" / "notes.txt").write_text("not a schema", "utf-8")
    registry = SchemaRegistry.from_directory(tmp_path)
    assert registry.message_types == frozenset(MessageType)
    registry.validate_message(_example())


# -- formats and patterns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2026-11-23T10:00:00Z", True),
        ("2026-11-23t10:00:00z", True),
        ("2026-11-23T10:00:00.5+01:00", True),
        ("2026-12-31T23:59:60Z", True),
        ("2026-11-23T10:00:60Z", False),
        ("2027-02-30T10:00:00Z", False),
        ("2026-11-23T24:00:00Z", False),
        ("2026-11-23T10:00:00", False),
        ("2026-11-23T10:00:00Z\n", False),
        ("２０２６-11-23T10:00:00Z", False),
    ],
)
def test_date_time_format(value: str, valid: bool) -> None:
    assert is_date_time(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("2028-02-29", True), ("2027-02-29", False), ("2027-13-01", False), ("2027-03-01\n", False)],
)
def test_date_format(value: str, valid: bool) -> None:
    assert is_date(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("http://127.0.0.1:8080/vrm/inbox", True),
        ("urn:isbn:0451450523", True),
        ("terms/1.0", False),
        ("https://example.org/a b", False),
        ("https://example.org/\n", False),
        ("https://bücher.example/", False),
    ],
)
def test_uri_format(value: str, valid: bool) -> None:
    assert is_uri(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("sally@example.org", True),
        ("sally.o'brien+cars@mail.example.co.uk", True),
        ("sally@localhost", False),
        ("sally@@example.org", False),
        ("sally example@example.org", False),
        ("x" * 65 + "@example.org", False),
    ],
)
def test_email_format(value: str, valid: bool) -> None:
    assert is_email(value) is valid


def test_patterns_get_their_ecma_meaning_in_python() -> None:
    import re

    python = re.compile(translate_pattern(r"^\d{3}$", "python"))
    assert python.search("123")
    assert not python.search("١٢٣")  # Arabic-Indic digits are not ECMA \d
    assert not python.search("123\n")  # ECMA $ is the end of the input
    assert translate_pattern(r"^[\d.]+$", "ecma") == "^[0-9.]+$"


@pytest.mark.parametrize(
    "pattern", [r"(?=a)b", r"(?<name>a)", r"\bword", r"(a)\1", r"[\D]", r"\p{L}", "[a"]
)
def test_constructs_the_engines_disagree_on_are_refused(pattern: str) -> None:
    with pytest.raises(UnsupportedPatternError):
        translate_pattern(pattern, "python")


_PROBED = ["decimal", "timestamp", "date", "partyId", "messageId", "dataCategory", "duration"]


@pytest.fixture(scope="module")
def probe_registry() -> SchemaRegistry:
    documents = default_registry().schemas()
    for name in _PROBED:
        documents[f"probe-{name}.schema.json"] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://vrm-protocol.example/schemas/v1/probe-{name}.schema.json",
            "$ref": f"common.schema.json#/$defs/{name}",
        }
    return SchemaRegistry(documents)


_TRICKY = st.text(
    alphabet=st.sampled_from(
        [*"0123456789-:.TZPYMWDa+_/#?z ", "\n", "\u0662", "\uff11", "\u00a0", "\ufeff"]
    ),
    max_size=24,
)


@pytest.mark.parametrize("name", _PROBED)
@settings(max_examples=150, deadline=None)
@given(
    value=st.one_of(
        _TRICKY,
        st.sampled_from(
            ["2026-11-23T10:00:00Z", "2026-11-23", "12.5", "P2Y", "did:jwk:abc", "a.b"]
        ).flatmap(lambda text: st.sampled_from([text, text + "\n", "\u0662" + text[1:]])),
    )
)
def test_three_engines_agree_on_value_types(
    probe_registry: SchemaRegistry, name: str, value: str
) -> None:
    file = f"probe-{name}.schema.json"
    compiled = probe_registry.is_valid(value, file)
    reference = probe_registry.reference_errors(value, file) == []
    adapter: TypeAdapter[Any] = TypeAdapter(getattr(models, name[0].upper() + name[1:]))
    try:
        adapter.validate_python(value)
        model = True
    except ValidationError:
        model = False
    assert compiled == reference == model, value


def test_validation_does_not_change_the_payload() -> None:
    payload = _example()
    before = copy.deepcopy(payload)
    default_registry().validate_message(payload)
    assert payload == before


@pytest.mark.parametrize("value", [0, 1.5, True, None, [], {}])
def test_a_timestamp_that_is_not_a_string_is_schema_invalid_not_a_crash(value: object) -> None:
    """A format checks strings only: a number where a timestamp belongs is refused by
    its type (422 schema-invalid at its location), never a TypeError (a 500)."""
    import json
    from pathlib import Path

    from vrm_protocol.errors import ErrorCode, ProtocolError
    from vrm_protocol.schema_registry import default_registry

    examples = Path(__file__).resolve().parents[2] / "schemas" / "examples"
    payload = json.loads((examples / "personal-rfi.sally-family-car.json").read_text("utf-8"))
    payload["created"] = value
    with pytest.raises(ProtocolError) as refused:
        default_registry().validate_message(payload)
    assert refused.value.code is ErrorCode.SCHEMA_INVALID
    assert refused.value.path == "/created"
