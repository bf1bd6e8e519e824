"""The vendor's business rules and catalogues, as pure functions (no HTTP, no store)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

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
from vrm_protocol.schema_registry import default_registry

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
VENDOR = "http://vendor.test"
BUYER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"


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
        _valid("terms-assertion", rules.terms_assertion_body(catalogue, VENDOR, now=NOW))
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
    body = rules.indicative_offer(catalogue, bodies.personal_rfi_body(NOW), now=NOW)
    assert body is not None
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
    assert rules.indicative_offer(catalogue, rfi, now=NOW) is None
    rfi = bodies.personal_rfi_body(NOW)
    rfi["context"]["location"] = {"country": "FR"}
    assert rules.indicative_offer(catalogue, rfi, now=NOW) is None
    rfi = bodies.personal_rfi_body(NOW)
    rfi["budget"] = {"max": {"amount": "40000", "currency": "EUR"}}
    assert rules.indicative_offer(catalogue, rfi, now=NOW) is None


def test_financing_needs_cover_for_the_amount_financed() -> None:
    catalogue = load_catalogue("dealer-mayfair").at_origin(VENDOR)
    rfp = bodies.personal_rfp_body(NOW)
    without = rules.binding_offer(catalogue, rfp, now=NOW, cover=None)
    small = rules.binding_offer(catalogue, rfp, now=NOW, cover=Decimal("1000"))
    ample = rules.binding_offer(catalogue, rfp, now=NOW, cover=Decimal("40000"))
    assert without is not None
    assert small is not None
    assert ample is not None
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
        {"range": {"max": {"amount": "30000", "currency": "GBP"}}},
        {"range": {"max": {"amount": "90000", "currency": "EUR"}}},
        {"purpose": "car"},
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
    body = rules.binding_offer(catalogue, rfp, now=NOW, cover=None)
    assert body is not None
    _valid("offer", body)
    assert body["tradeIn"]["handover"] == "with-delivery"
    assert body["tradeIn"]["papersHandover"] == "with-delivery"
    assert body["conditions"][0]["kind"] == "concurrent-exchange"
    older = rules.trade_in_valuation(catalogue.trade_in, {"year": 2012, "mileage": 150000}, NOW)  # type: ignore[arg-type]
    newer = rules.trade_in_valuation(catalogue.trade_in, {"year": 2024, "mileage": 10000}, NOW)  # type: ignore[arg-type]
    assert older < newer
    assert older >= catalogue.trade_in.minimum  # type: ignore[union-attr]


def test_counter_offers_move_towards_the_buyer_but_never_below_the_floor() -> None:
    catalogue = load_catalogue("dealer-mayfair").at_origin(VENDOR)
    offer = rules.binding_offer(catalogue, bodies.personal_rfp_body(NOW), now=NOW, cover=None)
    assert offer is not None
    subtotal = Decimal(offer["price"]["subtotal"]["amount"])
    floor = subtotal * catalogue.floor_percent / 100
    ref = {"id": "urn:uuid:1", "digest": "sha-256:" + "A" * 43}
    reasonable = bodies.counter_offer_body(
        offer, ref, now=NOW, total=str(Decimal(offer["price"]["total"]["amount"]) - 100)
    )
    answer = rules.answer_counter(catalogue, offer, reasonable, round_number=1, now=NOW)
    assert answer.body["price"]["total"] == reasonable["price"]["total"], "within one round"
    assert not answer.final
    greedy = bodies.counter_offer_body(offer, ref, now=NOW, total="100")
    previous = offer
    for round_number in range(1, catalogue.max_rounds + 2):
        outcome = rules.answer_counter(
            catalogue, previous, greedy, round_number=round_number, now=NOW
        )
        _valid("offer", outcome.body)
        assert Decimal(outcome.body["price"]["total"]["amount"]) >= floor
        previous = outcome.body
    assert outcome.final


def test_third_party_never_makes_offers() -> None:
    catalogue = load_catalogue("road-warrior").at_origin(VENDOR)
    assert rules.indicative_offer(catalogue, bodies.personal_rfi_body(NOW), now=NOW) is None
    body = rules.terms_assertion_body(catalogue, VENDOR, now=NOW)
    assert body["party"]["role"] == "third-party"
    assert body["commitments"]["willNotDo"]


def test_faults_only_by_name_and_only_in_test_mode() -> None:
    assert check_faults(["ignore-exit"], test_mode=True) == {"ignore-exit"}
    assert check_faults([], test_mode=False) == frozenset()
    with pytest.raises(FaultError):
        check_faults(["ignore-exit"], test_mode=False)
    with pytest.raises(FaultError):
        check_faults(["no-such-fault"], test_mode=True)
