"""What durability and the vendor's work cost: its inbox against a bare decode endpoint.

In one run on 127.0.0.1, two servers receive the same signed personal RFIs,
each from its own pairwise pseudonym (did:jwk), from a load generator in a
process of its own (``--count`` of them, ``--concurrency`` at a time, aiohttp):

* the reference vendor (``vrm vendor serve``, a fresh SQLite store): every
  ``202`` means the signature verified, and the RFI, its receipt, the
  relationship and the offer it caused (signed) were committed (WAL,
  ``synchronous=FULL``) before the answer (spec §11.3);
* the ceiling: a bare aiohttp endpoint, in a process of its own, whose
  ``POST /vrm/inbox`` runs only the library's inbound pipeline
  (``codec.decode``: limits, JWS, did:jwk key, signature, canonical check,
  schema, model, key-sender binding, audience, freshness) on the body and
  answers ``202`` with no body.  It keeps no state, so the same tokens serve.

Prints messages/s and the p50/p95/p99 latency of both; the last line is
``ratio <vendor msgs/s ÷ ceiling msgs/s>``: the share of the bare pipeline's
rate over HTTP that survives the rest of the vendor's work (the state machine,
business rules, signing the receipt and the offer, durable commits shared by
concurrent messages).  The RFIs are signed before the clock starts, so the
buyer's signing is not counted.  Both servers and the load generator are
stopped (killed if need be) and the vendor's data removed whatever happens.
Figures only; nothing is asserted.

Run: ``python bench/vendor_http.py [--count 400] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from conformance.peers import bodies
from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import INBOX_PATH
from vrm_protocol.keys import PairwiseIdentity, resolve_did_jwk
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

VRM_COMMAND = (sys.executable, "-c", "from vrm_protocol.cli import main; main()")
LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
#: Per load run: the load generator is abandoned (and killed) after this.
LOAD_TIMEOUT_SECONDS = 120.0
#: The vendor holds one address to a burst of 1000 messages refilled at 100/s
#: (reference_vendor.config); staying under the burst keeps 429s out of the figures.
MAX_COUNT = 900
MAX_CONCURRENCY = 64
WARM_UP_MESSAGES = 8


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One load run: wall seconds, the latency of each answer (s), the count of each status."""

    wall: float
    latencies: list[float]
    statuses: dict[int, int]


def signed_rfis(vendor_url: str, count: int) -> list[bytes]:
    """``count`` personal RFIs to ``vendor_url``, each from a fresh pseudonym."""
    now = datetime.now(UTC)
    body = bodies.personal_rfi_body(now)
    tokens = []
    for _ in range(count):
        buyer = PairwiseIdentity.generate()
        payload = build_message(
            MessageType.PERSONAL_RFI,
            body,
            sender=buyer.identifier,
            to=[vendor_url],
            now=now,
            lifetime=timedelta(hours=1),
        )
        tokens.append(encode(payload, buyer.signing_key))
    return tokens


# -- the ceiling: the inbound pipeline alone behind aiohttp --------------------------------------


def serve_ceiling(receiver: str) -> None:
    """Serve ``POST /vrm/inbox`` = ``codec.decode`` of the body, until SIGTERM/SIGINT.

    ``receiver`` is the audience the tokens name (the vendor's party id), so
    the audience check passes as it does at the vendor.  Answers ``202``
    with no body, or ``400`` with the error code when the pipeline refuses.
    Prints ``listening on http://127.0.0.1:PORT`` once bound.
    """

    async def inbox(request: web.Request) -> web.Response:
        token = await request.read()
        try:
            decode(token, resolve_key=resolve_did_jwk, receiver=receiver, now=datetime.now(UTC))
        except ProtocolError as error:
            return web.Response(status=400, text=str(error.code))
        return web.Response(status=202)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post(INBOX_PATH, inbox)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        await web.SockSite(runner, sock).start()
        print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(serve())


# -- the server processes --------------------------------------------------------------------------


def start_server(argv: list[str], log_dir: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server that prints ``listening on URL``; its process and base URL.

    Raises:
        RuntimeError: it exited or did not announce its address in time (it is
            killed first).
    """
    out_file = log_dir / f"{name}.out"
    err_file = log_dir / f"{name}.err"
    with out_file.open("wb") as stdout, err_file.open("wb") as stderr:
        # Own session: a Ctrl-C in the terminal reaches only the bench, which
        # then stops the server itself.
        process = subprocess.Popen(
            argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        match = LISTENING.search(out_file.read_bytes())
        if match is not None:
            return process, match.group(1).decode()
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(
                f"the {name} did not start:\n" + err_file.read_text(errors="replace")[-2000:]
            )
        time.sleep(0.02)


def start_vendor(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the reference vendor (fresh store in ``data_dir``); its process and base URL.

    Raises:
        RuntimeError: see :func:`start_server`.
    """
    argv = [
        *VRM_COMMAND,
        "vendor",
        "serve",
        "--catalogue",
        "dealer-mayfair",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
    ]
    return start_server(argv, data_dir.parent, "vendor")


def start_ceiling(receiver: str, log_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the bare decode endpoint (this file, ``--serve-ceiling``); its process and URL.

    Raises:
        RuntimeError: see :func:`start_server`.
    """
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve-ceiling", receiver]
    return start_server(argv, log_dir, "ceiling")


def stop_server(process: subprocess.Popen[bytes]) -> None:
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


# -- the load generator (runs in a process of its own) ---------------------------------------------


async def send_all(base_url: str, tokens: list[bytes], concurrency: int) -> LoadResult:
    """POST every token, ``concurrency`` at a time, and time each answer."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": MESSAGE_MEDIA_TYPE}
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)

    async def send(session: aiohttp.ClientSession, token: bytes) -> None:
        async with gate:
            started = time.perf_counter()
            async with session.post(base_url + INBOX_PATH, data=token, headers=headers) as answer:
                await answer.read()
            latencies.append(time.perf_counter() - started)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        await asyncio.gather(*(send(session, token) for token in tokens))
        wall = time.perf_counter() - start
    return LoadResult(wall, latencies, statuses)


def serve_load(token_file: Path, base_url: str, warm_up: int, concurrency: int) -> None:
    """Be the load generator: the first ``warm_up`` tokens of ``token_file`` (one per
    line) one at a time, untimed, then the rest; print the result as JSON."""
    tokens = token_file.read_bytes().split()
    asyncio.run(send_all(base_url, tokens[:warm_up], 1))
    result = asyncio.run(send_all(base_url, tokens[warm_up:], concurrency))
    print(json.dumps(asdict(result)))


def load(token_file: Path, base_url: str, warm_up: int, concurrency: int) -> LoadResult:
    """Run the load generator in a process of its own against ``base_url``.

    Raises:
        subprocess.TimeoutExpired: it overran LOAD_TIMEOUT_SECONDS (it is killed).
        subprocess.CalledProcessError: it failed.
    """
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--serve-load",
        str(token_file),
        base_url,
        str(warm_up),
        str(concurrency),
    ]
    # subprocess.run kills the child on a timeout and on any exception (Ctrl-C too).
    done = subprocess.run(argv, capture_output=True, check=True, timeout=LOAD_TIMEOUT_SECONDS)
    document = json.loads(done.stdout)
    statuses = {int(status): count for status, count in document["statuses"].items()}
    return LoadResult(document["wall"], document["latencies"], statuses)


# -- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank on the sorted values)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def report(title: str, result: LoadResult) -> float:
    """Print one server's figures; its messages per second."""
    rate = len(result.latencies) / result.wall
    print(f"{title}:")
    print("  statuses: " + ", ".join(f"{s}×{n}" for s, n in sorted(result.statuses.items())))
    print(f"  messages/s {rate:10.1f}")
    print(
        "  latency (ms): "
        f"p50 {percentile(result.latencies, 0.50) * 1000:.1f}  "
        f"p95 {percentile(result.latencies, 0.95) * 1000:.1f}  "
        f"p99 {percentile(result.latencies, 0.99) * 1000:.1f}  "
        f"mean {statistics.fmean(result.latencies) * 1000:.1f}"
    )
    return rate


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures (or be one of the bench's helper processes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=400, help=f"RFIs to send (1..{MAX_COUNT})")
    parser.add_argument(
        "--concurrency", type=int, default=16, help=f"requests in flight (1..{MAX_CONCURRENCY})"
    )
    # The bench's own helper processes: the ceiling server and the load generator.
    parser.add_argument("--serve-ceiling", metavar="RECEIVER", help=argparse.SUPPRESS)
    parser.add_argument("--serve-load", nargs=4, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve_ceiling:
        serve_ceiling(options.serve_ceiling)
        return
    if options.serve_load:
        token_file, base_url, warm_up, concurrency = options.serve_load
        serve_load(Path(token_file), base_url, int(warm_up), int(concurrency))
        return
    if not 1 <= options.count <= MAX_COUNT:
        parser.error(f"--count is 1..{MAX_COUNT}")
    if not 1 <= options.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency is 1..{MAX_CONCURRENCY}")

    # A SIGTERM to the bench unwinds like Ctrl-C, so the servers are stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work_dir = Path(tempfile.mkdtemp(prefix="vrm-bench-vendor-"))
    servers: list[subprocess.Popen[bytes]] = []
    try:
        # Bind first, so the RFIs can be addressed to the vendor's party id (its URL).
        vendor, vendor_url = start_vendor(work_dir / "data")
        servers.append(vendor)
        ceiling, ceiling_url = start_ceiling(vendor_url, work_dir)
        servers.append(ceiling)
        tokens = signed_rfis(vendor_url, options.count + WARM_UP_MESSAGES)
        measured = tokens[WARM_UP_MESSAGES:]
        token_file = work_dir / "tokens"
        token_file.write_bytes(b"\n".join(tokens))
        ceiling_result = load(token_file, ceiling_url, WARM_UP_MESSAGES, options.concurrency)
        # The ceiling idles from here on, so the vendor has the machine to itself.
        vendor_result = load(token_file, vendor_url, WARM_UP_MESSAGES, options.concurrency)
    finally:
        for server in servers:
            stop_server(server)
        shutil.rmtree(work_dir, ignore_errors=True)

    print(
        f"{len(measured)} personal RFIs from {len(measured)} pseudonyms, "
        f"concurrency {options.concurrency}, load from another process, 127.0.0.1"
    )
    vendor_rate = report(
        "vendor inbox (202 = verified, offer signed, all committed)", vendor_result
    )
    ceiling_rate = report("ceiling: bare aiohttp + codec.decode", ceiling_result)
    print(f"ratio {vendor_rate / ceiling_rate:.3f}")


if __name__ == "__main__":
    main()
