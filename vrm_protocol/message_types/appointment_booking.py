"""appointment-booking: she books one slot of a proposal (spec §6.41)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.message_types._living import answer_and_open, appointment_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move
from vrm_protocol.models import AppointmentBookingMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.APPOINTMENT_BOOKING


def _query(message: AppointmentBookingMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.proposal.id}))


def _guard(move: Move[AppointmentBookingMessage]) -> RelationshipState:
    proposal = move.message.body.proposal
    # spec §6.41 (VRM-LIV-001): one booking of an open proposal of the vendor.
    answer_and_open(
        move, proposal.id, proposal.digest, MessageType.APPOINTMENT_PROPOSAL, "/body/proposal/id"
    )
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AppointmentBookingMessage,
    section="6.41",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.SERVICING),
    summary="She books one slot of the vendor's proposal, disclosing nothing else.",
    rows=appointment_rows((Role.BUYER,), _T, "She books a slot the vendor proposed."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "proposal names no open appointment proposal of the vendor",
            "VRM-LIV-001"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "proposal names the proposal with another digest",
            "VRM-LIV-001"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
