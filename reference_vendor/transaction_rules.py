"""What the vendor hands over at delivery and invoices (spec §6.22-§6.25): its strategies.

Strategies, so that the suite's self-tests can start the vendor recording a
one-sided handover or invoicing a fee it does not state
(:mod:`reference_vendor.faults`) without a branch in the production code. In
production the new item and its papers go to the individual and, when the
accepted offer took a trade-in, the trade-in and its papers go to the vendor
in the same handover (seed 001, VRM-TRX-003); the invoice is the accepted
offer's breakdown (VRM-TRX-009).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal, Protocol

from vrm_protocol.models import OfferBody

__all__ = [
    "AS_AGREED",
    "BOTH_WAYS",
    "AsAgreed",
    "BothWays",
    "Difference",
    "Handover",
    "HandoverPlan",
    "InvoicePlan",
    "Invoicing",
    "ItemChange",
    "Line",
    "OneSided",
    "UnstatedFee",
]


@dataclass(frozen=True, slots=True)
class ItemChange:
    """One thing that changes hands."""

    kind: Literal["new-vehicle", "trade-in", "papers"]
    description: str
    direction: Literal["to-buyer", "to-vendor"]


@dataclass(frozen=True, slots=True)
class HandoverPlan:
    """What a handover lists, and whether it says the deal has a trade-in."""

    trade_in: bool
    items: tuple[ItemChange, ...]


class Handover(Protocol):
    """What changes hands at the delivery of a deal."""

    def plan(self, offer: OfferBody, trade_in_described: str | None) -> HandoverPlan:
        """The handover of the deal whose accepted offer is ``offer``;
        ``trade_in_described`` is the trade-in as her acceptance registered it."""
        ...


def _delivered(offer: OfferBody) -> list[ItemChange]:
    changes = [ItemChange("new-vehicle", item.description, "to-buyer") for item in offer.items]
    changes.append(
        ItemChange("papers", "Registration certificate, keys and service book", "to-buyer")
    )
    return changes


class BothWays:
    """The new item to her and, with a trade-in, the trade-in to the vendor, at once."""

    def plan(self, offer: OfferBody, trade_in_described: str | None) -> HandoverPlan:
        """Both directions when the accepted offer has a trade-in (VRM-TRX-003)."""
        changes = _delivered(offer)
        if offer.trade_in is None:
            return HandoverPlan(False, tuple(changes))
        old = trade_in_described or offer.trade_in.item.description
        changes.append(ItemChange("trade-in", old, "to-vendor"))
        changes.append(
            ItemChange("papers", f"Registration certificate and keys of {old}", "to-vendor")
        )
        return HandoverPlan(True, tuple(changes))


class OneSided:
    """Fault only: delivers the new item and says nothing of the trade-in."""

    def plan(self, offer: OfferBody, trade_in_described: str | None) -> HandoverPlan:
        """The new item alone, as if the deal had no trade-in."""
        return HandoverPlan(False, tuple(_delivered(offer)))


BOTH_WAYS: Final = BothWays()


# -- invoicing (spec §6.25) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an invoice; ``amount`` negative for a credit."""

    code: str
    description: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Difference:
    """A difference from the accepted offer's total, itemised."""

    line: str
    amount: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class InvoicePlan:
    """What an invoice lists."""

    lines: tuple[Line, ...]
    differences: tuple[Difference, ...] = ()


class Invoicing(Protocol):
    """What the vendor invoices for a delivered deal."""

    def plan(self, offer: OfferBody, addons: Sequence[Line] = ()) -> InvoicePlan:
        """The invoice of the deal whose accepted offer is ``offer``, with the lines
        of the add-ons she accepted (spec §6.45)."""
        ...


def _agreed(offer: OfferBody) -> list[Line]:
    price = offer.price
    lines = [
        Line(
            "vehicle",
            "; ".join(item.description for item in offer.items),
            Decimal(price.subtotal.amount),
        )
    ]
    if price.trade_in_allowance is not None and Decimal(price.trade_in_allowance.amount):
        described = offer.trade_in.item.description if offer.trade_in is not None else "Trade-in"
        lines.append(
            Line("trade-in-allowance", described, -Decimal(price.trade_in_allowance.amount))
        )
    if price.discount is not None and Decimal(price.discount.amount):
        lines.append(Line("discount", "Negotiated discount", -Decimal(price.discount.amount)))
    return lines


class AsAgreed:
    """The accepted offer's breakdown: its subtotal, less its trade-in allowance
    and discount, which is its total (VRM-TRX-009)."""

    def plan(self, offer: OfferBody, addons: Sequence[Line] = ()) -> InvoicePlan:
        """The offer's lines and the add-ons she accepted (VRM-LIV-013), no difference."""
        return InvoicePlan((*_agreed(offer), *addons))


class UnstatedFee:
    """Fault only: adds an administration fee the offer never had, and does not
    itemise it as a difference."""

    def plan(self, offer: OfferBody, addons: Sequence[Line] = ()) -> InvoicePlan:
        """The offer's lines, the add-ons and a fee."""
        fee = Line("administration-fee", "Administration fee", Decimal("195"))
        return InvoicePlan((*_agreed(offer), *addons, fee))


AS_AGREED: Final = AsAgreed()
