"""appointment-proposal: the vendor proposes slots for an appointment (spec §6.40)."""

from __future__ import annotations

from vrm_protocol.message_types._living import appointment_rows, open_record
from vrm_protocol.message_types._unit import MessageTypeSpec, Move
from vrm_protocol.models import AppointmentProposalMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.APPOINTMENT_PROPOSAL


def _guard(move: Move[AppointmentProposalMessage]) -> RelationshipState:
    # spec §6.40: the proposal awaits one booking (VRM-LIV-001).
    open_record(move)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AppointmentProposalMessage,
    section="6.40",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.SERVICING),
    summary="The vendor proposes slots for a test drive, a service or a handover.",
    rows=appointment_rows((Role.VENDOR,), _T,
        "A test drive before the deal, a service after it (seed 000 steps 2 and 6, seed 004)."),
    guard=_guard,
)  # fmt: skip
