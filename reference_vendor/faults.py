"""The reference vendor's faults, for the conformance suite's negative self-tests.

A conformance suite that never fails proves nothing: the suite's own tests
start the vendor with one of these faults (``vrm vendor serve --test-mode
--fault NAME``) and show that the check named in its description fails. Each
fault replaces one strategy of :class:`VendorStrategies` (the runtime's, see
:mod:`vrm_agent.faults`, or one of the vendor's own below); nothing in the
vendor asks whether a fault is on. They are refused outside test mode.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Protocol

import orjson

from reference_vendor.catalogue import Touchpoint
from reference_vendor.evidence import VERIFIED, Evidence, EvidenceReader
from reference_vendor.leaving import DELETING, Leaving, LeavingRule
from reference_vendor.listing_keys import OWN_KEY, ForeignKey, ListingKey
from reference_vendor.living_rules import (
    ACCEPTED_ONLY,
    AS_ANSWERED,
    AS_BOOKED,
    CALENDAR,
    AddonInvoicing,
    Calendar,
    Confirming,
    EveryExtra,
    EveryProposal,
    OtherSlot,
    Servicing,
)
from reference_vendor.materials_rules import FORGETS, AddressKeeping, KeepsAddress
from reference_vendor.myterms_rules import (
    AS_LISTED,
    BOUND_TO_ENROLMENT,
    WHAT_IT_HOLDS,
    ClaimsAll,
    DecliningAll,
    DetailsReceipting,
    MyTermsPolicy,
    ProgrammeBinding,
    Unbound,
)
from reference_vendor.paperwork_rules import AS_CATALOGUED, ForMarketingToo, Paperwork
from reference_vendor.retention import WITHIN_CHOICES, TouchpointGate, blocked_by
from reference_vendor.rules import money
from reference_vendor.store import ConsentPurposes, DeletionRow, EraseData, ForgetItem, Preferences
from reference_vendor.transaction_rules import (
    AS_AGREED,
    BOTH_WAYS,
    Handover,
    Invoicing,
    OneSided,
    UnstatedFee,
)
from vrm_agent.faults import (
    AlgNoneAccepted,
    AudienceUnchecked,
    ExpiredOffersHonoured,
    Fault,
    FaultCatalogue,
    FaultError,
    FreshnessWaived,
    KeyBudgetBeforeVerification,
    RefusalsWaived,
    ReplaysProcessed,
    UncheckedSignatures,
    WrongReceiptDigest,
    only_never_posted,
)
from vrm_agent.inbox import Inbound
from vrm_agent.registry import BoundHandler
from vrm_agent.strategies import PRODUCTION, Decider, DeliveryOptions, Participation, Strategies
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.canonical import b64url_decode
from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.ledger import LedgerFacts, RelationshipCore
from vrm_protocol.models import (
    AnswerBody,
    Message,
    MoneyRange,
    OfferBody,
    OfferPrice,
    SupportEscalationMessage,
    SupportResolutionBody,
    parse_message_dict,
)
from vrm_protocol.state_machine import Direction, Transition
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "CATALOGUE",
    "FAULTS",
    "AttestationAudience",
    "Conversation",
    "Escalations",
    "FaultError",
    "Pricing",
    "Retention",
    "VendorStrategies",
    "check_faults",
]


# -- the vendor's own strategies ------------------------------------------------------------------


class Pricing(Protocol):
    """The last word on an offer answering a request with a budget."""

    def price(self, offer: OfferBody, budget: MoneyRange) -> OfferBody:
        """The offer to send."""
        ...


class ListPrices:
    """The rules' offer, as they computed it (within the budget)."""

    def price(self, offer: OfferBody, budget: MoneyRange) -> OfferBody:
        """``offer`` unchanged."""
        return offer


class OverBudget:
    """Answers with a total above the buyer's budget."""

    def price(self, offer: OfferBody, budget: MoneyRange) -> OfferBody:
        """``offer`` with a total of the budget's maximum plus 500."""
        ceiling = Decimal(budget.max.amount)
        total = money(ceiling + 500, offer.price.total.currency)
        members = {name: getattr(offer.price, name) for name in OfferPrice.model_fields}
        price = OfferPrice.model_validate(present(**{**members, "total": total}))
        return offer.model_copy(update={"price": price})


class Retention(Protocol):
    """Whether data whose retention ended is deleted (spec §12)."""

    @property
    def sweeps(self) -> bool:
        """Whether the retention sweep runs."""
        ...


@dataclass(frozen=True, slots=True)
class _Retention:
    sweeps: bool


class GrantReading(Protocol):
    """Whether it stops reading under a grant she revoked or that ended (spec §6.19)."""

    @property
    def honours_revocation(self) -> bool:
        """Whether a revoked or expired grant stops its reads."""
        ...


@dataclass(frozen=True, slots=True)
class _GrantReading:
    honours_revocation: bool


class AttestationAudience(Protocol):
    """Whom an attestation shown to the vendor must be addressed to (spec §10.3,
    VRM-ATT-009: its ``aud`` must include the receiver)."""

    def audience(self, attestation: Mapping[str, str], own: str) -> str:
        """The party id the attestation's ``aud`` must include; ``own`` is the vendor's."""
        ...


class OwnAudience:
    """An attestation must be addressed to the vendor itself."""

    def audience(self, attestation: Mapping[str, str], own: str) -> str:
        """The vendor's own party id."""
        return own


_OWN_AUDIENCE: Final = OwnAudience()
_LIST_PRICES: Final = ListPrices()
_SWEEPING: Final = _Retention(sweeps=True)
_HONOURING: Final = _GrantReading(honours_revocation=True)


class Conversation(Protocol):
    """How the vendor sends its answer to her question (spec §6.31)."""

    def send_answer(self, inbound: Inbound[Any], work: UnitOfWork, body: AnswerBody) -> None:
        """Add ``body`` to ``work`` as the answer to ``inbound``."""
        ...


class AnswersInThread:
    """In the question's thread, with the question as parent (VRM-CONV-003)."""

    def send_answer(self, inbound: Inbound[Any], work: UnitOfWork, body: AnswerBody) -> None:
        """``body`` answering ``inbound``."""
        inbound.answer(work, body)


class AnswersInANewThread:
    """Starts a thread of its own for the answer, with no parent."""

    def send_answer(self, inbound: Inbound[Any], work: UnitOfWork, body: AnswerBody) -> None:
        """``body`` in a new thread."""
        work.reply(body, thread=None, parent=None)


_IN_THREAD: Final = AnswersInThread()


class Escalations(Protocol):
    """The last word on the answers to her escalation (spec §6.32)."""

    def answers(self, composed: list[SupportResolutionBody]) -> list[SupportResolutionBody]:
        """The answers to send."""
        ...


class AnswersEscalations:
    """The answers as the vendor composed them."""

    def answers(self, composed: list[SupportResolutionBody]) -> list[SupportResolutionBody]:
        """``composed`` unchanged."""
        return composed


class IgnoresEscalations:
    """Takes her escalation and never answers it (VRM-CONV-008)."""

    def answers(self, composed: list[SupportResolutionBody]) -> list[SupportResolutionBody]:
        """Nothing."""
        return []


_ANSWERING: Final = AnswersEscalations()


@dataclass(frozen=True, slots=True)
class VendorStrategies:
    """The runtime's strategies and the vendor's own."""

    runtime: Strategies = PRODUCTION
    pricing: Pricing = _LIST_PRICES
    retention: Retention = _SWEEPING
    handover: Handover = BOTH_WAYS
    invoicing: Invoicing = AS_AGREED
    conversation: Conversation = _IN_THREAD
    escalations: Escalations = _ANSWERING
    grants: GrantReading = _HONOURING
    calendar: Calendar = CALENDAR
    confirming: Confirming = AS_BOOKED
    servicing: Servicing = AS_ANSWERED
    addons: AddonInvoicing = ACCEPTED_ONLY
    listing: ListingKey = OWN_KEY
    attestation_audience: AttestationAudience = _OWN_AUDIENCE
    touchpoints: TouchpointGate = WITHIN_CHOICES
    leaving: Leaving = DELETING
    evidence: EvidenceReader = VERIFIED
    #: Whether an SD-JWT presentation must be bound to this vendor and its sender (§10.5).
    holder_binding: bool = True
    myterms: MyTermsPolicy = AS_LISTED
    programmes: ProgrammeBinding = BOUND_TO_ENROLMENT
    details: DetailsReceipting = WHAT_IT_HOLDS
    paperwork: Paperwork = AS_CATALOGUED
    materials: AddressKeeping = FORGETS


class Unverified:
    """Relies on every message a request's evidence carries, signature unchecked."""

    def read(self, vendor: Any, tokens: Sequence[str] | None) -> Evidence:
        """Every token's payload, as if it verified."""
        messages = []
        for token in tokens or ():
            try:
                payload = orjson.loads(b64url_decode(token.encode().split(b".")[1]))
                messages.append(parse_message_dict(payload))
            except (ValueError, IndexError, ProtocolError):
                continue
        return Evidence(tuple(messages), ())


class DataIgnored:
    """Judges a touchpoint by her notification categories only: one that depends
    on data she did not share goes out anyway."""

    def blocked_by(
        self,
        touchpoint: Touchpoint,
        preferences: Preferences,
        shared: frozenset[str],
        *,
        exited: bool,
    ) -> str | None:
        """:func:`reference_vendor.retention.blocked_by`, as if she shared everything."""
        return blocked_by(touchpoint, preferences, frozenset(touchpoint.needs), exited=exited)


# -- the faults ---------------------------------------------------------------------------------


def _keeping_data_on_exit(message_type: MessageType, handler: BoundHandler) -> BoundHandler:
    """The exit's handler, but nothing it deletes is deleted (the receipt still says it is)."""
    if message_type is not MessageType.EXIT_NOTICE:
        return handler

    def keeping(inbound: Inbound[Any], work: UnitOfWork) -> Awaitable[None]:
        async def run() -> None:
            await handler(inbound, work)
            work.writes[:] = [
                write
                for write in work.writes
                if not isinstance(write, EraseData)
                and not (isinstance(write, DeletionRow) and write.reason == "exit")
            ]

        return run()

    return keeping


@dataclass(frozen=True, slots=True)
class _DeadlinesUnchecked:
    """Shows the state machine an escalation whose deadline is not after it as if
    it had been made a second before its deadline (VRM-CONV-006)."""

    inner: Decider

    def decide(
        self,
        core: RelationshipCore,
        message: Message,
        *,
        our_role: Role,
        our_id: str,
        peer_id: str,
        direction: Direction,
        facts: LedgerFacts,
        now: datetime,
        digest: str | None,
    ) -> Transition:
        if isinstance(message, SupportEscalationMessage):
            deadline = parse_timestamp(message.body.deadline)
            if deadline <= parse_timestamp(message.created):
                earlier = format_timestamp(deadline - timedelta(seconds=1))
                message = message.model_copy(update={"created": earlier})
        return self.inner.decide(
            core,
            message,
            our_role=our_role,
            our_id=our_id,
            peer_id=peer_id,
            direction=direction,
            facts=facts,
            now=now,
            digest=digest,
        )


def _keeping_data_on_consent_change(
    message_type: MessageType, handler: BoundHandler
) -> BoundHandler:
    """The consent change's handler, but nothing it deletes or narrows changes
    (the receipt still says it did)."""
    if message_type is not MessageType.CONSENT_CHANGE:
        return handler

    def keeping(inbound: Inbound[Any], work: UnitOfWork) -> Awaitable[None]:
        async def run() -> None:
            await handler(inbound, work)
            work.writes[:] = [
                write
                for write in work.writes
                if not isinstance(write, ForgetItem | ConsentPurposes | DeletionRow)
            ]

        return run()

    return keeping


class _AnyAudience:
    """Takes whatever audience the token names (read unverified) as its own."""

    def audience(self, attestation: Mapping[str, str], own: str) -> str:
        try:
            part = attestation["token"].split(".")[1]
            payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            return str(payload["aud"][0])
        except (KeyError, IndexError, TypeError, ValueError):
            return own


def _waived(s: VendorStrategies, message_type: MessageType, *codes: ErrorCode) -> VendorStrategies:
    return _runtime(s, decider=RefusalsWaived(s.runtime.decider, message_type, frozenset(codes)))


def _runtime(s: VendorStrategies, **changes: Any) -> VendorStrategies:
    return replace(s, runtime=s.runtime.but(**changes))


#: Every fault of the reference vendor.
CATALOGUE: Final[FaultCatalogue[VendorStrategies]] = FaultCatalogue(
    [
        Fault(
            "accept-expired-offer",
            "honours an acceptance of an offer past its validUntil (VEN-ACCEPT-EXPIRED)",
            lambda s: _runtime(s, decider=ExpiredOffersHonoured(s.runtime.decider)),
        ),
        Fault(
            "skip-audience-check",
            "accepts messages addressed to another party (SEC-AUDIENCE)",
            lambda s: _runtime(s, verifier=AudienceUnchecked(s.runtime.verifier)),
        ),
        Fault(
            "keep-data-after-retention",
            "never deletes data whose retention has ended (VEN-RETENTION)",
            lambda s: replace(s, retention=_Retention(sweeps=False)),
        ),
        Fault(
            "ignore-exit",
            "acknowledges an exit and receipts the deletion, but keeps the data (VEN-EXIT-FINAL)",
            lambda s: _runtime(
                s,
                wrap_handler=lambda t, h, inner=s.runtime.wrap_handler: _keeping_data_on_exit(
                    t, inner(t, h)
                ),
            ),
        ),
        Fault(
            "wrong-receipt-digest",
            "receipts name a digest other than the message's (VEN-RFI-RECEIPT, AUD-RECEIPTS)",
            lambda s: _runtime(s, receipts=WrongReceiptDigest()),
        ),
        Fault(
            "offer-over-budget",
            "answers RFIs and RFPs with a total above the buyer's budget (VEN-RFI-OFFER)",
            lambda s: replace(s, pricing=OverBudget()),
        ),
        Fault(
            "accept-expired-messages",
            "takes a message whose expires has passed (SEC-FRESH-EXPIRED)",
            lambda s: _runtime(
                s,
                verifier=FreshnessWaived(
                    s.runtime.verifier, frozenset({ErrorCode.MESSAGE_EXPIRED})
                ),
            ),
        ),
        Fault(
            "accept-future-messages",
            "takes a message created beyond the allowed skew ahead of its clock (SEC-FRESH-FUTURE)",
            lambda s: _runtime(
                s,
                verifier=FreshnessWaived(
                    s.runtime.verifier, frozenset({ErrorCode.MESSAGE_NOT_YET_VALID})
                ),
            ),
        ),
        Fault(
            "accept-alg-none",
            "takes a message whose JWS header says alg none, in any letter case, as if it were "
            "signed with the sender's key (SEC-ALG-NONE)",
            lambda s: _runtime(s, verifier=AlgNoneAccepted(s.runtime.verifier)),
        ),
        Fault(
            "skip-signature-check",
            "accepts a message whose signature does not verify (SEC-SIG-TAMPERED)",
            lambda s: _runtime(s, verifier=UncheckedSignatures(s.runtime.verifier)),
        ),
        Fault(
            "no-replay-guard",
            "processes another message under a used (sender, id) as new (SEC-REPLAY-DIFFERENT)",
            lambda s: _runtime(s, replay=ReplaysProcessed()),
        ),
        Fault(
            "key-budget-before-verification",
            "charges the per-key rate budget by the header's kid before the signature is "
            "verified, so junk naming a victim's key locks the victim out (BIND-KID-LOCKOUT)",
            lambda s: _runtime(s, admission=KeyBudgetBeforeVerification(s.runtime.admission)),
        ),
        Fault(
            "follow-redirects",
            "follows a redirect in answer to the POST of a reply (BIND-NO-REDIRECT)",
            lambda s: _runtime(s, delivery=DeliveryOptions(follow_redirects=True)),
        ),
        Fault(
            "mailbox-only-without-reply-to",
            "keeps in the mailbox only the messages that were not POSTed to a replyTo inbox "
            "(MBX-KEPT-WITH-REPLY-TO)",
            lambda s: _runtime(s, mailbox=only_never_posted),
        ),
        Fault(
            "one-sided-handover",
            "records the delivery of a deal with a trade-in without the trade-in, and says the "
            "deal has none (TRX-VEN-HANDOVER-BOTH-WAYS)",
            lambda s: replace(s, handover=OneSided()),
        ),
        Fault(
            "invoice-unstated-fee",
            "invoices an administration fee the accepted offer does not have, without "
            "itemising the difference (TRX-VEN-INVOICE-AS-AGREED)",
            lambda s: replace(s, invoicing=UnstatedFee()),
        ),
        Fault(
            "answer-outside-thread",
            "answers her question in a thread of its own, not the question's (VEN-CONV-ANSWER)",
            lambda s: replace(s, conversation=AnswersInANewThread()),
        ),
        Fault(
            "ignore-escalation",
            "takes her escalation of a problem and never answers it (VEN-ESCALATION)",
            lambda s: replace(s, escalations=IgnoresEscalations()),
        ),
        Fault(
            "escalation-deadline-unchecked",
            "takes an escalation whose deadline is not after it (VEN-ESCALATION)",
            lambda s: _runtime(s, decider=_DeadlinesUnchecked(s.runtime.decider)),
        ),
        Fault(
            "ignore-consent-change",
            "answers a consent change with a receipt, but keeps the data and purposes as they "
            "were (VEN-CONSENT-APPLIED)",
            lambda s: _runtime(
                s,
                wrap_handler=lambda t, h, inner=s.runtime.wrap_handler: (
                    _keeping_data_on_consent_change(t, inner(t, h))
                ),
            ),
        ),
        Fault(
            "read-after-revocation",
            "keeps reading under a grant the individual revoked, or that ended (VEN-GRANT-STOPS)",
            lambda s: replace(s, grants=_GrantReading(honours_revocation=False)),
        ),
        Fault(
            "confirm-other-slot",
            "confirms her booking at a time other than the slot she booked (LIV-VEN-APPOINTMENT)",
            lambda s: replace(s, confirming=OtherSlot()),
        ),
        Fault(
            "service-declined-work",
            "records as done the work of a notice she declined (LIV-VEN-SERVICE-RECORD)",
            lambda s: replace(s, servicing=EveryProposal()),
        ),
        Fault(
            "invoice-declined-addon",
            "invoices every extra it proposed, the ones she declined too (LIV-VEN-ADDONS)",
            lambda s: replace(s, addons=EveryExtra()),
        ),
        Fault(
            "listing-foreign-key",
            "signs its directory listing with a key it does not publish (VEN-DIRECTORY-LISTING)",
            lambda s: replace(s, listing=ForeignKey()),
        ),
        Fault(
            "attestation-any-audience",
            "takes an attestation about the sender whatever party its aud names "
            "(VEN-ATTESTATION-AUDIENCE)",
            lambda s: replace(s, attestation_audience=_AnyAudience()),
        ),
        Fault(
            "accept-indicative",
            "takes an acceptance of its indicative offer (VEN-ACCEPT-INDICATIVE)",
            lambda s: _waived(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.OFFER_NOT_BINDING),
        ),
        Fault(
            "accept-twice",
            "takes a second acceptance of an offer already accepted (VEN-ACCEPT-TWICE)",
            lambda s: _waived(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.OFFER_CLOSED),
        ),
        Fault(
            "accept-unknown-offer",
            "takes an acceptance naming an offer it never made (VEN-ACCEPT-UNKNOWN)",
            lambda s: _waived(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.UNKNOWN_OFFER),
        ),
        Fault(
            "accept-superseded",
            "takes an acceptance of an offer her counter-offer superseded (VEN-COUNTER-SUPERSEDES)",
            lambda s: _waived(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.OFFER_SUPERSEDED),
        ),
        Fault(
            "accept-wrong-digest",
            "takes an acceptance naming its offer with another digest (VEN-ACCEPT-DIGEST)",
            lambda s: _waived(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.REFERENCE_MISMATCH),
        ),
        Fault(
            "any-thread",
            "takes a message whatever thread or parent it names (VEN-NOT-A-PARTICIPANT)",
            lambda s: _runtime(s, participation=Participation(checked=False)),
        ),
        Fault(
            "after-exit-support",
            "takes a support request in an exited relationship (VEN-EXIT-FINAL)",
            lambda s: _waived(s, MessageType.SUPPORT_REQUEST, ErrorCode.RELATIONSHIP_EXITED),
        ),
        Fault(
            "her-offers-any-basis",
            "takes an offer of the individual's whatever its basis, and a counter-offer "
            "naming nothing it counters (VEN-OFFER-BASIS)",
            lambda s: _waived(s, MessageType.OFFER, ErrorCode.ILLEGAL_TRANSITION),
        ),
        Fault(
            "touchpoints-ignore-data",
            "sends a touchpoint that depends on data the individual did not share (a promotion "
            "for her area without her area) (VEN-TOUCHPOINTS)",
            lambda s: replace(s, touchpoints=DataIgnored()),
        ),
        Fault(
            "leave-market-keeps-data",
            "leaves the market with a deletion receipt but keeps the data it lists as deleted "
            "(VEN-LEAVE-MARKET)",
            lambda s: replace(s, leaving=LeavingRule(deletes=False)),
        ),
        Fault(
            "trust-unverified-evidence",
            "relies on the evidence a request carries without verifying it as its own signed "
            "message (VEN-EVIDENCE)",
            lambda s: replace(s, evidence=Unverified()),
        ),
        Fault(
            "any-holder-binding",
            "takes an SD-JWT ability to pay whatever audience and nonce its key-binding JWT "
            "names (VEN-SDJWT-ABILITY)",
            lambda s: replace(s, holder_binding=False),
        ),
        Fault(
            "decline-closed-offer",
            "takes a decline of an offer already declined (VEN-DECLINE-UNKNOWN-CLOSED)",
            lambda s: _waived(s, MessageType.OFFER_DECLINE, ErrorCode.OFFER_CLOSED),
        ),
        Fault(
            "mailbox-newest-first",
            "serves a poller's messages newest first, so that next is not the last position "
            "served (MBX-POSITIONS)",
            lambda s: _runtime(s, mailbox=lambda entries: list(reversed(entries))),
        ),
        Fault(
            "decline-listed-agreement",
            "declines her proffer of a MyTerms agreement its discovery document lists "
            "(MYT-VEN-AGREEMENT)",
            lambda s: replace(s, myterms=DecliningAll()),
        ),
        Fault(
            "unbound-programme-terms",
            "answers her programme enrolment with terms that name neither the programme nor "
            "her enrolment (PRG-VEN-ENROLMENT)",
            lambda s: replace(s, programmes=Unbound()),
        ),
        Fault(
            "claim-all-details",
            "receipts her details update as if it held every item of it, held or not "
            "(DET-VEN-RECEIPT)",
            lambda s: replace(s, details=ClaimsAll()),
        ),
        Fault(
            "paperwork-for-marketing",
            "asks for her registration and insurance for marketing as well as for the legal "
            "obligation (VEN-PAPERWORK-TERMS)",
            lambda s: replace(s, paperwork=ForMarketingToo()),
        ),
        Fault(
            "keep-postal-address",
            "keeps the address of a material request after posting, while its dispatch says "
            "deleted (MAT-VEN-DISPATCH)",
            lambda s: replace(s, materials=KeepsAddress()),
        ),
    ]
)

#: Fault name -> what the vendor then does wrong (and the check that must catch it).
FAULTS: Final[dict[str, str]] = dict(CATALOGUE.descriptions)


def check_faults(names: Iterable[str], *, test_mode: bool) -> frozenset[str]:
    """Validate fault names.

    Raises:
        FaultError: an unknown name, or any fault outside test mode.
    """
    return CATALOGUE.check(names, test_mode=test_mode)
