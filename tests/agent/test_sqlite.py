"""The runtime's SQLite base: migrations, durability settings, files, group commit,
readers that never wait for the writer, and a closed store.

What any store must do is the contract (``tests/vendor/test_store_contract.py``);
this is how the SQLite implementation does it. An agent's own tables and writes
are those of a small test agent here (a schema component ``notes``).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from vrm_agent.sqlite import PROTOCOL_SCHEMA, RELATIONSHIP, Schema, SqliteProtocolStore
from vrm_agent.store import (
    ConstraintViolation,
    RelationshipRecord,
    StoreClosed,
    StoredMessage,
    StoreError,
)
from vrm_agent.unit import DomainWrite, UnitOfWork
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"

#: A test agent's own table: a note per peer, naming an offer of the ledger.
NOTES = Schema(
    "notes",
    (
        """
        CREATE TABLE notes (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL,
            text TEXT NOT NULL,
            offer_id TEXT,
            FOREIGN KEY (relationship, offer_id) REFERENCES ledger_offers (relationship, id)
        )
        """,
    ),
)


@dataclass(frozen=True, slots=True)
class Note(DomainWrite):
    peer: str
    text: str
    offer_id: str | None = None


class NotesStore(SqliteProtocolStore):
    """The protocol store of a test agent that keeps notes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, (NOTES,), name="notes-store")

    def apply_domain(self, conn: sqlite3.Connection, write: DomainWrite) -> None:
        if isinstance(write, Note):
            conn.execute(
                f"INSERT INTO notes (relationship, text, offer_id) VALUES ({RELATIONSHIP}, ?, ?)",
                (write.peer, write.text, write.offer_id),
            )
        else:
            super().apply_domain(conn, write)

    def notes(self, peer: str) -> list[str]:
        return [
            row[0]
            for row in self._read(
                f"SELECT text FROM notes WHERE relationship = {RELATIONSHIP}", (peer,)
            )
        ]


def _unit(message_id: str, peer: str = PEER) -> UnitOfWork:
    inbound = StoredMessage(
        sender=peer,
        message_id=message_id,
        direction=Direction.RECEIVED,
        type=MessageType.PERSONAL_RFI,
        thread=message_id,
        parent=None,
        peer=peer,
        digest="sha-256:" + (message_id[-1] * 43),
        token=b"h.p.s",
        at="2026-11-23T10:00:00Z",
        expires="2026-11-24T10:00:00Z",
    )
    writes: list[DomainWrite] = [Note(peer, "hello")]
    return UnitOfWork(
        peer=peer,
        relationship=RelationshipRecord(peer, RelationshipCore()),
        inbound=inbound,
        receipt=b"r",
        writes=list(writes),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[NotesStore]:
    opened = NotesStore(tmp_path / "agent.sqlite3")
    yield opened
    await opened.close()


def test_each_component_is_migrated_once_and_durable_settings_are_on(tmp_path: Path) -> None:
    first = NotesStore(tmp_path / "v.sqlite3")
    expected = {"vrm_agent": len(PROTOCOL_SCHEMA.steps), "notes": len(NOTES.steps)}
    assert first.schema_versions() == expected
    first.close_blocking()
    again = NotesStore(tmp_path / "v.sqlite3")  # reopening applies nothing twice
    assert again.schema_versions() == expected
    journal = again._read("PRAGMA journal_mode")[0][0]
    synchronous = again._read("PRAGMA synchronous")[0][0]
    foreign_keys = again._read("PRAGMA foreign_keys")[0][0]
    again.close_blocking()
    assert (journal, synchronous, foreign_keys) == ("wal", 2, 1)  # 2 = FULL


def test_a_later_step_is_applied_to_a_store_that_has_the_earlier_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    one = Schema("extra", ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",))
    SqliteProtocolStore(path, (one,)).close_blocking()
    two = Schema(
        "extra",
        (*one.steps, lambda conn: conn.execute("ALTER TABLE notes ADD COLUMN at TEXT")),
    )
    grown = SqliteProtocolStore(path, (two,))
    assert grown.schema_versions()["extra"] == 2
    assert [row[1] for row in grown._read("PRAGMA table_info(notes)")] == ["id", "text", "at"]
    grown.close_blocking()


def test_a_store_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    NotesStore(path).close_blocking()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99 WHERE component = 'notes'")
    with pytest.raises(StoreError, match="newer version"):
        NotesStore(path)


def test_the_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        store = NotesStore(tmp_path / "v.sqlite3")
        store._write_blocking(lambda conn: conn.execute("INSERT INTO settings VALUES ('a', 'b')"))
        store.close_blocking()
    finally:
        os.umask(previous)
    for file in tmp_path.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


@contextmanager
def _writer_busy(store: NotesStore) -> Iterator[None]:
    """Keep the store's writer inside a transaction until the block ends, so every
    unit of work submitted meanwhile is queued, then taken as one batch."""
    inside, release = threading.Event(), threading.Event()

    def wait_for_release(conn: sqlite3.Connection) -> None:
        inside.set()
        release.wait(timeout=30)

    holding = store._submit(wait_for_release)
    assert inside.wait(timeout=30)
    try:
        yield
    finally:
        release.set()
        holding.result(timeout=30)


async def test_waiting_units_share_one_transaction_and_fail_alone(
    store: NotesStore,
) -> None:
    before = store.write_stats()
    peers = [PEER[:-4] + suffix for suffix in ("AAAA", "BBBB", "CCCC")]
    units = [_unit(f"urn:uuid:{n}", peer) for n, peer in enumerate(peers, start=1)]
    # The second unit's deal names an offer its relationship never held.
    units[1].writes.append(Note(peers[1], "about an offer", "urn:uuid:none"))
    with _writer_busy(store):
        pending = [asyncio.ensure_future(store.commit(unit)) for unit in units]
        await asyncio.sleep(0)  # each task runs up to its wait: its unit is queued
        assert len(store._queue) == len(units)
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], ConstraintViolation)
    after = store.write_stats()
    # One transaction for the held writer's unit, one for the three: one fsync for three messages.
    assert after.transactions == before.transactions + 2
    assert after.units == before.units + 4
    assert after.largest_batch == 3
    assert await store.relationship(peers[1]) is None
    assert await store.relationship(peers[2]) is not None


async def test_reads_see_the_last_commit_while_the_writer_holds_a_transaction(
    store: NotesStore,
) -> None:
    await store.commit(_unit("urn:uuid:3"))
    with _writer_busy(store):
        # WAL: a reader never waits for the writer, on the caller's thread (a
        # point read) or on the store's reader threads (a scan).
        relationship = await store.relationship(PEER)
        digest = await store.inbound_digest(PEER, "urn:uuid:3")
        notes = await store._scan(lambda: store.notes(PEER))
    assert relationship is not None
    assert digest == "sha-256:" + "3" * 43
    assert notes == ["hello"]


async def test_reads_from_several_threads_then_a_closed_store_refuses_them(
    tmp_path: Path,
) -> None:
    store = NotesStore(tmp_path / "agent.sqlite3")
    await store.commit(_unit("urn:uuid:4"))
    seen: list[str | None] = []
    reader = threading.Thread(
        target=lambda: seen.append(asyncio.run(store.inbound_digest(PEER, "urn:uuid:4")))
    )
    reader.start()
    reader.join()
    assert seen == [await store.inbound_digest(PEER, "urn:uuid:4")] == ["sha-256:" + "4" * 43]
    await store.close()
    with pytest.raises(StoreClosed):
        await store.relationship(PEER)
    with pytest.raises(StoreClosed):
        await store.commit(_unit("urn:uuid:5"))
