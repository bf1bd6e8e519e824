"""Living with the product, on her side (spec §6.40 on): appointments.

A vendor's proposal of slots is filed for her to choose from; :func:`book`
books one (the earliest, unless she names one), and the booking carries
nothing but the proposal and the slot: a test drive or a service needs no
more of her (spec §6.41). The vendor's confirmation is taken only when it is
the slot she booked (:class:`~reference_buyer.living_rules.ConfirmationRule`,
VRM-LIV-005). Either party may cancel (:func:`cancel`). Her agent keeps her
confirmed appointments and reminds her of them by its own clock
(:func:`reminders`), whatever the vendor's reminders.

The dealer's service records are filed in her store: :func:`service_history`
is her service history, each record compared with what she answered to the
dealer's notices, and the work she declined flagged
(:class:`~reference_buyer.living_rules.WorkRule`, VRM-LIV-009).

The handlers are registered on :data:`reference_buyer.handlers.HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from reference_buyer.handlers import HANDLERS, _filed, _journal
from reference_buyer.outgoing import build, received
from reference_buyer.transaction_rules import AddonTerms
from vrm_agent.inbox import Inbound, Sent
from vrm_agent.unit import UnitOfWork, outgoing
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.models import (
    AddonOfferMessage,
    AddonResponseBody,
    AddonResponseMessage,
    AppointmentBookingBody,
    AppointmentBookingMessage,
    AppointmentCancellationBody,
    AppointmentCancellationMessage,
    AppointmentConfirmationMessage,
    AppointmentProposalMessage,
    AppointmentSlot,
    ServiceRecordMessage,
    ServiceResponseMessage,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = [
    "Appointment",
    "ServiceEntry",
    "addon_terms",
    "answer_addons",
    "appointments",
    "book",
    "cancel",
    "reminders",
    "service_history",
]

#: How far ahead her agent reminds her of an appointment.
REMIND_WITHIN = timedelta(days=14)

for _model in (AppointmentProposalMessage, ServiceRecordMessage, AddonOfferMessage):
    HANDLERS.on(_model)(_filed)


async def _check_ref(agent: BuyerAgent, peer: str, message_id: str, digest: str, path: str) -> None:
    """A reference to a message of this relationship binds its bytes as sent or
    received (spec §8.5): the state machine knows only the digests it received.

    Raises:
        RemoteProtocolError: REFERENCE_MISMATCH.
    """
    entry = await agent.store.entry(message_id)
    if entry is None or entry.peer != peer or entry.digest != digest:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            f"{message_id} is named with a digest other than that of the message as sent",
            path=path,
        )


@HANDLERS.on(AppointmentCancellationMessage)
async def on_cancellation(
    buyer: BuyerAgent, inbound: Inbound[AppointmentCancellationMessage], work: UnitOfWork
) -> None:
    """A cancellation names her booking or the confirmation by its digest (spec
    §6.43, VRM-LIV-006)."""
    named = inbound.message.body.appointment
    await _check_ref(buyer, inbound.peer, named.id, named.digest, "/body/appointment/digest")
    _journal(inbound, work)


async def _booked_slot(agent: BuyerAgent, booking_id: str, peer: str) -> AppointmentSlot | None:
    """The slot of the proposal her booking ``booking_id`` chose."""
    booking = await agent.store.entry(booking_id, direction=Direction.SENT)
    sent = booking.model() if booking is not None and booking.peer == peer else None
    if not isinstance(sent, AppointmentBookingMessage):
        return None
    proposal = await agent.store.entry(sent.body.proposal.id, direction=Direction.RECEIVED)
    offered = proposal.model() if proposal is not None else None
    if not isinstance(offered, AppointmentProposalMessage):
        return None
    return next((slot for slot in offered.body.slots if slot.id == sent.body.slot), None)


@HANDLERS.on(AppointmentConfirmationMessage)
async def on_confirmation(
    buyer: BuyerAgent, inbound: Inbound[AppointmentConfirmationMessage], work: UnitOfWork
) -> None:
    """A confirmation is taken only when it is the slot she booked, as proposed
    (spec §6.42, VRM-LIV-005); the state machine checked it answers her open
    booking, by its digest."""
    body = inbound.message.body
    await _check_ref(
        buyer, inbound.peer, body.booking.id, body.booking.digest, "/body/booking/digest"
    )
    booked = await _booked_slot(buyer, body.booking.id, inbound.peer)
    if booked is None:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the confirmation names no booking of hers of a slot proposed",
            path="/body/booking/id",
        )
    buyer.strategies.confirmations.check(body, booked)
    _journal(inbound, work)


async def book(agent: BuyerAgent, proposal_id: str, slot: str | None = None) -> Sent:
    """She books ``slot`` of the proposal ``proposal_id`` (spec §6.41): the proposal
    and the slot, nothing else; when ``None``, the earliest slot free of her other
    appointments.

    Raises:
        LocalProtocolError: no such proposal, no such slot, or the move is illegal
            (booked already, or the state allows no appointment).
        RemoteProtocolError: the vendor refused the booking.
    """
    entry = await received(agent.store, proposal_id, MessageType.APPOINTMENT_PROPOSAL)
    proposal = entry.model()
    assert isinstance(proposal, AppointmentProposalMessage)
    slots = sorted(proposal.body.slots, key=lambda s: parse_timestamp(s.start))
    if slot is None:
        # The earliest slot that does not clash with an appointment she has.
        held = [a.slot for a in await appointments(agent)]
        free = [s for s in slots if not any(_overlap(s, other) for other in held)]
        chosen: AppointmentSlot | None = (free or slots)[0]
    else:
        chosen = next((s for s in slots if s.id == slot), None)
    if chosen is None:
        raise LocalProtocolError(ErrorCode.INVALID_REQUEST, f"the proposal has no slot {slot!r}")
    body = build(AppointmentBookingBody, proposal=entry.ref(), slot=chosen.id)
    return await agent.sender.send(
        entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
    )


async def cancel(agent: BuyerAgent, appointment_id: str, reason: str) -> Sent:
    """She cancels an appointment (spec §6.43): the vendor's confirmation, or her
    booking still awaiting it.

    Raises:
        LocalProtocolError: no such appointment, or it is done or cancelled.
        RemoteProtocolError: the vendor refused the cancellation.
    """
    entry = await agent.store.entry(appointment_id)
    if entry is None or entry.type not in (
        MessageType.APPOINTMENT_CONFIRMATION,
        MessageType.APPOINTMENT_BOOKING,
    ):
        raise LocalProtocolError(ErrorCode.NOT_FOUND, f"no appointment {appointment_id}")
    body = build(AppointmentCancellationBody, appointment=entry.ref(), reason=reason)
    return await agent.sender.send(
        entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
    )


def _overlap(one: AppointmentSlot, other: AppointmentSlot) -> bool:
    return parse_timestamp(one.start) < parse_timestamp(other.end) and parse_timestamp(
        other.start
    ) < parse_timestamp(one.end)


@dataclass(frozen=True, slots=True)
class Appointment:
    """A confirmed appointment of hers, not cancelled."""

    peer: str
    confirmation: str
    kind: str
    slot: AppointmentSlot


async def appointments(agent: BuyerAgent) -> list[Appointment]:
    """Her confirmed appointments that neither party cancelled and no service
    record says are done, earliest first."""
    store = agent.store
    cancelled = set()
    for entry in await store.history(type=MessageType.APPOINTMENT_CANCELLATION):
        message = entry.model()
        if isinstance(message, AppointmentCancellationMessage) and not entry.refused:
            cancelled.add(message.body.appointment.id)
    for entry in await store.history(type=MessageType.SERVICE_RECORD, include_refused=False):
        record = entry.model()
        if isinstance(record, ServiceRecordMessage) and record.body.appointment is not None:
            cancelled.add(record.body.appointment.id)  # done
    found = []
    for entry in await store.history(type=MessageType.APPOINTMENT_CONFIRMATION):
        confirmation = entry.model()
        if (
            entry.refused
            or not isinstance(confirmation, AppointmentConfirmationMessage)
            or entry.message_id in cancelled
            or confirmation.body.booking.id in cancelled
        ):
            continue
        booking = await store.entry(confirmation.body.booking.id, direction=Direction.SENT)
        booked = booking.model() if booking is not None else None
        proposal = (
            await store.entry(booked.body.proposal.id, direction=Direction.RECEIVED)
            if isinstance(booked, AppointmentBookingMessage)
            else None
        )
        offered = proposal.model() if proposal is not None else None
        kind = offered.body.kind if isinstance(offered, AppointmentProposalMessage) else "service"
        body = confirmation.body
        slot = AppointmentSlot(id=body.slot, start=body.start, end=body.end, place=body.place)
        found.append(Appointment(entry.peer, entry.message_id, kind, slot))
    return sorted(found, key=lambda a: parse_timestamp(a.slot.start))


async def reminders(agent: BuyerAgent, within: timedelta = REMIND_WITHIN) -> list[Appointment]:
    """Her appointments starting within ``within`` of her agent's own clock: what
    it reminds her of (spec §6.42), whatever the vendor sends."""
    now = agent.clock.now()
    return [
        a for a in await appointments(agent) if now <= parse_timestamp(a.slot.start) <= now + within
    ]


# -- her service history (spec §6.44) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One service record of her history, and the work her agent flags."""

    peer: str
    record: str
    completed_at: str
    mileage: int
    cost: str
    work: tuple[str, ...]
    flagged: tuple[str, ...]
    verified: bool

    def to_json(self) -> dict[str, object]:
        """JSON-safe form (the test driver's state)."""
        return {
            "peer": self.peer,
            "record": self.record,
            "completedAt": self.completed_at,
            "mileage": self.mileage,
            "cost": self.cost,
            "work": list(self.work),
            "flagged": list(self.flagged),
        }


async def _declined(agent: BuyerAgent, peer: str, notice: str | None) -> set[str]:
    """The proposal codes she declined in her answers to ``peer``'s notices
    (to ``notice`` only, when the record names it)."""
    codes: set[str] = set()
    for entry in await agent.store.history(peer=peer, type=MessageType.SERVICE_RESPONSE):
        response = entry.model()
        if entry.direction is not Direction.SENT or not isinstance(
            response, ServiceResponseMessage
        ):
            continue
        if notice is not None and response.body.notice.id != notice:
            continue
        codes.update(d.item for d in response.body.declined or () if d.item is not None)
    return codes


async def service_history(agent: BuyerAgent) -> list[ServiceEntry]:
    """Her service history: every service record she took, earliest first, with
    the work she declined flagged (spec §6.44, VRM-LIV-009)."""
    found = []
    for entry in await agent.store.history(type=MessageType.SERVICE_RECORD, include_refused=False):
        record = entry.model()
        if not isinstance(record, ServiceRecordMessage):
            continue
        body = record.body
        notice = body.notice.id if body.notice is not None else None
        flagged = agent.strategies.service_work.flags(
            body, await _declined(agent, entry.peer, notice)
        )
        found.append(
            ServiceEntry(
                entry.peer,
                entry.message_id,
                body.completed_at,
                body.mileage,
                f"{body.cost.currency} {body.cost.amount}",
                tuple(work.code for work in body.work),
                tuple(flagged),
                entry.token is not None,
            )
        )
    return found


# -- add-ons at the transaction (spec §6.45, §6.46) --------------------------------------------


async def answer_addons(
    agent: BuyerAgent, offer_id: str, accept: Sequence[str] | None = None
) -> Sent:
    """She answers the add-on offer ``offer_id`` (spec §6.46): each extra accepted
    or declined, ``accept`` naming those she takes (by her standing choice,
    :class:`~reference_buyer.living_rules.AddonChoice`, when ``None``).

    Raises:
        LocalProtocolError: no such offer, a code it does not have, or the move is
            illegal (answered already).
        RemoteProtocolError: the vendor refused the answer.
    """
    entry = await received(agent.store, offer_id, MessageType.ADDON_OFFER)
    offer = entry.model()
    assert isinstance(offer, AddonOfferMessage)
    codes = [addon.code for addon in offer.body.addons]
    if accept is not None and not set(accept) <= set(codes):
        raise LocalProtocolError(
            ErrorCode.INVALID_REQUEST, f"the offer's extras are {', '.join(codes)}"
        )
    taken = (
        {a.code for a in offer.body.addons if agent.strategies.extras.accepts(a)}
        if accept is None
        else set(accept)
    )
    body = build(
        AddonResponseBody,
        addon_offer=entry.ref(),
        accepted=tuple(c for c in codes if c in taken),
        declined=tuple(c for c in codes if c not in taken),
    )
    return await agent.sender.send(
        entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
    )


async def addon_terms(agent: BuyerAgent, peer: str) -> AddonTerms:
    """The extras she answered to ``peer``: the price of each she accepted, and
    the codes she declined (what an invoice may and may not charge, spec §6.45)."""
    accepted: dict[str, Decimal] = {}
    declined: set[str] = set()
    for entry in await agent.store.history(
        peer=peer, type=MessageType.ADDON_RESPONSE, include_refused=False
    ):
        answer = entry.model()
        if entry.direction is not Direction.SENT or not isinstance(answer, AddonResponseMessage):
            continue
        offered = await agent.store.entry(answer.body.addon_offer.id, direction=Direction.RECEIVED)
        offer = offered.model() if offered is not None else None
        if not isinstance(offer, AddonOfferMessage):
            continue
        prices = {a.code: Decimal(a.price.amount) for a in offer.body.addons}
        accepted.update({c: prices[c] for c in answer.body.accepted if c in prices})
        declined.update(answer.body.declined)
    return AddonTerms(accepted, frozenset(declined - set(accepted)))


# -- offers that put her at risk (seed 001) -----------------------------------------------------


async def offer_warnings(agent: BuyerAgent) -> dict[str, list[str]]:
    """Her agent's warnings about the offers she holds, by offer id (seed 001: an
    offer that takes her old car before it delivers the new one). Her standing
    policy never accepts a flagged offer; she may, herself, knowing why."""
    found = {}
    for view in await agent.store.offer_views():
        warnings = agent.strategies.offer_warnings.warnings(view.body)
        if warnings:
            found[view.id] = warnings
    return found
