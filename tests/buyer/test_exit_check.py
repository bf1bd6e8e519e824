"""Checking an exit acknowledgement against what was shared (pure)."""

from __future__ import annotations

from typing import Any

from reference_buyer.agent import verify_exit_acknowledgement
from reference_buyer.store import StoredMessage
from vrm_protocol.canonical import canonical_json, message_digest

OUR_ID = "did:jwk:eyJzYWxseSI6dHJ1ZX0"
NOTICE = StoredMessage(
    seq=7,
    direction="out",
    channel="http",
    message_id="urn:uuid:1",
    type="exit-notice",
    sender=OUR_ID,
    recipients=("https://dealer.example",),
    thread="urn:uuid:0",
    parent=None,
    counterparty="https://dealer.example",
    token=b"a.b.c",
    digest="sha-256:notice",
    verified=True,
    payload={"body": {"export": {"requested": True}}},
    stored_at="2026-11-23T10:00:00Z",
    receipt=None,
    delivery="delivered",
)
SHARED = ["identity.name", "contact.email", "contact.phone"]


def _ack(**changes: Any) -> dict[str, Any]:
    data = {"contact.email": "sally@example.org"}
    body: dict[str, Any] = {
        "notice": {"id": "urn:uuid:1", "digest": "sha-256:notice"},
        "export": {
            "mediaType": "application/json",
            "data": data,
            "digest": message_digest(canonical_json(data)),
        },
        "deletionReceipt": {
            "relationship": OUR_ID,
            "deleted": ["contact.email", "contact.phone"],
            "deletedAt": "2026-11-23T10:00:00Z",
            "retained": [{"item": "identity.name", "basis": "legal-obligation: tax records"}],
        },
    }
    body.update(changes)
    return body


def test_everything_shared_deleted_or_retained_with_a_basis_verifies() -> None:
    check = verify_exit_acknowledgement(
        _ack(), notice=NOTICE, our_id=OUR_ID, shared_categories=SHARED
    )
    assert check.verified
    assert check.problems == ()
    assert check.shared == ("contact.email", "contact.phone", "identity.name")


def test_a_shared_category_missing_from_the_receipt_fails() -> None:
    body = _ack()
    body["deletionReceipt"] = {**body["deletionReceipt"], "deleted": ["contact.email"]}
    check = verify_exit_acknowledgement(
        body, notice=NOTICE, our_id=OUR_ID, shared_categories=SHARED
    )
    assert not check.verified
    assert check.problems == (
        "contact.phone was shared but is neither deleted nor retained with a basis",
    )


def test_retention_without_a_basis_does_not_count() -> None:
    body = _ack()
    body["deletionReceipt"] = {
        **body["deletionReceipt"],
        "retained": [{"item": "identity.name", "basis": ""}],
    }
    check = verify_exit_acknowledgement(
        body, notice=NOTICE, our_id=OUR_ID, shared_categories=SHARED
    )
    assert not check.verified


def test_wrong_notice_wrong_relationship_and_bad_export_digest_are_each_reported() -> None:
    body = _ack(notice={"id": "urn:uuid:1", "digest": "sha-256:other"})
    body["deletionReceipt"] = {**body["deletionReceipt"], "relationship": "did:jwk:someone"}
    body["export"] = {**body["export"], "digest": "sha-256:" + "A" * 43}
    check = verify_exit_acknowledgement(
        body, notice=NOTICE, our_id=OUR_ID, shared_categories=SHARED
    )
    assert not check.verified
    assert len(check.problems) == 3


def test_a_requested_export_must_be_given() -> None:
    body = _ack()
    del body["export"]
    check = verify_exit_acknowledgement(
        body, notice=NOTICE, our_id=OUR_ID, shared_categories=SHARED
    )
    assert check.problems == ("an export was requested but none was given",)
