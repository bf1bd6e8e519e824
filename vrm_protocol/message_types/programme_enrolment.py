"""programme-enrolment: she asks to join a programme (spec §6.72; step 7)."""

from __future__ import annotations

from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import ProgrammeEnrolmentMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.PROGRAMME_ENROLMENT


def _guard(move: Move[ProgrammeEnrolmentMessage]) -> RelationshipState:
    # spec §6.72: the enrolment awaits the party's terms for the programme.
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ProgrammeEnrolmentMessage,
    section="6.72",
    steps=(LifecycleStep.DEVELOPMENT,),
    summary="She asks to join a programme the party lists; its terms for the programme answer.",
    rows=(
        TransitionRow(_S.SERVICING, _B, _T, _S.DEVELOPMENT,
            "A programme is joined by her request, not pushed to her: development begins "
            "when she asks (seed 000 step 7)."),
        TransitionRow(_S.DEVELOPMENT, _B, _T, _S.DEVELOPMENT,
            "She may join another programme during development."),
    ),
    guard=_guard,
)  # fmt: skip
