"""The outbox is driven by events: idle, it does nothing at all; woken by a commit it
delivers; a retry comes due by itself. Real store, real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from vrm_agent.clock import AgentClock
from vrm_agent.net import LOOPBACK, client_session
from vrm_agent.outbox import DeliveryBudget, Outbox
from vrm_agent.sqlite import SqliteProtocolStore
from vrm_agent.store import OutboxEntry, RelationshipRecord, StoredMessage
from vrm_agent.strategies import DeliveryOptions
from vrm_agent.unit import Outbound, UnitOfWork
from vrm_protocol.http_binding import DeliveryPolicy
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"
#: The longest any wait of this module takes before the test gives up.
BOUND = 10.0


class CountingStore(SqliteProtocolStore):
    """The real store, counting how often the outbox asks it for work."""

    passes = 0

    async def due_deliveries(self, now: float, limit: int = 20) -> list[OutboxEntry]:
        self.passes += 1
        return await super().due_deliveries(now, limit)


@dataclass
class Inbox:
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def inbox(aiohttp_server: Any) -> Inbox:
    recorder = Inbox()

    async def handle(request: web.Request) -> web.Response:
        recorder.received.append(await request.read())
        recorder.arrived.set()
        status = recorder.statuses.pop(0) if recorder.statuses else 202
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/vrm/inbox", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    recorder.url = str(server.make_url("/vrm/inbox"))
    return recorder


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[tuple[Outbox, CountingStore]]:
    store = CountingStore(tmp_path / "agent.sqlite3")
    session = client_session(DeliveryPolicy.from_entries(LOOPBACK))
    running = Outbox(
        store,
        policy=DeliveryPolicy.from_entries(LOOPBACK),
        budget=DeliveryBudget(),
        clock=AgentClock(),
        options=DeliveryOptions(),
        session=session,
    )
    task = asyncio.create_task(running.run())
    yield running, store
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await session.close()
    await store.close()


def _unit(inbox_url: str, message_id: str = "urn:uuid:1") -> UnitOfWork:
    message = StoredMessage(
        sender="https://vendor.test",
        message_id=message_id,
        direction=Direction.SENT,
        type=MessageType.OFFER,
        thread=message_id,
        parent=None,
        peer=PEER,
        digest="sha-256:" + "A" * 43,
        token=b"header.payload.signature",
        at="2026-11-23T10:00:00Z",
        expires="2999-01-01T00:00:00Z",
    )
    return UnitOfWork(
        peer=PEER,
        relationship=RelationshipRecord(PEER, RelationshipCore()),
        outbound=[Outbound(message, inbox_url)],
    )


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_an_idle_outbox_asks_for_nothing_until_woken(
    outbox: tuple[Outbox, CountingStore], inbox: Inbox
) -> None:
    running, store = outbox
    await _settle()
    assert store.passes == 1, "one pass at start, then asleep"
    await asyncio.sleep(0.5)  # long enough for any polling loop to show itself
    assert store.passes == 1, "idle: no pass without an event"
    await store.commit(_unit(inbox.url))
    running.wake()
    async with asyncio.timeout(BOUND):
        await inbox.arrived.wait()
    assert inbox.received == [b"header.payload.signature"]


async def test_a_retry_comes_due_without_a_wake(
    outbox: tuple[Outbox, CountingStore], inbox: Inbox
) -> None:
    running, store = outbox
    inbox.statuses = [503]
    await store.commit(_unit(inbox.url))
    running.wake()
    async with asyncio.timeout(BOUND):
        while len(inbox.received) < 2:
            inbox.arrived.clear()
            await inbox.arrived.wait()
    assert len(inbox.received) == 2, "the second attempt came by itself after the backoff"
