"""exit-acknowledgement: the export and the deletion receipt (spec §6.14; step 9)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import ExitCompleted
from vrm_protocol.message_types._guards import check_digest
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import ExitAcknowledgementMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.EXIT_ACKNOWLEDGEMENT


def _guard(move: Move[ExitAcknowledgementMessage]) -> RelationshipState:
    notice_id = move.message.body.notice.id
    exit_record = move.draft.core.exit
    if exit_record is None or exit_record.sender is move.sender:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "only the other party acknowledges an exit notice",
            "/from",
        )
    if notice_id != exit_record.notice_id:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"the acknowledgement names {notice_id}, not the exit notice {exit_record.notice_id}",
            "/body/notice/id",
        )
    body = move.message.body
    export = body.export
    if export is not None and (export.data is None) == (export.url is None):
        # spec §6.14: an export is embedded or published, never both, never neither.
        raise Refusal(
            ErrorCode.SCHEMA_INVALID,
            "an export carries exactly one of data and url",
            "/body/export",
        )
    if export is not None and export.url is not None and export.size is None:
        raise Refusal(
            ErrorCode.SCHEMA_INVALID, "a published export states its size", "/body/export/size"
        )
    check_digest(
        exit_record.notice_digest, body.notice.digest, "the exit notice", "/body/notice/id"
    )
    if exit_record.sender is Role.BUYER:
        # spec §6.14 (VRM-MSG-025, VRM-MSG-026): the acknowledgement carries what
        # her notice asked for; what it holds is judged by her agent (VRM-BUY-014).
        if exit_record.export_requested and body.export is None:
            raise Refusal(ErrorCode.EXIT_INCOMPLETE, "the exit notice asked for an export", "/body")
        if exit_record.deletion_requested and body.deletion_receipt is None:
            raise Refusal(ErrorCode.EXIT_INCOMPLETE, "the exit notice asked for deletion", "/body")
    # The exit voids every offer and open request; the history alone is kept (spec §7.5).
    move.draft.emit(ExitCompleted(notice_id))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ExitAcknowledgementMessage,
    section="6.14",
    steps=(LifecycleStep.EXIT,),
    summary="The other party confirms the exit, with the export asked for and the deletion "
    "receipt.",
    rows=(
        TransitionRow(_S.EXITING, Role.VENDOR, _T, _S.EXITED,
            "The vendor acknowledges her exit with the export and the deletion receipt."),
        TransitionRow(_S.EXITING, Role.BUYER, _T, _S.EXITED,
            "She acknowledges a vendor's exit (the vendor leaves the market)."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "sent by the party that gave notice, or naming another notice than the exit "
            "notice in force",
            "VRM-STATE-020"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "an export with both or neither of data and url, or a url without size",
            "VRM-MSG-035"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "notice carries another digest than the notice's",
            "VRM-SIG-027"),
        GuardRule(ErrorCode.EXIT_INCOMPLETE,
            "her notice asked for an export or deletion that the acknowledgement does not "
            "carry",
            "VRM-MSG-034"),
    ),
    guard_codes=(ErrorCode.SCHEMA_INVALID, ErrorCode.REFERENCE_MISMATCH, ErrorCode.EXIT_INCOMPLETE),
)  # fmt: skip
