"""The transaction carried through, on her side (spec §6.22-§6.24).

Her agent files the vendor's delivery notice and handover record as it files
any message (a journal line); what she sends, she decides: :func:`inspect`
judges a handover record by her guard (:class:`~reference_buyer.
transaction_rules.HandoverRule`) against the offer she accepted and the
acceptance she sent, and accepts it, or refuses it with her reasons and the
signed tokens as evidence, then raises the problem with the vendor (seed 001).

An invoice is taken only when it matches the offer she accepted (its total,
plus the differences the vendor itemised: :class:`~reference_buyer.
transaction_rules.InvoiceRule`); :func:`pay` pays it by the means she chose at
acceptance (:class:`~reference_buyer.transaction_rules.PaymentRule`: her
credit-union loan stays her loan), and a receipt must name her payment by its
digest.

The handlers are registered on :data:`reference_buyer.handlers.HANDLERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reference_buyer.handlers import HANDLERS, _filed, _journal
from reference_buyer.handlers_living import addon_terms
from reference_buyer.outgoing import build, latest, received
from vrm_agent.inbox import Inbound, Sent
from vrm_agent.unit import UnitOfWork, outgoing, present
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.models import (
    DeliveryNoticeMessage,
    HandoverRecordMessage,
    InspectionEvidence,
    InspectionReason,
    InspectionResultBody,
    InvoiceMessage,
    InvoiceQueryBody,
    OfferAcceptanceMessage,
    PaymentFinancing,
    PaymentNoticeBody,
    PaymentReceiptMessage,
    PersonalRfpMessage,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent
    from reference_buyer.store import Entry

__all__ = ["Inspection", "inspect", "pay", "query_invoice"]

for _model in (DeliveryNoticeMessage, HandoverRecordMessage):
    HANDLERS.on(_model)(_filed)


@dataclass(frozen=True, slots=True)
class Inspection:
    """Her inspection: the decision, the reasons, and what her agent sent."""

    decision: str
    reasons: tuple[str, ...]
    sent: tuple[str, ...]


def _evidence(entry: Entry) -> InspectionEvidence:
    assert entry.token is not None  # a signed message she received
    return build(InspectionEvidence, message=entry.ref(), token=entry.token.decode("ascii"))


async def inspect(agent: BuyerAgent, handover_id: str) -> Inspection:
    """She inspects the handover record ``handover_id`` (spec §6.24).

    Her guard judges it against the offer she accepted (does the deal have a
    trade-in?) and the acceptance she sent (by its digest). She accepts it, or
    refuses it with her reasons and, as evidence, the record's token and that
    of the offer she accepted; then she raises the problem with the vendor, a
    support request regarding the record (VRM-TRX-005).

    Raises:
        LocalProtocolError: no such record, no deal to inspect, or the move is illegal.
        RemoteProtocolError: the vendor refused what she sent.
    """
    store = agent.store
    entry = await received(store, handover_id, MessageType.HANDOVER_RECORD)
    message = entry.model()
    assert isinstance(message, HandoverRecordMessage)
    core = await agent.core(entry.peer)
    if core.accepted_offer is None:
        raise LocalProtocolError(ErrorCode.ILLEGAL_TRANSITION, "she has no deal with this party")
    accepted = await store.offer_view(core.accepted_offer)
    acceptance = (
        await store.entry(core.acceptance, direction=Direction.SENT)
        if core.acceptance is not None
        else None
    )
    reasons = agent.strategies.handovers.judge(
        message.body,
        trade_in=accepted is not None and accepted.body.trade_in is not None,
        acceptance_digest=acceptance.digest if acceptance is not None else None,
    )
    if not reasons:
        body = build(InspectionResultBody, handover=entry.ref(), decision="accept")
        sent = await agent.sender.send(
            entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
        )
        return Inspection("accept", (), (sent.message.message_id,))
    evidence = [_evidence(entry)]
    if accepted is not None and accepted.entry.token is not None:
        evidence.append(_evidence(accepted.entry))
    body = build(
        InspectionResultBody,
        handover=entry.ref(),
        decision="refuse",
        reasons=tuple(build(InspectionReason, code=code, text=text) for code, text in reasons),
        evidence=tuple(evidence),
    )
    refusal = await agent.sender.send(
        entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
    )
    problem = await agent.owning.support_request(
        entry.peer,
        subject="The handover is not the deal I accepted",
        description=" ".join(text for _, text in reasons)
        + f" My signed refusal {refusal.message.message_id} carries your record as evidence.",
        severity="high",
        regarding=entry.message_id,
    )
    return Inspection(
        "refuse",
        tuple(code for code, _ in reasons),
        (refusal.message.message_id, problem.message.message_id),
    )


# -- invoice and payment (spec §6.25-§6.28) ------------------------------------------------------


@HANDLERS.on(InvoiceMessage)
async def on_invoice(buyer: BuyerAgent, inbound: Inbound[InvoiceMessage], work: UnitOfWork) -> None:
    """An invoice is taken only when it totals the offer she accepted, plus the
    differences the vendor itemised (spec §6.25, VRM-TRX-011); the state machine
    checked it names that offer and follows her accepted inspection."""
    before = inbound.before
    accepted_id = before.core.accepted_offer if before is not None else None
    accepted = await buyer.store.offer_view(accepted_id) if accepted_id is not None else None
    buyer.strategies.invoices.check(
        inbound.message.body,
        accepted.body if accepted is not None else None,
        # spec §6.45 (VRM-LIV-014): the extras she took, and never one she declined.
        await addon_terms(buyer, inbound.peer),
    )
    _journal(inbound, work)


@HANDLERS.on(PaymentReceiptMessage)
async def on_payment_receipt(
    buyer: BuyerAgent, inbound: Inbound[PaymentReceiptMessage], work: UnitOfWork
) -> None:
    """A receipt names her payment by the digest of the token she signed (spec
    §6.28, VRM-TRX-010)."""
    payment = inbound.message.body.payment
    sent = await buyer.store.entry(payment.id, direction=Direction.SENT)
    if sent is None or sent.peer != inbound.peer or sent.digest != payment.digest:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the receipt names her payment with a digest other than that of the payment sent",
            path="/body/payment/digest",
        )
    _journal(inbound, work)


async def _acceptance(agent: BuyerAgent, peer: str) -> OfferAcceptanceMessage | None:
    core = await agent.core(peer)
    if core.acceptance is None:
        return None
    entry = await agent.store.entry(core.acceptance, direction=Direction.SENT)
    message = entry.model() if entry is not None else None
    return message if isinstance(message, OfferAcceptanceMessage) else None


async def _lender(
    agent: BuyerAgent, peer: str, acceptance: OfferAcceptanceMessage | None
) -> str | None:
    """Who lends: the issuer of the ability-to-pay attestation she lined her
    financing up with, in her acceptance or else in her latest RFP to ``peer``."""
    carried = [*(acceptance.body.attestations or ())] if acceptance is not None else []
    rfp = await latest(agent.store, peer, MessageType.PERSONAL_RFP, Direction.SENT)
    message = rfp.model() if rfp is not None else None
    if isinstance(message, PersonalRfpMessage):
        carried.extend(message.body.attestations or ())
    return next((a.issuer for a in carried if a.kind == "ability-to-pay"), None)


async def pay(agent: BuyerAgent, invoice_id: str) -> Sent:
    """She pays the invoice ``invoice_id`` (spec §6.27), for its total, by the
    means she chose when she accepted the deal (VRM-TRX-012): the financing she
    lined up is carried into the payment, with its plan and its lender.

    Raises:
        LocalProtocolError: no such invoice, or it awaits no payment (paid,
            superseded).
        RemoteProtocolError: the vendor refused the payment.
    """
    entry = await received(agent.store, invoice_id, MessageType.INVOICE)
    invoice = entry.model()
    assert isinstance(invoice, InvoiceMessage)
    acceptance = await _acceptance(agent, entry.peer)
    means = agent.strategies.payments.means(
        acceptance.body if acceptance is not None else None,
        await _lender(agent, entry.peer, acceptance),
    )
    financing = (
        build(PaymentFinancing, **present(plan=means.plan, provider=means.provider))
        if means.method == "finance" and (means.plan is not None or means.provider is not None)
        else None
    )
    body = build(
        PaymentNoticeBody,
        invoice=entry.ref(),
        method=means.method,
        amount=invoice.body.total,
        **present(financing=financing),
    )
    return await agent.sender.send(
        entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
    )


async def query_invoice(agent: BuyerAgent, invoice_id: str, lines: list[str], reason: str) -> Sent:
    """She queries ``lines`` of the invoice ``invoice_id`` (spec §6.26); the vendor
    answers with an invoice that supersedes it.

    Raises:
        LocalProtocolError: no such invoice, or it awaits no payment.
        RemoteProtocolError: the vendor refused the query.
    """
    entry = await received(agent.store, invoice_id, MessageType.INVOICE)
    body = build(InvoiceQueryBody, invoice=entry.ref(), lines=tuple(lines), reason=reason)
    return await agent.sender.send(
        entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
    )
