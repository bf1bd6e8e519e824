"""addon-offer: the vendor proposes extras for the deal under way (spec §6.45)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.message_types._living import ADDON_STATES, open_record
from vrm_protocol.message_types._transaction import check_accepted_offer, offer_query
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import AddonOfferMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.ADDON_OFFER


def _query(message: AddonOfferMessage, sender: Role) -> LedgerQuery:
    return offer_query(message.body.deal.offer)


def _guard(move: Move[AddonOfferMessage]) -> RelationshipState:
    body = move.message.body
    # spec §6.45 (VRM-LIV-010): extras for exactly the deal under way, each code once.
    check_accepted_offer(move, body.deal.offer, "/body/deal/offer")
    codes = [addon.code for addon in body.addons]
    if len(set(codes)) != len(codes):
        raise Refusal(ErrorCode.SCHEMA_INVALID, "an add-on code is proposed twice", "/body/addons")
    open_record(move)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=AddonOfferMessage,
    section="6.45",
    steps=(LifecycleStep.TRANSACT,),
    summary="The vendor proposes extras for the deal, each priced; she takes or declines each.",
    rows=tuple(
        TransitionRow(state, Role.VENDOR, _T, state,
            "Extras are proposed for the deal under way, before it is invoiced (seed 000 step 4).")
        for state in ADDON_STATES
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "deal.offer is not the accepted offer with its digest",
            "VRM-LIV-010"),
        GuardRule(ErrorCode.SCHEMA_INVALID,
            "an add-on code is proposed twice",
            "VRM-LIV-010"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
