"""The machine-readable export of the requirements: ``spec/requirements.json``
(spec §2, §14.4; its schema is ``schemas/reports/requirements.schema.json``).

Every requirement of the registry, with the section it belongs to, the error
codes its sentence names, the conformance checks that cite it (or the waiver
that says why none does), the guard rules of the state machine that enforce it
and the test vectors that test it. Deterministic: the same inputs give the
same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from tools.specgen.sections import SECTION_REFERENCE
from vrm_protocol.errors import ErrorCode
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.requirements import Requirement
from vrm_protocol.vocabulary import PROTOCOL_VERSION

__all__ = ["REQUIREMENTS_FILE", "requirements_export"]

REQUIREMENTS_FILE: Final = "spec/requirements.json"
EXPORT_FORMAT: Final = "vrm-requirements/1"
_CODE_SPAN: Final = re.compile(r"`([a-z][a-z-]+)`")
_CODES: Final = frozenset(code.value for code in ErrorCode)


def _vectors_by_requirement(root: Path) -> dict[str, list[str]]:
    path = root / "conformance" / "vectors" / "index.json"
    found: dict[str, list[str]] = {}
    try:
        index = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return found
    for entry in index.get("vectors", []):
        cited = entry.get("requirements") or [entry.get("requirement")]
        for requirement in cited:
            if isinstance(requirement, str):
                found.setdefault(requirement, []).append(str(entry.get("id")))
    return {key: sorted(set(value)) for key, value in found.items()}


def _guard_rules() -> dict[str, list[dict[str, str]]]:
    rules: dict[str, list[dict[str, str]]] = {}
    for spec in MESSAGE_TYPES.values():
        for rule in spec.rules:
            rules.setdefault(rule.requirement, []).append(
                {"messageType": spec.type.value, "code": rule.code.value, "when": rule.when}
            )
    return rules


def requirements_export(
    requirements: Mapping[str, Requirement],
    *,
    root: Path,
    date: str,
    traceability: Mapping[str, Sequence[str]] | None,
    waivers: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The export document (see the module docstring). Never raises."""
    vectors = _vectors_by_requirement(root)
    rules = _guard_rules()
    rows: list[dict[str, Any]] = []
    for requirement in requirements.values():
        section = SECTION_REFERENCE.get(requirement.section)
        codes = [code for code in _CODE_SPAN.findall(requirement.text) if code in _CODES]
        checks = sorted(set(traceability.get(requirement.id, ()))) if traceability else []
        row: dict[str, Any] = {
            "id": requirement.id,
            "level": requirement.level.value,
            "binds": requirement.binds.value,
            "roles": sorted(role.value for role in requirement.roles),
            "area": requirement.area,
            "section": requirement.section,
            "sectionTitle": section.title if section is not None else "",
            "anchor": f"#{requirement.id}",
            "text": requirement.text,
            "codes": list(dict.fromkeys(codes)),
            "checks": checks,
            "vectors": vectors.get(requirement.id, []),
        }
        if waivers and requirement.id in waivers and not checks:
            row["waiver"] = " ".join(waivers[requirement.id].split())
        if requirement.id in rules:
            row["guardRules"] = rules[requirement.id]
        rows.append(row)
    return {
        "format": EXPORT_FORMAT,
        "specVersion": PROTOCOL_VERSION,
        "date": date,
        "requirements": rows,
    }
