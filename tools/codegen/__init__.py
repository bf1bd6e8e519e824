"""Build tool: generate the library's pydantic models from the normative schemas.

``python -m tools.codegen`` writes ``vrm_protocol/models/_generated.py`` from
``schemas/*.schema.json``; ``python -m tools.codegen --check`` is the drift gate:
it fails, printing a diff, when the file on disk is not what the schemas
generate. Both first hold the schemas to the authoring rules of
``schemas/DESIGN-NOTES.md`` (the subset of JSON Schema the models can express
exactly), and fail on any breach.

Nothing shipped imports this package (ARCHITECTURE.md, import contracts).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.codegen.generator import CodegenError, generate_models, lint_schemas

__all__ = [
    "CodegenError",
    "default_output",
    "default_schema_dir",
    "format_source",
    "generate_source",
    "lint_schemas",
    "load_schemas",
    "main_generate",
]

_REPOSITORY = Path(__file__).resolve().parents[2]
_PACKAGE_DIR = _REPOSITORY / "vrm_protocol"


def default_schema_dir() -> Path:
    """The repository's ``schemas/``."""
    return _REPOSITORY / "schemas"


def default_output() -> Path:
    """``vrm_protocol/models/_generated.py``."""
    return _PACKAGE_DIR / "models" / "_generated.py"


def load_schemas(directory: Path) -> dict[str, dict[str, Any]]:
    """Every ``*.schema.json`` of ``directory`` by file name.

    Raises:
        CodegenError: a file is not a JSON object.
    """
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.schema.json")):
        try:
            document = json.loads(path.read_text("utf-8"))
        except ValueError as error:
            raise CodegenError(f"{path.name}: not JSON: {error}") from error
        if not isinstance(document, dict):
            raise CodegenError(f"{path.name}: a schema is a JSON object")
        documents[path.name] = document
    return documents


def _source_digest(documents: Mapping[str, Mapping[str, Any]]) -> str:
    # Over the parsed documents, not the bytes: reformatting a schema file
    # does not make the models stale, changing what it says does.
    canonical = json.dumps(documents, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def format_source(source: str) -> str:
    """Sort imports and format ``source`` as ``ruff`` formats ``_generated.py`` in the checkout.

    The file name given to ruff is always the in-tree one, so that the
    project's ruff settings apply wherever the output is written.

    Raises:
        CodegenError: ``ruff`` is not installed or refuses the source.
    """
    root = _PACKAGE_DIR.parent
    filename = default_output()
    for arguments in (
        ["check", "--fix", "--quiet", "--select", "I,F401,RUF022", "--exit-zero"],
        ["format", "--quiet"],
    ):
        try:
            completed = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
                [sys.executable, "-m", "ruff", *arguments, "--stdin-filename", str(filename), "-"],
                input=source,
                capture_output=True,
                text=True,
                check=False,
                cwd=root,
            )
        except OSError as error:
            raise CodegenError(f"cannot run ruff: {error}") from error
        if completed.returncode != 0:
            raise CodegenError(f"ruff {arguments[0]} failed: {completed.stderr.strip()}")
        source = completed.stdout
    return source


def generate_source(documents: Mapping[str, Mapping[str, Any]]) -> str:
    """The formatted source of ``_generated.py`` for ``documents`` (file name -> schema).

    Raises:
        CodegenError: the schemas break an authoring rule, or ruff fails.
    """
    problems = lint_schemas(documents)
    if problems:
        raise CodegenError("the schemas break the authoring rules:\n" + "\n".join(problems))
    source = generate_models(documents, source_digest=_source_digest(documents))
    return format_source(source)


def main_generate(
    check: bool, *, schema_dir: Path | None = None, output: Path | None = None
) -> int:
    """Generate the models, or with ``check`` verify that they are up to date.

    Returns the process exit status: 0 when the file was written or is up to
    date; 1 when the schemas break an authoring rule, or (with ``check``) the
    file on disk differs from what the schemas generate, in which case a
    unified diff is printed. Never raises for those conditions.
    """
    schema_dir = schema_dir or default_schema_dir()
    output = output or default_output()
    try:
        source = generate_source(load_schemas(schema_dir))
    except CodegenError as error:
        print(f"tools.codegen: {error}", file=sys.stderr)
        return 1
    current = output.read_text("utf-8") if output.exists() else ""
    if check:
        if current == source:
            print(f"{output.name} is up to date with {schema_dir}")
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            source.splitlines(keepends=True),
            fromfile=f"{output} (on disk)",
            tofile=f"{output} (generated from {schema_dir})",
        )
        sys.stdout.writelines(diff)
        print(
            f"{output.name} is stale: run `python -m tools.codegen` and commit the result",
            file=sys.stderr,
        )
        return 1
    if current != source:
        output.write_text(source, "utf-8")
        print(f"wrote {output}")
    else:
        print(f"{output.name} already up to date")
    return 0
