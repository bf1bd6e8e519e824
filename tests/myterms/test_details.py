"""'My suppliers follow me' (seed 003, spec §6.73, §6.74): her new details go in
one action to every party that holds them under her consent, and to no other;
each receipts; her store shows who has the new value. Between the real agents,
and the suite's checks against the reference agents, clean and with faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_buyer.handlers_myterms import update_details, who_has
from reference_buyer.scenario import sally_rfi_body
from tests.myterms.conftest import verdict
from tests.transaction.conftest import REPLY_SECONDS, Pair, PairFactory
from vrm_protocol.models import DetailsReceiptMessage
from vrm_protocol.vocabulary import MessageType


async def _receipt(pair: Pair, update_id: str) -> DetailsReceiptMessage:
    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.DETAILS_RECEIPT and e.parent == update_id,
        within=REPLY_SECONDS,
    )
    message = entry.model()
    assert isinstance(message, DetailsReceiptMessage)
    return message


async def test_the_dealer_holding_her_phone_follows_her(pairs: PairFactory) -> None:
    pair = await pairs()
    await pair.deal()  # her acceptance disclosed her phone to this dealer

    sent = await update_details(pair.buyer, {"contact.phone": "+44 7700 900123"})

    assert list(sent) == [pair.dealer]
    receipt = await _receipt(pair, sent[pair.dealer].message.message_id)
    assert receipt.body.held == ("contact.phone",)
    assert receipt.body.update.digest == sent[pair.dealer].message.digest
    assert await who_has(pair.buyer, "contact.phone") == {pair.dealer: True}
    assert (await pair.buyer.store.profile())["contact.phone"] == "+44 7700 900123"


async def test_nothing_is_sent_when_nobody_holds_the_item(pairs: PairFactory) -> None:
    pair = await pairs()
    await pair.buyer.buying.send_rfis([pair.dealer], sally_rfi_body(pair.buyer.clock.now()))
    await pair.buyer.wait_for(
        lambda e: e.type is MessageType.OFFER and e.peer == pair.dealer, within=REPLY_SECONDS
    )
    assert await update_details(pair.buyer, {"contact.phone": "+44 7700 900123"}) == {}


@pytest.mark.parametrize(
    ("role", "fault", "expected"),
    [
        ("vendor", None, "pass"),
        ("vendor", "claim-all-details", "fail"),
        ("buyer", None, "pass"),
        ("buyer", "update-everyone", "fail"),
    ],
)
def test_the_suite_judges_details_updates(
    role: str, fault: str | None, expected: str, tmp_path: Path
) -> None:
    check_id = "DET-VEN-RECEIPT" if role == "vendor" else "DET-BUY-FOLLOWS-HER"
    found, result = verdict(role, check_id, tmp_path, ["--fault", fault] if fault else [])
    shown = ("reason", "expectations", "log")
    assert found == expected, {k: v for k, v in result.items() if k in shown}
