"""Schemas and examples as the specification shows them.

* Field tables: one table per object definition (member, type, required,
  constraints, description), generated from ``schemas/*.schema.json`` so that
  the specification cannot disagree with the normative schemas.
* Examples: every ``schemas/examples/<type>.<name>.json`` is validated against
  its type's schema, with formats enforced, while the specification is built;
  one failing example fails the build.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema import Draft202012Validator, FormatChecker

from tools.specgen.errors import SpecBuildError
from tools.specgen.markdown import table

__all__ = [
    "SCHEMA_SUFFIX",
    "Example",
    "SchemaSet",
    "def_anchor",
    "load_examples",
    "load_schemas",
]

SCHEMA_SUFFIX: Final = ".schema.json"
_TOP: Final = ""  # the name of a schema's top-level object in its anchors


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """The schema documents of ``schemas/``, by file stem ("offer", "common")."""

    documents: Mapping[str, Mapping[str, Any]]

    def get(self, stem: str) -> Mapping[str, Any]:
        """The schema document ``<stem>.schema.json``.

        Raises:
            SpecBuildError: there is no such schema.
        """
        try:
            return self.documents[stem]
        except KeyError:
            raise SpecBuildError(f"schemas/{stem}{SCHEMA_SUFFIX} does not exist") from None

    def registry(self) -> referencing.Registry[Any]:
        """A reference registry of every schema under its ``$id`` (nothing is fetched)."""
        resources = [
            (str(document["$id"]), referencing.jsonschema.DRAFT202012.create_resource(document))
            for document in self.documents.values()
            if "$id" in document
        ]
        return referencing.Registry().with_resources(resources)

    def field_tables(self, stem: str, prose: Callable[[str], str] = str) -> str:
        """Markdown: the field tables of every object definition of one schema.

        For a message schema the body definition comes first; for the envelope
        and the attestation claims, the top-level object does. Descriptions
        pass through ``prose`` (which links "§N" references).

        Raises:
            SpecBuildError: the schema does not exist.
        """
        document = self.get(stem)
        parts: list[str] = []
        definitions = dict(document.get("$defs", {}))
        if "properties" in document and stem in {"envelope", "attestation"}:
            parts.append(self._object_table(stem, _TOP, document, prose))
        body_first = sorted(definitions, key=lambda name: not name.endswith("Body"))
        scalars: list[tuple[str, Mapping[str, Any]]] = []
        for name in body_first:
            definition = definitions[name]
            if _is_object(definition):
                parts.append(self._object_table(stem, name, definition, prose))
            else:
                scalars.append((name, definition))
        if scalars:
            parts.append(self._scalar_table(stem, scalars, prose))
        return "\n\n".join(parts)

    def _object_table(
        self, stem: str, name: str, schema: Mapping[str, Any], prose: Callable[[str], str]
    ) -> str:
        title = str(schema.get("title") or name or stem)
        label = name or f"{stem}{SCHEMA_SUFFIX}"
        heading = (
            f'<a id="{def_anchor(stem, name)}"></a>**{title}** (`{label}`): '
            f"{prose(_one_line(str(schema.get('description', ''))))}"
        )
        rows = [
            [
                f"`{path}`",
                _type_of(stem, member),
                "yes" if required else "no",
                _constraints(member),
                prose(_one_line(str(member.get("description", "")))),
            ]
            for path, member, required in _members(schema)
        ]
        if not rows:
            return heading
        return (
            heading
            + "\n\n"
            + table(
                ["Member", "Type", "Required", "Constraints", "Description"],
                rows,
                f"Members of {title}",
            )
        )

    def _scalar_table(
        self,
        stem: str,
        definitions: Sequence[tuple[str, Mapping[str, Any]]],
        prose: Callable[[str], str],
    ) -> str:
        rows = [
            [
                f'<a id="{def_anchor(stem, name)}"></a>`{name}`',
                _type_of(stem, definition),
                _constraints(definition),
                prose(_one_line(str(definition.get("description", "")))),
            ]
            for name, definition in definitions
        ]
        return "**Value types**\n\n" + table(
            ["Name", "Type", "Constraints", "Description"], rows, f"Value types of {stem}"
        )


def def_anchor(stem: str, name: str) -> str:
    """The HTML id of the table of definition ``name`` of schema ``stem``."""
    return f"schema-{stem}" + (f"-{name}" if name else "")


def _is_object(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _members(
    schema: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(dotted path, member schema, required) for every member, flattening inline objects."""
    required = set(schema.get("required", ()))
    for name, member in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        yield path, member, name in required
        if _is_object(member):
            yield from _members(member, path + ".")
        items = member.get("items")
        if member.get("type") == "array" and isinstance(items, Mapping) and _is_object(items):
            yield from _members(items, path + "[].")


def _reference(stem: str, ref: str) -> str:
    """A Markdown link for a ``$ref`` to a definition."""
    target, _, pointer = ref.partition("#")
    target_stem = target.removesuffix(SCHEMA_SUFFIX) if target else stem
    name = pointer.rsplit("/", 1)[-1] if pointer.startswith("/$defs/") else ""
    label = name or target_stem
    return f"[{label}](#{def_anchor(target_stem, name)})"


def _type_of(stem: str, schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return _reference(stem, str(schema["$ref"]))
    if "oneOf" in schema:
        return " or ".join(_type_of(stem, choice) for choice in schema["oneOf"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        inner = _type_of(stem, items) if isinstance(items, Mapping) else "any"
        if isinstance(items, Mapping) and _is_object(items):
            inner = "object"
        return f"array of {inner}"
    if kind == "object":
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping) and "properties" not in schema:
            return "map of " + (_type_of(stem, additional) if additional.get("type") else "any")
        return "object"
    if "const" in schema and kind is None:
        return "string" if isinstance(schema["const"], str) else "constant"
    if kind is None and "enum" in schema:
        return "string"
    return str(kind) if kind is not None else "any"


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    # A code span cannot hold its own delimiter; the patterns here never need one.
    return f"`{text}`"


def _constraints(schema: Mapping[str, Any]) -> str:
    found: list[str] = []
    if "const" in schema:
        found.append(f"always {_code(schema['const'])}")
    if "enum" in schema:
        found.append("one of " + ", ".join(_code(value) for value in schema["enum"]))
    if "format" in schema:
        found.append(f"format {schema['format']}")
    if "pattern" in schema:
        found.append(f"pattern {_code(schema['pattern'])}")
    bounds = (
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    )
    found.extend(f"{label} {schema[key]}" for key, label in bounds if key in schema)
    if schema.get("uniqueItems"):
        found.append("unique items")
    names = schema.get("propertyNames")
    if isinstance(names, Mapping) and "pattern" in names:
        found.append(f"names match {_code(names['pattern'])}")
    items = schema.get("items")
    if isinstance(items, Mapping) and "$ref" not in items and not _is_object(items):
        inner = _constraints(items)
        if inner:
            found.append(f"each item: {inner}")
    return "; ".join(found)


def load_schemas(schemas_dir: Path) -> SchemaSet:
    """Read every ``*.schema.json`` of ``schemas_dir``.

    Raises:
        SpecBuildError: the directory is missing or a schema is not JSON.
    """
    if not schemas_dir.is_dir():
        raise SpecBuildError(f"{schemas_dir} does not exist")
    documents: dict[str, Mapping[str, Any]] = {}
    paths = sorted(schemas_dir.glob("*" + SCHEMA_SUFFIX))
    # The binding's and the reports' schemas, as "binding/<stem>", "reports/<stem>".
    for folder in ("binding", "reports"):
        paths += sorted((schemas_dir / folder).glob("*" + SCHEMA_SUFFIX))
    for path in paths:
        stem = path.relative_to(schemas_dir).as_posix().removesuffix(SCHEMA_SUFFIX)
        try:
            documents[stem] = json.loads(path.read_text("utf-8"))
        except ValueError as exc:
            raise SpecBuildError(f"{path}: not JSON: {exc}") from exc
    return SchemaSet(documents)


@dataclass(frozen=True, slots=True)
class Example:
    """One validated example payload."""

    name: str  # file name without ".json"
    message_type: str
    payload: Mapping[str, Any]


def load_examples(schemas: SchemaSet, examples_dir: Path) -> list[Example]:
    """Read and validate every example; sorted by file name.

    Raises:
        SpecBuildError: an example is not JSON, names a type without a schema,
            disagrees with its file name about its type, or does not validate.
    """
    examples: list[Example] = []
    if not examples_dir.is_dir():
        return examples
    registry = schemas.registry()
    checker = FormatChecker()
    for path in sorted(examples_dir.glob("*.json")):
        message_type = path.name.split(".", 1)[0]
        try:
            payload = json.loads(path.read_text("utf-8"))
        except ValueError as exc:
            raise SpecBuildError(f"{path}: not JSON: {exc}") from exc
        schema = schemas.get(message_type)
        if isinstance(payload, Mapping) and payload.get("type") != message_type:
            raise SpecBuildError(f"{path}: file name says {message_type}, payload says otherwise")
        validator = Draft202012Validator(schema, registry=registry, format_checker=checker)
        try:
            faults = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        except referencing.exceptions.Unresolvable as exc:
            raise SpecBuildError(f"{path}: unresolvable reference {exc}") from exc
        if faults:
            details = "; ".join(
                f"{'/'.join(str(p) for p in fault.absolute_path) or '(root)'}: {fault.message}"
                for fault in faults[:5]
            )
            raise SpecBuildError(f"example {path.name} does not validate: {details}")
        examples.append(Example(path.name.removesuffix(".json"), message_type, payload))
    return examples
