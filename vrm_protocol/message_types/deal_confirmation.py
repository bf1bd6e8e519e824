"""deal-confirmation: the vendor confirms exactly the accepted offer (spec §6.6; step 4)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, ResumeStateSet
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import DealConfirmationMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.DEAL_CONFIRMATION


def _query(message: DealConfirmationMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(offers=frozenset({message.body.deal.offer.id}))


def _guard(move: Move[DealConfirmationMessage]) -> RelationshipState:
    deal, draft = move.message.body.deal, move.draft
    core = draft.core
    # spec §6.6 (VRM-BUY-009, VRM-MSG-014): the confirmation names exactly the
    # deal under way: the accepted offer by its digest, and its acceptance.
    if deal.offer.id != core.accepted_offer:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"the deal confirms offer {deal.offer.id}, but the accepted offer is "
            f"{core.accepted_offer}",
            "/body/deal/offer/id",
        )
    record = draft.offer(deal.offer.id)
    if record is not None and record.digest is not None and deal.offer.digest != record.digest:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"the digest does not match offer {record.id} as sent",
            "/body/deal/offer/digest",
        )
    if core.acceptance is not None and deal.acceptance != core.acceptance:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"the deal names acceptance {deal.acceptance}, not {core.acceptance}",
            "/body/deal/acceptance",
        )
    draft.emit(ResumeStateSet(None))
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
    rules=(
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "deal.offer is not the accepted offer with its digest, or deal.acceptance not its"
            " acceptance",
            "VRM-MSG-032"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
