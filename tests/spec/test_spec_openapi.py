"""The OpenAPI 3.1 description of the HTTP binding (spec §11)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tools.openapi import build_openapi
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    PROBLEM_MEDIA_TYPE,
    TEST_DRIVER_PREFIX,
)
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi()


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, member in value.items():
            if key == "$ref" and isinstance(member, str):
                yield member
            else:
                yield from _refs(member)
    elif isinstance(value, list):
        for member in value:
            yield from _refs(member)


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    # Every reference is internal, so the validator (which would otherwise
    # try to fetch) resolves everything inside the document.
    assert all(ref.startswith("#/") for ref in _refs(document))
    validate(document)


def test_references_point_at_existing_components(document: dict[str, Any]) -> None:
    for ref in _refs(document):
        node: Any = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict), ref


def test_binding_paths_and_media_types(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {DISCOVERY_PATH, JWKS_PATH, INBOX_PATH, MAILBOX_PATH} <= set(paths)
    inbox = paths[INBOX_PATH]["post"]
    assert MESSAGE_MEDIA_TYPE in inbox["requestBody"]["content"]
    assert MESSAGE_MEDIA_TYPE in inbox["responses"]["202"]["content"]
    assert MESSAGE_MEDIA_TYPE in inbox["responses"]["200"]["content"]
    statuses = {str(code.http_status) for code in ErrorCode}
    assert statuses <= set(inbox["responses"])
    for status in statuses:
        assert PROBLEM_MEDIA_TYPE in inbox["responses"][status]["content"]
    assert "Retry-After" in inbox["responses"]["429"]["headers"]


def _resolve(document: dict[str, Any], reference: str) -> Any:
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_problem_details_code_enum_is_the_error_registry(document: dict[str, Any]) -> None:
    """The component refers to the binding's schema, whose code is the registry's."""
    problem = _resolve(document, document["components"]["schemas"]["ProblemDetails"]["$ref"])
    code = _resolve(document, problem["properties"]["code"]["$ref"])
    assert code["enum"] == [code.value for code in ErrorCode]


def test_binding_documents_are_referred_to_not_restated(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for alias, stem in (
        ("Discovery", "discovery"),
        ("Jwks", "jwks"),
        ("MailboxPage", "mailbox-page"),
        ("PollToken", "poll-token"),
        ("ProblemDetails", "problem-details"),
    ):
        assert schemas[alias] == {"$ref": f"#/components/schemas/{stem}"}
        assert schemas[stem]["x-schema-id"].endswith(f"/binding/{stem}.schema.json")
    state = document["paths"][TEST_DRIVER_PREFIX + "/state"]["get"]
    answer = state["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/test-driver/$defs/State"}


def test_mailbox_requires_the_poll_scheme(document: dict[str, Any]) -> None:
    mailbox = document["paths"][MAILBOX_PATH]["get"]
    assert mailbox["security"] == [{"VRMPoll": []}]
    scheme = document["components"]["securitySchemes"]["VRMPoll"]
    assert scheme == scheme | {"type": "http", "scheme": "VRM-Poll"}


def test_test_driver_paths_are_marked_test_mode_only(document: dict[str, Any]) -> None:
    driver_paths = {
        p: item for p, item in document["paths"].items() if p.startswith(TEST_DRIVER_PREFIX)
    }
    assert {f"{TEST_DRIVER_PREFIX}/clock", f"{TEST_DRIVER_PREFIX}/state"} <= set(driver_paths)
    for item in driver_paths.values():
        for operation in item.values():
            assert operation["x-test-mode-only"] is True
    for path, item in document["paths"].items():
        if not path.startswith(TEST_DRIVER_PREFIX):
            assert all("x-test-mode-only" not in op for op in item.values())


def test_message_schemas_are_components_keeping_their_ids(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for path in sorted((ROOT / "schemas").glob("*.schema.json")):
        original = json.loads(path.read_text())
        stem = path.name.removesuffix(".schema.json")
        assert schemas[stem]["x-schema-id"] == original["$id"]
        assert "$id" not in schemas[stem]


def test_build_is_deterministic() -> None:
    assert json.dumps(build_openapi()) == json.dumps(build_openapi())
