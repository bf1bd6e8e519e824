"""offer-acceptance: the individual accepts a binding offer (spec §6.4; step 4)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    DealAccepted,
    LedgerQuery,
    OfferStatus,
    OpenOffersLapsed,
    ResumeStateSet,
)
from vrm_protocol.message_types._guards import OFFER_CODES, live_offer, set_offer_status
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import OfferAcceptanceMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.OFFER_ACCEPTANCE


def _query(message: OfferAcceptanceMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(offers=frozenset({message.body.offer.id}))


def _guard(move: Move[OfferAcceptanceMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    offer_id = body.offer.id
    record = live_offer(draft, offer_id, "/body/offer/id", from_role=move.sender.peer)
    if record.digest is not None and body.offer.digest != record.digest:
        # spec §8.5: she would bind bytes other than those of the offer as sent.
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"the digest does not match offer {offer_id} as sent",
            "/body/offer/digest",
        )
    if record.basis == "indicative":
        # spec §6.3 (VRM-STATE-018): one code for this one fault.
        raise Refusal(
            ErrorCode.OFFER_NOT_BINDING,
            f"offer {offer_id} is indicative: it is answered by an RFP, not accepted",
            "/body/offer/id",
        )
    if record.requires_approval and not body.approvals:
        # spec §6.4, §10.2: verifying the approval token is the agent's job.
        raise Refusal(
            ErrorCode.APPROVAL_MISSING,
            f"offer {offer_id} requires a co-decision-maker's approval",
            "/body/approvals",
        )
    payment = body.payment
    chosen = payment.financing_plan if payment is not None else None
    if (
        chosen is not None
        and chosen in record.attested_plans
        and not any(attestation.kind == "ability-to-pay" for attestation in body.attestations or ())
    ):
        # spec §6.4, §10.1 (VRM-ATT-010): verifying the attestation is the agent's job.
        raise Refusal(
            ErrorCode.ATTESTATION_MISSING,
            f"financing plan {chosen} of offer {offer_id} requires an ability-to-pay attestation",
            "/body/attestations",
        )
    set_offer_status(draft, record, OfferStatus.ACCEPTED)
    # One deal per negotiation: every other open offer lapses.
    draft.emit(OpenOffersLapsed(move.now, except_offer=offer_id))
    draft.emit(DealAccepted(offer_id, move.message.id))
    # spec §6.17: a refused deal returns to where it was accepted.
    draft.emit(ResumeStateSet(move.row.state))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=OfferAcceptanceMessage,
    section="6.4",
    steps=(LifecycleStep.TRANSACT,),
    summary="She accepts a live binding offer, disclosing her identity only now.",
    rows=(
        TransitionRow(_S.NEGOTIATION, _B, _T, _S.TRANSACTION,
            "Accepting a live binding offer commits her and discloses her identity (step 4)."),
        TransitionRow(_S.DEVELOPMENT, _B, _T, _S.TRANSACTION,
            "Accepting a development offer is a new deal."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.UNKNOWN_OFFER,
            "the offer named is not an offer of the other party in the relationship",
            "VRM-STATE-004"),
        GuardRule(ErrorCode.OFFER_CLOSED,
            "the offer was accepted, declined, refused or lapsed",
            "VRM-STATE-006"),
        GuardRule(ErrorCode.OFFER_SUPERSEDED, "the offer was superseded", "VRM-MSG-006"),
        GuardRule(ErrorCode.OFFER_EXPIRED, "the offer is past its validUntil", "VRM-STATE-005"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "the digest is not the offer's as sent",
            "VRM-MSG-010"),
        GuardRule(ErrorCode.OFFER_NOT_BINDING, "the offer is indicative", "VRM-STATE-018"),
        GuardRule(ErrorCode.APPROVAL_MISSING,
            "the offer requires approval and the acceptance carries none",
            "VRM-MSG-011"),
        GuardRule(ErrorCode.ATTESTATION_MISSING,
            "the plan chosen requires an attestation and the acceptance carries no ability-"
            "to-pay attestation",
            "VRM-ATT-010"),
    ),
    guard_codes=(
        *OFFER_CODES,
        ErrorCode.REFERENCE_MISMATCH,
        ErrorCode.OFFER_NOT_BINDING,
        ErrorCode.APPROVAL_MISSING,
        ErrorCode.ATTESTATION_MISSING,
    ),
    query=_query,
    sale=True,
)  # fmt: skip
