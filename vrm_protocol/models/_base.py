"""The base of every generated model, and the value types the generator uses.

The models are the library's validator on the success path (spec §5, §6):
a received payload is validated once, by building its model, and the
normative schemas explain a rejection (see
:func:`vrm_protocol.models.parse_message_dict`). So the models must reach
the same verdict as the schemas on every payload, and the parity tests hold
them to it. The pieces here close the gaps between pydantic's defaults and
JSON Schema, as far as possible inside pydantic-core (in Rust, without a
call back into Python per value):

* strings, integers and booleans are strict: JSON Schema does not coerce
  ``"5"`` into ``5`` or ``1`` into ``true``; an integral float (``5.0``) is an
  integer in JSON Schema (2020-12 §6.1.1), so it is accepted as one (the
  only value that calls into Python, and never one from the wire, where
  canonical JSON spells it ``5``);
* JSON ``null`` is never a valid member value in this protocol (the schemas
  use no ``null`` type), so an optional member is ``T | None`` for Python
  but validates as ``T``: an explicit null is refused rather than read as
  "absent" (absent members take the default ``None``, which is not validated);
* formats and ``uniqueItems``, which pydantic does not express, are checked
  by validators that call the same functions as the schema validators.

Every instance of a model is valid: models are immutable, and the two
pydantic doors around validation (:meth:`VRMModel.model_construct` and
:meth:`VRMModel.model_copy` with ``update``) validate here. That is what
lets :func:`vrm_protocol.codec.encode` sign a message model without
validating it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, GetCoreSchemaHandler, Strict
from pydantic_core import CoreSchema, core_schema

from vrm_protocol.models._formats import FORMAT_CHECKS

__all__ = [
    "JsonBool",
    "JsonInt",
    "JsonStr",
    "NotNull",
    "VRMModel",
    "conforms_to",
    "json_int",
    "unique_items",
]

_Items = TypeVar("_Items", bound=Sequence[Any])


class VRMModel(BaseModel):
    """Base of every protocol model: closed, immutable, wire names as aliases, always valid.

    ``extra="forbid"`` mirrors ``additionalProperties: false`` (spec §5.4:
    every object is closed). Python names (``from_``, ``valid_until``) are
    accepted when building models in code; payloads from the wire are parsed
    by alias only (see :func:`vrm_protocol.models.parse_message_dict`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @classmethod
    # The pydantic mypy plugin gives each model its own model_construct signature.
    def model_construct(  # type: ignore[override]
        cls, _fields_set: set[str] | None = None, **values: Any
    ) -> Self:
        """Build a model from ``values`` (Python or wire names), validated.

        Unlike pydantic's, this validates: an instance that skipped validation
        could be signed by :func:`~vrm_protocol.codec.encode`, which trusts
        models. ``_fields_set`` is ignored (the members given are the set ones).

        Raises:
            pydantic.ValidationError: ``values`` do not make a valid model.
        """
        return cls.model_validate(values)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with ``update`` (Python names), a new model validated with the changes.

        Unlike pydantic's, a copy with changes is validated, so that every
        instance stays valid (see :meth:`model_construct`).

        Raises:
            pydantic.ValidationError: the changes make the model invalid.
        """
        if not update:
            return super().model_copy(deep=deep)
        values = {name: getattr(self, name) for name in self.model_fields_set}
        values.update(update)
        return self.model_validate(values)


@dataclass(frozen=True, slots=True)
class _NotNull:
    """Validate ``T | None`` as ``T``: the default ``None`` stands for an absent member."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = handler(source)
        # An optional member is either present with a value or absent; the
        # schemas give no member a null type, so `"parent": null` is invalid.
        # Dropping the nullable wrapper refuses it inside pydantic-core, with
        # no call into Python (the default None of an absent member is not validated).
        if schema["type"] == "nullable":
            inner: CoreSchema = schema["schema"]
            return inner
        return schema


#: Marks an optional member (``T | None`` with default ``None``): an explicit null is refused.
NotNull: Final = _NotNull()


@dataclass(frozen=True, slots=True)
class _JsonInteger:
    """A JSON Schema integer with optional bounds, as a pydantic-core schema."""

    ge: int | None = None
    le: int | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # JSON Schema's "integer" is any number with a zero fractional part
        # (2020-12 §6.1.1); booleans are not numbers. An int is taken as it is
        # (strict: no bool, no string); an integral float, tried only when the
        # value is not an int, becomes the int it equals.
        return core_schema.union_schema(
            [
                core_schema.int_schema(strict=True, ge=self.ge, le=self.le),
                core_schema.chain_schema(
                    [
                        core_schema.float_schema(
                            strict=True,
                            ge=self.ge,
                            le=self.le,
                            multiple_of=1.0,
                            allow_inf_nan=False,
                        ),
                        core_schema.no_info_plain_validator_function(int),
                    ]
                ),
            ],
            mode="left_to_right",
        )


def json_int(*, ge: int | None = None, le: int | None = None) -> Any:
    """Annotation of a JSON integer within ``[ge, le]``: ``Annotated[int, json_int(ge=1)]``."""
    return _JsonInteger(ge, le)


#: A JSON string (no coercion from other types).
JsonStr = Annotated[str, Strict()]
#: A JSON integer: an int, or a float with no fractional part; never a boolean.
JsonInt = Annotated[int, _JsonInteger()]
#: A JSON boolean (no coercion from numbers or strings).
JsonBool = Annotated[bool, Strict()]


def conforms_to(format_name: str) -> AfterValidator:
    """A validator enforcing the JSON Schema ``format`` named ``format_name``.

    Raises:
        KeyError: the protocol defines no such format.
    """
    check: Callable[[str], bool] = FORMAT_CHECKS[format_name]

    def validate(value: str) -> str:
        if not check(value):
            raise ValueError(f"{value!r} is not a valid {format_name!r}")
        return value

    return AfterValidator(validate)


def _json_identity(value: Any) -> str:
    # JSON equality (JSON Schema 2020-12 §4.2.2): true is not 1, member order does not matter.
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def unique_items(items: _Items) -> _Items:
    """Refuse a sequence with two JSON-equal elements (``uniqueItems: true``).

    Raises:
        ValueError: two elements are equal.
    """
    if all(type(item) is str for item in items):
        # Strings (the common case: audiences, topics, tokens) are equal as JSON
        # exactly when they are equal as Python strings.
        if len(set(items)) != len(items):
            raise ValueError("array has non-unique elements")
        return items
    seen: set[str] = set()
    for item in items:
        identity = _json_identity(item)
        if identity in seen:
            raise ValueError("array has non-unique elements")
        seen.add(identity)
    return items
