"""consent-receipt: what the party did with her consent change (spec §6.21; steps 5-8)."""

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
from vrm_protocol.message_types.access_grant import ENGAGED
from vrm_protocol.models import ConsentReceiptMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_V = Role.VENDOR
_T = MessageType.CONSENT_RECEIPT


def _query(message: ConsentReceiptMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.change.id}))


def _guard(move: Move[ConsentReceiptMessage]) -> RelationshipState:
    change = move.message.body.change
    request = answered(
        move, change.id, "/body/change/id", MessageType.CONSENT_CHANGE, change.digest
    )
    if not request.open:
        # spec §6.21: one receipt per change; the first one is the party's word.
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"consent change {change.id} was answered already",
            "/body/change/id",
        )
    move.draft.emit(RequestAnswered(request.id, move.message.id, _T))
    move.draft.emit(RequestClosed(request.id))
    move.draft.update_request(replace(request, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ConsentReceiptMessage,
    section="6.21",
    steps=(LifecycleStep.WELCOME, LifecycleStep.SERVICING, LifecycleStep.DEVELOPMENT),
    summary="The party says, signed, what it did with her consent change and what it retains "
    "on which legal basis.",
    rows=tuple(
        TransitionRow(state, _V, _T, state,
            "A side exchange: the answer to her consent change.")
        for state in ENGAGED
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "change names no consent change of the individual, or one answered already",
            "VRM-STATE-020"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "change carries another digest than the consent change's",
            "VRM-SIG-027"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
