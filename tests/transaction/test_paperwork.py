"""The paperwork of a deal between the two reference agents over HTTP (spec
§12.5, VRM-PAP-001; seed 000 step 4): the dealer's terms at the welcome ask for
the registered keeper and her insurance policy for the legal obligation alone;
her agent shares them from her store, never retyped, and the dealer takes them
under those terms."""

from __future__ import annotations

import pytest

from reference_buyer.journey_paperwork import PAPERWORK, PaperworkFailed, paperwork_shared
from reference_vendor.catalogue import load_catalogue
from reference_vendor.paperwork_rules import AS_CATALOGUED, ForMarketingToo
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.models import TermsAssertionMessage
from vrm_protocol.vocabulary import MessageType

from .conftest import REPLY_SECONDS, PairFactory


async def test_her_paperwork_goes_from_her_store_under_the_dealers_terms(
    pairs: PairFactory,
) -> None:
    pair = await pairs()
    await pair.deal()
    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.TERMS_ASSERTION and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    assertion = entry.model()
    assert isinstance(assertion, TermsAssertionMessage)
    asked = {r.item: tuple(r.purposes) for r in assertion.body.requests}
    assert all(asked[item] == ("legal-obligation",) for item in PAPERWORK)
    sent, decision = await pair.buyer.owning.answer_terms(entry.message_id)
    assert decision is not None
    assert {item.item for item in decision.accepted} >= set(PAPERWORK)
    # Her store's values, accepted and logged for the legal obligation alone.
    line = await paperwork_shared(pair.buyer, pair.dealer, sent)
    assert "legal-obligation" in line
    # The dealer keeps them under the terms: her store's values, for the legal
    # obligation alone, until the retention it asked for (P3Y, P1Y) ends.
    async with pair.http.get(pair.dealer + TEST_DRIVER_PREFIX + "/state") as answer:
        state = await answer.json()
    held = state["relationships"][await pair.pseudonym()]["data"]
    profile = await pair.buyer.store.profile()
    for item in PAPERWORK:
        assert held[item]["value"] == profile[item]
        assert held[item]["purposes"] == ["legal-obligation"]
    assert (
        held["vehicle.registration-keeper"]["retainUntil"] > held["insurance.policy"]["retainUntil"]
    )


async def test_paperwork_typed_anew_is_caught(pairs: PairFactory) -> None:
    pair = await pairs()
    await pair.deal()
    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.TERMS_ASSERTION and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    sent, _ = await pair.buyer.owning.answer_terms(entry.message_id)
    # Her store changes after the fact: what went out is no longer her store's.
    await pair.buyer.store.set_profile("insurance.policy", "Another Insurer, policy X-1")
    with pytest.raises(PaperworkFailed, match="not retyped"):
        await paperwork_shared(pair.buyer, pair.dealer, sent)


def test_the_fault_asks_for_paperwork_for_marketing_too() -> None:
    requests = load_catalogue("dealer-mayfair").data_requests
    production = {r.item: r.purposes for r in AS_CATALOGUED.requests(requests)}
    broken = {r.item: r.purposes for r in ForMarketingToo().requests(requests)}
    for item in PAPERWORK:
        assert production[item] == ("legal-obligation",)
        assert "marketing" in broken[item]
    assert production["contact.email"] == broken["contact.email"]


async def test_asked_for_marketing_too_she_shares_it_for_the_legal_obligation_only(
    pairs: PairFactory,
) -> None:
    pair = await pairs(vendor_faults=("paperwork-for-marketing",))
    await pair.deal()
    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.TERMS_ASSERTION and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    assertion = entry.model()
    assert isinstance(assertion, TermsAssertionMessage)
    asked = {r.item: tuple(r.purposes) for r in assertion.body.requests}
    assert all("marketing" in asked[item] for item in PAPERWORK)
    sent, _ = await pair.buyer.owning.answer_terms(entry.message_id)
    # Her policy narrows the request to the purposes she allows: never marketing.
    assert "legal-obligation" in await paperwork_shared(pair.buyer, pair.dealer, sent)
