"""details-update: her new details, to a party that holds them (spec §6.73)."""

from __future__ import annotations

from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import DetailsUpdateMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["HOLDING", "SPEC"]

_S = RelationshipState
_T = MessageType.DETAILS_UPDATE
#: The states in which a party may hold her details under her consent: from her
#: acceptance (her identity) through service, development and problems, until
#: she leaves.
HOLDING = (_S.TRANSACTION, _S.WELCOME, _S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)


def _guard(move: Move[DetailsUpdateMessage]) -> RelationshipState:
    # spec §6.73: the update awaits the party's receipt.
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=DetailsUpdateMessage,
    section="6.73",
    steps=(LifecycleStep.SERVICING,),
    summary="Her new details (address, phone) to a party that holds them under her consent.",
    rows=tuple(
        TransitionRow(state, Role.BUYER, _T, state,
            "Her suppliers follow her: a change of her details is a side exchange.")
        for state in HOLDING
    ),
    guard=_guard,
)  # fmt: skip
