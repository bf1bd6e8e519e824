"""The base of every generated model, and the value types the generator uses.

The models are a second reading of the schemas (the first being the schema
validators), so they must reach the same verdict on every payload. The
pieces here close the gaps between pydantic's defaults and JSON Schema:

* strings, integers and booleans are strict: JSON Schema does not coerce
  ``"5"`` into ``5`` or ``1`` into ``true``; an integral float (``5.0``) is an
  integer in JSON Schema (2020-12 §6.1.1), so it is accepted as one;
* JSON ``null`` is never a valid member value in this protocol (the schemas
  use no ``null`` type), so an explicit null is refused rather than read as
  "absent";
* formats and ``uniqueItems``, which pydantic does not express, are checked
  by validators that call the same functions as the schema validators.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict

from vrm_protocol.models._formats import FORMAT_CHECKS

__all__ = [
    "JsonBool",
    "JsonInt",
    "JsonStr",
    "NotNull",
    "VRMModel",
    "conforms_to",
    "unique_items",
]

_Items = TypeVar("_Items", bound=Sequence[Any])


class VRMModel(BaseModel):
    """Base of every protocol model: closed, immutable, wire names as aliases.

    ``extra="forbid"`` mirrors ``additionalProperties: false`` (spec §5.4:
    every object is closed). Python names (``from_``, ``valid_until``) are
    accepted when building models in code; payloads from the wire are parsed
    by alias only (see :func:`vrm_protocol.models.parse_message_dict`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _refuse_null(value: Any) -> Any:
    # An optional member is either present with a value or absent; the
    # schemas give no member a null type, so `"parent": null` is invalid.
    if value is None:
        raise ValueError("null is not a valid value (leave the member out instead)")
    return value


#: Marks an optional member (``T | None`` with default ``None``): an explicit null is refused.
NotNull: Final = BeforeValidator(_refuse_null)


def _integral(value: Any) -> Any:
    # JSON Schema's "integer" is any number with a zero fractional part; booleans are not numbers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A JSON string (no coercion from other types).
JsonStr = Annotated[str, Strict()]
#: A JSON integer: an int, or a float with no fractional part; never a boolean.
JsonInt = Annotated[int, BeforeValidator(_integral), Strict()]
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
    seen: set[str] = set()
    for item in items:
        identity = _json_identity(item)
        if identity in seen:
            raise ValueError("array has non-unique elements")
        seen.add(identity)
    return items
