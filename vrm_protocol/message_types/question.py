"""question: either party asks the other something (spec §6.30; steps 2-8).

A question is a side exchange: it opens a request the other party answers
with an ``answer`` (spec §6.31), and it never moves the relationship. A
dealer asks which trim she means; she asks what the warranty covers.
"""

from __future__ import annotations

from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import QuestionMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["CONVERSATION_STATES", "SPEC"]

_S = RelationshipState
_T = MessageType.QUESTION

#: The states a question and its answer may be sent in: from the enquiry to a
#: problem, every state in which the parties are talking (spec §6.30).
CONVERSATION_STATES = (
    _S.ENQUIRY,
    _S.NEGOTIATION,
    _S.TRANSACTION,
    _S.WELCOME,
    _S.SERVICING,
    _S.DEVELOPMENT,
    _S.PROBLEM,
)


def _guard(move: Move[QuestionMessage]) -> RelationshipState:
    # spec §6.30 (VRM-CONV-001): a question opens a request of its sender that
    # the other party may answer once; the state stays where it is.
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=QuestionMessage,
    section="6.30",
    steps=(
        LifecycleStep.ENGAGE,
        LifecycleStep.NEGOTIATE,
        LifecycleStep.TRANSACT,
        LifecycleStep.WELCOME,
        LifecycleStep.SERVICING,
        LifecycleStep.DEVELOPMENT,
        LifecycleStep.PROBLEMS,
    ),
    summary="A question to the other party (which trim, what the warranty covers); no move.",
    rows=tuple(
        TransitionRow(
            state,
            sender,
            _T,
            state,
            "A side exchange: either party may ask the other; the relationship stays where it is.",
        )
        for state in CONVERSATION_STATES
        for sender in (Role.BUYER, Role.VENDOR)
    ),
    guard=_guard,
)
