"""The catalogue of test vectors: ``conformance/vectors/index.json``.

Libraries in other languages run the vectors without a server: each entry
names a vector file, what a conformant implementation must conclude about it
(``expected``), and the requirement it tests. ``vrm conformance vectors``
rebuilds the index; ``--check`` (and a test) fail when it is stale, so a
vector added without its index entry cannot go unnoticed.

Each vector file is a JSON object; the index reads from it ``id`` (default:
its path without extension), ``expected`` (required), ``requirement`` or
``requirements`` (at least one), and ``description`` when present.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from conformance import SPEC_VERSION, SUITE_VERSION

__all__ = ["INDEX_PATH", "VECTORS_DIR", "VectorError", "build_index", "render_index"]

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
