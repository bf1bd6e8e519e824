"""payment-notice: she pays an invoice by the means she chose (spec §6.27)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    LedgerQuery,
    RequestAnswered,
    RequestClosed,
    RequestOpened,
    RequestRecord,
    RequestStatus,
)
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._transaction import side_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import PaymentNoticeMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.PAYMENT_NOTICE


def _query(message: PaymentNoticeMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.invoice.id}))


def _guard(move: Move[PaymentNoticeMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    # spec §6.27 (VRM-TRX-008): an invoice of the vendor still awaiting payment.
    invoice = answered(
        move, body.invoice.id, "/body/invoice/id", MessageType.INVOICE, body.invoice.digest
    )
    if not invoice.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"invoice {invoice.id} is paid or superseded",
            "/body/invoice/id",
        )
    financing = body.financing
    if body.method == "finance" and (
        financing is None or (financing.plan is None and financing.provider is None)
    ):
        # spec §6.27 (VRM-TRX-008): financing pays; it says which (a plan, a lender).
        raise Refusal(
            ErrorCode.SCHEMA_INVALID,
            "a payment by finance names its financing: its plan, its lender or both",
            "/body/financing",
        )
    draft.emit(RequestAnswered(invoice.id, move.message.id, _T))
    draft.emit(RequestClosed(invoice.id))
    draft.update_request(replace(invoice, status=RequestStatus.CLOSED))
    # The payment awaits the vendor's receipt (spec §6.28).
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    draft.emit(RequestOpened(record))
    draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=PaymentNoticeMessage,
    section="6.27",
    steps=(LifecycleStep.TRANSACT, LifecycleStep.WELCOME),
    summary="She pays an invoice, by the financing or means she chose at acceptance.",
    rows=side_rows(Role.BUYER, _T, "An invoice awaiting payment is paid."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "invoice names no invoice of the vendor awaiting payment",
            "VRM-TRX-008"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "invoice names the invoice with another digest",
            "VRM-TRX-008"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "method is finance and no financing (plan or provider) is named",
            "VRM-TRX-008"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
