"""The immutable registry of the protocol's JSON Schemas (spec §5, §6).

The schemas in ``schemas/`` are the single normative source of message shape.
This module loads them from package data, resolves references between them
locally (nothing is ever fetched: the schemas' ``$id`` URLs identify, they do
not locate), and validates payloads with two engines:

* a compiled validator (``jsonschema_rs``) answers yes or no on the hot path;
* the reference validator (``jsonschema``'s Draft 2020-12 implementation)
  runs only when the answer is no, to name the fault precisely: a message and
  the JSON Pointer (RFC 6901) of the offending member.

Both enforce the formats ``date-time``, ``date``, ``uri`` and ``email`` and
give patterns their ECMA-262 meaning, through the shared definitions in
:mod:`vrm_protocol.models._formats`, so that they cannot disagree.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import jsonschema_rs
import referencing
import referencing.exceptions
import referencing.jsonschema

from vrm_protocol.errors import ErrorCode, RemoteProtocolError, VRMError
from vrm_protocol.models._formats import FORMAT_CHECKS, translate_pattern
from vrm_protocol.vocabulary import SUPPORTED_VERSIONS, MessageType

__all__ = [
    "BINDING_FOLDER",
    "REPORTS_FOLDER",
    "SCHEMA_SUFFIX",
    "SchemaRegistry",
    "SchemaRegistryError",
    "default_registry",
    "json_pointer",
]

#: Every schema file's name ends with this (schemas/DESIGN-NOTES.md, "Files").
SCHEMA_SUFFIX: Final = ".schema.json"
#: The folder of the HTTP binding's schemas (discovery, JWKS, poll token, mailbox
#: page, problem details, test driver, issuer trust; spec §11, §14.3): not
#: messages, so no models are generated from them. Registered as ``binding/<file>``.
BINDING_FOLDER: Final = "binding"
#: The folder of the reports' schemas (the requirements export, implementation
#: reports; spec §14.4). Registered as ``reports/<file>``.
REPORTS_FOLDER: Final = "reports"
_SUBFOLDERS: Final = (BINDING_FOLDER, REPORTS_FOLDER)
#: At most this many faults are listed in a rejection's ``errors`` member.
_MAX_LISTED_FAULTS: Final = 10
#: Fault descriptions are cut to this length: they quote the offending value.
_MAX_DETAIL: Final = 300
#: The wire values of the message types, built once (not per message).
_MESSAGE_TYPES: Final = frozenset(message_type.value for message_type in MessageType)


class SchemaRegistryError(VRMError):
    """The schema set itself is broken (a missing file, a dangling reference).

    A defect of the build, never of a message: it is raised when the registry
    is built, not when a message is validated.
    """


# -- no network ---------------------------------------------------------------------------------


def _refuse_retrieval(uri: str) -> referencing.Resource[Any]:
    """The reference registry's retrieve hook: nothing is ever fetched."""
    # NoSuchResource is an attrs class mypy cannot see the constructor of.
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


def _refuse_compiled_retrieval(uri: str) -> Any:
    """The compiled validator's retriever: only the local resources exist."""
    raise ValueError(f"{uri} is not one of the protocol's schemas; nothing is fetched")


# -- the reference validator, with ECMA-262 patterns ---------------------------------------------
#
# ``jsonschema`` is imported on first use only: importing it costs about a
# second (its optional format checkers build parsers at import), and a
# receiver needs the reference validator only to explain a rejection.


@cache
def _python_pattern(pattern: str) -> Any:
    import re

    return re.compile(translate_pattern(pattern, "python"))


def _on_strings_only(check: Callable[[str], bool]) -> Callable[[Any], bool]:
    """A format check that passes every value but a string, as JSON Schema 2020-12 §7.1 says.

    ``jsonschema`` hands a format check every instance whatever its type (its
    own checks ignore non-strings); the shared checks take strings only. A
    null where a timestamp belongs is a type fault, reported as such.
    """

    def checked(instance: Any) -> bool:
        return not isinstance(instance, str) or check(instance)

    return checked


@dataclass(frozen=True, slots=True)
class _ReferenceEngine:
    validator_class: Any
    format_checker: Any
    best_match: Callable[..., Any]


@cache
def _reference_engine() -> _ReferenceEngine:
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import ValidationError, best_match
    from jsonschema.validators import extend

    def ecma_pattern(
        validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[Any]:
        """The ``pattern`` keyword with its ECMA-262 meaning (JSON Schema 2020-12 §6.3.3)."""
        if validator.is_type(instance, "string") and not _python_pattern(pattern).search(instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    checker = FormatChecker(formats=())
    for name, check in FORMAT_CHECKS.items():
        checker.checks(name)(_on_strings_only(check))
    return _ReferenceEngine(
        validator_class=extend(Draft202012Validator, {"pattern": ecma_pattern}),
        format_checker=checker,
        best_match=best_match,
    )


def _ecma_patterns(node: Any) -> Any:
    """A copy of a schema with every ``pattern`` in the engine-neutral ECMA form."""
    if isinstance(node, dict):
        return {
            key: (
                translate_pattern(value, "ecma")
                if key == "pattern" and isinstance(value, str)
                else _ecma_patterns(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_ecma_patterns(item) for item in node]
    return node


# -- paths --------------------------------------------------------------------------------------


def json_pointer(parts: Iterable[str | int]) -> str:
    """The RFC 6901 JSON Pointer of a path (``["body", "items", 0]`` -> ``/body/items/0``)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


# -- the registry -------------------------------------------------------------------------------


class SchemaRegistry:
    """The protocol's schemas and their validators; immutable once built.

    Build it once (:func:`default_registry`) and share it: construction
    compiles every message schema, validation is then cheap and thread-safe.
    """

    __slots__ = (
        "_compiled",
        "_documents",
        "_ids",
        "_lock",
        "_reference",
        "_resources",
    )

    _documents: Mapping[str, Mapping[str, Any]]
    _ids: Mapping[str, str]
    _compiled: Mapping[str, Any]
    _reference: dict[str, Any]
    _resources: referencing.Registry[Any]
    _lock: threading.Lock

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        """Build a registry from schema documents keyed by file name (``offer.schema.json``).

        Message types are the files named ``<message-type>.schema.json`` for a
        :class:`~vrm_protocol.vocabulary.MessageType`; other files (common
        definitions, the envelope, attestation claims) are referenced or
        validated by name.

        Raises:
            SchemaRegistryError: a document lacks ``$id``, two share one, or a
                reference cannot be resolved among the documents.
        """
        owned = {name: copy.deepcopy(dict(document)) for name, document in documents.items()}
        ids: dict[str, str] = {}
        for name, document in owned.items():
            schema_id = document.get("$id")
            if not isinstance(schema_id, str):
                raise SchemaRegistryError(f"{name}: a schema needs an '$id'")
            if schema_id in ids.values():
                raise SchemaRegistryError(f"{name}: '$id' {schema_id} is used twice")
            ids[name] = schema_id
        registry: referencing.Registry[Any] = referencing.Registry(
            retrieve=_refuse_retrieval  # type: ignore[call-arg]
        ).with_resources(
            (
                ids[name],
                referencing.jsonschema.DRAFT202012.create_resource(document),
            )
            for name, document in owned.items()
        )
        formats = dict(FORMAT_CHECKS)
        compiled: dict[str, Any] = {}
        try:
            compiled_registry = jsonschema_rs.Registry(
                [(ids[name], _ecma_patterns(document)) for name, document in owned.items()],
                retriever=_refuse_compiled_retrieval,
            )
            registry = registry.crawl()
            for name, document in owned.items():
                compiled[name] = jsonschema_rs.validator_for(
                    _ecma_patterns(document),
                    validate_formats=True,
                    formats=formats,
                    registry=compiled_registry,
                    retriever=_refuse_compiled_retrieval,
                    base_uri=ids[name],
                )
        except (ValueError, referencing.exceptions.Unresolvable) as error:
            raise SchemaRegistryError(f"the schemas do not compile: {error}") from error
        object.__setattr__(self, "_documents", MappingProxyType(owned))
        object.__setattr__(self, "_ids", MappingProxyType(ids))
        object.__setattr__(self, "_compiled", MappingProxyType(compiled))
        object.__setattr__(self, "_resources", registry)
        # A cache of reference validators, filled on first use; not state a caller can see.
        object.__setattr__(self, "_reference", {})
        object.__setattr__(self, "_lock", threading.Lock())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # -- construction helpers --

    @classmethod
    def from_directory(cls, directory: Path) -> SchemaRegistry:
        """Load every ``*.schema.json`` of ``directory``, and of its ``binding/``
        and ``reports/`` folders as ``binding/<file>`` and ``reports/<file>``.

        Raises:
            SchemaRegistryError: as the constructor, or a file is not JSON.
        """
        entries = [
            (path.name, path.read_bytes())
            for path in directory.iterdir()
            if path.name.endswith(SCHEMA_SUFFIX)
        ]
        for name in _SUBFOLDERS:
            folder = directory / name
            if folder.is_dir():
                entries += [
                    (f"{name}/{path.name}", path.read_bytes())
                    for path in folder.iterdir()
                    if path.name.endswith(SCHEMA_SUFFIX)
                ]
        return cls(_load_documents(entries))

    @classmethod
    def from_package(cls) -> SchemaRegistry:
        """Load the schemas shipped as package data (``vrm_protocol/schemas``).

        Raises:
            SchemaRegistryError: as the constructor, or a message type of
                :class:`~vrm_protocol.vocabulary.MessageType` has no schema.
        """
        folder = resources.files("vrm_protocol") / "schemas"
        entries = [
            (entry.name, entry.read_bytes())
            for entry in folder.iterdir()
            if entry.name.endswith(SCHEMA_SUFFIX)
        ]
        for name in _SUBFOLDERS:
            sub = folder / name
            if sub.is_dir():
                entries += [
                    (f"{name}/{entry.name}", entry.read_bytes())
                    for entry in sub.iterdir()
                    if entry.name.endswith(SCHEMA_SUFFIX)
                ]
        registry = cls(_load_documents(entries))
        missing = sorted(set(MessageType) - set(registry.message_types))
        if missing:
            raise SchemaRegistryError(f"no schema for message type(s): {', '.join(missing)}")
        return registry

    # -- queries --

    @property
    def message_types(self) -> frozenset[MessageType]:
        """The message types this registry has a schema for."""
        return frozenset(
            message_type
            for message_type in MessageType
            if _file_name(message_type) in self._documents
        )

    def schemas(self) -> dict[str, dict[str, Any]]:
        """Every schema document by file name, as loaded (copies: the registry stays intact)."""
        return {name: copy.deepcopy(dict(document)) for name, document in self._documents.items()}

    def schema_for(self, message_type: MessageType | str) -> dict[str, Any]:
        """The schema document of one message type (a copy).

        Raises:
            KeyError: the registry has no schema for ``message_type``.
        """
        return copy.deepcopy(dict(self._documents[_file_name(message_type)]))

    def schema_id(self, name: str) -> str:
        """The ``$id`` of the schema file ``name``.

        Raises:
            KeyError: no such file.
        """
        return self._ids[name]

    # -- validation --

    def validate_message(self, payload: Mapping[str, Any]) -> None:
        """Validate a message payload against the schema of its type (spec §5, §6).

        Version and type are judged before the schema (pipeline order, spec
        §8.4), so that a message of a future version or an unknown type is
        named as such rather than as a schema fault.

        Raises:
            RemoteProtocolError: UNSUPPORTED_VERSION (``vrm`` present but not a
                supported version), UNKNOWN_MESSAGE_TYPE (``type`` present but
                not a type this registry knows), SCHEMA_INVALID (anything else;
                ``path`` is the JSON Pointer of the instance location of the
                fault: for a missing or unexpected member, the object that
                should or should not hold it; ``extra["errors"]`` lists faults).
        """
        if not isinstance(payload, Mapping):
            raise RemoteProtocolError(
                ErrorCode.SCHEMA_INVALID, "a message is a JSON object", path=""
            )
        if "vrm" in payload:
            version = payload["vrm"]
            if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
                raise RemoteProtocolError(
                    ErrorCode.UNSUPPORTED_VERSION,
                    f"protocol version {_shorten(json.dumps(version))} is not supported "
                    f"(supported: {', '.join(sorted(SUPPORTED_VERSIONS))})",
                    path="/vrm",
                )
        if "type" not in payload:
            raise RemoteProtocolError(
                ErrorCode.SCHEMA_INVALID, "'type' is a required property", path="/type"
            )
        message_type = payload["type"]
        name = _file_name(message_type) if isinstance(message_type, str) else None
        if name is None or name not in self._documents or message_type not in _MESSAGE_TYPES:
            raise RemoteProtocolError(
                ErrorCode.UNKNOWN_MESSAGE_TYPE,
                f"message type {_shorten(json.dumps(message_type))} is not defined "
                "by protocol version 1.0",
                path="/type",
            )
        self._validate(payload, name)

    def validate(self, instance: Any, name: str) -> None:
        """Validate ``instance`` against the schema file ``name`` (e.g. attestation claims).

        Raises:
            KeyError: no schema file ``name``.
            RemoteProtocolError: SCHEMA_INVALID, as :meth:`validate_message`.
        """
        self._validate(instance, name)

    def is_valid(self, instance: Any, name: str) -> bool:
        """Whether ``instance`` is valid against the schema file ``name`` (compiled validator).

        Raises:
            KeyError: no schema file ``name``.
        """
        return bool(self._compiled[name].is_valid(instance))

    def reference_errors(self, instance: Any, name: str) -> list[tuple[str, str]]:
        """Every fault the reference validator finds, as (JSON Pointer, message) pairs.

        The reference validator is slower; use it to explain, and in tests to
        hold the compiled validator to the same verdicts.

        Raises:
            KeyError: no schema file ``name``.
        """
        return [
            (json_pointer(error.absolute_path), _shorten(error.message))
            for error in self._reference_validator(name).iter_errors(instance)
        ]

    def _reference_validator(self, name: str) -> Any:
        with self._lock:
            validator = self._reference.get(name)
            if validator is None:
                engine = _reference_engine()
                validator = engine.validator_class(
                    self._documents[name],
                    registry=self._resources,
                    format_checker=engine.format_checker,
                )
                self._reference[name] = validator
            return validator

    def _validate(self, instance: Any, name: str) -> None:
        if self._compiled[name].is_valid(instance):
            return
        raise self._explain(instance, name)

    def _explain(self, instance: Any, name: str) -> RemoteProtocolError:
        errors = list(self._reference_validator(name).iter_errors(instance))
        listed = [
            {
                "path": json_pointer(error.absolute_path),
                "detail": _shorten(error.message),
            }
            for error in sorted(errors, key=lambda error: list(map(str, error.absolute_path)))
        ][:_MAX_LISTED_FAULTS]
        best = _reference_engine().best_match(errors)
        if best is not None:
            path = json_pointer(best.absolute_path)
            detail = _shorten(best.message)
        else:
            # The engines agree by construction (tests hold them to it); should
            # they ever differ, the compiled validator's verdict stands.
            fault = next(iter(self._compiled[name].iter_errors(instance)))
            path = json_pointer(fault.instance_path)
            detail = _shorten(fault.message)
            listed = [{"path": path, "detail": detail}]
        return RemoteProtocolError(
            ErrorCode.SCHEMA_INVALID, detail, path=path, extra={"errors": listed}
        )


def _file_name(message_type: str) -> str:
    return f"{message_type}{SCHEMA_SUFFIX}"


def _load_documents(entries: Iterable[tuple[str, bytes]]) -> dict[str, Mapping[str, Any]]:
    documents: dict[str, Mapping[str, Any]] = {}
    for name, raw in sorted(entries):
        try:
            document = json.loads(raw)
        except ValueError as error:
            raise SchemaRegistryError(f"{name}: not JSON: {error}") from error
        if not isinstance(document, dict):
            raise SchemaRegistryError(f"{name}: a schema is a JSON object")
        documents[name] = document
    return documents


@cache
def default_registry() -> SchemaRegistry:
    """The registry of the schemas shipped with the library, built once per process.

    Raises:
        SchemaRegistryError: the shipped schemas are broken (a build defect).
    """
    return SchemaRegistry.from_package()
