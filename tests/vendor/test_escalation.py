"""The reference vendor and problems that escalate (spec §6.12, §6.32), over
HTTP with a real store and keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from tests.vendor.conftest import Buyer, Reply, stamp

Client = TestClient[web.Request, web.Application]


async def _state(vendor: Client, peer: str) -> str:
    response = await vendor.get("/vrm/test-driver/state")
    relationships = (await response.json())["relationships"]
    found = (
        relationships[peer]
        if isinstance(relationships, dict)
        else next(r for r in relationships if peer in (r.get("peer"), r.get("id")))
    )
    return str(found["state"])


async def _problem(buyer: Buyer) -> tuple[str, Reply, Reply]:
    """A deal, then a severe problem the vendor leaves in progress: the thread,
    her request (as signed) and the vendor's first answer."""
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert (await buyer.send(rfi))[0] == 202
    offer = await buyer.expect("offer")
    acceptance = buyer.compose(
        "offer-acceptance", bodies.offer_acceptance_body(offer.ref()), thread=rfi["id"]
    )
    assert (await buyer.send(acceptance))[0] == 202
    deal = await buyer.expect("deal-confirmation")
    request = buyer.compose(
        "support-request",
        {**bodies.support_request_body(), "severity": "high", "regarding": deal.ref()},
        thread=rfi["id"],
        parent=deal.id,
    )
    token = buyer.sign(request)
    assert (await buyer.post(token))[0] == 202
    first = await buyer.expect("support-resolution")
    assert first.body["status"] == "in-progress"
    return str(rfi["id"]), Reply(token, request), first


def _escalation(
    buyer: Buyer, thread: str, asked: Reply, first: Reply, **changes: Any
) -> dict[str, Any]:
    body = {
        "request": asked.ref(),
        "to": {"level": "customer-relations", "name": "Mayfair customer relations"},
        "deadline": stamp(buyer.now() + timedelta(days=14)),
        "history": [asked.ref(), first.ref()],
        **changes,
    }
    return buyer.compose("support-escalation", body, thread=thread, parent=first.id)


def _code(answer: tuple[int, bytes, str]) -> tuple[int, str]:
    status, body, _ = answer
    return status, str(json.loads(body)["code"])


async def test_an_escalated_problem_is_answered_at_the_level_named_and_resolved(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    thread, request, first = await _problem(buyer)
    assert await _state(vendor, buyer.id) == "problem"
    escalation = _escalation(buyer, thread, request, first)
    token = buyer.sign(escalation)
    assert (await buyer.post(token))[0] == 202
    escalation_ref = Reply(token, escalation).ref()
    taken = await buyer.expect("support-resolution")
    settled = await buyer.expect("support-resolution")
    for answer in (taken, settled):
        assert answer.body["request"] == request.ref()
        assert answer.body["escalation"] == escalation_ref
        assert answer.payload["thread"] == thread
        assert answer.payload["parent"] == escalation["id"]
        assert answer.payload["created"] <= escalation["body"]["deadline"]
    assert taken.body["status"] == "escalated"
    assert "Mayfair customer relations" in taken.body["resolution"]
    assert settled.body["status"] == "resolved"
    # The problem is over: back to where it arose (the welcome).
    assert await _state(vendor, buyer.id) == "welcome"
    # Resolved: neither the request nor the escalation can be escalated or answered again.
    again = _escalation(buyer, thread, request, first)
    assert _code(await buyer.send(again)) == (409, "illegal-transition")


async def test_escalations_the_vendor_refuses(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    thread, request, first = await _problem(buyer)
    unknown = _escalation(
        buyer,
        thread,
        request,
        first,
        request={"id": first.id, "digest": first.ref()["digest"]},
    )
    assert _code(await buyer.send(unknown)) == (409, "illegal-transition")
    late = _escalation(buyer, thread, request, first)
    late["body"]["deadline"] = late["created"]
    status, code = _code(await buyer.send(late))
    assert code == "schema-invalid"
    assert status == 422
    assert await _state(vendor, buyer.id) == "problem", "refused escalations change nothing"
