"""The vendor's CPU per message, by type, on SQLite and on PostgreSQL (the sizing model).

Each owner walks the life cycle of seed 000 through the reference vendor
(dealer-mayfair), in this process, straight into the vendor's pipeline
(``VendorAgent.receive``: decode, verify, decide, handle, sign the replies,
commit; no HTTP): a personal RFI (answered by an offer), a counter-offer (a
revised offer), the acceptance (deal confirmation and terms assertion), the
terms response, a maintenance notice the vendor sends (``send_notice``) and
her service response, a support request (its resolution), and her exit notice
(the acknowledgement with the export and the deletion receipt). The buyer's
side (signing, reading the vendor's replies from the mailbox) happens between
the timed calls and is not counted.

Timed per call: this process's CPU (all threads, so SQLite's writer thread is
in) and, for PostgreSQL, the database server's CPU (``/proc/<pid>/schedstat``
of its processes). The two stores run in interleaved rounds (at least 20,
alternating which goes first), a fresh owner each round. Printed: median and
spread per message type and store, and the CPU of one owner's whole cycle.
The HTTP layer (aiohttp, the receipt on the wire) adds to each inbound message
what ``bench/vendor_http.py`` measures as the difference between its vendor
and the pipeline alone. Figures only; nothing is asserted.

Run: ``python bench/message_costs.py [--rounds 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conformance.peers import bodies
from reference_vendor.agent import VendorAgent
from reference_vendor.catalogue import load_catalogue
from reference_vendor.config import VendorConfig
from reference_vendor.store import SqliteVendorStore, VendorStore
from reference_vendor.store_postgres import PostgresVendorStore
from tools.postgres import create_database
from tools.postgres import start as start_postgres
from tools.postgres import stop as stop_postgres
from vrm_agent.clock import AgentClock
from vrm_protocol.canonical import b64url_decode, message_digest
from vrm_protocol.codec import build_message, encode
from vrm_protocol.keys import PairwiseIdentity, SigningKey

PARTY = "https://dealer.example"
MIN_ROUNDS = 20
WARM_UP_OWNERS = 3
STEPS = (
    "personal-rfi",
    "counter-offer",
    "offer-acceptance",
    "terms-response",
    "service-notice (sent)",
    "service-response",
    "support-request",
    "exit-notice",
)


def postgres_cpu_ns(postmaster: int | None) -> int:
    """CPU nanoseconds of the PostgreSQL server's processes (0 without one)."""
    if postmaster is None:
        return 0
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if int(entry) != postmaster and parent != postmaster:
                continue
            total += int(Path(f"/proc/{entry}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


class Timer:
    """Times each vendor call of one walk: this process's CPU, and the server's."""

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster
        self.spent: dict[str, float] = {}
        self.server: dict[str, float] = {}

    async def timed(self, step: str, call: Awaitable[Any]) -> Any:
        server_before = postgres_cpu_ns(self.postmaster)
        before = time.process_time_ns()
        result = await call
        spent = time.process_time_ns() - before
        server = postgres_cpu_ns(self.postmaster) - server_before
        self.spent[step] = (spent + server) / 1e6
        if self.postmaster is not None:
            self.server[step] = server / 1e6
        return result


class WalMeter:
    """WAL bytes the database writes for each vendor call of one walk (an untimed walk:
    reading the WAL position is a query of its own)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.written: dict[str, int] = {}

    async def timed(self, step: str, call: Awaitable[Any]) -> Any:
        before = await self.conn.fetchval("SELECT pg_current_wal_insert_lsn()")
        result = await call
        after = await self.conn.fetchval("SELECT pg_current_wal_insert_lsn()")
        self.written[step] = int(
            await self.conn.fetchval("SELECT pg_wal_lsn_diff($1, $2)", after, before)
        )
        return result


class Owner:
    """One individual walking the life cycle, with her pseudonym for this vendor."""

    def __init__(self, agent: VendorAgent) -> None:
        self.agent = agent
        self.identity = PairwiseIdentity.generate()
        self.cursor = 0
        self.thread: str | None = None

    @property
    def id(self) -> str:
        return self.identity.identifier

    def sign(self, kind: str, body: dict[str, Any], *, parent: str | None = None) -> bytes:
        now = datetime.now(UTC)
        payload = build_message(
            kind,
            body,
            sender=self.id,
            to=[PARTY],
            now=now,
            thread=self.thread,
            parent=parent,
            lifetime=timedelta(hours=1),
        )
        if self.thread is None:
            self.thread = str(payload["id"])
        return encode(payload, self.identity.signing_key)

    async def replies(self) -> list[tuple[bytes, dict[str, Any]]]:
        """What the vendor left in her mailbox since the last look (its own store)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entries = await self.agent.store.mailbox(self.id, self.cursor, now)
        if entries:
            self.cursor = entries[-1].cursor
        return [(e.token, orjson.loads(b64url_decode(e.token.split(b".")[1]))) for e in entries]


def _ref(token: bytes, payload: dict[str, Any]) -> dict[str, str]:
    return {"id": str(payload["id"]), "digest": message_digest(token)}


async def walk(agent: VendorAgent, timed: Callable[[str, Awaitable[Any]], Awaitable[Any]]) -> None:
    """One owner's life cycle; ``timed(step, call)`` measures each vendor call."""
    owner = Owner(agent)

    async def send(step: str, token: bytes) -> list[tuple[bytes, dict[str, Any]]]:
        answer = await timed(step, agent.receive(token))
        assert answer.status == 202, (step, answer)
        return await owner.replies()

    now = datetime.now(UTC)
    [(offer_token, offer)] = await send(
        "personal-rfi", owner.sign("personal-rfi", bodies.personal_rfi_body(now))
    )
    total = str(int(float(offer["body"]["price"]["total"]["amount"]) * 0.97))
    counter = bodies.counter_offer_body(
        offer["body"], _ref(offer_token, offer), now=now, total=total
    )
    revised = await send("counter-offer", owner.sign("offer", counter, parent=offer["id"]))
    offer_token, offer = next((t, p) for t, p in revised if p["type"] == "offer")
    replies = await send(
        "offer-acceptance",
        owner.sign(
            "offer-acceptance",
            bodies.offer_acceptance_body(_ref(offer_token, offer)),
            parent=offer["id"],
        ),
    )
    terms_token, terms = next((t, p) for t, p in replies if p["type"] == "terms-assertion")
    requests = terms["body"]["requests"]
    response = bodies.terms_response_body(
        _ref(terms_token, terms),
        accepted=[
            {"item": r["item"], "purposes": r["purposes"], "retention": r["retention"]}
            for r in requests
        ],
        data=[{"item": r["item"], "value": f"value of {r['item']}"} for r in requests],
        notifications=("maintenance", "safety", "recall"),
    )
    await send("terms-response", owner.sign("terms-response", response, parent=terms["id"]))
    outcome = await timed(
        "service-notice (sent)", agent.send_notice(owner.id, category="maintenance")
    )
    assert outcome.sent, outcome
    [(notice_token, notice)] = await owner.replies()
    service_response = {
        "notice": _ref(notice_token, notice),
        "decision": "accept",
        "comment": "Please go ahead with the annual service.",
    }
    await send(
        "service-response",
        owner.sign("service-response", service_response, parent=notice["id"]),
    )
    await send("support-request", owner.sign("support-request", bodies.support_request_body()))
    await send("exit-notice", owner.sign("exit-notice", bodies.exit_notice_body(datetime.now(UTC))))


async def open_agent(store: VendorStore, session: aiohttp.ClientSession) -> VendorAgent:
    config = VendorConfig(
        catalogue=load_catalogue("dealer-mayfair"),
        data_dir=None,
        public_url=PARTY,
        reply_delay=0.0,
        background_delivery=False,
    )
    return VendorAgent(config, store, AgentClock(), SigningKey.generate(), session=session)


async def measure(rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="vrm-bench-costs-"))
    pg_data = work / "pg" / "data"
    try:
        admin = start_postgres(pg_data)
        postmaster = int((pg_data / "postmaster.pid").read_text().split()[0])
        url = create_database(admin, "costs")
        stores: dict[str, VendorStore] = {
            "sqlite": await asyncio.to_thread(SqliteVendorStore, work / "vendor.sqlite3"),
            "postgresql": await PostgresVendorStore.open(url),
        }
        costs: dict[str, dict[str, list[float]]] = {
            name: {step: [] for step in STEPS} for name in stores
        }
        database: dict[str, list[float]] = {step: [] for step in STEPS}
        cycles: dict[str, list[float]] = {name: [] for name in stores}
        async with aiohttp.ClientSession() as session:
            agents = {name: await open_agent(store, session) for name, store in stores.items()}
            for agent in agents.values():
                for _ in range(WARM_UP_OWNERS):
                    await walk(agent, _untimed)
            names = list(agents)
            for index in range(rounds):
                for name in names[index % 2 :] + names[: index % 2]:
                    timer = Timer(postmaster if name == "postgresql" else None)
                    await walk(agents[name], timer.timed)
                    for step, spent in timer.spent.items():
                        costs[name][step].append(spent)
                    for step, spent in timer.server.items():
                        database[step].append(spent)
                    cycles[name].append(sum(timer.spent.values()))
            wal: dict[str, list[int]] = {step: [] for step in STEPS}
            conn = await asyncpg.connect(url)
            try:
                for _ in range(rounds):
                    meter = WalMeter(conn)
                    await walk(agents["postgresql"], meter.timed)
                    for step, written in meter.written.items():
                        wal[step].append(written)
            finally:
                await conn.close()
        for store in stores.values():
            await store.close()
    finally:
        stop_postgres(pg_data)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{rounds} interleaved rounds, one owner's life cycle each per store, the vendor's"
        " pipeline in-process (no HTTP); CPU of this process (all threads) plus, for"
        " PostgreSQL, of the database server; ms, median [q1 .. q3]"
    )
    width = max(len(step) for step in STEPS)
    print(f"{'message':<{width}}  {'sqlite':>24}  {'postgresql (of which server)':>36}")
    for step in STEPS:
        print(
            f"{step:<{width}}  {_spread(costs['sqlite'][step]):>24}  "
            f"{_spread(costs['postgresql'][step]):>24} ({statistics.median(database[step]):.3f})"
        )
    for name in cycles:
        print(f"one owner's cycle ({len(STEPS)} calls), {name}: {_spread(cycles[name])} ms")
    print(
        "PostgreSQL WAL written per call (bytes, median): "
        + ", ".join(f"{step} {statistics.median(wal[step]):.0f}" for step in STEPS)
    )
    print(
        "PostgreSQL WAL per owner's cycle: "
        f"{sum(statistics.median(wal[step]) for step in STEPS):.0f} bytes"
    )


async def _untimed(step: str, call: Awaitable[Any]) -> Any:
    return await call


def _spread(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return f"{median:.3f} [{q1:.3f} .. {q3:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    options = parser.parse_args()
    if options.rounds < MIN_ROUNDS:
        parser.error(f"--rounds is at least {MIN_ROUNDS}")
    asyncio.run(measure(options.rounds))


if __name__ == "__main__":
    main()
