"""offer-decline: the individual declines offers (spec §6.5; step 3)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import CLOSED_STATUSES, LedgerQuery, OfferStatus, OpenOffersLapsed
from vrm_protocol.message_types._guards import set_offer_status
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import OfferDeclineMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.OFFER_DECLINE


def _query(message: OfferDeclineMessage, sender: Role) -> LedgerQuery:
    # Whether the negotiation closes depends on the offers still live afterwards.
    return LedgerQuery(offers=frozenset(message.body.offers), open_offers_of=sender.peer)


def _guard(move: Move[OfferDeclineMessage]) -> RelationshipState:
    draft, peer = move.draft, move.sender.peer
    for index, offer_id in enumerate(move.message.body.offers):
        path = f"/body/offers/{index}"
        record = draft.offer(offer_id)
        if record is None or record.sender is not peer:
            raise Refusal(
                ErrorCode.UNKNOWN_OFFER, f"no offer from the {peer.value}: {offer_id}", path
            )
        status = record.status_at(move.now)
        if status in CLOSED_STATUSES:
            raise Refusal(ErrorCode.OFFER_CLOSED, f"offer {offer_id} is {status.value}", path)
        # Declining a superseded or expired offer asks nothing of anyone: allowed.
        if record.status is OfferStatus.OPEN:
            set_offer_status(draft, record, OfferStatus.DECLINED)
    row = move.row
    if row.otherwise is not None:
        if draft.open_offers(peer):
            return row.otherwise
        draft.emit(OpenOffersLapsed(move.now))
    return row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=OfferDeclineMessage,
    section="6.5",
    steps=(LifecycleStep.NEGOTIATE,),
    summary="She declines one or more offers, saying why in coarse terms.",
    rows=(
        TransitionRow(_S.NEGOTIATION, _B, _T, _S.CLOSED,
            "Declining every live offer ends the negotiation without a deal.",
            _S.NEGOTIATION, "live offers from the vendor remain after the decline"),
        TransitionRow(_S.DEVELOPMENT, _B, _T, _S.DEVELOPMENT,
            "Declining a development offer leaves the relationship as it was."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.UNKNOWN_OFFER,
            "an offer named is not an offer of the other party",
            "VRM-STATE-019"),
        GuardRule(ErrorCode.OFFER_CLOSED,
            "an offer named was accepted, declined or lapsed",
            "VRM-STATE-019"),
    ),
    guard_codes=(ErrorCode.UNKNOWN_OFFER, ErrorCode.OFFER_CLOSED),
    query=_query,
    sale=True,
)  # fmt: skip
