"""Her guards for the transaction carried through (spec §6.23-§6.27): strategies.

Strategies, so that the suite's self-tests can start her agent with a guard
weakened (:mod:`reference_buyer.faults`) without a branch in production code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal, Protocol

from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.message_types.handover_record import one_sided
from vrm_protocol.models import HandoverRecordBody, InvoiceBody, OfferAcceptanceBody, OfferBody

__all__ = [
    "AS_ACCEPTED",
    "BOTH_OR_NEITHER",
    "MATCHES_THE_OFFER",
    "NO_ADDONS",
    "AddonTerms",
    "AnyHandover",
    "AnyInvoice",
    "AsAccepted",
    "BothOrNeither",
    "ByTransfer",
    "DeclinedExtrasTaken",
    "HandoverRule",
    "InvoiceRule",
    "MatchesTheOffer",
    "PaymentMeans",
    "PaymentRule",
    "Reason",
]

#: A reason for refusing a handover: its code and its words (spec §6.24).
Reason = tuple[str, str]


class HandoverRule(Protocol):
    """Which handover records she accepts (spec §6.24, VRM-TRX-005)."""

    def judge(
        self, record: HandoverRecordBody, *, trade_in: bool, acceptance_digest: str | None
    ) -> list[Reason]:
        """Her reasons for refusing ``record``, none when she accepts it.
        ``trade_in`` says whether the offer she accepted has a trade-in;
        ``acceptance_digest`` is the digest of the acceptance she sent."""
        ...


class BothOrNeither:
    """The record names her acceptance by its bytes, and when her deal has a
    trade-in, the new item comes to her and the trade-in goes, together, whatever
    the record says of the deal (seed 001)."""

    def judge(
        self, record: HandoverRecordBody, *, trade_in: bool, acceptance_digest: str | None
    ) -> list[Reason]:
        """Refuse a record bound to another acceptance, or one-sided by her deal."""
        reasons: list[Reason] = []
        if acceptance_digest is not None and record.deal.acceptance.digest != acceptance_digest:
            reasons.append(
                ("not-her-deal", "The record names my acceptance with a digest other than mine.")
            )
        why = one_sided(record.items, trade_in=trade_in)
        if why is not None:
            code = "trade-in-not-taken" if trade_in else "not-as-described"
            reasons.append(
                (code, f"One-sided handover: {why}, but my accepted offer says otherwise.")
            )
        return reasons


class AnyHandover:
    """Fault only: accepts whatever the vendor records."""

    def judge(
        self, record: HandoverRecordBody, *, trade_in: bool, acceptance_digest: str | None
    ) -> list[Reason]:
        """No reason, ever."""
        return []


BOTH_OR_NEITHER: Final = BothOrNeither()


# -- invoices and payments (spec §6.25, §6.27) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddonTerms:
    """The extras she answered (spec §6.46): the price of each she accepted, by
    code, and the codes she declined."""

    accepted: Mapping[str, Decimal] = field(default_factory=dict)
    declined: frozenset[str] = frozenset()


#: No extra proposed.
NO_ADDONS: Final = AddonTerms()


class InvoiceRule(Protocol):
    """Which invoices she takes (spec §6.25, VRM-TRX-011)."""

    def check(
        self, invoice: InvoiceBody, accepted: OfferBody | None, addons: AddonTerms = NO_ADDONS
    ) -> None:
        """Refuse ``invoice`` when it does not match ``accepted``, the offer she
        accepted (``None`` when her agent holds none), and the extras she answered
        (``addons``, spec §6.45).

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        ...


class MatchesTheOffer:
    """The total is the accepted offer's, plus the extras she accepted, plus the
    differences the vendor itemised; no extra she declined is charged."""

    def check(
        self, invoice: InvoiceBody, accepted: OfferBody | None, addons: AddonTerms = NO_ADDONS
    ) -> None:
        """Refuse a declined extra, another total, or another currency.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        declined = [line.code for line in invoice.lines if line.code in addons.declined]
        if declined:
            # spec §6.45 (VRM-LIV-014): a declined extra never appears on the invoice.
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                f"the invoice charges extras she declined: {', '.join(declined)}",
                path="/body/lines",
            )
        if accepted is None:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                "she accepted no offer this invoice could be for",
                path="/body/deal/offer",
            )
        agreed = accepted.price.total
        differences = invoice.differences or ()
        expected = (
            Decimal(agreed.amount)
            + sum(addons.accepted.values(), Decimal(0))
            + sum((Decimal(d.amount.amount) for d in differences), Decimal(0))
        )
        currencies = {agreed.currency, invoice.total.currency} | {
            d.amount.currency for d in differences
        }
        if len(currencies) > 1 or Decimal(invoice.total.amount) != expected:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                f"the invoice totals {invoice.total.currency} {invoice.total.amount}; the offer "
                f"she accepted totals {agreed.currency} {agreed.amount}"
                + (
                    f" and with the extras she took and the differences itemised, {expected}"
                    if differences or addons.accepted
                    else ""
                )
                + ": an unstated difference is not hers to pay",
                path="/body/total",
            )


class AnyInvoice:
    """Fault only: takes any invoice."""

    def check(
        self, invoice: InvoiceBody, accepted: OfferBody | None, addons: AddonTerms = NO_ADDONS
    ) -> None:
        """Nothing is refused."""
        return None


class DeclinedExtrasTaken:
    """Fault only: takes the extras she declined as if she had accepted them."""

    def check(
        self, invoice: InvoiceBody, accepted: OfferBody | None, addons: AddonTerms = NO_ADDONS
    ) -> None:
        """The offer's rule, with every extra invoiced counted as accepted.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        taken = dict(addons.accepted)
        for line in invoice.lines:
            if line.code in addons.declined:
                taken[line.code] = Decimal(line.amount.amount)
        MATCHES_THE_OFFER.check(invoice, accepted, AddonTerms(taken, frozenset()))


@dataclass(frozen=True, slots=True)
class PaymentMeans:
    """How she pays: the method, and the financing plan and its provider."""

    method: Literal["finance", "bank-transfer", "card"]
    plan: str | None = None
    provider: str | None = None


class PaymentRule(Protocol):
    """How she pays an invoice (spec §6.27, VRM-TRX-012)."""

    def means(self, acceptance: OfferAcceptanceBody | None, lender: str | None) -> PaymentMeans:
        """The means of paying the deal she accepted with ``acceptance``; ``lender``
        issued the ability-to-pay attestation she lined her financing up with."""
        ...


class AsAccepted:
    """By the means she chose at acceptance: the financing she lined up (the plan,
    lent by the issuer of the ability-to-pay attestation she carried) is never
    replaced by another means."""

    def means(self, acceptance: OfferAcceptanceBody | None, lender: str | None) -> PaymentMeans:
        """The acceptance's payment; a bank transfer when it named none."""
        payment = acceptance.payment if acceptance is not None else None
        if payment is None:
            return PaymentMeans("bank-transfer")
        if payment.method == "finance":
            return PaymentMeans("finance", payment.financing_plan, lender)
        return PaymentMeans(payment.method)


class ByTransfer:
    """Fault only: pays by bank transfer, whatever she chose."""

    def means(self, acceptance: OfferAcceptanceBody | None, lender: str | None) -> PaymentMeans:
        """A bank transfer."""
        return PaymentMeans("bank-transfer")


MATCHES_THE_OFFER: Final = MatchesTheOffer()
AS_ACCEPTED: Final = AsAccepted()
