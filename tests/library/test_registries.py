"""The open registries (spec §16.7, §16.8): one source, used by the examples and
the library; identifying categories as spec §12.3 defines them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vrm_protocol.registries import (
    acceptance_categories,
    data_categories,
    is_identifying,
    purposes,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"


def _values(node: Any, keys: set[str], found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            for item in value if isinstance(value, list) else [value]:
                if key in keys and isinstance(item, str):
                    found.add(item)
            _values(value, keys, found)
    elif isinstance(node, list):
        for item in node:
            _values(item, keys, found)
    return found


def test_the_examples_use_registered_purposes_and_categories() -> None:
    purposes_used: set[str] = set()
    categories_used: set[str] = set()
    for path in EXAMPLES.glob("*.json"):
        document = json.loads(path.read_text("utf-8"))
        _values(document, {"purposes"}, purposes_used)
        _values(document, {"item", "categories"}, categories_used)
    assert purposes_used <= set(purposes())
    assert {value for value in categories_used if "." in value} <= set(data_categories())


@pytest.mark.parametrize(
    ("category", "identifying"),
    [
        ("contact.email", True),
        ("contact.anything-new", True),
        ("identity", True),
        ("location.home-area", True),
        ("vehicle.registration", True),
        ("vehicle.model", False),
        ("travel.dates", False),
        ("unregistered.thing", False),
    ],
)
def test_identifying_categories(category: str, identifying: bool) -> None:
    assert is_identifying(category) is identifying


def test_the_identity_disclosed_at_acceptance_has_registered_categories() -> None:
    assert dict(acceptance_categories()) == {
        "identity.name": "identity.name",
        "identity.email": "contact.email",
        "identity.phone": "contact.phone",
        "identity.address": "contact.postal-address",
        "tradeIn.item.registration": "vehicle.registration",
    }
    assert all(is_identifying(category) for category in acceptance_categories().values())
