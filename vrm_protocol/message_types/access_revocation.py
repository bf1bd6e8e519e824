"""access-revocation: she ends an access grant before its time (spec §6.19; steps 6-7)."""

from __future__ import annotations

from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.message_types.access_grant import ENGAGED
from vrm_protocol.models import AccessRevocationMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_B = Role.BUYER
_T = MessageType.ACCESS_REVOCATION


def _guard(move: Move[AccessRevocationMessage]) -> RelationshipState:
    # Revoking changes no state of the relationship: her agent refuses reads
    # under the grant from now on (spec §11.9), whatever the grantee does.
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AccessRevocationMessage,
    section="6.19",
    steps=(LifecycleStep.SERVICING, LifecycleStep.DEVELOPMENT),
    summary="She ends an access grant: every later read under it is refused.",
    rows=tuple(
        TransitionRow(state, _B, _T, state,
            "A side exchange: she may revoke a grant at any time in an engaged relationship.")
        for state in ENGAGED
    ),
    guard=_guard,
)  # fmt: skip
