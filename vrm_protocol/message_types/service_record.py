"""service-record: the vendor's record of work completed (spec §6.44)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestAnswered, RequestClosed, RequestStatus
from vrm_protocol.message_types._guards import check_digest, parse_time
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import ServiceRecordMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.SERVICE_RECORD
_S = RelationshipState


def _query(message: ServiceRecordMessage, sender: Role) -> LedgerQuery:
    appointment = message.body.appointment
    return LedgerQuery(
        requests=frozenset({appointment.id}) if appointment is not None else frozenset()
    )


def _guard(move: Move[ServiceRecordMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    parse_time(body.completed_at, "/body/completedAt")
    if body.appointment is not None:
        # spec §6.44 (VRM-LIV-007): the work was done at a confirmed appointment of
        # the vendor, not yet done nor cancelled; the record closes it (done).
        record = draft.request(body.appointment.id)
        if (
            record is None
            or record.type is not MessageType.APPOINTMENT_CONFIRMATION
            or record.sender is not move.sender
            or not record.open
        ):
            raise Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                f"no confirmed appointment of the vendor awaits its record: {body.appointment.id}",
                "/body/appointment/id",
            )
        check_digest(
            record.digest,
            body.appointment.digest,
            f"appointment {record.id}",
            "/body/appointment/id",
        )
        draft.emit(RequestAnswered(record.id, move.message.id, _T))
        draft.emit(RequestClosed(record.id))
        draft.update_request(replace(record, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ServiceRecordMessage,
    section="6.44",
    steps=(LifecycleStep.SERVICING,),
    summary="The vendor's signed record of work completed: work, parts, cost, mileage.",
    rows=tuple(
        TransitionRow(state, Role.VENDOR, _T, state,
            "Work completed is recorded while the product is serviced (seed 000 step 6).")
        for state in (_S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "completedAt is not an instant",
            "VRM-LIV-007"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "appointment names no confirmed appointment of the vendor awaiting its record",
            "VRM-LIV-007"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "appointment names the confirmation with another digest",
            "VRM-LIV-007"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
