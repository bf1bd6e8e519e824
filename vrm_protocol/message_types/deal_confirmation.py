"""deal-confirmation: the vendor confirms exactly the accepted offer (spec §6.6; step 4)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, Refusal, TransitionRow
from vrm_protocol.models import DealConfirmationMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.DEAL_CONFIRMATION


def _guard(move: Move[DealConfirmationMessage]) -> RelationshipState:
    offer_id = move.message.body.deal.offer.id
    accepted = move.draft.core.accepted_offer
    if offer_id != accepted:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"the deal confirms offer {offer_id}, but the accepted offer is {accepted}",
            "/body/deal/offer/id",
        )
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=DealConfirmationMessage,
    section="6.6",
    steps=(LifecycleStep.TRANSACT,),
    summary="The vendor confirms the deal: the accepted offer, delivery, the trade-in handover.",
    rows=(
        TransitionRow(_S.TRANSACTION, Role.VENDOR, _T, _S.WELCOME,
            "The vendor confirms exactly the accepted offer; delivery and set-up follow (step 5)."),
    ),
    guard=_guard,
    sale=True,
)  # fmt: skip
