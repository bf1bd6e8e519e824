"""material-request: she asks for printed material by post (spec §6.60; steps 2-3).

A side exchange of the enquiry and the negotiation (seed 000 step 2, seed 004):
it opens a request the vendor answers with a ``material-dispatch`` (spec
§6.61), and never moves the relationship. It carries, of her personal data,
only the postal address delivery by post needs, under a one-purpose consent
(`delivery`, kept until sent; VRM-MAT-001).
"""

from __future__ import annotations

from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import MaterialRequestMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["MATERIAL_STATES", "SPEC"]

_S = RelationshipState
_T = MessageType.MATERIAL_REQUEST

#: The states printed material may be asked for and sent in: before the deal (spec §6.60).
MATERIAL_STATES = (_S.ENQUIRY, _S.NEGOTIATION)


def _guard(move: Move[MaterialRequestMessage]) -> RelationshipState:
    # spec §6.60: a material request opens a request of hers that the vendor
    # answers once; the state stays where it is.
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=MaterialRequestMessage,
    section="6.60",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.NEGOTIATE),
    summary="She asks for a brochure by post, giving her address for that delivery alone.",
    rows=tuple(
        TransitionRow(
            state,
            Role.BUYER,
            _T,
            state,
            "A side exchange: she asks for printed material; the relationship stays where it is.",
        )
        for state in MATERIAL_STATES
    ),
    guard=_guard,
)
