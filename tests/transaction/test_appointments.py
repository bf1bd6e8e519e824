"""Appointments between the two reference agents over HTTP (spec §6.40-§6.43):
a test drive before the deal, a service after it (seed 000 steps 2 and 6)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reference_buyer.handlers_living import appointments, book, cancel, reminders
from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.errors import RemoteProtocolError
from vrm_protocol.models import (
    AppointmentBookingMessage,
    AppointmentConfirmationMessage,
    AppointmentProposalMessage,
)
from vrm_protocol.vocabulary import MessageType

from .conftest import REPLY_SECONDS, Pair, PairFactory


async def _enquiry(pair: Pair) -> None:
    buyer = pair.buyer
    await buyer.buying.send_rfis([pair.dealer], sally_rfi_body(buyer.clock.now()))
    await buyer.wait_for(
        lambda e: e.type is MessageType.OFFER and e.peer == pair.dealer, within=REPLY_SECONDS
    )


async def _proposal(pair: Pair, kind: str) -> AppointmentProposalMessage:
    status, answer = await pair.driver(
        "/appointment", {"buyer": await pair.pseudonym(), "kind": kind}
    )
    assert status == 200, answer
    [proposal_id] = answer["sent"]
    entry = await pair.buyer.wait_for(lambda e: e.message_id == proposal_id, within=REPLY_SECONDS)
    proposal = entry.model()
    assert isinstance(proposal, AppointmentProposalMessage)
    return proposal


async def _confirmed(pair: Pair, booking_id: str) -> AppointmentConfirmationMessage:
    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.APPOINTMENT_CONFIRMATION and e.parent == booking_id,
        within=REPLY_SECONDS,
    )
    confirmation = entry.model()
    assert isinstance(confirmation, AppointmentConfirmationMessage)
    return confirmation


async def test_a_test_drive_is_booked_with_nothing_but_a_slot(pairs: PairFactory) -> None:
    pair = await pairs()
    await _enquiry(pair)
    proposal = await _proposal(pair, "test-drive")
    assert proposal.body.kind == "test-drive"
    chosen = proposal.body.slots[-1]

    sent = await book(pair.buyer, proposal.id, chosen.id)

    booking = sent.model
    assert isinstance(booking, AppointmentBookingMessage)
    # The booking discloses nothing but the proposal and the slot (spec §6.41).
    assert set(booking.body.model_dump(exclude_none=True)) == {"proposal", "slot"}
    confirmation = await _confirmed(pair, booking.id)
    assert (confirmation.body.slot, confirmation.body.start, confirmation.body.end) == (
        chosen.id,
        chosen.start,
        chosen.end,
    )
    [held] = await appointments(pair.buyer)
    assert held.kind == "test-drive"
    assert held.confirmation == confirmation.id
    # Her agent reminds her by its own clock: a week ahead is within its window.
    assert [r.confirmation for r in await reminders(pair.buyer)] == [confirmation.id]
    assert await reminders(pair.buyer, within=timedelta(days=1)) == []

    await cancel(pair.buyer, confirmation.id, "Bought elsewhere")

    assert await appointments(pair.buyer) == []


async def test_her_agent_refuses_a_confirmation_of_another_time(pairs: PairFactory) -> None:
    pair = await pairs(vendor_faults=("confirm-other-slot",))
    await _enquiry(pair)
    proposal = await _proposal(pair, "test-drive")
    booking = (await book(pair.buyer, proposal.id)).model
    # The dealer's confirmation a day later is refused: it never enters her history.
    with pytest.raises(TimeoutError):
        await _confirmed_quickly(pair, booking.id)
    assert await appointments(pair.buyer) == []


async def _confirmed_quickly(pair: Pair, booking_id: str) -> None:
    await pair.buyer.wait_for(
        lambda e: (
            e.type is MessageType.APPOINTMENT_CONFIRMATION
            and e.parent == booking_id
            and not e.refused
        ),
        within=2.0,
    )


async def test_a_slot_not_proposed_is_refused_by_the_dealer(pairs: PairFactory) -> None:
    pair = await pairs(buyer_faults=("take-other-slot",))
    await _enquiry(pair)
    proposal = await _proposal(pair, "test-drive")
    entry = await pair.buyer.store.entry(proposal.id)
    assert entry is not None
    from reference_buyer.outgoing import build
    from vrm_agent.unit import outgoing
    from vrm_protocol.models import AppointmentBookingBody

    body = build(AppointmentBookingBody, proposal=entry.ref(), slot="never-proposed")
    with pytest.raises(RemoteProtocolError) as refused:
        await pair.buyer.sender.send(
            entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
        )
    assert refused.value.code.value == "reference-mismatch"


async def test_her_agent_books_a_slot_free_of_her_other_appointments(pairs: PairFactory) -> None:
    pair = await pairs()
    await _enquiry(pair)
    first = await _proposal(pair, "test-drive")
    booked = (await book(pair.buyer, first.id)).model
    await _confirmed(pair, booked.id)
    second = await _proposal(pair, "test-drive")

    again = (await book(pair.buyer, second.id)).model

    assert isinstance(again, AppointmentBookingMessage)
    assert isinstance(booked, AppointmentBookingMessage)
    # The same calendar: the earliest slot is taken by her first test drive.
    assert again.body.slot != booked.body.slot


async def test_the_dealer_cancels_and_her_agent_forgets_the_appointment(
    pairs: PairFactory,
) -> None:
    pair = await pairs()
    await _enquiry(pair)
    proposal = await _proposal(pair, "test-drive")
    booking = (await book(pair.buyer, proposal.id)).model
    confirmation = await _confirmed(pair, booking.id)
    assert len(await appointments(pair.buyer)) == 1
    status, answer = await pair.driver(
        "/cancel-appointment",
        {
            "buyer": await pair.pseudonym(),
            "appointment": confirmation.id,
            "reason": "The demonstrator is off the road",
        },
    )
    assert status == 200, answer
    [cancelled] = answer["sent"]
    await pair.buyer.wait_for(lambda e: e.message_id == cancelled, within=REPLY_SECONDS)
    assert await appointments(pair.buyer) == []
