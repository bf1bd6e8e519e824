"""Ranking offers by what they would really cost the individual.

An offer's headline total is not what the buyer pays: a trade-in allowance
lowers it, financing adds interest and fees.  :func:`rank_offers` puts offers
side by side on one figure, the *total cost*: the net price after the trade-in
allowance, plus the cost of the cheapest financing plan when the individual
wants financing.  Pure: offers (typed bodies) in, ranking out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.models import Money, OfferBody

__all__ = ["OfferCandidate", "RankedOffer", "rank_offers", "total_cost"]


@dataclass(frozen=True, slots=True)
class OfferCandidate:
    """An offer as the ranking sees it: who made it and its body (spec §6.3)."""

    offer_id: str
    vendor: str
    body: OfferBody
    #: Superseded, accepted, declined or withdrawn offers are not ranked.
    open: bool = True


@dataclass(frozen=True, slots=True)
class RankedOffer:
    """One offer's place in the ranking and how its cost was made up."""

    rank: int
    offer_id: str
    vendor: str
    currency: str
    net_price: Decimal
    finance_cost: Decimal
    total_cost: Decimal
    plan: str | None


def _amount(value: Money | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value.amount)
    except InvalidOperation:
        return None


def total_cost(
    body: OfferBody, *, financing_wanted: bool = True
) -> tuple[Decimal, Decimal, str | None] | None:
    """The net price, the finance cost and the plan chosen for one offer body.

    * Net price: ``price.total`` less ``price.tradeInAllowance``, unless the
      total already has the allowance taken off (total no more than subtotal
      less discount less allowance), so the allowance is never counted twice.
    * Finance cost: for each plan, deposit plus total payable less the net
      price (never below zero); the cheapest plan counts.  Zero when financing
      is not wanted or not offered.

    Returns ``None`` for a body without a readable price.
    """
    price = body.price
    total = _amount(price.total)
    if total is None:
        return None
    allowance = _amount(price.trade_in_allowance) or Decimal(0)
    subtotal = _amount(price.subtotal)
    discount = _amount(price.discount) or Decimal(0)
    if allowance and subtotal is not None and total <= subtotal - discount - allowance:
        net = total
    else:
        net = total - allowance
    finance = Decimal(0)
    plan_name: str | None = None
    plans = body.financing if financing_wanted else None
    costs: list[tuple[Decimal, str]] = []
    for plan in plans or ():
        payable = _amount(plan.total_payable)
        deposit = _amount(plan.deposit) or Decimal(0)
        if payable is None:
            continue
        costs.append((max(Decimal(0), deposit + payable - net), plan.plan))
    if costs:
        finance, plan_name = min(costs)
    return net, finance, plan_name


def _currency(body: OfferBody) -> str:
    return body.price.total.currency


def _still_valid(body: OfferBody, now: datetime | None) -> bool:
    if now is None:
        return True
    try:
        return parse_timestamp(body.valid_until) > now
    except ValueError:
        return False


def rank_offers(
    offers: Iterable[OfferCandidate],
    *,
    now: datetime | None = None,
    financing_wanted: bool = True,
    currency: str | None = None,
) -> list[RankedOffer]:
    """Rank open, unexpired offers by total cost, cheapest first.

    Offers in another currency than ``currency`` (default: the most common one
    among the offers) cannot be compared and are left out, as are offers
    without a readable price.  Ties keep a stable order (offer id).
    """
    usable = [
        offer
        for offer in offers
        if offer.open and _still_valid(offer.body, now) and total_cost(offer.body) is not None
    ]
    if not usable:
        return []
    if currency is None:
        currencies = [_currency(offer.body) for offer in usable]
        currency = max(sorted(set(currencies)), key=currencies.count)
    rows: list[tuple[Decimal, str, OfferCandidate, Decimal, Decimal, str | None]] = []
    for offer in usable:
        if _currency(offer.body) != currency:
            continue
        costed = total_cost(offer.body, financing_wanted=financing_wanted)
        assert costed is not None
        net, finance, plan = costed
        rows.append((net + finance, offer.offer_id, offer, net, finance, plan))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [
        RankedOffer(index + 1, offer.offer_id, offer.vendor, currency, net, finance, cost, plan)
        for index, (cost, _, offer, net, finance, plan) in enumerate(rows)
    ]
