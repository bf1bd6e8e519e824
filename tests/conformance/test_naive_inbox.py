"""Every negative check catches an inbox that accepts everything.

The targets here are a deliberately non-conformant vendor and buyer written
for this test: their inboxes answer every POST with ``202`` and a correctly
signed receipt, but verify nothing. Each wire check that sends a defective message must then
fail — a negative check that passed here would be testing nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientSession, web

from conformance.context import RunOptions
from conformance.model import Verdict
from conformance.peers import bodies
from conformance.registry import Check
from conformance.runner import run_suite
from conformance.selection import Selection
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import build_message, encode
from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import discovery_document
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey
from vrm_protocol.vocabulary import MessageType, Role

#: Checks of the wire step that judge an inbox by what it refuses, and what
#: they must conclude against an inbox that refuses nothing.
MUST_FAIL = {
    "SEC-SIG-TAMPERED",
    "SEC-SIG-MISSING",
    "SEC-JWS-MALFORMED",
    "SEC-ALG-NONE",
    "SEC-ALG-HMAC",
    "SEC-KID-UNKNOWN",
    "SEC-KEY-SENDER",
    "SEC-HDR-TYP",
    "SEC-HDR-NO-KID",
    "SEC-HDR-JKU",
    "SEC-HDR-X5U",
    "SEC-HDR-JWK",
    "SEC-HDR-X5C",
    "SEC-HDR-CRIT",
    "SEC-HDR-B64",
    "SEC-HDR-OTHER",
    "SEC-HDR-DUPLICATE",
    "SEC-JSON-DUPLICATE",
    "SEC-JSON-NONCANONICAL",
    "SEC-FRESH-EXPIRED",
    "SEC-FRESH-FUTURE",
    "SEC-AUDIENCE",
    "SEC-REPLAY-DIFFERENT",
    "SEC-REPLAY-IDENTICAL",
    "SEC-SCHEMA-MISSING",
    "SEC-SCHEMA-UNKNOWN-MEMBER",
    "SEC-SCHEMA-FLOAT-MONEY",
    "SEC-TYPE-UNKNOWN",
    "SEC-VERSION",
    "SEC-LIMIT-SIZE",
    "SEC-LIMIT-DEPTH",
    "SEC-MEDIA-TYPE",
    "SEC-PIPELINE-ORDER",
}


#: Checks whose first unmet expectation is not a rejection.
_OTHER_REASONS = {"SEC-REPLAY-IDENTICAL": "an identical resend is answered 200"}


def _unverified(token: bytes) -> dict[str, Any]:
    try:
        segment = token.split(b".")[1]
        payload = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _receipt(token: bytes, message: dict[str, Any], *, sender: str, key: SigningKey) -> bytes:
    """A correctly signed receipt for whatever arrived (the naive part is taking it)."""
    addressee = message.get("from")
    receipt = build_message(
        MessageType.RECEIPT,
        {
            "regarding": {
                "id": str(message.get("id", "urn:uuid:00000000-0000-4000-8000-000000000000")),
                "digest": message_digest(token),
            },
            "status": "accepted",
            "receivedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        sender=sender,
        to=[addressee if isinstance(addressee, str) else sender],
        now=datetime.now(UTC),
    )
    try:
        return encode(receipt, key)
    except ProtocolError:  # a receipt to a sender it cannot address: still "accepted"
        return b"accepted"


@pytest.fixture
async def naive_vendor() -> AsyncIterator[str]:
    key = SigningKey.generate("EdDSA")
    state: dict[str, str] = {}

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            discovery_document(
                party_id=state["base"],
                role="vendor",
                name="Naive Motors",
                base_url=state["base"],
                accepts=[MessageType.PERSONAL_RFI],
                sends=[MessageType.OFFER, MessageType.RECEIPT],
                max_message_bytes=65536,
                max_depth=16,
                rate_per_minute=6000,
            )
        )

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response(KeySet([key.public()]).to_jwks())

    async def inbox(request: web.Request) -> web.Response:
        token = (await request.read()).strip()
        body = _receipt(token, _unverified(token), sender=state["base"], key=key)
        return web.Response(status=202, body=body, content_type="application/vrm+jws")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/.well-known/vrm", discovery)
    app.router.add_get("/vrm/jwks.json", jwks)
    app.router.add_post("/vrm/inbox", inbox)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["base"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state["base"]
    await runner.cleanup()


@pytest.fixture
async def naive_buyer() -> AsyncIterator[str]:
    """A buyer that writes RFIs when told to and takes every message it is sent."""
    pseudonyms: dict[str, PairwiseIdentity] = {}
    state: dict[str, str] = {}

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            discovery_document(
                party_id=state["base"],
                role="buyer",
                name="Naive buyer",
                base_url=state["base"],
                accepts=[MessageType.OFFER],
                sends=[MessageType.PERSONAL_RFI, MessageType.RECEIPT],
                max_message_bytes=65536,
                max_depth=16,
                rate_per_minute=6000,
                test_driver=True,
            )
        )

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response({"keys": []})

    async def rfi(request: web.Request) -> web.Response:
        async with ClientSession() as http:
            for vendor in (await request.json())["vendors"]:
                async with http.get(vendor + "/.well-known/vrm") as answer:
                    inbox = (await answer.json())["endpoints"]["inbox"]
                me = PairwiseIdentity.generate()
                pseudonyms[me.identifier] = me
                message = build_message(
                    MessageType.PERSONAL_RFI,
                    bodies.personal_rfi_body(datetime.now(UTC)),
                    sender=me.identifier,
                    to=[vendor],
                    now=datetime.now(UTC),
                    reply_inbox=state["base"] + "/vrm/inbox",
                )
                token = encode(message, me.signing_key)
                headers = {"Content-Type": "application/vrm+jws"}
                async with http.post(inbox, data=token, headers=headers) as answer:
                    assert answer.status == 202
        return web.json_response({})

    async def empty(request: web.Request) -> web.Response:
        return web.json_response({})

    async def inbox(request: web.Request) -> web.Response:
        token = (await request.read()).strip()
        message = _unverified(token)
        recipients = [to for to in message.get("to") or [] if to in pseudonyms]
        me = pseudonyms[recipients[0]] if recipients else next(iter(pseudonyms.values()))
        return web.Response(
            status=202,
            body=_receipt(token, message, sender=me.identifier, key=me.signing_key),
            content_type="application/vrm+jws",
        )

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/.well-known/vrm", discovery)
    app.router.add_get("/vrm/jwks.json", jwks)
    app.router.add_post("/vrm/inbox", inbox)
    app.router.add_post("/vrm/test-driver/rfi", rfi)
    app.router.add_post("/vrm/test-driver/clock", empty)
    app.router.add_get("/vrm/test-driver/state", empty)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["base"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state["base"]
    await runner.cleanup()


@pytest.mark.parametrize("role", [Role.VENDOR, Role.BUYER])
async def test_every_negative_wire_check_fails_an_accept_everything_target(
    role: Role, naive_vendor: str, naive_buyer: str
) -> None:
    target = naive_vendor if role is Role.VENDOR else naive_buyer
    run = await run_suite(
        RunOptions(role=role, target=target, reply_timeout=1.0),
        selection=Selection(include=tuple(sorted(MUST_FAIL))),
    )
    verdicts = {result.check_id: result.verdict for result in run.results}
    assert set(verdicts) == MUST_FAIL
    passed_wrongly = sorted(
        check for check, verdict in verdicts.items() if verdict is not Verdict.FAIL
    )
    assert passed_wrongly == [], {
        result.check_id: result.reason
        for result in run.results
        if result.check_id in passed_wrongly
    }
    # Each fails for what it is about: the defective message was taken.
    reasons = {result.check_id: result.reason for result in run.results}
    misjudged = {
        check: reason
        for check, reason in reasons.items()
        if not reason.startswith("the target rejects") and check not in _OTHER_REASONS
    }
    assert misjudged == {}
    for check, reason in _OTHER_REASONS.items():
        assert reasons[check] == reason


def test_the_list_is_every_negative_check_of_the_wire() -> None:
    from conformance.catalog import default_registry

    wire: list[Check] = [
        check for check in default_registry() if check.id.startswith("SEC-") and not check.needs
    ]
    positives = {"SEC-EXTENSIONS-IGNORED", "SEC-MAILBOX-POLL", "SEC-FRESH-SKEW"}
    assert {check.id for check in wire} - positives == MUST_FAIL
