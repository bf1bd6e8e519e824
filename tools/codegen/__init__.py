"""Build tool: generate the library's message types and models from the normative schemas.

``python -m tools.codegen`` writes, from ``schemas/*.schema.json``:

* ``vrm_protocol/_generated_vocabulary.py``: ``MessageType``, one member per
  message schema (re-exported by :mod:`vrm_protocol.vocabulary`);
* the lists of message types inside the schemas: the envelope's ``type``
  enum and ``message.schema.json``'s ``oneOf`` (rewritten in place, all else
  kept);
* ``vrm_protocol/models/_generated.py``: the pydantic models.

So adding a message type is adding its schema file (and its example): no
list is edited by hand. ``python -m tools.codegen --check`` is the drift
gate: it fails, printing a diff, when any of these files is not what the
schemas generate. Both first hold the schemas to the authoring rules of
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

from tools.codegen.generator import (
    CodegenError,
    generate_message_type,
    generate_models,
    lint_schemas,
    with_message_types,
)

__all__ = [
    "CodegenError",
    "default_message_type_output",
    "default_output",
    "default_schema_dir",
    "format_source",
    "generate_all",
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


def default_message_type_output() -> Path:
    """``vrm_protocol/_generated_vocabulary.py``."""
    return _PACKAGE_DIR / "_generated_vocabulary.py"


def schema_text(document: Mapping[str, Any]) -> str:
    """A schema file's text, as every file of ``schemas/`` is written."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


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


def format_source(source: str, filename: Path | None = None) -> str:
    """Sort imports and format ``source`` as ``ruff`` formats ``filename`` in the checkout.

    The file name given to ruff is always an in-tree one (by default
    ``_generated.py``), so that the project's ruff settings apply wherever
    the output is written.

    Raises:
        CodegenError: ``ruff`` is not installed or refuses the source.
    """
    root = _PACKAGE_DIR.parent
    filename = filename or default_output()
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


def _checked(documents: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The documents with their message-type lists generated, held to the rules."""
    rewritten = with_message_types(documents)
    problems = lint_schemas(rewritten)
    if problems:
        raise CodegenError("the schemas break the authoring rules:\n" + "\n".join(problems))
    return rewritten


def generate_source(documents: Mapping[str, Mapping[str, Any]]) -> str:
    """The formatted source of ``_generated.py`` for ``documents`` (file name -> schema).

    Raises:
        CodegenError: the schemas break an authoring rule, or ruff fails.
    """
    rewritten = _checked(documents)
    source = generate_models(rewritten, source_digest=_source_digest(rewritten))
    return format_source(source)


def generate_all(
    documents: Mapping[str, Mapping[str, Any]],
    *,
    schema_dir: Path,
    output: Path,
    message_type_output: Path,
) -> dict[Path, str]:
    """Every generated file's path and text: models, ``MessageType``, the rewritten schemas.

    Raises:
        CodegenError: the schemas break an authoring rule, or ruff fails.
    """
    rewritten = _checked(documents)
    digest = _source_digest(rewritten)
    outputs = {
        message_type_output: format_source(
            generate_message_type(rewritten, source_digest=digest),
            default_message_type_output(),
        ),
        output: format_source(generate_models(rewritten, source_digest=digest)),
    }
    for name in ("envelope.schema.json", "message.schema.json"):
        if name in rewritten:
            outputs[schema_dir / name] = schema_text(rewritten[name])
    return outputs


def main_generate(
    check: bool,
    *,
    schema_dir: Path | None = None,
    output: Path | None = None,
    message_type_output: Path | None = None,
) -> int:
    """Generate the message types and models, or with ``check`` verify that they are up to date.

    ``output`` is the models file, ``message_type_output`` the ``MessageType``
    module; the envelope and ``message.schema.json`` are rewritten in
    ``schema_dir``. Returns the process exit status: 0 when the files were
    written or are up to date; 1 when the schemas break an authoring rule,
    or (with ``check``) a file on disk differs from what the schemas
    generate, in which case a unified diff is printed. Never raises for
    those conditions.
    """
    schema_dir = schema_dir or default_schema_dir()
    output = output or default_output()
    message_type_output = message_type_output or default_message_type_output()
    try:
        outputs = generate_all(
            load_schemas(schema_dir),
            schema_dir=schema_dir,
            output=output,
            message_type_output=message_type_output,
        )
    except CodegenError as error:
        print(f"tools.codegen: {error}", file=sys.stderr)
        return 1
    stale = {
        path: text
        for path, text in outputs.items()
        if (path.read_text("utf-8") if path.exists() else "") != text
    }
    if check:
        if not stale:
            print(f"{', '.join(path.name for path in outputs)}: up to date with {schema_dir}")
            return 0
        for path, text in stale.items():
            current = path.read_text("utf-8") if path.exists() else ""
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    fromfile=f"{path} (on disk)",
                    tofile=f"{path} (generated from {schema_dir})",
                )
            )
        names = ", ".join(path.name for path in stale)
        print(
            f"{names}: stale; run `python -m tools.codegen` and commit the result",
            file=sys.stderr,
        )
        return 1
    for path, text in stale.items():
        path.write_text(text, "utf-8")
        print(f"wrote {path}")
    if not stale:
        print("already up to date")
    return 0
