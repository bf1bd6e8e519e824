"""Her personal data store survives a restart, keeps keys private, guards replays
durably, applies a unit all or nothing, and migrates (the runtime's SQLite base)."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.store import (
    BUYER_SCHEMA,
    STORE_FILE,
    ConsentRecord,
    Counterparty,
    DealRecord,
    ExitRecord,
    Grant,
    Journal,
    SharingRecord,
    SqliteBuyerStore,
    Withheld,
)
from vrm_agent.clock import ManualClock
from vrm_agent.sqlite import PROTOCOL_SCHEMA
from vrm_agent.store import ConstraintViolation, InboundConflict, RelationshipRecord, StoredMessage
from vrm_agent.unit import UnitOfWork
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import build_message, encode
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

from .conftest import offer_body

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
DEALER = "https://dealer.example"
AT = "2026-11-23T10:00:00Z"


def _open(path: Path) -> SqliteBuyerStore:
    return SqliteBuyerStore(path / STORE_FILE)


def _offer_unit(pseudonym: str, *, message_id: str | None = None) -> UnitOfWork:
    """A unit taking a signed offer from the dealer, with her journal line."""
    from vrm_protocol.keys import SigningKey

    key = SigningKey.generate("EdDSA")
    payload = build_message(
        MessageType.OFFER,
        offer_body(NOW),
        sender=DEALER,
        to=[pseudonym],
        now=NOW,
        message_id=message_id,
    )
    token = encode(payload, key)
    message = StoredMessage(
        sender=DEALER,
        message_id=payload["id"],
        direction=Direction.RECEIVED,
        type=MessageType.OFFER,
        thread=payload["thread"],
        parent=None,
        peer=DEALER,
        digest=message_digest(token),
        token=token,
        at=AT,
        expires=payload["expires"],
    )
    unit = UnitOfWork(peer=DEALER, relationship=RelationshipRecord(DEALER, RelationshipCore()))
    unit.inbound = message
    unit.receipt = b"r.e.c"
    unit.write(
        Journal(
            DEALER,
            DEALER,
            payload["id"],
            MessageType.OFFER,
            Direction.RECEIVED,
            "inbox",
            "received",
            payload["thread"],
            None,
            AT,
        )
    )
    return unit


async def test_everything_is_there_after_reopening(tmp_path: Path) -> None:
    store = _open(tmp_path)
    pseudonyms = Pseudonyms(store, tmp_path / "keys", ManualClock())
    pseudonyms.prepare()
    pseudonym = await pseudonyms.ensure(DEALER)
    await store.set_profile("contact.email", "sally@example.org")
    await store.add_note("Credit union: good rate on a new-car loan", source="visit", at=AT)
    await store.save_counterparty(Counterparty(DEALER, {"id": DEALER}, {"keys": []}, AT))
    unit = _offer_unit(pseudonym.identifier)
    assert unit.inbound is not None
    offer_id = unit.inbound.message_id
    unit.write(
        ConsentRecord(
            DEALER,
            "urn:2",
            "sha-256:y",
            "urn:3",
            "accept-in-part",
            (Grant("contact.email", ("servicing",)),),
            (Withheld("contact.phone", "marketing"),),
            ("safety",),
            AT,
        ),
        SharingRecord(
            DEALER, pseudonym.identifier, "contact.email", "urn:3", "terms@1", ("servicing",), AT
        ),
        ExitRecord(DEALER, "urn:4", "sha-256:z", {"allowed": True}, AT),
        DealRecord("deal-1", DEALER, offer_id, "urn:5", "urn:6", AT),
    )
    await store.commit(unit)
    await store.close()

    reopened = _open(tmp_path)
    again = Pseudonyms(reopened, tmp_path / "keys", ManualClock())
    restored = await again.known(DEALER)
    assert restored is not None
    assert restored.identifier == pseudonym.identifier
    assert restored.identity.signing_key.kid == pseudonym.identity.signing_key.kid
    assert await reopened.profile() == {"contact.email": "sally@example.org"}
    assert (await reopened.notes())[0]["text"].startswith("Credit union")
    assert (await reopened.counterparty(DEALER)) == Counterparty(
        DEALER, {"id": DEALER}, {"keys": []}, AT
    )
    (entry,) = await reopened.history()
    assert entry.message_id == offer_id
    assert entry.receipt == b"r.e.c"
    assert entry.channel == "inbox"
    assert entry.verified
    assert await reopened.inbound_digest(DEALER, offer_id) == entry.digest
    view = await reopened.offer_view(offer_id)
    assert view is not None
    assert view.body.price.total.amount == "28500"
    consent = (await reopened.consents())[0]
    assert consent.refused == (Withheld("contact.phone", "marketing"),)
    assert [r.category for r in await reopened.shared_with(DEALER)] == ["contact.email"]
    assert (await reopened.exits())[0].receipt_verified is None
    assert [d.offer_id for d in await reopened.deals()] == [offer_id]
    await reopened.close()


async def test_private_keys_are_files_only_the_owner_can_read(tmp_path: Path) -> None:
    store = _open(tmp_path)
    pseudonyms = Pseudonyms(store, tmp_path / "keys", ManualClock())
    pseudonyms.prepare()
    first = await pseudonyms.ensure(DEALER)
    await pseudonyms.ensure("https://other.example")
    assert (await pseudonyms.ensure(DEALER)).identifier == first.identifier  # one per party
    keys = tmp_path / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    files = list(keys.iterdir())
    assert len(files) == 2  # her pseudonyms' keys, and nobody else's
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # The file name says nothing about the pseudonym or the party.
        assert DEALER not in path.name
    await store.close()
    # Nothing private in the database itself.
    database = (tmp_path / STORE_FILE).read_bytes()
    private = first.identity.signing_key.to_private_jwk()["d"]
    assert str(private).encode() not in database


async def test_the_replay_guard_is_durable(tmp_path: Path) -> None:
    store = _open(tmp_path)
    first = _offer_unit("did:jwk:x", message_id="urn:uuid:00000000-0000-4000-8000-000000000001")
    await store.commit(first)
    await store.close()
    reopened = _open(tmp_path)
    again = _offer_unit("did:jwk:x", message_id="urn:uuid:00000000-0000-4000-8000-000000000001")
    with pytest.raises(InboundConflict):
        await reopened.commit(again)
    await reopened.close()


async def test_a_failed_unit_writes_nothing(tmp_path: Path) -> None:
    store = _open(tmp_path)
    unit = _offer_unit("did:jwk:x")
    # Two deals under one id: the second breaks a rule; nothing of the unit stays.
    unit.write(
        DealRecord("deal-1", DEALER, "urn:o", "urn:a", "urn:c", AT),
        DealRecord("deal-1", DEALER, "urn:o", "urn:a", "urn:c", AT),
    )
    with pytest.raises(ConstraintViolation):
        await store.commit(unit)
    assert await store.history() == []
    assert await store.deals() == []
    assert unit.inbound is not None
    assert await store.message(DEALER, unit.inbound.message_id) is None
    await store.close()


async def test_the_store_is_migrated_and_an_earlier_buyers_store_is_refused(
    tmp_path: Path,
) -> None:
    store = _open(tmp_path)
    assert store.schema_versions() == {
        PROTOCOL_SCHEMA.component: len(PROTOCOL_SCHEMA.steps),
        BUYER_SCHEMA.component: len(BUYER_SCHEMA.steps),
    }
    await store.close()
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    connection = sqlite3.connect(legacy / STORE_FILE)
    connection.execute("CREATE TABLE identities (counterparty TEXT PRIMARY KEY)")
    connection.close()
    from vrm_agent.store import StoreError

    with pytest.raises(StoreError, match="earlier version of the reference buyer"):
        _open(legacy)
