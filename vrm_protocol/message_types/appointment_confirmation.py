"""appointment-confirmation: the vendor confirms her booking (spec §6.42)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.message_types._living import answer_and_open, appointment_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move
from vrm_protocol.models import AppointmentConfirmationMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.APPOINTMENT_CONFIRMATION


def _query(message: AppointmentConfirmationMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.booking.id}))


def _guard(move: Move[AppointmentConfirmationMessage]) -> RelationshipState:
    booking = move.message.body.booking
    # spec §6.42 (VRM-LIV-003): one confirmation of an open booking of hers; the
    # confirmed appointment awaits its service record or a cancellation.
    answer_and_open(
        move, booking.id, booking.digest, MessageType.APPOINTMENT_BOOKING, "/body/booking/id"
    )
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AppointmentConfirmationMessage,
    section="6.42",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.SERVICING),
    summary="The vendor confirms her booking: the slot she booked, when and where.",
    rows=appointment_rows((Role.VENDOR,), _T, "The vendor confirms a booking."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "booking names no open booking of hers",
            "VRM-LIV-003"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "booking names the booking with another digest",
            "VRM-LIV-003"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
