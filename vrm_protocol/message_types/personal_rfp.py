"""personal-rfp: the individual's request for proposals (spec §6.2; step 2)."""

from __future__ import annotations

from vrm_protocol.message_types._unit import MessageTypeSpec, TransitionRow
from vrm_protocol.message_types.personal_rfi import guard_intentcast
from vrm_protocol.models import PersonalRfpMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.PERSONAL_RFP

SPEC: MessageTypeSpec[PersonalRfpMessage] = MessageTypeSpec(
    type=_T,
    model=PersonalRfpMessage,
    section="6.2",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.REENGAGEMENT),
    summary="Her requirements, sent to the vendors she chose, asking for binding offers.",
    rows=(
        TransitionRow(_S.SEARCH, _B, _T, _S.NEGOTIATION,
            "An RFP may be the first message: she already knows what she wants (seed 000 step 3)."),
        TransitionRow(_S.ENQUIRY, _B, _T, _S.NEGOTIATION,
            "The RFP turns the enquiry into a request for proposals."),
        TransitionRow(_S.NEGOTIATION, _B, _T, _S.NEGOTIATION,
            "A revised RFP (e.g. after indicative offers) continues the negotiation."),
        TransitionRow(_S.CLOSED, _B, _T, _S.NEGOTIATION,
            "She may ask for new proposals after declining."),
        TransitionRow(_S.EXITED, _B, _T, _S.NEGOTIATION,
            "She may re-engage directly with an RFP."),
    ),
    guard=guard_intentcast,
    sale=True,
)  # fmt: skip
