"""The vendor store's contract: what any implementation of
:class:`reference_vendor.store.VendorStore` must do, judged through the interface only.

Every test takes an opened store from the ``store`` fixture, which is
parametrised by backend (``STORES``): SQLite, and PostgreSQL on a real server
the test session starts (``tests/conftest.py``), each running these tests unchanged.
Nothing here names a database, a table or an SQL error: units of work go in
through :meth:`commit`, and what the store holds comes back through its typed
reads. The implementation's own mechanics (group commit, WAL, migrations) are
tested beside it (``test_store_sqlite.py``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reference_vendor.store import (
    ConsentRow,
    DataRow,
    DealRow,
    DeletionRow,
    EraseData,
    GrantRevokedRow,
    GrantRow,
    NotificationsChosen,
    OfferTerms,
    Preferences,
    Reengagement,
    SqliteVendorStore,
    SuppressedRow,
    VendorStore,
)
from reference_vendor.store_postgres import PostgresVendorStore
from vrm_agent.store import (
    ConstraintViolation,
    DeliveryOutcome,
    DeliveryStanding,
    InboundConflict,
    RelationshipRecord,
    StoreClosed,
    StoredMessage,
)
from vrm_agent.unit import Outbound, UnitOfWork
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.ledger import (
    DealAccepted,
    Effect,
    ExitCompleted,
    LedgerQuery,
    MemoryLedger,
    OfferOpened,
    OfferRecord,
    OfferStatus,
    OfferStatusChanged,
    OpenOffersLapsed,
    RelationshipCore,
    RequestClosed,
    RequestOpened,
    RequestRecord,
)
from vrm_protocol.state_machine import Direction, RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

VENDOR = "https://vendor.test"
PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImFhYWEifQ"
OTHER_PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImJiYmIifQ"
THIRD_PEER = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6ImNjY2MifQ"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STAMP = format_timestamp(NOW)
LATER = format_timestamp(NOW + timedelta(days=1))

#: A store for a fresh (or, reopened, the same) location: each backend's factory.
Opener = Callable[[], Awaitable[VendorStore]]


async def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    async def open_store() -> VendorStore:
        return await asyncio.to_thread(SqliteVendorStore, tmp_path / "vendor.sqlite3")

    return open_store


async def _postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    # A fresh database on the session's real server (tests/conftest.py).
    url: str = request.getfixturevalue("postgres_url")

    async def open_store() -> VendorStore:
        return await PostgresVendorStore.open(url)

    return open_store


#: The backends the contract runs against.
STORES: dict[str, Callable[[pytest.FixtureRequest, Path], Awaitable[Opener]]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


@pytest.fixture(params=sorted(STORES))
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return await STORES[request.param](request, tmp_path)


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[VendorStore]:
    opened = await opener()
    yield opened
    await opened.close()


# -- builders ------------------------------------------------------------------------------------


def _digest(seed: str) -> str:
    return "sha-256:" + (seed * 43)[:43]


def _message(
    message_id: str,
    *,
    peer: str = PEER,
    direction: Direction = Direction.RECEIVED,
    digest: str = _digest("A"),
    thread: str | None = None,
    parent: str | None = None,
    message_type: MessageType = MessageType.PERSONAL_RFI,
    expires: str = LATER,
) -> StoredMessage:
    return StoredMessage(
        sender=peer if direction is Direction.RECEIVED else VENDOR,
        message_id=message_id,
        direction=direction,
        type=message_type,
        thread=thread or message_id,
        parent=parent,
        peer=peer,
        digest=digest,
        token=f"header.{message_id}.signature".encode(),
        at=STAMP,
        expires=expires,
    )


def _unit(
    peer: str = PEER,
    *,
    state: RelationshipState = RelationshipState.ENQUIRY,
    inbound: StoredMessage | None = None,
    receipt: bytes | None = None,
    effects: list[Effect] | None = None,
    writes: list[object] | None = None,
    outbound: list[Outbound] | None = None,
    cancel: bool = False,
    reply_inbox: str | None = None,
    deliver_at: float = 0.0,
) -> UnitOfWork:
    thread = inbound.thread if inbound is not None else None
    return UnitOfWork(
        peer=peer,
        relationship=RelationshipRecord(
            peer, RelationshipCore(state), thread=thread, reply_inbox=reply_inbox
        ),
        inbound=inbound,
        receipt=receipt,
        effects=list(effects or []),
        writes=list(writes or []),  # type: ignore[arg-type]
        outbound=list(outbound or []),
        cancel_deliveries=cancel,
        deliver_at=deliver_at,
    )


def _offer(offer_id: str, *, sender: Role = Role.VENDOR, days: int = 7) -> OfferRecord:
    return OfferRecord(
        id=offer_id,
        sender=sender,
        basis="binding",
        valid_until=NOW + timedelta(days=days),
        digest=_digest("O"),
    )


def _data(item: str, peer: str = PEER, until: str = "2030-01-01T00:00:00Z") -> DataRow:
    return DataRow(peer, item, "x@example.org", ("servicing",), until, "urn:uuid:1", STAMP)


# -- units of work ---------------------------------------------------------------------------------


async def test_a_committed_unit_is_read_back_whole(store: VendorStore) -> None:
    rfi = _message("urn:uuid:1")
    offer = _message(
        "urn:uuid:2",
        direction=Direction.SENT,
        thread=rfi.thread,
        parent=rfi.message_id,
        message_type=MessageType.OFFER,
        digest=_digest("B"),
    )
    await store.commit(
        _unit(
            inbound=rfi,
            receipt=b"r.e.c",
            effects=[OfferOpened(_offer("urn:uuid:2"))],
            outbound=[Outbound(offer, None)],
            reply_inbox="https://buyer.test/inbox",
        )
    )
    assert await store.receipt_for_digest(rfi.digest) == b"r.e.c"
    assert await store.receipt_for_digest(_digest("Z")) is None
    assert await store.inbound_digest(PEER, "urn:uuid:1") == rfi.digest
    assert await store.inbound_digest(OTHER_PEER, "urn:uuid:1") is None
    assert await store.thread_peer(rfi.thread) == PEER
    assert await store.thread_peer("urn:uuid:unknown") is None
    assert await store.message_peers("urn:uuid:2") == frozenset({PEER})
    assert await store.message(VENDOR, "urn:uuid:2") == offer
    assert await store.message(PEER, "urn:uuid:1") == rfi
    record = await store.relationship(PEER)
    assert record == RelationshipRecord(
        PEER,
        RelationshipCore(RelationshipState.ENQUIRY),
        thread=rfi.thread,
        reply_inbox="https://buyer.test/inbox",
    )
    assert await store.relationship(OTHER_PEER) is None
    assert [o.id for o in await store.offers(PEER)] == ["urn:uuid:2"]
    mailbox = await store.mailbox(PEER, 0, STAMP)
    assert [entry.token for entry in mailbox] == [offer.token]


async def test_a_unit_that_breaks_a_rule_applies_nothing(store: VendorStore) -> None:
    await store.commit(_unit(inbound=_message("urn:uuid:1")))
    failing = _unit(
        state=RelationshipState.NEGOTIATION,
        inbound=_message("urn:uuid:9", digest=_digest("B"), thread="urn:uuid:1"),
        receipt=b"receipt",
        writes=[
            _data("contact.email"),
            # The deal closes an offer the relationship never held.
            DealRow(
                "deal-1", PEER, "urn:uuid:no-such-offer", "urn:uuid:9", "100", "EUR", {}, STAMP
            ),
        ],
    )
    with pytest.raises(ConstraintViolation):
        await store.commit(failing)
    record = await store.relationship(PEER)
    assert record is not None
    assert record.core.state is RelationshipState.ENQUIRY
    assert await store.data_for(PEER) == []
    assert await store.inbound_digest(PEER, "urn:uuid:9") is None
    assert await store.receipt_for_digest(_digest("B")) is None


async def test_a_used_sender_and_id_is_refused_with_what_is_on_record(store: VendorStore) -> None:
    await store.commit(_unit(inbound=_message("urn:uuid:1"), receipt=b"r.1"))
    replay = _unit(
        state=RelationshipState.NEGOTIATION,
        inbound=_message("urn:uuid:1", digest=_digest("B")),
        receipt=b"r.2",
        writes=[_data("contact.email")],
    )
    with pytest.raises(InboundConflict) as refused:
        await store.commit(replay)
    assert (refused.value.digest, refused.value.receipt) == (_digest("A"), b"r.1")
    record = await store.relationship(PEER)
    assert record is not None
    assert record.core.state is RelationshipState.ENQUIRY
    assert await store.data_for(PEER) == []
    assert await store.inbound_digest(PEER, "urn:uuid:1") == _digest("A")


async def test_concurrent_units_are_each_all_or_nothing(store: VendorStore) -> None:
    units = [
        _unit(
            peer,
            inbound=_message(f"urn:uuid:{n}", peer=peer, digest=_digest(str(n))),
            receipt=f"receipt.{n}".encode(),
            writes=[_data("contact.email", peer=peer)]
            + (
                [DealRow("deal-x", peer, "urn:uuid:no-such-offer", "a", "1", "EUR", {}, STAMP)]
                if n == 2
                else []
            ),
        )
        for n, peer in enumerate((PEER, OTHER_PEER, THIRD_PEER), start=1)
    ]
    outcomes = await asyncio.gather(*(store.commit(u) for u in units), return_exceptions=True)
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], ConstraintViolation)
    for peer, n in ((PEER, 1), (THIRD_PEER, 3)):
        assert await store.receipt_for_digest(_digest(str(n))) == f"receipt.{n}".encode()
        assert [d.item for d in await store.data_for(peer)] == ["contact.email"]
    assert await store.relationship(OTHER_PEER) is None
    assert await store.data_for(OTHER_PEER) == []


async def test_concurrent_copies_of_one_message_get_what_the_first_committed(
    store: VendorStore,
) -> None:
    def copy(digest: str, receipt: bytes, item: str) -> UnitOfWork:
        return _unit(
            inbound=_message("urn:uuid:7", digest=digest),
            receipt=receipt,
            writes=[_data(item)],
        )

    first = copy(_digest("A"), b"receipt.first", "contact.email")
    outcomes = await asyncio.gather(
        store.commit(first),
        store.commit(copy(_digest("A"), b"receipt.second", "contact.phone")),
        store.commit(copy(_digest("B"), b"receipt.third", "vehicle.vin")),
        return_exceptions=True,
    )
    committed = [i for i, outcome in enumerate(outcomes) if outcome is None]
    assert len(committed) == 1, outcomes
    winner = committed[0]
    for index, outcome in enumerate(outcomes):
        if index != winner:
            assert isinstance(outcome, InboundConflict)
            assert outcome.digest == (_digest("A") if winner < 2 else _digest("B"))
    assert len(await store.data_for(PEER)) == 1


async def test_a_unit_keeps_the_delivery_failures_it_did_not_count(store: VendorStore) -> None:
    offer = _message("urn:uuid:2", direction=Direction.SENT, message_type=MessageType.OFFER)
    await store.commit(
        _unit(inbound=_message("urn:uuid:1"), outbound=[Outbound(offer, "https://b.test/in")])
    )
    [entry] = await store.due_deliveries(now=1e12)
    await store.record_deliveries(
        [DeliveryOutcome(entry.id, next_attempt=1e13, error="503", count_against=PEER)]
    )
    await store.commit(_unit(state=RelationshipState.NEGOTIATION, inbound=_message("urn:uuid:3")))
    assert await store.delivery_standing(PEER) == DeliveryStanding(False, 1)


# -- the ledger ------------------------------------------------------------------------------------


def _random_effects(rng: random.Random, known: MemoryLedger) -> list[Effect]:
    offers = list(known.offers)
    requests = list(known.requests)
    choice = rng.randrange(7)
    if choice <= 1 or not offers:
        offer_id = f"urn:uuid:offer-{rng.randrange(12)}"
        sender = rng.choice(list(Role))
        return [OfferOpened(_offer(offer_id, sender=sender, days=rng.choice((-1, 0, 3, 7))))]
    if choice == 2:
        status = rng.choice([OfferStatus.SUPERSEDED, OfferStatus.ACCEPTED, OfferStatus.DECLINED])
        return [OfferStatusChanged(rng.choice(offers), status)]
    if choice == 3:
        at = NOW + timedelta(days=rng.choice((0, 1, 5)), seconds=rng.choice((0, 0.5)))
        return [OpenOffersLapsed(at, rng.choice([None, *offers])), DealAccepted(offers[0])]
    if choice == 4 or not requests:
        request_type = rng.choice(
            [MessageType.TERMS_ASSERTION, MessageType.SERVICE_NOTICE, MessageType.SUPPORT_REQUEST]
        )
        record = RequestRecord(f"urn:uuid:req-{rng.randrange(8)}", request_type, Role.VENDOR)
        return [RequestOpened(record)]
    if choice == 5:
        return [RequestClosed(rng.choice(requests))]
    return [ExitCompleted("urn:uuid:notice")]


async def test_the_ledger_holds_what_the_effects_say_as_memory_would(store: VendorStore) -> None:
    # The store projects the state machine's effects into records; the library's
    # MemoryLedger is the reference: after every unit they agree, and the facts
    # a query names are exactly the records it asks for.
    rng = random.Random(20261123)
    for run, peer in enumerate((PEER, OTHER_PEER, THIRD_PEER)):
        memory = MemoryLedger()
        for step in range(40):
            effects = _random_effects(rng, memory)
            memory.apply(effects)
            await store.commit(
                _unit(peer, inbound=_message(f"urn:uuid:{run}-{step}", peer=peer), effects=effects)
            )
            assert {o.id: o for o in await store.offers(peer)} == memory.offers
            assert {r.id: r for r in await store.requests(peer)} == memory.requests
            asked_offers = frozenset(rng.sample(sorted(memory.offers), min(2, len(memory.offers))))
            asked_requests = frozenset(list(memory.requests)[:1])
            role = rng.choice(list(Role))
            kind = rng.choice([MessageType.SUPPORT_REQUEST, MessageType.SERVICE_NOTICE])
            moment = NOW + timedelta(days=rng.choice((0, 2, 6)))
            query = LedgerQuery(
                offers=asked_offers | {"urn:uuid:not-an-offer"},
                requests=asked_requests,
                open_offers_of=role,
                open_requests_of=kind,
            )
            facts = await store.ledger_facts(peer, query, moment)
            assert dict(facts.offers) == {
                o.id: o
                for o in memory.offers.values()
                if o.id in asked_offers or (o.sender is role and o.live_at(moment))
            }
            assert dict(facts.requests) == {
                r.id: r
                for r in memory.requests.values()
                if r.id in asked_requests or (r.type is kind and r.open)
            }
            assert facts.query == query


async def test_an_empty_query_reads_nothing(store: VendorStore) -> None:
    facts = await store.ledger_facts(PEER, LedgerQuery(), NOW)
    assert (dict(facts.offers), dict(facts.requests)) == ({}, {})


# -- the outbox and the mailbox --------------------------------------------------------------------


def _sent(
    message_id: str,
    peer: str = PEER,
    *,
    message_type: MessageType = MessageType.OFFER,
    expires: str = LATER,
) -> StoredMessage:
    return _message(
        message_id,
        peer=peer,
        direction=Direction.SENT,
        message_type=message_type,
        digest=_digest(message_id[-1]),
        expires=expires,
    )


async def test_deliveries_go_in_order_per_peer(store: VendorStore) -> None:
    inbox = "https://buyer.test/in"
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:1"),
            outbound=[Outbound(_sent("urn:uuid:5"), inbox), Outbound(_sent("urn:uuid:6"), inbox)],
            deliver_at=100.0,
        )
    )
    assert await store.due_deliveries(now=99.0) == []
    assert await store.next_delivery_at() == 100.0
    first, second = await store.due_deliveries(now=1e12) + [None]  # type: ignore[list-item]
    assert first is not None
    assert second is None, "the second waits behind the first"
    assert (first.message_id, first.attempts, first.status) == ("urn:uuid:5", 0, "pending")
    await store.record_deliveries([DeliveryOutcome(first.id, next_attempt=1e13, error="503")])
    assert await store.due_deliveries(now=1e12) == [], "the second still waits behind the first"
    assert await store.next_delivery_at() == 1e13
    await store.record_deliveries([DeliveryOutcome(first.id, delivered_at=STAMP)])
    [following] = await store.due_deliveries(now=1e12)
    assert following.message_id == "urn:uuid:6"
    await store.record_deliveries(
        [DeliveryOutcome(following.id, next_attempt=1.0, error="410", final=True)]
    )
    assert await store.due_deliveries(now=1e12) == []
    assert await store.next_delivery_at() is None


async def test_the_mailbox_keeps_everything_sent_until_it_expires(store: VendorStore) -> None:
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:1"),
            outbound=[
                Outbound(_sent("urn:uuid:5"), "https://buyer.test/in"),
                Outbound(_sent("urn:uuid:6"), None),
                Outbound(_sent("urn:uuid:7", expires=STAMP), None),
            ],
        )
    )
    entries = await store.mailbox(PEER, 0, STAMP)
    assert [e.token for e in entries] == [
        b"header.urn:uuid:5.signature",
        b"header.urn:uuid:6.signature",
    ]
    assert [e.inbox for e in entries] == ["https://buyer.test/in", None]
    assert await store.mailbox(PEER, entries[0].cursor, STAMP) == [entries[1]]
    assert await store.mailbox(OTHER_PEER, 0, STAMP) == []
    [due] = await store.due_deliveries(now=1e12)
    await store.record_deliveries([DeliveryOutcome(due.id, delivered_at=STAMP)])
    assert len(await store.mailbox(PEER, 0, STAMP)) == 2, "delivered, and still in the mailbox"


async def test_withdrawn_messages_leave_the_mailbox_and_the_queue(store: VendorStore) -> None:
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:1"),
            outbound=[Outbound(_sent("urn:uuid:5"), "https://b.test/in")],
        )
    )
    ack = _sent("urn:uuid:8", message_type=MessageType.EXIT_ACKNOWLEDGEMENT)
    await store.commit(
        _unit(
            state=RelationshipState.EXITED,
            inbound=_message("urn:uuid:2", digest=_digest("B"), thread="urn:uuid:1"),
            outbound=[Outbound(ack, "https://b.test/in")],
            cancel=True,
        )
    )
    [due] = await store.due_deliveries(now=1e12)
    assert due.message_id == "urn:uuid:8", "only what the exit's unit sent is still owed"
    assert [e.token for e in await store.mailbox(PEER, 0, STAMP)] == [ack.token]


async def test_the_delivery_budget_counts_only_what_it_is_told(store: VendorStore) -> None:
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:1"),
            outbound=[Outbound(_sent("urn:uuid:5"), "https://b.test/in")],
        )
    )
    assert await store.delivery_standing(PEER) == DeliveryStanding(False, 0)
    [entry] = await store.due_deliveries(now=1e12)
    assert entry.standing == DeliveryStanding(False, 0), "each entry comes with its standing"
    await store.record_deliveries(
        [DeliveryOutcome(entry.id, error="refused", final=True, attempted=False)]
    )
    assert await store.delivery_standing(PEER) == DeliveryStanding(False, 0)
    assert await store.due_deliveries(now=1e12) == []
    assert len(await store.mailbox(PEER, 0, STAMP)) == 1, "given up, it waits in the mailbox"
    deal = _unit(
        state=RelationshipState.TRANSACTION,
        inbound=_message("urn:uuid:2", digest=_digest("B"), thread="urn:uuid:1"),
        effects=[OfferOpened(_offer("urn:uuid:o")), DealAccepted("urn:uuid:o")],
    )
    deal.relationship = replace(deal.relationship, deal_seen=True)
    await store.commit(deal)
    assert (await store.delivery_standing(PEER)).deal_seen
    assert await store.delivery_standing(OTHER_PEER) == DeliveryStanding(False, 0)


# -- the vendor's records --------------------------------------------------------------------------


async def test_retention_sweep_deletes_and_records(store: VendorStore) -> None:
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:1"),
            writes=[
                _data("contact.email", until="2027-01-01T00:00:00Z"),
                _data("vehicle.vin", until="2029-01-01T00:00:00Z"),
                ConsentRow(
                    PEER, "contact.email", ("servicing",), "P1Y", "2027-01-01T00:00:00Z", "m", STAMP
                ),
            ],
        )
    )
    assert await store.next_retention_deadline() == "2027-01-01T00:00:00Z"
    assert await store.sweep_retention("2026-12-31T23:59:59Z") == []
    deleted = await store.sweep_retention("2027-01-01T00:00:00Z")
    assert [(d.item, d.reason) for d in deleted] == [("contact.email", "retention-expired")]
    assert [d.item for d in await store.data_for(PEER)] == ["vehicle.vin"]
    assert await store.consents_for(PEER) == []
    assert [d.item for d in await store.deletions_for(PEER)] == ["contact.email"]
    assert await store.next_retention_deadline() == "2029-01-01T00:00:00Z"


async def test_an_exit_erases_what_is_held_in_its_own_unit(store: VendorStore) -> None:
    await store.commit(
        _unit(inbound=_message("urn:uuid:1"), writes=[_data("contact.email"), _data("vehicle.vin")])
    )
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:2", digest=_digest("B"), thread="urn:uuid:1"),
            writes=[DeletionRow(PEER, "contact.email", "exit", STAMP), EraseData(PEER)],
        )
    )
    assert await store.data_for(PEER) == []
    assert [(d.item, d.reason) for d in await store.deletions_for(PEER)] == [
        ("contact.email", "exit")
    ]


async def test_offers_deals_and_preferences(store: VendorStore) -> None:
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:1"),
            effects=[OfferOpened(_offer("urn:uuid:o"))],
            writes=[OfferTerms(PEER, "urn:uuid:o", 2, "28500", "GBP")],
        )
    )
    assert await store.offer_terms(PEER, "urn:uuid:o") == OfferTerms(
        PEER, "urn:uuid:o", 2, "28500", "GBP"
    )
    assert await store.offer_terms(OTHER_PEER, "urn:uuid:o") is None
    identity = {"name": "Sally", "tradeIn": {"item": {"registration": "AB12 CDE"}}}
    assert await store.preferences(PEER) == Preferences(None, 1)
    await store.commit(
        _unit(
            state=RelationshipState.TRANSACTION,
            inbound=_message("urn:uuid:2", digest=_digest("B"), thread="urn:uuid:1"),
            writes=[
                DealRow(
                    "deal-1", PEER, "urn:uuid:o", "urn:uuid:2", "28500", "GBP", identity, STAMP
                ),
                NotificationsChosen(PEER, ("safety", "recall")),
                SuppressedRow(PEER, "programme-offer", "new-products", "not allowed", STAMP),
            ],
        )
    )
    [deal] = await store.deals_for(PEER)
    assert (deal.id, deal.offer_id, dict(deal.identity)) == ("deal-1", "urn:uuid:o", identity)
    assert await store.preferences(PEER) == Preferences(("safety", "recall"), 1)
    await store.commit(
        _unit(inbound=_message("urn:uuid:3", digest=_digest("C")), writes=[Reengagement(PEER)])
    )
    assert await store.preferences(PEER) == Preferences(None, 2)
    summary = await store.summary()
    entry = summary["relationships"][PEER]
    assert entry["engagements"] == 2
    assert [o["id"] for o in entry["offers"]] == ["urn:uuid:o"]
    assert entry["offers"][0]["total"] == {"amount": "28500", "currency": "GBP"}
    assert [d["id"] for d in entry["deals"]] == ["deal-1"]
    assert entry["messages"] == 3
    assert [s["category"] for s in summary["suppressedNotices"]] == ["new-products"]


async def test_settings_persist(store: VendorStore) -> None:
    assert await store.setting("clock-offset-seconds") is None
    await store.set_setting("clock-offset-seconds", "3600")
    await store.set_setting("clock-offset-seconds", "7200")
    assert await store.setting("clock-offset-seconds") == "7200"


# -- durability and closing ------------------------------------------------------------------------


async def test_what_was_committed_is_there_after_a_reopen(opener: Opener) -> None:
    first = await opener()
    await first.commit(_unit(inbound=_message("urn:uuid:1"), receipt=b"r.1", writes=[_data("a.b")]))
    await first.close()
    with pytest.raises(StoreClosed):
        await first.relationship(PEER)
    again = await opener()
    try:
        assert await again.receipt_for_digest(_digest("A")) == b"r.1"
        assert [d.item for d in await again.data_for(PEER)] == ["a.b"]
    finally:
        await again.close()


# -- access grants (spec §6.18, §6.19) -------------------------------------------------------------

GRANT = "urn:uuid:0e6f3a52-8d1c-4b7e-a9f0-3c2d1e4b5a69"


def _grant(peer: str = PEER) -> GrantRow:
    return GrantRow(
        grant_id=GRANT,
        peer=peer,
        message_id="urn:uuid:g1",
        items=("travel.dates",),
        purposes=("programme-membership",),
        until="2030-01-01T00:00:00Z",
        endpoint="https://agent.sally.example/vrm/read/Jd8x2PqLw0s7RkT4nVb9Cg",
        key="k" * 43,
        created_at=STAMP,
    )


async def test_a_grant_is_kept_and_revoked_by_its_peer_only(store: VendorStore) -> None:
    assert await store.grant(GRANT) is None
    granted = _message("urn:uuid:g1", message_type=MessageType.ACCESS_GRANT)
    await store.commit(
        _unit(state=RelationshipState.NEGOTIATION, inbound=granted, writes=[_grant()])
    )
    assert await store.grant(GRANT) == _grant()

    # Another party cannot revoke her grant; her revocation takes, once.
    other = _message(
        "urn:uuid:r0", peer="did:jwk:other", message_type=MessageType.ACCESS_REVOCATION
    )
    await store.commit(
        _unit(
            "did:jwk:other",
            state=RelationshipState.NEGOTIATION,
            inbound=other,
            writes=[GrantRevokedRow(GRANT, "did:jwk:other", "2029-01-01T00:00:00Z")],
        )
    )
    held = await store.grant(GRANT)
    assert held is not None
    assert held.revoked_at is None
    for number, at in ((1, "2029-01-02T00:00:00Z"), (2, "2029-01-03T00:00:00Z")):
        revocation = _message(f"urn:uuid:r{number}", message_type=MessageType.ACCESS_REVOCATION)
        await store.commit(
            _unit(
                state=RelationshipState.NEGOTIATION,
                inbound=revocation,
                writes=[GrantRevokedRow(GRANT, PEER, at)],
            )
        )
    held = await store.grant(GRANT)
    assert held is not None
    assert held.revoked_at == "2029-01-02T00:00:00Z"
