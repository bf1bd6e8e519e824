"""service-response: her answer to a service notice (spec §6.10; steps 6, 7)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestAnswered
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import ServiceResponseMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.SERVICE_RESPONSE


def _query(message: ServiceResponseMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.notice.id}))


def _guard(move: Move[ServiceResponseMessage]) -> RelationshipState:
    notice = move.message.body.notice
    request = answered(
        move, notice.id, "/body/notice/id", MessageType.SERVICE_NOTICE, notice.digest
    )
    move.draft.emit(RequestAnswered(request.id, move.message.id, _T))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ServiceResponseMessage,
    section="6.10",
    steps=(LifecycleStep.SERVICING, LifecycleStep.DEVELOPMENT),
    summary="She accepts, accepts in part or declines what a notice proposes.",
    rows=(
        TransitionRow(_S.TRANSACTION, _B, _T, _S.TRANSACTION,
            "She may answer a safety notice before the deal is confirmed."),
        TransitionRow(_S.WELCOME, _B, _T, _S.WELCOME,
            "She may answer a safety notice during delivery and set-up."),
        TransitionRow(_S.SERVICING, _B, _T, _S.SERVICING,
            "Her answer to a notice (e.g. only the scheduled maintenance) keeps the service "
            "going."),
        TransitionRow(_S.DEVELOPMENT, _B, _T, _S.DEVELOPMENT,
            "E.g. joining a programme by granting scoped access to travel dates (seed 000 "
            "step 7)."),
        TransitionRow(_S.PROBLEM, _B, _T, _S.PROBLEM,
            "She may answer such a notice meanwhile."),
        TransitionRow(_S.EXITED, _B, _T, _S.EXITED,
            "She may answer a permitted notice without re-engaging."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "notice names no service notice of the other party, or one the exit voided",
            "VRM-STATE-020"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "notice carries another digest than the notice's",
            "VRM-SIG-027"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
