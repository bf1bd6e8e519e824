"""delivery-notice: the vendor announces the delivery of the deal (spec §6.22; step 5)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.message_types._transaction import check_accepted_offer, offer_query, side_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move
from vrm_protocol.models import DeliveryNoticeMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.DELIVERY_NOTICE


def _query(message: DeliveryNoticeMessage, sender: Role) -> LedgerQuery:
    return offer_query(message.body.deal.offer)


def _guard(move: Move[DeliveryNoticeMessage]) -> RelationshipState:
    # spec §6.22 (VRM-TRX-001): the delivery of exactly the deal under way.
    check_accepted_offer(move, move.message.body.deal.offer, "/body/deal/offer")
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=DeliveryNoticeMessage,
    section="6.22",
    steps=(LifecycleStep.TRANSACT, LifecycleStep.WELCOME),
    summary="The vendor announces when and where the deal is delivered, and what changes hands.",
    rows=side_rows(Role.VENDOR, _T,
        "The deal is delivered after its confirmation, before or after the terms of sharing "
        "(seed 000 steps 4-5)."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "deal.offer is not the accepted offer with its digest",
            "VRM-TRX-001"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
