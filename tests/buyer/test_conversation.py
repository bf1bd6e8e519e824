"""Her agent in conversation (spec §6.30, §6.31), over HTTP with a real store:
a vendor's question is filed for her and answered when she says so (by her
policy's standing answer or her own words), bound to the question; she asks
her own; nothing of it moves the relationship."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from reference_buyer import handlers_conversation as conversation
from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.canonical import message_digest
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.vocabulary import MessageType

from .conftest import InTestVendor, RunningBuyer, VendorFactory, offer_body


async def _negotiating(
    buyer: RunningBuyer, vendor: InTestVendor
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Her RFI and the vendor's offer: the relationship is in NEGOTIATION."""
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    assert (await buyer.post(token))[0] == 202
    return rfi, offer


async def _relationship_state(buyer: RunningBuyer, vendor: InTestVendor) -> str:
    pseudonym = await buyer.agent.pseudonyms.known(vendor.id)
    assert pseudonym is not None
    record = await buyer.store.relationship(vendor.id)
    assert record is not None
    return record.core.state.value


async def test_a_vendors_question_is_filed_and_answered_by_her_standing_answer(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Mayfair")
    rfi, _offer = await _negotiating(buyer, vendor)
    state = await _relationship_state(buyer, vendor)
    question, token = vendor.reply(
        rfi, MessageType.QUESTION, {"topic": "trim", "text": "Which trim do you mean?"}
    )
    assert (await buyer.post(token))[0] == 202
    assert await conversation.open_questions(buyer.agent, vendor.id) == [question["id"]]
    assert await _relationship_state(buyer, vendor) == state

    sent = await conversation.answer(buyer.agent, str(question["id"]))
    _, answer = vendor.last("answer")
    assert answer["id"] == sent.message.message_id
    assert answer["body"]["question"] == {"id": question["id"], "digest": message_digest(token)}
    assert answer["body"]["text"] == buyer.agent.policy.answers["trim"]
    assert answer["thread"] == question["thread"]
    assert answer["parent"] == question["id"]
    assert await conversation.open_questions(buyer.agent, vendor.id) == []
    assert await _relationship_state(buyer, vendor) == state
    # Answered once: her agent refuses to answer it again, and sends nothing.
    with pytest.raises(LocalProtocolError) as refused:
        await conversation.answer(buyer.agent, str(question["id"]), "No, the other one.")
    assert refused.value.code is ErrorCode.ILLEGAL_TRANSITION
    assert len([p for _, p in vendor.received if p["type"] == "answer"]) == 1


async def test_a_question_her_policy_has_no_answer_for_waits_for_her(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Mayfair")
    rfi, _offer = await _negotiating(buyer, vendor)
    question, token = vendor.reply(
        rfi, MessageType.QUESTION, {"topic": "colour", "text": "Which colour?"}
    )
    assert (await buyer.post(token))[0] == 202
    with pytest.raises(LocalProtocolError) as waiting:
        await conversation.answer(buyer.agent, str(question["id"]))
    assert waiting.value.code is ErrorCode.INVALID_REQUEST
    # She answers in her own words through the test driver (spec §14.3).
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            buyer.url(TEST_DRIVER_PREFIX + "/answer"),
            json={"question": question["id"], "text": "Blue, please."},
        ) as response,
    ):
        assert response.status == 200, await response.text()
    _, answer = vendor.last("answer")
    assert answer["body"]["text"] == "Blue, please."


async def test_her_question_and_the_vendors_answer(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Mayfair")
    _rfi, offer = await _negotiating(buyer, vendor)
    sent = await conversation.ask(
        buyer.agent,
        vendor.id,
        "What does the warranty cover?",
        topic="warranty",
        about=str(offer["id"]),
    )
    token, question = vendor.last("question")
    assert question["id"] == sent.message.message_id
    assert question["thread"] == offer["thread"]
    assert question["body"]["about"]["id"] == offer["id"]
    answer, answer_token = vendor.reply(
        question,
        MessageType.ANSWER,
        {"question": vendor.ref(token, question), "text": "Three years, parts and labour."},
    )
    assert (await buyer.post(answer_token))[0] == 202
    entry = await buyer.store.entry(str(answer["id"]))
    assert entry is not None
    assert entry.type is MessageType.ANSWER


async def test_an_answer_to_no_question_of_hers_is_refused(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Mayfair")
    rfi, offer = await _negotiating(buyer, vendor)
    _, token = vendor.reply(
        rfi,
        MessageType.ANSWER,
        {"question": {"id": offer["id"], "digest": "sha-256:" + "Q" * 43}, "text": "Yes."},
    )
    status, body, _ = await buyer.post(token)
    assert status == 409
    assert json.loads(body)["code"] == ErrorCode.ILLEGAL_TRANSITION.value


async def test_she_escalates_an_open_problem_with_its_history(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Mayfair")
    agent = buyer.agent
    await agent.buying.send_rfis([vendor.id], sally_rfi_body(agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, offer_token = vendor.reply(
        rfi, MessageType.OFFER, offer_body(datetime.now(UTC), basis="binding")
    )
    assert (await buyer.post(offer_token))[0] == 202
    await agent.buying.accept(str(offer["id"]))
    _, acceptance = vendor.last("offer-acceptance")
    deal, deal_token = vendor.reply(
        acceptance,
        MessageType.DEAL_CONFIRMATION,
        {
            "deal": {
                "id": "deal-1",
                "offer": vendor.ref(offer_token, offer),
                "acceptance": acceptance["id"],
                "total": offer["body"]["price"]["total"],
            }
        },
    )
    assert (await buyer.post(deal_token))[0] == 202
    sent = await agent.owning.support_request(
        vendor.id,
        subject="Warning light",
        description="After every cold start",
        severity="high",
        regarding=str(deal["id"]),
    )
    request_token, request = vendor.last("support-request")
    _, first_token = vendor.reply(
        request,
        MessageType.SUPPORT_RESOLUTION,
        {
            "request": vendor.ref(request_token, request),
            "status": "in-progress",
            "resolution": "We will look.",
        },
    )
    assert (await buyer.post(first_token))[0] == 202
    await conversation.escalate(
        agent, sent.message.message_id, level="customer-relations", name="Mayfair relations"
    )
    escalation_token, escalation = vendor.last("support-escalation")
    body = escalation["body"]
    first_ref = {
        "id": json.loads(_payload(first_token))["id"],
        "digest": message_digest(first_token),
    }
    assert body["request"] == vendor.ref(request_token, request)
    assert body["history"] == [vendor.ref(request_token, request), first_ref]
    assert body["to"] == {"level": "customer-relations", "name": "Mayfair relations"}
    assert body["deadline"] > escalation["created"]
    assert escalation["thread"] == request["thread"]
    # The vendor's answer naming the escalation is taken; a final one closes the problem.
    _, answer_token = vendor.reply(
        escalation,
        MessageType.SUPPORT_RESOLUTION,
        {
            "request": vendor.ref(request_token, request),
            "escalation": vendor.ref(escalation_token, escalation),
            "status": "resolved",
            "resolution": "Repaired at our cost.",
        },
    )
    assert (await buyer.post(answer_token))[0] == 202
    assert await _relationship_state(buyer, vendor) == "welcome"
    # Resolved: no further escalation of it.
    with pytest.raises(LocalProtocolError):
        await conversation.escalate(
            agent, sent.message.message_id, level="management", name="Mayfair board"
        )


def _payload(token: bytes) -> bytes:
    from vrm_protocol.canonical import b64url_decode

    return b64url_decode(token.split(b".")[1])


async def test_an_answer_to_her_escalation_must_name_the_request_escalated(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Mayfair")
    agent = buyer.agent
    await agent.buying.send_rfis([vendor.id], sally_rfi_body(agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, offer_token = vendor.reply(
        rfi, MessageType.OFFER, offer_body(datetime.now(UTC), basis="binding")
    )
    assert (await buyer.post(offer_token))[0] == 202
    await agent.buying.accept(str(offer["id"]))
    _, acceptance = vendor.last("offer-acceptance")
    _, deal_token = vendor.reply(
        acceptance,
        MessageType.DEAL_CONFIRMATION,
        {
            "deal": {
                "id": "deal-1",
                "offer": vendor.ref(offer_token, offer),
                "acceptance": acceptance["id"],
                "total": offer["body"]["price"]["total"],
            }
        },
    )
    assert (await buyer.post(deal_token))[0] == 202
    requests = []
    for subject in ("Warning light", "Door rattles"):
        await agent.owning.support_request(
            vendor.id, subject=subject, description="Every day", severity="high"
        )
        requests.append(vendor.last("support-request"))
    (first_token, first), (second_token, second) = requests
    await conversation.escalate(
        agent, str(first["id"]), level="customer-relations", name="Mayfair relations"
    )
    escalation_token, escalation = vendor.last("support-escalation")

    def answer(token: bytes, request: dict[str, Any]) -> bytes:
        _, signed = vendor.reply(
            escalation,
            MessageType.SUPPORT_RESOLUTION,
            {
                "request": vendor.ref(token, request),
                "escalation": vendor.ref(escalation_token, escalation),
                "status": "escalated",
                "resolution": "Customer relations has it.",
            },
        )
        return signed

    status, body, _ = await buyer.post(answer(second_token, second))
    assert status == 409
    assert json.loads(body)["code"] == ErrorCode.REFERENCE_MISMATCH.value
    assert (await buyer.post(answer(first_token, first)))[0] == 202
