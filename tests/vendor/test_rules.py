"""The vendor's business rules and catalogues, as pure functions (no HTTP, no store).

The rules take typed bodies and give typed bodies; the tests read what they give
as the payload it stands for (``to_payload``) and judge it with the schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conformance.peers import bodies
from reference_vendor import rules
from reference_vendor.catalogue import (
    CatalogueError,
    load_catalogue,
    parse_duration,
    shipped_catalogues,
)
from reference_vendor.faults import FaultError, check_faults
from vrm_protocol.models import (
    AttestationStatement,
    OfferBody,
    PersonalRfiBody,
    PersonalRfpBody,
    TradeInItem,
    VRMModel,
    to_payload,
)
from vrm_protocol.schema_registry import default_registry

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
VENDOR = "http://vendor.test"
#: The messageRef of the offer a counter-offer supersedes (spec §6.3).
COUNTERED = {"id": "urn:uuid:00000000-0000-4000-8000-000000000009", "digest": "sha-256:" + "A" * 43}
BUYER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"


def _rfi(body: dict[str, Any]) -> PersonalRfiBody:
    return PersonalRfiBody.model_validate(body)


def _rfp(body: dict[str, Any]) -> PersonalRfpBody:
    return PersonalRfpBody.model_validate(body)


def _payload(body: VRMModel | None) -> dict[str, Any]:
    assert body is not None
    return to_payload(body)


def _valid(message_type: str, body: dict[str, object]) -> None:
    """The body validates as a message of ``message_type`` (the schemas are the judge)."""
    default_registry().validate_message(
        {
            "vrm": "1.0",
            "type": message_type,
            "id": "urn:uuid:00000000-0000-4000-8000-000000000001",
            "thread": "urn:uuid:00000000-0000-4000-8000-000000000001",
            "from": VENDOR,
            "to": [BUYER],
            "created": "2026-11-23T10:00:00Z",
            "expires": "2026-11-24T10:00:00Z",
            "body": body,
        }
    )


def test_every_shipped_catalogue_loads_and_digests_its_terms() -> None:
    names = shipped_catalogues()
    assert {"dealer-mayfair", "dealer-online", "dealer-postal", "road-warrior"} <= set(names)
    for name in names:
        catalogue = load_catalogue(name).at_origin(VENDOR)
        reference = catalogue.terms_reference()
        assert (
            reference["url"]
            == VENDOR + f"/vrm/terms/{catalogue.terms_id}/{catalogue.terms_version}"
        )
        assert reference["digest"].startswith("sha-256:")
        assert len(reference["digest"]) == 51
        _valid("terms-assertion", _payload(rules.terms_assertion_body(catalogue, VENDOR, now=NOW)))
    assert load_catalogue("road-warrior").role == "third-party"


def test_a_catalogue_is_not_referenced_before_it_knows_its_origin(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="origin"):
        load_catalogue("dealer-mayfair").terms_reference()
    shipped = Path(rules.__file__).parent / "catalogues" / "dealer-mayfair.toml"
    elsewhere = tmp_path / "dealer.toml"
    elsewhere.write_text(
        shipped.read_text().replace("[terms]\n", '[terms]\nurl = "https://else.example/t"\n')
    )
    with pytest.raises(CatalogueError, match=r"terms\.url"):
        load_catalogue(str(elsewhere))


def test_unknown_catalogue_and_bad_duration_are_refused() -> None:
    with pytest.raises(CatalogueError):
        load_catalogue("no-such-dealer")
    with pytest.raises(CatalogueError):
        parse_duration("P1H")
    assert parse_duration("P1Y2M1W3D").days == 365 + 60 + 7 + 3


def test_indicative_offer_meets_must_features_within_budget() -> None:
    catalogue = load_catalogue("dealer-mayfair").at_origin(VENDOR)
    body = _payload(rules.indicative_offer(catalogue, _rfi(bodies.personal_rfi_body(NOW)), now=NOW))
    _valid("offer", body)
    assert Decimal(body["price"]["total"]["amount"]) <= Decimal("32000")
    sku = body["items"][0]["sku"]
    product = next(p for p in catalogue.products if p.sku == sku)
    assert "isofix" in product.features
    assert [o["code"] for o in body["options"]] == ["premium-sound-system"]


def test_other_category_country_or_currency_gets_nothing() -> None:
    catalogue = load_catalogue("dealer-mayfair").at_origin(VENDOR)
    rfi = bodies.personal_rfi_body(NOW)
    rfi["intent"]["category"] = "travel.flights"
    assert rules.indicative_offer(catalogue, _rfi(rfi), now=NOW) is None
    rfi = bodies.personal_rfi_body(NOW)
    rfi["context"]["location"] = {"country": "FR"}
    assert rules.indicative_offer(catalogue, _rfi(rfi), now=NOW) is None
    rfi = bodies.personal_rfi_body(NOW)
    rfi["budget"] = {"max": {"amount": "40000", "currency": "EUR"}}
    assert rules.indicative_offer(catalogue, _rfi(rfi), now=NOW) is None


def test_financing_needs_cover_for_the_amount_financed() -> None:
    catalogue = load_catalogue("dealer-mayfair").at_origin(VENDOR)
    rfp = _rfp(bodies.personal_rfp_body(NOW))
    without = _payload(rules.binding_offer(catalogue, rfp, now=NOW, cover=None))
    small = _payload(rules.binding_offer(catalogue, rfp, now=NOW, cover=Decimal("1000")))
    ample = _payload(rules.binding_offer(catalogue, rfp, now=NOW, cover=Decimal("40000")))
    assert "financing" not in without
    assert "financing" not in small
    _valid("offer", ample)
    plan = ample["financing"][0]
    total = Decimal(ample["price"]["total"]["amount"])
    paid = (
        Decimal(plan["deposit"]["amount"])
        + Decimal(plan["monthlyPayment"]["amount"]) * plan["termMonths"]
    )
    assert Decimal(plan["totalPayable"]["amount"]) == paid
    assert paid > total, "interest is charged"


def test_financing_cover_reads_ranges_in_the_currency() -> None:
    claims = [
        AttestationStatement.model_validate(claim)
        for claim in (
            {"range": {"max": {"amount": "30000", "currency": "GBP"}}},
            {"range": {"max": {"amount": "90000", "currency": "EUR"}}},
            {"purpose": "car"},
        )
    ]
    assert rules.financing_cover(claims, "GBP") == Decimal("30000")
    assert rules.financing_cover([], "GBP") is None


def test_trade_in_is_valued_and_handed_over_with_delivery() -> None:
    catalogue = load_catalogue("dealer-mayfair").at_origin(VENDOR)
    rfp = bodies.personal_rfp_body(NOW)
    rfp["tradeIn"] = {
        "item": {"description": "2018 SUV", "year": 2018, "mileage": 60000},
        "handover": "before-delivery",
        "papersHandover": "before-delivery",
    }
    body = _payload(rules.binding_offer(catalogue, _rfp(rfp), now=NOW, cover=None))
    _valid("offer", body)
    assert body["tradeIn"]["handover"] == "with-delivery"
    assert body["tradeIn"]["papersHandover"] == "with-delivery"
    assert body["conditions"][0]["kind"] == "concurrent-exchange"
    rule = catalogue.trade_in
    assert rule is not None
    older = rules.trade_in_valuation(
        rule, TradeInItem(description="SUV", year=2012, mileage=150000), NOW
    )
    newer = rules.trade_in_valuation(
        rule, TradeInItem(description="SUV", year=2024, mileage=10000), NOW
    )
    assert older < newer
    assert older >= rule.minimum


def test_counter_offers_move_towards_the_buyer_but_never_below_the_floor() -> None:
    catalogue = load_catalogue("dealer-mayfair").at_origin(VENDOR)
    made = rules.binding_offer(catalogue, _rfp(bodies.personal_rfp_body(NOW)), now=NOW, cover=None)
    assert made is not None
    offer = to_payload(made)
    subtotal = Decimal(offer["price"]["subtotal"]["amount"])
    floor = subtotal * catalogue.floor_percent / 100
    reasonable = bodies.counter_offer_body(
        offer, COUNTERED, now=NOW, total=str(Decimal(offer["price"]["total"]["amount"]) - 100)
    )
    answer = rules.answer_counter(
        catalogue, made, OfferBody.model_validate(reasonable), round_number=1, now=NOW
    )
    assert to_payload(answer.body)["price"]["total"] == reasonable["price"]["total"], (
        "within one round"
    )
    assert not answer.final
    greedy = OfferBody.model_validate(
        bodies.counter_offer_body(offer, COUNTERED, now=NOW, total="100")
    )
    previous = made
    for round_number in range(1, catalogue.max_rounds + 2):
        outcome = rules.answer_counter(
            catalogue, previous, greedy, round_number=round_number, now=NOW
        )
        _valid("offer", to_payload(outcome.body))
        assert Decimal(outcome.body.price.total.amount) >= floor
        previous = outcome.body
    assert outcome.final


def test_third_party_never_makes_offers() -> None:
    catalogue = load_catalogue("road-warrior").at_origin(VENDOR)
    assert rules.indicative_offer(catalogue, _rfi(bodies.personal_rfi_body(NOW)), now=NOW) is None
    body = rules.terms_assertion_body(catalogue, VENDOR, now=NOW)
    assert body.party.role == "third-party"
    assert body.commitments.will_not_do


def test_faults_only_by_name_and_only_in_test_mode() -> None:
    assert check_faults(["ignore-exit"], test_mode=True) == {"ignore-exit"}
    assert check_faults([], test_mode=False) == frozenset()
    with pytest.raises(FaultError):
        check_faults(["ignore-exit"], test_mode=False)
    with pytest.raises(FaultError):
        check_faults(["no-such-fault"], test_mode=True)
