"""Listings and searches, sans-IO (spec §11.10, vrm_protocol.directory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vrm_protocol.directory import (
    area_matches,
    claimed_listing,
    make_listing,
    parse_search,
    search_answer,
    search_url,
    verify_listing,
)
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import KeySet, SigningKey, did_jwk_identifier

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PARTY = "https://dealer.example"


def _listing(key: SigningKey, **overrides: object) -> bytes:
    fields: dict[str, object] = {
        "party": PARTY,
        "name": "Dealer",
        "categories": ["vehicles.cars"],
        "areas": ["GB-NW"],
        "now": NOW,
    }
    fields.update(overrides)
    return make_listing(key, **fields)  # type: ignore[arg-type]


def test_a_listing_verifies_under_its_party_keys_only() -> None:
    key = SigningKey.generate("ES256")
    token = _listing(key)
    listing = verify_listing(token, KeySet([key.public()]), party=PARTY, now=NOW)
    assert listing.serves("vehicles.cars", "GB")
    assert listing.token == token
    assert claimed_listing(token).party == PARTY
    other = SigningKey.generate("EdDSA")
    with pytest.raises(RemoteProtocolError) as refused:
        verify_listing(token, KeySet([other.public()]), party=PARTY, now=NOW)
    assert refused.value.code is ErrorCode.UNKNOWN_KEY
    with pytest.raises(RemoteProtocolError) as refused:
        verify_listing(token, KeySet([key.public()]), party="https://other.example", now=NOW)
    assert refused.value.code is ErrorCode.KEY_SENDER_MISMATCH


def test_a_did_jwk_key_never_verifies_a_listing() -> None:
    key = SigningKey.generate("EdDSA")
    # Signed under a did:jwk kid: it resolves from itself, but not from the party's set.
    pseudonymous = key.with_kid(did_jwk_identifier(key.public()) + "#0")
    with pytest.raises(RemoteProtocolError) as refused:
        verify_listing(_listing(pseudonymous), KeySet(), party=PARTY, now=NOW)
    assert refused.value.code is ErrorCode.UNKNOWN_KEY


def test_a_listing_lives_at_most_thirty_days() -> None:
    key = SigningKey.generate("EdDSA")
    token = _listing(key, lifetime=timedelta(days=31))
    with pytest.raises(RemoteProtocolError) as refused:
        verify_listing(token, KeySet([key.public()]), party=PARTY, now=NOW)
    assert refused.value.code is ErrorCode.LIFETIME_TOO_LONG
    with pytest.raises(RemoteProtocolError) as refused:
        verify_listing(
            _listing(key), KeySet([key.public()]), party=PARTY, now=NOW + timedelta(days=8)
        )
    assert refused.value.code is ErrorCode.MESSAGE_EXPIRED


def test_areas_match_by_country_or_exactly() -> None:
    assert area_matches("GB", "GB-NW")
    assert area_matches("GB-NW", "GB")
    assert area_matches("GB-NW", "GB-NW")
    assert not area_matches("GB-NW", "GB-SE")
    assert not area_matches("FR", "GB")


def test_a_search_is_two_parameters_and_nothing_else() -> None:
    url = search_url("https://directory.example/", category="vehicles.cars", area="GB-NW")
    assert url == "https://directory.example/vrm/directory/search?category=vehicles.cars&area=GB-NW"
    assert parse_search([("category", "vehicles.cars"), ("area", "GB-NW")]) == (
        "vehicles.cars",
        "GB-NW",
    )
    for bad in (
        [("category", "vehicles.cars")],
        [("category", "vehicles.cars"), ("area", "GB"), ("area", "FR")],
        [("category", "vehicles.cars"), ("area", "GB"), ("from", "did:jwk:x")],
        [("category", "Vehicles"), ("area", "GB")],
        [("category", "vehicles.cars"), ("area", "NW3 1AB")],
    ):
        with pytest.raises(RemoteProtocolError) as refused:
            parse_search(bad)
        assert refused.value.code is ErrorCode.INVALID_REQUEST


def test_the_answer_keeps_each_token_and_filters() -> None:
    key = SigningKey.generate("EdDSA")
    cars = claimed_listing(_listing(key))
    audio = claimed_listing(_listing(key, categories=["vehicles.audio"], areas=["GB"]))
    answer = search_answer("vehicles.cars", "GB", [cars, audio])
    assert [v["listing"] for v in answer["vendors"]] == [cars.token.decode()]
