"""The vendor's SQLite store: schema and migrations, durability settings, atomic commits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reference_vendor.store import (
    MIGRATIONS,
    Commit,
    DataRow,
    MessageRow,
    RelationshipRow,
    SqliteVendorStore,
)

PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"


def _message(message_id: str, digest: str = "sha-256:" + "A" * 43) -> MessageRow:
    return MessageRow(
        sender=PEER,
        message_id=message_id,
        direction="in",
        type="personal-rfi",
        thread=message_id,
        parent=None,
        peer_id=PEER,
        digest=digest,
        token=b"header.payload.signature",
        at="2026-11-23T10:00:00Z",
    )


def _relationship(state: str = "enquiry") -> RelationshipRow:
    return RelationshipRow(peer_id=PEER, state=state, snapshot={"state": state})


@pytest.fixture
def store(tmp_path: Path) -> SqliteVendorStore:
    opened = SqliteVendorStore(tmp_path / "vendor.sqlite3")
    yield opened  # type: ignore[misc]
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
        inbound=_message("urn:uuid:1", digest="sha-256:" + "B" * 43),  # (sender, id) is taken
        data=[
            DataRow(
                PEER,
                "contact.email",
                "x@example.org",
                ("servicing",),
                "2030-01-01T00:00:00Z",
                "urn:uuid:1",
                "2026-11-23T10:00:00Z",
            )
        ],
        receipt_token=b"receipt",
    )
    with pytest.raises(sqlite3.IntegrityError):
        store.apply(failing)
    relationship = store.relationship(PEER)
    assert relationship is not None
    assert relationship.state == "enquiry"
    assert store.data_for(PEER) == []
    assert store.inbound_digest(PEER, "urn:uuid:1") == "sha-256:" + "A" * 43


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
