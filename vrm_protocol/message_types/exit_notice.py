"""exit-notice: the end of a relationship, with export and deletion (spec §6.13; step 9)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import ExitNoticed, ExitRecord
from vrm_protocol.message_types._guards import parse_time
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import ExitNoticeMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_V = Role.VENDOR
_T = MessageType.EXIT_NOTICE

#: States from which either party may give notice of exit (spec §7.5).
_ENGAGED = (_S.NEGOTIATION, _S.TRANSACTION, _S.WELCOME, _S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)


def _guard(move: Move[ExitNoticeMessage]) -> RelationshipState:
    body = move.message.body
    if move.sender is _V and body.reason != "vendor-leaving-market":
        # spec §7.5: the relationship is the individual's to end; a vendor only
        # exits when it leaves the market.
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "a vendor exits only with reason vendor-leaving-market",
            "/body/reason",
        )
    preferences = body.reengagement
    record = ExitRecord(
        notice_id=move.message.id,
        sender=move.sender,
        reason=body.reason,
        reengagement_allowed=preferences.allowed,
        topics=tuple(preferences.topics) if preferences.topics is not None else None,
        until=(
            parse_time(preferences.until, "/body/reengagement/until")
            if preferences.until is not None
            else None
        ),
        channel=preferences.channel,
        export_requested=body.export.requested,
        deletion_requested=body.deletion.requested,
        notice_digest=move.digest,
    )
    move.draft.emit(ExitNoticed(record))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ExitNoticeMessage,
    section="6.13",
    steps=(LifecycleStep.EXIT,),
    summary="She (or a vendor leaving the market) ends the relationship, asking for export "
    "and deletion.",
    rows=(
        TransitionRow(_S.ENQUIRY, _B, _T, _S.EXITING,
            "The enquiry's context is personal data too; exiting has it deleted."),
        *(
            TransitionRow(state, _B, _T, _S.EXITING,
                "The individual may leave at any time; the notice says why and asks for export.")
            for state in _ENGAGED
        ),
        TransitionRow(_S.ENQUIRY, _V, _T, _S.EXITING,
            "A vendor leaving the market gives notice of it to an enquiry too (reason "
            "vendor-leaving-market)."),
        *(
            TransitionRow(state, _V, _T, _S.EXITING,
                "A vendor may exit only because it leaves the market (reason "
                "vendor-leaving-market).")
            for state in _ENGAGED
        ),
        TransitionRow(_S.CLOSED, _B, _T, _S.EXITING,
            "The RFP's context is personal data; exiting has it deleted."),
        TransitionRow(_S.CLOSED, _V, _T, _S.EXITING,
            "A vendor leaving the market gives notice even of a closed negotiation, whose "
            "context it still holds."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "a vendor's exit notice whose reason is not vendor-leaving-market",
            "VRM-STATE-015"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "reengagement.until is not an instant",
            "VRM-FRESH-012"),
    ),
)  # fmt: skip
