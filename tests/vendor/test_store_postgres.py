"""The vendor's PostgreSQL store beyond the contract: several processes, one database.

The contract (``test_store_contract.py``) runs on both backends; here what only
a shared database raises: the retention sweep run by one process at a time and
never interleaved with a relationship's message, the signing key made once,
the same state summary as SQLite's for the same records, and how the command
line takes a PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reference_vendor.store import (
    VENDOR_SCHEMA,
    ConsentRow,
    DataRow,
    DealRow,
    DeletionRow,
    EraseData,
    ExitRow,
    NotificationsChosen,
    OfferTerms,
    Reengagement,
    SqliteVendorStore,
    SuppressedRow,
    VendorStore,
)
from reference_vendor.store_postgres import PostgresVendorStore
from tests.vendor.test_store_contract import (
    OTHER_PEER,
    PEER,
    STAMP,
    _message,
    _offer,
    _sent,
    _unit,
)
from vrm_agent.postgres import PROTOCOL_SCHEMA
from vrm_agent.unit import Outbound, UnitOfWork
from vrm_protocol.ledger import (
    DealAccepted,
    ExitCompleted,
    OfferOpened,
    OfferStatus,
    OfferStatusChanged,
    RequestOpened,
    RequestRecord,
)
from vrm_protocol.state_machine import Direction, RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

VRM = Path(sys.executable).with_name("vrm")
DEADLINE = 60.0


@pytest.fixture
async def stores(postgres_url: str) -> AsyncIterator[list[PostgresVendorStore]]:
    """Two vendor "processes" on one fresh database."""
    opened = await asyncio.gather(
        PostgresVendorStore.open(postgres_url), PostgresVendorStore.open(postgres_url)
    )
    try:
        yield list(opened)
    finally:
        for store in opened:
            await store.close()


def _held(item: str, peer: str = PEER, until: str = "2027-01-01T00:00:00Z") -> DataRow:
    return DataRow(peer, item, "x@example.org", ("servicing",), until, "urn:uuid:1", STAMP)


async def test_the_vendor_brings_both_components_to_their_latest_version(
    stores: list[PostgresVendorStore],
) -> None:
    assert await stores[0].schema_versions() == {
        "vrm_agent": len(PROTOCOL_SCHEMA.steps),
        "reference_vendor": len(VENDOR_SCHEMA.steps),
    }


async def test_every_process_signs_with_the_one_key_the_first_made(
    stores: list[PostgresVendorStore],
) -> None:
    keys = await asyncio.gather(*(store.signing_key() for store in stores * 2))
    assert len({key.kid for key in keys}) == 1
    assert keys[0].kid == keys[0].thumbprint(), "published under its RFC 7638 thumbprint"


async def test_two_processes_sweeping_at_once_delete_and_record_once(
    stores: list[PostgresVendorStore],
) -> None:
    first, second = stores
    for number, peer in enumerate((PEER, OTHER_PEER)):
        await first.commit(
            _unit(
                peer,
                inbound=_message(f"urn:uuid:{number}", peer=peer),
                writes=[
                    _held("contact.email", peer),
                    _held("vehicle.vin", peer, "2029-01-01T00:00:00Z"),
                ],
            )
        )
    async with asyncio.timeout(DEADLINE):
        swept = await asyncio.gather(
            first.sweep_retention("2027-06-01T00:00:00Z"),
            second.sweep_retention("2027-06-01T00:00:00Z"),
        )
    assert sorted(len(deleted) for deleted in swept) == [0, 2], "one process swept, once"
    for peer in (PEER, OTHER_PEER):
        assert [d.item for d in await second.deletions_for(peer)] == ["contact.email"]
        assert [d.item for d in await second.data_for(peer)] == ["vehicle.vin"]


async def test_the_sweep_waits_for_a_message_of_a_relationship_it_deletes_from(
    stores: list[PostgresVendorStore],
) -> None:
    # An exit being decided in one process lists what is held; the sweep in the
    # other must not delete under it (its deletion receipt would be wrong).
    first, second = stores
    await first.commit(_unit(inbound=_message("urn:uuid:1"), writes=[_held("contact.email")]))
    order: list[str] = []
    inside = asyncio.Event()

    async def exit_in_first() -> None:
        async with first.exclusive("p " + PEER):
            inside.set()
            held = await first.data_for(PEER)
            await asyncio.sleep(0.3)
            unit = _unit(
                state=RelationshipState.EXITED,
                inbound=_message("urn:uuid:2", thread="urn:uuid:1"),
                writes=[
                    *(DeletionRow(PEER, data.item, "exit", STAMP) for data in held),
                    EraseData(PEER),
                ],
            )
            await first.commit(unit)
            order.append("exit")

    async def sweep_in_second() -> None:
        await inside.wait()
        deleted = await second.sweep_retention("2027-06-01T00:00:00Z")
        order.append(f"sweep deleted {len(deleted)}")

    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(exit_in_first(), sweep_in_second())
    assert order == ["exit", "sweep deleted 0"]
    assert [(d.item, d.reason) for d in await second.deletions_for(PEER)] == [
        ("contact.email", "exit")
    ]


def _journey() -> list[UnitOfWork]:
    """A relationship and a second one, through offers, a deal, terms, data, an exit."""
    offer = _sent("urn:uuid:o1")
    units = [
        _unit(
            inbound=_message("urn:uuid:1"),
            effects=[OfferOpened(_offer("urn:uuid:o1"))],
            writes=[OfferTerms(PEER, "urn:uuid:o1", 0, "28500", "GBP")],
            outbound=[Outbound(offer, None)],
        ),
        _unit(
            OTHER_PEER,
            inbound=_message("urn:uuid:1", peer=OTHER_PEER),
            effects=[OfferOpened(_offer("urn:uuid:o2", days=1))],
            writes=[OfferTerms(OTHER_PEER, "urn:uuid:o2", 0, "1", "EUR")],
        ),
        _unit(
            state=RelationshipState.TRANSACTION,
            inbound=_message("urn:uuid:2", thread="urn:uuid:1"),
            effects=[
                OfferStatusChanged("urn:uuid:o1", OfferStatus.ACCEPTED),
                DealAccepted("urn:uuid:o1"),
                RequestOpened(
                    RequestRecord("urn:uuid:t1", MessageType.TERMS_ASSERTION, Role.VENDOR)
                ),
            ],
            writes=[
                DealRow(
                    "deal-1",
                    PEER,
                    "urn:uuid:o1",
                    "urn:uuid:2",
                    "28500",
                    "GBP",
                    {"name": "Sally", "address": {"city": "London"}},
                    STAMP,
                    ("identity.name",),
                ),
            ],
        ),
        _unit(
            state=RelationshipState.SERVICING,
            inbound=_message("urn:uuid:3", thread="urn:uuid:1"),
            writes=[
                _held("contact.email", until="2030-01-01T00:00:00Z"),
                DataRow(
                    PEER,
                    "address.postal",
                    {"city": "London", "street": "1 Road"},
                    ("delivery", "servicing"),
                    "2031-01-01T00:00:00Z",
                    "urn:uuid:3",
                    STAMP,
                ),
                ConsentRow(
                    PEER, "contact.email", ("servicing",), "P3Y", "2030-01-01T00:00:00Z", "m", STAMP
                ),
                NotificationsChosen(PEER, ("safety", "maintenance")),
                SuppressedRow(OTHER_PEER, "programme-offer", "events", "not chosen", STAMP),
            ],
        ),
        _unit(
            OTHER_PEER,
            state=RelationshipState.EXITED,
            inbound=_message("urn:uuid:4", peer=OTHER_PEER, thread="urn:uuid:1"),
            effects=[ExitCompleted("urn:uuid:4")],
            writes=[
                ExitRow(
                    OTHER_PEER,
                    "urn:uuid:4",
                    "sha-256:n",
                    None,
                    {"deleted": [], "retained": []},
                    "urn:uuid:ack",
                    STAMP,
                ),
                Reengagement(OTHER_PEER),
            ],
        ),
    ]
    return units


async def test_postgresql_and_sqlite_summarise_the_same_records_alike(
    postgres_url: str, tmp_path: Path
) -> None:
    backends: list[VendorStore] = [
        await PostgresVendorStore.open(postgres_url),
        await asyncio.to_thread(SqliteVendorStore, tmp_path / "vendor.sqlite3"),
    ]
    try:
        summaries = []
        for store in backends:
            for unit in _journey():
                await store.commit(unit)
            await store.sweep_retention("2030-06-01T00:00:00Z")
            summaries.append(await store.summary())
        assert summaries[0] == summaries[1]
        assert list(summaries[0]["relationships"]) == sorted([PEER, OTHER_PEER])
        assert summaries[0]["deletions"], "the sweep's deletions are in both"
    finally:
        for store in backends:
            await store.close()


# -- the command line ------------------------------------------------------------------------------


def _vrm(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VRM), *arguments],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    ("store_arguments", "says"),
    [
        ((), "--data-dir (SQLite) or --store (PostgreSQL)"),
        (("--data-dir", "d", "--store", "postgresql://x@/y"), "not both"),
        (("--store", "sqlite:///vendor.sqlite3"), "PostgreSQL URL"),
    ],
)
def test_serve_takes_one_store(store_arguments: tuple[str, ...], says: str) -> None:
    done = _vrm("vendor", "serve", "--catalogue", "dealer-mayfair", *store_arguments)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_one_line_without_its_password() -> None:
    done = _vrm(
        "vendor",
        "serve",
        "--catalogue",
        "dealer-mayfair",
        "--store",
        "postgresql://vendor:s3cret@/vrm?host=/nonexistent-socket-dir",
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, done.stderr
    assert "cannot open the store" in lines[0]
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr


def test_export_reads_a_postgresql_store(postgres_url: str) -> None:
    async def fill() -> None:
        store = await PostgresVendorStore.open(postgres_url)
        try:
            await store.commit(_unit(inbound=_message("urn:uuid:1"), writes=[_held("a.b")]))
        finally:
            await store.close()

    asyncio.run(fill())
    done = _vrm("vendor", "export", "--store", postgres_url, "--peer", PEER)
    assert done.returncode == 0, done.stderr
    assert '"a.b"' in done.stdout


async def test_what_one_process_sent_the_other_serves(
    stores: list[PostgresVendorStore],
) -> None:
    first, second = stores
    offer = _message("urn:uuid:o", direction=Direction.SENT, message_type=MessageType.OFFER)
    await first.commit(_unit(inbound=_message("urn:uuid:1"), outbound=[Outbound(offer, None)]))
    assert await second.message(offer.sender, "urn:uuid:o") == offer
    assert [e.token for e in await second.mailbox(PEER, 0, STAMP)] == [offer.token]
