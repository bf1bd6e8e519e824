"""The demo's life with the car (seed 000 steps 4 and 6): extras at the
transaction, the service appointment and its record.

At the transaction the dealer proposes floor mats and a paint protection;
Sally's agent takes the mats (within her standing limit) and declines the
paint protection, which the invoice then never charges.

The dealer's maintenance notice announces the annual service; the dealer
proposes slots for it, Sally's agent books the earliest (the booking names
the proposal and a slot, nothing else), the dealer confirms it, and her agent
reminds her of it by its own clock, not only by the dealer's reminders.
Once she has answered the notice (the service, not the tyres), the dealer
records the work done at the appointment; her agent keeps the signed record
as her service history, and would flag work she declined.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from reference_buyer.agent import BuyerAgent
from reference_buyer.handlers_living import answer_addons, book, reminders, service_history
from vrm_protocol.models import (
    AddonOfferMessage,
    AddonResponseMessage,
    AppointmentConfirmationMessage,
    AppointmentProposalMessage,
)
from vrm_protocol.vocabulary import MessageType

__all__ = ["LivingFailed", "book_service", "book_test_drive", "record_service", "take_extras"]

#: The dealer's test driver: ``(path, instruction) -> answer``.
Driver = Callable[[str, dict[str, Any]], Awaitable[Any]]


class LivingFailed(Exception):
    """An appointment did not go as the protocol says it must."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise LivingFailed(what)


async def book_service(
    agent: BuyerAgent, dealer: str, pseudonym: str, notice: str, driver: Driver, *, within: float
) -> tuple[str, str]:
    """The dealer proposes slots for the service its notice ``notice`` announced,
    she books the earliest, the dealer confirms it, her agent reminds her; a line
    for the step's summary, and the confirmation's id.

    Raises:
        LivingFailed: a message did not come, or was not the slot she booked.
        LocalProtocolError, RemoteProtocolError: a move was refused.
    """
    proposed = await driver(
        "/appointment", {"buyer": pseudonym, "kind": "service", "about": notice}
    )
    [proposal_id] = proposed["sent"]
    entry = await agent.wait_for(lambda e: e.message_id == proposal_id, within=within)
    proposal = entry.model()
    assert isinstance(proposal, AppointmentProposalMessage)
    _expect(
        proposal.body.about is not None and proposal.body.about.id == notice,
        "the slots are for the service the maintenance notice announced",
    )
    booking = (await book(agent, proposal_id)).model
    _expect(
        set(booking.body.model_dump(exclude_none=True)) == {"proposal", "slot"},
        "the booking names the proposal and a slot, nothing else (spec §6.41)",
    )
    confirmed = await agent.wait_for(
        lambda e: (
            e.type is MessageType.APPOINTMENT_CONFIRMATION
            and e.peer == dealer
            and e.parent == booking.id
        ),
        within=within,
    )
    confirmation = confirmed.model()
    assert isinstance(confirmation, AppointmentConfirmationMessage)
    due = [r for r in await reminders(agent) if r.confirmation == confirmation.id]
    _expect(bool(due), "her agent reminds her of the appointment by its own clock")
    return (
        f"service booked ({len(proposal.body.slots)} slots proposed): "
        f"{confirmation.body.slot} at {confirmation.body.start}, confirmed; her agent reminds "
        f"her of it"
    ), confirmation.id


async def book_test_drive(
    agent: BuyerAgent, dealer: str, pseudonym: str, driver: Driver, *, within: float
) -> str:
    """The dealer invites her to a test drive (seed 000 step 2, seed 004); she books
    the earliest slot, disclosing nothing but the slot: the dealer learns her
    pseudonym and a time, and sees who she is when she comes. A line for the
    step's summary.

    Raises:
        LivingFailed: a message did not come, or was not the slot she booked.
        LocalProtocolError, RemoteProtocolError: a move was refused.
    """
    proposed = await driver("/appointment", {"buyer": pseudonym, "kind": "test-drive"})
    [proposal_id] = proposed["sent"]
    await agent.wait_for(lambda e: e.message_id == proposal_id, within=within)
    booking = (await book(agent, proposal_id)).model
    _expect(
        set(booking.body.model_dump(exclude_none=True)) == {"proposal", "slot"},
        "the booking names the proposal and a slot, nothing else (spec §6.41)",
    )
    confirmed = await agent.wait_for(
        lambda e: (
            e.type is MessageType.APPOINTMENT_CONFIRMATION
            and e.peer == dealer
            and e.parent == booking.id
        ),
        within=within,
    )
    confirmation = confirmed.model()
    assert isinstance(confirmation, AppointmentConfirmationMessage)
    return f"test drive booked with nothing but a slot: {confirmation.body.start}, confirmed"


async def record_service(
    agent: BuyerAgent,
    dealer: str,
    pseudonym: str,
    response: str,
    appointment: str,
    driver: Driver,
    *,
    within: float,
) -> str:
    """The dealer records the work done at the appointment, the work she accepted
    in her ``response`` to its notice; her agent files it as her service history
    and flags work she declined; a line for the step's summary.

    Raises:
        LivingFailed: no record came, or it lists work she declined.
    """
    recorded = await driver(
        "/service-record", {"buyer": pseudonym, "response": response, "appointment": appointment}
    )
    [record_id] = recorded["sent"]
    await agent.wait_for(lambda e: e.message_id == record_id and e.peer == dealer, within=within)
    [entry] = [e for e in await service_history(agent) if e.record == record_id]
    _expect(not entry.flagged, f"the record lists no work she declined: {entry.flagged}")
    return (
        f"service record kept in her history: {' + '.join(entry.work)}, {entry.cost}, "
        f"{entry.mileage} miles, no declined work listed"
    )


async def take_extras(
    agent: BuyerAgent, dealer: str, pseudonym: str, driver: Driver, *, within: float
) -> str:
    """The dealer proposes extras for the deal (seed 000 step 4); her agent takes
    those within her standing limit and declines the others; a line for the
    step's summary. The invoice then charges the extras she took, none other.

    Raises:
        LivingFailed: no offer came, or she took all or none.
    """
    proposed = await driver("/addons", {"buyer": pseudonym})
    [offer_id] = proposed["sent"]
    entry = await agent.wait_for(lambda e: e.message_id == offer_id, within=within)
    offer = entry.model()
    assert isinstance(offer, AddonOfferMessage)
    answer = (await answer_addons(agent, offer_id)).model
    assert isinstance(answer, AddonResponseMessage)
    _expect(
        bool(answer.body.accepted) and bool(answer.body.declined),
        "she takes one extra and declines the other",
    )
    return (
        f"extras proposed: {' + '.join(a.code for a in offer.body.addons)}; she takes "
        f"{' + '.join(answer.body.accepted)}, declines {' + '.join(answer.body.declined)}"
    )
