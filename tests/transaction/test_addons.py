"""Extras at the transaction between the two reference agents over HTTP (spec
§6.45-§6.46; seed 000 step 4): the dealer proposes floor mats and a paint
protection, she takes the mats, and the invoice charges them and nothing else."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reference_buyer.handlers_living import answer_addons
from reference_buyer.handlers_transaction import inspect
from vrm_protocol.errors import LocalProtocolError
from vrm_protocol.models import (
    AddonOfferMessage,
    AddonResponseMessage,
    HandoverRecordMessage,
    InvoiceMessage,
    OfferMessage,
)
from vrm_protocol.vocabulary import MessageType

from .conftest import REPLY_SECONDS, Pair, PairFactory


async def _extras(pair: Pair) -> AddonOfferMessage:
    status, answer = await pair.driver("/addons", {"buyer": await pair.pseudonym()})
    assert status == 200, answer
    [offer_id] = answer["sent"]
    entry = await pair.buyer.wait_for(lambda e: e.message_id == offer_id, within=REPLY_SECONDS)
    offer = entry.model()
    assert isinstance(offer, AddonOfferMessage)
    return offer


async def _delivered(pair: Pair) -> None:
    status, answer = await pair.driver("/handover", {"buyer": await pair.pseudonym()})
    assert status == 200, answer
    handover_id = answer["sent"][1]
    entry = await pair.buyer.wait_for(lambda e: e.message_id == handover_id, within=REPLY_SECONDS)
    assert isinstance(entry.model(), HandoverRecordMessage)
    assert (await inspect(pair.buyer, handover_id)).decision == "accept"


async def _invoice(pair: Pair, *, taken: bool = True) -> InvoiceMessage | None:
    status, answer = await pair.driver("/invoice", {"buyer": await pair.pseudonym()})
    assert status == 200, answer
    [invoice_id] = answer["sent"]
    try:
        entry = await pair.buyer.wait_for(
            lambda e: e.message_id == invoice_id and not e.refused,
            within=REPLY_SECONDS if taken else 2.0,
        )
    except TimeoutError:
        return None
    invoice = entry.model()
    assert isinstance(invoice, InvoiceMessage)
    return invoice


async def test_she_takes_the_mats_and_the_invoice_charges_them_only(pairs: PairFactory) -> None:
    pair = await pairs()
    offer_id = await pair.deal()
    extras = await _extras(pair)
    assert extras.body.deal.offer.id == offer_id
    answer = (await answer_addons(pair.buyer, extras.id)).model
    assert isinstance(answer, AddonResponseMessage)
    # Her standing limit: the mats (GBP 95), not the paint protection (GBP 495).
    assert (answer.body.accepted, answer.body.declined) == (("floor-mats",), ("paint-protection",))
    with pytest.raises(LocalProtocolError):
        await answer_addons(pair.buyer, extras.id)  # answered once
    await _delivered(pair)
    invoice = await _invoice(pair)
    assert invoice is not None
    codes = [line.code for line in invoice.body.lines]
    assert "floor-mats" in codes
    assert "paint-protection" not in codes
    view = await pair.buyer.store.offer_view(offer_id)
    assert view is not None
    offer = view.entry.model()
    assert isinstance(offer, OfferMessage)
    assert Decimal(invoice.body.total.amount) == Decimal(offer.body.price.total.amount) + 95


async def test_her_agent_refuses_an_invoice_with_the_extra_she_declined(
    pairs: PairFactory,
) -> None:
    pair = await pairs(vendor_faults=("invoice-declined-addon",))
    await pair.deal()
    extras = await _extras(pair)
    await answer_addons(pair.buyer, extras.id, ["floor-mats"])
    await _delivered(pair)
    # Refused with reference-mismatch: it never enters her history.
    assert await _invoice(pair, taken=False) is None
    assert await pair.buyer.store.history(peer=pair.dealer, type=MessageType.INVOICE) == []


async def test_the_dealer_refuses_an_answer_leaving_an_extra_out(pairs: PairFactory) -> None:
    pair = await pairs(buyer_faults=("take-declined-addon",))
    await pair.deal()
    extras = await _extras(pair)
    entry = await pair.buyer.store.entry(extras.id)
    assert entry is not None
    from reference_buyer.outgoing import build
    from vrm_agent.unit import outgoing
    from vrm_protocol.errors import RemoteProtocolError
    from vrm_protocol.models import AddonResponseBody

    body = build(AddonResponseBody, addon_offer=entry.ref(), accepted=("floor-mats",), declined=())
    with pytest.raises(RemoteProtocolError) as refused:
        await pair.buyer.sender.send(
            entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
        )
    assert refused.value.code.value == "reference-mismatch"
