"""support-escalation: she takes an open problem higher (spec §6.32; step 8).

A side exchange in PROBLEM: the escalation names her open support request
(by its digest), the higher level of the vendor it goes to, a deadline and
the history she relies on. It opens a request of its own, which the vendor
answers with a support-resolution naming it (spec §6.12).
"""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestOpened, RequestRecord
from vrm_protocol.message_types._guards import check_digest, parse_time
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import SupportEscalationMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.SUPPORT_ESCALATION


def _query(message: SupportEscalationMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.request.id}))


def _guard(move: Move[SupportEscalationMessage]) -> RelationshipState:
    body = move.message.body
    path = "/body/request/id"
    # spec §6.32 (VRM-CONV-005): only her own request, still open, can be escalated.
    record = move.draft.request(body.request.id)
    if (
        record is None
        or record.type is not MessageType.SUPPORT_REQUEST
        or record.sender is not move.sender
        or not record.open
    ):
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"support-escalation names no open support request of its sender: {body.request.id}",
            path,
        )
    check_digest(record.digest, body.request.digest, f"support request {record.id}", path)
    # VRM-CONV-006: a deadline already past when the escalation is made asks for nothing.
    deadline = parse_time(body.deadline, "/body/deadline")
    if deadline <= parse_time(move.message.created, "/created"):
        raise Refusal(
            ErrorCode.SCHEMA_INVALID,
            f"the deadline {body.deadline} is not after the escalation's created",
            "/body/deadline",
        )
    escalation = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(escalation))
    move.draft.update_request(escalation)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=SupportEscalationMessage,
    section="6.32",
    steps=(LifecycleStep.PROBLEMS,),
    summary="She takes an open support request to a named higher level, with a deadline.",
    rows=(
        TransitionRow(_S.PROBLEM, Role.BUYER, _T, _S.PROBLEM,
            "A side exchange: the problem stays a problem while a higher level answers it."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "request names no support request of the sender, one already resolved, or one the"
            " exit voided",
            "VRM-CONV-005"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "request carries another digest than the request's",
            "VRM-SIG-027"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "deadline is not after the escalation's created",
            "VRM-CONV-006"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
