"""Two vendor processes, one PostgreSQL database: crash safety across processes.

Two ``vrm vendor serve --store postgresql://...`` processes on 127.0.0.1 serve one
vendor identity (one ``--public-url``) against one fresh database of the
session's real server (``tests/conftest.py``). What holds with SQLite and one
process (``test_crash_safety.py``) must hold here with one of the two
SIGKILLed in the middle of a burst:

* the other keeps serving: every message sent to it is answered ``202``;
* every message that got a ``202`` from either is known to the survivor: the
  identical resend is answered ``200`` with the original receipt, byte for byte;
* a message that got no answer is wholly applied or not at all, never twice:
  each RFI caused exactly one offer;
* one message sent to both at once is applied once; the other copy gets the
  same receipt; another message under the same (sender, id) is a ``replay``;
* replies the killed process committed but did not deliver are delivered by
  the survivor.

Real processes, real keys, 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from conformance.peers import bodies
from tests.e2e.conftest import (
    HTTP_TIMEOUT,
    VRM_COMMAND,
    Buyer,
    Posted,
    mailbox,
    post_token,
    vendor_keys,
)
from tests.e2e.test_crash_safety import _message_id
from vrm_protocol.canonical import b64url_decode, message_digest
from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.keys import key_resolver
from vrm_protocol.vocabulary import MessageType

pytestmark = pytest.mark.slow

#: The vendor's party id, the same for both processes (the address a balancer in
#: front of them would have; nothing here fetches it).
PARTY = "http://vendor.test"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
TEST_DEADLINE_SECONDS = 60.0
BURST_SIZE = 50
_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:(\d+))")


@dataclass
class VendorProcess:
    """One ``vrm vendor serve --store ...`` process."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text("utf-8", errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no handler runs; its database sessions just end."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


@dataclass
class Vendors:
    """Starts vendor processes on one database; kills what still runs at the end."""

    work_dir: Path
    store_url: str
    started: list[VendorProcess] = field(default_factory=list)

    def start(self, *extra: str) -> VendorProcess:
        run = len(self.started)
        out_file = self.work_dir / f"vendor-{run}.out"
        log_file = self.work_dir / f"vendor-{run}.err"
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
            "--store",
            self.store_url,
            "--public-url",
            PARTY,
            "--test-mode",
            *extra,
        ]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with out_file.open("wb") as stdout, log_file.open("wb") as stderr:
            process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            match = _LISTENING.search(out_file.read_bytes())
            if match is not None:
                started = VendorProcess(process, match.group(1).decode(), log_file)
                self.started.append(started)
                return started
            if process.poll() is not None or time.monotonic() > deadline:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)
                raise RuntimeError(
                    f"the vendor did not start (exit {process.returncode}):\n"
                    + log_file.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.02)

    def close(self) -> None:
        for started in self.started:
            if started.process.poll() is None:
                started.kill()


@pytest.fixture
def vendors(tmp_path: Path, postgres_url: str) -> Iterator[Vendors]:
    started = Vendors(tmp_path, postgres_url)
    try:
        yield started
    finally:
        started.close()


async def _assert_receipt_regards(
    session: aiohttp.ClientSession, base_url: str, receipt: bytes, buyer: Buyer, token: bytes
) -> None:
    """The receipt is the vendor's (signed by its published key, from its party id)
    and binds the exact bytes sent."""
    keys = await vendor_keys(session, base_url)
    received = decode(
        receipt, resolve_key=key_resolver(keys), receiver=buyer.id, now=datetime.now(UTC)
    )
    assert received.payload["type"] == "receipt"
    assert received.payload["from"] == PARTY
    assert received.payload["body"]["regarding"] == {
        "id": _message_id(token),
        "digest": message_digest(token),
    }


async def _offers(session: aiohttp.ClientSession, base_url: str, buyer: Buyer) -> list[str]:
    """The digests of the messages each offer in ``buyer``'s mailbox answers."""
    return [
        m["body"]["inResponseTo"]["digest"]
        for m in await mailbox(session, base_url, buyer)
        if m["type"] == "offer"
    ]


async def _send_burst(
    targets: Sequence[str], tokens: list[bytes], victim: VendorProcess, rng: random.Random
) -> list[Posted | None]:
    """POST every token concurrently, token ``i`` to ``targets[i % 2]``, and SIGKILL
    ``victim`` at a seeded point: a random delay after one of its first ``202``
    answers (early, so that most of its share is still in flight). ``None`` for a
    message whose answer never came."""
    kill_after = rng.randint(1, 5)
    kill_delay = rng.uniform(0.0, 0.02)
    answers: list[Posted | None] = [None] * len(tokens)
    accepted_by_victim = 0
    loop = asyncio.get_running_loop()

    async def send(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal accepted_by_victim
        target = targets[index % len(targets)]
        try:
            answer = await post_token(session, target, tokens[index])
        except (aiohttp.ClientError, TimeoutError):
            return  # the process died under this request: no answer
        answers[index] = answer
        if answer.status == 202 and target == victim.base_url:
            accepted_by_victim += 1
            if accepted_by_victim == kill_after:
                loop.call_later(kill_delay, victim.kill)

    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT, connector=connector) as session:
        await asyncio.gather(*(send(index, session) for index in range(len(tokens))))
    victim.kill()  # when it answered everything before the chosen point
    return answers


@pytest.mark.parametrize("seed", [20261206, 11])
async def test_sigkill_of_one_process_mid_burst_loses_nothing_the_other_keeps_serving(
    vendors: Vendors, seed: int
) -> None:
    rng = random.Random(seed)
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        victim, survivor = vendors.start(), vendors.start()
        buyers = [Buyer(PARTY) for _ in range(BURST_SIZE)]
        tokens = [buyer.rfi() for buyer in buyers]
        targets = (victim.base_url, survivor.base_url)
        answers = await _send_burst(targets, tokens, victim, rng)
        for index, answer in enumerate(answers):
            if targets[index % 2] == survivor.base_url:
                # The other process keeps serving through the kill.
                assert answer is not None, index
                assert answer.status == 202, (index, answer)
            else:
                assert answer is None or answer.status == 202, (index, answer)
        assert any(answer is None for answer in answers), "the kill fell mid-burst"

        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            first_resends = await asyncio.gather(
                *(post_token(session, survivor.base_url, token) for token in tokens)
            )
            second_resends = await asyncio.gather(
                *(post_token(session, survivor.base_url, token) for token in tokens)
            )
            for index, (answer, resent, again) in enumerate(
                zip(answers, first_resends, second_resends, strict=True)
            ):
                if answer is not None:
                    # Acknowledged by either process: the original receipt, byte for byte.
                    assert (resent.status, resent.body) == (200, answer.body), index
                else:
                    # Unanswered: wholly applied (200) or not at all (202), then known.
                    assert resent.status in (200, 202), (index, resent)
                    await _assert_receipt_regards(
                        session, survivor.base_url, resent.body, buyers[index], tokens[index]
                    )
                assert (again.status, again.body) == (200, resent.body), index

            # Never half, never twice: each RFI caused exactly its one offer.
            for buyer, token in zip(buyers, tokens, strict=True):
                assert await _offers(session, survivor.base_url, buyer) == [
                    message_digest(token)
                ], survivor.log()

        # A process started after it all knows the same, and refuses the same replays.
        late = vendors.start()
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            resent = await post_token(session, late.base_url, tokens[0])
            assert (resent.status, resent.body) == (200, first_resends[0].body)
            replay = buyers[0].rfi(message_id=_message_id(tokens[0]), budget_max="33000")
            refused = await post_token(session, late.base_url, replay)
            assert refused.status == 409
            assert refused.problem()["code"] == "replay"
        assert survivor.stop() == 0
        assert late.stop() == 0


async def test_one_message_sent_to_both_processes_at_once_is_applied_once(
    vendors: Vendors,
) -> None:
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        first, second = vendors.start(), vendors.start()
        buyers = [Buyer(PARTY) for _ in range(10)]
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            for buyer in buyers:
                token = buyer.rfi()
                answers = await asyncio.gather(
                    *(
                        post_token(session, target, token)
                        for target in (first.base_url, second.base_url) * 3
                    )
                )
                assert sorted(answer.status for answer in answers) == [200] * 5 + [202]
                assert len({answer.body for answer in answers}) == 1, "one receipt, byte for byte"
                assert await _offers(session, second.base_url, buyer) == [message_digest(token)]
                replay = buyer.rfi(message_id=_message_id(token), budget_max="31000")
                for target in (first.base_url, second.base_url):
                    refused = await post_token(session, target, replay)
                    assert refused.status == 409
                    assert refused.problem()["code"] == "replay"


@dataclass
class _Inbox:
    """A buyer agent's inbox on 127.0.0.1 that records what it is POSTed."""

    url: str = ""
    received: list[bytes] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.read())
        self.changed.set()
        return web.Response(status=202)


def _rfi_with_reply_to(buyer: Buyer, inbox: str) -> bytes:
    now = datetime.now(UTC)
    payload = build_message(
        MessageType.PERSONAL_RFI,
        bodies.personal_rfi_body(now),
        sender=buyer.id,
        to=[PARTY],
        now=now,
        lifetime=timedelta(hours=1),
        reply_inbox=inbox,
    )
    return encode(payload, buyer.identity.signing_key)


def _regarding(token: bytes) -> str:
    import json

    payload: dict[str, Any] = json.loads(b64url_decode(token.split(b".")[1]))
    return str(payload["body"]["inResponseTo"]["digest"])


async def test_replies_a_killed_process_owed_are_delivered_by_the_other(
    vendors: Vendors,
) -> None:
    inbox = _Inbox()
    app = web.Application()
    app.router.add_post("/inbox", inbox.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    inbox.url = f"http://127.0.0.1:{port}/inbox"
    try:
        async with asyncio.timeout(TEST_DEADLINE_SECONDS):
            # The victim waits before delivering, and is killed before it does.
            victim = vendors.start("--reply-delay", "3")
            survivor = vendors.start("--reply-delay", "0")
            buyers = [Buyer(PARTY) for _ in range(5)]
            tokens = [_rfi_with_reply_to(buyer, inbox.url) for buyer in buyers]
            async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
                for token in tokens:
                    assert (await post_token(session, victim.base_url, token)).status == 202
            victim.kill()
            expected = {message_digest(token) for token in tokens}
            while {_regarding(body) for body in inbox.received} != expected:
                inbox.changed.clear()
                await inbox.changed.wait()
            assert survivor.stop() == 0
    finally:
        await runner.cleanup()
