"""personal-rfi: the individual's pseudonymous intentcast (spec §6.1; step 1)."""

from __future__ import annotations

from typing import TypeVar

from vrm_protocol.ledger import Reengaged
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import PersonalRfiMessage, PersonalRfpMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC", "guard_intentcast"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.PERSONAL_RFI


Intentcast = TypeVar("Intentcast", PersonalRfiMessage, PersonalRfpMessage)


def guard_intentcast(move: Move[Intentcast]) -> RelationshipState:
    """An intentcast is always hers to send where a row allows it; after an exit
    it is her re-engagement, and the exit's preferences stop applying (spec §7.5)."""
    if move.row.state is _S.EXITED:
        move.draft.emit(Reengaged())
    return move.row.target


SPEC: MessageTypeSpec[PersonalRfiMessage] = MessageTypeSpec(
    type=_T,
    model=PersonalRfiMessage,
    section="6.1",
    steps=(LifecycleStep.SEARCH, LifecycleStep.REENGAGEMENT),
    summary="What she wants, her budget and priorities, under a pairwise pseudonym.",
    rows=(
        TransitionRow(_S.SEARCH, _B, _T, _S.ENQUIRY,
            "The individual starts with a pseudonymous intentcast; vendors never write first."),
        TransitionRow(_S.ENQUIRY, _B, _T, _S.ENQUIRY,
            "A refined or further enquiry keeps the conversation at the enquiry stage."),
        TransitionRow(_S.NEGOTIATION, _B, _T, _S.NEGOTIATION,
            "A question during negotiation does not end it."),
        TransitionRow(_S.CLOSED, _B, _T, _S.ENQUIRY,
            "She may enquire again after declining; the closed offers stay closed."),
        TransitionRow(_S.EXITED, _B, _T, _S.ENQUIRY,
            "Re-engagement is hers to start, keeping the history (step 10)."),
    ),
    guard=guard_intentcast,
)  # fmt: skip
