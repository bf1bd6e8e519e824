"""Her consent changes (spec §6.20) and the check of their receipts against her
sharing log (spec §6.21): the pure check, then her agent over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reference_buyer.consents import verify_consent_receipt
from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.canonical import message_digest
from vrm_protocol.models import ConsentChangeBody, ConsentReceiptBody, MessageRef
from vrm_protocol.vocabulary import MessageType

from .conftest import RunningBuyer, VendorFactory, offer_body

REF = MessageRef(id="urn:uuid:4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", digest="sha-256:" + "A" * 43)
CHANGE = ConsentChangeBody.model_validate(
    {
        "changes": [
            {"item": "contact.phone", "action": "withdraw"},
            {"item": "contact.email", "action": "narrow", "purposes": ["servicing"]},
        ]
    }
)


def _receipt(**body: Any) -> ConsentReceiptBody:
    document = {
        "change": {"id": REF.id, "digest": REF.digest},
        "applied": [
            {"item": "contact.phone", "purposes": [], "deleted": True},
            {"item": "contact.email", "purposes": ["servicing"], "deleted": False},
        ],
        "retained": [],
        **body,
    }
    return ConsentReceiptBody.model_validate(document)


def _check(receipt: ConsentReceiptBody, shared: tuple[str, ...] = ("contact.phone",)) -> Any:
    return verify_consent_receipt(receipt, change=CHANGE, change_ref=REF, shared_categories=shared)


def test_a_receipt_that_deletes_and_narrows_as_asked_verifies() -> None:
    assert _check(_receipt()).verified


def test_a_withdrawn_shared_item_kept_without_a_basis_is_a_shortfall() -> None:
    kept = _receipt(
        applied=[
            {"item": "contact.phone", "purposes": [], "deleted": False},
            {"item": "contact.email", "purposes": ["servicing"], "deleted": False},
        ]
    )
    check = _check(kept)
    assert not check.verified
    assert any("contact.phone" in problem for problem in check.problems)
    # Retained on a basis, it is accounted for.
    retained = _receipt(
        applied=kept.model_dump(by_alias=True)["applied"],
        retained=[{"item": "contact.phone", "basis": "legal-obligation", "until": "2032-01-01"}],
    )
    assert _check(retained).verified


def test_purposes_left_on_a_withdrawn_or_narrowed_item_and_missing_items_are_reported() -> None:
    wrong = _receipt(
        change={"id": REF.id, "digest": "sha-256:" + "B" * 43},
        applied=[
            {"item": "contact.phone", "purposes": ["servicing"], "deleted": True},
        ],
    )
    problems = " | ".join(_check(wrong).problems)
    assert "exact bytes" in problems
    assert "contact.phone: withdrawn, yet still used" in problems
    assert "contact.email: the receipt does not account for it" in problems
    narrowed_badly = _receipt(
        applied=[
            {"item": "contact.phone", "purposes": [], "deleted": True},
            {"item": "contact.email", "purposes": ["servicing", "marketing"], "deleted": False},
        ]
    )
    assert _check(narrowed_badly).problems == (
        "contact.email: narrowed, yet still used for ['marketing']",
    )


async def test_her_agent_checks_the_receipt_against_what_she_shared(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    agent = buyer.agent
    await agent.buying.send_rfis([vendor.id], sally_rfi_body(agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, offer_token = vendor.reply(
        rfi, MessageType.OFFER, offer_body(datetime.now(UTC), basis="binding")
    )
    assert (await buyer.post(offer_token))[0] == 202
    # Her acceptance discloses her identity: her sharing log holds her phone number.
    await agent.buying.accept(offer["id"])
    assert "contact.phone" in {r.category for r in await buyer.store.shared_with(vendor.id)}

    async def withdraw_and_answer(applied: list[dict[str, Any]]) -> Any:
        sent = await agent.consents.change(
            vendor.id, [{"item": "contact.phone", "action": "withdraw"}], reason="no calls"
        )
        token, change = vendor.last(MessageType.CONSENT_CHANGE.value)
        assert change["body"]["changes"] == [{"item": "contact.phone", "action": "withdraw"}]
        ref = {"id": change["id"], "digest": message_digest(token)}
        body = {"change": ref, "applied": applied, "retained": []}
        _, receipt = vendor.reply(change, MessageType.CONSENT_RECEIPT, body)
        assert (await buyer.post(receipt))[0] == 202
        records = {c.change_id: c for c in await buyer.store.consent_changes(vendor.id)}
        return records[sent.message.message_id]

    kept = await withdraw_and_answer([{"item": "contact.phone", "purposes": [], "deleted": False}])
    assert kept.receipt_verified is False
    assert kept.problems == (
        "contact.phone: shared and withdrawn, but neither deleted nor retained with a basis",
    )
    deleted = await withdraw_and_answer(
        [{"item": "contact.phone", "purposes": [], "deleted": True}]
    )
    assert deleted.receipt_verified is True
    assert deleted.receipt is not None
    assert deleted.receipt["applied"][0]["deleted"] is True


async def test_what_she_withdrew_is_not_shared_again_under_the_old_terms(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    from .test_guard import _welcomed  # her terms response: contact.email for servicing

    vendor = await start_vendor("Careful Motors")
    rfi = await _welcomed(buyer, vendor)
    asking = {
        "kind": "other",
        "category": "technical",
        "summary": "Software update",
        "dataRequests": [
            {"item": "contact.email", "purposes": ["servicing"], "retention": {"period": "P1M"}}
        ],
    }

    async def answer() -> dict[str, Any]:
        notice, token = vendor.reply(rfi, MessageType.SERVICE_NOTICE, asking)
        assert (await buyer.post(token))[0] == 202
        await buyer.agent.owning.answer_service_notice(notice["id"])
        return dict(vendor.last("service-response")[1]["body"])

    assert [item["item"] for item in (await answer())["data"]] == ["contact.email"]
    await buyer.agent.consents.change(vendor.id, [{"item": "contact.email", "action": "withdraw"}])
    after = await answer()
    assert "data" not in after, after
    assert [item["item"] for item in after["declined"]] == ["contact.email"]
