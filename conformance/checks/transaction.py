"""The transaction carried through: delivery, the handover with the trade-in,
inspection (spec §6.22-§6.24), for both roles.

Seed 001 is the reason: a dealer took the old car and its papers days before
it delivered the new one. Against a vendor, the suite is a buyer whose deal
includes a trade-in, and asks the vendor to deliver (``POST {driver}/handover
{"buyer": <pseudonym>}``; a driver without it makes the check skip): the
handover record must list both cars, bound to the deal. Against a buyer, the
suite is a dealer that records a one-sided handover: her agent, told to
inspect it (``POST {driver}/inspect {"vendor", "handover"}``), must refuse it
with its reasons and the record as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import VendorThread, prompt_buyer, prompt_wait, reply_inbox
from conformance.context import CheckContext
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest, message_ref, sign
from conformance.peers.vendors import SuiteVendor, require_accepted, vendor_side
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.errors import ErrorCode
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
BUYER = (Role.BUYER,)
E = ErrorCode
WRONG_DIGEST = "sha-256:" + "Z" * 43


def _moves(record: Inbound) -> set[tuple[str, str]]:
    return {
        (str(item.get("kind")), str(item.get("direction")))
        for item in record.body.get("items") or []
        if isinstance(item, dict)
    }


# -- against a vendor: the suite is the buyer --------------------------------------------------


async def _deal_with_trade_in(ctx: CheckContext) -> tuple[VendorThread, Inbound]:
    """RFI, an RFP offering her old car with delivery, the vendor's binding offer
    accepted, the deal confirmed. Skips when the offer takes no trade-in."""
    side = await buyer_side(ctx.session)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    thread = VendorThread(persona, persona.sent[-1])
    first = await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == rfi["id"],
        description="the vendor answers the RFI with an offer",
    )
    rfp = persona.compose(
        "personal-rfp",
        bodies.personal_rfp_body(persona.now(), trade_in=True),
        thread=rfi["id"],
        parent=str(first.id),
    )
    expect_accepted(ctx, await persona.send(rfp, note="an RFP with a trade-in"), what="the RFP")
    offer = await persona.expect(
        lambda item: item.type == "offer" and item.field("parent") == rfp["id"],
        description="the vendor answers the RFP with an offer",
        requirement="VRM-MSG-004",
    )
    if not isinstance(offer.body.get("tradeIn"), dict) or offer.body.get("basis") != "binding":
        ctx.skip("the vendor's binding offer took no trade-in: there is no handover to judge")
    acceptance = persona.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(message_ref(offer.token, str(offer.id))),
        thread=rfi["id"],
        parent=str(offer.id),
    )
    expect_accepted(ctx, await persona.send(acceptance, note="acceptance"), what="the acceptance")
    thread.acceptance = persona.sent[-1]
    thread.accepted_offer = offer
    thread.deal = await persona.expect(
        lambda item: item.type == "deal-confirmation" and item.field("thread") == rfi["id"],
        description="the vendor confirms the deal",
        requirement="VRM-MSG-014",
    )
    return thread, offer


@REGISTRY.check(
    "TRX-VEN-HANDOVER-BOTH-WAYS",
    title="The vendor hands over the new car and takes the trade-in together, bound to the deal",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-TRX-001", "VRM-TRX-003", "VRM-TRX-004"),
    roles=VENDOR,
    needs=("test-driver", "accepts:inspection-result", "sends:handover-record"),
)
async def vendor_handover(ctx: CheckContext) -> None:
    """A deal with a trade-in, delivered at the driver's instruction: the delivery
    notice and the handover record name the accepted offer by its digest (the
    record also the acceptance), the record says the deal has a trade-in and
    lists the new car to her and the trade-in to the vendor. Her inspection
    naming the record with another digest is ``reference-mismatch``; the same
    inspection bound to the record is taken."""
    thread, offer = await _deal_with_trade_in(ctx)
    persona = thread.persona
    assert thread.acceptance is not None
    status, answer = await call_driver_raw(ctx.session, "POST", "/handover", {"buyer": persona.id})
    if status in (404, 405):
        ctx.skip("the target's test driver has no handover instruction")
    ctx.require(
        200 <= status < 300, "the test driver takes the handover instruction", actual=answer
    )
    record = await persona.expect(
        lambda item: item.type == "handover-record",
        description="the vendor records the handover",
        requirement="VRM-TRX-003",
    )
    ctx.require(
        record.ok,
        "the handover record passes the receiving pipeline (both cars or neither)",
        actual=record.error_detail,
        requirement="VRM-TRX-002",
    )
    offer_ref = message_ref(offer.token, str(offer.id))
    notices = [item for item in persona.received() if item.type == "delivery-notice"]
    for notice in notices:
        ctx.expect(
            (notice.body.get("deal") or {}).get("offer") == offer_ref,
            "the delivery notice names the accepted offer by its digest",
            expected=offer_ref,
            actual=(notice.body.get("deal") or {}).get("offer"),
            requirement="VRM-TRX-001",
        )
    deal = record.body.get("deal") or {}
    ctx.expect(
        deal.get("offer") == offer_ref,
        "the record names the accepted offer by its digest",
        expected=offer_ref,
        actual=deal.get("offer"),
        requirement="VRM-TRX-001",
    )
    acceptance_ref = {
        "id": thread.acceptance.payload["id"],
        "digest": digest(thread.acceptance.token),
    }
    ctx.expect(
        deal.get("acceptance") == acceptance_ref,
        "the record names her acceptance by its digest",
        expected=acceptance_ref,
        actual=deal.get("acceptance"),
        requirement="VRM-TRX-003",
    )
    ctx.require(
        deal.get("tradeIn") is True,
        "the record says the deal has a trade-in (the accepted offer has one)",
        expected=True,
        actual=deal.get("tradeIn"),
        requirement="VRM-TRX-003",
    )
    both = {("new-vehicle", "to-buyer"), ("trade-in", "to-vendor")}
    ctx.require(
        both <= _moves(record),
        "the new car goes to her and the trade-in to the vendor, in the same handover",
        expected=sorted(both),
        actual=sorted(_moves(record)),
        requirement="VRM-TRX-003",
    )
    inspection = persona.compose(
        "inspection-result",
        {"handover": message_ref(record.token, str(record.id)), "decision": "accept"},
        thread=str(record.field("thread") or thread.thread),
        parent=str(record.id),
    )
    wrong = {
        **inspection,
        "body": {**inspection["body"], "handover": {"id": str(record.id), "digest": WRONG_DIGEST}},
    }
    expect_rejection(
        ctx,
        await persona.send(wrong, note="inspection naming the record with another digest"),
        E.REFERENCE_MISMATCH,
        what="an inspection naming the record with another digest",
        requirement="VRM-TRX-004",
    )
    expect_accepted(
        ctx,
        await persona.send(inspection, note="her inspection, same id, bound to the record"),
        what="her inspection accepting the handover",
        requirement="VRM-TRX-004",
    )


# -- against a buyer: the suite plays the dealer -----------------------------------------------


@dataclass(slots=True)
class _BuyerDeal:
    vendor: SuiteVendor
    rfi: Inbound
    inbox: str | None
    offer: dict[str, Any]
    offer_token: bytes
    acceptance: Inbound


def _offer_with_trade_in(now: Any) -> dict[str, Any]:
    body = bodies.offer_body(now, basis="binding")
    body["tradeIn"] = {
        "item": {"description": "2019 Toyota Auris hybrid", "make": "Toyota", "model": "Auris"},
        "valuation": bodies.money("9000"),
        "handover": "with-delivery",
        "papersHandover": "with-delivery",
    }
    return body


async def _buyer_deal(ctx: CheckContext) -> _BuyerDeal:
    """The buyer's RFI, an offer taking her old car with delivery, her acceptance
    (at the driver's instruction), the deal confirmed."""
    session = ctx.session
    side = await vendor_side(session)
    vendor = await side.add_vendor("Conformance Handover Motors")
    await prompt_buyer(
        session,
        "rfi",
        {"vendors": [vendor.id]},
        instruction=f"Make the buyer agent send a personal RFI (any car) to {vendor.id}",
    )
    rfi = await vendor.expect(
        lambda item: item.type == "personal-rfi",
        description=f"the buyer sends a personal RFI to {vendor.id}",
        within=prompt_wait(session),
    )
    inbox = reply_inbox(rfi)
    offer = vendor.reply_to(rfi, "offer", _offer_with_trade_in(session.clock.now()))
    offer_token = sign(offer, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            offer_token, to=str(rfi.field("from")), inbox=inbox, note="offer"
        ),
        "the buyer takes the offer",
    )
    await prompt_buyer(
        session,
        "accept",
        {"vendor": vendor.id, "offer": offer["id"]},
        instruction=f"Make the buyer accept offer {offer['id']} from {vendor.id}",
    )
    acceptance = await vendor.expect(
        lambda item: item.type == "offer-acceptance",
        description="the buyer sends the acceptance",
        within=prompt_wait(session),
    )
    confirmation = vendor.reply_to(
        acceptance,
        "deal-confirmation",
        bodies.deal_confirmation_body(
            offer_ref=message_ref(offer_token, offer["id"]),
            acceptance_id=str(acceptance.id),
            total=offer["body"]["price"]["total"],
            now=session.clock.now(),
        ),
    )
    require_accepted(
        await vendor.deliver(confirmation, inbox=inbox, note="deal confirmation"),
        "the buyer takes the deal confirmation",
    )
    return _BuyerDeal(vendor, rfi, inbox, offer, offer_token, acceptance)


def _handover_body(
    deal: _BuyerDeal, now: datetime, *, trade_in: bool, items: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "deal": {
            "id": "deal-" + str(deal.acceptance.id).rsplit(":", 1)[-1][:12],
            "offer": message_ref(deal.offer_token, deal.offer["id"]),
            "acceptance": deal.acceptance.ref(),
            "tradeIn": trade_in,
        },
        "at": format_timestamp(now),
        "items": items,
    }


NEW_CAR = {"kind": "new-vehicle", "description": "Toyota Prius hybrid", "direction": "to-buyer"}
PAPERS = {
    "kind": "papers",
    "description": "Registration certificate and keys",
    "direction": "to-buyer",
}


@REGISTRY.check(
    "TRX-BUY-HANDOVER-REFUSED",
    title="The buyer refuses a one-sided handover, with its reasons and the record as evidence",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-TRX-001", "VRM-TRX-002", "VRM-TRX-005"),
    roles=BUYER,
    needs=("test-driver", "accepts:handover-record", "sends:inspection-result"),
)
async def buyer_refuses_one_sided(ctx: CheckContext) -> None:
    """Her deal includes a trade-in. A delivery notice naming the offer with
    another digest is ``reference-mismatch``; a record that says the deal has a
    trade-in and gives her the new car without taking the old one is
    ``illegal-transition``; a record that pretends the deal has no trade-in is
    taken, and her inspection (at the driver's instruction) must refuse it with
    its reasons, carrying the record's token as evidence."""
    deal = await _buyer_deal(ctx)
    vendor = deal.vendor
    notice = vendor.reply_to(
        deal.acceptance,
        "delivery-notice",
        {
            "deal": {"id": "deal-1", "offer": {"id": deal.offer["id"], "digest": WRONG_DIGEST}},
            "scheduledFor": format_timestamp(ctx.session.clock.now()),
            "place": {"country": "GB"},
            "items": [NEW_CAR],
        },
    )
    reply = await vendor.deliver(notice, inbox=deal.inbox, note="delivery notice, wrong digest")
    if reply is not None:
        expect_rejection(
            ctx,
            reply,
            E.REFERENCE_MISMATCH,
            what="a delivery notice naming the accepted offer with another digest",
            requirement="VRM-TRX-001",
        )
    guarded = vendor.reply_to(
        deal.acceptance,
        "handover-record",
        _handover_body(deal, ctx.session.clock.now(), trade_in=True, items=[NEW_CAR, PAPERS]),
    )
    reply = await vendor.deliver(guarded, inbox=deal.inbox, note="one-sided handover record")
    if reply is not None:
        expect_rejection(
            ctx,
            reply,
            E.ILLEGAL_TRANSITION,
            what="a record of a deal with a trade-in that does not take it",
            requirement="VRM-TRX-002",
        )
    record = vendor.reply_to(
        deal.acceptance,
        "handover-record",
        _handover_body(deal, ctx.session.clock.now(), trade_in=False, items=[NEW_CAR, PAPERS]),
    )
    token = sign(record, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            token,
            to=str(deal.rfi.field("from")),
            inbox=deal.inbox,
            note="a record without the trade-in",
        ),
        "the buyer takes the handover record (the state machine cannot know her deal)",
    )
    status, answer = await call_driver_raw(
        ctx.session, "POST", "/inspect", {"vendor": vendor.id, "handover": record["id"]}
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no inspect instruction")
    try:
        result = await vendor.expect(
            lambda item: item.type == "inspection-result",
            description="the buyer answers the handover record with her inspection",
            within=prompt_wait(ctx.session),
        )
    except CheckFailed:
        ctx.require(
            False,
            "the buyer does not accept a handover that leaves out her trade-in",
            actual=f"no inspection result; the driver answered {status} {answer}",
            requirement="VRM-TRX-005",
        )
        return
    ctx.require(
        result.body.get("decision") == "refuse",
        "her inspection refuses the handover that leaves out her trade-in",
        expected="refuse",
        actual=result.body.get("decision"),
        requirement="VRM-TRX-005",
    )
    ctx.expect(
        bool(result.body.get("reasons")),
        "the refusal gives its reasons",
        actual=result.body.get("reasons"),
        requirement="VRM-TRX-005",
    )
    evidence = [e.get("token") for e in result.body.get("evidence") or [] if isinstance(e, dict)]
    ctx.expect(
        token.decode() in evidence,
        "the refusal carries the vendor's signed record as evidence",
        actual=f"{len(evidence)} token(s)",
        requirement="VRM-TRX-005",
    )
