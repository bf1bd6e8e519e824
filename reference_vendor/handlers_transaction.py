"""The transaction carried through, on the vendor's side (spec §6.22-§6.24).

After the deal the vendor delivers: it announces the delivery
(``delivery-notice``), then records the handover (``handover-record``) bound
to the deal (its accepted offer and her acceptance, each by the digest of the
bytes the vendor holds), listing what changed hands both ways. What it lists is
the :class:`~reference_vendor.transaction_rules.Handover` strategy's: with a
trade-in, the new item to her and the trade-in to the vendor together
(VRM-TRX-003). Her ``inspection-result`` needs no handling beyond the
runtime's but the digest of the record it names (the vendor holds the token
it signed): the state machine closes the handover and, on ``accept``,
records that the deal is delivered, which an invoice needs.

After her accepted inspection the vendor invoices (``invoice``): the accepted
offer's breakdown, as the :class:`~reference_vendor.transaction_rules.
Invoicing` strategy says; it answers her query with an adjusted invoice that
supersedes the one queried, and her payment with a receipt. Every message of
hers that names a message of the vendor is checked against the token it
signed (the digest).

The handlers are registered on :data:`reference_vendor.handlers.HANDLERS`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

from reference_vendor.handlers import HANDLERS
from reference_vendor.handlers_living import addon_lines
from reference_vendor.rules import message_ref, money
from reference_vendor.store import DealRow
from reference_vendor.transaction_rules import InvoicePlan
from vrm_agent.inbox import Inbound
from vrm_agent.store import RelationshipRecord
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import (
    BaseMessage,
    DeliveryDeal,
    DeliveryItem,
    DeliveryNoticeBody,
    DeliveryNoticeMessage,
    HandoverDeal,
    HandoverItem,
    HandoverRecordBody,
    InspectionResultMessage,
    InvoiceBody,
    InvoiceDeal,
    InvoiceDifference,
    InvoiceLine,
    InvoiceMessage,
    InvoiceQueryMessage,
    Location,
    MessageRef,
    OfferAcceptanceMessage,
    OfferMessage,
    PaymentNoticeMessage,
    PaymentReceiptBody,
    VRMModel,
)

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = ["Delivered", "deliver", "send_invoice"]

M = TypeVar("M", bound=BaseMessage)

#: Where deliveries take place, coarsely (spec §6.22: never a street address).
DELIVERY_PLACE = Location(country="GB")
#: When an invoice is due (spec §6.25 ``due``): fourteen days.
PAYMENT_TERMS: Final = timedelta(days=14)


@HANDLERS.on(InspectionResultMessage)
async def on_inspection(
    vendor: VendorAgent, inbound: Inbound[InspectionResultMessage], work: UnitOfWork
) -> None:
    """Her inspection binds the bytes of the record the vendor sent (spec §6.24,
    VRM-TRX-004): the state machine found the record; its digest is the vendor's
    to compare, since it holds the token it signed."""
    handover = inbound.message.body.handover
    stored = await vendor.store.message(vendor.party_id, handover.id)
    if stored is None or stored.peer != inbound.peer or stored.digest != handover.digest:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the inspection names the handover record with a digest other than that of the "
            "record as sent",
            path="/body/handover/digest",
        )


@dataclass(frozen=True, slots=True)
class Delivered:
    """The delivery notice and the handover record sent."""

    notice: str
    handover: str
    trade_in: bool


async def _own(vendor: VendorAgent, sender: str, message_id: str, model: type[M]) -> tuple[M, str]:
    stored = await vendor.store.message(sender, message_id)
    message = stored.model() if stored is not None else None
    if stored is None or not isinstance(message, model):
        raise LookupError(f"the deal's {model.__name__} {message_id} is not in the store")
    return message, stored.digest


async def _latest_deal(vendor: VendorAgent, peer: str) -> DealRow:
    deals = await vendor.store.deals_for(peer)
    if not deals:
        raise LookupError(f"no deal with {peer}")
    return deals[-1]


async def _send_one(vendor: VendorAgent, peer: str, body: VRMModel, parent: str | None) -> str:
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


async def deliver(vendor: VendorAgent, peer: str) -> Delivered:
    """Deliver the latest deal with ``peer``: the notice, then the handover record.

    Raises:
        LookupError: no relationship or no deal with ``peer``.
        LocalProtocolError: the state machine refuses a message (e.g. after an exit).
        StoreUnavailable: the store cannot be read or written.
    """
    deal = await _latest_deal(vendor, peer)
    offer, offer_digest = await _own(vendor, vendor.party_id, deal.offer_id, OfferMessage)
    acceptance, acceptance_digest = await _own(
        vendor, peer, deal.acceptance_id, OfferAcceptanceMessage
    )
    registered = acceptance.body.trade_in
    described = (
        f"{registered.item.description} ({registered.item.registration})"
        if registered is not None
        else None
    )
    plan = vendor.strategies.handover.plan(offer.body, described)
    offer_ref = message_ref(deal.offer_id, offer_digest)
    now = vendor.clock.now()
    notice = DeliveryNoticeBody(
        deal=DeliveryDeal(id=deal.id, offer=offer_ref),
        scheduled_for=format_timestamp(now),
        place=DELIVERY_PLACE,
        items=tuple(
            DeliveryItem(kind=c.kind, description=c.description, direction=c.direction)
            for c in plan.items
        ),
    )
    notice_id = await _send_one(vendor, peer, notice, deal.acceptance_id)
    _, notice_digest = await _own(vendor, vendor.party_id, notice_id, DeliveryNoticeMessage)
    record = HandoverRecordBody(
        deal=HandoverDeal(
            id=deal.id,
            offer=offer_ref,
            acceptance=MessageRef(id=deal.acceptance_id, digest=acceptance_digest),
            trade_in=plan.trade_in,
        ),
        notice=MessageRef(id=notice_id, digest=notice_digest),
        at=format_timestamp(vendor.clock.now()),
        items=tuple(
            HandoverItem(kind=c.kind, description=c.description, direction=c.direction)
            for c in plan.items
        ),
    )
    handover_id = await _send_one(vendor, peer, record, notice_id)
    return Delivered(notice_id, handover_id, plan.trade_in)


# -- invoice and payment (spec §6.25-§6.28) ------------------------------------------------------


def _invoice_body(
    deal: DealRow, offer: OfferMessage, offer_digest: str, plan: InvoicePlan, now: datetime,
    *, supersedes: MessageRef | None = None,
) -> InvoiceBody:  # fmt: skip
    currency = offer.body.price.total.currency
    total = sum((line.amount for line in plan.lines), Decimal(0))
    suffix = "-" + uuid.uuid4().hex[:6] if supersedes is not None else ""
    return InvoiceBody(
        id=f"INV-{deal.id}{suffix}",
        deal=InvoiceDeal(id=deal.id, offer=message_ref(deal.offer_id, offer_digest)),
        lines=tuple(
            InvoiceLine(
                code=line.code, description=line.description, amount=money(line.amount, currency)
            )
            for line in plan.lines
        ),
        total=money(total, currency),
        due=format_timestamp(now + PAYMENT_TERMS),
        **present(
            supersedes=supersedes,
            differences=tuple(
                InvoiceDifference(line=d.line, amount=money(d.amount, currency), reason=d.reason)
                for d in plan.differences
            )
            or None,
        ),
    )


async def send_invoice(vendor: VendorAgent, peer: str) -> str:
    """Invoice the latest deal with ``peer`` (spec §6.25): the accepted offer's
    breakdown, as the :class:`~reference_vendor.transaction_rules.Invoicing`
    strategy says. The state machine refuses it before she accepted a handover.

    Raises:
        LookupError: no relationship or no deal with ``peer``.
        LocalProtocolError: the state machine refuses it (not delivered yet).
        StoreUnavailable: the store cannot be read or written.
    """
    deal = await _latest_deal(vendor, peer)
    offer, offer_digest = await _own(vendor, vendor.party_id, deal.offer_id, OfferMessage)
    # spec §6.45 (VRM-LIV-013): the add-ons she accepted are invoiced, no other.
    plan = vendor.strategies.invoicing.plan(offer.body, await addon_lines(vendor, peer, deal.id))
    body = _invoice_body(deal, offer, offer_digest, plan, vendor.clock.now())
    return await _send_one(vendor, peer, body, None)


async def _sent_invoice(
    vendor: VendorAgent, inbound: Inbound[Any], invoice: MessageRef
) -> InvoiceMessage:
    """The vendor's invoice ``invoice`` names, by the digest of the token it signed
    (spec §6.26, §6.27, VRM-TRX-008).

    Raises:
        RemoteProtocolError: REFERENCE_MISMATCH.
    """
    stored = await vendor.store.message(vendor.party_id, invoice.id)
    message = stored.model() if stored is not None else None
    if (
        stored is None
        or stored.peer != inbound.peer
        or stored.digest != invoice.digest
        or not isinstance(message, InvoiceMessage)
    ):
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the message names the invoice with a digest other than that of the invoice as sent",
            path="/body/invoice/digest",
        )
    return message


@HANDLERS.on(InvoiceQueryMessage)
async def on_invoice_query(
    vendor: VendorAgent, inbound: Inbound[InvoiceQueryMessage], work: UnitOfWork
) -> None:
    """Her query: an adjusted invoice superseding the one queried (spec §6.26),
    the accepted offer's breakdown again."""
    body = inbound.message.body
    queried = await _sent_invoice(vendor, inbound, body.invoice)
    deal = next(
        (d for d in await vendor.store.deals_for(inbound.peer) if d.id == queried.body.deal.id),
        None,
    )
    if deal is None:  # pragma: no cover - an invoice is only sent for a deal held
        return
    offer, offer_digest = await _own(vendor, vendor.party_id, deal.offer_id, OfferMessage)
    plan = vendor.strategies.invoicing.plan(
        offer.body, await addon_lines(vendor, inbound.peer, deal.id)
    )
    inbound.answer(
        work,
        _invoice_body(deal, offer, offer_digest, plan, inbound.now, supersedes=body.invoice),
    )


@HANDLERS.on(PaymentNoticeMessage)
async def on_payment(
    vendor: VendorAgent, inbound: Inbound[PaymentNoticeMessage], work: UnitOfWork
) -> None:
    """Her payment of an invoice it sent: receipted for the amount received
    (spec §6.27, §6.28, VRM-TRX-013)."""
    body = inbound.message.body
    await _sent_invoice(vendor, inbound, body.invoice)
    inbound.answer(
        work,
        PaymentReceiptBody(
            payment=inbound.ref(), amount=body.amount, received_at=format_timestamp(inbound.now)
        ),
    )
