"""Shared fixtures for the buyer tests: a small real vendor, and a buyer agent.

The vendor here is built from the library alone (real keys, real signatures,
the real receiving pipeline): it publishes discovery and a JWKS, receipts what
the buyer sends, and lets a test compose and deliver signed messages to the
buyer.  It is not the reference vendor (tests of the buyer must not depend
on it), only enough of a counterparty to exercise the buyer over HTTP.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_profile
from reference_buyer.store import SqliteBuyerStore
from vrm_agent.server import Serving
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    RateLimiter,
    discovery_document,
    mailbox_page,
    poll_token_from_authorization,
    problem_response,
    verify_poll_token,
)
from vrm_protocol.keys import KeySet, SigningKey, key_resolver
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def offer_body(
    now: datetime,
    *,
    basis: str = "indicative",
    total: str = "28500",
    allowance: str | None = None,
    valid_for: timedelta = timedelta(days=7),
    supersedes: Mapping[str, str] | None = None,
    approval_party: str | None = None,
    topic: str | None = None,
) -> dict[str, Any]:
    """An offer body as a dealer would send it."""
    price: dict[str, Any] = {"subtotal": money(total), "total": money(total)}
    if allowance is not None:
        price = {
            "subtotal": money(total),
            "tradeInAllowance": money(allowance),
            "total": money(str(int(total) - int(allowance))),
        }
    body: dict[str, Any] = {
        "basis": basis,
        "validUntil": ts(now + valid_for),
        "items": [
            {
                "sku": "PRIUS-HB",
                "description": "Toyota Prius hybrid hatchback",
                "quantity": 1,
                "unitPrice": money(total),
            }
        ],
        "price": price,
        "terms": {
            "id": "test-dealer-terms",
            "version": "1.0",
            "url": "https://dealer.example/terms/1.0",
            "digest": "sha-256:" + "A" * 43,
        },
    }
    if supersedes is not None:
        body["supersedes"] = dict(supersedes)  # a messageRef (spec §6.3)
    if approval_party is not None:
        body["conditions"] = [
            {
                "kind": "approval-required",
                "description": "partner approves",
                "party": approval_party,
            }
        ]
    if topic is not None:
        body["topic"] = topic
    return body


@dataclass
class InTestVendor:
    """A minimal vendor on its own loopback port (see the module docstring)."""

    name: str
    key: SigningKey = field(default_factory=lambda: SigningKey.generate("EdDSA"))
    server: TestServer | None = None
    received: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)
    #: Messages waiting for buyers without an inbox, per pseudonym (spec §11.4).
    mailbox: dict[str, list[bytes]] = field(default_factory=dict)
    #: Who polled: the poller named in each verified poll token.
    pollers: list[str] = field(default_factory=list)
    #: Refuse the next message POSTed with this error (then accept again).
    refuse_next: ErrorCode | None = None
    #: Terms documents served at ``/vrm/terms/{id}/{version}`` (spec D12), exact bytes.
    terms_documents: dict[tuple[str, str], bytes] = field(default_factory=dict)
    #: Replaces members of the discovery document's ``endpoints`` (hostile vendors).
    endpoints_override: dict[str, str] = field(default_factory=dict)
    #: Serves the JWKS instead of the real one (hostile vendors).
    jwks_handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
    #: Answers inbox POSTs instead of the real inbox (hostile vendors).
    inbox_handler: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
    #: Every request this vendor served, as "METHOD /path".
    requests: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def app(self) -> web.Application:
        async def discovery(request: web.Request) -> web.Response:
            document = discovery_document(
                party_id=self.id,
                role="vendor",
                name=self.name,
                base_url=self.id,
                accepts=list(MessageType),
                sends=list(MessageType),
                max_message_bytes=65536,
                max_depth=16,
                rate_per_minute=6000,
            )
            document["endpoints"].update(self.endpoints_override)
            return web.json_response(document)

        async def jwks(request: web.Request) -> web.StreamResponse:
            if self.jwks_handler is not None:
                return await self.jwks_handler(request)
            return web.json_response(KeySet([self.key.public()]).to_jwks())

        async def terms(request: web.Request) -> web.Response:
            key = (request.match_info["id"], request.match_info["version"])
            if key not in self.terms_documents:
                raise web.HTTPNotFound()
            return web.Response(
                body=self.terms_documents[key], content_type="text/plain", charset="utf-8"
            )

        @web.middleware
        async def record(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path}")
            return await handler(request)

        async def inbox(request: web.Request) -> web.StreamResponse:
            if self.inbox_handler is not None:
                return await self.inbox_handler(request)
            token = await request.read()
            if self.refuse_next is not None:
                refusal, self.refuse_next = self.refuse_next, None
                rendered = problem_response(RemoteProtocolError(refusal, "refused by the test"))
                return web.Response(
                    status=rendered.status, body=rendered.body, headers=rendered.headers
                )
            received = decode(
                token,
                resolve_key=key_resolver(None),
                receiver=self.id,
                now=datetime.now(UTC),
            )
            self.received.append((token, dict(received.payload)))
            return web.Response(
                status=202,
                body=self.receipt_for(dict(received.payload), received.digest),
                content_type=MESSAGE_MEDIA_TYPE,
            )

        async def mailbox(request: web.Request) -> web.Response:
            try:
                token = poll_token_from_authorization(request.headers.get("Authorization"))
                poll = verify_poll_token(token, mailbox_owner=self.id, now=datetime.now(UTC))
            except ProtocolError as error:
                rendered = problem_response(error)
                return web.Response(
                    status=rendered.status, body=rendered.body, headers=rendered.headers
                )
            self.pollers.append(poll.poller)
            waiting = self.mailbox.get(poll.poller, [])
            return web.Response(
                body=mailbox_page(waiting, after=poll.after), content_type="application/json"
            )

        app = web.Application(middlewares=[record])
        app.router.add_get("/vrm/terms/{id}/{version}", terms)
        app.router.add_get(MAILBOX_PATH, mailbox)
        app.router.add_get(DISCOVERY_PATH, discovery)
        app.router.add_get(JWKS_PATH, jwks)
        app.router.add_post(INBOX_PATH, inbox)
        return app

    def terms_ref(
        self,
        text: str = "Test dealer terms of sharing, version 1.0.\n",
        *,
        terms_id: str = "test-dealer-terms",
        version: str = "1.0",
    ) -> dict[str, str]:
        """Publish a terms document on this vendor's origin (spec D12) and return
        the ``termsReference`` that names it by its exact bytes."""
        data = text.encode("utf-8")
        self.terms_documents[(terms_id, version)] = data
        return {
            "id": terms_id,
            "version": version,
            "url": f"{self.id}/vrm/terms/{terms_id}/{version}",
            "digest": message_digest(data),
        }

    def receipt_for(self, payload: Mapping[str, Any], digest: str) -> bytes:
        now = datetime.now(UTC)
        return encode(
            build_message(
                MessageType.RECEIPT,
                {
                    "regarding": {"id": payload["id"], "digest": digest},
                    "status": "accepted",
                    "receivedAt": ts(now),
                },
                sender=self.id,
                to=[payload["from"]],
                now=now,
                thread=payload["thread"],
                parent=payload["id"],
            ),
            self.key,
        )

    def reply(
        self,
        to_payload: Mapping[str, Any],
        message_type: MessageType,
        body: Mapping[str, Any],
        *,
        now: datetime | None = None,
        message_id: str | None = None,
    ) -> tuple[dict[str, Any], bytes]:
        """A signed reply in ``to_payload``'s thread, to its sender."""
        payload = build_message(
            message_type,
            body,
            sender=self.id,
            to=[to_payload["from"]],
            now=now or datetime.now(UTC),
            thread=to_payload["thread"],
            parent=to_payload["id"],
            message_id=message_id,
        )
        return payload, encode(payload, self.key)

    def last(self, message_type: str) -> tuple[bytes, dict[str, Any]]:
        for token, payload in reversed(self.received):
            if payload["type"] == message_type:
                return token, payload
        raise AssertionError(f"{self.name} received no {message_type}")

    def ref(self, token: bytes, payload: Mapping[str, Any]) -> dict[str, str]:
        return {"id": payload["id"], "digest": message_digest(token)}


VendorFactory = Callable[[str], Awaitable[InTestVendor]]


@pytest.fixture
async def start_vendor() -> AsyncIterator[VendorFactory]:
    servers: list[TestServer] = []

    async def start(name: str) -> InTestVendor:
        vendor = InTestVendor(name)
        server = TestServer(vendor.app(), host="127.0.0.1")
        await server.start_server()
        vendor.server = server
        servers.append(server)
        return vendor

    yield start
    for server in servers:
        await server.close()


@dataclass
class RunningBuyer:
    agent: BuyerAgent
    serving: Serving
    base: str

    @property
    def store(self) -> SqliteBuyerStore:
        return self.agent.store

    @property
    def inbox(self) -> str:
        return self.base + INBOX_PATH

    def url(self, path: str) -> str:
        return self.base + path

    async def post(self, token: bytes) -> tuple[int, bytes, str]:
        return await self.post_to(self.inbox, token)

    async def post_to(self, url: str, token: bytes) -> tuple[int, bytes, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=token, headers={"Content-Type": MESSAGE_MEDIA_TYPE}) as response,
        ):
            return response.status, await response.read(), response.content_type


def listening_socket() -> socket.socket:
    """A bound, listening, non-blocking socket on 127.0.0.1 (any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start_buyer(data_dir: Path, **options: Any) -> RunningBuyer:
    """Her real agent on ``data_dir``, serving on 127.0.0.1 in test mode; Sally's
    profile in her store. ``options`` replace the test configuration's."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # The in-test vendors listen on loopback (allow-listed in test mode, D6);
    # copies go without pauses so the tests stay fast (their `created` still differ).
    settings: dict[str, Any] = {
        "data_dir": data_dir,
        "public_url": base,
        "test_mode": True,
        "decorrelation": Decorrelation(spread_seconds=0.0),
        **options,
    }
    config = BuyerConfig(**settings)
    agent = await BuyerAgent.open(
        config, load_policy(), sender_limiter=RateLimiter(config.rate_per_second, config.burst)
    )
    for category, value in sally_profile().items():
        await agent.store.set_profile(category, value)
    serving = await serve(agent, sock)
    return RunningBuyer(agent, serving, base)


async def stop_buyer(buyer: RunningBuyer) -> None:
    await buyer.serving.close()
    await buyer.agent.close()


BuyerFactory = Callable[..., Awaitable[RunningBuyer]]


@pytest.fixture
async def buyers(tmp_path: Path) -> AsyncIterator[BuyerFactory]:
    """Starts buyers (``start(name, **options)``); each is stopped when the test ends."""
    running: list[RunningBuyer] = []

    async def start(name: str = "buyer", **options: Any) -> RunningBuyer:
        buyer = await start_buyer(tmp_path / name, **options)
        running.append(buyer)
        return buyer

    yield start
    for buyer in running:
        await stop_buyer(buyer)


@pytest.fixture
async def buyer(buyers: BuyerFactory) -> RunningBuyer:
    return await buyers()
