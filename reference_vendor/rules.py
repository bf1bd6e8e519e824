"""The vendor's business rules, as pure functions of the catalogue and the request.

Nothing here does I/O or reads a clock: the agent passes ``now`` and what
its store knows, and gets message *bodies* back (spec §6). Money is
:class:`~decimal.Decimal` throughout and leaves as decimal strings, never
floats (spec §6, common ``decimal``).

* a personal RFI gets at most one *indicative* offer: the best product that
  meets every ``must`` feature within the budget (spec §6.1, §6.3);
* a personal RFP gets a *binding* offer with the requested options, a
  trade-in valuation handed over *with delivery* under a
  ``concurrent-exchange`` condition (seed 001), financing only where a
  trusted ability-to-pay attestation covers the amount financed (spec
  §10.1), and any ``approval-required`` condition echoed (spec §10.2);
* a counter-offer gets a new binding offer that supersedes it, never below
  the pricing floor, or a final offer once the rounds are spent (spec §6.3);
* a third party answers an RFI in its categories with its terms (spec §6.7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from reference_vendor.catalogue import Catalogue, FinancingPlan, Option, Product, TradeInRule
from reference_vendor.clock import format_timestamp

__all__ = [
    "CounterOutcome",
    "answer_counter",
    "binding_offer",
    "financing_cover",
    "format_amount",
    "indicative_offer",
    "money",
    "parse_amount",
    "terms_assertion_body",
    "trade_in_valuation",
]

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

CONCURRENT_EXCHANGE = (
    "The trade-in and its papers change hands at delivery of the new car, "
    "at the same time as the balance is paid: never before."
)


def format_amount(amount: Decimal) -> str:
    """A decimal string for the wire: whole amounts without fraction, else two places."""
    value = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return str(value)


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """A ``money`` value (spec common ``money``)."""
    return {"amount": format_amount(amount), "currency": currency}


def parse_amount(value: Any) -> Decimal | None:
    """The amount of a ``money`` value, or ``None`` when it is not one."""
    try:
        return Decimal(str(value["amount"]))
    except (KeyError, TypeError, InvalidOperation):
        return None


def _budget_max(body: Mapping[str, Any], currency: str) -> Decimal | None:
    ceiling = (body.get("budget") or {}).get("max")
    if not isinstance(ceiling, Mapping) or ceiling.get("currency") != currency:
        return None
    return parse_amount(ceiling)


def financing_cover(attestations: Iterable[Mapping[str, Any]], currency: str) -> Decimal | None:
    """The largest amount verified ability-to-pay attestations cover (spec §10.1).

    ``attestations`` are the claims of attestations already *verified* (trusted
    issuer, signature, subject, audience, expiry): this only reads their ranges.
    """
    cover: Decimal | None = None
    for claims in attestations:
        ceiling = (claims.get("range") or {}).get("max")
        if not isinstance(ceiling, Mapping) or ceiling.get("currency") != currency:
            continue
        amount = parse_amount(ceiling)
        if amount is not None and (cover is None or amount > cover):
            cover = amount
    return cover


# -- matching ---------------------------------------------------------------------------------


def _features(body: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(f.get("name")): str(f.get("importance")) for f in body or []}


def _score(product: Product, wanted: Mapping[str, str], make: str | None, model: str | None) -> int:
    weights = {"should": 3, "nice": 1}
    score = sum(weights.get(imp, 0) for name, imp in wanted.items() if name in product.features)
    if make and product.make.lower() == make.lower():
        score += 10
    if model and product.model.lower() == model.lower():
        score += 20
    return score


def _candidates(
    catalogue: Catalogue,
    category: str,
    features: Mapping[str, str],
    *,
    make: str | None = None,
    model: str | None = None,
) -> list[Product]:
    """Products in ``category`` with every ``must`` feature, best match first, cheaper first."""
    musts = {name for name, importance in features.items() if importance == "must"}
    matching = [
        p
        for p in catalogue.products
        if (p.category == category or p.category.startswith(category + ".")) and musts <= p.features
    ]
    return sorted(matching, key=lambda p: (-_score(p, features, make, model), p.price, p.sku))


def _country_served(catalogue: Catalogue, location: Mapping[str, Any] | None) -> bool:
    if not catalogue.countries or not location:
        return True
    return str(location.get("country")) in catalogue.countries


# -- offers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Priced:
    product: Product
    options: tuple[Option, ...]
    trade_in: Decimal
    discount: Decimal

    @property
    def subtotal(self) -> Decimal:
        return self.product.price + sum((o.price for o in self.options), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.trade_in - self.discount


def _floor_total(catalogue: Catalogue, subtotal: Decimal, trade_in: Decimal) -> Decimal:
    """The lowest total the vendor accepts: the floor share of the list price, less the
    trade-in allowance."""
    floor = (subtotal * catalogue.floor_percent / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
    return floor - trade_in


def _fit(
    catalogue: Catalogue,
    products: Sequence[Product],
    options: Sequence[Option],
    trade_in: Decimal,
    ceiling: Decimal,
    *,
    may_discount: bool,
) -> _Priced | None:
    """The best product (in order) whose price fits ``ceiling``: with every option if
    possible, else without; with a first-round discount (never below the floor) if needed."""
    for product in products:
        for chosen in (tuple(options), ()):
            priced = _Priced(product, chosen, trade_in, Decimal(0))
            if priced.total <= ceiling:
                return priced
            if may_discount:
                step = (
                    priced.subtotal * catalogue.max_discount_per_round_percent / HUNDRED
                ).quantize(CENT, rounding=ROUND_HALF_UP)
                lowest = max(
                    priced.total - step, _floor_total(catalogue, priced.subtotal, trade_in)
                )
                if lowest <= ceiling:
                    return _Priced(product, chosen, trade_in, priced.total - ceiling)
    return None


def trade_in_valuation(rule: TradeInRule, item: Mapping[str, Any], now: datetime) -> Decimal:
    """Value a trade-in: the base value depreciated per year of age, less a rate per mile,
    never below the minimum; rounded down to ten."""
    year = item.get("year")
    age = max(0, now.year - int(year)) if isinstance(year, int) else 8
    mileage = item.get("mileage")
    miles = Decimal(mileage) if isinstance(mileage, int) else Decimal(80000)
    keep = (HUNDRED - rule.depreciation_per_year_percent) / HUNDRED
    value = rule.base_value * keep**age - miles * rule.per_mile
    value = max(rule.minimum, value)
    return (value / 10).to_integral_value(rounding="ROUND_FLOOR") * 10


def _trade_in(
    catalogue: Catalogue, request: Mapping[str, Any] | None, now: datetime
) -> tuple[Decimal, dict[str, Any] | None]:
    if not request or catalogue.trade_in is None:
        return Decimal(0), None
    item = dict(request.get("item") or {})
    valuation = trade_in_valuation(catalogue.trade_in, item, now)
    # Seed 001: the old car and its papers are handed over when the new one is
    # received, whatever the buyer asked (never before delivery).
    section = {
        "item": item,
        "valuation": money(valuation, catalogue.currency),
        "handover": catalogue.trade_in.handover,
        "papersHandover": catalogue.trade_in.handover,
    }
    return valuation, section


def _monthly(principal: Decimal, apr: Decimal, months: int) -> Decimal:
    if principal <= 0:
        return Decimal(0)
    rate = apr / HUNDRED / 12
    if rate == 0:
        return (principal / months).quantize(CENT, rounding=ROUND_HALF_UP)
    payment = principal * rate / (1 - (1 + rate) ** -months)
    return payment.quantize(CENT, rounding=ROUND_HALF_UP)


def financing_plans(
    catalogue: Catalogue,
    total: Decimal,
    *,
    max_term: int | None,
    cover: Decimal | None,
    plans: Iterable[FinancingPlan] | None = None,
) -> list[dict[str, Any]]:
    """The financing plans on offer for ``total`` (spec §6.3 ``financing``).

    A plan that requires an attestation is offered only when ``cover`` (from
    verified ability-to-pay attestations) covers the amount financed (spec §10.1).
    """
    offered: list[dict[str, Any]] = []
    for plan in plans if plans is not None else catalogue.financing:
        if max_term is not None and plan.term_months > max_term:
            continue
        deposit = (total * plan.deposit_percent / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
        financed = total - deposit
        if plan.requires_attestation and (cover is None or cover < financed):
            continue
        monthly = _monthly(financed, plan.apr, plan.term_months)
        offered.append(
            {
                "plan": plan.plan,
                "apr": format_amount(plan.apr) if plan.apr % 1 == 0 else str(plan.apr),
                "termMonths": plan.term_months,
                "deposit": money(deposit, catalogue.currency),
                "monthlyPayment": money(monthly, catalogue.currency),
                "totalPayable": money(deposit + monthly * plan.term_months, catalogue.currency),
                "requiresAttestation": plan.requires_attestation,
            }
        )
    return offered


def _offer_body(
    catalogue: Catalogue,
    priced: _Priced,
    *,
    basis: str,
    valid_until: datetime,
    delivery_method: str,
    delivery_by: datetime,
    trade_in: dict[str, Any] | None,
    financing: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
) -> dict[str, Any]:
    currency = catalogue.currency
    price: dict[str, Any] = {"subtotal": money(priced.subtotal, currency)}
    if priced.trade_in:
        price["tradeInAllowance"] = money(priced.trade_in, currency)
    if priced.discount:
        price["discount"] = money(priced.discount, currency)
    price["total"] = money(priced.total, currency)
    body: dict[str, Any] = {
        "basis": basis,
        "validUntil": format_timestamp(valid_until),
        "items": [
            {
                "sku": priced.product.sku,
                "description": priced.product.description,
                "quantity": 1,
                "unitPrice": money(priced.product.price, currency),
            }
        ],
        "price": price,
        "delivery": {"method": delivery_method, "by": delivery_by.date().isoformat()},
        "terms": catalogue.terms_reference(),
    }
    if priced.options:
        body["options"] = [
            {"code": o.code, "description": o.description, "price": money(o.price, currency)}
            for o in priced.options
        ]
    if financing:
        body["financing"] = financing
    if trade_in is not None:
        body["tradeIn"] = trade_in
    if conditions:
        body["conditions"] = conditions
    return body


def indicative_offer(
    catalogue: Catalogue, rfi: Mapping[str, Any], *, now: datetime
) -> dict[str, Any] | None:
    """At most one indicative offer answering a personal RFI body (spec §6.1, §6.3).

    ``None`` when the vendor has nothing to offer: another category or country,
    another currency, no product with every ``must`` feature within the budget.
    """
    if catalogue.role != "vendor" or not catalogue.products:
        return None
    intent = rfi.get("intent") or {}
    if not catalogue.serves(str(intent.get("category", ""))):
        return None
    if not _country_served(catalogue, (rfi.get("context") or {}).get("location")):
        return None
    ceiling = _budget_max(rfi, catalogue.currency)
    if ceiling is None:
        return None
    features = _features(intent.get("features"))
    options = [o for o in catalogue.options if o.code in features]
    trade_in_value, trade_in = _trade_in(catalogue, rfi.get("tradeIn"), now)
    products = _candidates(catalogue, str(intent.get("category")), features)
    priced = _fit(catalogue, products, options, trade_in_value, ceiling, may_discount=False)
    if priced is None:
        return None
    conditions = []
    if trade_in is not None:
        conditions.append({"kind": "concurrent-exchange", "description": CONCURRENT_EXCHANGE})
    return _offer_body(
        catalogue,
        priced,
        basis="indicative",
        valid_until=now + catalogue.indicative_validity,
        delivery_method=catalogue.delivery_method,
        delivery_by=now + timedelta(days=catalogue.delivery_days),
        trade_in=trade_in,
        financing=[],
        conditions=conditions,
    )


def binding_offer(
    catalogue: Catalogue,
    rfp: Mapping[str, Any],
    *,
    now: datetime,
    cover: Decimal | None,
) -> dict[str, Any] | None:
    """A binding offer answering a personal RFP body (spec §6.2, §6.3), or ``None``.

    ``cover`` is what verified ability-to-pay attestations cover (see
    :func:`financing_cover`); without it no attestation-bound plan is offered.
    """
    if catalogue.role != "vendor" or not catalogue.products:
        return None
    requirements = rfp.get("requirements") or {}
    item = requirements.get("item") or {}
    if not catalogue.serves(str(item.get("category", ""))):
        return None
    delivery = rfp.get("delivery") or {}
    if not _country_served(catalogue, delivery.get("location")):
        return None
    ceiling = _budget_max(rfp, catalogue.currency)
    if ceiling is None:
        return None
    features = _features(requirements.get("features"))
    wanted_options = [str(code) for code in requirements.get("options") or []]
    options = [o for code in wanted_options if (o := catalogue.option(code)) is not None]
    trade_in_value, trade_in = _trade_in(catalogue, rfp.get("tradeIn"), now)
    products = _candidates(
        catalogue,
        str(item.get("category")),
        features,
        make=item.get("make"),
        model=item.get("model"),
    )
    priced = _fit(catalogue, products, options, trade_in_value, ceiling, may_discount=True)
    if priced is None:
        return None
    financing_request = rfp.get("financing") or {}
    financing = (
        financing_plans(
            catalogue,
            priced.total,
            max_term=financing_request.get("maxTermMonths"),
            cover=cover,
        )
        if financing_request.get("wanted")
        else []
    )
    conditions: list[dict[str, Any]] = []
    if trade_in is not None:
        conditions.append({"kind": "concurrent-exchange", "description": CONCURRENT_EXCHANGE})
    for condition in rfp.get("conditions") or []:
        # Spec §10.2: a co-decision-maker's approval the buyer declared is a
        # condition of the deal; the acceptance must carry it.
        if condition.get("kind") == "approval-required":
            conditions.append(dict(condition))
    method = str(delivery.get("method") or catalogue.delivery_method)
    return _offer_body(
        catalogue,
        priced,
        basis="binding",
        valid_until=now + catalogue.offer_validity,
        delivery_method=method,
        delivery_by=now + timedelta(days=catalogue.delivery_days),
        trade_in=trade_in,
        financing=financing,
        conditions=conditions,
    )


@dataclass(frozen=True, slots=True)
class CounterOutcome:
    """The vendor's answer to a counter-offer: a new binding offer body."""

    body: dict[str, Any]
    final: bool


def answer_counter(
    catalogue: Catalogue,
    previous: Mapping[str, Any],
    counter: Mapping[str, Any],
    *,
    round_number: int,
    now: datetime,
) -> CounterOutcome:
    """A new binding offer answering ``counter``, which superseded our ``previous`` offer.

    The new total is the counter's total when the vendor can reach it in this
    round, else the previous total less one round's maximum discount; never
    below the floor (spec §6.3). Once ``round_number`` passes the catalogue's
    rounds the previous terms come back as a final offer.
    """
    currency = catalogue.currency
    price = previous.get("price") or {}
    subtotal = parse_amount(price.get("subtotal")) or Decimal(0)
    trade_in = parse_amount(price.get("tradeInAllowance")) or Decimal(0)
    previous_total = parse_amount(price.get("total")) or subtotal - trade_in
    counter_total = parse_amount((counter.get("price") or {}).get("total"))
    floor = _floor_total(catalogue, subtotal, trade_in)
    step = (subtotal * catalogue.max_discount_per_round_percent / HUNDRED).quantize(
        CENT, rounding=ROUND_HALF_UP
    )
    spent = round_number > catalogue.max_rounds
    if spent or counter_total is None:
        total = previous_total
    else:
        total = min(previous_total, max(counter_total, previous_total - step, floor))
    final = spent or total <= floor or round_number == catalogue.max_rounds
    body = {k: v for k, v in previous.items() if k not in {"supersedes", "inResponseTo"}}
    new_price: dict[str, Any] = {"subtotal": money(subtotal, currency)}
    if trade_in:
        new_price["tradeInAllowance"] = money(trade_in, currency)
    discount = subtotal - trade_in - total
    if discount:
        new_price["discount"] = money(discount, currency)
    new_price["total"] = money(total, currency)
    body["price"] = new_price
    body["basis"] = "binding"
    body["validUntil"] = format_timestamp(now + catalogue.offer_validity)
    if previous.get("financing"):
        names = {str(plan.get("plan")) for plan in previous["financing"]}
        plans = [p for p in catalogue.financing if p.plan in names]
        # The attestation cover was checked for the larger previous amount.
        body["financing"] = (
            financing_plans(catalogue, total, max_term=None, cover=previous_total, plans=plans)
            or previous["financing"]
        )
    conditions = [
        dict(c)
        for c in previous.get("conditions") or []
        if not (c.get("kind") == "other" and "final offer" in str(c.get("description")))
    ]
    if final:
        conditions.append({"kind": "other", "description": "This is our final offer."})
    if conditions:
        body["conditions"] = conditions
    else:
        body.pop("conditions", None)
    return CounterOutcome(body, final)


def terms_assertion_body(catalogue: Catalogue, party_id: str, *, now: datetime) -> dict[str, Any]:
    """The party's terms of sharing, what it asks for and why (spec §6.7)."""
    requests = []
    for request in catalogue.data_requests:
        entry: dict[str, Any] = {
            "item": request.item,
            "purposes": list(request.purposes),
            "retention": {"period": request.retention},
            "required": request.required,
        }
        if request.recipients:
            entry["recipients"] = [dict(r) for r in request.recipients]
        requests.append(entry)
    body: dict[str, Any] = {
        "terms": catalogue.terms_reference(),
        "party": {"id": party_id, "name": catalogue.name, "role": catalogue.role},
        "requests": requests,
        "commitments": {
            "willDo": list(catalogue.will_do),
            "willNotDo": list(catalogue.will_not_do),
        },
        "validUntil": format_timestamp(now + catalogue.terms_validity),
    }
    if catalogue.notification_categories:
        body["notificationCategories"] = list(catalogue.notification_categories)
    return body
