"""Typed, immutable models of every protocol message (spec §5, §6).

The models are generated from ``schemas/`` (``python -m tools.codegen``) into
:mod:`vrm_protocol.models._generated` and re-exported here, so that they
cannot drift from the normative schemas. This module adds the two crossings
between models and wire payloads:

* :func:`parse_message_dict`: a payload (a JSON object already parsed) to
  the model of its type, by wire names only. This is the library's one
  validation of a received message: building the model *is* the validation
  (pydantic-core, in Rust, with a call into Python only for the four
  formats and ``uniqueItems``), and a payload the models refuse is
  explained by the normative schemas (the reference validator names the
  fault with its JSON Pointer), so the error is the schema's;
* :func:`to_payload`: a model back to the payload it stands for.

``Message`` is the discriminated union of the message models (discriminator
``type``); ``MESSAGE_MODELS`` maps each
:class:`~vrm_protocol.vocabulary.MessageType` to its model class.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, JsonValue, TypeAdapter, ValidationError

from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.models._base import VRMModel
from vrm_protocol.models._generated import *  # noqa: F403 - the generated models are the API
from vrm_protocol.models._generated import MESSAGE_MODELS, BaseMessage, Message
from vrm_protocol.models._generated import __all__ as _generated_names
from vrm_protocol.vocabulary import SUPPORTED_VERSIONS, MessageType

__all__ = [
    *_generated_names,
    "FREE_JSON_BODIES",
    "MESSAGE_ADAPTER",
    "VRMModel",
    "message_model",
    "parse_message_dict",
    "to_payload",
]

#: The models' own validator of a whole message (the union, by ``type``). Use
#: :func:`parse_message_dict`, which judges version and type first and gives the
#: schema's explanation of a fault; this is for tools and the parity tests.
MESSAGE_ADAPTER: Final[TypeAdapter[Message]] = TypeAdapter(Message)
_KNOWN_TYPES: Final = frozenset(message_type.value for message_type in MessageType)


def _holds_free_json(annotation: Any, seen: set[type[BaseModel]]) -> bool:
    if annotation is JsonValue:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(
            _holds_free_json(field.annotation, seen) for field in annotation.model_fields.values()
        )
    return any(_holds_free_json(argument, seen) for argument in typing.get_args(annotation))


#: The message types whose body holds free JSON (``JsonValue``: any number,
#: floats included), beside the envelope's ``extensions``. Everything else in a
#: model is a string, a boolean or an integer within ±(2**53 - 1) (the schema
#: authoring rules), which :func:`vrm_protocol.codec.encode` relies on.
FREE_JSON_BODIES: Final[frozenset[MessageType]] = frozenset(
    message_type
    for message_type, model in MESSAGE_MODELS.items()
    if _holds_free_json(model.model_fields["body"].annotation, set())
)


def _pointer_from_loc(payload: Any, loc: Sequence[str | int]) -> str:
    """The JSON Pointer of a pydantic error location, as the schema validator reports it.

    pydantic's ``loc`` also names things that are not in the payload (the
    discriminator tag, union branches, ``[key]`` for a map key) and, for a
    missing or unexpected member, the member itself. Keeping only the parts
    that walk existing values gives the instance location JSON Schema
    reports: the object that should (or should not) hold the member.
    """
    parts: list[str] = []
    current = payload
    for index, part in enumerate(loc):
        if index + 1 < len(loc) and loc[index + 1] == "[key]":
            break  # a map key is at fault: the location is the map
        if isinstance(current, Mapping) and isinstance(part, str) and part in current:
            parts.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            parts.append(str(part))
            current = current[part]
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


_MEMBER_FAULTS: Final = frozenset({"missing", "extra_forbidden"})


def parse_message_dict(payload: Mapping[str, Any]) -> Message:
    """Parse a message payload into the model of its type: validate it once (spec §5, §6).

    Wire names only (``from``, ``validUntil``): a payload spelled with the
    Python names is invalid, as it is for the schema. Version and type are
    judged first, as :meth:`SchemaRegistry.validate_message` does. A payload
    the models refuse is explained by the schemas: the error is the one
    :meth:`SchemaRegistry.validate_message` raises for it (the models and the
    schemas reach the same verdict on every payload; the parity tests hold
    them to it, and should they ever differ the models' refusal stands).

    Raises:
        RemoteProtocolError: UNSUPPORTED_VERSION, UNKNOWN_MESSAGE_TYPE, or
            SCHEMA_INVALID with ``path`` the JSON Pointer of the fault the
            schema names first (``extra["errors"]`` lists the faults).
    """
    if not isinstance(payload, Mapping):
        raise RemoteProtocolError(ErrorCode.SCHEMA_INVALID, "a message is a JSON object", path="")
    if "vrm" in payload:
        version = payload["vrm"]
        if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
            raise RemoteProtocolError(
                ErrorCode.UNSUPPORTED_VERSION,
                f"protocol version {json.dumps(version)[:80]} is not supported",
                path="/vrm",
            )
    if "type" in payload:
        message_type = payload["type"]
        if not isinstance(message_type, str) or message_type not in _KNOWN_TYPES:
            raise RemoteProtocolError(
                ErrorCode.UNKNOWN_MESSAGE_TYPE,
                f"message type {json.dumps(message_type)[:80]} is not defined "
                "by protocol version 1.0",
                path="/type",
            )
    try:
        return MESSAGE_ADAPTER.validate_python(payload, by_alias=True, by_name=False)
    except ValidationError as error:
        raise _explain(payload, error) from None


def _explain(payload: Mapping[str, Any], error: ValidationError) -> RemoteProtocolError:
    """The normative error for a payload the models refused: the schemas' explanation."""
    # Imported here: the registry imports this package's formats, and it is
    # needed only when a message is refused.
    from vrm_protocol.schema_registry import default_registry

    try:
        default_registry().validate_message(payload)
    except RemoteProtocolError as explained:
        return explained
    return _model_error(payload, error)


def _model_error(payload: Mapping[str, Any], error: ValidationError) -> RemoteProtocolError:
    """The models' own account of a refusal (when the schemas find no fault)."""
    faults = [
        {
            "path": _pointer_from_loc(
                payload,
                fault["loc"][:-1] if fault["type"] in _MEMBER_FAULTS else fault["loc"],
            ),
            "detail": fault["msg"],
        }
        for fault in error.errors(include_url=False, include_input=False)
    ]
    first = faults[0]
    return RemoteProtocolError(
        ErrorCode.SCHEMA_INVALID,
        str(first["detail"]),
        path=str(first["path"]),
        extra={"errors": faults[:10]},
    )


def to_payload(model: VRMModel) -> dict[str, Any]:
    """The JSON payload a model stands for: wire names, absent members left out.

    ``to_payload(parse_message_dict(payload)) == payload`` for every valid
    payload (the model tests check it on every example).
    """
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def message_model(message_type: MessageType | str) -> type[BaseMessage]:
    """The model class of ``message_type``.

    Raises:
        ValueError: ``message_type`` is not a message type.
    """
    return MESSAGE_MODELS[MessageType(message_type)]
