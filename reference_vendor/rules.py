"""The vendor's business rules, as pure functions of the catalogue and the request.

Nothing here does I/O or reads a clock: the handlers pass ``now`` and the
typed bodies they received, and get typed bodies back (spec §6): the models
validate what they are given, so a rule cannot compute a body the protocol
does not allow. Money is :class:`~decimal.Decimal` throughout and leaves as
decimal strings, never floats (spec §6, common ``decimal``).

* a personal RFI gets at most one *indicative* offer (or a binding one, when
  the catalogue says so): the best product that meets every ``must`` feature
  within the budget (spec §6.1, §6.3);
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

from reference_vendor.catalogue import Catalogue, FinancingPlan, Option, Product, TradeInRule
from vrm_agent.unit import present
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import (
    AssertingParty,
    Attestation,
    AttestationStatement,
    Commitments,
    Condition,
    DataRecipient,
    DataRequest,
    Feature,
    Location,
    MessageRef,
    Money,
    MoneyRange,
    OfferBody,
    OfferDelivery,
    OfferItem,
    OfferOption,
    OfferPrice,
    OfferTradeIn,
    PersonalRfiBody,
    PersonalRfpBody,
    Retention,
    TermsAssertionBody,
    TermsReference,
    TradeIn,
    TradeInItem,
)
from vrm_protocol.models import FinancingPlan as OfferedPlan

__all__ = [
    "CounterOutcome",
    "answer_counter",
    "binding_offer",
    "financing_cover",
    "financing_plans",
    "format_amount",
    "indicative_offer",
    "message_ref",
    "money",
    "parse_amount",
    "terms_assertion_body",
    "terms_reference",
    "trade_in_valuation",
]

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

CONCURRENT_EXCHANGE = (
    "The trade-in and its papers change hands at delivery of the new car, "
    "at the same time as the balance is paid: never before."
)
FINAL_OFFER = "This is our final offer."


def format_amount(amount: Decimal) -> str:
    """A decimal string for the wire: whole amounts without fraction, else two places."""
    value = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return str(value)


def money(amount: Decimal, currency: str) -> Money:
    """A ``money`` value (spec common ``money``).

    Raises:
        pydantic.ValidationError: the amount or currency is not one the protocol allows.
    """
    return Money(amount=format_amount(amount), currency=currency)


def parse_amount(value: Money | None) -> Decimal | None:
    """The amount of a ``money`` value, or ``None`` when there is none."""
    if value is None:
        return None
    try:
        return Decimal(value.amount)
    except InvalidOperation:
        return None


def _budget_max(budget: MoneyRange, currency: str) -> Decimal | None:
    if budget.max.currency != currency:
        return None
    return parse_amount(budget.max)


def financing_cover(attestations: Iterable[AttestationStatement], currency: str) -> Decimal | None:
    """The largest amount verified ability-to-pay attestations cover (spec §10.1).

    ``attestations`` are the statements of attestations already *verified*
    (trusted issuer, signature, subject, audience, expiry): this only reads
    their ranges.
    """
    cover: Decimal | None = None
    for statement in attestations:
        if statement.range is None or statement.range.max.currency != currency:
            continue
        amount = parse_amount(statement.range.max)
        if amount is not None and (cover is None or amount > cover):
            cover = amount
    return cover


def terms_reference(catalogue: Catalogue) -> TermsReference:
    """The ``termsReference`` offers and terms assertions carry (spec §6.7, §11.7).

    Raises:
        CatalogueError: the catalogue was not bound to the party's origin.
    """
    reference = catalogue.terms_reference()
    return TermsReference(
        id=reference["id"],
        version=reference["version"],
        url=reference["url"],
        digest=reference["digest"],
    )


# -- matching ---------------------------------------------------------------------------------


def _features(features: Sequence[Feature] | None) -> dict[str, str]:
    return {feature.name: feature.importance for feature in features or ()}


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


def _country_served(catalogue: Catalogue, location: Location | None) -> bool:
    if not catalogue.countries or location is None:
        return True
    return location.country in catalogue.countries


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


def trade_in_valuation(rule: TradeInRule, item: TradeInItem, now: datetime) -> Decimal:
    """Value a trade-in: the base value depreciated per year of age, less a rate per mile,
    never below the minimum; rounded down to ten."""
    age = max(0, now.year - item.year) if item.year is not None else 8
    miles = Decimal(item.mileage) if item.mileage is not None else Decimal(80000)
    keep = (HUNDRED - rule.depreciation_per_year_percent) / HUNDRED
    value = rule.base_value * keep**age - miles * rule.per_mile
    value = max(rule.minimum, value)
    return (value / 10).to_integral_value(rounding="ROUND_FLOOR") * 10


def _trade_in(
    catalogue: Catalogue, request: TradeIn | None, now: datetime
) -> tuple[Decimal, OfferTradeIn | None]:
    rule = catalogue.trade_in
    if request is None or rule is None:
        return Decimal(0), None
    valuation = trade_in_valuation(rule, request.item, now)
    # Seed 001: the old car and its papers are handed over when the new one is
    # received, whatever the buyer asked (never before delivery).
    section = OfferTradeIn(
        item=request.item,
        valuation=money(valuation, catalogue.currency),
        handover=rule.handover,
        papers_handover=rule.handover,
    )
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
) -> tuple[OfferedPlan, ...]:
    """The financing plans on offer for ``total`` (spec §6.3 ``financing``).

    A plan that requires an attestation is offered only when ``cover`` (from
    verified ability-to-pay attestations) covers the amount financed (spec §10.1).
    """
    offered: list[OfferedPlan] = []
    currency = catalogue.currency
    for plan in plans if plans is not None else catalogue.financing:
        if max_term is not None and plan.term_months > max_term:
            continue
        deposit = (total * plan.deposit_percent / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
        financed = total - deposit
        if plan.requires_attestation and (cover is None or cover < financed):
            continue
        monthly = _monthly(financed, plan.apr, plan.term_months)
        offered.append(
            OfferedPlan(
                plan=plan.plan,
                apr=format_amount(plan.apr) if plan.apr % 1 == 0 else str(plan.apr),
                term_months=plan.term_months,
                deposit=money(deposit, currency),
                monthly_payment=money(monthly, currency),
                total_payable=money(deposit + monthly * plan.term_months, currency),
                requires_attestation=plan.requires_attestation,
            )
        )
    return tuple(offered)


def _offer_body(
    catalogue: Catalogue,
    priced: _Priced,
    *,
    basis: str,
    valid_until: datetime,
    delivery_method: str,
    delivery_by: datetime,
    trade_in: OfferTradeIn | None,
    financing: Sequence[OfferedPlan],
    conditions: Sequence[Condition],
) -> OfferBody:
    currency = catalogue.currency
    product = priced.product
    return OfferBody.model_validate(
        present(
            basis=basis,
            valid_until=format_timestamp(valid_until),
            items=(
                OfferItem(
                    sku=product.sku,
                    description=product.description,
                    quantity=1,
                    unit_price=money(product.price, currency),
                ),
            ),
            price=_price(priced.subtotal, priced.trade_in, priced.discount, priced.total, currency),
            delivery=OfferDelivery(method=delivery_method, by=delivery_by.date().isoformat()),
            terms=terms_reference(catalogue),
            options=tuple(
                OfferOption(code=o.code, description=o.description, price=money(o.price, currency))
                for o in priced.options
            )
            or None,
            financing=tuple(financing) or None,
            trade_in=trade_in,
            conditions=tuple(conditions) or None,
        )
    )


def _price(
    subtotal: Decimal, trade_in: Decimal, discount: Decimal, total: Decimal, currency: str
) -> OfferPrice:
    return OfferPrice(
        subtotal=money(subtotal, currency),
        total=money(total, currency),
        **present(
            trade_in_allowance=money(trade_in, currency) if trade_in else None,
            discount=money(discount, currency) if discount else None,
        ),
    )


def _concurrent_exchange() -> Condition:
    return Condition(kind="concurrent-exchange", description=CONCURRENT_EXCHANGE)


def indicative_offer(
    catalogue: Catalogue, rfi: PersonalRfiBody, *, now: datetime
) -> OfferBody | None:
    """At most one offer answering a personal RFI (spec §6.1, §6.3): indicative, or
    binding when the catalogue answers RFIs with binding offers
    (``pricing.rfi_offer_basis``).

    ``None`` when the vendor has nothing to offer: another category or country,
    another currency, no product with every ``must`` feature within the budget.

    Raises:
        pydantic.ValidationError: the catalogue makes an offer the protocol does
            not allow (e.g. a delivery method that is not a token).
    """
    if not catalogue.sells or not catalogue.products:
        return None
    intent = rfi.intent
    if not catalogue.serves(intent.category):
        return None
    if not _country_served(catalogue, rfi.context.location if rfi.context else None):
        return None
    ceiling = _budget_max(rfi.budget, catalogue.currency)
    if ceiling is None:
        return None
    features = _features(intent.features)
    options = [o for o in catalogue.options if o.code in features]
    trade_in_value, trade_in = _trade_in(catalogue, rfi.trade_in, now)
    products = _candidates(catalogue, intent.category, features)
    priced = _fit(catalogue, products, options, trade_in_value, ceiling, may_discount=False)
    if priced is None:
        return None
    binding = catalogue.rfi_offer_basis == "binding"
    return _offer_body(
        catalogue,
        priced,
        basis="binding" if binding else "indicative",
        valid_until=now + (catalogue.offer_validity if binding else catalogue.indicative_validity),
        delivery_method=catalogue.delivery_method,
        delivery_by=now + timedelta(days=catalogue.delivery_days),
        trade_in=trade_in,
        financing=(),
        conditions=[_concurrent_exchange()] if trade_in is not None else [],
    )


def binding_offer(
    catalogue: Catalogue,
    rfp: PersonalRfpBody,
    *,
    now: datetime,
    cover: Decimal | None,
) -> OfferBody | None:
    """A binding offer answering a personal RFP (spec §6.2, §6.3), or ``None``.

    ``cover`` is what verified ability-to-pay attestations cover (see
    :func:`financing_cover`); without it no attestation-bound plan is offered.

    Raises:
        pydantic.ValidationError: as :func:`indicative_offer`.
    """
    if not catalogue.sells or not catalogue.products:
        return None
    requirements = rfp.requirements
    item = requirements.item
    if not catalogue.serves(item.category):
        return None
    delivery = rfp.delivery
    if not _country_served(catalogue, delivery.location if delivery else None):
        return None
    ceiling = _budget_max(rfp.budget, catalogue.currency)
    if ceiling is None:
        return None
    features = _features(requirements.features)
    options = [
        o for code in requirements.options or () if (o := catalogue.option(code)) is not None
    ]
    trade_in_value, trade_in = _trade_in(catalogue, rfp.trade_in, now)
    products = _candidates(catalogue, item.category, features, make=item.make, model=item.model)
    priced = _fit(catalogue, products, options, trade_in_value, ceiling, may_discount=True)
    if priced is None:
        return None
    financing_request = rfp.financing
    financing = (
        financing_plans(
            catalogue,
            priced.total,
            max_term=financing_request.max_term_months,
            cover=cover,
        )
        if financing_request is not None and financing_request.wanted
        else ()
    )
    conditions: list[Condition] = []
    if trade_in is not None:
        conditions.append(_concurrent_exchange())
    # Spec §10.2: a co-decision-maker's approval the buyer declared is a
    # condition of the deal; the acceptance must carry it.
    conditions.extend(c for c in rfp.conditions or () if c.kind == "approval-required")
    method = (delivery.method if delivery is not None else None) or catalogue.delivery_method
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

    body: OfferBody
    final: bool


def answer_counter(
    catalogue: Catalogue,
    previous: OfferBody,
    counter: OfferBody,
    *,
    round_number: int,
    now: datetime,
) -> CounterOutcome:
    """A new binding offer answering ``counter``, which superseded our ``previous`` offer.

    The new total is the counter's total when the vendor can reach it in this
    round, else the previous total less one round's maximum discount; never
    below the floor (spec §6.3). Once ``round_number`` passes the catalogue's
    rounds the previous terms come back as a final offer. The answer names
    neither what it supersedes nor what it answers: the handler adds both.

    Raises:
        pydantic.ValidationError: the answer is not a body the protocol allows.
    """
    currency = catalogue.currency
    price = previous.price
    subtotal = parse_amount(price.subtotal) or Decimal(0)
    trade_in = parse_amount(price.trade_in_allowance) or Decimal(0)
    previous_total = parse_amount(price.total) or subtotal - trade_in
    counter_total = parse_amount(counter.price.total)
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
    new_price = _price(subtotal, trade_in, subtotal - trade_in - total, total, currency)
    financing = previous.financing
    if financing:
        names = {plan.plan for plan in financing}
        plans = [p for p in catalogue.financing if p.plan in names]
        # The attestation cover was checked for the larger previous amount.
        financing = (
            financing_plans(catalogue, total, max_term=None, cover=previous_total, plans=plans)
            or financing
        )
    conditions = [
        c
        for c in previous.conditions or ()
        if not (c.kind == "other" and "final offer" in c.description)
    ]
    if final:
        conditions.append(Condition(kind="other", description=FINAL_OFFER))
    kept = {
        name: getattr(previous, name)
        for name in OfferBody.model_fields
        if name not in {"supersedes", "in_response_to"}
    }
    body = OfferBody.model_validate(
        present(
            **{
                **kept,
                "price": new_price,
                "basis": "binding",
                "valid_until": format_timestamp(now + catalogue.offer_validity),
                "financing": financing or None,
                "conditions": tuple(conditions) or None,
            }
        )
    )
    return CounterOutcome(body, final)


def terms_assertion_body(
    catalogue: Catalogue,
    party_id: str,
    *,
    now: datetime,
    attestations: Sequence[Attestation] = (),
) -> TermsAssertionBody:
    """The party's terms of sharing, what it asks for and why (spec §6.7).

    Raises:
        pydantic.ValidationError: the catalogue's terms are not ones the protocol allows.
    """
    requests = tuple(
        DataRequest.model_validate(
            present(
                item=request.item,
                purposes=tuple(request.purposes),
                retention=Retention(period=request.retention),
                required=request.required,
                recipients=tuple(DataRecipient.model_validate(r) for r in request.recipients)
                or None,
            )
        )
        for request in catalogue.data_requests
    )
    return TermsAssertionBody.model_validate(
        present(
            terms=terms_reference(catalogue),
            party=AssertingParty.model_validate(
                {"id": party_id, "name": catalogue.name, "role": catalogue.role}
            ),
            requests=requests,
            commitments=Commitments(
                will_do=tuple(catalogue.will_do), will_not_do=tuple(catalogue.will_not_do)
            ),
            valid_until=format_timestamp(now + catalogue.terms_validity),
            notification_categories=tuple(catalogue.notification_categories) or None,
            # Spec §10.4: that the party signed these terms, in a registry's words.
            attestations=tuple(attestations) or None,
        )
    )


def message_ref(message_id: str, digest: str | None) -> MessageRef:
    """A ``messageRef`` (spec §8.5).

    Raises:
        pydantic.ValidationError: ``digest`` is missing or not a digest.
    """
    return MessageRef.model_validate({"id": message_id, "digest": digest})
