"""The delivery policy of the vendor's outbox (spec §11.8): where a reply may be
POSTed when a stranger names the address.

Real vendor application and store; the "inboxes" are real servers on
127.0.0.1 that record what reaches them. Delivery is driven step by step
(:meth:`vrm_agent.outbox.Outbox.deliver_due`), never by waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from reference_vendor.app import AGENT, create_app
from reference_vendor.config import STORE_FILE, VendorConfig
from tests.vendor.conftest import Buyer

Client = TestClient[web.Request, web.Application]


@dataclass
class Inbox:
    """A buyer inbox on 127.0.0.1 that records each POST and answers ``status``."""

    url: str = ""
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    received: list[bytes] = field(default_factory=list)


@pytest.fixture
async def inbox(aiohttp_server: Any) -> Inbox:
    recorder = Inbox()

    async def handle(request: web.Request) -> web.Response:
        recorder.received.append(await request.read())
        return web.Response(status=recorder.status, headers=recorder.headers)

    app = web.Application()
    app.router.add_post("/vrm/inbox", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    recorder.url = str(server.make_url("/vrm/inbox"))
    return recorder


@dataclass
class Listener:
    """A bare TCP listener on 127.0.0.1 that counts the connections made to it."""

    port: int
    connections: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    counted = Listener(0)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counted.connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    counted.port = server.sockets[0].getsockname()[1]
    yield counted
    server.close()
    await server.wait_closed()


async def _vendor(aiohttp_client: Any, config: VendorConfig) -> Client:
    return await aiohttp_client(create_app(config))  # type: ignore[no-any-return]


async def _rfi_with_reply_to(vendor: Client, buyer: Buyer, reply_to: str) -> None:
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()), reply_inbox=reply_to)
    assert (await buyer.send(rfi))[0] == 202


async def _deliver(vendor: Client) -> int:
    return await vendor.server.app[AGENT].outbox.deliver_due()


def _outbox(config: VendorConfig) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(config.data_dir / STORE_FILE) as conn:
        return [
            (str(status), int(attempts), error)
            for status, attempts, error in conn.execute(
                "SELECT status, attempts, last_error FROM outbox ORDER BY id"
            )
        ]


def _due_now(config: VendorConfig) -> None:
    """Skip the backoff wait of every pending delivery (the test drives time)."""
    with sqlite3.connect(config.data_dir / STORE_FILE) as conn:
        conn.execute("UPDATE outbox SET next_attempt = 0 WHERE status = 'pending'")


async def test_a_reply_to_on_loopback_is_not_posted_without_the_operators_leave(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], inbox: Inbox
) -> None:
    config = make_config(test_mode=False, background_delivery=False)
    vendor = await _vendor(aiohttp_client, config)
    buyer = Buyer(vendor)
    await _rfi_with_reply_to(vendor, buyer, inbox.url)
    assert await _deliver(vendor) == 1
    assert inbox.received == [], "a stranger's replyTo on loopback was POSTed to"
    [(status, attempts, error)] = _outbox(config)
    assert (status, attempts) == ("failed", 0)
    assert error is not None
    assert "allow" in error
    # Not lost: the offer waits in the mailbox (spec §11.4).
    assert [reply.type for reply in await buyer.poll()] == ["offer"]


async def test_the_operators_allow_list_lets_replies_reach_loopback(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], inbox: Inbox
) -> None:
    config = make_config(
        test_mode=False, background_delivery=False, allow_delivery_to=frozenset({"127.0.0.1"})
    )
    vendor = await _vendor(aiohttp_client, config)
    buyer = Buyer(vendor)
    await _rfi_with_reply_to(vendor, buyer, inbox.url)
    assert await _deliver(vendor) == 1
    assert len(inbox.received) == 1
    assert _outbox(config)[0][0] == "delivered"


async def test_a_name_that_resolves_to_loopback_is_never_connected_to(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], listener: Listener
) -> None:
    # https, so the scheme passes: only the resolved address can stop it, and it
    # must stop it before any connection is made.
    config = make_config(test_mode=False, background_delivery=False)
    vendor = await _vendor(aiohttp_client, config)
    buyer = Buyer(vendor)
    await _rfi_with_reply_to(vendor, buyer, f"https://localhost:{listener.port}/vrm/inbox")
    assert await _deliver(vendor) == 1
    assert listener.connections == 0
    [(status, attempts, error)] = _outbox(config)
    assert (status, attempts) == ("failed", 0)
    assert error is not None
    assert "loopback" in error


async def test_a_redirect_is_never_followed(
    aiohttp_client: Any,
    make_config: Callable[..., VendorConfig],
    inbox: Inbox,
    aiohttp_server: Any,
) -> None:
    elsewhere: list[str] = []

    async def record(request: web.Request) -> web.Response:
        elsewhere.append(request.method)
        return web.Response(status=202)

    other = web.Application()
    other.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(other, host="127.0.0.1")
    inbox.status = 307
    inbox.headers = {"Location": str(server.make_url("/vrm/inbox"))}
    config = make_config(background_delivery=False)  # test mode: loopback allowed
    vendor = await _vendor(aiohttp_client, config)
    await _rfi_with_reply_to(vendor, Buyer(vendor), inbox.url)
    assert await _deliver(vendor) == 1
    assert len(inbox.received) == 1
    assert elsewhere == [], "the redirect was followed"
    [(status, attempts, _)] = _outbox(config)
    assert (status, attempts) == ("pending", 1), "a 3xx is a failed attempt"


async def test_a_stranger_s_reply_to_costs_a_bounded_number_of_attempts(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], inbox: Inbox
) -> None:
    inbox.status = 503  # never takes anything
    config = make_config(
        background_delivery=False, stranger_delivery_attempts=2, stranger_delivery_budget=3
    )
    vendor = await _vendor(aiohttp_client, config)
    buyer = Buyer(vendor)
    for _ in range(3):
        await _rfi_with_reply_to(vendor, buyer, inbox.url)
    for _ in range(12):  # bounded: far more passes than the budget allows attempts
        _due_now(config)
        await _deliver(vendor)
    # 2 attempts for the first offer, 1 more for the second: the relationship's
    # budget of 3 failures is spent, and the third offer is never POSTed.
    assert len(inbox.received) == 3
    assert [row[:2] for row in _outbox(config)] == [("failed", 2), ("failed", 1), ("failed", 0)]
    assert [reply.type for reply in await buyer.poll()] == ["offer"] * 3
