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
from conformance.checks.scenarios import prompt_buyer, prompt_wait, reply_inbox
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
