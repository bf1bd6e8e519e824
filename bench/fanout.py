"""Is an intentcast concurrent? One RFI to 50 vendors, against the slowest answer.

Starts 50 reference vendor agents (catalogue ``dealer-online``, each with its
own signing key, SQLite store and port on 127.0.0.1) hosted ``--processes``
to a process (``reference_vendor.app.create_app``, the same application
``vrm vendor serve`` runs, one event loop per process), plus one more that
answers a single RFI first, alone (warm-up, and the solo answer time).  The
reference buyer agent runs here through its public API (``BuyerAgent`` with
its own inbox server on 127.0.0.1, a fresh personal data store) and
intentcasts one RFI (``send_rfis``) to all 50, each under its own pairwise
pseudonym, then waits until every vendor's signed offer has arrived at its
inbox, been verified and stored.  Prints:

* total: wall time from the intentcast to the 50th offer stored (discovery
  and key fetches of each vendor included: the buyer has never met them);
* per vendor, the time from the buyer contacting it (its discovery) to its
  offer stored: the slowest, the median and the fastest;
* the answer time of the warm-up vendor asked alone.

The last line is ``ratio <total ÷ slowest>``: about 1 when the 50
conversations overlap, about 50 if they ran one after the other.  Vendors
deliver replies ``--reply-delay`` seconds after committing them (as in the
demo).  Bounded: 120 s overall; every vendor process is stopped (killed if
need be) and all data removed whatever happens (errors, Ctrl-C, SIGTERM).
Figures only; nothing is asserted.

Run: ``python bench/fanout.py [--vendors 50] [--processes 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from reference_buyer.agent import BuyerAgent, Decorrelation, Delivery, Inbound
from reference_buyer.app import AppConfig, create_app
from reference_buyer.net import DeliveryPolicy
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_rfi_body
from reference_buyer.store import SqliteStore
from vrm_protocol.http_binding import INBOX_PATH
from vrm_protocol.vocabulary import MessageType

LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")
CATALOGUE = "dealer-online"
OVERALL_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 10.0
MAX_VENDORS = 100
MAX_PROCESSES = 50


# -- the vendor host processes -------------------------------------------------------------------


def serve_vendors(count: int, data_root: Path, reply_delay: float) -> None:
    """Be a vendor host: ``count`` vendor agents, one port each, until SIGTERM/SIGINT.

    Prints ``listening on http://127.0.0.1:PORT`` once per vendor, once bound.

    Raises:
        reference_vendor.catalogue.CatalogueError: the catalogue does not load.
        OSError: a port cannot be bound or a data directory created.
    """
    # Imported here: only the host processes need the vendor's code.
    from reference_vendor.app import create_app as create_vendor_app
    from reference_vendor.catalogue import load_catalogue
    from reference_vendor.config import VendorConfig

    catalogue = load_catalogue(CATALOGUE)

    async def serve() -> None:
        runners: list[web.AppRunner] = []
        try:
            for _ in range(count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind(("127.0.0.1", 0))
                sock.listen(128)
                sock.setblocking(False)
                url = f"http://127.0.0.1:{sock.getsockname()[1]}"
                data_dir = data_root / url.rsplit(":", 1)[1]
                config = VendorConfig(
                    catalogue=catalogue,
                    data_dir=data_dir,
                    public_url=url,
                    reply_delay=reply_delay,
                    # The bench's buyer agents listen on this machine (spec §11.8).
                    allow_delivery_to=frozenset({"127.0.0.1"}),
                )
                runner = web.AppRunner(
                    create_vendor_app(config), handle_signals=False, access_log=None
                )
                runners.append(runner)
                await runner.setup()
                await web.SockSite(runner, sock).start()
                print(f"listening on {url}", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            for runner in runners:
                await runner.cleanup()

    asyncio.run(serve())


def start_hosts(
    vendors: int, processes: int, work_dir: Path, reply_delay: float
) -> list[tuple[subprocess.Popen[bytes], Path, int]]:
    """Start ``processes`` host processes sharing ``vendors`` vendors: (process, log, count)."""
    hosts = []
    for index in range(processes):
        count = vendors // processes + (1 if index < vendors % processes else 0)
        if count == 0:
            continue
        log = work_dir / f"host-{index}.log"
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve-vendors",
            str(count),
            str(work_dir / "vendors"),
            str(reply_delay),
        ]
        with log.open("wb") as handle:
            # Own session: a Ctrl-C in the terminal reaches only the bench,
            # which then stops the hosts itself.
            process = subprocess.Popen(
                argv, stdout=handle, stderr=handle, stdin=subprocess.DEVNULL, start_new_session=True
            )
        hosts.append((process, log, count))
    return hosts


async def await_listening(
    hosts: list[tuple[subprocess.Popen[bytes], Path, int]], deadline: float
) -> list[str]:
    """Every vendor's base URL, once every host has announced all of its vendors.

    Raises:
        RuntimeError: a host exited or the deadline passed first.
    """
    while True:
        urls: list[str] = []
        ready = True
        for process, log, count in hosts:
            found = [match.decode() for match in LISTENING.findall(log.read_bytes())]
            urls.extend(found)
            if len(found) < count:
                ready = False
                if process.poll() is not None:
                    raise RuntimeError(
                        f"a vendor host exited ({process.returncode}):\n"
                        + log.read_text(errors="replace")[-2000:]
                    )
        if ready:
            return urls
        if time.monotonic() > deadline:
            raise RuntimeError("the vendors did not all start in time")
        await asyncio.sleep(0.05)


def stop_hosts(hosts: list[tuple[subprocess.Popen[bytes], Path, int]]) -> None:
    """SIGTERM every host, then SIGKILL the ones that do not stop in time; all reaped."""
    for process, _, _ in hosts:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
    for process, _, _ in hosts:
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def resident_megabytes(pids: list[int]) -> float:
    """The summed resident set size of ``pids`` (Linux /proc), in MB; 0 where unreadable."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


# -- the buyer -----------------------------------------------------------------------------------


class TimedBuyerAgent(BuyerAgent):
    """The reference buyer agent, noting when it first contacts each vendor and
    when each vendor's offer is stored (the agent's behaviour is unchanged)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contacted: dict[str, float] = {}
        self.offered: dict[str, float] = {}
        self.offers_changed = asyncio.Event()

    async def discover(self, party_url: str) -> dict[str, Any]:
        """Note the first contact, then discover as the agent does."""
        self.contacted.setdefault(party_url, time.perf_counter())
        return await super().discover(party_url)

    async def receive(
        self, token: bytes, *, via: str = "inbox", reply_tag: str | None = None
    ) -> Inbound:
        """Receive as the agent does, then note a newly stored offer."""
        inbound = await super().receive(token, via=via, reply_tag=reply_tag)
        if inbound.status == 202 and inbound.message.type == MessageType.OFFER:
            self.offered.setdefault(inbound.message.counterparty, time.perf_counter())
            self.offers_changed.set()
        return inbound

    async def offers_from(self, vendors: list[str]) -> None:
        """Return once an offer from each of ``vendors`` is stored."""
        while not all(vendor in self.offered for vendor in vendors):
            self.offers_changed.clear()
            await self.offers_changed.wait()


async def intentcast(
    agent: TimedBuyerAgent, vendors: list[str], body: Mapping[str, Any]
) -> tuple[float, dict[str, Delivery]]:
    """Send one RFI to ``vendors`` and wait for all offers: wall seconds and deliveries."""
    started = time.perf_counter()
    deliveries = await agent.send_rfis(vendors, body)
    await agent.offers_from(vendors)
    return time.perf_counter() - started, deliveries


async def measure(work_dir: Path, vendors: int, processes: int, reply_delay: float) -> None:
    """Start everything, measure, print; stop everything.

    Raises:
        RuntimeError: the vendors did not start.
        TimeoutError: the run overran OVERALL_TIMEOUT_SECONDS.
    """
    deadline = time.monotonic() + OVERALL_TIMEOUT_SECONDS
    # One vendor more than the fan-out: asked alone first.
    hosts = start_hosts(vendors + 1, processes, work_dir, reply_delay)
    try:
        started = time.perf_counter()
        urls = await await_listening(hosts, deadline)
        start_seconds = time.perf_counter() - started
        memory = resident_megabytes([process.pid for process, _, _ in hosts])
        solo, fanned = urls[0], urls[1:]
        store = SqliteStore(work_dir / "buyer")
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await buy(store, solo, fanned, start_seconds, memory, len(hosts))
        finally:
            store.close()
    finally:
        stop_hosts(hosts)


async def buy(
    store: SqliteStore,
    solo: str,
    fanned: list[str],
    start_seconds: float,
    memory: float,
    process_count: int,
) -> None:
    """The buyer's side: the solo RFI, then the intentcast; prints the figures."""
    # Loopback vendors (allow-listed, spec D6); the copies go at once, as the
    # figure measures the fan-out itself, not the decorrelating pauses (spec §12).
    agent = TimedBuyerAgent(
        store,
        load_policy(),
        delivery=DeliveryPolicy.loopback(),
        decorrelation=Decorrelation(spread_seconds=0.0),
    )
    try:
        config = AppConfig()
        runner = web.AppRunner(create_app(agent, config), handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        config.base_url = agent.agent_id = base
        agent.inbox_url = base + INBOX_PATH
        try:
            body = sally_rfi_body(agent.clock.now())
            solo_seconds, _ = await intentcast(agent, [solo], body)
            total, deliveries = await intentcast(agent, fanned, body)
        finally:
            await runner.cleanup()
    finally:
        await agent.close()
    answers = sorted(agent.offered[vendor] - agent.contacted[vendor] for vendor in fanned)
    pseudonyms = {delivery.message.payload["from"] for delivery in deliveries.values()}
    slowest = answers[-1]
    print(
        f"{len(fanned)} vendor agents ({CATALOGUE}) in {process_count} processes on 127.0.0.1: "
        f"started in {start_seconds:.1f} s, {memory:.0f} MB resident"
    )
    print(
        f"one RFI, {len(pseudonyms)} pseudonyms, {len(answers)} signed offers verified and stored"
    )
    print(f"one vendor alone (warm-up):     {solo_seconds * 1000:8.1f} ms")
    print(f"total, intentcast to last offer: {total * 1000:7.1f} ms")
    print(
        f"per vendor, contact to offer:   slowest {slowest * 1000:.1f} ms  "
        f"median {statistics.median(answers) * 1000:.1f} ms  "
        f"fastest {answers[0] * 1000:.1f} ms"
    )
    print(f"the same answers one after the other (sum): {sum(answers) * 1000:.1f} ms")
    print(f"ratio {total / slowest:.3f}")


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures (or, with ``--serve-vendors``, be a vendor host)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vendors", type=int, default=50, help=f"1..{MAX_VENDORS}")
    parser.add_argument(
        "--processes", type=int, default=5, help=f"vendor host processes (1..{MAX_PROCESSES})"
    )
    parser.add_argument("--reply-delay", type=float, default=0.05, help="vendors' reply delay (s)")
    parser.add_argument("--serve-vendors", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve_vendors:
        count, data_root, reply_delay = options.serve_vendors
        serve_vendors(int(count), Path(data_root), float(reply_delay))
        return
    if not 1 <= options.vendors <= MAX_VENDORS:
        parser.error(f"--vendors is 1..{MAX_VENDORS}")
    if not 1 <= options.processes <= MAX_PROCESSES:
        parser.error(f"--processes is 1..{MAX_PROCESSES}")
    if not 0 <= options.reply_delay <= 5:
        parser.error("--reply-delay is 0..5")

    # A SIGTERM to the bench unwinds like Ctrl-C, so the hosts are stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work_dir = Path(tempfile.mkdtemp(prefix="vrm-bench-fanout-"))
    try:
        asyncio.run(measure(work_dir, options.vendors, options.processes, options.reply_delay))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
