"""The reference vendor's faults, for the conformance suite's negative self-tests.

A conformance suite that never fails proves nothing: the suite's own tests
start the vendor with one of these faults (``vrm vendor serve --test-mode
--fault NAME``) and show that the check named in its description fails. Each
fault replaces one strategy of :class:`VendorStrategies` (the runtime's, see
:mod:`vrm_agent.faults`, or one of the vendor's own below); nothing in the
vendor asks whether a fault is on. They are refused outside test mode.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final, Protocol

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
from reference_vendor.rules import money
from reference_vendor.store import DeletionRow, EraseData
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
    KeyBudgetBeforeVerification,
    ReplaysProcessed,
    UncheckedSignatures,
    WrongReceiptDigest,
    only_never_posted,
)
from vrm_agent.inbox import Inbound
from vrm_agent.registry import BoundHandler
from vrm_agent.strategies import PRODUCTION, DeliveryOptions, Strategies
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.models import MoneyRange, OfferBody, OfferPrice
from vrm_protocol.vocabulary import MessageType

__all__ = [
    "CATALOGUE",
    "FAULTS",
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


_LIST_PRICES: Final = ListPrices()
_SWEEPING: Final = _Retention(sweeps=True)


@dataclass(frozen=True, slots=True)
class VendorStrategies:
    """The runtime's strategies and the vendor's own."""

    runtime: Strategies = PRODUCTION
    pricing: Pricing = _LIST_PRICES
    retention: Retention = _SWEEPING
    handover: Handover = BOTH_WAYS
    invoicing: Invoicing = AS_AGREED
    myterms: MyTermsPolicy = AS_LISTED
    programmes: ProgrammeBinding = BOUND_TO_ENROLMENT
    details: DetailsReceipting = WHAT_IT_HOLDS


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
