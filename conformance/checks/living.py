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
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.buyer_lifecycle import buyer_servicing
from conformance.checks.scenarios import (
    prompt_buyer,
    prompt_wait,
    reply_inbox,
    run_deal,
    run_welcome,
)
from conformance.context import CheckContext
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.messages import message_ref, sign
from conformance.peers.vendors import require_accepted, vendor_side
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
    side = await vendor_side(session)
    vendor = await side.add_vendor("Conformance Test Drives")
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
