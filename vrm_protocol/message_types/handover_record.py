"""handover-record: what changed hands at delivery, both ways (spec §6.23; seed 001)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestOpened, RequestRecord
from vrm_protocol.message_types._transaction import (
    check_acceptance,
    check_accepted_offer,
    offer_query,
    side_rows,
)
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import HandoverItem, HandoverRecordMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC", "one_sided"]

_T = MessageType.HANDOVER_RECORD


def _query(message: HandoverRecordMessage, sender: Role) -> LedgerQuery:
    return offer_query(message.body.deal.offer)


def one_sided(
    items: tuple[HandoverItem, ...] | list[HandoverItem], *, trade_in: bool
) -> str | None:
    """Why a handover listing ``items`` is one-sided for a deal with (or without)
    a trade-in, or ``None`` when it is not (spec §6.23, VRM-TRX-002): with a
    trade-in, the new item goes to the individual and the trade-in to the
    vendor together, or neither does; without one, no trade-in changes hands."""
    delivered = any(i.kind == "new-vehicle" and i.direction == "to-buyer" for i in items)
    taken = any(i.kind == "trade-in" and i.direction == "to-vendor" for i in items)
    if not trade_in:
        return "the deal has no trade-in, yet one is listed as changing hands" if taken else None
    if delivered and not taken:
        return "the new item goes to the individual, but the trade-in is not listed as taken"
    if taken and not delivered:
        return "the trade-in is taken, but the new item is not listed as delivered"
    return None


def _guard(move: Move[HandoverRecordMessage]) -> RelationshipState:
    body = move.message.body
    # spec §6.23 (VRM-TRX-001): bound to the deal under way: its offer, its acceptance.
    check_accepted_offer(move, body.deal.offer, "/body/deal/offer")
    check_acceptance(move, body.deal.acceptance, "/body/deal/acceptance")
    why = one_sided(body.items, trade_in=body.deal.trade_in)
    if why is not None:
        # Seed 001 (VRM-TRX-002): both or neither; never one car without the other.
        raise Refusal(ErrorCode.ILLEGAL_TRANSITION, f"a one-sided handover: {why}", "/body/items")
    # The record awaits her inspection (spec §6.24).
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=HandoverRecordMessage,
    section="6.23",
    steps=(LifecycleStep.TRANSACT, LifecycleStep.WELCOME),
    summary="What changed hands at delivery, both ways, bound to the deal; she inspects it.",
    rows=side_rows(Role.VENDOR, _T,
        "The handover completes the deal; her inspection decides whether it is delivered "
        "(seed 001)."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "deal.offer is not the accepted offer with its digest, or deal.acceptance not its "
            "acceptance",
            "VRM-TRX-001"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "deal.tradeIn is true and only one of the new item (to the buyer) and the trade-in "
            "(to the vendor) is listed, or it is false and a trade-in is listed",
            "VRM-TRX-002"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
