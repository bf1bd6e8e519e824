"""The runtime's PostgreSQL base beyond the contract: what several processes need.

What any store must do is the contract (``tests/vendor/test_store_contract.py``,
run on both backends); this is how the PostgreSQL store makes it hold when
several processes serve one database. Each "process" here is a store of its
own (its own pool and presence connection) on the same fresh database of the
session's real server (``tests/conftest.py``); the end-to-end tests run real
vendor processes (``tests/e2e/test_postgres_processes.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pytest

from vrm_agent.postgres import PROTOCOL_SCHEMA, PostgresProtocolStore, lock_id, redact
from vrm_agent.store import (
    DeliveryOutcome,
    RelationshipRecord,
    StoreClosed,
    StoredMessage,
    StoreError,
    StoreUnavailable,
)
from vrm_agent.unit import Outbound, UnitOfWork
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import SigningKey
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"
VENDOR = "https://vendor.test"
STAMP = format_timestamp(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
LATER = "2099-01-01T00:00:00Z"
#: Bound on every test (the machine is shared; each wait inside is shorter).
DEADLINE = 60.0


def _message(
    message_id: str, *, direction: Direction = Direction.RECEIVED, peer: str = PEER
) -> StoredMessage:
    return StoredMessage(
        sender=peer if direction is Direction.RECEIVED else VENDOR,
        message_id=message_id,
        direction=direction,
        type=MessageType.PERSONAL_RFI if direction is Direction.RECEIVED else MessageType.OFFER,
        thread="urn:uuid:thread",
        parent=None,
        peer=peer,
        digest="sha-256:" + message_id,
        token=f"h.{message_id}.s".encode(),
        at=STAMP,
        expires=LATER,
    )


def _unit(
    number: int,
    *,
    peer: str = PEER,
    reply_inbox: str | None = None,
    deliver_to: str | None = None,
) -> UnitOfWork:
    return UnitOfWork(
        peer=peer,
        relationship=RelationshipRecord(peer, RelationshipCore(), reply_inbox=reply_inbox),
        inbound=_message(f"urn:uuid:in-{number}", peer=peer),
        receipt=f"receipt-{number}".encode(),
        outbound=[
            Outbound(_message(f"urn:uuid:out-{number}", direction=Direction.SENT, peer=peer), None)
        ]
        if deliver_to is None
        else [
            Outbound(
                _message(f"urn:uuid:out-{number}", direction=Direction.SENT, peer=peer),
                deliver_to,
            )
        ],
    )


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[list[PostgresProtocolStore]]:
    """Two "processes" of one agent on one fresh database."""
    opened = await asyncio.gather(
        PostgresProtocolStore.open(postgres_url), PostgresProtocolStore.open(postgres_url)
    )
    try:
        yield list(opened)
    finally:
        for store in opened:
            await store.close()


# -- migrations and opening -----------------------------------------------------------------------


async def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    async with asyncio.timeout(DEADLINE):
        opened = await asyncio.gather(*(PostgresProtocolStore.open(postgres_url) for _ in range(4)))
        try:
            for store in opened:
                assert await store.schema_versions() == {"vrm_agent": len(PROTOCOL_SCHEMA.steps)}
        finally:
            for store in opened:
                await store.close()


async def test_a_database_of_a_newer_version_is_refused_in_one_line(postgres_url: str) -> None:
    store = await PostgresProtocolStore.open(postgres_url)
    await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'vrm_agent'")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="newer version") as refused:
        await PostgresProtocolStore.open(postgres_url)
    assert "\n" not in str(refused.value)


async def test_an_unreachable_server_is_unavailable_without_its_password(tmp_path: object) -> None:
    url = "postgresql://vendor:s3cret@/vrm?host=/nonexistent-socket-dir"
    with pytest.raises(StoreUnavailable) as refused:
        await PostgresProtocolStore.open(url)
    assert "s3cret" not in str(refused.value)
    assert "\n" not in str(refused.value)
    assert redact(url) == "postgresql://vendor:***@/vrm?host=/nonexistent-socket-dir"


async def test_a_closed_store_takes_no_more_work(stores: list[PostgresProtocolStore]) -> None:
    first, _ = stores
    await first.close()
    with pytest.raises(StoreClosed):
        await first.relationship(PEER)
    with pytest.raises(StoreClosed):
        await first.commit(_unit(1))


# -- serialisation across processes ---------------------------------------------------------------


async def test_keys_held_in_one_process_hold_off_the_other(
    stores: list[PostgresProtocolStore],
) -> None:
    first, second = stores
    events: list[str] = []
    held = asyncio.Event()

    async def one() -> None:
        async with first.exclusive("p " + PEER, "t urn:uuid:a"):
            events.append("first in")
            held.set()
            await asyncio.sleep(0.3)
            events.append("first out")

    async def other() -> None:
        await held.wait()
        # A different set of keys sharing one: it waits all the same.
        async with second.exclusive("m urn:uuid:x", "p " + PEER):
            events.append("second in")

    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(one(), other())
    assert events == ["first in", "first out", "second in"]


async def test_keys_of_other_relationships_do_not_wait(
    stores: list[PostgresProtocolStore],
) -> None:
    first, second = stores
    inside = asyncio.Event()
    release = asyncio.Event()

    async def one() -> None:
        async with first.exclusive("p " + PEER):
            inside.set()
            await release.wait()

    async def other() -> None:
        await inside.wait()
        async with second.exclusive("p did:jwk:someone-else"):
            release.set()  # got in while the first still holds its own

    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(one(), other())


async def test_read_decide_commit_loses_no_update_across_processes(
    stores: list[PostgresProtocolStore],
) -> None:
    # Each worker reads the relationship, "decides" its next value and commits it,
    # inside exclusive(): as the pipeline does. Forty of them, spread over two
    # processes and running at once, must count to forty: none decides on a state
    # another has already moved past.
    first, second = stores
    await first.commit(_unit(0, reply_inbox="0"))

    async def step(store: PostgresProtocolStore, number: int) -> None:
        async with store.exclusive("p " + PEER):
            record = await store.relationship(PEER)
            assert record is not None
            await asyncio.sleep(0)  # let the others run while this one "decides"
            unit = _unit(number)
            unit.relationship = replace(record, reply_inbox=str(int(record.reply_inbox or 0) + 1))
            await store.commit(unit)

    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(*(step(first if n % 2 else second, n) for n in range(1, 41)))
    record = await second.relationship(PEER)
    assert record is not None
    assert record.reply_inbox == "40"


async def test_a_block_that_commits_nothing_leaves_nothing(
    stores: list[PostgresProtocolStore],
) -> None:
    first, second = stores

    async def refused() -> None:
        async with first.exclusive("p " + PEER):
            await first.relationship(PEER)
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await refused()
    # The locks went with the rollback: the other process gets them at once.
    async with asyncio.timeout(5), second.exclusive("p " + PEER):
        assert await second.relationship(PEER) is None


async def test_a_lock_not_had_in_time_is_unavailable(postgres_url: str) -> None:
    holder = await PostgresProtocolStore.open(postgres_url)
    impatient = await PostgresProtocolStore.open(postgres_url, lock_timeout=0.2)
    try:
        async with asyncio.timeout(DEADLINE), holder.exclusive("p " + PEER):
            with pytest.raises(StoreUnavailable):
                async with impatient.exclusive("p " + PEER):
                    pass
        # Nothing of the refused attempt lingers: it gets the lock now.
        async with impatient.exclusive("p " + PEER):
            pass
    finally:
        await holder.close()
        await impatient.close()


async def test_lock_ids_are_stable_and_spread() -> None:
    assert lock_id("p " + PEER) == lock_id("p " + PEER)
    ids = {lock_id(f"p did:jwk:{n}") for n in range(10_000)}
    assert len(ids) == 10_000
    assert all(-(2**63) <= value < 2**63 for value in ids)


# -- the shared mailbox ---------------------------------------------------------------------------


async def test_a_poller_never_skips_a_message_committed_by_either_process(
    stores: list[PostgresProtocolStore],
) -> None:
    # The mailbox cursor is the outbox id. Ids are taken when a unit writes, and
    # units commit in any order; the peer's lock makes a peer's ids visible in
    # order, so a poller that moves its cursor past what it saw misses nothing.
    first, second = stores
    count = 60
    seen: list[bytes] = []
    done = asyncio.Event()

    async def poll() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            page = await first.mailbox(PEER, cursor, STAMP, limit=7)
            seen.extend(entry.token for entry in page)
            if page:
                cursor = page[-1].cursor
            elif finished:
                return
            await asyncio.sleep(0)

    async def commit(number: int) -> None:
        await (first if number % 2 else second).commit(_unit(number))

    async with asyncio.timeout(DEADLINE):
        poller = asyncio.create_task(poll())
        await asyncio.gather(*(commit(n) for n in range(count)))
        done.set()
        await poller
    assert sorted(seen) == sorted(f"h.urn:uuid:out-{n}.s".encode() for n in range(count))
    assert len(seen) == count


# -- deliveries -----------------------------------------------------------------------------------


async def test_two_processes_claim_different_deliveries(
    stores: list[PostgresProtocolStore],
) -> None:
    first, second = stores
    peers = [f"did:jwk:peer-{n}" for n in range(30)]
    for number, peer in enumerate(peers):
        await first.commit(_unit(number, peer=peer, deliver_to="https://buyer.test/in"))
    taken = await asyncio.gather(
        first.due_deliveries(now=1e12, limit=20), second.due_deliveries(now=1e12, limit=20)
    )
    ids = [entry.id for entries in taken for entry in entries]
    assert len(ids) == len(set(ids)) == 30, "each entry went to one process only"
    # Claimed by a live process: nobody else gets them, not even the claimer again.
    assert await first.due_deliveries(now=1e12) == []
    assert await second.due_deliveries(now=1e12) == []


async def test_the_claims_of_a_process_that_is_gone_are_free_at_once(
    stores: list[PostgresProtocolStore],
) -> None:
    first, second = stores
    await first.commit(_unit(1, deliver_to="https://buyer.test/in"))
    [claimed] = await first.due_deliveries(now=1e12)
    assert await second.due_deliveries(now=1e12) == []
    await first.close()  # its presence connection closes, as a SIGKILL would close it
    [again] = await second.due_deliveries(now=1e12)
    assert again.id == claimed.id


async def test_a_claim_ends_with_its_lease(stores: list[PostgresProtocolStore]) -> None:
    first, second = stores
    first.claim_lease = 10.0
    await first.commit(_unit(1, deliver_to="https://buyer.test/in"))
    [claimed] = await first.due_deliveries(now=1000.0)
    assert await second.due_deliveries(now=1009.0) == []
    assert await second.next_delivery_at() == 1010.0, "takeable when the lease ends"
    [again] = await second.due_deliveries(now=1010.0)
    assert again.id == claimed.id


async def test_a_claimed_entry_still_holds_back_the_next_one_of_its_peer(
    stores: list[PostgresProtocolStore],
) -> None:
    first, second = stores
    await first.commit(_unit(1, deliver_to="https://buyer.test/in"))
    await first.commit(_unit(2, deliver_to="https://buyer.test/in"))
    [head] = await first.due_deliveries(now=1e12)
    assert head.message_id == "urn:uuid:out-1"
    assert await second.due_deliveries(now=1e12) == [], "the second waits behind the first"
    await first.record_deliveries([DeliveryOutcome(head.id, delivered_at=STAMP)])
    [following] = await second.due_deliveries(now=1e12)
    assert following.message_id == "urn:uuid:out-2"


# -- keys -----------------------------------------------------------------------------------------


async def test_processes_starting_together_share_one_key(
    stores: list[PostgresProtocolStore],
) -> None:
    keys = await asyncio.gather(
        *(store.agent_key("signing", lambda: SigningKey.generate("EdDSA")) for store in stores * 3)
    )
    assert len({key.thumbprint() for key in keys}) == 1
    again = await stores[0].agent_key("signing", lambda: SigningKey.generate("EdDSA"))
    assert again.thumbprint() == keys[0].thumbprint()
