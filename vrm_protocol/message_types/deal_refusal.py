"""deal-refusal: the vendor cannot honour an acceptance (spec §6.17; step 4)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import DealRefused, LedgerQuery, OfferStatus, ResumeStateSet
from vrm_protocol.message_types._guards import resumed, set_offer_status
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import DealRefusalMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_T = MessageType.DEAL_REFUSAL


def _query(message: DealRefusalMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(offers=frozenset({message.body.offer.id}))


def _guard(move: Move[DealRefusalMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    core = draft.core
    # spec §6.17 (VRM-MSG-031): the refusal names the deal under way, bound
    # to the bytes of the offer as sent and of the acceptance as received.
    if body.offer.id != core.accepted_offer:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"the refusal names offer {body.offer.id}, but the accepted offer is "
            f"{core.accepted_offer}",
            "/body/offer/id",
        )
    record = draft.offer(body.offer.id)
    if record is None:  # pragma: no cover - an accepted offer is always in the ledger
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH, f"no offer {body.offer.id} in the ledger", "/body/offer"
        )
    if record.digest is not None and body.offer.digest != record.digest:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"the digest does not match offer {record.id} as sent",
            "/body/offer/digest",
        )
    if core.acceptance is not None and body.acceptance.id != core.acceptance:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"the refusal names acceptance {body.acceptance.id}, not {core.acceptance}",
            "/body/acceptance/id",
        )
    # The accepted offer lapses; the offers that lapsed at the acceptance stay
    # lapsed (one deal per negotiation: a new one needs new offers).
    set_offer_status(draft, record, OfferStatus.LAPSED)
    draft.emit(DealRefused(record.id))
    target = resumed(move)
    draft.emit(ResumeStateSet(None))
    return target


SPEC = MessageTypeSpec(
    type=_T,
    model=DealRefusalMessage,
    section="6.17",
    steps=(LifecycleStep.TRANSACT,),
    summary="The vendor cannot honour an acceptance: the offer lapses and the deal is off.",
    rows=(
        TransitionRow(_S.TRANSACTION, Role.VENDOR, _T, _S.NEGOTIATION,
            "A vendor that cannot honour an acceptance says so; the relationship returns to "
            "where the acceptance was made.",
            resumes=(_S.NEGOTIATION, _S.DEVELOPMENT)),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "offer is not the accepted offer with its digest, or acceptance not its "
            "acceptance",
            "VRM-MSG-032"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
    sale=True,
)  # fmt: skip
