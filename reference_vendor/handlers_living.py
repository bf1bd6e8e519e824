"""Living with the product, on the vendor's side (spec §6.40 on): appointments.

The vendor proposes slots for a test drive or a service (``appointment-
proposal``; the test driver's ``/appointment``), from its calendar
(:class:`~reference_vendor.living_rules.Calendar`). Her booking must name a
slot of the proposal it names, by the digest of the proposal the vendor
signed (VRM-LIV-001, VRM-LIV-002); the vendor answers it at once with its
confirmation of the slot she booked, as the :class:`~reference_vendor.
living_rules.Confirming` strategy says (VRM-LIV-004). A cancellation must
name the appointment by the digest of the message as sent.
The booking tells the vendor nothing but her pseudonym and a slot.

The handlers are registered on :data:`reference_vendor.handlers.HANDLERS`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from reference_vendor.handlers import HANDLERS
from reference_vendor.living_rules import EXTRAS, STANDARD_CHARGE, Extra, Work
from reference_vendor.rules import message_ref, money
from reference_vendor.transaction_rules import Line
from vrm_agent.inbox import Inbound
from vrm_agent.store import RelationshipRecord
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.ledger import RequestStatus
from vrm_protocol.models import (
    Addon,
    AddonDeal,
    AddonOfferBody,
    AddonOfferMessage,
    AddonResponseMessage,
    AppointmentBookingMessage,
    AppointmentCancellationBody,
    AppointmentCancellationMessage,
    AppointmentConfirmationBody,
    AppointmentConfirmationMessage,
    AppointmentProposalBody,
    AppointmentProposalMessage,
    OfferMessage,
    ServiceNoticeMessage,
    ServicePart,
    ServiceRecordBody,
    ServiceResponseMessage,
    ServiceWork,
    VRMModel,
)
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = [
    "APPOINTMENT_KINDS",
    "addon_lines",
    "cancel_appointment",
    "propose_addons",
    "propose_appointment",
    "send_in_thread",
    "send_service_record",
]

#: The kinds of appointment a proposal may be for (spec §6.40).
APPOINTMENT_KINDS = ("test-drive", "service", "handover")


async def send_in_thread(vendor: VendorAgent, peer: str, body: VRMModel, parent: str | None) -> str:
    """Send ``body`` in the relationship's latest thread; its id.

    Raises:
        LocalProtocolError: the state machine refuses it (nothing was sent).
    """

    async def compose(record: RelationshipRecord, work: UnitOfWork) -> None:
        # Vendors write only in threads the individual started (spec §5.2).
        work.reply(body, thread=record.thread, parent=parent)

    work = await vendor.pipeline.act(peer, compose)
    if not work.outbound:
        raise LocalProtocolError(
            ErrorCode.ILLEGAL_TRANSITION, "the relationship's state does not allow it now"
        )
    vendor.outbox.wake()
    return work.outbound[0].message.message_id


async def propose_appointment(
    vendor: VendorAgent, peer: str, kind: str, about: str | None = None
) -> str:
    """Propose slots for an appointment of ``kind`` to ``peer`` (spec §6.40),
    about the vendor's message ``about`` (a service notice) when given; its id.

    Raises:
        LookupError: no relationship with ``peer``, or ``about`` is not a message
            of the vendor to ``peer``.
        LocalProtocolError: the state machine refuses it (no appointments now).
        StoreUnavailable: the store cannot be read or written.
    """
    if await vendor.store.relationship(peer) is None:
        raise LookupError(f"no relationship with {peer}")
    about_ref = None
    if about is not None:
        stored = await vendor.store.message(vendor.party_id, about)
        if stored is None or stored.peer != peer:
            raise LookupError(f"no message {about} of the vendor to {peer}")
        about_ref = message_ref(about, stored.digest)
    plan = vendor.strategies.calendar.slots(kind, vendor.clock.now())
    body = AppointmentProposalBody(
        kind=kind,
        slots=plan.slots,
        respond_by=format_timestamp(plan.respond_by),
        **present(about=about_ref),
    )
    return await send_in_thread(vendor, peer, body, about)


async def cancel_appointment(vendor: VendorAgent, peer: str, appointment: str, reason: str) -> str:
    """Cancel an appointment with ``peer`` (spec §6.43): its confirmation, or her
    booking not yet confirmed; its id.

    Raises:
        LookupError: no such booking or confirmation with ``peer``.
        LocalProtocolError: the state machine refuses it (done or cancelled).
        StoreUnavailable: the store cannot be read or written.
    """
    stored = await vendor.store.message(vendor.party_id, appointment) or await vendor.store.message(
        peer, appointment
    )
    named = stored.model() if stored is not None else None
    if (
        stored is None
        or stored.peer != peer
        or not isinstance(named, AppointmentConfirmationMessage | AppointmentBookingMessage)
    ):
        raise LookupError(f"no appointment {appointment} with {peer}")
    body = AppointmentCancellationBody(
        appointment=message_ref(appointment, stored.digest), reason=reason
    )
    return await send_in_thread(vendor, peer, body, appointment)


@HANDLERS.on(AppointmentCancellationMessage)
async def on_cancellation(
    vendor: VendorAgent, inbound: Inbound[AppointmentCancellationMessage], work: UnitOfWork
) -> None:
    """Her cancellation binds the bytes of the appointment it names (spec §6.43,
    VRM-LIV-006): the state machine found it open; the digest of a confirmation
    is the vendor's to compare, since it holds the token it signed."""
    named = inbound.message.body.appointment
    stored = await vendor.store.message(vendor.party_id, named.id) or await vendor.store.message(
        inbound.peer, named.id
    )
    if stored is None or stored.peer != inbound.peer or stored.digest != named.digest:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the cancellation names the appointment with a digest other than that of the "
            "message as sent",
            path="/body/appointment/digest",
        )


@HANDLERS.on(AppointmentBookingMessage)
async def on_booking(
    vendor: VendorAgent, inbound: Inbound[AppointmentBookingMessage], work: UnitOfWork
) -> None:
    """Her booking names a slot of the vendor's proposal, by the digest of the
    proposal as sent (spec §6.41, VRM-LIV-001, VRM-LIV-002); it is confirmed at
    once, the slot she booked (VRM-LIV-004)."""
    body = inbound.message.body
    stored = await vendor.store.message(vendor.party_id, body.proposal.id)
    proposal = stored.model() if stored is not None else None
    if (
        stored is None
        or stored.peer != inbound.peer
        or stored.digest != body.proposal.digest
        or not isinstance(proposal, AppointmentProposalMessage)
    ):
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the booking names the proposal with a digest other than that of the proposal sent",
            path="/body/proposal/digest",
        )
    booked = next((slot for slot in proposal.body.slots if slot.id == body.slot), None)
    if booked is None:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            f"the proposal has no slot {body.slot!r}",
            path="/body/slot",
        )
    slot = vendor.strategies.confirming.confirm(booked)
    inbound.answer(
        work,
        AppointmentConfirmationBody(
            booking=inbound.ref(),
            slot=slot.id,
            start=slot.start,
            end=slot.end,
            place=slot.place,
            contact="Service reception" if proposal.body.kind == "service" else "Sales desk",
        ),
    )


# -- service records (spec §6.44) -----------------------------------------------------------------


async def send_service_record(
    vendor: VendorAgent,
    peer: str,
    *,
    response: str | None = None,
    appointment: str | None = None,
    mileage: int = 12480,
) -> str:
    """Record the work done for ``peer`` (spec §6.44): the proposals of the notice
    her service-response ``response`` answered, as the :class:`~reference_vendor.
    living_rules.Servicing` strategy says (the ones she accepted, VRM-LIV-008),
    at the appointment whose confirmation is ``appointment``; its id.

    Raises:
        LookupError: no relationship with ``peer``, or ``response`` or
            ``appointment`` names no such message of the relationship.
        LocalProtocolError: the state machine refuses it.
        StoreUnavailable: the store cannot be read or written.
    """
    if await vendor.store.relationship(peer) is None:
        raise LookupError(f"no relationship with {peer}")
    work = []
    notice_ref = None
    if response is not None:
        answered = await vendor.store.message(peer, response)
        answer = answered.model() if answered is not None else None
        if not isinstance(answer, ServiceResponseMessage):
            raise LookupError(f"no service response {response} of {peer}")
        sent = await vendor.store.message(vendor.party_id, answer.body.notice.id)
        notice = sent.model() if sent is not None else None
        if sent is None or not isinstance(notice, ServiceNoticeMessage):
            raise LookupError(f"no service notice {answer.body.notice.id} to {peer}")
        notice_ref = message_ref(notice.id, sent.digest)
        work = vendor.strategies.servicing.work(notice.body.proposals or (), answer.body)
    if not work:
        work = [Work("inspection", "General inspection", STANDARD_CHARGE)]
    appointment_ref = None
    if appointment is not None:
        confirmed = await vendor.store.message(vendor.party_id, appointment)
        if confirmed is None or not isinstance(confirmed.model(), AppointmentConfirmationMessage):
            raise LookupError(f"no appointment confirmation {appointment} to {peer}")
        appointment_ref = message_ref(appointment, confirmed.digest)
    parts = [ServicePart(description="Oil filter", quantity=1)]
    if any(w.code == "tyre-replacement" for w in work):
        parts.append(ServicePart(code="tyre", description="Tyre", quantity=4))
    body = ServiceRecordBody(
        work=tuple(ServiceWork(code=w.code, description=w.description) for w in work),
        parts=tuple(parts),
        cost=money(sum((w.price for w in work), Decimal(0)), "GBP"),
        mileage=mileage,
        completed_at=format_timestamp(vendor.clock.now()),
        **present(appointment=appointment_ref, notice=notice_ref),
    )
    return await send_in_thread(vendor, peer, body, appointment or response)


# -- add-ons at the transaction (spec §6.45, §6.46) --------------------------------------------

#: How long an add-on offer holds.
ADDONS_VALID_FOR = timedelta(days=7)


async def propose_addons(vendor: VendorAgent, peer: str) -> str:
    """Propose the dealer's extras for the latest deal with ``peer`` (spec §6.45),
    bound to its accepted offer by the digest of the offer as sent; its id.

    Raises:
        LookupError: no relationship or no deal with ``peer``.
        LocalProtocolError: the state machine refuses it.
        StoreUnavailable: the store cannot be read or written.
    """
    deals = await vendor.store.deals_for(peer)
    if not deals:
        raise LookupError(f"no deal with {peer}")
    deal = deals[-1]
    stored = await vendor.store.message(vendor.party_id, deal.offer_id)
    offer = stored.model() if stored is not None else None
    if stored is None or not isinstance(offer, OfferMessage):
        raise LookupError(f"the deal's offer {deal.offer_id} is not in the store")
    currency = offer.body.price.total.currency
    now = vendor.clock.now()
    body = AddonOfferBody(
        deal=AddonDeal(id=deal.id, offer=message_ref(deal.offer_id, stored.digest)),
        addons=tuple(
            Addon(code=e.code, description=e.description, price=money(e.price, currency))
            for e in EXTRAS
        ),
        valid_until=format_timestamp(now + ADDONS_VALID_FOR),
    )
    return await send_in_thread(vendor, peer, body, deal.acceptance_id)


@HANDLERS.on(AddonResponseMessage)
async def on_addon_response(
    vendor: VendorAgent, inbound: Inbound[AddonResponseMessage], work: UnitOfWork
) -> None:
    """Her answer names the vendor's add-on offer by the digest of the offer as
    sent, and answers each of its extras, and no other (spec §6.46,
    VRM-LIV-011, VRM-LIV-012)."""
    body = inbound.message.body
    offer = await _sent_addon_offer(vendor, inbound.peer, body.addon_offer.id)
    if offer is None or offer[1] != body.addon_offer.digest:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the answer names the add-on offer with a digest other than that of the offer sent",
            path="/body/addonOffer/digest",
        )
    proposed = {addon.code for addon in offer[0].body.addons}
    answered = [*body.accepted, *body.declined]
    if sorted(answered) != sorted(proposed):
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            f"the answer must accept or decline each of {sorted(proposed)}, once; it "
            f"answers {sorted(answered)}",
            path="/body/accepted",
        )


async def _sent_addon_offer(
    vendor: VendorAgent, peer: str, offer_id: str
) -> tuple[AddonOfferMessage, str] | None:
    stored = await vendor.store.message(vendor.party_id, offer_id)
    offer = stored.model() if stored is not None else None
    if stored is None or stored.peer != peer or not isinstance(offer, AddonOfferMessage):
        return None
    return offer, stored.digest


async def addon_lines(vendor: VendorAgent, peer: str, deal_id: str) -> list[Line]:
    """The invoice lines of the extras of deal ``deal_id`` with ``peer``, as the
    :class:`~reference_vendor.living_rules.AddonInvoicing` strategy charges them
    from her answers (spec §6.45, VRM-LIV-013): her answers stay on the ledger."""
    lines: list[Line] = []
    for record in await vendor.store.requests(peer):
        if record.type is not MessageType.ADDON_RESPONSE or record.status is RequestStatus.VOID:
            continue
        stored = await vendor.store.message(peer, record.id)
        answer = stored.model() if stored is not None else None
        if not isinstance(answer, AddonResponseMessage):
            continue
        offer = await _sent_addon_offer(vendor, peer, answer.body.addon_offer.id)
        if offer is None or offer[0].body.deal.id != deal_id:
            continue
        proposed = [
            Extra(a.code, a.description, Decimal(a.price.amount)) for a in offer[0].body.addons
        ]
        charged = vendor.strategies.addons.charged(proposed, set(answer.body.accepted))
        lines.extend(Line(e.code, e.description, e.price) for e in charged)
    return lines
