"""The catalogue of test vectors: ``conformance/vectors/index.json``.

Libraries in other languages run the vectors without a server: each entry
names a vector file, what a conformant implementation must conclude about it
(``expected``), and the requirement it tests. ``vrm conformance vectors``
rebuilds the index; ``--check`` (and a test) fail when it is stale, so a
vector added without its index entry cannot go unnoticed.

Each vector file is a JSON object; the index reads from it ``id`` (default:
its path without extension), ``expected`` (required), ``requirement`` or
``requirements`` (at least one), and ``description`` when present.

:func:`run_vectors` runs every vector through :mod:`vrm_protocol` and says
whether the library concludes what ``expected`` says
(``vrm conformance vectors --run``; spec §14.2, VRM-CONF-002). The families
and what each vector asks of an implementation are described in
``conformance/vectors/README.md``:

* ``payloads``: version/type then schema of an unsigned payload;
* ``jose``: the signing profile's verification of a compact JWS, with the
  sender's JWKS (and the receiver's limits, when the vector states them);
* ``canonical``: the RFC 8785 check of payload bytes, and the canonical form;
* ``state``: the state stage (spec §8.6 stage 14): a receiver's ledger and one
  message it receives, and the state it moves to or the code it refuses with.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from conformance import SPEC_VERSION, SUITE_VERSION

__all__ = [
    "INDEX_PATH",
    "VECTORS_DIR",
    "VectorError",
    "VectorOutcome",
    "build_index",
    "render_index",
    "run_vector",
    "run_vectors",
]

VECTORS_DIR: Final = Path(__file__).resolve().parent / "vectors"
INDEX_PATH: Final = VECTORS_DIR / "index.json"


class VectorError(ValueError):
    """A vector file the index cannot describe."""


def _requirements(document: dict[str, Any], path: str) -> list[str]:
    value = document.get("requirements", document.get("requirement"))
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    raise VectorError(f"{path}: names no requirement ('requirement' or 'requirements')")


def _vector_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*.json")
        if path != root / INDEX_PATH.name and not path.name.startswith(".")
    )


def build_index(root: Path = VECTORS_DIR) -> dict[str, Any]:
    """Describe every vector file under ``root``.

    Raises:
        VectorError: a file is not JSON, lacks ``expected`` or a requirement,
            or two files share an id.
    """
    entries: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in _vector_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            document = json.loads(path.read_text("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise VectorError(f"{relative}: not JSON: {error}") from error
        if not isinstance(document, dict) or "expected" not in document:
            raise VectorError(f"{relative}: a vector is an object with an 'expected' member")
        vector_id = str(document.get("id") or relative.removesuffix(".json"))
        if vector_id in seen:
            raise VectorError(f"{relative}: id {vector_id!r} already used by {seen[vector_id]}")
        seen[vector_id] = relative
        entry: dict[str, Any] = {
            "id": vector_id,
            "path": relative,
            "kind": relative.split("/", 1)[0] if "/" in relative else "misc",
            "expected": document["expected"],
        }
        requirements = _requirements(document, relative)
        entry["requirement"] = requirements[0]
        if len(requirements) > 1:
            entry["requirements"] = requirements
        if isinstance(document.get("description"), str):
            entry["description"] = document["description"]
        entries.append(entry)
    return {
        "suite": SUITE_VERSION,
        "specVersion": SPEC_VERSION,
        "count": len(entries),
        "vectors": entries,
    }


def render_index(index: dict[str, Any]) -> str:
    """The index as stable, reviewable JSON text."""
    return json.dumps(index, indent=2, ensure_ascii=False) + "\n"


# -- running the vectors through the library ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class VectorOutcome:
    """What the library concluded about one vector, against what it should."""

    id: str
    path: str
    kind: str
    passed: bool
    detail: str


def _code_of(error: Exception) -> str:
    from vrm_protocol.errors import ProtocolError

    return error.code.value if isinstance(error, ProtocolError) else type(error).__name__


def _judge(expected: Mapping[str, Any], outcome: str | None, detail: str) -> tuple[bool, str]:
    """Compare a valid/error outcome with ``expected`` ({valid, error?})."""
    if expected.get("valid") is True:
        return outcome is None, detail if outcome is not None else "valid, as expected"
    wanted = expected.get("error")
    if outcome is None:
        return False, f"accepted; expected {wanted}"
    if outcome != wanted:
        return False, f"rejected with {outcome}; expected {wanted} ({detail})"
    return True, f"rejected with {outcome}, as expected"


def _run_payload(document: Mapping[str, Any]) -> tuple[bool, str]:
    from vrm_protocol.errors import ProtocolError
    from vrm_protocol.models import parse_message_dict
    from vrm_protocol.schema_registry import default_registry

    expected = document["expected"]
    try:
        default_registry().validate_message(document["payload"])
        parse_message_dict(dict(document["payload"]))
    except ProtocolError as error:
        passed, detail = _judge(expected, error.code.value, error.detail)
        wanted_path = expected.get("path")
        if passed and wanted_path is not None:
            paths = {error.path} | {
                str(fault.get("path")) for fault in error.extra.get("errors", []) if fault
            }
            if wanted_path not in paths:
                return False, f"{error.code.value} reported at {sorted(map(str, paths))}, " + (
                    f"not at {wanted_path!r}"
                )
        return passed, detail
    return _judge(expected, None, "")


def _run_jose(document: Mapping[str, Any]) -> tuple[bool, str]:
    from vrm_protocol.canonical import message_digest
    from vrm_protocol.keys import KeySet, key_resolver
    from vrm_protocol.limits import DEFAULT_LIMITS, Limits
    from vrm_protocol.signing_profile import verify_compact

    expected = document["expected"]
    declared = document.get("limits") or {}
    limits = Limits(
        max_message_bytes=int(declared.get("maxMessageBytes", DEFAULT_LIMITS.max_message_bytes)),
        max_nesting_depth=int(declared.get("maxDepth", DEFAULT_LIMITS.max_nesting_depth)),
    )
    token = str(document["token"]).encode("ascii")
    jwks = document.get("jwks")
    try:
        key_set = KeySet.from_jwks(jwks) if isinstance(jwks, dict) else None
        verified = verify_compact(
            token,
            resolve_key=key_resolver(key_set),
            typ=str(document.get("typ", "vrm+jws")),
            limits=limits,
        )
    except Exception as error:  # the library's verdict, whatever its class
        return _judge(expected, _code_of(error), str(error))
    passed, detail = _judge(expected, None, "")
    if not passed:
        return passed, detail
    checks = {
        "kid": verified.header.get("kid"),
        "digest": message_digest(token),
        "payload": json.loads(verified.payload),
    }
    wrong = [name for name, value in checks.items() if name in expected and expected[name] != value]
    if wrong:
        return False, f"verified, but {', '.join(wrong)} differ from the vector"
    return True, "verified, as expected"


def _run_canonical(document: Mapping[str, Any]) -> tuple[bool, str]:
    from vrm_protocol.canonical import canonical_json, parse_canonical, parse_json_object

    expected = document["expected"]
    encoded = str(document["inputBase64url"])
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    try:
        parse_canonical(raw)
    except Exception as error:  # the library's verdict, whatever its class
        passed, detail = _judge(expected, _code_of(error), str(error))
    else:
        passed, detail = _judge(expected, None, "")
    wanted = expected.get("canonical")
    if passed and isinstance(wanted, str):
        try:
            produced = canonical_json(parse_json_object(raw)).decode("utf-8")
        except Exception as error:  # the library's verdict, whatever its class
            return False, f"cannot produce the canonical form: {error}"
        if produced != wanted:
            return False, f"canonical form {produced!r}, expected {wanted!r}"
    return passed, detail


def _run_state(document: Mapping[str, Any]) -> tuple[bool, str]:
    from vrm_protocol.freshness import parse_timestamp
    from vrm_protocol.state_machine import SNAPSHOT_FORMAT, Relationship

    expected = document["expected"]
    receiver = document["receiver"]
    ledger = document["ledger"]
    relationship = Relationship.restore(
        {
            "format": SNAPSHOT_FORMAT,
            "ourRole": receiver["role"],
            "ourId": receiver["id"],
            "peerId": receiver["peer"],
            "core": ledger["core"],
            "offers": ledger["offers"],
            "requests": ledger["requests"],
        }
    )
    before = relationship.snapshot()
    try:
        transition = relationship.receive(
            dict(document["message"]),
            now=parse_timestamp(str(document["now"])),
            digest=str(document["digest"]),
        )
    except Exception as error:  # the library's verdict, whatever its class
        passed, detail = _judge(expected, _code_of(error), str(error))
        if passed and relationship.snapshot() != before:
            return False, "refused, but the ledger changed"
        return passed, detail
    passed, detail = _judge(expected, None, "")
    if passed and expected.get("state") != transition.state.value:
        return False, f"moved to {transition.state.value}; expected {expected.get('state')}"
    return passed, detail


_RUNNERS: Final[dict[str, Callable[[Mapping[str, Any]], tuple[bool, str]]]] = {
    "payloads": _run_payload,
    "jose": _run_jose,
    "canonical": _run_canonical,
    "state": _run_state,
}


def run_vector(kind: str, document: Mapping[str, Any]) -> tuple[bool, str]:
    """Run one vector of family ``kind`` through the library: (passed, why).

    Raises:
        VectorError: no runner for the family.
    """
    runner = _RUNNERS.get(kind)
    if runner is None:
        raise VectorError(f"no runner for the vector family {kind!r}")
    return runner(document)


def run_vectors(root: Path = VECTORS_DIR) -> list[VectorOutcome]:
    """Run every vector under ``root`` and report each outcome.

    Raises:
        VectorError: as :func:`build_index` (a file that is not a vector).
    """
    index = build_index(root)
    outcomes: list[VectorOutcome] = []
    for entry in index["vectors"]:
        document = json.loads((root / entry["path"]).read_text("utf-8"))
        try:
            passed, detail = run_vector(entry["kind"], document)
        except VectorError as error:
            passed, detail = False, str(error)
        outcomes.append(VectorOutcome(entry["id"], entry["path"], entry["kind"], passed, detail))
    return outcomes
