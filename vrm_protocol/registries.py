"""The protocol's open registries of values: purposes and data categories (spec §16).

One source of truth: ``schemas/registries/purposes.json`` and
``schemas/registries/data-categories.json`` (package data, beside the schemas).
The schemas admit any well-formed token, so that a community can use a value
before it is registered; these files say which values are registered, what
each means, and which data categories are identifying (spec §12.2) or name
the identity disclosed at acceptance (spec §6.4). The specification's
registry tables are generated from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "DataCategory",
    "Purpose",
    "acceptance_categories",
    "data_categories",
    "is_identifying",
    "purposes",
]

_FOLDER: Final = "registries"


@dataclass(frozen=True, slots=True)
class Purpose:
    """A registered purpose of processing."""

    value: str
    description: str
    reference: str


@dataclass(frozen=True, slots=True)
class DataCategory:
    """A registered data category."""

    value: str
    description: str
    identifying: bool
    #: For the identity disclosed at acceptance: the member whose value it names
    #: (``identity.email`` for the acceptance's ``identity.email``).
    acceptance_member: str | None = None


def _load(name: str) -> Mapping[str, Any]:
    text = (resources.files("vrm_protocol") / "schemas" / _FOLDER / name).read_text("utf-8")
    document = json.loads(text)
    if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
        raise ValueError(f"schemas/{_FOLDER}/{name} is not a registry document")
    return document


@cache
def purposes() -> Mapping[str, Purpose]:
    """Every registered purpose, by value, in registry order.

    Raises:
        ValueError, OSError: the registry file is missing or malformed.
    """
    entries = _load("purposes.json")["entries"]
    return MappingProxyType(
        {
            str(entry["value"]): Purpose(
                str(entry["value"]), str(entry["description"]), str(entry["reference"])
            )
            for entry in entries
        }
    )


@cache
def data_categories() -> Mapping[str, DataCategory]:
    """Every registered data category, by value, in registry order.

    Raises:
        ValueError, OSError: the registry file is missing or malformed.
    """
    entries = _load("data-categories.json")["entries"]
    return MappingProxyType(
        {
            str(entry["value"]): DataCategory(
                str(entry["value"]),
                str(entry["description"]),
                bool(entry["identifying"]),
                str(entry["acceptanceMember"]) if entry.get("acceptanceMember") else None,
            )
            for entry in entries
        }
    )


def is_identifying(category: str) -> bool:
    """Whether ``category`` is identifying (spec §12.2): registered as identifying,
    or under one that is (``contact.email`` under ``contact``). Never raises for
    a string."""
    registry = data_categories()
    parts = category.split(".")
    return any(
        (entry := registry.get(".".join(parts[:length]))) is not None and entry.identifying
        for length in range(1, len(parts) + 1)
    )


@cache
def acceptance_categories() -> Mapping[str, str]:
    """The identity disclosed at acceptance (spec §6.4): the member of the
    acceptance (``identity.name``, ``tradeIn.item.registration``) -> the data
    category its value is held under (``identity.name``, ``vehicle.registration``)."""
    return MappingProxyType(
        {
            entry.acceptance_member: entry.value
            for entry in data_categories().values()
            if entry.acceptance_member is not None
        }
    )
