"""invoice: the vendor's invoice for a delivered deal (spec §6.25)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, InvalidOperation

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    LedgerQuery,
    RequestClosed,
    RequestOpened,
    RequestRecord,
    RequestStatus,
)
from vrm_protocol.message_types._transaction import check_accepted_offer, side_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import InvoiceBody, InvoiceMessage, Money
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC", "amount", "sum_of_lines"]

_T = MessageType.INVOICE


def amount(money: Money) -> Decimal:
    """The amount of ``money`` (a decimal string the schema checked)."""
    try:
        return Decimal(money.amount)
    except InvalidOperation:  # pragma: no cover - the schema allows only decimals
        return Decimal(0)


def sum_of_lines(body: InvoiceBody) -> Decimal | None:
    """The sum of the lines, or ``None`` when a line is in another currency than the total."""
    if any(line.amount.currency != body.total.currency for line in body.lines):
        return None
    return sum((amount(line.amount) for line in body.lines), Decimal(0))


def _query(message: InvoiceMessage, sender: Role) -> LedgerQuery:
    body = message.body
    return LedgerQuery(
        offers=frozenset({body.deal.offer.id}),
        requests=frozenset({body.supersedes.id}) if body.supersedes is not None else frozenset(),
        open_requests_of=MessageType.INSPECTION_RESULT,
    )


def _guard(move: Move[InvoiceMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    # spec §6.25 (VRM-TRX-001): the invoice of the deal under way.
    check_accepted_offer(move, body.deal.offer, "/body/deal/offer")
    delivered = [
        r for r in draft.open_requests(MessageType.INSPECTION_RESULT) if r.sender is Role.BUYER
    ]
    if not delivered:
        # spec §6.25 (VRM-TRX-006): no invoice before she accepted a handover.
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "the deal is not delivered: she has accepted no handover",
            "/body/deal",
        )
    total = sum_of_lines(body)
    if total is None or total != amount(body.total):
        # spec §6.25 (VRM-TRX-007): the total is the sum of the lines.
        raise Refusal(
            ErrorCode.SCHEMA_INVALID,
            f"the total {body.total.amount} {body.total.currency} is not the sum of the lines",
            "/body/total",
        )
    if body.supersedes is not None:
        # spec §6.26 (VRM-TRX-007): an adjustment replaces an invoice of this vendor
        # still awaiting payment.
        earlier = draft.request(body.supersedes.id)
        if (
            earlier is None
            or earlier.type is not _T
            or earlier.sender is not move.sender
            or not earlier.open
        ):
            raise Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                f"the invoice supersedes no open invoice of the vendor: {body.supersedes.id}",
                "/body/supersedes/id",
            )
        draft.emit(RequestClosed(earlier.id))
        draft.update_request(replace(earlier, status=RequestStatus.CLOSED))
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    draft.emit(RequestOpened(record))
    draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=InvoiceMessage,
    section="6.25",
    steps=(LifecycleStep.TRANSACT, LifecycleStep.WELCOME),
    summary="The vendor's invoice for a delivered deal: lines, total, itemised differences.",
    rows=side_rows(Role.VENDOR, _T,
        "The vendor invoices a delivered deal (and services afterwards); an adjustment "
        "supersedes an invoice."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "deal.offer is not the accepted offer with its digest",
            "VRM-TRX-001"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "she has accepted no handover of the deal",
            "VRM-TRX-006"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "total is not the sum of the lines, in one currency",
            "VRM-TRX-007"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
