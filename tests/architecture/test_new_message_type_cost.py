"""The measure of issue 10: what adding one message type end to end costs, in files.

The repository is copied to a temporary directory and a throwaway message
type, ``courtesy-note`` (either party may send one while servicing; it
changes nothing), is added the way a contributor would: its schema, an
example, its message-type module (the registry finds it), its requirement,
one handler per agent, one conformance check (the suite finds it) and its
section of the specification. Then the code and spec generators run, and
the copy must hold together: the registry and the models have the type,
both agents start (their handler registries pass the start-up exhaustiveness
check) and list it in their discovery documents, and the suite registers the
check with the requirement covered.

The count is measured, not declared: every file of the copy is hashed before
the edits, after them (the hand-edited files) and after the code generator
(the generated ones). It must be at most 8.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vrm_protocol.message_types import MESSAGE_TYPES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: The most hand-edited files a new message type may cost (issue 10).
BUDGET = 8
#: The throwaway type's section: after every section of §6 the registry names.
NEXT = 1 + max(int(spec.section.split(".")[1]) for spec in MESSAGE_TYPES.values())
_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://vrm-protocol.example/schemas/v1/courtesy-note.schema.json",
    "title": "Courtesy note",
    "description": f"A note of thanks or courtesy between the parties (throwaway, spec §6.{NEXT}).",
    "$ref": "envelope.schema.json",
    "properties": {
        "type": {"const": "courtesy-note", "description": "Always `courtesy-note`."},
        "body": {
            "$ref": "#/$defs/CourtesyNoteBody",
            "description": "The `courtesy-note` body.",
        },
    },
    "unevaluatedProperties": False,
    "$defs": {
        "CourtesyNoteBody": {
            "title": "Courtesy note body",
            "description": "What the note says.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "text": {
                    "type": "string",
                    "description": "The note.",
                    "minLength": 1,
                    "maxLength": 1000,
                }
            },
            "required": ["text"],
        }
    },
}

EXAMPLE = {
    "vrm": "1.0",
    "type": "courtesy-note",
    "id": "urn:uuid:3f0b8a52-9d3c-4d7e-8a11-5b7c2e9f0a41",
    "thread": "urn:uuid:31e774eb-5025-412a-86db-74efe3e1bbeb",
    "from": "https://prius-dealer.london.example",
    "to": [
        "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6IjVQMW5JVDI5QmVqMW5OVGVaODYwTUt1VExnS2RKenYxUEN5bVFjbG1vVjAifQ"
    ],
    "created": "2028-06-13T09:00:00Z",
    "expires": "2028-06-20T09:00:00Z",
    "body": {"text": "Thank you for bringing the car in; enjoy the road trip."},
}

UNIT = '''\
"""courtesy-note: a note either party may send while servicing (throwaway, spec §6.{NEXT})."""

from __future__ import annotations

from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import CourtesyNoteMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.COURTESY_NOTE


def _guard(move: Move[CourtesyNoteMessage]) -> RelationshipState:
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=CourtesyNoteMessage,
    section="6.{NEXT}",
    steps=(LifecycleStep.SERVICING,),
    summary="A note of thanks or courtesy; it changes nothing.",
    rows=(
        TransitionRow(_S.SERVICING, Role.VENDOR, _T, _S.SERVICING, "A note changes nothing."),
        TransitionRow(_S.SERVICING, Role.BUYER, _T, _S.SERVICING, "A note changes nothing."),
    ),
    guard=_guard,
)
'''.replace("{NEXT}", str(NEXT))

REQUIREMENTS = """\
area = "courtesy"
prefix = "VRM-CTSY"

[[requirement]]
id = "VRM-CTSY-001"
level = "MUST"
binds = "any"
section = "6.{NEXT}"
text = "A courtesy note MUST NOT change the state of the relationship."
""".replace("{NEXT}", str(NEXT))

SPEC_SECTION = """
## 6.{NEXT} courtesy-note

Either party may thank the other while the relationship is in service. A
note is not a move: it changes nothing the ledger holds.

{{req VRM-CTSY-001}}

{{fields courtesy-note}}
""".replace("{NEXT}", str(NEXT))

VENDOR_HANDLER = '''

from vrm_protocol.models import CourtesyNoteMessage  # noqa: E402


@HANDLERS.on(CourtesyNoteMessage)
async def on_courtesy_note(
    vendor: VendorAgent, inbound: Inbound[CourtesyNoteMessage], work: UnitOfWork
) -> None:
    """Filed with the relationship; nothing to answer."""
'''

BUYER_HANDLER = '''

from vrm_protocol.models import CourtesyNoteMessage  # noqa: E402


@HANDLERS.on(CourtesyNoteMessage)
async def on_courtesy_note(
    buyer: BuyerAgent, inbound: Inbound[CourtesyNoteMessage], work: UnitOfWork
) -> None:
    """Filed with the relationship; nothing to answer."""
'''

CHECK = '''\
"""Courtesy notes (throwaway check)."""

from __future__ import annotations

from conformance.context import CheckContext
from conformance.registry import REGISTRY
from vrm_protocol.vocabulary import LifecycleStep, Role


@REGISTRY.check(
    "COURTESY-NOTE",
    title="A courtesy note changes nothing",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-CTSY-001",),
    roles=(Role.VENDOR, Role.BUYER),
    needs=("accepts:courtesy-note",),
)
async def courtesy_note(ctx: CheckContext) -> None:
    """The target takes a courtesy note and stays where it was."""
    ctx.require(True, "the note was taken")
'''

VERIFY = """\
import json
from conformance.catalog import coverage_gaps, default_registry
from vrm_protocol.message_types import MESSAGE_TYPES, accepted_by, sent_by
from vrm_protocol.models import MESSAGE_MODELS, parse_message_dict
from vrm_protocol.schema_registry import default_registry as schemas
from vrm_protocol.vocabulary import MessageType, Role

note = MessageType("courtesy-note")
example = json.load(open("schemas/examples/courtesy-note.thank-you.json"))
schemas().validate_message(example)
parse_message_dict(example)
print(json.dumps({
    "registry": note in MESSAGE_TYPES,
    "model": MESSAGE_MODELS[note].__name__,
    "vendor": [note in accepted_by(Role.VENDOR), note in sent_by(Role.VENDOR)],
    "buyer": [note in accepted_by(Role.BUYER), note in sent_by(Role.BUYER)],
    "check": "COURTESY-NOTE" in {check.id for check in default_registry()},
    "gaps": [str(gap) for gap in coverage_gaps() if gap.requirement.startswith("VRM-CTSY")],
}))
"""


def _snapshot(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts
    }


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


def _copy_repository(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source, target = ROOT / name.decode(), destination / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():  # vrm_protocol/schemas -> ../schemas
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)


def _add_courtesy_note(copy: Path) -> None:
    """The contributor's edits, and nothing else."""
    (copy / "schemas/courtesy-note.schema.json").write_text(json.dumps(SCHEMA, indent=2) + "\n")
    (copy / "schemas/examples/courtesy-note.thank-you.json").write_text(
        json.dumps(EXAMPLE, indent=2) + "\n"
    )
    # The registry finds the unit: no list of units to edit.
    (copy / "vrm_protocol/message_types/courtesy_note.py").write_text(UNIT)
    (copy / "vrm_protocol/requirements_data/courtesy.toml").write_text(REQUIREMENTS)
    for path, handler in (
        ("reference_vendor/handlers.py", VENDOR_HANDLER),
        ("reference_buyer/handlers.py", BUYER_HANDLER),
    ):
        with (copy / path).open("a") as module:
            module.write(handler)
    # The check package finds the module: no list of check modules to edit.
    (copy / "conformance/checks/courtesy.py").write_text(CHECK)
    with (copy / "spec/src/06-messages.md").open("a") as spec:
        spec.write(SPEC_SECTION)


def _env(copy: Path) -> dict[str, str]:
    # The copy's packages come first on the path, before the installed ones.
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}


def _python(copy: Path, *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=copy,
        env=_env(copy),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextmanager
def _agent(copy: Path, kind: str) -> Iterator[str]:
    """Start one of the copy's agents (``vrm <kind> serve``); yield its base URL."""
    log = copy / f"{kind}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from vrm_protocol.cli import main; main()",
                kind,
                "serve",
                "--port",
                "0",
                "--data-dir",
                str(copy / f"{kind}-data"),
                "--test-mode",
                *(["--catalogue", "dealer-mayfair"] if kind == "vendor" else []),
            ],
            cwd=copy,
            env=_env(copy),
            stdout=output,
            stderr=output,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while (match := _LISTENING.search(log.read_bytes())) is None:
            assert process.poll() is None, f"the {kind} agent did not start:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the {kind} agent is slow:\n{log.read_text()}"
            time.sleep(0.05)
        yield match.group(1).decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _discovery(base_url: str) -> dict[str, list[str]]:
    with urllib.request.urlopen(base_url + "/.well-known/vrm", timeout=10) as answer:
        document = json.load(answer)
    types: dict[str, list[str]] = document["messageTypes"]
    return types


def test_a_new_message_type_costs_at_most_eight_hand_edited_files(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    _copy_repository(copy)
    pristine = _snapshot(copy)
    _add_courtesy_note(copy)
    edited = _snapshot(copy)
    hand_edited = _changed(pristine, edited)
    _python(copy, "-m", "tools.codegen")
    _python(copy, "-m", "tools.specgen")
    generated = _changed(edited, _snapshot(copy))

    print(f"\nhand-edited files to add a message type: {len(hand_edited)} (budget {BUDGET})")
    for name in hand_edited:
        print(f"  {name}")
    print(f"generated by `python -m tools.codegen` and `python -m tools.specgen`: {len(generated)}")
    for name in generated:
        print(f"  {name}")

    found = json.loads(_python(copy, "-c", VERIFY))
    assert found == {
        "registry": True,
        "model": "CourtesyNoteMessage",
        "vendor": [True, True],
        "buyer": [True, True],
        "check": True,
        "gaps": [],
    }
    # Both agents start (their handlers pass the exhaustiveness check against
    # the registry) and announce the new type, derived from the registry.
    for kind in ("vendor", "buyer"):
        with _agent(copy, kind) as base_url:
            types = _discovery(base_url)
        assert "courtesy-note" in types["accepts"], kind
        assert "courtesy-note" in types["sends"], kind
    assert set(generated) >= {
        "vrm_protocol/_generated_vocabulary.py",
        "vrm_protocol/models/_generated.py",
        "schemas/message.schema.json",
        "spec/vrm-protocol.md",
    }
    assert f"## 6.{NEXT} courtesy-note" in (copy / "spec/vrm-protocol.md").read_text()
    assert len(hand_edited) <= BUDGET, hand_edited


def test_without_its_handler_an_agent_refuses_to_start(tmp_path: Path) -> None:
    """The exhaustiveness check is what makes the handler a required edit."""
    copy = tmp_path / "repo"
    _copy_repository(copy)
    _add_courtesy_note(copy)
    handlers = copy / "reference_vendor/handlers.py"
    handlers.write_text(handlers.read_text().replace(VENDOR_HANDLER, "\n"))
    _python(copy, "-m", "tools.codegen")
    with (
        pytest.raises(AssertionError, match=r"did not start(.|\n)*courtesy-note") as refused,
        _agent(copy, "vendor"),
    ):
        pass
    assert "IncompleteRegistry" in str(refused.value) or "no handler" in str(refused.value)
