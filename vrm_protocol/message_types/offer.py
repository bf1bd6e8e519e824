"""offer: a vendor's offer, or the individual's counter-offer (spec §6.3; step 3)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, OfferOpened, OfferRecord, OfferStatus
from vrm_protocol.message_types._guards import (
    OFFER_CODES,
    check_digest,
    check_reengagement,
    live_offer,
    parse_time,
    set_offer_status,
)
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import OfferMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_V = Role.VENDOR
_T = MessageType.OFFER

#: States in which a vendor's offer is a development (retention) offer and names its topic.
_DEVELOPMENT_STATES = frozenset({_S.SERVICING, _S.DEVELOPMENT, _S.EXITED})


def _query(message: OfferMessage, sender: Role) -> LedgerQuery:
    named = {message.id}
    if message.body.supersedes is not None:
        named.add(message.body.supersedes.id)
    return LedgerQuery(offers=frozenset(named))


def _guard(move: Move[OfferMessage]) -> RelationshipState:
    message, body, draft = move.message, move.message.body, move.draft
    # spec §6.3: only the individual counters; a counter always names what it counters.
    if move.sender is _B:
        if body.basis != "counter":
            raise Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                "the individual's offer is a counter-offer (basis counter)",
                "/body/basis",
            )
        if body.supersedes is None:
            raise Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                "a counter-offer names the offer it counters in supersedes",
                "/body/supersedes",
            )
    elif body.basis == "counter":
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "basis counter is the individual's; a vendor revises with a new offer that supersedes",
            "/body/basis",
        )
    state = move.row.state
    if move.sender is _V and state is _S.EXITED:
        # spec §8.6: re-engagement preferences are judged before the offer's own rules.
        check_reengagement(draft, body.topic, "an offer")
    if move.sender is _V and state in _DEVELOPMENT_STATES and body.topic is None:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"an offer in {state.value} is a development offer and names its topic",
            "/body/topic",
        )
    if draft.offer(message.id) is not None:
        raise Refusal(ErrorCode.ILLEGAL_TRANSITION, f"offer {message.id} is already known", "/id")
    if body.supersedes is not None:
        old = live_offer(draft, body.supersedes.id, "/body/supersedes/id", from_role=None)
        # spec §6.3 (VRM-MSG-035): the offer replaced is bound by its digest.
        check_digest(old.digest, body.supersedes.digest, f"offer {old.id}", "/body/supersedes/id")
        set_offer_status(draft, old, OfferStatus.SUPERSEDED)
    valid_until = parse_time(body.valid_until, "/body/validUntil")
    record = OfferRecord(
        id=message.id,
        sender=move.sender,
        basis=body.basis,
        valid_until=valid_until,
        digest=move.digest,
        supersedes=body.supersedes.id if body.supersedes is not None else None,
        topic=body.topic,
        requires_approval=any(c.kind == "approval-required" for c in body.conditions or ()),
        attested_plans=tuple(
            plan.plan for plan in body.financing or () if plan.requires_attestation
        ),
    )
    draft.emit(OfferOpened(record), offer=record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=OfferMessage,
    section="6.3",
    steps=(LifecycleStep.NEGOTIATE, LifecycleStep.DEVELOPMENT),
    summary="A vendor's offer (indicative, binding) or her counter-offer, valid until a time.",
    rows=(
        TransitionRow(_S.ENQUIRY, _V, _T, _S.NEGOTIATION,
            "The vendor answers the RFI with an offer (usually indicative): negotiation begins."),
        TransitionRow(_S.NEGOTIATION, _V, _T, _S.NEGOTIATION,
            "New offers, revisions and answers to counter-offers are the substance of "
            "negotiation."),
        TransitionRow(_S.NEGOTIATION, _B, _T, _S.NEGOTIATION,
            "The individual counters (basis counter) an open offer, naming it in supersedes."),
        TransitionRow(_S.SERVICING, _V, _T, _S.DEVELOPMENT,
            "An offer during service is a development (retention) offer and names its topic."),
        TransitionRow(_S.DEVELOPMENT, _V, _T, _S.DEVELOPMENT,
            "Further development offers, each naming its topic."),
        TransitionRow(_S.DEVELOPMENT, _B, _T, _S.DEVELOPMENT,
            "She may counter a development offer as she would any offer."),
        TransitionRow(_S.EXITED, _V, _T, _S.EXITED,
            "A win-back offer only on a topic her preferences allow (seed 003 step 10)."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.REENGAGEMENT_NOT_PERMITTED,
            "a vendor's offer after the exit whose topic her re-engagement preferences do not"
            " allow",
            "VRM-STATE-009"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "an offer of the individual whose basis is not counter, or that names no offer in"
            " supersedes; a vendor's offer whose basis is counter",
            "VRM-STATE-021"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "a vendor's offer in SERVICING, DEVELOPMENT or EXITED without a topic",
            "VRM-MSG-037"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "an offer whose id the relationship already holds as an offer",
            "VRM-ENV-004"),
        GuardRule(ErrorCode.UNKNOWN_OFFER,
            "supersedes names no offer of the relationship",
            "VRM-MSG-006"),
        GuardRule(ErrorCode.OFFER_CLOSED,
            "supersedes names an offer already accepted, declined or lapsed",
            "VRM-MSG-006"),
        GuardRule(ErrorCode.OFFER_SUPERSEDED,
            "supersedes names an offer already superseded",
            "VRM-MSG-006"),
        GuardRule(ErrorCode.OFFER_EXPIRED,
            "supersedes names an offer past its validUntil",
            "VRM-MSG-006"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "supersedes carries another digest than the offer's",
            "VRM-SIG-027"),
        GuardRule(ErrorCode.SCHEMA_INVALID, "validUntil is not an instant", "VRM-FRESH-012"),
    ),
    guard_codes=(*OFFER_CODES, ErrorCode.REFERENCE_MISMATCH, ErrorCode.REENGAGEMENT_NOT_PERMITTED),
    query=_query,
    sale=True,
)  # fmt: skip
