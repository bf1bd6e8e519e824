"""The requirements registry: loading and validation (spec §2)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from vrm_protocol.requirements import (
    REQUIREMENT_ID_PATTERN,
    Binds,
    RequirementLevel,
    RequirementsError,
    load_requirements,
    parse_requirements,
)
from vrm_protocol.vocabulary import Role


def _document(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "VRM-SIG-001",
        "level": "MUST",
        "binds": "receiver",
        "section": "8.2",
        "text": "A receiver MUST do the thing.",
    }
    entry.update(overrides)
    return {"area": "signing", "prefix": "VRM-SIG", "requirement": [entry]}


def test_registry_loads_with_unique_well_formed_ids() -> None:
    requirements = load_requirements()
    assert len(requirements) >= 80
    for requirement_id, requirement in requirements.items():
        assert requirement.id == requirement_id
        assert REQUIREMENT_ID_PATTERN.fullmatch(requirement_id)
        assert re.search(rf"\b{requirement.level.value}\b", requirement.text)
    assert list(requirements) == sorted(requirements)


def test_every_area_of_the_brief_has_requirements() -> None:
    areas = {requirement.area for requirement in load_requirements().values()}
    assert areas == {
        "attestations",
        "binding",
        "buyer",
        "conformance",
        "envelope",
        "freshness",
        "grants",
        "messages",
        "privacy",
        "signing",
        "state-machine",
        "vendor",
        "transaction",
        "conversation",
        "living",
        "directory",
        "paperwork",
        "materials",
    }


def test_levels_are_all_used() -> None:
    levels = {requirement.level for requirement in load_requirements().values()}
    assert levels == set(RequirementLevel)


def test_roles_follow_binding() -> None:
    assert Binds.BUYER.roles == {Role.BUYER}
    assert Binds.VENDOR.roles == {Role.VENDOR}
    assert Binds.SENDER.roles == Binds.RECEIVER.roles == Binds.ANY.roles == set(Role)
    requirement = load_requirements()["VRM-PRIV-001"]
    assert requirement.roles == {Role.BUYER}


def test_a_well_formed_entry_parses() -> None:
    [requirement] = parse_requirements("signing.toml", _document(text="A  receiver MUST\n do it."))
    assert requirement.level is RequirementLevel.MUST
    assert requirement.binds is Binds.RECEIVER
    assert requirement.text == "A receiver MUST do it."
    assert requirement.area == "signing"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"id": "SIG-001"}, "id must match"),
        ({"id": "VRM-ENV-001"}, "prefix"),
        ({"level": "MUST-NOT"}, "MUST-NOT"),
        ({"binds": "everyone"}, "everyone"),
        ({"section": "19"}, "section"),
        ({"section": "8.2.1"}, "section"),
        ({"text": "A receiver should do it."}, "must say MUST"),
        ({"level": "SHOULD"}, "must say SHOULD"),
        ({"colour": "red"}, "unknown members"),
    ],
)
def test_malformed_entries_are_refused(overrides: dict[str, Any], complaint: str) -> None:
    with pytest.raises(RequirementsError, match=re.escape(complaint)):
        parse_requirements("signing.toml", _document(**overrides))


def test_a_file_without_prefix_is_refused() -> None:
    with pytest.raises(RequirementsError, match="prefix"):
        parse_requirements("broken.toml", {"area": "broken", "requirement": []})
