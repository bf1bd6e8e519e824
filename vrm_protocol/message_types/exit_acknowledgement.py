"""exit-acknowledgement: the export and the deletion receipt (spec §6.14; step 9)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import ExitCompleted
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, Refusal, TransitionRow
from vrm_protocol.models import ExitAcknowledgementMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.EXIT_ACKNOWLEDGEMENT


def _guard(move: Move[ExitAcknowledgementMessage]) -> RelationshipState:
    notice_id = move.message.body.notice.id
    exit_record = move.draft.core.exit
    if exit_record is None or exit_record.sender is move.sender:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "only the other party acknowledges an exit notice",
            "/from",
        )
    if notice_id != exit_record.notice_id:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"the acknowledgement names {notice_id}, not the exit notice {exit_record.notice_id}",
            "/body/notice/id",
        )
    # The exit voids every offer and open request; the history alone is kept (spec §7.5).
    move.draft.emit(ExitCompleted(notice_id))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ExitAcknowledgementMessage,
    section="6.14",
    steps=(LifecycleStep.EXIT,),
    summary="The other party confirms the exit, with the export asked for and the deletion "
    "receipt.",
    rows=(
        TransitionRow(_S.EXITING, Role.VENDOR, _T, _S.EXITED,
            "The vendor acknowledges her exit with the export and the deletion receipt."),
        TransitionRow(_S.EXITING, Role.BUYER, _T, _S.EXITED,
            "She acknowledges a vendor's exit (the vendor leaves the market)."),
    ),
    guard=_guard,
)  # fmt: skip
