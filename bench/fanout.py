"""Is an intentcast concurrent, and what does it cost? One RFI to 50 vendors, measured.

Starts 51 reference vendor agents (catalogue ``dealer-online``, each with its
own signing key, SQLite store and port on 127.0.0.1) hosted ``--processes`` to
a process (``reference_vendor.app.create_app``, the same application ``vrm
vendor serve`` runs, one event loop per process). The reference buyer agent
runs here through its public API (``BuyerAgent`` with its own inbox server on
127.0.0.1), a fresh one (new store, new pseudonyms) for every round, so each
round is the same work: every vendor is contacted for the first time
(discovery and key set fetched within D7's bounds, a pseudonym and its key
file made), sent the RFI under its own pseudonym (delivered, receipt
verified), and its signed offer arrives at the buyer's inbox, is verified and
stored. Vendors deliver replies ``--reply-delay`` seconds after committing
them (as in the demo).

The rounds are interleaved (issue 14): one warm vendor asked alone, then the
fan-out to the 50 others, ``--rounds`` times. Each round measures its wall
time (from the intentcast to the last offer stored) and the CPU it cost: the
buyer process (all its threads, and its event loop's thread alone) and every
vendor host process (``/proc``, utime + stime). Prints, as medians over the
rounds with their spread (min-max):

* one warm vendor alone, and the fan-out, in wall time; and total / one alone;
* the CPU seconds per vendor on each side;
* the CPU lower bound of the fan-out: the work cannot finish before its CPU
  is spent on this machine's cores, nor before the buyer's event loop (one
  thread) has run its part, and a reply waits for the reply delay:
  ``max(event loop CPU, all CPU / cores) + reply delay``;
* the last line: ``ratio <fan-out wall / CPU lower bound>`` (issue 14's target: 2 or less).

Bounded: 300 s overall; every vendor process is stopped (killed if need be)
and all data removed whatever happens (errors, Ctrl-C, SIGTERM). Figures only;
nothing is asserted.

Run: ``python bench/fanout.py [--vendors 50] [--processes 5] [--rounds 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.policy import SharingPolicy, load_policy
from reference_buyer.scenario import sally_rfi_body
from vrm_agent.net import LOOPBACK
from vrm_agent.unit import UnitOfWork
from vrm_protocol.vocabulary import MessageType

LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")
CATALOGUE = "dealer-online"
OVERALL_TIMEOUT_SECONDS = 300.0
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


# -- CPU ------------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system, all threads) the processes ``pids`` used so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / _TICKS


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


@dataclass(frozen=True, slots=True)
class Round:
    """One round: wall seconds, and CPU seconds of each side."""

    wall: float
    buyer_cpu: float
    loop_cpu: float
    vendors_cpu: float


@dataclass(frozen=True, slots=True)
class Sample:
    """The messages of one conversation of a round, as they crossed the wire: the
    RFI and the vendor's receipt, the offer and her receipt; the vendor's key set."""

    vendor: str
    rfi: bytes
    vendor_receipt: bytes
    offer: bytes
    buyer_receipt: bytes
    jwks: dict[str, Any]


async def _sample(agent: BuyerAgent, vendor: str) -> Sample:
    entries = await agent.store.history(peer=vendor)
    rfi = next(e for e in entries if e.type is MessageType.PERSONAL_RFI)
    offer = next(e for e in entries if e.type is MessageType.OFFER)
    known = await agent.store.counterparty(vendor)
    assert rfi.token is not None
    assert rfi.receipt is not None
    assert offer.token is not None
    assert offer.receipt is not None
    assert known is not None
    return Sample(vendor, rfi.token, rfi.receipt, offer.token, offer.receipt, dict(known.jwks))


def _cpu_per_call(action: Callable[[], object], calls: int = 200) -> float:
    """CPU seconds (this thread) per call of ``action``: the median of 5 batches."""
    batches = []
    for _ in range(5):
        started = time.thread_time()
        for _ in range(calls):
            action()
        batches.append((time.thread_time() - started) / calls)
    return statistics.median(batches)


def crypto_floor(sample: Sample) -> dict[str, float]:
    """CPU seconds of the cryptography and validation one conversation cannot avoid,
    measured here with the library on the messages of ``sample``: the RFI signed
    and verified, a receipt signed and verified, the offer signed and verified,
    her receipt signed, a pseudonym's key pair made, a key set imported."""
    from vrm_protocol.canonical import b64url_decode
    from vrm_protocol.codec import decode, encode
    from vrm_protocol.freshness import parse_timestamp
    from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver
    from vrm_protocol.models import parse_message_dict

    def payload(token: bytes) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(b64url_decode(token.split(b".")[1]))
        return value

    her = PairwiseIdentity.generate()
    vendor_key = SigningKey.generate("EdDSA")
    vendor_keys = KeySet([vendor_key.public()])

    def as_from(token: bytes, sender: str, to: str) -> dict[str, Any]:
        return {**payload(token), "from": sender, "to": [to]}

    rfi = parse_message_dict(as_from(sample.rfi, her.identifier, sample.vendor))
    receipt = parse_message_dict(as_from(sample.vendor_receipt, sample.vendor, her.identifier))
    offer = parse_message_dict(as_from(sample.offer, sample.vendor, her.identifier))
    hers = parse_message_dict(as_from(sample.buyer_receipt, her.identifier, sample.vendor))
    tokens = {
        "rfi": encode(rfi, her.signing_key),
        "receipt": encode(receipt, vendor_key),
        "offer": encode(offer, vendor_key),
    }
    now = parse_timestamp(rfi.created)
    mine, theirs = key_resolver(None), key_resolver(vendor_keys)
    return {
        "sign the RFI": _cpu_per_call(lambda: encode(rfi, her.signing_key)),
        "verify the RFI": _cpu_per_call(
            lambda: decode(tokens["rfi"], resolve_key=mine, receiver=sample.vendor, now=now)
        ),
        "sign a receipt": _cpu_per_call(lambda: encode(receipt, vendor_key)),
        "verify a receipt": _cpu_per_call(
            lambda: decode(tokens["receipt"], resolve_key=theirs, receiver=her.identifier, now=now)
        ),
        "sign the offer": _cpu_per_call(lambda: encode(offer, vendor_key)),
        "verify the offer": _cpu_per_call(
            lambda: decode(tokens["offer"], resolve_key=theirs, receiver=her.identifier, now=now)
        ),
        "sign her receipt": _cpu_per_call(lambda: encode(hers, her.signing_key)),
        "make a pseudonym": _cpu_per_call(PairwiseIdentity.generate),
        "import a key set": _cpu_per_call(lambda: KeySet.from_jwks(sample.jwks)),
    }


# -- the buyer -----------------------------------------------------------------------------------


async def one_round(
    work_dir: Path, policy: SharingPolicy, vendors: list[str], vendor_pids: list[int]
) -> tuple[Round, Sample]:
    """A fresh buyer agent intentcasts one RFI to ``vendors`` and waits for every offer.

    Raises:
        RuntimeError: an offer did not come.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    sock.setblocking(False)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Loopback vendors (allow-listed, D6); the copies go at once, as the figure
    # measures the fan-out itself, not the decorrelating pauses (spec §12).
    config = BuyerConfig(
        data_dir=work_dir,
        public_url=base,
        allow_delivery_to=LOOPBACK,
        decorrelation=Decorrelation(spread_seconds=0.0),
    )
    agent = await BuyerAgent.open(config, policy)
    running = await serve(agent, sock)
    offered: set[str] = set()
    all_offered = asyncio.Event()
    committed = agent.pipeline.on_commit

    def note(work: UnitOfWork) -> None:
        # Instrumentation only: the agent behaves as it always does.
        if committed is not None:
            committed(work)
        if work.inbound is not None and work.inbound.type is MessageType.OFFER:
            offered.add(work.peer)
            if offered >= set(vendors):
                all_offered.set()

    agent.pipeline.on_commit = note
    try:
        body = sally_rfi_body(agent.clock.now())
        vendors_before = process_cpu_seconds(vendor_pids)
        cpu_before, loop_before = time.process_time(), time.thread_time()
        started = time.perf_counter()
        await agent.buying.send_rfis(vendors, body)
        async with asyncio.timeout(60):
            await all_offered.wait()
        wall = time.perf_counter() - started
        loop_cpu = time.thread_time() - loop_before
        buyer_cpu = time.process_time() - cpu_before
        vendors_cpu = process_cpu_seconds(vendor_pids) - vendors_before
        sample = await _sample(agent, vendors[-1])
    except TimeoutError as error:
        raise RuntimeError(f"offers missing from {sorted(set(vendors) - offered)}") from error
    finally:
        await running.close()
        await agent.close()
    return Round(wall, buyer_cpu, loop_cpu, vendors_cpu), sample


def spread(values: list[float], scale: float = 1.0, unit: str = "") -> str:
    """``median (min-max)`` of ``values`` times ``scale``."""
    shown = sorted(value * scale for value in values)
    return (
        f"{statistics.median(shown):.3g}{unit} ({shown[0]:.3g}-{shown[-1]:.3g}{unit})"
        if unit
        else f"{statistics.median(shown):.3f} ({shown[0]:.3f}-{shown[-1]:.3f})"
    )


async def measure(
    work_dir: Path, vendors: int, processes: int, reply_delay: float, rounds: int
) -> None:
    """Start everything, measure, print; stop everything.

    Raises:
        RuntimeError: the vendors did not start, or an offer did not come.
        TimeoutError: the run overran OVERALL_TIMEOUT_SECONDS.
    """
    deadline = time.monotonic() + OVERALL_TIMEOUT_SECONDS
    # One vendor more than the fan-out: asked alone.
    hosts = start_hosts(vendors + 1, processes, work_dir, reply_delay)
    try:
        started = time.perf_counter()
        urls = await await_listening(hosts, deadline)
        start_seconds = time.perf_counter() - started
        pids = [process.pid for process, _, _ in hosts]
        memory = resident_megabytes(pids)
        solo, fanned = urls[0], urls[1:]
        policy = load_policy()
        async with asyncio.timeout(deadline - time.monotonic()):
            # Warm-up (not counted): the solo vendor and every fanned vendor
            # process has answered once, and the buyer's code paths ran.
            await one_round(work_dir / "warm-solo", policy, [solo], pids)
            await one_round(work_dir / "warm-fan", policy, fanned, pids)
            alone: list[Round] = []
            fan: list[Round] = []
            for index in range(rounds):
                solo_round, _ = await one_round(work_dir / f"solo-{index}", policy, [solo], pids)
                fan_round, sample = await one_round(work_dir / f"fan-{index}", policy, fanned, pids)
                alone.append(solo_round)
                fan.append(fan_round)
        floor = crypto_floor(sample)
        report(alone, fan, floor, len(fanned), len(hosts), start_seconds, memory, reply_delay)
    finally:
        stop_hosts(hosts)


def report(
    alone: list[Round],
    fan: list[Round],
    floor: dict[str, float],
    count: int,
    process_count: int,
    start_seconds: float,
    memory: float,
    reply_delay: float,
) -> None:
    """Print the figures (see the module docstring)."""
    n = cores()
    per_vendor = sum(floor.values())
    bound = per_vendor * count / n + reply_delay
    # What the same rounds would take if the CPU they really spent ran perfectly
    # in parallel: how well the fan-out overlaps, whatever its cost.
    spent = [max(r.loop_cpu, (r.buyer_cpu + r.vendors_cpu) / n) + reply_delay for r in fan]
    print(
        f"{count + 1} vendor agents ({CATALOGUE}) in {process_count} processes on 127.0.0.1: "
        f"started in {start_seconds:.1f} s, {memory:.0f} MB resident; {n} cores"
    )
    print(
        f"{len(fan)} interleaved rounds: one warm vendor alone, then one RFI to {count} "
        "vendors (a fresh buyer each round: discovery, key set, pseudonym, RFI, offer)"
    )
    print(f"one warm vendor alone (wall):        {spread([r.wall for r in alone], 1000, ' ms')}")
    print(f"RFI to {count} vendors (wall):          {spread([r.wall for r in fan], 1000, ' ms')}")
    print(
        "total / one warm vendor alone:       "
        + spread([f.wall / a.wall for f, a in zip(fan, alone, strict=True)])
    )
    buyer = spread([r.buyer_cpu / count for r in fan], 1000, " ms")
    loop = spread([r.loop_cpu / count for r in fan], 1000, " ms")
    vendors = spread([r.vendors_cpu / count for r in fan], 1000, " ms")
    print(f"CPU per vendor, buyer:               {buyer}  (its event loop: {loop})")
    print(f"CPU per vendor, vendors:             {vendors}")
    print(
        f"crypto and validation per vendor:    {per_vendor * 1000:.2f} ms  ("
        + ", ".join(f"{name} {seconds * 1e6:.0f} us" for name, seconds in floor.items())
        + ")"
    )
    print(
        f"CPU lower bound of the fan-out:      {bound * 1000:.0f} ms  = {count} x "
        f"{per_vendor * 1000:.2f} ms / {n} cores + reply delay {reply_delay * 1000:.0f} ms"
    )
    overlap = [r.wall / s for r, s in zip(fan, spent, strict=True)]
    print(
        "wall / (CPU spent / cores + delay): "
        + spread(overlap)
        + "  (1: the conversations overlap perfectly)"
    )
    ratios = [r.wall / bound for r in fan]
    print(f"fan-out wall / CPU lower bound:      {spread(ratios)}  (target: 2 or less)")
    print(f"ratio {statistics.median(ratios):.3f}")


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures (or, with ``--serve-vendors``, be a vendor host)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--vendors", type=int, default=50, help=f"1..{MAX_VENDORS}")
    parser.add_argument(
        "--processes", type=int, default=5, help=f"vendor host processes (1..{MAX_PROCESSES})"
    )
    parser.add_argument("--reply-delay", type=float, default=0.05, help="vendors' reply delay (s)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (1..100)")
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
    if not 1 <= options.rounds <= 100:
        parser.error("--rounds is 1..100")

    # A SIGTERM to the bench unwinds like Ctrl-C, so the hosts are stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work_dir = Path(tempfile.mkdtemp(prefix="vrm-bench-fanout-"))
    try:
        asyncio.run(
            measure(
                work_dir, options.vendors, options.processes, options.reply_delay, options.rounds
            )
        )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
