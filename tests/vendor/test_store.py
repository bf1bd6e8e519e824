"""The vendor's SQLite store: schema and migrations, durability settings, atomic
commits, and group commit (several units of work in one transaction, each all or
nothing on its own)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reference_vendor.store import (
    MIGRATIONS,
    Commit,
    DataRow,
    DealRow,
    InboundConflict,
    MessageRow,
    RelationshipRow,
    SqliteVendorStore,
)

PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"
OTHER_PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImJiYmIifQ"
THIRD_PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImNjY2MifQ"


def _message(message_id: str, digest: str = "sha-256:" + "A" * 43, peer: str = PEER) -> MessageRow:
    return MessageRow(
        sender=peer,
        message_id=message_id,
        direction="in",
        type="personal-rfi",
        thread=message_id,
        parent=None,
        peer_id=peer,
        digest=digest,
        token=b"header.payload.signature",
        at="2026-11-23T10:00:00Z",
    )


def _relationship(state: str = "enquiry", peer: str = PEER) -> RelationshipRow:
    return RelationshipRow(peer_id=peer, state=state, snapshot={"state": state})


def _data(item: str, peer: str = PEER) -> DataRow:
    return DataRow(
        peer,
        item,
        "x@example.org",
        ("servicing",),
        "2030-01-01T00:00:00Z",
        "urn:uuid:1",
        "2026-11-23T10:00:00Z",
    )


def _deal(offer_id: str, peer: str = PEER) -> DealRow:
    return DealRow(
        "urn:uuid:deal", peer, offer_id, "urn:uuid:acceptance", "100", "EUR", {}, "2026-11-23"
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteVendorStore]:
    opened = SqliteVendorStore(tmp_path / "vendor.sqlite3")
    yield opened
    opened.close()


def test_schema_is_migrated_once_and_durable_settings_are_on(tmp_path: Path) -> None:
    first = SqliteVendorStore(tmp_path / "v.sqlite3")
    assert first.schema_version() == len(MIGRATIONS)
    first.close()
    again = SqliteVendorStore(tmp_path / "v.sqlite3")  # reopening applies nothing twice
    assert again.schema_version() == len(MIGRATIONS)
    journal = again._query("PRAGMA journal_mode")[0][0]
    synchronous = again._query("PRAGMA synchronous")[0][0]
    foreign_keys = again._query("PRAGMA foreign_keys")[0][0]
    again.close()
    assert (journal, synchronous, foreign_keys) == ("wal", 2, 1)  # 2 = FULL


def test_a_commit_is_all_or_nothing(store: SqliteVendorStore) -> None:
    store.apply(Commit(relationship=_relationship(), inbound=_message("urn:uuid:1")))
    failing = Commit(
        relationship=_relationship("negotiation"),
        inbound=_message("urn:uuid:9", digest="sha-256:" + "B" * 43),
        receipt_token=b"receipt",
        data=[_data("contact.email")],
        deals=[_deal("urn:uuid:no-such-offer")],  # the offer it closes does not exist
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.apply(failing)
    relationship = store.relationship(PEER)
    assert relationship is not None
    assert relationship.state == "enquiry"
    assert store.data_for(PEER) == []
    assert store.inbound_digest(PEER, "urn:uuid:9") is None
    assert store.receipt_for_digest("sha-256:" + "B" * 43) is None


def test_a_used_sender_and_id_is_refused_with_what_is_on_record(store: SqliteVendorStore) -> None:
    store.apply(
        Commit(relationship=_relationship(), inbound=_message("urn:uuid:1"), receipt_token=b"r.1")
    )
    replay = Commit(
        relationship=_relationship("negotiation"),
        inbound=_message("urn:uuid:1", digest="sha-256:" + "B" * 43),
        receipt_token=b"r.2",
        data=[_data("contact.email")],
    )
    with pytest.raises(InboundConflict) as refused:
        store.apply(replay)
    assert (refused.value.digest, refused.value.receipt) == ("sha-256:" + "A" * 43, b"r.1")
    relationship = store.relationship(PEER)
    assert relationship is not None
    assert relationship.state == "enquiry"
    assert store.data_for(PEER) == []
    assert store.inbound_digest(PEER, "urn:uuid:1") == "sha-256:" + "A" * 43


@contextmanager
def _writer_busy(store: SqliteVendorStore) -> Iterator[None]:
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


async def _commit_as_one_batch(
    store: SqliteVendorStore, commits: list[Commit]
) -> list[BaseException | None]:
    """Commit ``commits`` through the asynchronous API, all in the writer's same
    transaction; each one's outcome (``None`` when it committed)."""
    with _writer_busy(store):
        pending = [asyncio.ensure_future(store.commit(commit)) for commit in commits]
        await asyncio.sleep(0)  # each task runs up to its wait: its unit is queued
        assert len(store._queue) == len(commits)
    return await asyncio.gather(*pending, return_exceptions=True)


async def test_a_failing_unit_is_undone_alone_and_the_rest_of_its_batch_commits(
    store: SqliteVendorStore,
) -> None:
    before = store.write_stats()
    good, bad, also_good = (
        Commit(
            relationship=_relationship(peer=peer),
            inbound=_message(f"urn:uuid:{n}", peer=peer, digest=f"sha-256:{n}" + "A" * 42),
            receipt_token=f"receipt.{n}".encode(),
            data=[_data("contact.email", peer=peer)],
            deals=[_deal("urn:uuid:no-such-offer", peer=peer)] if n == 2 else [],
        )
        for n, peer in enumerate((PEER, OTHER_PEER, THIRD_PEER), start=1)
    )
    outcomes = await _commit_as_one_batch(store, [good, bad, also_good])

    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    after = store.write_stats()
    # One transaction for the held writer's unit, one for the three: one fsync for three messages.
    assert after.transactions == before.transactions + 2
    assert after.units == before.units + 4
    assert after.largest_batch == 3
    for peer, n in ((PEER, 1), (THIRD_PEER, 3)):
        assert store.receipt_for_digest(f"sha-256:{n}" + "A" * 42) == f"receipt.{n}".encode()
        assert [d.item for d in store.data_for(peer)] == ["contact.email"]
        assert store.relationship(peer) is not None
    # The failing unit left nothing, although its first statements had succeeded.
    assert store.relationship(OTHER_PEER) is None
    assert store.inbound_digest(OTHER_PEER, "urn:uuid:2") is None
    assert store.data_for(OTHER_PEER) == []
    assert store.deals_for(OTHER_PEER) == []


async def test_duplicates_within_one_batch_get_what_the_first_committed(
    store: SqliteVendorStore,
) -> None:
    first_digest, other_digest = "sha-256:" + "A" * 43, "sha-256:" + "B" * 43

    def copy(digest: str, receipt: bytes, item: str) -> Commit:
        return Commit(
            relationship=_relationship(),
            inbound=_message("urn:uuid:7", digest=digest),
            receipt_token=receipt,
            data=[_data(item)],
        )

    first = copy(first_digest, b"receipt.first", "contact.email")
    identical = copy(first_digest, b"receipt.second", "contact.phone")
    replay = copy(other_digest, b"receipt.third", "vehicle.vin")
    outcomes = await _commit_as_one_batch(store, [first, identical, replay])

    assert outcomes[0] is None
    resent, replayed = outcomes[1], outcomes[2]
    assert isinstance(resent, InboundConflict)
    assert isinstance(replayed, InboundConflict)
    # The identical copy learns the first copy's receipt (the inbox answers 200 with it)...
    assert (resent.digest, resent.receipt) == (first_digest, b"receipt.first")
    # ...the other message under the same (sender, id) learns it is a replay (409).
    assert replayed.digest == first_digest != other_digest
    assert store.receipt_for_digest(first_digest) == b"receipt.first"
    assert store.receipt_for_digest(other_digest) is None
    assert [d.item for d in store.data_for(PEER)] == ["contact.email"]


def test_replay_key_and_receipt_lookup(store: SqliteVendorStore) -> None:
    message = _message("urn:uuid:2")
    store.apply(Commit(relationship=_relationship(), inbound=message, receipt_token=b"r.e.c"))
    assert store.receipt_for_digest(message.digest) == b"r.e.c"
    assert store.receipt_for_digest("sha-256:" + "Z" * 43) is None
    assert store.inbound_digest(PEER, "urn:uuid:2") == message.digest
    assert store.inbound_digest(PEER, "urn:uuid:3") is None
    assert store.thread_peer("urn:uuid:2") == PEER


def test_retention_sweep_deletes_and_records(store: SqliteVendorStore) -> None:
    def data(item: str, until: str) -> DataRow:
        return DataRow(PEER, item, "v", ("servicing",), until, "urn:uuid:4", "2026-01-01T00:00:00Z")

    store.apply(
        Commit(
            relationship=_relationship(),
            data=[
                data("contact.email", "2027-01-01T00:00:00Z"),
                data("vehicle.vin", "2029-01-01T00:00:00Z"),
            ],
        )
    )
    assert store.sweep_retention("2026-12-31T23:59:59Z") == []
    deleted = store.sweep_retention("2027-01-01T00:00:00Z")
    assert [(d.item, d.reason) for d in deleted] == [("contact.email", "retention-expired")]
    assert [d.item for d in store.data_for(PEER)] == ["vehicle.vin"]
    assert [d.item for d in store.deletions_for(PEER)] == ["contact.email"]


def test_outbox_delivers_in_order_per_peer(store: SqliteVendorStore) -> None:
    def out(message_id: str) -> MessageRow:
        row = _message(message_id)
        return MessageRow(
            "http://vendor.test",
            message_id,
            "out",
            "offer",
            row.thread,
            None,
            PEER,
            row.digest.replace("A", "C"),
            b"t",
            row.at,
        )

    store.apply(
        Commit(
            relationship=_relationship(),
            outbound=[
                (out("urn:uuid:5"), "http://buyer.test/in"),
                (out("urn:uuid:6"), "http://buyer.test/in"),
            ],
        )
    )
    first, second = store.outbox_for(PEER)
    assert [r.message_id for r in store.due_outbox(now=1e12)] == ["urn:uuid:5"]
    store.mark_retry(first.id, next_attempt=1e13, error="503", final=False)
    assert store.due_outbox(now=1e12) == [], "the second waits behind the first"
    store.mark_delivered(first.id, "2026-11-23T10:00:00Z")
    assert [r.message_id for r in store.due_outbox(now=1e12)] == [second.message_id]


async def test_reads_see_the_last_commit_while_the_writer_holds_a_transaction(
    store: SqliteVendorStore,
) -> None:
    store.apply(Commit(relationship=_relationship(), inbound=_message("urn:uuid:3")))
    with _writer_busy(store):
        # WAL: a reader never waits for the writer, whether the read runs on the
        # caller's thread (a point read) or on the store's thread pool (a scan).
        relationship = await store.call(store.relationship, PEER)
        digest = await store.call(store.inbound_digest, PEER, "urn:uuid:3")
        offers = await store.call(store.offers_for, PEER)
    assert relationship is not None
    assert relationship.state == "enquiry"
    assert digest == "sha-256:" + "A" * 43
    assert offers == []


def test_reads_from_several_threads_then_a_closed_store_refuses_them(tmp_path: Path) -> None:
    store = SqliteVendorStore(tmp_path / "vendor.sqlite3")
    store.apply(Commit(relationship=_relationship(), inbound=_message("urn:uuid:4")))
    seen: list[str | None] = []
    reader = threading.Thread(target=lambda: seen.append(store.inbound_digest(PEER, "urn:uuid:4")))
    reader.start()
    reader.join()
    assert seen == [store.inbound_digest(PEER, "urn:uuid:4")] == ["sha-256:" + "A" * 43]
    store.close()
    with pytest.raises(RuntimeError):
        store.relationship(PEER)
