"""A vendor leaving the market (seed 003 step 9): her agent reads its notice's export
and deletion receipt against her sharing log (spec §6.13, VRM-RET-004)."""

from __future__ import annotations

from typing import Any

from reference_buyer.exits import verify_vendor_exit
from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.models import ExitNoticeBody

US = "did:jwk:us"


def _notice(*, receipt: bool = True, **changes: Any) -> ExitNoticeBody:
    data: dict[str, Any] = {
        "contact.email": {"value": "sally@example.org"},
        "history": [],
    }
    document: dict[str, Any] = {
        "reason": "vendor-leaving-market",
        "effectiveAt": "2027-01-10T09:00:00Z",
        "export": {
            "requested": True,
            "mediaType": "application/json",
            "data": data,
            "digest": message_digest(canonical_json(data)),
        },
        "deletion": {"requested": True},
        "deletionReceipt": {
            "relationship": US,
            "deleted": ["contact.email"],
            "deletedAt": "2027-01-10T09:00:00Z",
        },
        "reengagement": {"allowed": False},
    }
    document.update(changes)
    if not receipt:
        del document["deletionReceipt"]
    return ExitNoticeBody.model_validate(document)


def test_a_complete_notice_checks_out() -> None:
    check = verify_vendor_exit(_notice(), our_id=US, shared_categories=["contact.email"])
    assert check.verified, check.problems
    assert check.deleted == ("contact.email",)


def test_an_item_she_shared_left_out_is_a_shortfall() -> None:
    check = verify_vendor_exit(
        _notice(), our_id=US, shared_categories=["contact.email", "vehicle.vin"]
    )
    assert not check.verified
    assert "the export leaves out what she shared: vehicle.vin" in check.problems
    assert "vehicle.vin was shared but is neither deleted nor retained with a basis" in (
        check.problems
    )


def test_no_export_and_no_receipt_is_a_shortfall() -> None:
    body = _notice(export={"requested": True}, receipt=False)
    check = verify_vendor_exit(body, our_id=US, shared_categories=[])
    assert set(check.problems) == {
        "the notice carries no export of the data held",
        "the notice carries no deletion receipt",
    }


def test_a_digest_that_does_not_match_and_a_receipt_about_someone_else() -> None:
    notice = _notice()
    export = notice.export.model_copy(update={"digest": "sha-256:" + "A" * 43})
    receipt = notice.deletion_receipt
    assert receipt is not None
    body = notice.model_copy(
        update={
            "export": export,
            "deletion_receipt": receipt.model_copy(update={"relationship": "did:jwk:other"}),
        }
    )
    check = verify_vendor_exit(body, our_id=US, shared_categories=[])
    assert "the export's digest does not match its data" in check.problems
    assert "the deletion receipt is about did:jwk:other, not us" in check.problems
