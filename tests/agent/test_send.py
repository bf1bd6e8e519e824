"""What an agent sends itself (``Pipeline.send``), and the guard against a lost update.

A message the agent starts (an individual's RFI, acceptance, exit) is signed,
decided by the state machine as SENT, delivered, and committed with its
effects only once the peer took it: a refused move is never delivered, and a
delivery that fails leaves nothing behind. A unit decided on a relationship
another writer changed meanwhile (another process on the same store) is
refused by the store and decided again. Real SQLite stores; the peer is the
delivery callback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from vrm_agent.clock import ManualClock
from vrm_agent.inbox import Delivered, DirectReception, Pipeline, SingleIdentity, Us
from vrm_agent.registry import HandlerRegistry
from vrm_agent.sqlite import SqliteProtocolStore
from vrm_agent.store import RelationshipRecord, StaleRelationship, StoredMessage
from vrm_agent.unit import UnitOfWork, outgoing
from vrm_protocol.codec import build_message, encode
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.keys import PairwiseIdentity, SigningKey, key_resolver
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.limits import DEFAULT_LIMITS
from vrm_protocol.models import (
    Message,
    MessageRef,
    MoneyRange,
    OfferAcceptanceBody,
    PersonalRfiBody,
    RfiIntent,
    to_payload,
)
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import Role

VENDOR = "https://vendor.test"


def _rfi(clock: ManualClock) -> PersonalRfiBody:
    return PersonalRfiBody(
        intent=RfiIntent(category="vehicles.cars", summary="A family car"),
        budget=MoneyRange.model_validate({"max": {"amount": "30000", "currency": "GBP"}}),
        response_by="2027-01-11T09:00:00Z",
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteProtocolStore]:
    opened = SqliteProtocolStore(tmp_path / "agent.sqlite3")
    yield opened
    await opened.close()


def _pipeline(store: SqliteProtocolStore, clock: ManualClock) -> Pipeline:
    identity = PairwiseIdentity.generate()
    registry: HandlerRegistry[object] = HandlerRegistry()
    return Pipeline(
        role=Role.BUYER,
        store=store,
        handlers=registry.bind(object()),
        identities=SingleIdentity(Us(identity.identifier, identity.signing_key, None)),
        reception=DirectReception(identity.identifier, key_resolver(None), DEFAULT_LIMITS),
        clock=clock,
    )


async def test_a_message_is_committed_with_its_effects_once_the_peer_took_it(
    store: SqliteProtocolStore,
) -> None:
    clock = ManualClock()
    pipeline = _pipeline(store, clock)
    seen: list[tuple[StoredMessage, Message]] = []

    async def deliver(stored: StoredMessage, model: Message) -> Delivered:
        # Delivered under the relationship's lock, before anything is committed.
        assert await store.relationship(VENDOR) is None
        seen.append((stored, model))
        return Delivered(b"the.peer's.receipt")

    reply = outgoing(_rfi(clock), thread=None, parent=None)
    sent = await pipeline.send(VENDOR, reply, deliver=deliver, backdate=timedelta(seconds=17))
    assert sent.applied
    assert sent.delivered.receipt == b"the.peer's.receipt"
    ((stored, model),) = seen
    assert stored.message_id == reply.id == model.id
    # Copies to several parties are decorrelated by their `created` (spec §12).
    assert parse_timestamp(model.created) == clock.now() - timedelta(seconds=17)
    record = await store.relationship(VENDOR)
    assert record is not None
    assert record.core.state is RelationshipState.ENQUIRY
    assert record.version == 1
    kept = await store.message(stored.sender, stored.message_id)
    assert kept is not None
    assert kept.token == stored.token
    # Taken by the peer already: nothing owed, but kept in the mailbox (D5).
    entries = await store.outbox_entries(VENDOR)
    assert [entry.status.value for entry in entries] == ["delivered"]
    assert await store.next_delivery_at() is None


async def test_a_refused_delivery_leaves_nothing_behind(store: SqliteProtocolStore) -> None:
    clock = ManualClock()
    pipeline = _pipeline(store, clock)

    async def refuse(stored: StoredMessage, model: Message) -> Delivered:
        raise RemoteProtocolError(ErrorCode.UNTRUSTED_ISSUER, "refused by the peer")

    with pytest.raises(RemoteProtocolError):
        await pipeline.send(VENDOR, outgoing(_rfi(clock), thread=None, parent=None), deliver=refuse)
    assert await store.relationship(VENDOR) is None
    assert await store.outbox_entries(VENDOR) == []


async def test_a_move_the_state_machine_refuses_is_never_delivered(
    store: SqliteProtocolStore,
) -> None:
    clock = ManualClock()
    pipeline = _pipeline(store, clock)
    delivered: list[str] = []

    async def deliver(stored: StoredMessage, model: Message) -> Delivered:
        delivered.append(stored.message_id)
        return Delivered()

    acceptance = OfferAcceptanceBody(
        offer=MessageRef(
            id="urn:uuid:00000000-0000-4000-8000-000000000001", digest="sha-256:" + "A" * 43
        )
    )
    draft = outgoing(acceptance, thread=None, parent=None)
    with pytest.raises(LocalProtocolError):
        await pipeline.check_send(VENDOR, draft)
    with pytest.raises(LocalProtocolError) as refused:
        await pipeline.send(VENDOR, draft, deliver=deliver)
    assert refused.value.code is ErrorCode.ILLEGAL_TRANSITION
    assert delivered == []
    assert await store.relationship(VENDOR) is None
    # A legal move is allowed by the dry run.
    transition = await pipeline.check_send(VENDOR, outgoing(_rfi(clock), thread=None, parent=None))
    assert transition.state is RelationshipState.ENQUIRY


async def test_a_unit_decided_on_a_relationship_changed_meanwhile_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.sqlite3"
    first, second = SqliteProtocolStore(path), SqliteProtocolStore(path)
    try:
        peer = VENDOR
        created = UnitOfWork(peer=peer, relationship=RelationshipRecord(peer, RelationshipCore()))
        await first.commit(created)
        read_by_first = await first.relationship(peer)
        read_by_second = await second.relationship(peer)
        assert read_by_first is not None
        assert read_by_second is not None
        assert read_by_first.version == read_by_second.version == 1
        moved = RelationshipCore(RelationshipState.ENQUIRY)
        await second.commit(
            UnitOfWork(peer=peer, relationship=RelationshipRecord(peer, moved, version=1))
        )
        # The first writer decided on version 1: its unit is refused, nothing applied.
        with pytest.raises(StaleRelationship):
            await first.commit(
                UnitOfWork(
                    peer=peer,
                    relationship=RelationshipRecord(
                        peer, RelationshipCore(RelationshipState.CLOSED), version=1
                    ),
                )
            )
        after = await first.relationship(peer)
        assert after is not None
        assert after.core == moved
        assert after.version == 2
        # A relationship found absent must still be absent.
        with pytest.raises(StaleRelationship):
            await first.commit(
                UnitOfWork(peer=peer, relationship=RelationshipRecord(peer, moved, version=0))
            )
    finally:
        await first.close()
        await second.close()


class OnceStale(SqliteProtocolStore):
    """The real store, but the first relationship it reads is one version behind:
    as if another process committed between the read and the commit."""

    stale_reads = 1

    async def relationship(self, peer: str) -> RelationshipRecord | None:
        record = await super().relationship(peer)
        if record is not None and self.stale_reads:
            self.stale_reads -= 1
            return RelationshipRecord(record.peer, record.core, version=(record.version or 1) - 1)
        return record


async def test_an_inbound_message_decided_on_a_stale_relationship_is_decided_again(
    tmp_path: Path,
) -> None:
    store = OnceStale(tmp_path / "vendor.sqlite3")
    try:
        clock = ManualClock()
        vendor_key = SigningKey.generate("EdDSA")
        registry: HandlerRegistry[object] = HandlerRegistry()
        pipeline = Pipeline(
            role=Role.VENDOR,
            store=store,
            handlers=registry.bind(object()),
            identities=SingleIdentity(Us(VENDOR, vendor_key, None)),
            reception=DirectReception(VENDOR, key_resolver(None), DEFAULT_LIMITS),
            clock=clock,
        )
        buyer = PairwiseIdentity.generate()
        await store.commit(
            UnitOfWork(
                peer=buyer.identifier,
                relationship=RelationshipRecord(buyer.identifier, RelationshipCore()),
            )
        )
        token = encode(
            build_message(
                "personal-rfi",
                to_payload(_rfi(clock)),
                sender=buyer.identifier,
                to=[VENDOR],
                now=clock.now(),
            ),
            buyer.signing_key,
        )
        answer = await pipeline.receive(token)
        assert answer.status == 202
        assert store.stale_reads == 0  # the first decision was refused, the second taken
        record = await store.relationship(buyer.identifier)
        assert record is not None
        assert record.core.state is RelationshipState.ENQUIRY
    finally:
        await store.close()
