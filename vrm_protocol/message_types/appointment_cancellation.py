"""appointment-cancellation: either party cancels an appointment (spec §6.43)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestClosed, RequestStatus
from vrm_protocol.message_types._guards import check_digest
from vrm_protocol.message_types._living import appointment_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import AppointmentCancellationMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.APPOINTMENT_CANCELLATION
_APPOINTMENTS = (MessageType.APPOINTMENT_BOOKING, MessageType.APPOINTMENT_CONFIRMATION)


def _query(message: AppointmentCancellationMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.appointment.id}))


def _guard(move: Move[AppointmentCancellationMessage]) -> RelationshipState:
    named = move.message.body.appointment
    record = move.draft.request(named.id)
    # spec §6.43 (VRM-LIV-006): a booking awaiting its confirmation, or a
    # confirmed appointment not yet done, of this relationship (either party's).
    if record is None or record.type not in _APPOINTMENTS or not record.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"no booked or confirmed appointment awaits: {named.id}",
            "/body/appointment/id",
        )
    check_digest(record.digest, named.digest, f"appointment {named.id}", "/body/appointment/id")
    move.draft.emit(RequestClosed(record.id))
    move.draft.update_request(replace(record, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AppointmentCancellationMessage,
    section="6.43",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.SERVICING),
    summary="Either party cancels a booked or confirmed appointment, saying why.",
    rows=appointment_rows((Role.BUYER, Role.VENDOR), _T,
        "Either party may cancel an appointment booked or confirmed."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "appointment names no open booking or confirmed appointment",
            "VRM-LIV-006"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "appointment names it with another digest",
            "VRM-LIV-006"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
