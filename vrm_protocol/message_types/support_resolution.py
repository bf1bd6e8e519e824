"""support-resolution: the vendor's answer to a support request (spec §6.12; step 8)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    LedgerQuery,
    RequestAnswered,
    RequestClosed,
    RequestStatus,
    ResumeStateSet,
)
from vrm_protocol.message_types._guards import answered, resumed
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import SupportResolutionMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.SUPPORT_RESOLUTION
#: The statuses that end an escalation (spec §6.32): the higher level decided.
_FINAL = frozenset({"resolved", "rejected"})


def _query(message: SupportResolutionMessage, sender: Role) -> LedgerQuery:
    # Whether the problem state ends depends on the support requests still open.
    body = message.body
    named = {body.request.id} | ({body.escalation.id} if body.escalation is not None else set())
    return LedgerQuery(
        requests=frozenset(named),
        open_requests_of=MessageType.SUPPORT_REQUEST,
    )


def _guard(move: Move[SupportResolutionMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    request = answered(
        move, body.request.id, "/body/request/id", MessageType.SUPPORT_REQUEST, body.request.digest
    )
    if not request.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"support request {request.id} is already resolved",
            "/body/request/id",
        )
    draft.emit(RequestAnswered(request.id, move.message.id, _T))
    if body.escalation is not None:
        # spec §6.32 (VRM-CONV-007): it answers her open escalation; a final
        # answer (resolved, rejected) closes the escalation.
        escalation = answered(
            move,
            body.escalation.id,
            "/body/escalation/id",
            MessageType.SUPPORT_ESCALATION,
            body.escalation.digest,
        )
        if not escalation.open:
            raise Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                f"escalation {escalation.id} was already answered finally",
                "/body/escalation/id",
            )
        draft.emit(RequestAnswered(escalation.id, move.message.id, _T))
        if body.status in _FINAL:
            draft.emit(RequestClosed(escalation.id))
            draft.update_request(replace(escalation, status=RequestStatus.CLOSED))
    if body.status == "resolved":
        draft.emit(RequestClosed(request.id))
        draft.update_request(replace(request, status=RequestStatus.CLOSED))
    row = move.row
    if row.otherwise is not None and draft.open_requests(MessageType.SUPPORT_REQUEST):
        return row.otherwise
    target = resumed(move)
    draft.emit(ResumeStateSet(None))
    return target


SPEC = MessageTypeSpec(
    type=_T,
    model=SupportResolutionMessage,
    section="6.12",
    steps=(LifecycleStep.PROBLEMS,),
    summary="The vendor's answer to a support request or its escalation: open, in progress, "
    "escalated, resolved or rejected.",
    rows=(
        TransitionRow(_S.PROBLEM, Role.VENDOR, _T, _S.SERVICING,
            "Resolving the last open request returns the relationship to the state it was in "
            "before the problem (WELCOME, SERVICING or DEVELOPMENT).",
            _S.PROBLEM, "the status is not resolved, or other requests are still open",
            resumes=(_S.WELCOME, _S.SERVICING, _S.DEVELOPMENT)),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "request names no support request of the other party, one the exit voided, or one"
            " already resolved",
            "VRM-STATE-020"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "request carries another digest than the request's",
            "VRM-SIG-027"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "escalation names no escalation of the other party, or one already answered with"
            " resolved or rejected",
            "VRM-CONV-007"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "escalation carries another digest than the escalation's",
            "VRM-SIG-027"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
