"""invoice-query: she queries lines of an invoice (spec §6.26)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._transaction import side_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import InvoiceQueryMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.INVOICE_QUERY


def _query(message: InvoiceQueryMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.invoice.id}))


def _guard(move: Move[InvoiceQueryMessage]) -> RelationshipState:
    invoice = move.message.body.invoice
    # spec §6.26 (VRM-TRX-008): an invoice of the vendor still awaiting payment.
    record = answered(move, invoice.id, "/body/invoice/id", MessageType.INVOICE, invoice.digest)
    if not record.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"invoice {record.id} is paid or superseded",
            "/body/invoice/id",
        )
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=InvoiceQueryMessage,
    section="6.26",
    steps=(LifecycleStep.TRANSACT, LifecycleStep.WELCOME),
    summary="She queries lines of an invoice; the vendor answers with an invoice superseding it.",
    rows=side_rows(Role.BUYER, _T, "An invoice may be queried while it awaits payment."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "invoice names no invoice of the vendor awaiting payment",
            "VRM-TRX-008"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "invoice names the invoice with another digest",
            "VRM-TRX-008"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
