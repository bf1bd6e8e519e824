"""Ledger checks the messages of living with the product share (spec §6.40 on).

Appointments (test drives, services, handovers) are a booking exchange: the
vendor proposes slots, she books one, the vendor confirms it, either party
cancels it. Each step is a side exchange (no transition) in the states where
an appointment makes sense: before the deal (a test drive) and after it (a
service, while a problem is open too). Each step closes the one it answers,
so that a proposal is booked once and a booking confirmed once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    RequestAnswered,
    RequestClosed,
    RequestOpened,
    RequestRecord,
    RequestStatus,
)
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._unit import Move, Refusal, TransitionRow
from vrm_protocol.models import BaseMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "ADDON_STATES",
    "APPOINTMENT_STATES",
    "answer_and_open",
    "appointment_rows",
    "open_record",
]

M = TypeVar("M", bound=BaseMessage)

_S = RelationshipState
#: Where appointments are made: a test drive before the deal (ENQUIRY,
#: NEGOTIATION), a service after it (SERVICING, DEVELOPMENT, PROBLEM).
APPOINTMENT_STATES = (_S.ENQUIRY, _S.NEGOTIATION, _S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)
#: Where extras are proposed for a deal and answered: from the acceptance until
#: the deal is carried through (a delivery may come after the terms of sharing).
ADDON_STATES = (_S.TRANSACTION, _S.WELCOME, _S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)


def appointment_rows(
    senders: tuple[Role, ...], message: MessageType, why: str
) -> tuple[TransitionRow, ...]:
    """A side exchange (no transition) in every state of :data:`APPOINTMENT_STATES`."""
    return tuple(
        TransitionRow(state, sender, message, state, why)
        for state in APPOINTMENT_STATES
        for sender in senders
    )


def open_record(move: Move[M]) -> RequestRecord:
    """Record ``move``'s message as awaiting its answer."""
    record = RequestRecord(
        move.message.id, MessageType(move.message.type), move.sender, digest=move.digest
    )
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return record


def answer_and_open(
    move: Move[M], request_id: str, digest: str | None, kind: MessageType, path: str
) -> RequestRecord:
    """``move`` answers the open ``kind`` of the other party named by
    ``request_id`` (and ``digest``): that one is closed (answered once), and
    ``move``'s message now awaits its own answer.

    Raises:
        Refusal: ILLEGAL_TRANSITION (no such open request of the peer),
            REFERENCE_MISMATCH (another digest).
    """
    record = answered(move, request_id, path, kind, digest)
    if not record.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"{kind.value} {record.id} was already answered or cancelled",
            path,
        )
    move.draft.emit(RequestAnswered(record.id, move.message.id, MessageType(move.message.type)))
    move.draft.emit(RequestClosed(record.id))
    move.draft.update_request(replace(record, status=RequestStatus.CLOSED))
    return open_record(move)
