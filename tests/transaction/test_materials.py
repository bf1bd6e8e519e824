"""A brochure by post between the two reference agents over HTTP (spec §6.60,
§6.61; seed 000 step 2): during the enquiry she asks the dealer for a
brochure, giving her postal address from her store for that delivery alone;
the dealer posts it, deletes the address and says so."""

from __future__ import annotations

import pytest

from reference_buyer.handlers_materials import POSTAL_ADDRESS, request_material
from reference_buyer.materials_rules import AS_ASKED, AnyDispatch
from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.errors import RemoteProtocolError
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.models import MaterialDispatchMessage, MaterialRequestMessage, to_payload
from vrm_protocol.vocabulary import MessageType

from .conftest import REPLY_SECONDS, Pair, PairFactory


async def _brochure(pair: Pair) -> tuple[MaterialRequestMessage, MaterialDispatchMessage]:
    buyer = pair.buyer
    await buyer.buying.send_rfis([pair.dealer], sally_rfi_body(buyer.clock.now()))
    await buyer.wait_for(
        lambda e: e.type is MessageType.OFFER and e.peer == pair.dealer, within=REPLY_SECONDS
    )
    sent = await request_material(buyer, pair.dealer, ["brochure"], product="Toyota Prius")
    entry = await buyer.wait_for(
        lambda e: e.type is MessageType.MATERIAL_DISPATCH and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    request, dispatch = sent.model, entry.model()
    assert isinstance(request, MaterialRequestMessage)
    assert isinstance(dispatch, MaterialDispatchMessage)
    return request, dispatch


async def _held(pair: Pair) -> dict[str, object]:
    async with pair.http.get(pair.dealer + TEST_DRIVER_PREFIX + "/state") as answer:
        state = await answer.json()
    return dict(state["relationships"][await pair.pseudonym()]["data"])


async def test_the_brochure_is_posted_and_her_address_deleted(pairs: PairFactory) -> None:
    pair = await pairs()
    request, dispatch = await _brochure(pair)
    # Her address as her store holds it, for delivery until sent, and nothing else of hers.
    profile = await pair.buyer.store.profile()
    assert to_payload(request.body.address) == profile[POSTAL_ADDRESS]
    assert (request.body.consent.purpose, request.body.consent.retention) == (
        "delivery",
        "until-sent",
    )
    assert set(to_payload(request.body)) == {"materials", "address", "consent"}
    assert dispatch.body.request.id == request.id
    assert list(dispatch.body.materials) == ["brochure"]
    assert dispatch.body.address_deleted is True
    assert POSTAL_ADDRESS not in await _held(pair)


async def test_a_dealer_keeping_the_address_is_seen_in_its_state(pairs: PairFactory) -> None:
    pair = await pairs(vendor_faults=("keep-postal-address",))
    _, dispatch = await _brochure(pair)
    assert dispatch.body.address_deleted is True
    assert POSTAL_ADDRESS in await _held(pair)


def test_her_agent_refuses_material_she_did_not_ask_for() -> None:
    AS_ASKED.check(["brochure"], ["brochure"])
    with pytest.raises(RemoteProtocolError, match="price-list"):
        AS_ASKED.check(["brochure"], ["brochure", "price-list"])
    AnyDispatch().check(["brochure"], ["price-list"])
