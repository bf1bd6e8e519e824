"""answer: the answer to the other party's question (spec §6.31; steps 2-8)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestAnswered, RequestClosed, RequestStatus
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.message_types.question import CONVERSATION_STATES
from vrm_protocol.models import AnswerMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.ANSWER


def _query(message: AnswerMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.question.id}))


def _guard(move: Move[AnswerMessage]) -> RelationshipState:
    question = move.message.body.question
    # spec §6.31 (VRM-CONV-002): an answer names an open question of the other party.
    request = answered(
        move, question.id, "/body/question/id", MessageType.QUESTION, question.digest
    )
    if not request.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"question {request.id} is already answered",
            "/body/question/id",
        )
    move.draft.emit(RequestAnswered(request.id, move.message.id, _T))
    move.draft.emit(RequestClosed(request.id))
    move.draft.update_request(replace(request, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AnswerMessage,
    section="6.31",
    steps=(
        LifecycleStep.ENGAGE,
        LifecycleStep.NEGOTIATE,
        LifecycleStep.TRANSACT,
        LifecycleStep.WELCOME,
        LifecycleStep.SERVICING,
        LifecycleStep.DEVELOPMENT,
        LifecycleStep.PROBLEMS,
    ),
    summary="The answer to an open question of the other party; closes it, no move.",
    rows=tuple(
        TransitionRow(
            state,
            sender,
            _T,
            state,
            "A side exchange: the answer closes the question; the relationship stays where it is.",
        )
        for state in CONVERSATION_STATES
        for sender in (Role.BUYER, Role.VENDOR)
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "question names no question of the other party, one the exit voided, or one"
            " already answered",
            "VRM-CONV-002"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "question carries another digest than the question's",
            "VRM-SIG-027"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
