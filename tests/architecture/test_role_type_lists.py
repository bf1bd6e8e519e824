"""Role × message-type lists are derived from the registry, never written by hand.

Issue 10 found lists of message types per role in four places, three of them
ungated; forgetting one silently made a discovery document wrong. Now the
registry (:mod:`vrm_protocol.message_types`: ``accepted_by``, ``sent_by``,
each unit's ``always_allowed``) is the one source. This test keeps it so: no
shipped module outside the registry and the generated code holds a literal
collection naming three or more message types, and what the suite's peers
and the agents announce equals the registry's answer.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conformance.peers import vendors as suite_vendors
from conformance.protocol import _NOT_TRANSITIONS
from vrm_protocol.message_types import MESSAGE_TYPES, accepted_by, sent_by
from vrm_protocol.vocabulary import MessageType, Role

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "vrm_protocol",
    "vrm_agent",
    "reference_vendor",
    "reference_buyer",
    "reference_directory",
    "conformance",
    "tools",
)
#: Where listing the types is the point: the registry and generated code.
ALLOWED = (
    "vrm_protocol/message_types/__init__.py",
    "vrm_protocol/_generated_vocabulary.py",
    "vrm_protocol/models/_generated.py",
    "conformance/vectors/",
)
#: Lists of another property than role (file, the name assigned), each with why.
NOT_ROLE_LISTS = {
    # Messages that disclose data by the individual's consent (spec §12): a
    # privacy property the audit judges, not who sends or takes the type.
    ("conformance/checks/conduct.py", "_CONSENTED_SHARING"),
    # The vendor's messages of record its export carries (spec §6.14): a property
    # of what a message records, not of who sends it.
    ("reference_vendor/leaving.py", "HISTORY_TYPES"),
    # The vendor's messages she shares as evidence when she comes back (spec §6.1).
    ("reference_buyer/buying.py", "EVIDENCE_TYPES"),
}
TYPE_NAMES = {member.name for member in MessageType}
TYPE_VALUES = {member.value for member in MessageType}


def _names_a_type(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id == "MessageType" and node.attr in TYPE_NAMES
    return isinstance(node, ast.Constant) and node.value in TYPE_VALUES


def _hand_written_lists(path: Path, relative: str) -> list[int]:
    tree = ast.parse(path.read_text("utf-8"))
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {target.id for target in targets if isinstance(target, ast.Name)}
            if any((relative, name) in NOT_ROLE_LISTS for name in names) and node.value:
                exempt |= {id(inner) for inner in ast.walk(node.value)}
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Tuple | ast.List | ast.Set)
            and id(node) not in exempt
            and sum(_names_a_type(element) for element in node.elts) >= 3
        ):
            lines.append(node.lineno)
    return lines


def test_no_module_lists_message_types_by_hand() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(ALLOWED):
                continue
            found += [f"{relative}:{line}" for line in _hand_written_lists(path, relative)]
    assert not found, (
        "derive these lists from vrm_protocol.message_types (accepted_by, sent_by, "
        f"a unit's flags): {found}"
    )


def test_the_suites_vendors_announce_what_the_registry_says() -> None:
    assert set(suite_vendors._ACCEPTS) == accepted_by(Role.VENDOR)
    assert set(suite_vendors._SENDS) == sent_by(Role.VENDOR)


def test_what_is_not_a_move_comes_from_the_registry() -> None:
    assert {
        message_type.value for message_type, spec in MESSAGE_TYPES.items() if spec.always_allowed
    } == _NOT_TRANSITIONS
    assert {"receipt", "problem-report"} == _NOT_TRANSITIONS
