"""addon-response: she accepts or declines each extra proposed (spec §6.46)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.message_types._living import ADDON_STATES, answer_and_open
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import AddonResponseMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.ADDON_RESPONSE


def _query(message: AddonResponseMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.addon_offer.id}))


def _guard(move: Move[AddonResponseMessage]) -> RelationshipState:
    body = move.message.body
    both = set(body.accepted) & set(body.declined)
    if both:
        # spec §6.46 (VRM-LIV-011): each extra accepted or declined, not both.
        raise Refusal(
            ErrorCode.SCHEMA_INVALID,
            f"accepted and declined at once: {', '.join(sorted(both))}",
            "/body/declined",
        )
    # spec §6.46 (VRM-LIV-011): one answer to an open add-on offer of the vendor; the
    # answer stays on record (what the invoice may charge).
    answer_and_open(
        move, body.addon_offer.id, body.addon_offer.digest, MessageType.ADDON_OFFER,
        "/body/addonOffer/id",
    )  # fmt: skip
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AddonResponseMessage,
    section="6.46",
    steps=(LifecycleStep.TRANSACT,),
    summary="She accepts or declines each extra the vendor proposed.",
    rows=tuple(
        TransitionRow(state, Role.BUYER, _T, state, "She answers the extras proposed.")
        for state in ADDON_STATES
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "a code is both accepted and declined",
            "VRM-LIV-011"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "addonOffer names no open add-on offer of the vendor",
            "VRM-LIV-011"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "addonOffer names the add-on offer with another digest",
            "VRM-LIV-011"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
