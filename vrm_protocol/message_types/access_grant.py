"""access-grant: she lets a party read named items of her store, for named purposes,
until a time (spec §6.18; steps 6-7)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.message_types._guards import parse_time
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import AccessGrantMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["ENGAGED", "SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.ACCESS_GRANT

#: The engaged states: a grant (and its revocation) is a side exchange in each.
ENGAGED = (_S.NEGOTIATION, _S.TRANSACTION, _S.WELCOME, _S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)


def _guard(move: Move[AccessGrantMessage]) -> RelationshipState:
    body = move.message.body
    if body.grantee not in move.message.to:
        # spec §6.18, VRM-GRANT-001: the grant is given to the party it is sent to;
        # a grant naming another party would let a third read on the addressee's word.
        raise Refusal(
            ErrorCode.SCHEMA_INVALID,
            f"the grantee {body.grantee} is not an addressee of the grant",
            "/body/grantee",
        )
    parse_time(body.until, "/body/until")
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AccessGrantMessage,
    section="6.18",
    steps=(LifecycleStep.SERVICING, LifecycleStep.DEVELOPMENT),
    summary="She lets the party read named items of her store, for named purposes, until a "
    "time, from her agent, with a proof bound to its key.",
    rows=tuple(
        TransitionRow(state, _B, _T, state,
            "A side exchange: she may share by grant at any time in an engaged relationship.")
        for state in ENGAGED
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "the grantee is not an addressee of the grant",
            "VRM-GRANT-001"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "until is not an instant",
            "VRM-FRESH-012"),
    ),
)  # fmt: skip
