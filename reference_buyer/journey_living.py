"""The demo's life with the car (seed 000 step 6): the service appointment.

The dealer's maintenance notice announces the annual service; the dealer
proposes slots for it, Sally's agent books the earliest (the booking names
the proposal and a slot, nothing else), the dealer confirms it, and her agent
reminds her of it by its own clock, not only by the dealer's reminders.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from reference_buyer.agent import BuyerAgent
from reference_buyer.handlers_living import book, reminders
from vrm_protocol.models import AppointmentConfirmationMessage, AppointmentProposalMessage
from vrm_protocol.vocabulary import MessageType

__all__ = ["LivingFailed", "book_service"]

#: The dealer's test driver: ``(path, instruction) -> answer``.
Driver = Callable[[str, dict[str, Any]], Awaitable[Any]]


class LivingFailed(Exception):
    """An appointment did not go as the protocol says it must."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise LivingFailed(what)


async def book_service(
    agent: BuyerAgent, dealer: str, pseudonym: str, notice: str, driver: Driver, *, within: float
) -> str:
    """The dealer proposes slots for the service its notice ``notice`` announced,
    she books the earliest, the dealer confirms it, her agent reminds her; a line
    for the step's summary.

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
    )
