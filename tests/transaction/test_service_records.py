"""Service records between the two reference agents over HTTP (spec §6.44; seed
000 step 6): the annual service booked, done and recorded; her history."""

from __future__ import annotations

import pytest

from reference_buyer.handlers_living import appointments, book, service_history
from vrm_protocol.models import ServiceRecordMessage
from vrm_protocol.vocabulary import MessageType

from .conftest import REPLY_SECONDS, Pair, PairFactory

PROPOSALS = [
    {"code": "scheduled-maintenance", "description": "Annual service"},
    {
        "code": "tyre-replacement",
        "description": "Replace all four tyres",
        "price": {"amount": "480", "currency": "GBP"},
    },
]


async def _serviced(pair: Pair) -> ServiceRecordMessage:
    """The deal, the welcome, the maintenance notice, the service booked, her
    answer (the service, not the tyres), the record of the work done."""
    buyer = pair.buyer
    await pair.deal()
    assertion = await buyer.wait_for(
        lambda e: e.type is MessageType.TERMS_ASSERTION and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    await buyer.owning.answer_terms(
        assertion.message_id, notifications=("safety", "technical", "maintenance")
    )
    pseudonym = await pair.pseudonym()
    status, answer = await pair.driver(
        "/service-notice",
        {
            "peer": pseudonym,
            "kind": "maintenance-reminder",
            "category": "maintenance",
            "summary": "Annual service due",
            "proposals": PROPOSALS,
        },
    )
    assert status == 200, answer
    notice = await buyer.wait_for(
        lambda e: e.type is MessageType.SERVICE_NOTICE and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    status, answer = await pair.driver(
        "/appointment", {"buyer": pseudonym, "kind": "service", "about": notice.message_id}
    )
    assert status == 200, answer
    [proposal_id] = answer["sent"]
    await buyer.wait_for(lambda e: e.message_id == proposal_id, within=REPLY_SECONDS)
    booking = (await book(buyer, proposal_id)).model
    confirmation = await buyer.wait_for(
        lambda e: e.type is MessageType.APPOINTMENT_CONFIRMATION and e.parent == booking.id,
        within=REPLY_SECONDS,
    )
    response = await buyer.owning.answer_service_notice(notice.message_id)
    status, answer = await pair.driver(
        "/service-record",
        {
            "buyer": pseudonym,
            "response": response.message.message_id,
            "appointment": confirmation.message_id,
        },
    )
    assert status == 200, answer
    [record_id] = answer["sent"]
    entry = await buyer.wait_for(lambda e: e.message_id == record_id, within=REPLY_SECONDS)
    record = entry.model()
    assert isinstance(record, ServiceRecordMessage)
    assert record.body.appointment is not None
    assert record.body.appointment.id == confirmation.message_id
    return record


async def test_the_record_of_the_service_is_her_history(pairs: PairFactory) -> None:
    pair = await pairs()
    record = await _serviced(pair)
    assert [w.code for w in record.body.work] == ["scheduled-maintenance"]
    [entry] = await service_history(pair.buyer)
    assert entry.record == record.id
    assert entry.flagged == ()
    assert entry.mileage == record.body.mileage
    state = await pair.buyer.state_summary()
    assert state["serviceHistory"] == [entry.to_json()]
    # The appointment is done: no longer one of hers.
    assert await appointments(pair.buyer) == []


@pytest.mark.parametrize("buyer_faults", [(), ("ignore-declined-work",)])
async def test_her_agent_flags_work_she_declined(
    pairs: PairFactory, buyer_faults: tuple[str, ...]
) -> None:
    pair = await pairs(vendor_faults=("service-declined-work",), buyer_faults=buyer_faults)
    record = await _serviced(pair)
    assert "tyre-replacement" in [w.code for w in record.body.work]
    [entry] = await service_history(pair.buyer)
    # The record is the dealer's signed statement: kept, and flagged.
    assert entry.flagged == (() if buyer_faults else ("tyre-replacement",))
