"""What durability and HTTP cost: the reference vendor's inbox, end to end.

Starts one real vendor process (``vrm vendor serve``) on 127.0.0.1 with a
fresh SQLite store, then POSTs ``--count`` signed personal RFIs, each from its
own pairwise pseudonym (did:jwk), ``--concurrency`` at a time, with aiohttp.
Every ``202`` means the RFI, its receipt, the relationship and the offer it
caused were committed (WAL, ``synchronous=FULL``) before the answer (spec
§11.3). Prints:

* messages/s through the inbox, and the p50/p95/p99 latency of the ``202``;
* ``codec.decode`` operations/s on the same RFIs in this process (the inbound
  pipeline alone: limits, JWS, did:jwk key, signature, canonical check, schema,
  model, key-sender binding, audience, freshness), measured in the same run
  before the vendor starts, so the two figures share the machine's state;
* the ratio of the two: the share of the pipeline's rate that survives the
  rest of the vendor's work (HTTP, the state machine, business rules, signing
  the receipt and the offer, durable SQLite commits shared by concurrent
  messages (group commit)).

The last line is ``ratio <http msgs/s ÷ decode ops/s>``. The RFIs are signed
before the clock starts, so the buyer's signing is not counted. The vendor
process is stopped (and killed if need be) and its data removed whatever
happens. Figures only; nothing is asserted.

Run: ``python bench/vendor_http.py [--count 400] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from conformance.peers import bodies
from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.http_binding import INBOX_PATH
from vrm_protocol.keys import PairwiseIdentity, resolve_did_jwk
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

VRM_COMMAND = (sys.executable, "-c", "from vrm_protocol.cli import main; main()")
LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
#: The vendor holds one address to a burst of 1000 messages refilled at 100/s
#: (reference_vendor.config); staying under the burst keeps 429s out of the figures.
MAX_COUNT = 900
MAX_CONCURRENCY = 64
WARM_UP_MESSAGES = 8
DECODE_SECONDS = 1.5


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


def decode_rate(tokens: list[bytes], receiver: str, seconds: float = DECODE_SECONDS) -> float:
    """``codec.decode`` operations per second over ``tokens`` (cycled)."""
    now = datetime.now(UTC)
    decode(tokens[0], resolve_key=resolve_did_jwk, receiver=receiver, now=now)  # warm caches
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for token in tokens[:32]:
            decode(token, resolve_key=resolve_did_jwk, receiver=receiver, now=now)
        count += min(32, len(tokens))
        elapsed = time.perf_counter() - start
        if time.perf_counter() >= deadline:
            return count / elapsed


def start_vendor(data_dir: Path, port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """Start the vendor; its process and base URL.

    Raises:
        RuntimeError: it exited or did not announce its address in time (it is
            killed first).
    """
    out_file = data_dir.parent / "vendor.out"
    err_file = data_dir.parent / "vendor.err"
    argv = [
        *VRM_COMMAND,
        "vendor",
        "serve",
        "--catalogue",
        "dealer-mayfair",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with out_file.open("wb") as stdout, err_file.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        match = LISTENING.search(out_file.read_bytes())
        if match is not None:
            return process, match.group(1).decode()
        if process.poll() is not None or time.monotonic() > deadline:
            stop_vendor(process)
            raise RuntimeError(
                "the vendor did not start:\n" + err_file.read_text(errors="replace")[-2000:]
            )
        time.sleep(0.02)


def stop_vendor(process: subprocess.Popen[bytes]) -> None:
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


async def send_all(
    base_url: str, tokens: list[bytes], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    """POST every token, ``concurrency`` at a time: wall seconds, the latency of
    each answer in seconds, and the count of each status."""
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
    return wall, latencies, statuses


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank on the sorted values)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=400, help=f"RFIs to send (1..{MAX_COUNT})")
    parser.add_argument(
        "--concurrency", type=int, default=16, help=f"requests in flight (1..{MAX_CONCURRENCY})"
    )
    options = parser.parse_args(argv)
    if not 1 <= options.count <= MAX_COUNT:
        parser.error(f"--count is 1..{MAX_COUNT}")
    if not 1 <= options.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency is 1..{MAX_CONCURRENCY}")

    # A SIGTERM to the bench unwinds like Ctrl-C, so the vendor is stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    work_dir = Path(tempfile.mkdtemp(prefix="vrm-bench-vendor-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        # Bind first, so the RFIs can be addressed to the vendor's party id (its URL).
        process, base_url = start_vendor(work_dir / "data")
        tokens = signed_rfis(base_url, options.count + WARM_UP_MESSAGES)
        warm_up, measured = tokens[:WARM_UP_MESSAGES], tokens[WARM_UP_MESSAGES:]
        # The pipeline's rate while the vendor idles, on the very tokens it will receive.
        decode_per_second = decode_rate(measured, base_url)
        asyncio.run(send_all(base_url, warm_up, 1))
        wall, latencies, statuses = asyncio.run(send_all(base_url, measured, options.concurrency))
    finally:
        if process is not None:
            stop_vendor(process)
        shutil.rmtree(work_dir, ignore_errors=True)

    http_per_second = len(measured) / wall
    print(
        f"vendor inbox over HTTP: {len(measured)} RFIs from {len(measured)} pseudonyms, "
        f"concurrency {options.concurrency}, 127.0.0.1"
    )
    print("statuses: " + ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items())))
    print(f"http messages/s (202, durably committed): {http_per_second:10.1f}")
    print(
        "latency of the 202 (ms): "
        f"p50 {percentile(latencies, 0.50) * 1000:.1f}  "
        f"p95 {percentile(latencies, 0.95) * 1000:.1f}  "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f}  "
        f"mean {statistics.fmean(latencies) * 1000:.1f}"
    )
    print(f"codec.decode ops/s (same RFIs, in process):  {decode_per_second:10.1f}")
    print(f"ratio {http_per_second / decode_per_second:.3f}")


if __name__ == "__main__":
    main()
