"""Her agent flags an offer that takes her old car before it delivers the new one
(seed 001), and her standing policy never takes it."""

from __future__ import annotations

import json
from pathlib import Path

from reference_buyer.living_rules import TRADE_IN_FIRST
from vrm_protocol.models import OfferMessage

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"


def _offer(name: str) -> OfferMessage:
    return OfferMessage.model_validate(json.loads((EXAMPLES / name).read_text("utf-8")))


def test_an_offer_taking_the_old_car_first_is_flagged() -> None:
    offer = _offer("offer.online-dealer-trade-in-before-delivery.json")
    assert offer.body.trade_in is not None
    assert offer.body.trade_in.handover == "before-delivery"
    warnings = TRADE_IN_FIRST.warnings(offer.body)
    assert "the old car is handed over before the new one is delivered" in warnings


def test_an_offer_taking_the_old_car_with_delivery_is_not() -> None:
    offer = _offer("offer.binding-with-trade-in.json")
    assert offer.body.trade_in is not None
    assert offer.body.trade_in.handover == "with-delivery"
    assert TRADE_IN_FIRST.warnings(offer.body) == []
