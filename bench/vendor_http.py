"""The vendor over HTTP against a fair ceiling, measured the honest way (issue 14).

Four processes on 127.0.0.1, started by this script (each ``--serve-*`` mode):

* the reference vendor (``reference_vendor.app.serve``, a fresh SQLite store,
  its delivery allowed to loopback, rate budgets out of the way): every
  ``202`` means the RFI verified and it, its receipt, the relationship and the
  offer it caused (signed) were committed (WAL, ``synchronous=FULL``) before
  the answer; the offer is then POSTed by the outbox to the buyer inbox the
  RFI named in ``replyTo``;
* the fair ceiling: a bare aiohttp endpoint that runs the library's inbound
  pipeline on the body (``codec.decode``) and answers ``202`` with a signed
  receipt built the way the vendor builds its own (same model, same size);
* a buyer inbox that takes the vendor's offers (``202``);
* the load generator, in a process of its own, POSTing pre-signed RFIs (each
  from a fresh pseudonym, with ``replyTo``) ``--concurrency`` at a time.

The vendor and the ceiling are measured in interleaved rounds (at least 20,
alternating which goes first) of ``--per-round`` RFIs each. Per round: the
throughput (RFIs answered per second of the load) and the server's CPU per
RFI (all its threads, from ``/proc/<pid>/task/*/schedstat``; for the vendor
counted until every offer of the round reached the buyer inbox, so delivery
is included). A third contender, the vendor again with RFIs that name no
``replyTo`` (the offer waits in the mailbox), shows what delivery costs.
Printed: the median and spread (first and third quartile) of each, the
vendor's CPU by thread (event loop, store writer, the rest), the CPU an idle
vendor uses, and last the line ``ratio <median of vendor ÷ ceiling
throughput per round>``. Targets (issue 14): CPU per RFI <= 1.3 ms, ratio >=
0.5. Figures only; nothing is asserted.

Run: ``python bench/vendor_http.py [--rounds 20] [--per-round 100] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

from conformance.peers import bodies
from vrm_protocol.codec import build_message, decode, encode, new_message_id
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import INBOX_PATH
from vrm_protocol.keys import PairwiseIdentity, SigningKey, resolve_did_jwk
from vrm_protocol.models import MessageRef, ReceiptBody, ReceiptMessage
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, PROTOCOL_VERSION, MessageType

LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
#: Per load run: the load generator is given up (and killed) after this.
LOAD_TIMEOUT_SECONDS = 120.0
#: How long a round waits for its offers to reach the buyer inbox.
DELIVERY_TIMEOUT_SECONDS = 60.0
MAX_PER_ROUND = 1000
MAX_CONCURRENCY = 64
MIN_ROUNDS = 20
WARM_UP_MESSAGES = 40
IDLE_SECONDS = 5.0
COUNT_PATH = "/count"


# -- the servers (each in a process of its own) ------------------------------------------------


async def _serve(app: web.Application) -> None:
    """Serve ``app`` on 127.0.0.1 (a free port) until SIGTERM/SIGINT."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    sock = _bound_socket()
    await web.SockSite(runner, sock).start()
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await _until_stopped()
    await runner.cleanup()


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def serve_vendor(data_dir: Path) -> None:
    """The reference vendor (dealer-mayfair), delivering to loopback, budgets raised,
    logging as ``vrm vendor serve`` does (a line per message accepted, to stderr)."""
    from reference_vendor.app import serve

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from reference_vendor.catalogue import load_catalogue
    from reference_vendor.config import VendorConfig

    async def run() -> None:
        sock = _bound_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = VendorConfig(
            catalogue=load_catalogue("dealer-mayfair"),
            data_dir=data_dir,
            public_url=url,
            allow_delivery_to=frozenset({"127.0.0.1"}),
            reply_delay=0.0,
            # The bench sends from one address, far more than a person would.
            rate_per_second=1e6,
            burst=1_000_000,
            address_rate_per_second=1e6,
            address_burst=1_000_000,
        )
        serving = await serve(config, sock)
        # Which OS thread is which (Python 3.11 names its threads for itself only).
        names = {str(t.native_id): t.name for t in threading.enumerate()}
        (data_dir.parent / "threads.json").write_text(json.dumps(names))
        print(f"listening on {url}", flush=True)
        await _until_stopped()
        await serving.close()

    asyncio.run(run())


def serve_ceiling(receiver: str) -> None:
    """``POST /vrm/inbox``: ``codec.decode`` of the body, then a signed receipt built
    as the vendor builds its own; ``400`` with the code when the pipeline refuses."""
    key = SigningKey.generate()

    async def inbox(request: web.Request) -> web.Response:
        token = await request.read()
        now = datetime.now(UTC).replace(microsecond=0)
        try:
            received = decode(token, resolve_key=resolve_did_jwk, receiver=receiver, now=now)
        except ProtocolError as error:
            return web.Response(status=400, text=str(error.code))
        message = received.message
        stamp = format_timestamp(now)
        receipt = ReceiptMessage(
            vrm=PROTOCOL_VERSION,
            type="receipt",
            id=new_message_id(),
            thread=message.thread,
            parent=message.id,
            from_=receiver,
            to=(message.from_,),
            created=stamp,
            expires=format_timestamp(now + timedelta(days=1)),
            body=ReceiptBody(
                regarding=MessageRef(id=message.id, digest=received.digest),
                status="accepted",
                received_at=stamp,
            ),
        )
        return web.Response(status=202, body=encode(receipt, key), content_type=MESSAGE_MEDIA_TYPE)

    app = web.Application()
    app.router.add_post(INBOX_PATH, inbox)
    asyncio.run(_serve(app))


def serve_inbox() -> None:
    """A buyer inbox that takes every POST (``202``) and counts them (``GET /count``)."""
    taken = [0]

    async def inbox(request: web.Request) -> web.Response:
        await request.read()
        taken[0] += 1
        return web.Response(status=202)

    async def count(request: web.Request) -> web.Response:
        return web.json_response(taken[0])

    app = web.Application()
    app.router.add_post(INBOX_PATH, inbox)
    app.router.add_get(COUNT_PATH, count)
    asyncio.run(_serve(app))


# -- the load generator (a process of its own, driven over its stdin) --------------------------


async def _send_all(url: str, tokens: list[bytes], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": MESSAGE_MEDIA_TYPE}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async def send(session: aiohttp.ClientSession, token: bytes) -> None:
        async with gate:
            started = time.perf_counter()
            async with session.post(url + INBOX_PATH, data=token, headers=headers) as answer:
                await answer.read()
            latencies.append(time.perf_counter() - started)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(send(session, token) for token in tokens))
        wall = time.perf_counter() - start
    return {"wall": wall, "latencies": latencies, "statuses": statuses}


def serve_load(token_file: Path) -> None:
    """Read ``{"url", "start", "count", "concurrency"}`` lines; POST those tokens of
    ``token_file`` (one per line); answer each with one JSON line."""
    tokens = token_file.read_bytes().split()
    for line in sys.stdin:
        order = json.loads(line)
        chosen = tokens[order["start"] : order["start"] + order["count"]]
        result = asyncio.run(_send_all(order["url"], chosen, order["concurrency"]))
        print(json.dumps(result), flush=True)


# -- driving the processes -----------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str


def start(name: str, argv: list[str], work: Path) -> Server:
    """Start a server that prints ``listening on URL``.

    Raises:
        RuntimeError: it exited or did not announce its address in time (it is killed).
    """
    out, err = work / f"{name}.out", work / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        match = LISTENING.search(out.read_bytes())
        if match is not None:
            return Server(name, process, match.group(1).decode())
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"the {name} did not start:\n" + err.read_text()[-2000:])
        time.sleep(0.02)


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time; always reaped."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


def cpu_by_thread(pid: int) -> dict[str, int]:
    """CPU nanoseconds of each live thread of ``pid``, by thread id."""
    spent: dict[str, int] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            spent[task] = int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return spent


def _thread_kind(name: str) -> str:
    if name == "MainThread":
        return "event loop"
    if name.endswith("-writer"):
        return "store writer"
    return "other threads"


class Load:
    """The load generator process."""

    def __init__(self, token_file: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-load", str(token_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )

    def run(self, url: str, start_at: int, count: int, concurrency: int) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        order = {"url": url, "start": start_at, "count": count, "concurrency": concurrency}
        stdin.write((json.dumps(order) + "\n").encode())
        stdin.flush()
        line = _read_line(stdout, LOAD_TIMEOUT_SECONDS)
        return dict(json.loads(line))

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        stop(self.process)


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    if not selector.select(timeout):
        raise TimeoutError("the load generator did not answer")
    return stream.readline()


def delivered(inbox_url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(inbox_url + COUNT_PATH, timeout=5) as answer:
        return int(json.loads(answer.read()))


def signed_rfis(receiver: str, count: int, reply_to: str | None) -> list[bytes]:
    """``count`` personal RFIs to ``receiver``, each from a fresh pseudonym."""
    now = datetime.now(UTC)
    body = bodies.personal_rfi_body(now)
    tokens = []
    for _ in range(count):
        buyer = PairwiseIdentity.generate()
        payload = build_message(
            MessageType.PERSONAL_RFI,
            body,
            sender=buyer.identifier,
            to=[receiver],
            now=now,
            reply_inbox=reply_to,
            lifetime=timedelta(hours=2),
        )
        tokens.append(encode(payload, buyer.signing_key))
    return tokens


# -- figures ---------------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    """Median and quartiles, as ``median [q1 .. q3]``."""
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "-"
    q1, median, q3 = statistics.quantiles(values, n=4)
    return f"{median:.3f} [{q1:.3f} .. {q3:.3f}]"


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures (or be one of the bench's helper processes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve-vendor", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--serve-ceiling", metavar="RECEIVER", help=argparse.SUPPRESS)
    parser.add_argument("--serve-inbox", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-load", metavar="TOKENS", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve_vendor:
        return serve_vendor(Path(options.serve_vendor))
    if options.serve_ceiling:
        return serve_ceiling(options.serve_ceiling)
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


def measure(rounds: int, per_round: int, concurrency: int) -> None:
    """Start the processes, run the interleaved rounds, print the figures."""
    # A SIGTERM to the bench unwinds like Ctrl-C, so the processes are stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    me = [sys.executable, str(Path(__file__).resolve())]
    work = Path(tempfile.mkdtemp(prefix="vrm-bench-vendor-"))
    servers: list[Server] = []
    loads: dict[str, Load] = {}
    try:
        inbox = start("inbox", [*me, "--serve-inbox"], work)
        servers.append(inbox)
        vendor = start("vendor", [*me, "--serve-vendor", str(work / "data")], work)
        servers.append(vendor)
        ceiling = start("ceiling", [*me, "--serve-ceiling", vendor.url], work)
        servers.append(ceiling)
        reply_to = inbox.url + INBOX_PATH
        total = WARM_UP_MESSAGES + rounds * per_round
        tokens = {
            "vendor": signed_rfis(vendor.url, total, reply_to),
            "mailbox": signed_rfis(vendor.url, total, None),
            "ceiling": signed_rfis(vendor.url, total, reply_to),
        }
        files: dict[str, Path] = {}
        for name, signed in tokens.items():
            files[name] = work / f"{name}.tokens"
            files[name].write_bytes(b"\n".join(signed))
        # One generator per target, each over its own tokens.
        loads.update({name: Load(path) for name, path in files.items()})
        targets = {"vendor": vendor, "mailbox": vendor, "ceiling": ceiling}
        for name, target in targets.items():
            loads[name].run(target.url, 0, WARM_UP_MESSAGES, 1)
        _wait_delivered(inbox.url, WARM_UP_MESSAGES)
        thread_names = json.loads((work / "threads.json").read_text())
        throughput: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        ratios: list[float] = []
        mailbox_ratios: list[float] = []
        statuses: dict[str, dict[str, int]] = {name: {} for name in targets}
        by_thread: dict[str, float] = {}
        names = list(targets)
        for index in range(rounds):
            order = names[index % 3 :] + names[: index % 3]
            start_at = WARM_UP_MESSAGES + index * per_round
            rate: dict[str, float] = {}
            for name in order:
                pid = targets[name].process.pid
                before = cpu_by_thread(pid)
                already = delivered(inbox.url)
                result = loads[name].run(targets[name].url, start_at, per_round, concurrency)
                if name == "vendor":
                    _wait_delivered(inbox.url, already + per_round)
                after = cpu_by_thread(pid)
                for status, count in result["statuses"].items():
                    statuses[name][status] = statuses[name].get(status, 0) + count
                rate[name] = per_round / result["wall"]
                throughput[name].append(rate[name])
                spent = sum(after.values()) - sum(before.get(k, 0) for k in after)
                cpu[name].append(spent / per_round / 1e6)
                if name == "vendor":
                    for thread, ns in after.items():
                        kind = _thread_kind(thread_names.get(thread, "?"))
                        by_thread[kind] = by_thread.get(kind, 0.0) + (ns - before.get(thread, 0))
            ratios.append(rate["vendor"] / rate["ceiling"])
            mailbox_ratios.append(rate["mailbox"] / rate["ceiling"])
        idle_before = sum(cpu_by_thread(vendor.process.pid).values())
        time.sleep(IDLE_SECONDS)
        idle = sum(cpu_by_thread(vendor.process.pid).values()) - idle_before
    finally:
        for running in loads.values():
            running.close()
        for server in servers:
            stop(server.process)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{rounds} interleaved rounds of {per_round} personal RFIs (fresh pseudonyms, replyTo),"
        f" concurrency {concurrency}, load from another process, 127.0.0.1"
    )
    for name, title in (
        (
            "vendor",
            "vendor (202 = verified, offer signed, all committed; offer POSTed to the inbox)",
        ),
        ("mailbox", "vendor, RFIs without replyTo (the offer waits in the mailbox only)"),
        ("ceiling", "ceiling (aiohttp + codec.decode + a signed receipt of the same size)"),
    ):
        print(f"{title}:")
        print("  statuses: " + ", ".join(f"{s}x{n}" for s, n in sorted(statuses[name].items())))
        print(f"  RFIs/s, median [q1 .. q3]:        {spread(throughput[name])}")
        print(f"  server CPU per RFI (ms):          {spread(cpu[name])}")
    messages = rounds * per_round
    print(f"vendor without replyTo / ceiling throughput: {spread(mailbox_ratios)}")
    print(
        "vendor CPU per RFI by thread, with delivery (ms): "
        + ", ".join(f"{kind} {ns / messages / 1e6:.3f}" for kind, ns in sorted(by_thread.items()))
    )
    print(f"idle vendor: {idle / 1e6:.1f} ms of CPU in {IDLE_SECONDS:.0f} s")
    cpu_median = statistics.median(cpu["vendor"])
    ratio = statistics.median(ratios)
    print(
        f"targets: vendor CPU per RFI {cpu_median:.3f} ms (<= 1.3: "
        f"{'met' if cpu_median <= 1.3 else 'MISSED'}); throughput ratio {ratio:.3f} (>= 0.5: "
        f"{'met' if ratio >= 0.5 else 'MISSED'}); spread of the ratio {spread(ratios)}"
    )
    if cpu_median > 1.3 or ratio < 0.5:
        print("a target is missed; where the vendor's CPU goes:")
        breakdown()
    print(f"ratio {ratio:.3f}")


def breakdown(count: int = 400) -> None:
    """Where the vendor's own CPU goes, without HTTP: its pipeline in this process on
    ``count`` RFIs one after the other, each step timed on the event loop's thread,
    and the store writer's thread measured whole."""
    from reference_vendor.agent import VendorAgent
    from reference_vendor.catalogue import load_catalogue
    from reference_vendor.config import VendorConfig
    from reference_vendor.store import SqliteVendorStore
    from vrm_agent import inbox
    from vrm_agent.clock import AgentClock
    from vrm_agent.net import client_session

    spent: dict[str, int] = {}

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time_ns()
            try:
                return await original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0) + time.thread_time_ns() - started

        def plain(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time_ns()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0) + time.thread_time_ns() - started

        setattr(owner, name, wrapper if asyncio.iscoroutinefunction(original) else plain)

    timed(inbox.Pipeline, "receive", "total")
    timed(inbox.DirectReception, "decode", "decode (library: verify, schema, model)")
    timed(inbox.Pipeline, "_receipt", "receipt (model, encode: schema, sign)")
    timed(inbox.Pipeline, "_handle", "handler (rules, typed offer body)")
    timed(inbox.Pipeline, "_sign_replies", "reply (envelope, encode, decide SENT)")
    timed(inbox.Pipeline, "_commit", "commit (hand-off to the writer and back)")

    async def run(work: Path) -> int:
        vendor = "https://dealer.bench"
        config = VendorConfig(
            catalogue=load_catalogue("dealer-mayfair"), data_dir=work, public_url=vendor
        )
        store = await asyncio.to_thread(SqliteVendorStore, work / "vendor.sqlite3")
        session = client_session(config.delivery_policy)
        try:
            agent = VendorAgent(config, store, AgentClock(), SigningKey.generate(), session=session)
            tokens = signed_rfis(vendor, count + 20, "https://buyer.bench/vrm/inbox")
            for token in tokens[:20]:
                await agent.receive(token)
            spent.clear()
            writer = _writer_cpu()
            for token in tokens[20:]:
                await agent.receive(token)
            return _writer_cpu() - writer
        finally:
            await session.close()
            await store.close()

    work = Path(tempfile.mkdtemp(prefix="vrm-bench-breakdown-"))
    try:
        writer = asyncio.run(run(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = spent.pop("total")
    print(f"breakdown, in process, one RFI at a time ({count} RFIs), microseconds per RFI:")
    for label, ns in spent.items():
        print(f"  {label:48s} {ns / count / 1e3:7.1f}")
    rest = total - sum(spent.values())
    print(f"  {'the rest (store reads, decide, locks, glue)':48s} {rest / count / 1e3:7.1f}")
    print(f"  {'event loop in all':48s} {total / count / 1e3:7.1f}")
    print(f"  {'store writer thread (SQL, WAL, fsync)':48s} {writer / count / 1e3:7.1f}")


def _writer_cpu() -> int:
    """CPU nanoseconds of this process's store writer thread(s)."""
    total = 0
    for thread in threading.enumerate():
        if thread.name.endswith("-writer") and thread.native_id is not None:
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text()
                total += int(stat.split()[0])
    return total


def _wait_delivered(inbox_url: str, count: int) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while delivered(inbox_url) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the offers did not all reach the inbox within {DELIVERY_TIMEOUT_SECONDS} s"
            )
        time.sleep(0.005)


if __name__ == "__main__":
    main()
