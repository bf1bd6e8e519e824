"""inspection-result: she accepts or refuses a handover (spec §6.24; seed 000 step 5)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    LedgerQuery,
    RequestAnswered,
    RequestClosed,
    RequestOpened,
    RequestRecord,
    RequestStatus,
)
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._transaction import side_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import InspectionResultMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.INSPECTION_RESULT


def _query(message: InspectionResultMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.handover.id}))


def _guard(move: Move[InspectionResultMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    # spec §6.24 (VRM-TRX-004): it answers a handover record of the vendor still
    # awaiting inspection, bound to its bytes.
    handover = answered(
        move, body.handover.id, "/body/handover/id", MessageType.HANDOVER_RECORD,
        body.handover.digest,
    )  # fmt: skip
    if not handover.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"handover record {handover.id} was already inspected",
            "/body/handover/id",
        )
    if body.decision == "refuse" and not body.reasons:
        # spec §6.24 (VRM-TRX-004): a refusal says why.
        raise Refusal(ErrorCode.SCHEMA_INVALID, "a refusal carries its reasons", "/body/reasons")
    draft.emit(RequestAnswered(handover.id, move.message.id, _T))
    draft.emit(RequestClosed(handover.id))
    draft.update_request(replace(handover, status=RequestStatus.CLOSED))
    if body.decision == "accept":
        # The deal is delivered: what an invoice needs (spec §6.25, VRM-TRX-005).
        delivered = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
        draft.emit(RequestOpened(delivered))
        draft.update_request(delivered)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=InspectionResultMessage,
    section="6.24",
    steps=(LifecycleStep.TRANSACT, LifecycleStep.WELCOME),
    summary="She accepts a handover (the deal is delivered) or refuses it with her reasons.",
    rows=side_rows(Role.BUYER, _T,
        "Her countersignature of the handover; the deal is delivered only on accept."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "handover names no handover record of the vendor awaiting inspection",
            "VRM-TRX-004"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "handover names the record with another digest",
            "VRM-TRX-004"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "decision is refuse and no reasons are given",
            "VRM-TRX-004"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
