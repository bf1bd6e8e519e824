"""Ranking offers by total cost (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from reference_buyer.ranking import OfferCandidate, rank_offers, total_cost
from vrm_protocol.models import OfferBody

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _money(amount: str, currency: str = "GBP") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def _offer(
    total: str,
    *,
    subtotal: str | None = None,
    allowance: str | None = None,
    plans: Sequence[tuple[str, str, str]] = (),
    currency: str = "GBP",
    valid_until: str = "2026-12-01T00:00:00Z",
) -> OfferBody:
    price: dict[str, Any] = {
        "subtotal": _money(subtotal or total, currency),
        "total": _money(total, currency),
    }
    if allowance is not None:
        price["tradeInAllowance"] = _money(allowance, currency)
    body: dict[str, Any] = {
        "basis": "binding",
        "items": [
            {"sku": "CAR", "description": "A car", "quantity": 1, "unitPrice": price["subtotal"]}
        ],
        "terms": {
            "id": "terms",
            "version": "1",
            "url": "https://dealer.example/vrm/terms/terms/1",
            "digest": "sha-256:" + "A" * 43,
        },
        "price": price,
        "validUntil": valid_until,
    }
    if plans:
        body["financing"] = [
            {
                "plan": name,
                "apr": "4.9",
                "termMonths": 48,
                "deposit": _money(deposit, currency),
                "monthlyPayment": _money("500", currency),
                "totalPayable": _money(payable, currency),
            }
            for name, deposit, payable in plans
        ]
    return OfferBody.model_validate(body)


def _cost(body: OfferBody, **options: bool) -> tuple[Decimal, Decimal, str | None]:
    costed = total_cost(body, **options)
    assert costed is not None
    return costed


def test_trade_in_allowance_lowers_the_cost_once_only() -> None:
    # total not yet net of the allowance
    assert _cost(_offer("29000", allowance="4000"))[0] == Decimal("25000")
    # total already net of the allowance (subtotal - allowance): not subtracted twice
    assert _cost(_offer("25000", subtotal="29000", allowance="4000"))[0] == Decimal("25000")


def test_finance_cost_is_the_cheapest_plans_extra_over_the_net_price() -> None:
    body = _offer("25000", plans=[("pcp", "2000", "25500"), ("hp", "0", "26800")])
    assert _cost(body) == (Decimal("25000"), Decimal("1800"), "hp")
    assert _cost(body, financing_wanted=False)[1] == 0


def test_an_offer_without_a_price_cannot_be_costed() -> None:
    # Typed: an offer body without a price is not an offer body at all.
    with pytest.raises(ValidationError):
        OfferBody.model_validate({"basis": "indicative"})


def test_ranking_orders_by_total_cost_and_skips_closed_expired_and_other_currencies() -> None:
    offers = [
        OfferCandidate("urn:a", "https://a.example", _offer("26000")),
        OfferCandidate(
            "urn:b",
            "https://b.example",
            _offer("29000", allowance="4000", plans=[("hp", "0", "25600")]),
        ),
        OfferCandidate("urn:c", "https://c.example", _offer("24000"), open=False),
        OfferCandidate(
            "urn:d", "https://d.example", _offer("20000", valid_until="2026-11-01T00:00:00Z")
        ),
        OfferCandidate("urn:e", "https://e.example", _offer("100", currency="EUR")),
        OfferCandidate("urn:f", "https://f.example", _offer("25500")),
    ]
    ranked = rank_offers(offers, now=NOW)
    assert [r.offer_id for r in ranked] == ["urn:f", "urn:b", "urn:a"]
    assert [r.rank for r in ranked] == [1, 2, 3]
    assert ranked[1].total_cost == Decimal("25600")
    assert ranked[1].plan == "hp"


def test_ranking_nothing_gives_nothing() -> None:
    assert rank_offers([], now=NOW) == []
