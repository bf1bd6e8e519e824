"""Checking an exit acknowledgement against what was shared (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reference_buyer.exits import ExitCheck, verify_exit_acknowledgement
from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.models import ExitAcknowledgementBody, MessageRef

OUR_ID = "did:jwk:eyJzYWxseSI6dHJ1ZX0"
NOTICE_DIGEST = "sha-256:" + "N" * 43
NOTICE = MessageRef(id="urn:uuid:00000000-0000-4000-8000-000000000001", digest=NOTICE_DIGEST)
SHARED = ["identity.name", "contact.email", "contact.phone"]


def _check(
    body: dict[str, Any], *, export_requested: bool = True, deletion_requested: bool = True
) -> ExitCheck:
    return verify_exit_acknowledgement(
        ExitAcknowledgementBody.model_validate(body),
        notice=NOTICE,
        export_requested=export_requested,
        deletion_requested=deletion_requested,
        our_id=OUR_ID,
        shared_categories=SHARED,
    )


def _ack(**changes: Any) -> dict[str, Any]:
    data = {"contact.email": "sally@example.org"}
    body: dict[str, Any] = {
        "notice": {"id": "urn:uuid:00000000-0000-4000-8000-000000000001", "digest": NOTICE_DIGEST},
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
    check = _check(_ack())
    assert check.verified
    assert check.problems == ()
    assert check.shared == ("contact.email", "contact.phone", "identity.name")


def test_a_shared_category_missing_from_the_receipt_fails() -> None:
    body = _ack()
    body["deletionReceipt"] = {**body["deletionReceipt"], "deleted": ["contact.email"]}
    check = _check(body)
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
    # The schema requires a basis: such a receipt is refused before it is judged.
    with pytest.raises(ValidationError):
        ExitAcknowledgementBody.model_validate(body)
    # Retained under another name than what was shared does not count either.
    body["deletionReceipt"]["retained"] = [{"item": "identity", "basis": "legal-obligation"}]
    check = _check(body)
    assert not check.verified
    assert check.problems == (
        "identity.name was shared but is neither deleted nor retained with a basis",
    )


def test_wrong_notice_wrong_relationship_and_bad_export_digest_are_each_reported() -> None:
    body = _ack(
        notice={
            "id": "urn:uuid:00000000-0000-4000-8000-000000000001",
            "digest": "sha-256:" + "O" * 43,
        }
    )
    body["deletionReceipt"] = {
        **body["deletionReceipt"],
        "relationship": "did:jwk:eyJzb21lb25lIjp0cnVlfQ",
    }
    body["export"] = {**body["export"], "digest": "sha-256:" + "A" * 43}
    check = _check(body)
    assert not check.verified
    assert len(check.problems) == 3


def test_a_requested_export_must_be_given() -> None:
    body = _ack()
    del body["export"]
    check = _check(body)
    assert check.problems == ("an export was requested but none was given",)


def test_a_receipt_is_needed_only_where_she_asked_for_deletion() -> None:
    body = _ack()
    del body["deletionReceipt"]
    assert _check(body, deletion_requested=False).verified
    missing = _check(body, deletion_requested=True)
    assert not missing.verified
    assert "a deletion was requested but no deletion receipt was given" in missing.problems
