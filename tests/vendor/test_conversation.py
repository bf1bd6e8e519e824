"""The reference vendor in conversation (spec §6.30, §6.31), over HTTP with a
real store and keys: it asks which trim she means, answers her questions
from its catalogue, and none of it moves the relationship."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from tests.vendor.conftest import Buyer
from vrm_protocol.canonical import message_digest

Client = TestClient[web.Request, web.Application]


def _problem_code(answer: tuple[int, bytes, str]) -> tuple[int, str]:
    status, body, content_type = answer
    assert content_type == "application/problem+json", (status, body)
    return status, str(json.loads(body)["code"])


async def _state(vendor: Client, peer: str) -> Any:
    """The relationship with ``peer`` as the state summary has it, but for its message count."""
    response = await vendor.get("/vrm/test-driver/state")
    assert response.status == 200
    document = await response.json()
    relationships = document["relationships"]
    if isinstance(relationships, dict):
        found = relationships[peer]
    else:
        found = next(r for r in relationships if peer in (r.get("peer"), r.get("id")))
    return {key: value for key, value in found.items() if key != "messages"}


async def test_the_dealer_asks_which_trim_she_means_and_takes_her_answer(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfp = buyer.compose("personal-rfp", bodies.personal_rfp_body(buyer.now()))
    assert (await buyer.send(rfp))[0] == 202
    offer = await buyer.expect("offer")
    question = await buyer.expect("question")
    # Mayfair sells the Prius in two trims: it asks, in the RFP's thread, about the RFP.
    assert question.body["topic"] == "trim"
    assert "Active" in question.body["text"]
    assert "Excel" in question.body["text"]
    assert question.payload["thread"] == rfp["id"]
    assert question.payload["parent"] == rfp["id"]
    assert question.body["about"]["id"] == rfp["id"]
    before = await _state(vendor, buyer.id)
    answer = buyer.compose(
        "answer",
        {"question": question.ref(), "text": "The Active."},
        thread=rfp["id"],
        parent=question.id,
    )
    assert (await buyer.send(answer))[0] == 202
    assert await _state(vendor, buyer.id) == before, "an answer moves nothing"
    # Answered once: a second answer to it is refused, and changes nothing.
    again = buyer.compose(
        "answer", {"question": question.ref(), "text": "No, the Excel."}, thread=rfp["id"]
    )
    assert _problem_code(await buyer.send(again)) == (409, "illegal-transition")
    # The offer is still there to accept.
    acceptance = buyer.compose(
        "offer-acceptance", bodies.offer_acceptance_body(offer.ref()), thread=rfp["id"]
    )
    assert (await buyer.send(acceptance))[0] == 202
    assert (await buyer.expect("deal-confirmation")).body["deal"]["offer"] == offer.ref()


async def test_her_question_is_answered_from_the_catalogue_in_its_thread(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert (await buyer.send(rfi))[0] == 202
    offer = await buyer.expect("offer")
    before = await _state(vendor, buyer.id)
    question = buyer.compose(
        "question",
        {"topic": "delivery", "text": "When could you deliver?", "about": offer.ref()},
        thread=rfi["id"],
        parent=offer.id,
    )
    token = buyer.sign(question)
    assert (await buyer.post(token))[0] == 202
    answer = await buyer.expect("answer")
    assert answer.body["question"] == {"id": question["id"], "digest": message_digest(token)}
    assert answer.payload["thread"] == rfi["id"]
    assert answer.payload["parent"] == question["id"]
    assert "30 days" in answer.body["text"]
    assert await _state(vendor, buyer.id) == before, "a question and its answer move nothing"
    # A topic the catalogue says nothing of still gets an answer that says so.
    other = buyer.compose(
        "question", {"topic": "colours", "text": "Is it made in blue?"}, thread=rfi["id"]
    )
    assert (await buyer.send(other))[0] == 202
    said = (await buyer.expect("answer")).body["text"]
    assert "cannot answer" in said


async def test_no_answer_to_a_question_never_asked_and_no_question_out_of_nowhere(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    stranger = new_buyer()
    first = stranger.compose("question", {"text": "Do you sell cars?"})
    assert _problem_code(await stranger.send(first)) == (409, "illegal-transition")
    buyer = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert (await buyer.send(rfi))[0] == 202
    await buyer.expect("offer")
    unasked = buyer.compose(
        "answer",
        {"question": {"id": rfi["id"], "digest": "sha-256:" + "Q" * 43}, "text": "Yes."},
        thread=rfi["id"],
    )
    assert _problem_code(await buyer.send(unasked)) == (409, "illegal-transition")
    # Her own question cannot be answered by her.
    own = buyer.compose("question", {"text": "Is the price firm?"}, thread=rfi["id"])
    own_token = buyer.sign(own)
    assert (await buyer.post(own_token))[0] == 202
    await buyer.expect("answer")
    mine = buyer.compose(
        "answer",
        {"question": {"id": own["id"], "digest": message_digest(own_token)}, "text": "Yes."},
        thread=rfi["id"],
    )
    assert _problem_code(await buyer.send(mine)) == (409, "illegal-transition")
