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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import (
    VendorThread,
    buyer_rfi_to_new_vendor,
    prompt_buyer,
    prompt_wait,
    reply_inbox,
)
from conformance.context import CheckContext
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest, message_ref, sign
from conformance.peers.vendors import SuiteVendor, require_accepted
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


def _offer_with_trade_in(now: datetime) -> dict[str, Any]:
    body = bodies.offer_body(now, basis="binding")
    body["tradeIn"] = {
        "item": {"description": "2019 Toyota Auris hybrid", "make": "Toyota", "model": "Auris"},
        "valuation": bodies.money("9000"),
        "handover": "with-delivery",
        "papersHandover": "with-delivery",
    }
    return body


async def _buyer_deal(
    ctx: CheckContext, *, offer_body: Callable[[datetime], dict[str, Any]] | None = None
) -> _BuyerDeal:
    """The buyer's RFI, an offer taking her old car with delivery, her acceptance
    (at the driver's instruction), the deal confirmed."""
    session = ctx.session
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Handover Motors")
    inbox = reply_inbox(rfi)
    offer = vendor.reply_to(rfi, "offer", (offer_body or _offer_with_trade_in)(session.clock.now()))
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
OLD_CAR = {"kind": "trade-in", "description": "2019 Toyota Auris hybrid", "direction": "to-vendor"}
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


# -- invoice and payment (spec §6.25-§6.28) -------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str((value or {}).get("amount")))
    except (InvalidOperation, AttributeError):
        return None


async def _delivered_for_vendor(ctx: CheckContext) -> tuple[VendorThread, Inbound, Inbound]:
    """A deal with a trade-in, handed over at the driver's instruction and
    accepted by her inspection: the thread, the accepted offer, the record."""
    thread, offer = await _deal_with_trade_in(ctx)
    persona = thread.persona
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
    inspection = persona.compose(
        "inspection-result",
        {"handover": message_ref(record.token, str(record.id)), "decision": "accept"},
        thread=str(record.field("thread") or thread.thread),
        parent=str(record.id),
    )
    expect_accepted(
        ctx, await persona.send(inspection, note="her inspection"), what="her inspection"
    )
    return thread, offer, record


@REGISTRY.check(
    "TRX-VEN-INVOICE-AS-AGREED",
    title="The vendor's invoice totals the accepted offer, and its payment is receipted",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-TRX-009", "VRM-TRX-008", "VRM-TRX-013"),
    roles=VENDOR,
    needs=("test-driver", "sends:invoice", "accepts:payment-notice"),
)
async def vendor_invoice(ctx: CheckContext) -> None:
    """After her accepted inspection the vendor, prompted (``POST {driver}/invoice
    {"buyer"}``), invoices: the total is the accepted offer's total plus the
    differences it itemises. A payment naming the invoice with another digest is
    ``reference-mismatch``; the payment bound to it is taken, and should be
    receipted for the amount paid."""
    thread, offer, _ = await _delivered_for_vendor(ctx)
    persona = thread.persona
    status, answer = await call_driver_raw(ctx.session, "POST", "/invoice", {"buyer": persona.id})
    if status in (404, 405):
        ctx.skip("the target's test driver has no invoice instruction")
    ctx.require(200 <= status < 300, "the test driver takes the invoice instruction", actual=answer)
    invoice = await persona.expect(
        lambda item: item.type == "invoice",
        description="the vendor invoices the delivered deal",
        requirement="VRM-TRX-009",
    )
    ctx.require(
        invoice.ok, "the invoice passes the receiving pipeline", actual=invoice.error_detail
    )
    agreed = _decimal((offer.body.get("price") or {}).get("total"))
    differences = [d for d in invoice.body.get("differences") or [] if isinstance(d, dict)]
    stated = sum((_decimal(d.get("amount")) or Decimal(0) for d in differences), Decimal(0))
    total = _decimal(invoice.body.get("total"))
    ctx.require(
        agreed is not None and total == agreed + stated,
        "the invoice totals the accepted offer, plus the differences it itemises",
        expected=f"{agreed} + {stated}",
        actual=str(total),
        requirement="VRM-TRX-009",
    )
    payment = persona.compose(
        "payment-notice",
        {
            "invoice": message_ref(invoice.token, str(invoice.id)),
            "method": "bank-transfer",
            "amount": invoice.body.get("total"),
        },
        thread=str(invoice.field("thread") or thread.thread),
        parent=str(invoice.id),
    )
    wrong = {
        **payment,
        "body": {**payment["body"], "invoice": {"id": str(invoice.id), "digest": WRONG_DIGEST}},
    }
    expect_rejection(
        ctx,
        await persona.send(wrong, note="payment naming the invoice with another digest"),
        E.REFERENCE_MISMATCH,
        what="a payment naming the invoice with another digest",
        requirement="VRM-TRX-008",
    )
    expect_accepted(
        ctx,
        await persona.send(payment, note="her payment, same id, bound to the invoice"),
        what="her payment of the invoice",
        requirement="VRM-TRX-008",
    )
    try:
        receipt = await persona.expect(
            lambda item: item.type == "payment-receipt",
            description="the vendor receipts the payment",
        )
    except CheckFailed:
        ctx.recommend(False, "the vendor receipts the payment", requirement="VRM-TRX-013")
        return
    ctx.recommend(
        receipt.body.get("amount") == payment["body"]["amount"],
        "the receipt is for the amount paid",
        expected=payment["body"]["amount"],
        actual=receipt.body.get("amount"),
        requirement="VRM-TRX-013",
    )


#: The plan the suite's dealer offers, needing no attestation: she may choose it.
_PLAN = "conformance-credit-union-48"


def _financed_offer(now: datetime) -> dict[str, Any]:
    body = _offer_with_trade_in(now)
    body["financing"] = [
        {
            "plan": _PLAN,
            "apr": "4.9",
            "termMonths": 48,
            "monthlyPayment": bodies.money("600"),
            "totalPayable": bodies.money("28800"),
        }
    ]
    return body


def _invoice(
    deal: _BuyerDeal, now: datetime, *, fee: str | None = None, total: str | None = None
) -> dict[str, Any]:
    agreed = deal.offer["body"]["price"]["total"]
    lines = [{"code": "vehicle", "description": "Toyota Prius hybrid", "amount": dict(agreed)}]
    amount = Decimal(agreed["amount"])
    if fee is not None:
        lines.append(
            {
                "code": "administration-fee",
                "description": "Administration",
                "amount": bodies.money(fee),
            }
        )
        amount += Decimal(fee)
    return {
        "id": "INV-" + str(deal.offer["id"])[-8:],
        "deal": {"id": "deal-1", "offer": message_ref(deal.offer_token, deal.offer["id"])},
        "lines": lines,
        "total": bodies.money(total or str(amount)),
        "due": format_timestamp(now),
    }


@REGISTRY.check(
    "TRX-BUY-INVOICE-MATCHES",
    title="The buyer takes only an invoice that totals the offer she accepted",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-TRX-006", "VRM-TRX-007", "VRM-TRX-011"),
    roles=BUYER,
    needs=("test-driver", "accepts:invoice", "sends:inspection-result"),
)
async def buyer_invoice(ctx: CheckContext) -> None:
    """Before her inspection an invoice is ``illegal-transition``. After it, an
    invoice whose total is not the sum of its lines is ``schema-invalid``; one
    that adds a fee the offer did not have, without itemising it as a
    difference, is ``reference-mismatch``; the invoice of the offer as agreed is
    taken."""
    deal = await _buyer_deal(ctx, offer_body=_financed_offer)
    vendor = deal.vendor
    now = ctx.session.clock.now()
    early = vendor.reply_to(deal.acceptance, "invoice", _invoice(deal, now))
    reply = await vendor.deliver(early, inbox=deal.inbox, note="invoice before the handover")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.ILLEGAL_TRANSITION,
            what="an invoice before she accepted a handover", requirement="VRM-TRX-006",
        )  # fmt: skip
    deal = await _delivered_for_buyer_after(ctx, deal)
    wrong_sum = vendor.reply_to(deal.acceptance, "invoice", _invoice(deal, now, total="1"))
    reply = await vendor.deliver(wrong_sum, inbox=deal.inbox, note="total not the lines")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.SCHEMA_INVALID,
            what="an invoice whose total is not the sum of its lines", requirement="VRM-TRX-007",
        )  # fmt: skip
    unstated = vendor.reply_to(deal.acceptance, "invoice", _invoice(deal, now, fee="195"))
    reply = await vendor.deliver(unstated, inbox=deal.inbox, note="a fee not in the offer")
    ctx.require(
        reply is not None,
        "the invoice is POSTed to the buyer's inbox (it answers over HTTP)",
        requirement="VRM-TRX-011",
    )
    assert reply is not None
    expect_rejection(
        ctx, reply, E.REFERENCE_MISMATCH,
        what="an invoice with a fee the accepted offer does not have, not itemised",
        requirement="VRM-TRX-011",
    )  # fmt: skip
    agreed = vendor.reply_to(deal.acceptance, "invoice", _invoice(deal, now))
    require_accepted(
        await vendor.deliver(agreed, inbox=deal.inbox, note="the invoice as agreed"),
        "the buyer takes the invoice of the offer as agreed",
    )


async def _delivered_for_buyer_after(ctx: CheckContext, deal: _BuyerDeal) -> _BuyerDeal:
    """``deal`` handed over both ways and accepted by her inspection."""
    vendor = deal.vendor
    record = vendor.reply_to(
        deal.acceptance,
        "handover-record",
        _handover_body(
            deal, ctx.session.clock.now(), trade_in=True, items=[NEW_CAR, PAPERS, OLD_CAR]
        ),
    )
    require_accepted(
        await vendor.deliver(record, inbox=deal.inbox, note="the handover record, both ways"),
        "the buyer takes the handover record",
    )
    status, _ = await call_driver_raw(
        ctx.session, "POST", "/inspect", {"vendor": vendor.id, "handover": record["id"]}
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no inspect instruction")
    result = await vendor.expect(
        lambda item: item.type == "inspection-result",
        description="the buyer inspects the handover",
        within=prompt_wait(ctx.session),
    )
    if result.body.get("decision") != "accept":
        ctx.skip(f"the buyer did not accept the handover: {result.body.get('reasons')}")
    return deal


@REGISTRY.check(
    "TRX-BUY-PAYMENT-FINANCING",
    title="The buyer pays by the financing she chose at acceptance",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-TRX-012", "VRM-TRX-010"),
    roles=BUYER,
    needs=("test-driver", "accepts:invoice", "sends:payment-notice"),
)
async def buyer_payment(ctx: CheckContext) -> None:
    """The offer has a financing plan; when her acceptance chose it, the payment
    of the invoice (at the driver's instruction, ``POST {driver}/pay``) carries
    that method and plan, for the invoice's total. A receipt naming her payment
    with another digest is ``reference-mismatch``; the receipt bound to it is
    taken."""
    deal = await _buyer_deal(ctx, offer_body=_financed_offer)
    chosen = deal.acceptance.body.get("payment") or {}
    deal = await _delivered_for_buyer_after(ctx, deal)
    vendor = deal.vendor
    invoice = vendor.reply_to(deal.acceptance, "invoice", _invoice(deal, ctx.session.clock.now()))
    token = sign(invoice, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            token, to=str(deal.rfi.field("from")), inbox=deal.inbox, note="the invoice"
        ),
        "the buyer takes the invoice",
    )
    status, _ = await call_driver_raw(
        ctx.session, "POST", "/pay", {"vendor": vendor.id, "invoice": invoice["id"]}
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no pay instruction")
    payment = await vendor.expect(
        lambda item: item.type == "payment-notice",
        description="the buyer pays the invoice",
        within=prompt_wait(ctx.session),
        requirement="VRM-TRX-012",
    )
    ctx.require(
        payment.body.get("method") == chosen.get("method", "bank-transfer"),
        "she pays by the method she chose at acceptance",
        expected=chosen.get("method"),
        actual=payment.body.get("method"),
        requirement="VRM-TRX-012",
    )
    if chosen.get("method") == "finance":
        ctx.require(
            isinstance(payment.body.get("financing"), dict),
            "the financing she chose pays: the payment names it",
            actual=payment.body.get("financing"),
            requirement="VRM-TRX-012",
        )
    if chosen.get("financingPlan") is not None:
        ctx.require(
            (payment.body.get("financing") or {}).get("plan") == chosen.get("financingPlan"),
            "the financing she chose pays: the same plan",
            expected=chosen.get("financingPlan"),
            actual=payment.body.get("financing"),
            requirement="VRM-TRX-012",
        )
    ctx.expect(
        payment.body.get("amount") == invoice["body"]["total"],
        "she pays the invoice's total",
        expected=invoice["body"]["total"],
        actual=payment.body.get("amount"),
        requirement="VRM-TRX-012",
    )
    receipt = {
        "payment": {"id": str(payment.id), "digest": WRONG_DIGEST},
        "amount": payment.body.get("amount"),
        "receivedAt": format_timestamp(ctx.session.clock.now()),
    }
    wrong = vendor.reply_to(payment, "payment-receipt", receipt)
    reply = await vendor.deliver(wrong, inbox=deal.inbox, note="receipt, another digest")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.REFERENCE_MISMATCH,
            what="a receipt naming her payment with another digest", requirement="VRM-TRX-010",
        )  # fmt: skip
    right = vendor.reply_to(payment, "payment-receipt", {**receipt, "payment": payment.ref()})
    require_accepted(
        await vendor.deliver(right, inbox=deal.inbox, note="the receipt"),
        "the buyer takes the receipt of her payment",
    )
