"""support-request: a problem she reports (spec §6.11; step 8)."""

from __future__ import annotations

from vrm_protocol.ledger import RequestOpened, RequestRecord, ResumeStateSet
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import SupportRequestMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.SUPPORT_REQUEST


def _guard(move: Move[SupportRequestMessage]) -> RelationshipState:
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    if move.row.state is not _S.PROBLEM:
        # spec §7.1: resolving the last request returns to the state before the problem.
        move.draft.emit(ResumeStateSet(move.row.state))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=SupportRequestMessage,
    section="6.11",
    steps=(LifecycleStep.PROBLEMS,),
    summary="A problem she reports, with its severity and what it concerns.",
    rows=(
        TransitionRow(_S.WELCOME, _B, _T, _S.PROBLEM,
            "Delivery itself can go wrong (seed 001: the trade-in handover)."),
        TransitionRow(_S.SERVICING, _B, _T, _S.PROBLEM,
            "A problem beyond routine service is managed as such (step 8)."),
        TransitionRow(_S.DEVELOPMENT, _B, _T, _S.PROBLEM,
            "A problem is managed as such whatever else is going on (step 8)."),
        TransitionRow(_S.PROBLEM, _B, _T, _S.PROBLEM,
            "A further problem while one is open stays in problem management."),
    ),
    guard=_guard,
)  # fmt: skip
