"""Living with the product: appointments (spec §6.40-§6.43), for both roles.

A test drive before the deal and a service after it are the same booking
exchange. Against a vendor, the suite is a buyer in negotiation that asks the
vendor to propose a test drive (``POST {driver}/appointment {"buyer", "kind"}``;
a driver without it makes the check skip) and books a slot: the vendor must
refuse a slot it did not propose, and confirm the slot booked, at its time and
place. Against a buyer, the suite is a vendor that proposes slots; her agent,
told to book one (``POST {driver}/book {"vendor", "proposal", "slot"}``), must
send nothing but the proposal and the slot, and refuse a confirmation of
another time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.buyer_lifecycle import buyer_servicing
from conformance.checks.scenarios import (
    buyer_rfi_to_new_vendor,
    prompt_wait,
    reply_inbox,
    run_deal,
    run_welcome,
)
from conformance.checks.transaction import (
    _buyer_deal,
    _delivered_for_buyer_after,
    _delivered_for_vendor,
)
from conformance.context import CheckContext
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.messages import message_ref, sign
from conformance.peers.vendors import require_accepted
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.errors import ErrorCode
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
BUYER = (Role.BUYER,)
E = ErrorCode
WRONG_DIGEST = "sha-256:" + "Z" * 43
_SLOT_KEYS = ("start", "end", "place")


# -- against a vendor: the suite is the buyer --------------------------------------------------


@REGISTRY.check(
    "LIV-VEN-APPOINTMENT",
    title="The vendor confirms the slot booked, refuses one it did not propose, and takes a "
    "cancellation",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-LIV-001", "VRM-LIV-002", "VRM-LIV-003", "VRM-LIV-004", "VRM-LIV-006"),
    roles=VENDOR,
    needs=("test-driver", "accepts:appointment-booking", "sends:appointment-proposal"),
)
async def vendor_appointment(ctx: CheckContext) -> None:
    """In negotiation (an RFI answered), the vendor proposes a test drive at the
    driver's instruction. A booking naming the proposal with another digest, or
    a slot the proposal does not have, is ``reference-mismatch``; the booking of
    its last slot is taken, and the confirmation names the booking and restates
    that slot's id, start, end and place. A cancellation naming the confirmation
    with another digest is ``reference-mismatch``; bound to it, it is taken."""
    side = await buyer_side(ctx.session)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == rfi["id"],
        description="the vendor answers the RFI with an offer",
    )
    status, answer = await call_driver_raw(
        ctx.session, "POST", "/appointment", {"buyer": persona.id, "kind": "test-drive"}
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no appointment instruction")
    ctx.require(
        200 <= status < 300, "the test driver takes the appointment instruction", actual=answer
    )
    proposal = await persona.expect(
        lambda item: item.type == "appointment-proposal",
        description="the vendor proposes slots for a test drive",
    )
    ctx.require(
        proposal.ok, "the proposal passes the receiving pipeline", actual=proposal.error_detail
    )
    slots = [s for s in proposal.body.get("slots") or [] if isinstance(s, dict)]
    ctx.require(bool(slots), "the proposal offers slots", actual=proposal.body.get("slots"))
    chosen = slots[-1]
    thread = str(proposal.field("thread") or rfi["id"])

    def booking(proposal_ref: dict[str, str], slot: str) -> dict[str, Any]:
        return persona.compose(
            "appointment-booking",
            {"proposal": proposal_ref, "slot": slot},
            thread=thread,
            parent=str(proposal.id),
        )

    right_ref = message_ref(proposal.token, str(proposal.id))
    expect_rejection(
        ctx,
        await persona.send(
            booking({"id": str(proposal.id), "digest": WRONG_DIGEST}, str(chosen.get("id"))),
            note="a booking naming the proposal with another digest",
        ),
        E.REFERENCE_MISMATCH,
        what="a booking naming the proposal with another digest",
        requirement="VRM-LIV-001",
    )
    expect_rejection(
        ctx,
        await persona.send(booking(right_ref, "never-proposed"), note="a slot never proposed"),
        E.REFERENCE_MISMATCH,
        what="a booking of a slot the proposal does not have",
        requirement="VRM-LIV-002",
    )
    booked = booking(right_ref, str(chosen.get("id")))
    expect_accepted(
        ctx,
        await persona.send(booked, note="her booking of the last slot"),
        what="her booking of a proposed slot",
        requirement="VRM-LIV-001",
    )
    confirmation = await persona.expect(
        lambda item: item.type == "appointment-confirmation",
        description="the vendor confirms the booking",
        requirement="VRM-LIV-003",
    )
    ctx.require(
        confirmation.ok,
        "the confirmation passes the receiving pipeline (it answers her booking)",
        actual=confirmation.error_detail,
        requirement="VRM-LIV-003",
    )
    body = confirmation.body
    ctx.require(
        body.get("slot") == chosen.get("id")
        and all(body.get(key) == chosen.get(key) for key in _SLOT_KEYS),
        "the confirmation is the slot she booked: its id, start, end and place",
        expected={"slot": chosen.get("id"), **{k: chosen.get(k) for k in _SLOT_KEYS}},
        actual={"slot": body.get("slot"), **{k: body.get(k) for k in _SLOT_KEYS}},
        requirement="VRM-LIV-004",
    )

    def cancellation(appointment: dict[str, str]) -> dict[str, Any]:
        return persona.compose(
            "appointment-cancellation",
            {"appointment": appointment, "reason": "Bought elsewhere"},
            thread=thread,
            parent=str(confirmation.id),
        )

    expect_rejection(
        ctx,
        await persona.send(
            cancellation({"id": str(confirmation.id), "digest": WRONG_DIGEST}),
            note="a cancellation naming the confirmation with another digest",
        ),
        E.REFERENCE_MISMATCH,
        what="a cancellation naming the confirmation with another digest",
        requirement="VRM-LIV-006",
    )
    expect_accepted(
        ctx,
        await persona.send(
            cancellation(message_ref(confirmation.token, str(confirmation.id))),
            note="her cancellation of the confirmed appointment",
        ),
        what="her cancellation of the confirmed appointment",
        requirement="VRM-LIV-006",
    )


# -- against a buyer: the suite plays the vendor -----------------------------------------------


def _slots(now: datetime) -> list[dict[str, Any]]:
    first = now + timedelta(days=7)
    return [
        {
            "id": f"slot-{n}",
            "start": format_timestamp(first + timedelta(days=n)),
            "end": format_timestamp(first + timedelta(days=n, minutes=45)),
            "place": {"country": "GB", "postcodeArea": "W1"},
        }
        for n in range(3)
    ]


@REGISTRY.check(
    "LIV-BUY-APPOINTMENT",
    title="The buyer books with nothing but a slot, and refuses a confirmation of another time",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-LIV-001", "VRM-LIV-003", "VRM-LIV-005", "VRM-LIV-006"),
    roles=BUYER,
    needs=("test-driver", "accepts:appointment-proposal", "sends:appointment-booking"),
)
async def buyer_appointment(ctx: CheckContext) -> None:
    """After her RFI, the suite's vendor proposes three test-drive slots; told to
    book the second, her agent sends a booking naming the proposal by its digest
    and that slot, and nothing else. A confirmation naming the booking with
    another digest is ``reference-mismatch``; one of the booked slot's id at
    another time is ``reference-mismatch``; the slot as booked is taken. A
    cancellation naming it with another digest is ``reference-mismatch``."""
    session = ctx.session
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Test Drives")
    inbox = reply_inbox(rfi)
    slots = _slots(session.clock.now())
    proposal = vendor.reply_to(
        rfi,
        "appointment-proposal",
        {
            "kind": "test-drive",
            "slots": slots,
            "respondBy": format_timestamp(session.clock.now() + timedelta(days=5)),
        },
    )
    proposal_token = sign(proposal, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            proposal_token, to=str(rfi.field("from")), inbox=inbox, note="test-drive proposal"
        ),
        "the buyer takes the proposal",
    )
    status, _ = await call_driver_raw(
        session,
        "POST",
        "/book",
        {"vendor": vendor.id, "proposal": proposal["id"], "slot": slots[1]["id"]},
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no book instruction")
    booking = await vendor.expect(
        lambda item: item.type == "appointment-booking",
        description="the buyer books the slot",
        within=prompt_wait(session),
        requirement="VRM-LIV-001",
    )
    ctx.require(
        booking.body.get("proposal") == message_ref(proposal_token, proposal["id"])
        and booking.body.get("slot") == slots[1]["id"],
        "the booking names the proposal by its digest, and the slot she was told to book",
        expected={"proposal": proposal["id"], "slot": slots[1]["id"]},
        actual=booking.body,
        requirement="VRM-LIV-001",
    )
    ctx.expect(
        set(booking.body) == {"proposal", "slot"},
        "the booking discloses nothing but the proposal and the slot",
        actual=sorted(booking.body),
    )
    booked = slots[1]

    def confirmation(booking_ref: dict[str, str], slot: dict[str, Any]) -> dict[str, Any]:
        return vendor.reply_to(
            booking,
            "appointment-confirmation",
            {
                "booking": booking_ref,
                "slot": booked["id"],
                "start": slot["start"],
                "end": slot["end"],
                "place": slot["place"],
            },
        )

    wrong = confirmation({"id": str(booking.id), "digest": WRONG_DIGEST}, booked)
    reply = await vendor.deliver(wrong, inbox=inbox, note="confirmation, another digest")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.REFERENCE_MISMATCH,
            what="a confirmation naming her booking with another digest",
            requirement="VRM-LIV-003",
        )  # fmt: skip
    moved = confirmation(booking.ref(), slots[2])
    reply = await vendor.deliver(moved, inbox=inbox, note="the booked slot, a day later")
    ctx.require(
        reply is not None,
        "the confirmation is POSTed to the buyer's inbox (it answers over HTTP)",
        requirement="VRM-LIV-005",
    )
    assert reply is not None
    expect_rejection(
        ctx, reply, E.REFERENCE_MISMATCH,
        what="a confirmation of the booked slot's id at another time",
        requirement="VRM-LIV-005",
    )  # fmt: skip
    right = confirmation(booking.ref(), booked)
    right_token = sign(right, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            right_token, to=str(rfi.field("from")), inbox=inbox, note="the confirmation"
        ),
        "the buyer takes the confirmation of the slot she booked",
    )
    cancel = vendor.reply_to(
        booking,
        "appointment-cancellation",
        {
            "appointment": {"id": right["id"], "digest": WRONG_DIGEST},
            "reason": "The demonstrator is off the road",
        },
    )
    reply = await vendor.deliver(cancel, inbox=inbox, note="cancellation, another digest")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.REFERENCE_MISMATCH,
            what="a cancellation naming the confirmation with another digest",
            requirement="VRM-LIV-006",
        )  # fmt: skip


# -- service records (spec §6.44) ---------------------------------------------------------------


@REGISTRY.check(
    "LIV-VEN-SERVICE-RECORD",
    title="The vendor's service record names the appointment and lists no work she declined",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-LIV-007", "VRM-LIV-008"),
    roles=VENDOR,
    needs=("test-driver", "sends:service-record", "sends:service-notice"),
)
async def vendor_service_record(ctx: CheckContext) -> None:
    """After the welcome, the vendor's maintenance notice (``POST {driver}/service-notice``)
    proposes work; she accepts the first proposal and declines the others. The
    vendor proposes service slots about the notice, she books one, it confirms;
    told to record the work (``POST {driver}/service-record {"buyer", "response",
    "appointment"}``), its record names the notice and the confirmation by their
    digests and lists none of the work she declined."""
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    persona = thread.persona
    status, answer = await call_driver_raw(
        ctx.session,
        "POST",
        "/service-notice",
        {
            "buyer": persona.id,
            "kind": "maintenance-reminder",
            "category": "maintenance",
            "summary": "Annual service due; tyres worn",
            "proposals": bodies.service_notice_body()["proposals"],
        },
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no service-notice instruction")
    ctx.require(200 <= status < 300, "the test driver takes the notice", actual=answer)
    notice = await persona.expect(
        lambda item: item.type == "service-notice",
        description="the vendor sends the maintenance notice",
    )
    codes = [str(p.get("code")) for p in notice.body.get("proposals") or [] if isinstance(p, dict)]
    if len(codes) < 2:
        ctx.skip("the vendor's notice proposes fewer than two pieces of work")
    accepted, declined = codes[:1], codes[1:]
    response = persona.compose(
        "service-response",
        {
            "notice": message_ref(notice.token, str(notice.id)),
            "decision": "accept-in-part",
            "accepted": accepted,
            "declined": [{"item": code, "reason": "Not now"} for code in declined],
        },
        thread=str(notice.field("thread") or thread.thread),
        parent=str(notice.id),
    )
    expect_accepted(ctx, await persona.send(response, note="her answer"), what="her answer")
    status, answer = await call_driver_raw(
        ctx.session,
        "POST",
        "/appointment",
        {"buyer": persona.id, "kind": "service", "about": str(notice.id)},
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no appointment instruction")
    proposal = await persona.expect(
        lambda item: item.type == "appointment-proposal",
        description="the vendor proposes service slots",
    )
    slots = [s for s in proposal.body.get("slots") or [] if isinstance(s, dict)]
    ctx.require(bool(slots), "the proposal offers slots", actual=proposal.body.get("slots"))
    booking = persona.compose(
        "appointment-booking",
        {"proposal": message_ref(proposal.token, str(proposal.id)), "slot": slots[0].get("id")},
        thread=str(proposal.field("thread") or thread.thread),
        parent=str(proposal.id),
    )
    expect_accepted(ctx, await persona.send(booking, note="her booking"), what="her booking")
    confirmation = await persona.expect(
        lambda item: item.type == "appointment-confirmation",
        description="the vendor confirms the booking",
    )
    status, answer = await call_driver_raw(
        ctx.session,
        "POST",
        "/service-record",
        {"buyer": persona.id, "response": response["id"], "appointment": str(confirmation.id)},
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no service-record instruction")
    ctx.require(200 <= status < 300, "the test driver takes the instruction", actual=answer)
    record = await persona.expect(
        lambda item: item.type == "service-record",
        description="the vendor records the work done",
        requirement="VRM-LIV-008",
    )
    ctx.require(
        record.ok,
        "the record passes the receiving pipeline (it names the confirmed appointment)",
        actual=record.error_detail,
        requirement="VRM-LIV-007",
    )
    ctx.expect(
        record.body.get("appointment") == message_ref(confirmation.token, str(confirmation.id)),
        "the record names the confirmation by its digest",
        actual=record.body.get("appointment"),
        requirement="VRM-LIV-007",
    )
    done = {str(w.get("code")) for w in record.body.get("work") or [] if isinstance(w, dict)}
    ctx.require(
        not done & set(declined),
        "the record lists none of the work she declined",
        expected=f"none of {declined}",
        actual=sorted(done),
        requirement="VRM-LIV-008",
    )


@REGISTRY.check(
    "LIV-BUY-SERVICE-HISTORY",
    title="The buyer keeps service records as her history and flags work she declined",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-LIV-007", "VRM-LIV-009"),
    roles=BUYER,
    needs=("test-driver", "accepts:service-record", "sends:service-response"),
)
async def buyer_service_history(ctx: CheckContext) -> None:
    """After the welcome, the suite's vendor proposes the annual service and new
    tyres; her agent answers (told to, ``POST {driver}/service``). A record naming
    an appointment she never had is ``illegal-transition``. A record listing all
    the work proposed, the declined work too, is taken (it is the vendor's signed
    statement) and her test driver's state (``GET {driver}/state``) lists it in
    ``serviceHistory`` with the declined work's codes in ``flagged``."""
    servicing = await ctx.use(buyer_servicing)
    vendor = servicing.vendor
    allowed = (servicing.terms_response.body.get("notificationPreferences") or {}).get(
        "allowed"
    ) or []
    if not allowed:
        ctx.skip("the buyer allows no notification category, so no service is proposed")
    category = "maintenance" if "maintenance" in allowed else str(allowed[0])
    notice = vendor.reply_to(
        servicing.rfi, "service-notice", bodies.service_notice_body(category=category)
    )
    token = sign(notice, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            token, to=str(servicing.rfi.field("from")), inbox=servicing.inbox, note="notice"
        ),
        "the buyer takes the maintenance notice",
    )
    instruction = {"vendor": vendor.id, "notice": notice["id"]}
    status, _ = await call_driver_raw(ctx.session, "POST", "/service", instruction)
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no service instruction")
    response = await vendor.expect(
        lambda item: item.type == "service-response" and item.field("parent") == notice["id"],
        description="the buyer answers the maintenance notice",
        within=prompt_wait(ctx.session),
    )
    declined = {
        str(d.get("item")) for d in response.body.get("declined") or [] if isinstance(d, dict)
    }
    proposed = [p["code"] for p in notice["body"]["proposals"]]
    if not declined & set(proposed):
        ctx.skip("the buyer declined none of the work proposed: there is nothing to flag")
    record_body = {
        "notice": message_ref(token, notice["id"]),
        "work": [{"code": code, "description": code} for code in proposed],
        "cost": bodies.money("669"),
        "mileage": 12480,
        "completedAt": format_timestamp(ctx.session.clock.now()),
    }
    stray = vendor.reply_to(
        response,
        "service-record",
        {
            **record_body,
            "appointment": {
                "id": "urn:uuid:" + "0" * 8 + "-0000-4000-8000-" + "0" * 12,
                "digest": WRONG_DIGEST,
            },
        },
    )
    reply = await vendor.deliver(stray, inbox=servicing.inbox, note="record of no appointment")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.ILLEGAL_TRANSITION,
            what="a service record naming an appointment she never had",
            requirement="VRM-LIV-007",
        )  # fmt: skip
    record = vendor.reply_to(response, "service-record", record_body)
    require_accepted(
        await vendor.deliver(record, inbox=servicing.inbox, note="record with declined work"),
        "the buyer takes the vendor's signed service record",
    )
    status, state = await call_driver_raw(ctx.session, "GET", "/state")
    ctx.require(200 <= status < 300, "the test driver answers its state", actual=state)
    history = state.get("serviceHistory") if isinstance(state, dict) else None
    entry = next(
        (e for e in history or [] if isinstance(e, dict) and e.get("record") == record["id"]),
        None,
    )
    ctx.require(
        entry is not None,
        "her service history keeps the record",
        actual=history,
        requirement="VRM-LIV-009",
    )
    assert entry is not None
    flagged = {str(code) for code in entry.get("flagged") or []}
    ctx.require(
        declined & set(proposed) <= flagged,
        "her agent flags the work she declined",
        expected=sorted(declined & set(proposed)),
        actual=sorted(flagged),
        requirement="VRM-LIV-009",
    )


# -- add-ons at the transaction (spec §6.45, §6.46) --------------------------------------------


def _codes(lines: Any) -> set[str]:
    return {str(line.get("code")) for line in lines or [] if isinstance(line, dict)}


@REGISTRY.check(
    "LIV-VEN-ADDONS",
    title="The vendor invoices the extras she accepted and none she declined",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-LIV-010", "VRM-LIV-011", "VRM-LIV-012", "VRM-LIV-013"),
    roles=VENDOR,
    needs=("test-driver", "sends:addon-offer", "accepts:addon-response", "sends:invoice"),
)
async def vendor_addons(ctx: CheckContext) -> None:
    """A deal delivered and inspected; the vendor proposes extras at the driver's
    instruction (``POST {driver}/addons {"buyer"}``), naming the accepted offer by
    its digest. An answer naming the offer with another digest, or leaving an
    extra unanswered, is ``reference-mismatch``; the answer taking the first
    extra and declining the others is taken. Its invoice then charges the extra
    she took, at its price, and none she declined."""
    thread, offer, _ = await _delivered_for_vendor(ctx)
    persona = thread.persona
    status, answer = await call_driver_raw(ctx.session, "POST", "/addons", {"buyer": persona.id})
    if status in (404, 405):
        ctx.skip("the target's test driver has no addons instruction")
    ctx.require(200 <= status < 300, "the test driver takes the addons instruction", actual=answer)
    extras = await persona.expect(
        lambda item: item.type == "addon-offer",
        description="the vendor proposes extras for the deal",
        requirement="VRM-LIV-010",
    )
    ctx.require(
        extras.ok,
        "the add-on offer passes the receiving pipeline (it names the accepted offer)",
        actual=extras.error_detail,
        requirement="VRM-LIV-010",
    )
    ctx.expect(
        (extras.body.get("deal") or {}).get("offer") == message_ref(offer.token, str(offer.id)),
        "the add-on offer names the accepted offer by its digest",
        actual=(extras.body.get("deal") or {}).get("offer"),
        requirement="VRM-LIV-010",
    )
    proposed = [a for a in extras.body.get("addons") or [] if isinstance(a, dict)]
    codes = [str(a.get("code")) for a in proposed]
    if not codes:
        ctx.skip("the vendor proposed no extra")
    taken, left = codes[:1], codes[1:]

    def response(ref: dict[str, str], accepted: list[str], declined: list[str]) -> dict[str, Any]:
        return persona.compose(
            "addon-response",
            {"addonOffer": ref, "accepted": accepted, "declined": declined},
            thread=str(extras.field("thread") or thread.thread),
            parent=str(extras.id),
        )

    right = message_ref(extras.token, str(extras.id))
    expect_rejection(
        ctx,
        await persona.send(
            response({"id": str(extras.id), "digest": WRONG_DIGEST}, taken, left),
            note="an answer naming the add-on offer with another digest",
        ),
        E.REFERENCE_MISMATCH,
        what="an answer naming the add-on offer with another digest",
        requirement="VRM-LIV-011",
    )
    expect_rejection(
        ctx,
        await persona.send(
            response(right, taken, [*left, "never-proposed"]),
            note="an answer naming an extra never proposed",
        ),
        E.REFERENCE_MISMATCH,
        what="an answer naming an extra the offer does not have",
        requirement="VRM-LIV-012",
    )
    expect_accepted(
        ctx,
        await persona.send(response(right, taken, left), note="her answer: the first extra"),
        what="her answer to the extras",
        requirement="VRM-LIV-011",
    )
    status, answer = await call_driver_raw(ctx.session, "POST", "/invoice", {"buyer": persona.id})
    if status in (404, 405):
        ctx.skip("the target's test driver has no invoice instruction")
    ctx.require(200 <= status < 300, "the test driver takes the invoice instruction", actual=answer)
    invoice = await persona.expect(
        lambda item: item.type == "invoice",
        description="the vendor invoices the delivered deal",
        requirement="VRM-LIV-013",
    )
    charged = _codes(invoice.body.get("lines"))
    ctx.require(
        not charged & set(left),
        "the invoice charges no extra she declined",
        expected=f"none of {left}",
        actual=sorted(charged),
        requirement="VRM-LIV-013",
    )
    price = proposed[0].get("price")
    line = next(
        (ln for ln in invoice.body.get("lines") or [] if isinstance(ln, dict)
         and ln.get("code") == taken[0]),
        None,
    )  # fmt: skip
    ctx.require(
        line is not None and line.get("amount") == price,
        "the invoice charges the extra she took, at its price",
        expected={"code": taken[0], "amount": price},
        actual=line,
        requirement="VRM-LIV-013",
    )


@REGISTRY.check(
    "LIV-BUY-ADDONS",
    title="The buyer answers each extra and refuses an invoice charging one she declined",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-LIV-010", "VRM-LIV-011", "VRM-LIV-014"),
    roles=BUYER,
    needs=("test-driver", "accepts:addon-offer", "sends:addon-response", "accepts:invoice"),
)
async def buyer_addons(ctx: CheckContext) -> None:
    """Her deal delivered and inspected; the suite's dealer proposes floor mats and
    a paint protection (an offer naming the accepted offer with another digest is
    ``reference-mismatch``). Told to take the mats (``POST {driver}/addons
    {"vendor", "addonOffer", "accept"}``), her answer accepts them and declines
    the paint protection, naming the offer by its digest. An invoice charging the
    paint protection is ``reference-mismatch``; the offer plus the mats is taken."""
    deal = await _delivered_for_buyer_after(ctx, await _buyer_deal(ctx))
    vendor = deal.vendor
    now = ctx.session.clock.now()
    mats = {"code": "floor-mats", "description": "Floor mats", "price": bodies.money("95.00")}
    paint = {
        "code": "paint-protection",
        "description": "Paint protection",
        "price": bodies.money("495.00"),
    }
    extras_body = {
        "deal": {"id": "deal-1", "offer": message_ref(deal.offer_token, deal.offer["id"])},
        "addons": [mats, paint],
        "validUntil": format_timestamp(now + timedelta(days=7)),
    }
    wrong = vendor.reply_to(
        deal.acceptance,
        "addon-offer",
        {**extras_body, "deal": {"id": "deal-1", "offer": {"id": deal.offer["id"],
                                                           "digest": WRONG_DIGEST}}},
    )  # fmt: skip
    reply = await vendor.deliver(wrong, inbox=deal.inbox, note="extras, another offer digest")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.REFERENCE_MISMATCH,
            what="an add-on offer naming the accepted offer with another digest",
            requirement="VRM-LIV-010",
        )  # fmt: skip
    extras = vendor.reply_to(deal.acceptance, "addon-offer", extras_body)
    token = sign(extras, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            token, to=str(deal.rfi.field("from")), inbox=deal.inbox, note="the extras"
        ),
        "the buyer takes the add-on offer",
    )
    status, _ = await call_driver_raw(
        ctx.session,
        "POST",
        "/addons",
        {"vendor": vendor.id, "addonOffer": extras["id"], "accept": ["floor-mats"]},
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no addons instruction")
    answer = await vendor.expect(
        lambda item: item.type == "addon-response",
        description="the buyer answers the extras",
        within=prompt_wait(ctx.session),
        requirement="VRM-LIV-011",
    )
    ctx.require(
        answer.body.get("addonOffer") == message_ref(token, extras["id"])
        and answer.body.get("accepted") == ["floor-mats"]
        and answer.body.get("declined") == ["paint-protection"],
        "her answer names the offer by its digest, takes the mats, declines the paint",
        actual=answer.body,
        requirement="VRM-LIV-011",
    )
    agreed = deal.offer["body"]["price"]["total"]
    vehicle = {"code": "vehicle", "description": "Toyota Prius hybrid", "amount": dict(agreed)}

    def invoice(*extra: dict[str, Any]) -> dict[str, Any]:
        total = Decimal(agreed["amount"]) + sum(
            (Decimal(e["price"]["amount"]) for e in extra), Decimal(0)
        )
        return {
            "id": "INV-" + str(deal.offer["id"])[-8:],
            "deal": {"id": "deal-1", "offer": message_ref(deal.offer_token, deal.offer["id"])},
            "lines": [
                vehicle,
                *({"code": e["code"], "description": e["description"], "amount": e["price"]}
                  for e in extra),
            ],
            "total": bodies.money(str(total)),
            "due": format_timestamp(now + timedelta(days=14)),
        }  # fmt: skip

    declined = vendor.reply_to(deal.acceptance, "invoice", invoice(mats, paint))
    reply = await vendor.deliver(declined, inbox=deal.inbox, note="invoice with the paint")
    ctx.require(
        reply is not None,
        "the invoice is POSTed to the buyer's inbox (it answers over HTTP)",
        requirement="VRM-LIV-014",
    )
    assert reply is not None
    expect_rejection(
        ctx, reply, E.REFERENCE_MISMATCH,
        what="an invoice charging an extra she declined", requirement="VRM-LIV-014",
    )  # fmt: skip
    right = vendor.reply_to(deal.acceptance, "invoice", invoice(mats))
    require_accepted(
        await vendor.deliver(right, inbox=deal.inbox, note="the offer plus the mats"),
        "the buyer takes the invoice of the offer plus the extra she took",
    )


# -- the trade-in taken before delivery (seed 001) ----------------------------------------------


@REGISTRY.check(
    "LIV-BUY-TRADE-IN-FIRST",
    title="The buyer flags an offer that takes her old car before delivering the new one",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-LIV-015",),
    roles=BUYER,
    needs=("test-driver", "accepts:offer"),
)
async def buyer_trade_in_first(ctx: CheckContext) -> None:
    """After her RFI the suite's dealer offers to take her old car and its papers
    before delivery (seed 001); her test driver's state (``GET {driver}/state``)
    lists the offer under ``offerWarnings``. An offer taking it with delivery is
    not flagged."""
    session = ctx.session
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Trade-In First")
    inbox = reply_inbox(rfi)
    offers = {}
    for when in ("before-delivery", "with-delivery"):
        body = bodies.offer_body(session.clock.now(), basis="binding")
        body["tradeIn"] = {
            "item": {"description": "2019 Toyota Auris hybrid", "make": "Toyota"},
            "valuation": bodies.money("9000"),
            "handover": when,
            "papersHandover": when,
        }
        offer = vendor.reply_to(rfi, "offer", body)
        require_accepted(
            await vendor.deliver(offer, inbox=inbox, note=f"an offer: trade-in {when}"),
            "the buyer takes the offer",
        )
        offers[when] = offer["id"]
    status, state = await call_driver_raw(session, "GET", "/state")
    ctx.require(200 <= status < 300, "the test driver answers its state", actual=state)
    warnings = state.get("offerWarnings") if isinstance(state, dict) else None
    ctx.require(
        isinstance(warnings, dict) and bool(warnings.get(offers["before-delivery"])),
        "her agent flags the offer that takes her old car before delivery",
        expected=offers["before-delivery"],
        actual=warnings,
        requirement="VRM-LIV-015",
    )
    assert isinstance(warnings, dict)
    ctx.expect(
        not warnings.get(offers["with-delivery"]),
        "the offer that takes it with delivery is not flagged",
        actual=warnings.get(offers["with-delivery"]),
        requirement="VRM-LIV-015",
    )
