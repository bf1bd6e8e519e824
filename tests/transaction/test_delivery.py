"""Delivery, the handover with the trade-in, and her inspection between the two
reference agents over HTTP (spec §6.22-§6.24; seed 000 steps 4-5, seed 001)."""

from __future__ import annotations

from reference_buyer.handlers_transaction import inspect
from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.canonical import message_digest
from vrm_protocol.errors import LocalProtocolError
from vrm_protocol.models import (
    DeliveryNoticeMessage,
    HandoverRecordMessage,
    InspectionResultMessage,
    SupportRequestMessage,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

from .conftest import REPLY_SECONDS, Pair, PairFactory


async def _delivered(pair: Pair) -> HandoverRecordMessage:
    status, answer = await pair.driver("/handover", {"buyer": await pair.pseudonym()})
    assert status == 200, answer
    notice_id, handover_id = answer["sent"]
    entry = await pair.buyer.wait_for(lambda e: e.message_id == handover_id, within=REPLY_SECONDS)
    notice = await pair.buyer.wait_for(lambda e: e.message_id == notice_id, within=REPLY_SECONDS)
    assert isinstance(notice.model(), DeliveryNoticeMessage)
    record = entry.model()
    assert isinstance(record, HandoverRecordMessage)
    return record


async def test_the_dealer_hands_over_both_cars_and_she_accepts(pairs: PairFactory) -> None:
    pair = await pairs()
    offer_id = await pair.deal()
    record = await _delivered(pair)
    deal = record.body.deal
    assert deal.trade_in is True
    assert deal.offer.id == offer_id
    acceptance = await pair.buyer.store.entry(deal.acceptance.id, direction=Direction.SENT)
    assert acceptance is not None
    assert acceptance.digest == deal.acceptance.digest
    moves = {(item.kind, item.direction) for item in record.body.items}
    assert {("new-vehicle", "to-buyer"), ("trade-in", "to-vendor")} <= moves

    inspection = await inspect(pair.buyer, record.id)

    assert inspection.decision == "accept"
    [sent] = inspection.sent
    entry = await pair.buyer.store.entry(sent, direction=Direction.SENT)
    assert entry is not None
    result = entry.model()
    assert isinstance(result, InspectionResultMessage)
    assert result.body.handover.id == record.id
    # Her countersignature closes the handover: a second inspection is refused locally.
    again = await _refused(pair, record.id)
    assert again == "illegal-transition"


async def _refused(pair: Pair, handover_id: str) -> str:
    try:
        await inspect(pair.buyer, handover_id)
    except LocalProtocolError as error:
        return error.code.value
    raise AssertionError("the second inspection was sent")


async def test_a_one_sided_handover_is_refused_with_the_signed_record_as_evidence(
    pairs: PairFactory,
) -> None:
    pair = await pairs(vendor_faults=("one-sided-handover",))
    await pair.deal()
    record = await _delivered(pair)
    assert record.body.deal.trade_in is False  # the dealer says the deal has none

    inspection = await inspect(pair.buyer, record.id)

    assert inspection.decision == "refuse"
    assert inspection.reasons == ("trade-in-not-taken",)
    refusal_id, problem_id = inspection.sent
    refusal = await pair.buyer.store.entry(refusal_id, direction=Direction.SENT)
    assert refusal is not None
    result = refusal.model()
    assert isinstance(result, InspectionResultMessage)
    assert result.body.decision == "refuse"
    held = await pair.buyer.store.entry(record.id, direction=Direction.RECEIVED)
    assert held is not None
    assert held.token is not None
    evidence = {e.message.id: e.token for e in result.body.evidence or ()}
    # The vendor's own signed record, verifiable by anyone with the vendor's key.
    assert evidence[record.id] == held.token.decode()
    assert message_digest(evidence[record.id].encode()) == result.body.handover.digest
    problem = await pair.buyer.store.entry(problem_id, direction=Direction.SENT)
    assert problem is not None
    request = problem.model()
    assert isinstance(request, SupportRequestMessage)
    assert request.body.regarding is not None
    assert request.body.regarding.id == record.id
    # The dealer took it (its answer, a resolution, may already have come back).
    assert not problem.refused


async def test_her_weakened_guard_accepts_the_one_sided_record(pairs: PairFactory) -> None:
    pair = await pairs(
        vendor_faults=("one-sided-handover",), buyer_faults=("accept-one-sided-handover",)
    )
    await pair.deal()
    record = await _delivered(pair)
    assert (await inspect(pair.buyer, record.id)).decision == "accept"


async def test_no_delivery_without_a_deal(pairs: PairFactory) -> None:
    pair = await pairs()
    await pair.buyer.buying.send_rfis([pair.dealer], sally_rfi_body(pair.buyer.clock.now()))
    await pair.buyer.wait_for(
        lambda e: e.type is MessageType.OFFER and e.peer == pair.dealer, within=REPLY_SECONDS
    )
    status, answer = await pair.driver("/handover", {"buyer": await pair.pseudonym()})
    assert status == 404, answer
    assert answer["code"] == "not-found"
