"""The HTTP binding's documents as JSON Schemas (schemas/binding/; spec §11, §14.3):
what the library builds is valid against them, and what the spec forbids is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vrm_protocol.canonical import canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_SCHEMA,
    JWKS_SCHEMA,
    MAILBOX_PAGE_SCHEMA,
    POLL_TOKEN_SCHEMA,
    POLL_TYP,
    PROBLEM_DETAILS_SCHEMA,
    TEST_DRIVER_SCHEMA,
    buyer_discovery_document,
    discovery_document,
    mailbox_page,
    make_poll_token,
    problem_response,
    verify_poll_token,
)
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey
from vrm_protocol.message_types import accepted_by, sent_by
from vrm_protocol.schema_registry import default_registry
from vrm_protocol.signing_profile import sign_compact
from vrm_protocol.vocabulary import Role

BINDING = Path(__file__).resolve().parents[2] / "schemas" / "binding"
NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
VENDOR = "https://dealer.example"


def _valid(instance: Any, schema: str) -> bool:
    return default_registry().is_valid(instance, schema)


def _walk(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((where, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_walk(value, f"{where}/{index}"))
    return found


@pytest.mark.parametrize("path", sorted(BINDING.glob("*.schema.json")), ids=lambda p: p.name)
def test_binding_schemas_follow_the_design_notes(path: Path) -> None:
    """Titles and descriptions everywhere, `$id` under .../binding/, references
    relative, and every property described (schemas/DESIGN-NOTES.md)."""
    document = json.loads(path.read_text("utf-8"))
    assert document["$id"] == f"https://vrm-protocol.example/schemas/v1/binding/{path.name}"
    assert {"title", "description"} <= document.keys()
    for where, node in _walk(document):
        if where.endswith("/properties"):
            for name, member in node.items():
                assert "description" in member, f"{path.name}{where}/{name}"
        if "/$defs/" in where and where.count("/") == 2:
            assert {"title", "description"} <= node.keys(), f"{path.name}{where}"
        reference = node.get("$ref")
        if isinstance(reference, str):
            assert not reference.startswith("http"), f"{path.name}{where}: {reference}"


def test_a_vendor_discovery_document_is_valid_and_closed() -> None:
    document = discovery_document(
        party_id=VENDOR,
        role="vendor",
        name="Dealer",
        base_url=VENDOR,
        accepts=accepted_by(Role.VENDOR),
        sends=sent_by(Role.VENDOR),
        terms=[{"id": "t", "version": "1", "url": f"{VENDOR}/vrm/terms/t/1",
                "digest": "sha-256:" + "A" * 43}],
        categories=["vehicles.cars"],
        max_message_bytes=65536,
        max_depth=16,
        rate_per_minute=120,
        test_driver=True,
    )  # fmt: skip
    assert _valid(document, DISCOVERY_SCHEMA)
    assert not _valid(document | {"colour": "blue"}, DISCOVERY_SCHEMA)
    assert not _valid({k: v for k, v in document.items() if k != "id"}, DISCOVERY_SCHEMA)


def test_a_buyer_discovery_document_names_no_party() -> None:
    document = buyer_discovery_document(
        accepts=accepted_by(Role.BUYER),
        sends=sent_by(Role.BUYER),
        max_message_bytes=65536,
        max_depth=16,
        test_driver_url="http://127.0.0.1:8090/vrm/test-driver",
    )
    assert _valid(document, DISCOVERY_SCHEMA)
    assert "id" not in document
    assert not _valid(document | {"id": "http://127.0.0.1:8090"}, DISCOVERY_SCHEMA)
    inbox = {"testDriver": "http://127.0.0.1:8090/t", "inbox": "http://127.0.0.1:8090/vrm/inbox"}
    assert not _valid(document | {"endpoints": inbox}, DISCOVERY_SCHEMA)


def test_a_jwks_with_retired_keys_is_valid_and_holds_no_private_member() -> None:
    current, old = SigningKey.generate(), SigningKey.generate("ES256")
    keys = KeySet([current.public(), old.public()])
    keys.retire(old.kid, at=NOW)
    document = keys.to_jwks()
    assert _valid(document, JWKS_SCHEMA)
    private = document["keys"][0] | {"d": "A" * 43}
    assert not _valid({"keys": [private]}, JWKS_SCHEMA)
    undated = {k: v for k, v in document["retired"][0].items() if k != "retiredAt"}
    assert not _valid(document | {"retired": [undated]}, JWKS_SCHEMA)


def _claims(token: bytes) -> Any:
    import base64

    segment = token.split(b".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))


def test_a_poll_token_payload_is_valid_and_a_misshaped_one_is_refused_where_it_is_wrong() -> None:
    identity = PairwiseIdentity.generate()
    token = make_poll_token(
        identity.signing_key, poller=identity.identifier, mailbox_owner=VENDOR, after=7, now=NOW
    )
    assert _valid(_claims(token), POLL_TOKEN_SCHEMA)
    payload = _claims(token) | {"to": VENDOR}  # a string, as the prose might be read
    misshaped = sign_compact(canonical_json(payload), identity.signing_key, typ=POLL_TYP)
    with pytest.raises(RemoteProtocolError) as refused:
        verify_poll_token(misshaped, mailbox_owner=VENDOR, now=NOW)
    assert refused.value.code is ErrorCode.SCHEMA_INVALID
    assert refused.value.path == "/to"
    two = _claims(token) | {"to": [VENDOR, "https://other.example"]}
    with pytest.raises(RemoteProtocolError) as refused:
        verify_poll_token(
            sign_compact(canonical_json(two), identity.signing_key, typ=POLL_TYP),
            mailbox_owner=VENDOR,
            now=NOW + timedelta(seconds=1),
        )
    assert refused.value.code is ErrorCode.SCHEMA_INVALID


def test_a_mailbox_page_and_every_problem_are_valid() -> None:
    page = json.loads(mailbox_page([b"a.b.c", b"d.e.f"], after=1))
    assert _valid(page, MAILBOX_PAGE_SCHEMA)
    for code in ErrorCode:
        body = json.loads(problem_response(RemoteProtocolError(code, "because")).body)
        assert _valid(body, PROBLEM_DETAILS_SCHEMA), code


ID = "urn:uuid:00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("definition", "instance", "valid"),
    [
        ("ClockInstruction", {"offsetSeconds": 3600}, True),
        ("ClockInstruction", {"offsetSeconds": "3600"}, False),
        ("AcceptInstruction", {"vendor": VENDOR, "offer": ID}, True),
        ("AcceptInstruction", {"vendor": VENDOR}, False),
        ("TermsInstruction", {"vendor": VENDOR, "assertion": ID, "decision": {
            "decision": "accept-in-part", "accept": ["vehicle.model"], "notifications": ["safety"]
        }}, True),
        ("TermsInstruction", {"vendor": VENDOR, "assertion": ID,
                              "decision": {"decision": "maybe"}}, False),
        ("ServiceInstruction", {"vendor": VENDOR, "notice": ID,
                                "decision": {"decision": "decline"}}, True),
        ("InstructionAnswer", {"sent": [], "pending": True}, True),
        ("State", {"relationships": {"did:jwk:abc": {
            "peer": VENDOR, "state": "servicing", "data": {"contact.email": {"value": "x"}}
        }}}, True),
        ("State", {"relationships": {"did:jwk:abc": {"peer": VENDOR, "state": "limbo"}}}, False),
    ],
)  # fmt: skip
def test_test_driver_definitions(definition: str, instance: Any, valid: bool) -> None:
    schema = json.loads((BINDING / "test-driver.schema.json").read_text("utf-8"))
    wrapper = {"$ref": f"test-driver.schema.json#/$defs/{definition}"}
    assert definition in schema["$defs"]
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (document["$id"], Resource.from_contents(document))
        for document in default_registry().schemas().values()
    )
    validator = Draft202012Validator(
        {"$id": "https://vrm-protocol.example/schemas/v1/binding/probe", **wrapper},
        registry=registry,
    )
    assert validator.is_valid(instance) is valid, list(validator.iter_errors(instance))
    assert default_registry().schemas()[TEST_DRIVER_SCHEMA]["$defs"][definition]
