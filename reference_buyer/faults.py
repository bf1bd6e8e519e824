"""The buyer's strategies, and the faults the suite's self-tests start it with.

A conformance suite that never fails proves nothing: the suite's own tests
start the buyer with one fault (``vrm buyer serve --test-mode --fault
NAME``) and show that the check named in its description fails. Each fault
replaces one strategy of :class:`BuyerStrategies`: one of the runtime's
(:mod:`vrm_agent.strategies`, :mod:`vrm_agent.faults`) or one of her guards
below. Nothing in the buyer asks whether a fault is on; each guard calls
whichever strategy the agent was built with. Faults are refused outside test
mode, so a real individual's agent cannot be started broken by accident.

Her guards (spec §12, VRM-BUY-007..013, VRM-PRIV-011..014):

* :class:`IdentityRule` — nothing identifying leaves her agent for a party
  whose offer she has not accepted;
* :class:`NoticeRule` — a service notice must be of a category she allowed
  that party;
* :class:`DealRule` — a deal confirmation must bind exactly the offer bytes
  she accepted and her acceptance;
* :class:`~reference_buyer.reception.Strangers` — a message for a pseudonym
  that is not hers with the sender is answered as any stranger's;
* the runtime's :class:`~vrm_agent.strategies.Participation` — a vendor writes
  only in threads she started with it, answering messages of that thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Protocol

from reference_buyer.approval_answers import ANY_ANSWER, VERIFIED_ANSWERS, AnswerJudge
from reference_buyer.exits import CHECKED_AGAINST_LOG, ExitCheck, VendorExitRule
from reference_buyer.listing_rules import VERIFIED_LISTINGS, ListingRule, UnverifiedListings
from reference_buyer.living_rules import (
    AS_SHE_BOOKED,
    DECLINED_WORK,
    TRADE_IN_FIRST,
    UP_TO_A_LIMIT,
    AddonChoice,
    AnySlot,
    ConfirmationRule,
    NoFlags,
    NoWarnings,
    OfferWarnings,
    WorkRule,
)
from reference_buyer.materials_rules import AS_ASKED, AnyDispatch, DispatchRule
from reference_buyer.myterms_rules import (
    AS_PROFFERED,
    HOLDERS_ONLY,
    MISLABELLED_NOTICES,
    AgreementRule,
    AnyAgreement,
    BreachRule,
    DetailsRecipients,
    Everyone,
    NoBreaches,
)
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.reception import StrangerAnswer, Strangers, UniformStrangers
from reference_buyer.signatories import ANY_SIGNATORY, VERIFIED_SIGNATORIES, SignatoryRule
from reference_buyer.transaction_rules import (
    AS_ACCEPTED,
    BOTH_OR_NEITHER,
    MATCHES_THE_OFFER,
    AnyHandover,
    AnyInvoice,
    ByTransfer,
    DeclinedExtrasTaken,
    HandoverRule,
    InvoiceRule,
    PaymentRule,
)
from vrm_agent.faults import (
    AlgNoneAccepted,
    AudienceUnchecked,
    Fault,
    FaultCatalogue,
    FaultError,
    FreshnessWaived,
    RefusalsWaived,
    ReplaysProcessed,
    UncheckedSignatures,
    WrongReceiptDigest,
)
from vrm_agent.strategies import PRODUCTION, Decider, Participation, Strategies
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.ledger import LedgerFacts, OfferRecord, RelationshipCore
from vrm_protocol.models import (
    DealConfirmationBody,
    ExitNoticeBody,
    Message,
    SupportResolutionBody,
    SupportResolutionMessage,
    to_payload,
)
from vrm_protocol.state_machine import Direction, Transition
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "BUYER_RUNTIME",
    "CATALOGUE",
    "FAULTS",
    "BuyerStrategies",
    "DealRule",
    "ExitRule",
    "FaultError",
    "IdentityRule",
    "NoticeRule",
    "check_faults",
]


# -- her guards ----------------------------------------------------------------------------------


class IdentityRule(Protocol):
    """Whether identifying data may go to a party (spec §12, VRM-PRIV-011)."""

    def may_identify(self, *, deal: bool) -> bool:
        """Whether identifying items may be shared, ``deal`` saying whether she has
        accepted an offer of the party."""
        ...


class OnlyAfterTheDeal:
    """Identity is disclosed at acceptance, to that party only, and not before."""

    def may_identify(self, *, deal: bool) -> bool:
        """Only once she accepted an offer of the party."""
        return deal


class NoticeRule(Protocol):
    """Which service notices she takes (spec §6.9, VRM-BUY-007)."""

    def check(self, category: str, allowed: Sequence[str]) -> None:
        """Refuse a notice of ``category`` when she allowed the party only ``allowed``.

        Raises:
            RemoteProtocolError: NOT_ACCEPTED_BY_TERMS.
        """
        ...


class WithinPreferences:
    """A notice must be of a category she allowed that party."""

    def check(self, category: str, allowed: Sequence[str]) -> None:
        """Refuse a category she did not allow.

        Raises:
            RemoteProtocolError: NOT_ACCEPTED_BY_TERMS.
        """
        if category not in allowed:
            raise RemoteProtocolError(
                ErrorCode.NOT_ACCEPTED_BY_TERMS,
                f"she allows this party notices of {list(allowed)} only, not {category!r}",
                path="/body/category",
            )


class DealRule(Protocol):
    """What a deal confirmation must bind (spec §6.6, VRM-BUY-009)."""

    def check(
        self, body: DealConfirmationBody, accepted: OfferRecord | None, acceptances: Sequence[str]
    ) -> None:
        """Judge ``body`` against the offer she accepted (its ledger record) and
        the acceptances she sent for it (ids, oldest first).

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        ...


class BoundDeals:
    """A deal confirmation names exactly the offer she accepted, by the digest of
    the bytes she received, and her (latest) acceptance of it."""

    def check(
        self, body: DealConfirmationBody, accepted: OfferRecord | None, acceptances: Sequence[str]
    ) -> None:
        """Refuse another digest or another acceptance.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        if accepted is None:
            return  # the state machine judged the offer's id already
        deal = body.deal
        if deal.offer.digest != accepted.digest:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                f"the deal names offer {accepted.id} with a digest other than that of the "
                "bytes she accepted",
                path="/body/deal/offer/digest",
            )
        if not acceptances or deal.acceptance != acceptances[-1]:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                "the deal names an acceptance she did not send for this offer",
                path="/body/deal/acceptance",
            )


class EscalationRule(Protocol):
    """What an answer to her escalation must bind (spec §6.32, VRM-CONV-010)."""

    def check(self, named_request: str, escalated_request: str) -> None:
        """Refuse an answer to her escalation that names another request than the
        one the escalation escalated.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        ...


class BoundEscalations:
    """An answer to her escalation names the request the escalation escalated."""

    def check(self, named_request: str, escalated_request: str) -> None:
        """See :class:`EscalationRule`.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        if named_request != escalated_request:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                f"the answer to her escalation names request {named_request}; the "
                f"escalation escalated {escalated_request}",
                path="/body/request/id",
            )


@dataclass(frozen=True, slots=True)
class GrantRule:
    """Whether her read endpoint refuses reads under a grant she revoked, or whose
    ``until`` passed (spec §11.9, VRM-GRANT-005)."""

    refuses_ended: bool = True


class ExitRule(Protocol):
    """What an exit acknowledgement must account for (spec §6.14, VRM-BUY-014)."""

    def check(self, check: ExitCheck) -> None:
        """Judge an acknowledgement by how it checked out against what she shared.

        Raises:
            RemoteProtocolError: EXIT_INCOMPLETE.
        """
        ...


class AccountedExits:
    """A deletion receipt she asked for accounts for every item she shared."""

    def check(self, check: ExitCheck) -> None:
        """Refuse a receipt that leaves a shared item unaccounted for.

        Raises:
            RemoteProtocolError: EXIT_INCOMPLETE.
        """
        if check.unaccounted:
            raise RemoteProtocolError(
                ErrorCode.EXIT_INCOMPLETE,
                f"the deletion receipt does not account for {list(check.unaccounted)}, "
                "which she shared (neither deleted nor retained with a basis)",
                path="/body/deletionReceipt",
            )


#: Her participation rule: vendors write only in threads she started with them,
#: answering messages of that relationship and thread (spec §7.3, VRM-BUY-008).
BUYER_PARTICIPATION: Final = Participation(thread_must_be_known=True, parent_in_same_thread=True)
#: The runtime's strategies her agent runs with.
BUYER_RUNTIME: Final = PRODUCTION.but(participation=BUYER_PARTICIPATION)

_ONLY_AFTER_THE_DEAL: Final = OnlyAfterTheDeal()
_WITHIN_PREFERENCES: Final = WithinPreferences()
_BOUND_DEALS: Final = BoundDeals()
_BOUND_ESCALATIONS: Final = BoundEscalations()
_UNIFORM_STRANGERS: Final = UniformStrangers()
_ACCOUNTED_EXITS: Final = AccountedExits()


@dataclass(frozen=True, slots=True)
class BuyerStrategies:
    """The runtime's strategies and her guards (see the module docstring)."""

    runtime: Strategies = BUYER_RUNTIME
    strangers: Strangers = _UNIFORM_STRANGERS
    identity: IdentityRule = _ONLY_AFTER_THE_DEAL
    notices: NoticeRule = _WITHIN_PREFERENCES
    deals: DealRule = _BOUND_DEALS
    handovers: HandoverRule = BOTH_OR_NEITHER
    invoices: InvoiceRule = MATCHES_THE_OFFER
    payments: PaymentRule = AS_ACCEPTED
    escalations: EscalationRule = _BOUND_ESCALATIONS
    grants: GrantRule = GrantRule()
    confirmations: ConfirmationRule = AS_SHE_BOOKED
    service_work: WorkRule = DECLINED_WORK
    extras: AddonChoice = UP_TO_A_LIMIT
    offer_warnings: OfferWarnings = TRADE_IN_FIRST
    listings: ListingRule = VERIFIED_LISTINGS
    exits: ExitRule = _ACCOUNTED_EXITS
    vendor_exits: VendorExitRule = CHECKED_AGAINST_LOG
    signatories: SignatoryRule = VERIFIED_SIGNATORIES
    #: Her guard on a co-decision-maker's answers; and whether his agent waits for him.
    approval_answers: AnswerJudge = VERIFIED_ANSWERS
    approve_at_once: bool = False
    myterms: AgreementRule = AS_PROFFERED
    breaches: BreachRule = MISLABELLED_NOTICES
    details: DetailsRecipients = HOLDERS_ONLY
    materials: DispatchRule = AS_ASKED


# -- weakened guards (faults only) ---------------------------------------------------------------


class _Unchecked:
    def check(
        self, body: ExitNoticeBody, *, our_id: str, shared_categories: Iterable[str]
    ) -> ExitCheck:
        return ExitCheck(True, (), tuple(sorted(set(shared_categories))), ())


class _Always:
    def may_identify(self, *, deal: bool) -> bool:
        return True


class _AnyNotice:
    def check(self, category: str, allowed: Sequence[str]) -> None:
        return None


class _AnyDeal:
    def check(
        self, body: DealConfirmationBody, accepted: OfferRecord | None, acceptances: Sequence[str]
    ) -> None:
        return None


class _AnyEscalation:
    def check(self, named_request: str, escalated_request: str) -> None:
        return None


class _AnyExit:
    def check(self, check: ExitCheck) -> None:
        return None


def _lenient(s: BuyerStrategies, message_type: MessageType, *codes: ErrorCode) -> BuyerStrategies:
    return _runtime(s, decider=RefusalsWaived(s.runtime.decider, message_type, frozenset(codes)))


class _TellingStrangers:
    """Tells her pseudonym with another party from a pseudonym nobody has."""

    async def answer(self, to: Sequence[str], pseudonyms: Pseudonyms) -> StrangerAnswer:
        for name in to:
            pseudonym = await pseudonyms.by_identifier(name)
            if pseudonym is not None:
                return StrangerAnswer(
                    pseudonym.identifier,
                    RemoteProtocolError(
                        ErrorCode.NOT_A_PARTICIPANT,
                        "this pseudonym is not in a relationship with you",
                    ),
                )
        return await _UNIFORM_STRANGERS.answer(to, pseudonyms)


@dataclass(frozen=True, slots=True)
class _AsIfAddressedToUs:
    """Shows the state machine a message received for someone else as if it were
    addressed to her pseudonym (it checks the audience too, spec §7.3)."""

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
        if direction is Direction.RECEIVED and our_id not in message.to:
            message = message.model_copy(update={"to": (our_id,)})
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


@dataclass(frozen=True, slots=True)
class _EscalationsUnchecked:
    """Shows the state machine a received support resolution without the escalation
    it names, so that one naming an escalation she never made is taken (spec §6.32)."""

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
        if (
            direction is Direction.RECEIVED
            and isinstance(message, SupportResolutionMessage)
            and message.body.escalation is not None
        ):
            payload = to_payload(message.body)
            del payload["escalation"]
            body = SupportResolutionBody.model_validate(payload)
            message = message.model_copy(update={"body": body})
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


def _runtime(s: BuyerStrategies, **changes: Any) -> BuyerStrategies:
    return replace(s, runtime=s.runtime.but(**changes))


#: Every fault of the reference buyer.
CATALOGUE: Final[FaultCatalogue[BuyerStrategies]] = FaultCatalogue(
    [
        Fault(
            "accept-without-verifying",
            "the inbox accepts a message whose signature does not verify (SEC-SIG-TAMPERED)",
            lambda s: _runtime(s, verifier=UncheckedSignatures(s.runtime.verifier)),
        ),
        Fault(
            "ignore-audience",
            "the inbox accepts a message addressed to someone else, as if it were for the "
            "pseudonym the sender knows (SEC-AUDIENCE)",
            lambda s: _runtime(
                s,
                verifier=AudienceUnchecked(s.runtime.verifier),
                decider=_AsIfAddressedToUs(s.runtime.decider),
            ),
        ),
        Fault(
            "share-identity-early",
            "terms and notices of a party whose offer she has not accepted get identifying "
            "data as the policy allows (BUY-GUARD-TERMS-IDENTITY)",
            lambda s: replace(s, identity=_Always()),
        ),
        Fault(
            "any-notice",
            "a service notice of any category is taken, whatever she allowed "
            "(BUY-GUARD-NOTICE-PREFERENCES)",
            lambda s: replace(s, notices=_AnyNotice()),
        ),
        Fault(
            "any-thread",
            "a message is taken whatever thread or parent it names (BUY-GUARD-FOREIGN-THREAD)",
            lambda s: _runtime(s, participation=Participation(checked=False)),
        ),
        Fault(
            "unbound-deal",
            "a deal confirmation is taken whatever digest and acceptance it names "
            "(BUY-GUARD-DEAL-BINDING)",
            # The state machine's guard (VRM-MSG-032) refuses the same references
            # before her DealRule: both are weakened.
            lambda s: replace(
                _lenient(s, MessageType.DEAL_CONFIRMATION, ErrorCode.REFERENCE_MISMATCH),
                deals=_AnyDeal(),
            ),
        ),
        Fault(
            "pseudonym-oracle",
            "a message to her pseudonym with another party is refused as not-a-participant, "
            "unlike one to a pseudonym nobody has (BUY-GUARD-PSEUDONYM-ORACLE)",
            lambda s: replace(s, strangers=_TellingStrangers()),
        ),
        Fault(
            "accept-one-sided-handover",
            "her inspection accepts any handover record, one-sided or bound to another "
            "acceptance (TRX-BUY-HANDOVER-REFUSED)",
            lambda s: replace(s, handovers=AnyHandover()),
        ),
        Fault(
            "take-unmatched-invoice",
            "takes an invoice whose total is not the accepted offer's plus its itemised "
            "differences (TRX-BUY-INVOICE-MATCHES)",
            lambda s: replace(s, invoices=AnyInvoice()),
        ),
        Fault(
            "pay-by-transfer",
            "pays by bank transfer instead of the financing she chose at acceptance "
            "(TRX-BUY-PAYMENT-FINANCING)",
            lambda s: replace(s, payments=ByTransfer()),
        ),
        Fault(
            "any-escalation-answer",
            "a support resolution naming an escalation she never made is taken (BUY-ESCALATION)",
            lambda s: _runtime(s, decider=_EscalationsUnchecked(s.runtime.decider)),
        ),
        Fault(
            "unbound-escalation-answer",
            "an answer to her escalation naming another of her requests is taken "
            "(BUY-ESCALATION-BINDING)",
            lambda s: replace(s, escalations=_AnyEscalation()),
        ),
        Fault(
            "serve-ended-grants",
            "her read endpoint answers reads under a grant she revoked, or that ended "
            "(BUY-GRANT-REVOKED)",
            lambda s: replace(s, grants=GrantRule(refuses_ended=False)),
        ),
        Fault(
            "take-other-slot",
            "takes an appointment confirmation at a time other than the slot she booked "
            "(LIV-BUY-APPOINTMENT)",
            lambda s: replace(s, confirmations=AnySlot()),
        ),
        Fault(
            "ignore-declined-work",
            "keeps a service record that lists work she declined without flagging it "
            "(LIV-BUY-SERVICE-HISTORY)",
            lambda s: replace(s, service_work=NoFlags()),
        ),
        Fault(
            "take-declined-addon",
            "takes an invoice that charges an extra she declined (LIV-BUY-ADDONS)",
            lambda s: replace(s, invoices=DeclinedExtrasTaken()),
        ),
        Fault(
            "no-offer-warnings",
            "flags no offer, not one that takes her old car before delivery "
            "(LIV-BUY-TRADE-IN-FIRST)",
            lambda s: replace(s, offer_warnings=NoWarnings()),
        ),
        Fault(
            "unverified-listings",
            "writes to every vendor a directory names, whoever signed its listing "
            "(BUY-DIRECTORY-SEARCH)",
            lambda s: replace(s, listings=UnverifiedListings()),
        ),
        Fault(
            "accept-indicative",
            "accepts an indicative offer when told to (BUY-OBL-INDICATIVE)",
            lambda s: _lenient(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.OFFER_NOT_BINDING),
        ),
        Fault(
            "unchecked-exit-receipt",
            "takes an exit acknowledgement whose deletion receipt leaves out an item she "
            "shared (BUY-OBL-EXIT-RECEIPT)",
            lambda s: replace(s, exits=_AnyExit()),
        ),
        Fault(
            "exit-acknowledgement-incomplete",
            "takes an exit acknowledgement without the deletion receipt her notice asked for "
            "(BUY-OBL-EXIT-RECEIPT)",
            lambda s: _lenient(s, MessageType.EXIT_ACKNOWLEDGEMENT, ErrorCode.EXIT_INCOMPLETE),
        ),
        Fault(
            "exit-acknowledgement-any-digest",
            "takes an exit acknowledgement that names her exit notice with another digest "
            "(BUY-OBL-EXIT-RECEIPT)",
            lambda s: _lenient(s, MessageType.EXIT_ACKNOWLEDGEMENT, ErrorCode.REFERENCE_MISMATCH),
        ),
        Fault(
            "accept-expired",
            "accepts an offer past its validUntil when told to (BUY-NO-ACCEPT-EXPIRED)",
            lambda s: _lenient(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.OFFER_EXPIRED),
        ),
        Fault(
            "accept-superseded",
            "accepts an offer that a later offer superseded when told to "
            "(BUY-NO-ACCEPT-SUPERSEDED)",
            lambda s: _lenient(s, MessageType.OFFER_ACCEPTANCE, ErrorCode.OFFER_SUPERSEDED),
        ),
        Fault(
            "ignore-reengagement",
            "takes a vendor's offer after her exit whatever her re-engagement preferences "
            "(BUY-EXIT)",
            lambda s: _lenient(
                s,
                MessageType.OFFER,
                ErrorCode.REENGAGEMENT_NOT_PERMITTED,
                ErrorCode.RELATIONSHIP_EXITED,
            ),
        ),
        Fault(
            "no-replay-guard",
            "processes another message under a used (sender, id) as new (SEC-REPLAY-DIFFERENT)",
            lambda s: _runtime(s, replay=ReplaysProcessed()),
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
            "takes a message whose JWS header says alg none as if it were signed (SEC-ALG-NONE)",
            lambda s: _runtime(s, verifier=AlgNoneAccepted(s.runtime.verifier)),
        ),
        Fault(
            "wrong-receipt-digest",
            "receipts name a digest other than the message's (BUY-RECEIPT)",
            lambda s: _runtime(s, receipts=WrongReceiptDigest()),
        ),
        Fault(
            "notices-in-welcome",
            "takes a service notice other than a safety recall before the welcome is over "
            "(BUY-OBL-NOTICE-STATE)",
            lambda s: _lenient(s, MessageType.SERVICE_NOTICE, ErrorCode.ILLEGAL_TRANSITION),
        ),
        Fault(
            "mislabelled-notices",
            "takes a service notice whose kind may not be sent in its category "
            "(BUY-OBL-MISLABELLED-NOTICE)",
            lambda s: _lenient(s, MessageType.SERVICE_NOTICE, ErrorCode.MISLABELLED_NOTICE),
        ),
        Fault(
            "vendor-exit-any-reason",
            "takes a vendor's exit notice whatever its reason (BUY-OBL-VENDOR-EXIT-REASON)",
            lambda s: _lenient(s, MessageType.EXIT_NOTICE, ErrorCode.ILLEGAL_TRANSITION),
        ),
        Fault(
            "development-offers-without-topic",
            "takes a vendor's offer after the welcome that names no topic "
            "(BUY-OBL-DEVELOPMENT-TOPIC)",
            lambda s: _lenient(s, MessageType.OFFER, ErrorCode.ILLEGAL_TRANSITION),
        ),
        Fault(
            "vendor-counter-offers",
            "takes a vendor's offer of basis counter (BUY-OBL-OFFER-BASIS)",
            lambda s: _lenient(s, MessageType.OFFER, ErrorCode.ILLEGAL_TRANSITION),
        ),
        Fault(
            "vendor-exit-unchecked",
            "takes a leaving vendor's exit notice as complete without reading its export and "
            "deletion receipt against her sharing log (BUY-VENDOR-LEAVING)",
            lambda s: replace(s, vendor_exits=_Unchecked()),
        ),
        Fault(
            "trust-any-signatory",
            "shares under terms whose signatory attestation is from an untrusted registry or "
            "about another party (BUY-TERMS-SIGNATORY)",
            lambda s: replace(s, signatories=ANY_SIGNATORY),
        ),
        Fault(
            "take-any-approval",
            "her reply address takes any answer as the co-decision-maker's approval, unverified "
            "(BUY-CODECISION-ASKS)",
            lambda s: replace(s, approval_answers=ANY_ANSWER),
        ),
        Fault(
            "approve-at-once",
            "as a co-decision-maker's agent, approves every request as it arrives, without "
            "waiting for him (BUY-CODECISION-APPROVES)",
            lambda s: replace(s, approve_at_once=True),
        ),
        Fault(
            "unbound-deal-refusal",
            "a deal refusal is taken whatever digest of the offer it names (BUY-DEAL-REFUSAL)",
            lambda s: _lenient(s, MessageType.DEAL_REFUSAL, ErrorCode.REFERENCE_MISMATCH),
        ),
        Fault(
            "take-any-terms-agreement",
            "takes an answer to her proffer that names another agreement than hers "
            "(MYT-BUY-PROFFER)",
            lambda s: replace(s, myterms=AnyAgreement()),
        ),
        Fault(
            "quiet-on-mislabelled-notice",
            "refuses a mislabelled notice but neither reports it nor records it as a breach of "
            "her terms (BUY-GUARD-MISLABELLED-NOTICE)",
            lambda s: replace(s, breaches=NoBreaches()),
        ),
        Fault(
            "update-everyone",
            "sends a change of her details to every current relationship, holder or not "
            "(DET-BUY-FOLLOWS-HER)",
            lambda s: replace(s, details=Everyone()),
        ),
        Fault(
            "any-dispatch",
            "takes a material dispatch that lists material she did not ask for (MAT-BUY-DISPATCH)",
            lambda s: replace(s, materials=AnyDispatch()),
        ),
    ]
)

#: Fault name -> what the buyer then does wrong (and the check that must catch it).
FAULTS: Final[dict[str, str]] = dict(CATALOGUE.descriptions)


def check_faults(names: Iterable[str], *, test_mode: bool) -> frozenset[str]:
    """Validate fault names.

    Raises:
        FaultError: an unknown name, or any fault outside test mode.
    """
    return CATALOGUE.check(names, test_mode=test_mode)
