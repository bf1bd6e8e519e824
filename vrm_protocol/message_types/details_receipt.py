"""details-receipt: the party holds her new details (spec §6.74)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    LedgerQuery,
    RequestAnswered,
    RequestClosed,
    RequestStatus,
)
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.message_types.details_update import HOLDING
from vrm_protocol.models import DetailsReceiptMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.DETAILS_RECEIPT


def _query(message: DetailsReceiptMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.update.id}))


def _guard(move: Move[DetailsReceiptMessage]) -> RelationshipState:
    ref, draft = move.message.body.update, move.draft
    # spec §6.74 (VRM-MYT-008): her update, by its digest, receipted once.
    update = answered(move, ref.id, "/body/update/id", MessageType.DETAILS_UPDATE, ref.digest)
    if not update.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"update {update.id} is already receipted",
            "/body/update/id",
        )
    draft.emit(RequestAnswered(update.id, move.message.id, _T))
    draft.emit(RequestClosed(update.id))
    draft.update_request(replace(update, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=DetailsReceiptMessage,
    section="6.74",
    steps=(LifecycleStep.SERVICING,),
    summary="The party's receipt of her new details: the items it now holds the new value of.",
    rows=tuple(
        TransitionRow(state, Role.VENDOR, _T, state, "Her update is receipted where it was sent.")
        for state in HOLDING
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "update names no update of hers awaiting a receipt",
            "VRM-MYT-008"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "update names her update with another digest",
            "VRM-MYT-008"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
