"""The personal data store survives a restart; keys stay private."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reference_buyer.store import ConsentRecord, ExitRecord, OfferRecord, SharingRecord, SqliteStore
from vrm_protocol.keys import PairwiseIdentity

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _payload(message_id: str, sender: str) -> dict[str, object]:
    return {
        "vrm": "1.0",
        "type": "offer",
        "id": message_id,
        "thread": message_id,
        "from": sender,
        "to": ["did:jwk:x"],
        "created": "2026-11-23T10:00:00Z",
        "expires": "2026-11-24T10:00:00Z",
        "body": {"basis": "indicative"},
    }


def test_everything_is_there_after_reopening(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    identity = PairwiseIdentity.generate()
    store.create_identity("https://dealer.example", identity, now=NOW)
    store.set_profile("contact.email", "sally@example.org")
    store.add_note("Credit union: good rate on a new-car loan", source="visit", now=NOW)
    store.record_message(
        direction="in",
        channel="inbox",
        payload=_payload("urn:1", "https://d"),
        counterparty="https://dealer.example",
        token=b"a.b.c",
        digest="sha-256:x",
        verified=True,
        now=NOW,
        receipt=b"r.e.c",
    )
    store.save_offer(
        OfferRecord(
            "urn:1",
            "https://dealer.example",
            "urn:1",
            "sha-256:x",
            "indicative",
            "open",
            True,
            {"basis": "indicative"},
            "2026-11-23T10:00:00Z",
            "in",
        )
    )
    store.record_consent(
        ConsentRecord(
            "https://dealer.example",
            "urn:2",
            "sha-256:y",
            "urn:3",
            "accept-in-part",
            [{"item": "contact.email"}],
            [{"item": "contact.phone", "reason": "marketing"}],
            ["safety"],
            "2026-11-23T10:00:00Z",
        )
    )
    store.log_sharing(
        [
            SharingRecord(
                "https://dealer.example",
                identity.identifier,
                "contact.email",
                "urn:3",
                "terms@1",
                ("servicing",),
                "2026-11-23T10:00:00Z",
            )
        ]
    )
    store.record_exit(
        ExitRecord(
            "https://dealer.example",
            "urn:4",
            "sha-256:z",
            {"allowed": True},
            "2026-11-23T10:00:00Z",
            None,
            None,
            None,
            (),
        )
    )
    store.close()

    reopened = SqliteStore(tmp_path)
    restored = reopened.identity_for("https://dealer.example")
    assert restored is not None
    assert restored.identifier == identity.identifier
    assert restored.key.kid == identity.kid
    assert reopened.profile() == {"contact.email": "sally@example.org"}
    assert reopened.notes()[0]["text"].startswith("Credit union")
    message = reopened.inbound("https://d", "urn:1")
    assert message is not None
    assert message.token == b"a.b.c"
    assert message.receipt == b"r.e.c"
    assert reopened.seen("https://d", "urn:1") == "sha-256:x"
    assert reopened.offer("urn:1") is not None
    assert reopened.consents()[0].refused == [{"item": "contact.phone", "reason": "marketing"}]
    assert [r.category for r in reopened.shared_with("https://dealer.example")] == ["contact.email"]
    assert reopened.exits()[0].receipt_verified is None
    assert reopened.threads("https://dealer.example") == [
        {
            "thread": "urn:1",
            "counterparty": "https://dealer.example",
            "messages": 1,
            "last": "2026-11-23T10:00:00Z",
            "started_by": "offer",
        }
    ]
    reopened.close()


def test_private_keys_are_files_only_the_owner_can_read(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    identity = PairwiseIdentity.generate()
    store.create_identity("https://dealer.example", identity, now=NOW)
    store.create_identity("https://other.example", PairwiseIdentity.generate(), now=NOW)
    keys = tmp_path / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    files = list(keys.iterdir())
    assert len(files) == 2  # her pseudonyms' keys, and nobody else's
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Nothing private in the database itself.
    database = (tmp_path / "buyer.sqlite3").read_bytes()
    assert identity.signing_key.to_private_jwk()["d"].encode() not in database
    store.close()


def test_the_replay_guard_is_durable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    args = dict(
        direction="in",
        channel="inbox",
        counterparty="https://dealer.example",
        token=b"a.b.c",
        digest="sha-256:x",
        verified=True,
        now=NOW,
    )
    store.record_message(payload=_payload("urn:1", "https://d"), **args)  # type: ignore[arg-type]
    store.close()
    reopened = SqliteStore(tmp_path)
    with pytest.raises(sqlite3.IntegrityError):
        reopened.record_message(payload=_payload("urn:1", "https://d"), **args)  # type: ignore[arg-type]
    # Another sender may use the same id; outbound messages are not guarded.
    reopened.record_message(payload=_payload("urn:1", "https://other"), **args)  # type: ignore[arg-type]
    reopened.close()


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)

    def crash_inside_a_transaction() -> None:
        with store.transaction():
            store.set_profile("contact.email", "sally@example.org")
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        crash_inside_a_transaction()
    assert store.profile() == {}
    store.close()
