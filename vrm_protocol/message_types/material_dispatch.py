"""material-dispatch: the material was posted, the address deleted (spec §6.61; steps 2-3)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestAnswered, RequestClosed, RequestStatus
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.message_types.material_request import MATERIAL_STATES
from vrm_protocol.models import MaterialDispatchMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.MATERIAL_DISPATCH


def _query(message: MaterialDispatchMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.request.id}))


def _guard(move: Move[MaterialDispatchMessage]) -> RelationshipState:
    request_ref = move.message.body.request
    # spec §6.61 (VRM-MAT-002): a dispatch names an open material request of the other party.
    request = answered(
        move, request_ref.id, "/body/request/id", MessageType.MATERIAL_REQUEST, request_ref.digest
    )
    if not request.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"material request {request.id} is already answered",
            "/body/request/id",
        )
    move.draft.emit(RequestAnswered(request.id, move.message.id, _T))
    move.draft.emit(RequestClosed(request.id))
    move.draft.update_request(replace(request, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=MaterialDispatchMessage,
    section="6.61",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.NEGOTIATE),
    summary="The vendor posted the material she asked for and deleted her address; no move.",
    rows=tuple(
        TransitionRow(
            state,
            Role.VENDOR,
            _T,
            state,
            "A side exchange: the dispatch closes her request; the relationship stays where it is.",
        )
        for state in MATERIAL_STATES
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "request names no material request of the other party, one the exit voided, or one"
            " already answered",
            "VRM-MAT-002"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "request carries another digest than the request's",
            "VRM-SIG-027"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
