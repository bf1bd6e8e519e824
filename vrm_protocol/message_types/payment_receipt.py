"""payment-receipt: the vendor receipts a payment (spec §6.28)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestAnswered, RequestClosed, RequestStatus
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._transaction import side_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import PaymentReceiptMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.PAYMENT_RECEIPT


def _query(message: PaymentReceiptMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.payment.id}))


def _guard(move: Move[PaymentReceiptMessage]) -> RelationshipState:
    payment_ref, draft = move.message.body.payment, move.draft
    # spec §6.28 (VRM-TRX-010): a payment of hers not yet receipted.
    payment = answered(
        move, payment_ref.id, "/body/payment/id", MessageType.PAYMENT_NOTICE, payment_ref.digest
    )
    if not payment.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"payment {payment.id} is already receipted",
            "/body/payment/id",
        )
    draft.emit(RequestAnswered(payment.id, move.message.id, _T))
    draft.emit(RequestClosed(payment.id))
    draft.update_request(replace(payment, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=PaymentReceiptMessage,
    section="6.28",
    steps=(LifecycleStep.TRANSACT, LifecycleStep.WELCOME),
    summary="The vendor receipts a payment: the amount and when it was received.",
    rows=side_rows(Role.VENDOR, _T, "A payment is receipted."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "payment names no payment notice of hers awaiting a receipt",
            "VRM-TRX-010"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "payment names the payment notice with another digest",
            "VRM-TRX-010"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
