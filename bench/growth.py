"""Does a message cost more as its relationship ages? The vendor, message 1 against 100 and 200.

Vendor level, in one process: the reference vendor's agent (``VendorAgent``,
its real SQLite store in a temporary directory: WAL, ``synchronous=FULL``)
receives signed counter-offers, and answers each with an offer of its own
that supersedes it, exactly as over HTTP but without the HTTP. Three kinds of
relationship are measured in interleaved rounds (at least 20, the order
rotating each round):

* **fresh**: the first counter-offer of a new relationship (its message 3,
  after the RFP and the vendor's binding offer);
* **aged 100**: the next counter-offer of a relationship already ~100 messages old;
* **aged 200**: the next counter-offer of a relationship already ~200 messages old.

Per message: the CPU the process spent (``time.process_time``, every thread:
the event loop and the store's writer, so the commit is included) and the
bytes it wrote (``wchar`` of ``/proc/self/io``: the WAL frames and, when one
falls in, a checkpoint). Printed: median and spread of each, the ratio of
the aged to the fresh per round, and last the line ``ratio <median CPU ratio
aged 200 ÷ fresh>``. Target (issue 14): flat within 10 %, because the
relationship's row holds its core only and the history lives in the stored
messages (append-only rows). Figures only; nothing is asserted.

Run: ``python bench/growth.py [--rounds 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from conformance.peers import bodies
from reference_vendor.agent import VendorAgent
from reference_vendor.catalogue import load_catalogue
from reference_vendor.config import VendorConfig
from reference_vendor.store import SqliteVendorStore
from vrm_agent.clock import AgentClock
from vrm_agent.net import client_session
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import build_message, encode
from vrm_protocol.keys import PairwiseIdentity, SigningKey
from vrm_protocol.models import to_payload

VENDOR = "https://dealer.bench"
MIN_ROUNDS = 20
#: Counter-offers made in the aged relationships before measuring (2 messages each).
AGES = {"fresh": 0, "aged 100": 49, "aged 200": 99}


def written_bytes() -> int:
    """Bytes this process has passed to write calls so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


@dataclass
class Relationship:
    """Sally in one relationship with the dealer: the offer she counters next."""

    buyer: PairwiseIdentity = field(default_factory=PairwiseIdentity.generate)
    thread: str = ""
    offer: dict[str, Any] = field(default_factory=dict)
    offer_id: str = ""
    offer_digest: str = ""
    cursor: int = 0
    messages: int = 0


class Bench:
    def __init__(self, agent: VendorAgent) -> None:
        self.agent = agent

    def _sign(self, who: Relationship, message_type: str, body: dict[str, Any], **kw: Any) -> bytes:
        now = self.agent.clock.now()
        payload = build_message(
            message_type, body, sender=who.buyer.identifier, to=[VENDOR], now=now,
            lifetime=timedelta(hours=2), **kw,
        )  # fmt: skip
        return encode(payload, who.buyer.signing_key)

    async def _latest_offer(self, who: Relationship) -> None:
        now = self.agent.clock.now()
        store = self.agent.store
        entries = await store.mailbox(who.buyer.identifier, who.cursor, _stamp(now), limit=100)
        who.cursor = entries[-1].cursor
        message = await store.message(VENDOR, _id_of(entries[-1].token))
        assert message is not None
        who.offer = to_payload(message.model().body)
        who.offer_id = message.message_id
        who.offer_digest = message_digest(entries[-1].token)

    async def open(self) -> Relationship:
        """A relationship with a binding offer to counter (its RFP and the offer)."""
        who = Relationship()
        now = self.agent.clock.now()
        token = self._sign(who, "personal-rfp", bodies.personal_rfp_body(now))
        answer = await self.agent.receive(token)
        assert answer.status == 202
        who.thread = _id_of(token)
        who.messages = 2
        await self._latest_offer(who)
        return who

    def counter(self, who: Relationship) -> bytes:
        """Her next counter-offer: a little below the vendor's last total."""
        total = str(int(float(who.offer["price"]["total"]["amount"])) - 10)
        body = bodies.counter_offer_body(
            who.offer,
            {"id": who.offer_id, "digest": who.offer_digest},
            now=self.agent.clock.now(),
            total=total,
        )
        return self._sign(who, "offer", body, thread=who.thread, parent=who.offer_id)

    async def exchange(self, who: Relationship, token: bytes) -> None:
        answer = await self.agent.receive(token)
        assert answer.status == 202, answer
        who.messages += 2
        await self._latest_offer(who)


def _stamp(moment: Any) -> str:
    from vrm_protocol.freshness import format_timestamp

    return format_timestamp(moment)


def _id_of(token: bytes) -> str:
    import orjson

    from vrm_protocol.canonical import b64url_decode

    return str(orjson.loads(b64url_decode(token.split(b".")[1]))["id"])


def spread(values: list[float]) -> str:
    """Median and quartiles, as ``median [q1 .. q3]``."""
    q1, median, q3 = statistics.quantiles(values, n=4)
    return f"{median:.3f} [{q1:.3f} .. {q3:.3f}]"


async def measure(rounds: int, work: Path, ages_by_name: dict[str, int]) -> None:
    config = VendorConfig(
        catalogue=load_catalogue("dealer-mayfair"), data_dir=work, public_url=VENDOR
    )
    store = await asyncio.to_thread(SqliteVendorStore, work / "vendor.sqlite3")
    session = client_session(config.delivery_policy)
    try:
        agent = VendorAgent(config, store, AgentClock(), SigningKey.generate(), session=session)
        bench = Bench(agent)
        aged: dict[str, Relationship] = {}
        for name, counters in ages_by_name.items():
            if counters:
                who = await bench.open()
                for _ in range(counters):
                    await bench.exchange(who, bench.counter(who))
                aged[name] = who
        fresh = [await bench.open() for _ in range(rounds)]
        cpu: dict[str, list[float]] = {name: [] for name in AGES}
        written: dict[str, list[float]] = {name: [] for name in AGES}
        ages: dict[str, list[int]] = {name: [] for name in AGES}
        names = list(AGES)
        for index in range(rounds):
            order = names[index % 3 :] + names[: index % 3]
            for name in order:
                who = fresh[index] if name == "fresh" else aged[name]
                token = bench.counter(who)  # signed before the clock starts
                ages[name].append(who.messages + 1)
                cpu_before, bytes_before = time.process_time(), written_bytes()
                answer = await agent.receive(token)
                cpu_after, bytes_after = time.process_time(), written_bytes()
                assert answer.status == 202
                who.messages += 2
                await bench._latest_offer(who)
                cpu[name].append((cpu_after - cpu_before) * 1000)
                written[name].append((bytes_after - bytes_before) / 1024)
        core = await store.relationship(aged["aged 200"].buyer.identifier)
    finally:
        await session.close()
        await store.close()
    print(
        f"{rounds} interleaved rounds; each: one counter-offer received, answered by an offer,"
        " committed (in-process vendor, SQLite WAL, synchronous=FULL)"
    )
    for name in names:
        print(
            f"{name:9s} (message {min(ages[name])}..{max(ages[name])}): "
            f"CPU ms {spread(cpu[name])}   written KiB {spread(written[name])}"
        )
    assert core is not None
    print(f"the relationship row's core at message {aged['aged 200'].messages}: {core.core}")
    for name in ("aged 100", "aged 200"):
        cpu_ratios = [a / f for a, f in zip(cpu[name], cpu["fresh"], strict=True)]
        byte_ratios = [a / f for a, f in zip(written[name], written["fresh"], strict=True)]
        print(
            f"{name} / fresh: CPU {spread(cpu_ratios)}, bytes written "
            f"{statistics.median(written[name]) / statistics.median(written['fresh']):.3f} "
            f"(per round {spread(byte_ratios)})"
        )
    ratio = statistics.median(a / f for a, f in zip(cpu["aged 200"], cpu["fresh"], strict=True))
    byte_ratio = statistics.median(written["aged 200"]) / statistics.median(written["fresh"])
    flat = abs(ratio - 1) <= 0.10 and abs(byte_ratio - 1) <= 0.10
    print(f"target: flat within 10 % from message 3 to message ~200: {'met' if flat else 'MISSED'}")
    print(f"ratio {ratio:.3f}")


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="3 rounds, relationships a few messages old: that it runs, not its figures",
    )
    options = parser.parse_args(argv)
    ages_by_name = dict(AGES)
    if options.tiny:
        options.rounds = 3
        ages_by_name = {
            name: min(counters, 2 * index) for index, (name, counters) in enumerate(AGES.items())
        }
    elif options.rounds < MIN_ROUNDS:
        parser.error(f"--rounds is at least {MIN_ROUNDS}")
    work = Path(tempfile.mkdtemp(prefix="vrm-bench-growth-"))
    try:
        asyncio.run(measure(options.rounds, work, ages_by_name))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
