"""consent-change: she withdraws, narrows or widens her consent to data items
(spec §6.20; steps 5-8)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.message_types.access_grant import ENGAGED
from vrm_protocol.models import ConsentChangeMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_B = Role.BUYER
_T = MessageType.CONSENT_CHANGE


def _guard(move: Move[ConsentChangeMessage]) -> RelationshipState:
    seen: set[str] = set()
    for index, change in enumerate(move.message.body.changes):
        # spec §6.20, VRM-GRANT-008: narrowing and widening say which purposes;
        # a withdrawal ends them all; one change per item, so the receipt can
        # account for each.
        if (change.purposes is None) != (change.action == "withdraw"):
            raise Refusal(
                ErrorCode.SCHEMA_INVALID,
                f"a {change.action} change {'carries no' if change.purposes is None else 'has'} "
                "purposes",
                f"/body/changes/{index}/purposes",
            )
        if change.item in seen:
            raise Refusal(
                ErrorCode.SCHEMA_INVALID,
                f"{change.item} is changed twice",
                f"/body/changes/{index}/item",
            )
        seen.add(change.item)
    # The party owes a consent receipt (spec §6.21): an open request of the ledger.
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ConsentChangeMessage,
    section="6.20",
    steps=(LifecycleStep.WELCOME, LifecycleStep.SERVICING, LifecycleStep.DEVELOPMENT),
    summary="She withdraws, narrows or widens her consent to data items; the party answers "
    "with a signed consent receipt.",
    rows=tuple(
        TransitionRow(state, _B, _T, state,
            "A side exchange: her consent is hers to change at any time in an engaged "
            "relationship.")
        for state in ENGAGED
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "a narrow or widen change without purposes, a withdrawal with purposes, or an "
            "item changed twice",
            "VRM-GRANT-008"),
    ),
)  # fmt: skip
