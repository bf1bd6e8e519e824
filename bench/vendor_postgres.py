"""One and two vendor processes on PostgreSQL against one on SQLite (issue 14).

Processes on 127.0.0.1, started by this script:

* a PostgreSQL 16 server (``pgserver``, as the tests start it; unix socket,
  default settings: ``synchronous_commit = on``, ``fsync = on``);
* three contenders, each with a fresh store: the reference vendor on SQLite
  (one process, WAL, ``synchronous=FULL``); the reference vendor on PostgreSQL
  (one process); two vendor processes on one PostgreSQL database, serving one
  party id, the load alternating between them request by request;
* a buyer inbox that takes the vendors' offers (``202``): every RFI names it in
  ``replyTo``, so each round includes the outbox delivering every offer;
* the load generator, in a process of its own, POSTing pre-signed RFIs (each
  from a fresh pseudonym) ``--concurrency`` at a time.

The contenders run in interleaved rounds (at least 20, rotating which goes
first) of ``--per-round`` RFIs each; a round ends when every offer it caused
reached the inbox. Per round: throughput (RFIs answered per second of the
load) and CPU per RFI of the vendor processes (all their threads, from
``/proc/<pid>/task/*/schedstat``) and, for PostgreSQL, of the database
server's processes (``/proc/<pid>/stat`` of the postmaster's children). The
machine's cores are shared by all of them (the load generator too): on a
2-core machine two vendor processes cannot double anything; the figures say
what one more process buys there. Printed: median and spread (first and third
quartile) of each, and the ratios to SQLite per round. Figures only; nothing
is asserted.

Run: ``python bench/vendor_postgres.py [--rounds 20] [--per-round 100] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from vendor_http import (
    LOAD_TIMEOUT_SECONDS,
    MAX_CONCURRENCY,
    MAX_PER_ROUND,
    MIN_ROUNDS,
    WARM_UP_MESSAGES,
    Server,
    _bound_socket,
    _read_line,
    _thread_kind,
    _until_stopped,
    _wait_delivered,
    cpu_by_thread,
    delivered,
    serve_inbox,
    signed_rfis,
    spread,
    start,
    stop,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.postgres import create_database
from tools.postgres import start as start_postgres
from tools.postgres import stop as stop_postgres
from vrm_protocol.http_binding import INBOX_PATH
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

CONTENDERS = ("sqlite", "postgresql x1", "postgresql x2")


# -- the vendor (a process of its own) ----------------------------------------------------------


def serve_vendor(data_dir: str | None, store_url: str | None, public_url: str | None) -> None:
    """The reference vendor (dealer-mayfair) on SQLite in ``data_dir`` or PostgreSQL at
    ``store_url``, delivering to loopback, rate budgets out of the way."""
    from reference_vendor.app import serve
    from reference_vendor.catalogue import load_catalogue
    from reference_vendor.config import VendorConfig

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def run() -> None:
        sock = _bound_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = VendorConfig(
            catalogue=load_catalogue("dealer-mayfair"),
            data_dir=Path(data_dir) if data_dir else None,
            store_url=store_url,
            public_url=public_url or url,
            allow_delivery_to=frozenset({"127.0.0.1"}),
            reply_delay=0.0,
            rate_per_second=1e6,
            burst=1_000_000,
            address_rate_per_second=1e6,
            address_burst=1_000_000,
        )
        serving = await serve(config, sock)
        names = {str(t.native_id): t.name for t in threading.enumerate()}
        threads_file = Path(os.environ["VRM_BENCH_THREADS"])
        await asyncio.to_thread(threads_file.write_text, json.dumps(names))
        print(f"listening on {url}", flush=True)
        await _until_stopped()
        await serving.close()

    asyncio.run(run())


# -- the load generator (a process of its own) --------------------------------------------------


async def _send_all(urls: list[str], tokens: list[bytes], concurrency: int) -> dict[str, Any]:
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": MESSAGE_MEDIA_TYPE}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async def send(session: aiohttp.ClientSession, index: int, token: bytes) -> None:
        async with gate:
            url = urls[index % len(urls)]
            async with session.post(url + INBOX_PATH, data=token, headers=headers) as answer:
                await answer.read()
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        await asyncio.gather(*(send(session, i, token) for i, token in enumerate(tokens)))
        wall = time.perf_counter() - began
    return {"wall": wall, "statuses": statuses}


def serve_load(token_file: Path) -> None:
    """Read ``{"urls", "start", "count", "concurrency"}`` lines; POST those tokens of
    ``token_file`` (one per line, alternating over ``urls``); answer with a JSON line."""
    tokens = token_file.read_bytes().split()
    for line in sys.stdin:
        order = json.loads(line)
        chosen = tokens[order["start"] : order["start"] + order["count"]]
        result = asyncio.run(_send_all(order["urls"], chosen, order["concurrency"]))
        print(json.dumps(result), flush=True)


class Load:
    """The load generator process."""

    def __init__(self, token_file: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-load", str(token_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )

    def run(self, urls: list[str], start_at: int, count: int, concurrency: int) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        order = {"urls": urls, "start": start_at, "count": count, "concurrency": concurrency}
        stdin.write((json.dumps(order) + "\n").encode())
        stdin.flush()
        return dict(json.loads(_read_line(stdout, LOAD_TIMEOUT_SECONDS)))

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        stop(self.process)


# -- the database server's CPU ------------------------------------------------------------------


def postgres_cpu_ns(postmaster: int) -> int:
    """CPU nanoseconds of the PostgreSQL server: the postmaster and its children
    (backends, WAL writer, checkpointer, ...), from ``/proc/<pid>/schedstat``."""
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


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


# -- the measurement ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Measure and print (or be one of the bench's helper processes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve-vendor", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--serve-inbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-load", metavar="TOKENS", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve_vendor:
        data_dir, store_url, public_url = (v if v != "-" else None for v in options.serve_vendor)
        return serve_vendor(data_dir, store_url, public_url)
    if options.serve_inbox:
        return serve_inbox()
    if options.serve_load:
        return serve_load(Path(options.serve_load))
    if options.rounds < MIN_ROUNDS:
        parser.error(f"--rounds is at least {MIN_ROUNDS}")
    if not 1 <= options.per_round <= MAX_PER_ROUND:
        parser.error(f"--per-round is 1..{MAX_PER_ROUND}")
    if not 1 <= options.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency is 1..{MAX_CONCURRENCY}")
    measure(options.rounds, options.per_round, options.concurrency)
    return None


def _vendor(
    work: Path, name: str, *, data_dir: Path | None, store: str | None, public: str | None
) -> Server:
    me = [sys.executable, str(Path(__file__).resolve())]
    os.environ["VRM_BENCH_THREADS"] = str(work / f"{name}.threads.json")
    return start(
        name,
        [*me, "--serve-vendor", str(data_dir) if data_dir else "-", store or "-", public or "-"],
        work,
    )


def measure(rounds: int, per_round: int, concurrency: int) -> None:
    """Start the processes, run the interleaved rounds, print the figures."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    me = [sys.executable, str(Path(__file__).resolve())]
    work = Path(tempfile.mkdtemp(prefix="vrm-bench-postgres-"))
    pg_data = work / "pg" / "data"
    servers: list[Server] = []
    loads: dict[str, Load] = {}
    try:
        admin = start_postgres(pg_data)
        postmaster = postmaster_pid(pg_data)
        inbox = start("inbox", [*me, "--serve-inbox"], work)
        servers.append(inbox)
        sqlite = _vendor(work, "sqlite", data_dir=work / "sqlite", store=None, public=None)
        one = _vendor(
            work, "pg1", data_dir=None, store=create_database(admin, "bench_one"), public=None
        )
        shared = create_database(admin, "bench_two")
        first = _vendor(work, "pg2a", data_dir=None, store=shared, public=None)
        second = _vendor(work, "pg2b", data_dir=None, store=shared, public=first.url)
        servers += [sqlite, one, first, second]
        groups: dict[str, list[Server]] = {
            "sqlite": [sqlite],
            "postgresql x1": [one],
            "postgresql x2": [first, second],
        }
        reply_to = inbox.url + INBOX_PATH
        total = WARM_UP_MESSAGES + rounds * per_round
        for name, group in groups.items():
            path = work / f"{name.replace(' ', '-')}.tokens"
            path.write_bytes(b"\n".join(signed_rfis(group[0].url, total, reply_to)))
            loads[name] = Load(path)
        warmed = 0
        for name, group in groups.items():
            loads[name].run([s.url for s in group], 0, WARM_UP_MESSAGES, 1)
            warmed += WARM_UP_MESSAGES
        _wait_delivered(inbox.url, warmed)
        throughput: dict[str, list[float]] = {name: [] for name in groups}
        vendor_cpu: dict[str, list[float]] = {name: [] for name in groups}
        database_cpu: dict[str, list[float]] = {name: [] for name in groups}
        loop_cpu: dict[str, list[float]] = {name: [] for name in groups}
        statuses: dict[str, dict[str, int]] = {name: {} for name in groups}
        ratios: dict[str, list[float]] = {name: [] for name in groups}
        names = list(groups)
        for index in range(rounds):
            order = names[index % len(names) :] + names[: index % len(names)]
            start_at = WARM_UP_MESSAGES + index * per_round
            rate: dict[str, float] = {}
            for name in order:
                group = groups[name]
                before = [cpu_by_thread(s.process.pid) for s in group]
                database_before = postgres_cpu_ns(postmaster)
                already = delivered(inbox.url)
                result = loads[name].run([s.url for s in group], start_at, per_round, concurrency)
                _wait_delivered(inbox.url, already + per_round)
                after = [cpu_by_thread(s.process.pid) for s in group]
                database_spent = postgres_cpu_ns(postmaster) - database_before
                for status, count in result["statuses"].items():
                    statuses[name][status] = statuses[name].get(status, 0) + count
                rate[name] = per_round / result["wall"]
                throughput[name].append(rate[name])
                spent = loop = 0
                for server, was, now in zip(group, before, after, strict=True):
                    threads = json.loads((work / f"{server.name}.threads.json").read_text())
                    for thread, ns in now.items():
                        used = ns - was.get(thread, 0)
                        spent += used
                        if _thread_kind(threads.get(thread, "?")) == "event loop":
                            loop += used
                vendor_cpu[name].append(spent / per_round / 1e6)
                loop_cpu[name].append(loop / per_round / 1e6)
                database_cpu[name].append(
                    database_spent / per_round / 1e6 if name != "sqlite" else 0.0
                )
            for name in names:
                ratios[name].append(rate[name] / rate["sqlite"])
    finally:
        for running in loads.values():
            running.close()
        for server in servers:
            stop(server.process)
        stop_postgres(pg_data)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{rounds} interleaved rounds of {per_round} personal RFIs (fresh pseudonyms, replyTo,"
        f" each offer delivered before the round ends), concurrency {concurrency}, load from"
        f" another process, 127.0.0.1, {os.cpu_count()} cores shared by all processes"
    )
    for name in names:
        print(f"{name}:")
        print("  statuses: " + ", ".join(f"{s}x{n}" for s, n in sorted(statuses[name].items())))
        print(f"  RFIs/s, median [q1 .. q3]:                 {spread(throughput[name])}")
        print(f"  vendor CPU per RFI, all processes (ms):    {spread(vendor_cpu[name])}")
        print(f"    of which event loops (ms):               {spread(loop_cpu[name])}")
        if name != "sqlite":
            print(f"  database server CPU per RFI (ms):          {spread(database_cpu[name])}")
        total_cpu = [v + d for v, d in zip(vendor_cpu[name], database_cpu[name], strict=True)]
        print(f"  vendor + database CPU per RFI (ms):        {spread(total_cpu)}")
    for name in names[1:]:
        print(f"throughput {name} / sqlite, per round: {spread(ratios[name])}")
    two_over_one = [
        a / b for a, b in zip(throughput["postgresql x2"], throughput["postgresql x1"], strict=True)
    ]
    print(f"throughput postgresql x2 / x1, per round: {spread(two_over_one)}")
    print(f"ratio {statistics.median(ratios['postgresql x1']):.3f}")


if __name__ == "__main__":
    main()
