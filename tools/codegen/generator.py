"""Translate the protocol's JSON Schemas into pydantic model source.

The translation is exact for the subset of JSON Schema that
``schemas/DESIGN-NOTES.md`` allows, and :func:`lint_schemas` refuses
everything outside it, so that a payload the schemas accept is exactly a
payload the models accept (the parity tests check this on every example and
vector):

=================================  ==================================================
schema                             model
=================================  ==================================================
object, ``additionalProperties``   class deriving ``VRMModel`` (``extra="forbid"``)
  false
map (``additionalProperties``       ``dict[key, value]``; ``propertyNames`` constrains
  schema, ``propertyNames``)        the key
string                             ``JsonStr`` + ``StringConstraints``; ``format`` by
                                   ``conforms_to``; patterns in the ECMA form
integer, ``minimum``/``maximum``   ``Annotated[int, json_int(ge=, le=)]`` (both bounds
                                   required, within ±(2**53 - 1))
boolean                            ``JsonBool``
``enum``/``const``                 ``Literal[...]``
array                              ``tuple[item, ...]`` + ``Field(min_length=,
                                   max_length=)``; ``uniqueItems`` by ``unique_items``
``oneOf`` of distinct JSON types   ``A | B``
``$ref``                           the referenced definition's name
=================================  ==================================================
"""

from __future__ import annotations

import copy
import keyword
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jinja2
from pydantic import BaseModel

from vrm_protocol.canonical import MAX_SAFE_INTEGER
from vrm_protocol.models._formats import (
    FORMAT_CHECKS,
    UnsupportedPatternError,
    translate_pattern,
)

__all__ = [
    "NOT_MESSAGE_SCHEMAS",
    "CodegenError",
    "generate_models",
    "lint_schemas",
    "member_name",
    "message_types",
    "with_message_types",
]


class CodegenError(Exception):
    """The schemas cannot be translated (they break an authoring rule) or ruff failed."""


_ENVELOPE: Final = "envelope.schema.json"
_COMMON: Final = "common.schema.json"
_UNION: Final = "message.schema.json"
_ATTESTATION: Final = "attestation.schema.json"
_SUFFIX: Final = ".schema.json"
#: The schema files that are not message types (schemas/DESIGN-NOTES.md, "Files").
#: Every other file is a message type's: ``<message-type>.schema.json``.
NOT_MESSAGE_SCHEMAS: Final = frozenset({_COMMON, _ENVELOPE, _UNION, _ATTESTATION})
_MESSAGE_TYPE_NAME: Final = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")

_ANNOTATIONS: Final = frozenset({"title", "description", "$comment", "examples"})
_ALLOWED: Final = _ANNOTATIONS | frozenset(
    {
        "$schema",
        "$id",
        "$ref",
        "$defs",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "propertyNames",
        "unevaluatedProperties",
        "enum",
        "const",
        "pattern",
        "format",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "oneOf",
    }
)
_JSON_TYPES: Final = frozenset({"string", "integer", "boolean", "object", "array"})
#: Names a field may not take: Python keywords and pydantic's own attributes.
_RESERVED: Final = frozenset(keyword.kwlist) | frozenset(dir(BaseModel))


# -- names --------------------------------------------------------------------------------------


def pascal_case(text: str) -> str:
    """``partyId`` -> ``PartyId``, ``personal-rfi`` -> ``PersonalRfi``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def field_name(member: str) -> str:
    """The Python name of a JSON member: snake_case, never a keyword (``from`` -> ``from_``)."""
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", member).replace("-", "_").lower()
    if not name.isidentifier():
        raise CodegenError(f"member name {member!r} has no Python spelling")
    return name + "_" if name in _RESERVED else name


# -- literals -----------------------------------------------------------------------------------


def _escape(text: str) -> str:
    out: list[str] = []
    for char in text:
        if char in '\\"':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def py_str(text: str, *, chunk: int = 60, words: bool = False) -> str:
    """A Python string literal for ``text``; a long one as parenthesised implicit concatenation.

    Long literals are split (by escaped length) so that every line of the
    formatted output stays within the project's line length; ruff keeps the
    pieces apart or joins those that fit.
    """
    escaped = _escape(text)
    if len(escaped) <= chunk:
        return f'"{escaped}"'
    if words:
        pieces = textwrap.wrap(
            text,
            chunk,
            expand_tabs=False,
            replace_whitespace=False,
            drop_whitespace=False,
            break_long_words=True,
            break_on_hyphens=False,
        )
        return "(" + " ".join(f'"{_escape(piece)}"' for piece in pieces) + ")"
    literals: list[str] = []
    current = ""
    for char in text:
        rendered = _escape(char)
        if len(current) + len(rendered) > chunk:
            literals.append(f'"{current}"')
            current = ""
        current += rendered
    literals.append(f'"{current}"')
    return "(" + " ".join(literals) + ")"


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return f'"{_escape(value)}"'
    raise CodegenError(f"enum/const value {value!r}: only strings, integers, booleans")


def docstring(text: str, indent: str) -> str:
    """A docstring block wrapped to the line length, indented by ``indent``."""
    width = 96 - len(indent)
    paragraphs = [
        textwrap.fill(paragraph, width, break_long_words=False, break_on_hyphens=False)
        for paragraph in text.split("\n\n")
    ]
    body = "\n\n".join(paragraphs).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = [*body.split("\n")]
    if len(lines) == 1 and len(lines[0]) + 6 <= width:
        return f'{indent}"""{lines[0]}"""'
    rendered = "\n".join((indent + line) if line else "" for line in lines)
    return f'{indent}"""{rendered.lstrip()}\n{indent}"""'


# -- the message types ----------------------------------------------------------------------------


def message_types(documents: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The message types the schemas define, in the order of the envelope's ``type`` enum.

    A message type is a schema file ``<message-type>.schema.json`` other than
    the shared ones (:data:`NOT_MESSAGE_SCHEMAS`). The types keep the order the
    envelope's enum gives them (the five core documents first, then the
    replies); a type new to the enum is appended (in file-name order), a type
    whose file is gone is dropped. Never raises.
    """
    files = sorted(
        name.removesuffix(_SUFFIX)
        for name in documents
        if name.endswith(_SUFFIX) and name not in NOT_MESSAGE_SCHEMAS
    )
    envelope = documents.get(_ENVELOPE, {})
    current = envelope.get("properties", {}).get("type", {}).get("enum", [])
    kept = [value for value in current if isinstance(value, str) and value in files]
    return list(dict.fromkeys(kept)) + [name for name in files if name not in kept]


def member_name(message_type: str) -> str:
    """The ``MessageType`` member of a message type: ``personal-rfi`` -> ``PERSONAL_RFI``."""
    return message_type.upper().replace("-", "_")


def with_message_types(
    documents: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """``documents`` with the lists of message types rewritten from the schema files.

    The envelope's ``type`` enum and ``message.schema.json``'s ``oneOf`` are
    generated (:func:`message_types`); everything else is kept as it is. The
    documents given are not changed.
    """
    rewritten = {name: copy.deepcopy(dict(document)) for name, document in documents.items()}
    types = message_types(documents)
    envelope = rewritten.get(_ENVELOPE)
    if envelope is not None and isinstance(envelope.get("properties", {}).get("type"), dict):
        envelope["properties"]["type"]["enum"] = types
    union = rewritten.get(_UNION)
    if union is not None:
        union["oneOf"] = [{"$ref": f"{message_type}{_SUFFIX}"} for message_type in types]
    return rewritten


# -- lint ---------------------------------------------------------------------------------------


def _walk(node: Any, where: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """Every schema object under ``node`` with its location."""
    if not isinstance(node, Mapping):
        return
    yield where, node
    for key in ("properties", "$defs"):
        for name, child in (node.get(key) or {}).items():
            yield from _walk(child, f"{where}/{key}/{name}")
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(node.get(key), Mapping):
            yield from _walk(node[key], f"{where}/{key}")
    for index, child in enumerate(node.get("oneOf") or []):
        yield from _walk(child, f"{where}/oneOf/{index}")


def _json_types(node: Mapping[str, Any], documents: Mapping[str, Any], file: str) -> set[str]:
    """The JSON types a (simple) schema admits; used to check ``oneOf`` alternatives."""
    if "$ref" in node:
        target_file, target = _resolve(documents, file, node["$ref"])
        return _json_types(target, documents, target_file)
    if "type" in node:
        return {node["type"]}
    if "const" in node or "enum" in node:
        values = [node["const"]] if "const" in node else node["enum"]
        return {"string" if isinstance(value, str) else "other" for value in values}
    return set(_JSON_TYPES)


def lint_schemas(documents: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Breaches of the authoring rules (schemas/DESIGN-NOTES.md); empty when there are none."""
    problems: list[str] = []
    for file, document in sorted(documents.items()):
        for where, node in _walk(document, file + "#"):
            is_root = where == file + "#"
            for key in node:
                if key not in _ALLOWED:
                    problems.append(f"{where}: keyword {key!r} is outside the allowed subset")
            kind = node.get("type")
            if kind is not None and kind not in _JSON_TYPES:
                problems.append(f"{where}: type {kind!r} is not allowed (no number, no lists)")
            if kind == "integer" and not all(
                type(node.get(bound)) is int and abs(node[bound]) <= MAX_SAFE_INTEGER
                for bound in ("minimum", "maximum")
            ):
                # I-JSON (RFC 7493 §2.2): every peer's parser holds such an integer
                # exactly, and a model's payload is canonical JSON without a walk
                # over its numbers (vrm_protocol.codec.encode relies on it).
                problems.append(
                    f"{where}: an integer needs a minimum and a maximum within ±(2**53 - 1)"
                )
            if "format" in node and node["format"] not in FORMAT_CHECKS:
                problems.append(f"{where}: format {node['format']!r} is not one of the four")
            if isinstance(node.get("pattern"), str):
                try:
                    translate_pattern(node["pattern"], "python")
                except UnsupportedPatternError as error:
                    problems.append(f"{where}: {error}")
            if "oneOf" in node and file != _UNION:
                seen: set[str] = set()
                for alternative in node["oneOf"]:
                    try:
                        kinds = _json_types(alternative, documents, file)
                    except CodegenError as error:
                        problems.append(f"{where}: {error}")
                        continue
                    if kinds & seen:
                        problems.append(
                            f"{where}: oneOf alternatives must admit distinct JSON types"
                        )
                    seen |= kinds
            is_definition = "/$defs/" in where and where.rsplit("/", 2)[-2] == "$defs"
            if (is_root or is_definition) and not {"title", "description"} <= node.keys():
                problems.append(f"{where}: needs a title and a description")
            is_property = "/properties/" in where and where.rsplit("/", 2)[-2] == "properties"
            if is_property and "description" not in node:
                problems.append(f"{where}: a property needs a description")
            if kind == "object" and node.get("additionalProperties") is not False:
                is_map = isinstance(node.get("additionalProperties"), Mapping)
                is_open_body = file == _ENVELOPE and where == f"{file}#/properties/body"
                if "properties" in node or not (is_map or is_open_body):
                    problems.append(f"{where}: an object is closed or a map (spec §5.4)")
            has_siblings = "$ref" in node and not set(node) <= _ANNOTATIONS | {"$ref"}
            if has_siblings and not is_root:
                problems.append(f"{where}: $ref takes no sibling constraints")
    problems.extend(_lint_message_types(documents))
    return problems


def _lint_message_types(documents: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems: list[str] = [
        f"{name}: missing (schemas/DESIGN-NOTES.md, Files)"
        for name in sorted(NOT_MESSAGE_SCHEMAS - {_ATTESTATION} - set(documents))
    ]
    for message_type in message_types(documents):
        file = f"{message_type}{_SUFFIX}"
        document = documents[file]
        properties = document.get("properties", {})
        if _MESSAGE_TYPE_NAME.fullmatch(message_type) is None:
            problems.append(f"{file}: a message type is named in lowercase kebab-case")
        if document.get("$ref") != _ENVELOPE:
            problems.append(
                f"{file}: must $ref {_ENVELOPE} (every file but "
                f"{', '.join(sorted(NOT_MESSAGE_SCHEMAS))} is a message type's)"
            )
        if properties.get("type", {}).get("const") != message_type:
            problems.append(f"{file}: type must be const {message_type!r}")
        if "$ref" not in properties.get("body", {}):
            problems.append(f"{file}: body must $ref its body definition")
        if document.get("unevaluatedProperties") is not False:
            problems.append(f"{file}: needs unevaluatedProperties: false")
    return problems


# -- references ---------------------------------------------------------------------------------


def _resolve(
    documents: Mapping[str, Mapping[str, Any]], file: str, reference: str
) -> tuple[str, Mapping[str, Any]]:
    """The (file, node) a relative ``$ref`` names."""
    target_file, _, fragment = reference.partition("#")
    target_file = target_file or file
    if target_file not in documents:
        raise CodegenError(f"{file}: $ref {reference!r} names no schema file")
    node: Any = documents[target_file]
    for part in [part for part in fragment.split("/") if part]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise CodegenError(f"{file}: $ref {reference!r} does not resolve")
        node = node[part]
    return target_file, node


# -- generation ---------------------------------------------------------------------------------


@dataclass
class _Field:
    name: str
    alias: str | None
    type_expr: str
    required: bool
    description: str


@dataclass
class _Definition:
    kind: str  # "class" or "alias"
    name: str
    docstring: str
    type_expr: str = ""
    base: str = "VRMModel"
    fields: list[_Field] = field(default_factory=list)


@dataclass
class _MessageEntry:
    class_name: str
    enum_member: str
    value: str = ""
    title: str = ""


class _Generator:
    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self.documents = documents
        self.definitions: list[_Definition] = []
        self.names: dict[tuple[str, str], str] = {}
        self.taken: set[str] = set()
        self.in_progress: set[tuple[str, str]] = set()
        self.typing: set[str] = {"TypeAlias", "Annotated", "Final"}
        self.pydantic: set[str] = {"Field"}
        self.base: set[str] = {"VRMModel", "NotNull"}
        self.messages: list[_MessageEntry] = []

    # names

    def _claim(self, preferred: str, fallback_prefix: str) -> str:
        for candidate in (preferred, fallback_prefix + preferred):
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate
        raise CodegenError(f"two definitions want the name {preferred!r}")

    # definitions

    def define(self, file: str, pointer: str) -> str:
        """The name of the definition at ``file#pointer``, generating it on first use."""
        key = (file, pointer)
        if key in self.names:
            if key in self.in_progress:
                raise CodegenError(f"{file}#{pointer}: recursive definitions are not supported")
            return self.names[key]
        _, node = _resolve(self.documents, file, "#" + pointer)
        name = self._claim(pascal_case(pointer.rsplit("/", 1)[-1]), pascal_case(file[:-12]))
        self.names[key] = name
        self.in_progress.add(key)
        self._emit(file, node, name)
        self.in_progress.discard(key)
        return name

    def _emit(
        self, file: str, node: Mapping[str, Any], name: str, *, base: str = "VRMModel"
    ) -> None:
        text = _doc(node)
        if node.get("type") == "object" and "properties" in node:
            fields = self._fields(file, node, name)
            self.definitions.append(_Definition("class", name, text, base=base, fields=fields))
        else:
            type_expr = self.type_expr(file, node, name)
            self.definitions.append(_Definition("alias", name, text, type_expr=type_expr))

    def _fields(
        self,
        file: str,
        node: Mapping[str, Any],
        owner: str,
        overrides: Mapping[str, str] | None = None,
    ) -> list[_Field]:
        required = set(node.get("required", []))
        fields: list[_Field] = []
        for member, schema in node["properties"].items():
            if overrides and member in overrides:
                type_expr = overrides[member]
            else:
                type_expr = self.type_expr(file, schema, owner + pascal_case(member))
            python_name = field_name(member)
            is_required = member in required
            if not is_required:
                type_expr = f"Annotated[{type_expr} | None, NotNull]"
            fields.append(
                _Field(
                    name=python_name,
                    alias=member if python_name != member else None,
                    type_expr=type_expr,
                    required=is_required,
                    description=str(schema.get("description", "")),
                )
            )
        return fields

    def type_expr(self, file: str, node: Mapping[str, Any], context: str) -> str:
        """The Python type expression of a schema; ``context`` names inline classes."""
        if "$ref" in node:
            target_file, _ = _resolve(self.documents, file, node["$ref"])
            pointer = node["$ref"].partition("#")[2]
            return self.define(target_file, pointer)
        if "const" in node:
            self.typing.add("Literal")
            return f"Literal[{_literal(node['const'])}]"
        if "enum" in node:
            self.typing.add("Literal")
            return f"Literal[{', '.join(_literal(value) for value in node['enum'])}]"
        if "oneOf" in node:
            return " | ".join(
                self.type_expr(file, alternative, f"{context}Option{index}")
                for index, alternative in enumerate(node["oneOf"], start=1)
            )
        kind = node.get("type")
        if kind == "string":
            return self._string(node, "JsonStr")
        if kind == "integer":
            bounds = [
                f"{argument}={node[keyword_]}"
                for keyword_, argument in (("minimum", "ge"), ("maximum", "le"))
                if keyword_ in node
            ]
            if not bounds:
                self.base.add("JsonInt")
                return "JsonInt"
            self.base.add("json_int")
            return f"Annotated[int, json_int({', '.join(bounds)})]"
        if kind == "boolean":
            self.base.add("JsonBool")
            return "JsonBool"
        if kind == "array":
            item = self.type_expr(file, node.get("items", {}), context + "Item")
            metadata: list[str] = []
            lengths = [
                f"{argument}={node[keyword_]}"
                for keyword_, argument in (("minItems", "min_length"), ("maxItems", "max_length"))
                if keyword_ in node
            ]
            if lengths:
                metadata.append(f"Field({', '.join(lengths)})")
            if node.get("uniqueItems"):
                self.pydantic.add("AfterValidator")
                self.base.add("unique_items")
                metadata.append("AfterValidator(unique_items)")
            sequence = f"tuple[{item}, ...]"
            return f"Annotated[{sequence}, {', '.join(metadata)}]" if metadata else sequence
        if kind == "object":
            if "properties" in node:
                name = self._claim(context, "")
                self._emit(file, node, name)
                return name
            values = node.get("additionalProperties")
            key = self._string(node.get("propertyNames", {}), "JsonStr")
            value = (
                self.type_expr(file, values, context + "Value")
                if isinstance(values, Mapping)
                else self._any()
            )
            return f"dict[{key}, {value}]"
        if kind is None and set(node) <= _ANNOTATIONS:
            return self._any()
        raise CodegenError(f"{file}: cannot translate schema {dict(node)!r}")

    def _any(self) -> str:
        self.pydantic.add("JsonValue")
        return "JsonValue"

    def _string(self, node: Mapping[str, Any], base: str) -> str:
        self.base.add(base)
        constraints: list[str] = []
        if "minLength" in node:
            constraints.append(f"min_length={node['minLength']}")
        if "maxLength" in node:
            constraints.append(f"max_length={node['maxLength']}")
        if "pattern" in node:
            constraints.append(f"pattern={py_str(translate_pattern(node['pattern'], 'ecma'))}")
        metadata: list[str] = []
        if constraints:
            self.pydantic.add("StringConstraints")
            metadata.append(f"StringConstraints({', '.join(constraints)})")
        if "format" in node:
            self.base.add("conforms_to")
            metadata.append(f"conforms_to({_literal(node['format'])})")
        return f"Annotated[{base}, {', '.join(metadata)}]" if metadata else base

    # the files

    def run(self) -> None:
        common = self.documents.get(_COMMON, {})
        for name in common.get("$defs", {}):
            self.define(_COMMON, f"/$defs/{name}")
        envelope = self.documents[_ENVELOPE]
        for name in envelope.get("$defs", {}):
            self.define(_ENVELOPE, f"/$defs/{name}")
        types = message_types(self.documents)
        self._base_message(envelope, types)
        message_files = {f"{message_type}{_SUFFIX}" for message_type in types}
        for file, document in self.documents.items():
            if file in message_files or file in (_COMMON, _ENVELOPE, _UNION):
                continue
            for name in document.get("$defs", {}):
                self.define(file, f"/$defs/{name}")
            if document.get("type") == "object" and "properties" in document:
                name = self._claim(pascal_case(str(document.get("title", file[:-12]))), "")
                self._emit(file, document, name)
        for message_type in types:
            self._message(message_type)

    def _base_message(self, envelope: Mapping[str, Any], types: list[str]) -> None:
        self.taken.add("BaseMessage")
        self.typing.add("Literal")
        fields = self._fields(
            _ENVELOPE,
            envelope,
            "Envelope",
            overrides={
                "type": f"Literal[{', '.join(_literal(value) for value in types)}]",
                "body": "VRMModel",
            },
        )
        text = _doc(envelope) + (
            "\n\nThe base of every message model: each message type narrows "
            "`type` to its own value and `body` to its own body model."
        )
        self.definitions.append(_Definition("class", "BaseMessage", text, fields=fields))

    def _message(self, message_type: str) -> None:
        file = f"{message_type}{_SUFFIX}"
        document = self.documents[file]
        name = self._claim(pascal_case(message_type) + "Message", "")
        fields = self._fields(
            file, {"properties": document["properties"], "required": ["type", "body"]}, name
        )
        self.definitions.append(
            _Definition("class", name, _doc(document), base="BaseMessage", fields=fields)
        )
        title = str(document.get("title", message_type)).strip().rstrip(".")
        self.messages.append(_MessageEntry(name, member_name(message_type), message_type, title))


def _doc(node: Mapping[str, Any]) -> str:
    title = str(node.get("title", "")).strip()
    description = str(node.get("description", "")).strip()
    if title and description:
        return (
            f"{title}.\n\n{description}" if not title.endswith(".") else f"{title}\n\n{description}"
        )
    return title or description or "(undocumented)"


def _field_description(text: str, indent: int) -> str:
    # `<indent>description="...",` on one line when it fits, else wrapped pieces.
    room = 100 - indent - len('description="",')
    if len(_escape(str(text))) <= room:
        return f'"{_escape(str(text))}"'
    return py_str(str(text), chunk=64, words=True)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("tools.codegen", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=(), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["pystr"] = lambda text: py_str(str(text))
    environment.filters["pystr_wrapped"] = _field_description
    environment.globals["docstring"] = docstring
    return environment


def _sort_imports(names: Iterable[str]) -> list[str]:
    # isort's order-by-type: CONSTANTS, then Classes, then functions.
    def rank(name: str) -> tuple[int, str]:
        if name.isupper():
            return (0, name)
        return (1 if name[:1].isupper() else 2, name)

    return sorted(set(names), key=rank)


def generate_models(documents: Mapping[str, Mapping[str, Any]], *, source_digest: str) -> str:
    """The (unformatted) source of ``_generated.py``.

    Raises:
        CodegenError: a schema cannot be translated.
    """
    generator = _Generator(documents)
    generator.run()
    exports = _sort_imports(
        [definition.name for definition in generator.definitions] + ["MESSAGE_MODELS", "Message"]
    )
    template = _environment().get_template("models.py.jinja")
    return template.render(
        source_digest=source_digest,
        typing_imports=_sort_imports(generator.typing),
        pydantic_imports=_sort_imports(generator.pydantic),
        base_imports=_sort_imports(generator.base),
        exports=exports,
        definitions=generator.definitions,
        messages=generator.messages,
    )


def generate_message_type(documents: Mapping[str, Mapping[str, Any]], *, source_digest: str) -> str:
    """The (unformatted) source of ``vrm_protocol/_generated_vocabulary.py``: ``MessageType``."""
    entries = [
        _MessageEntry(
            pascal_case(message_type) + "Message",
            member_name(message_type),
            message_type,
            str(documents[f"{message_type}{_SUFFIX}"].get("title", message_type)).strip(),
        )
        for message_type in message_types(documents)
    ]
    template = _environment().get_template("message_type.py.jinja")
    return template.render(source_digest=source_digest, messages=entries)
