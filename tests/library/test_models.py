"""The generated models: parity with the schemas, wire names, immutability, round trips."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.models import (
    MESSAGE_ADAPTER,
    MESSAGE_MODELS,
    BaseMessage,
    Money,
    OfferMessage,
    message_model,
    parse_message_dict,
    to_payload,
)
from vrm_protocol.schema_registry import default_registry
from vrm_protocol.vocabulary import MessageType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "schemas" / "examples").glob("*.json"))
VECTORS = sorted((ROOT / "conformance" / "vectors" / "payloads").rglob("*.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


VALID_VECTORS = [path for path in VECTORS if _load(path)["expected"]["valid"]]


def _schema_verdict(payload: Any) -> tuple[str, str | None] | None:
    try:
        default_registry().validate_message(payload)
    except ProtocolError as error:
        return (error.code.value, error.path)
    return None


def _model_verdict(payload: Any) -> tuple[str, str | None] | None:
    """The models' verdict: their acceptance on their own, and the error a refusal raises.

    A refusal by the models themselves (before the schema explains it) is
    required for the error to count: the parity is of the two validators.
    """
    try:
        MESSAGE_ADAPTER.validate_python(payload, by_alias=True, by_name=False)
    except ValidationError:
        try:
            parse_message_dict(payload)
        except ProtocolError as error:
            return (error.code.value, error.path)
        raise AssertionError("parse_message_dict accepted what the models refuse") from None
    return None


def _offer() -> dict[str, Any]:
    payload: dict[str, Any] = _load(ROOT / "schemas" / "examples" / "offer.indicative.json")
    return payload


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_parses_and_round_trips(path: Path) -> None:
    payload = _load(path)
    message = parse_message_dict(payload)
    assert isinstance(message, MESSAGE_MODELS[MessageType(payload["type"])])
    assert to_payload(message) == payload


@pytest.mark.parametrize("path", VECTORS, ids=lambda path: path.stem)
def test_schema_and_model_reach_the_same_verdict_on_every_vector(path: Path) -> None:
    payload = _load(path)["payload"]
    assert _model_verdict(payload) == _schema_verdict(payload)


@pytest.mark.parametrize("path", VALID_VECTORS, ids=lambda path: path.stem)
def test_valid_vectors_round_trip_through_the_model(path: Path) -> None:
    payload = _load(path)["payload"]
    assert to_payload(parse_message_dict(payload)) == payload


def test_null_inside_an_extension_value_survives_the_round_trip() -> None:
    payload = _offer()
    payload["extensions"] = {"com.example.trim": {"colour": None, "codes": [None, 1]}}
    assert to_payload(parse_message_dict(payload)) == payload


def _mutations() -> list[tuple[str, Any]]:
    def set_at(path: list[str | int], value: Any) -> Any:
        def mutate(payload: dict[str, Any]) -> None:
            target: Any = payload
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value

        return mutate

    return [
        ("explicit null for an optional member", set_at(["parent"], None)),
        ("explicit null for a required member", set_at(["thread"], None)),
        ("python name on the wire", set_at(["from_"], "https://dealer.example")),
        ("integral float for an integer", set_at(["body", "items", 0, "quantity"], 1.0)),
        ("boolean for an integer", set_at(["body", "items", 0, "quantity"], True)),
        ("integer for a boolean", set_at(["body", "items", 0, "quantity"], "1")),
        ("uri format", set_at(["replyTo"], {"inbox": "inbox at the dealer"})),
        ("date-time format", set_at(["body", "validUntil"], "2027-02-29T10:00:00Z")),
        ("unicode digits", set_at(["body", "price", "total", "amount"], "2\u0661000")),
        ("trailing newline", set_at(["body", "price", "total", "currency"], "GBP\n")),
        ("duplicate audience", set_at(["to"], ["did:jwk:abc", "did:jwk:abc"])),
        ("extension name", set_at(["extensions"], {"Colour": "red"})),
        ("extension value null", set_at(["extensions"], {"com.example.colour": None})),
        ("empty body", set_at(["body"], {})),
        ("body not an object", set_at(["body"], [])),
    ]


@pytest.mark.parametrize(("label", "mutate"), _mutations(), ids=lambda item: str(item))
def test_schema_and_model_agree_on_edge_cases(label: str, mutate: Any) -> None:
    payload = _offer()
    mutate(payload)
    assert _model_verdict(payload) == _schema_verdict(payload), label


def test_an_integral_float_is_an_integer_for_both() -> None:
    payload = _offer()
    payload["body"]["items"][0]["quantity"] = 1.0
    assert _schema_verdict(payload) is None
    message = parse_message_dict(payload)
    assert isinstance(message, OfferMessage)
    assert message.body.items[0].quantity == 1


def test_explicit_null_is_refused_with_its_path() -> None:
    payload = _offer()
    payload["parent"] = None
    with pytest.raises(RemoteProtocolError) as caught:
        parse_message_dict(payload)
    assert (caught.value.code, caught.value.path) == (ErrorCode.SCHEMA_INVALID, "/parent")


def test_version_and_type_are_judged_first() -> None:
    payload = _offer()
    payload["vrm"] = "2.0"
    with pytest.raises(RemoteProtocolError) as caught:
        parse_message_dict(payload)
    assert caught.value.code is ErrorCode.UNSUPPORTED_VERSION
    payload = _offer()
    payload["type"] = "offer-v2"
    with pytest.raises(RemoteProtocolError) as caught:
        parse_message_dict(payload)
    assert caught.value.code is ErrorCode.UNKNOWN_MESSAGE_TYPE


def test_models_are_immutable() -> None:
    message = parse_message_dict(_offer())
    with pytest.raises(ValidationError):
        message.thread = message.id  # type: ignore[misc]
    assert isinstance(message.to, tuple)


def test_wire_names_are_aliases_and_python_names_build_models() -> None:
    money = Money(amount="21400", currency="GBP")
    assert to_payload(money) == {"amount": "21400", "currency": "GBP"}
    message = parse_message_dict(_offer())
    assert message.from_ == _offer()["from"]
    assert "from" in to_payload(message)
    assert "from_" not in to_payload(message)


def test_models_enforce_formats_when_built_in_code() -> None:
    with pytest.raises(ValidationError):
        Money(amount="21,400", currency="GBP")


def test_there_is_one_model_per_message_type_with_its_literal_type() -> None:
    assert set(MESSAGE_MODELS) == set(MessageType)
    for message_type, model in MESSAGE_MODELS.items():
        assert issubclass(model, BaseMessage)
        assert typing.get_args(model.model_fields["type"].annotation) == (message_type.value,)
        assert message_model(message_type.value) is model
    with pytest.raises(ValueError):
        message_model("no-such-type")


def test_the_model_error_lists_every_fault() -> None:
    payload = _offer()
    payload["body"]["basis"] = "final"
    payload["to"] = []
    with pytest.raises(RemoteProtocolError) as caught:
        parse_message_dict(payload)
    listed = {fault["path"] for fault in caught.value.extra["errors"]}
    assert {"/to", "/body/basis"} <= listed


# -- every instance is valid (encode signs models without validating them again) -------------------


def test_model_construct_validates() -> None:
    with pytest.raises(ValidationError):
        Money.model_construct(amount="21,400", currency="GBP")
    assert Money.model_construct(amount="21400", currency="GBP") == Money(
        amount="21400", currency="GBP"
    )


def test_a_copy_with_changes_is_validated() -> None:
    message = parse_message_dict(_offer())
    with pytest.raises(ValidationError):
        message.model_copy(update={"to": ()})
    with pytest.raises(ValidationError):
        message.model_copy(update={"thread": "not a message id"})
    changed = message.model_copy(update={"thread": message.id})
    assert changed.thread == message.id
    assert changed.body is message.body
    assert message.model_copy() == message


def test_optional_members_refuse_null_without_calling_python() -> None:
    # Every optional member validates as its type: null is refused inside
    # pydantic-core; an absent member is None.
    schema = str(OfferMessage.__pydantic_core_schema__)
    assert "_refuse_null" not in schema
    assert "'nullable'" not in schema
    payload = _offer()
    payload["body"]["items"][0]["quantity"] = None
    assert _model_verdict(payload) == _schema_verdict(payload)
    assert _model_verdict(payload) is not None
