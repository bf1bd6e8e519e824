"""The requirements registry: every MUST, SHOULD and MAY of the protocol, with a stable id.

The registry is package data (``vrm_protocol/requirements_data/*.toml``, one
file per area).  Each requirement has an id such as ``VRM-SIG-009`` that is
never renumbered or reused, a level (RFC 2119 / RFC 8174), the party it binds,
the spec section it belongs to and its normative sentence.

Two tools read it: the specification builder, which prints each requirement
where the prose places it (spec §2), and the conformance suite's coverage gate,
which asserts that every MUST is judged by a check or waived.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

from vrm_protocol.vocabulary import Role

__all__ = [
    "REQUIREMENT_ID_PATTERN",
    "Binds",
    "Requirement",
    "RequirementLevel",
    "RequirementsError",
    "load_requirements",
    "parse_requirements",
]

#: ``VRM-<AREA>-<three digits>``; the area prefix is fixed per registry file.
REQUIREMENT_ID_PATTERN: Final = re.compile(r"^VRM-[A-Z]+-\d{3}$")
#: A section of the spec's section map (§1 to §18, one level of subsections).
_SECTION_PATTERN: Final = re.compile(r"^(?:[1-9]|1[0-8])(?:\.[1-9]\d?)?$")
_DATA_PACKAGE: Final = "vrm_protocol.requirements_data"


class RequirementsError(ValueError):
    """The registry data is malformed (raised while loading it)."""


class RequirementLevel(StrEnum):
    """The requirement levels of RFC 2119, as clarified by RFC 8174 (spec §2)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Binds(StrEnum):
    """The party a requirement binds (spec §2)."""

    BUYER = "buyer"
    VENDOR = "vendor"
    SENDER = "sender"
    RECEIVER = "receiver"
    ANY = "any"

    @property
    def roles(self) -> frozenset[Role]:
        """The roles bound: senders and receivers are of either role."""
        if self is Binds.BUYER:
            return frozenset({Role.BUYER})
        if self is Binds.VENDOR:
            return frozenset({Role.VENDOR})
        return frozenset(Role)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One normative statement of the protocol."""

    id: str
    level: RequirementLevel
    binds: Binds
    #: The spec section the statement belongs to ("8.2", "12").
    section: str
    #: The normative sentence (Markdown inline syntax: code spans, "§N" references).
    text: str
    #: The registry file's area ("signing").
    area: str

    @property
    def roles(self) -> frozenset[Role]:
        """The roles of the agents this requirement binds."""
        return self.binds.roles


def _keyword_present(level: RequirementLevel, text: str) -> bool:
    # RFC 8174: only the upper-case words carry the normative meaning, so the
    # sentence must use its level's keyword in upper case.
    return re.search(rf"\b{level.value}\b", text) is not None


def parse_requirements(area_file: str, document: Mapping[str, Any]) -> list[Requirement]:
    """Parse one registry file's TOML document.

    Raises:
        RequirementsError: a member is missing or malformed, an id does not
            match the pattern or the file's prefix, or the text does not use
            its level's keyword.
    """
    prefix = document.get("prefix")
    area = document.get("area")
    if not isinstance(prefix, str) or not isinstance(area, str):
        raise RequirementsError(f"{area_file}: needs top-level 'area' and 'prefix' strings")
    entries = document.get("requirement", [])
    if not isinstance(entries, list):
        raise RequirementsError(f"{area_file}: 'requirement' must be an array of tables")
    parsed: list[Requirement] = []
    for entry in entries:
        where = f"{area_file}: {entry.get('id', '<no id>')}"
        unknown = set(entry) - {"id", "level", "binds", "section", "text"}
        if unknown:
            raise RequirementsError(f"{where}: unknown members {sorted(unknown)}")
        requirement_id = entry.get("id")
        if not isinstance(requirement_id, str) or not REQUIREMENT_ID_PATTERN.fullmatch(
            requirement_id
        ):
            raise RequirementsError(f"{where}: id must match {REQUIREMENT_ID_PATTERN.pattern}")
        if not requirement_id.startswith(prefix + "-"):
            raise RequirementsError(f"{where}: id must start with the file's prefix {prefix}-")
        try:
            level = RequirementLevel(entry.get("level"))
            binds = Binds(entry.get("binds"))
        except ValueError as exc:
            raise RequirementsError(f"{where}: {exc}") from exc
        section = entry.get("section")
        if not isinstance(section, str) or not _SECTION_PATTERN.fullmatch(section):
            raise RequirementsError(f"{where}: section must be a spec section such as '8.2'")
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise RequirementsError(f"{where}: text is missing")
        if not _keyword_present(level, text):
            raise RequirementsError(f"{where}: a {level} requirement must say {level}")
        parsed.append(
            Requirement(
                id=requirement_id,
                level=level,
                binds=binds,
                section=section,
                text=" ".join(text.split()),
                area=area,
            )
        )
    return parsed


@cache
def load_requirements() -> Mapping[str, Requirement]:
    """Every requirement of the registry, by id, in id order.

    Raises:
        RequirementsError: a registry file is malformed or an id is defined twice.
    """
    registry: dict[str, Requirement] = {}
    data = resources.files(_DATA_PACKAGE)
    for item in sorted(data.iterdir(), key=lambda entry: entry.name):
        if not item.name.endswith(".toml"):
            continue
        try:
            document = tomllib.loads(item.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise RequirementsError(f"{item.name}: {exc}") from exc
        for requirement in parse_requirements(item.name, document):
            if requirement.id in registry:
                raise RequirementsError(f"{item.name}: {requirement.id} is defined twice")
            registry[requirement.id] = requirement
    return MappingProxyType(dict(sorted(registry.items())))
