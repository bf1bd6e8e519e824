"""End-to-end fixtures: the reference vendor as a real process on 127.0.0.1, with
its real SQLite store and key on disk, and buyers that sign with the library.

A test starts an agent with the ``agents`` fixture (which kills every process
it started when the test ends, whatever happens), kills it with SIGKILL or
stops it with SIGTERM, and starts it again on the same data directory *and
the same port*: an agent's party id is its base URL (spec §3.2), so a restart
on another port would be another party.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conformance.peers import bodies
from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    POLL_AUTH_SCHEME,
    make_poll_token,
)
from vrm_protocol.keys import KeySet, PairwiseIdentity, key_resolver
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

#: How long a vendor may take to announce its address, or to stop.
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
#: Bound on every HTTP exchange a test makes (no test waits unboundedly).
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)
STORE_FILE = "vendor.sqlite3"
VRM_COMMAND = (sys.executable, "-c", "from vrm_protocol.cli import main; main()")
_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:(\d+))")


@dataclass
class AgentProcess:
    """One run of ``vrm {vendor|buyer} serve`` (a restart is a new :class:`AgentProcess`)."""

    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    data_dir: Path
    log_file: Path

    @property
    def store_path(self) -> Path:
        """The vendor's SQLite file."""
        return self.data_dir / STORE_FILE

    def log(self) -> str:
        """The tail of what the agent logged (for assertion messages)."""
        return self.log_file.read_text("utf-8", errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed that was not already durable."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> int:
        """SIGTERM and wait for a graceful exit; the exit status.

        Raises:
            subprocess.TimeoutExpired: the agent did not stop in time (it is
                then killed by the fixture's cleanup).
        """
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


#: A vendor is the dealer of seed 000 unless a test says otherwise.
VENDOR_ARGS = ("--catalogue", "dealer-mayfair")


def start_agent(
    kind: str, work_dir: Path, *, port: int = 0, extra_args: Sequence[str] = (), run: int = 0
) -> AgentProcess:
    """Start a reference agent (``vendor`` or ``buyer``) in test mode on 127.0.0.1,
    with its data in ``work_dir/data``; stdout (the ``listening on`` line) and
    stderr (the log) go to files in ``work_dir``.

    Raises:
        RuntimeError: it exited or did not announce its address in time.
    """
    data_dir = work_dir / "data"
    out_file = work_dir / f"{kind}-{run}.out"
    err_file = work_dir / f"{kind}-{run}.err"
    argv = [
        *VRM_COMMAND,
        kind,
        "serve",
        *(VENDOR_ARGS if kind == "vendor" else ()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--test-mode",
        *extra_args,
    ]
    work_dir.mkdir(parents=True, exist_ok=True)
    with out_file.open("wb") as stdout, err_file.open("wb") as stderr:
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        match = _LISTENING.search(out_file.read_bytes())
        if match is not None:
            return AgentProcess(
                process, match.group(1).decode(), int(match.group(2)), data_dir, err_file
            )
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            errors = err_file.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the {kind} did not start (exit {process.returncode}):\n{errors}")
        time.sleep(0.02)


@dataclass
class Agents:
    """Starts agents for one test and kills whatever still runs when it ends.

    Each kind has one data directory for the whole test, so a second start of
    the same kind is a restart.
    """

    work_dir: Path
    started: list[AgentProcess] = field(default_factory=list)

    def start(
        self, kind: str = "vendor", *, port: int = 0, extra_args: Sequence[str] = ()
    ) -> AgentProcess:
        """Start (or restart, on ``port``) the test's agent of ``kind``."""
        agent = start_agent(
            kind, self.work_dir / kind, port=port, extra_args=extra_args, run=len(self.started)
        )
        self.started.append(agent)
        return agent

    def close(self) -> None:
        """Kill every process still running (only the ones this test started)."""
        for agent in self.started:
            if agent.process.poll() is None:
                agent.kill()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    started = Agents(tmp_path)
    try:
        yield started
    finally:
        started.close()


def integrity_check(store_path: Path) -> str:
    """SQLite's own verdict on the file (``ok`` when sound); recovers the WAL first,
    as the next opener would."""
    connection = sqlite3.connect(str(store_path), timeout=10.0)
    try:
        (verdict,) = connection.execute("PRAGMA integrity_check").fetchone()
    finally:
        connection.close()
    return str(verdict)


# -- buyers ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Posted:
    """What the inbox answered."""

    status: int
    body: bytes
    content_type: str

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body of a rejection."""
        assert self.content_type == "application/problem+json", (self.status, self.body[:300])
        return dict(json.loads(self.body))


@dataclass
class Buyer:
    """A pseudonymous buyer (a fresh did:jwk, spec §3.1) of the vendor at ``vendor_url``."""

    vendor_url: str
    identity: PairwiseIdentity = field(default_factory=PairwiseIdentity.generate)

    @property
    def id(self) -> str:
        return self.identity.identifier

    def rfi(self, *, message_id: str | None = None, budget_max: str = "32000") -> bytes:
        """A signed personal RFI with no ``replyTo``: replies go to the mailbox."""
        now = datetime.now(UTC)
        payload = build_message(
            MessageType.PERSONAL_RFI,
            bodies.personal_rfi_body(now, budget_max=budget_max),
            sender=self.id,
            to=[self.vendor_url],
            now=now,
            lifetime=timedelta(hours=1),
            message_id=message_id,
        )
        return encode(payload, self.identity.signing_key)

    def poll_token(self, after: int = 0) -> bytes:
        """A signed mailbox poll (spec §11.4)."""
        return make_poll_token(
            self.identity.signing_key,
            poller=self.id,
            mailbox_owner=self.vendor_url,
            after=after,
            now=datetime.now(UTC),
        )


async def post_token(session: aiohttp.ClientSession, base_url: str, token: bytes) -> Posted:
    """POST one message to the inbox and read the whole answer."""
    async with session.post(
        base_url + INBOX_PATH, data=token, headers={"Content-Type": MESSAGE_MEDIA_TYPE}
    ) as response:
        return Posted(response.status, await response.read(), response.content_type)


async def vendor_keys(session: aiohttp.ClientSession, base_url: str) -> KeySet:
    """The vendor's published keys."""
    async with session.get(base_url + JWKS_PATH) as response:
        assert response.status == 200
        return KeySet.from_jwks(await response.json())


async def discovery(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    """The vendor's discovery document."""
    async with session.get(base_url + DISCOVERY_PATH) as response:
        assert response.status == 200
        return dict(await response.json())


async def mailbox(
    session: aiohttp.ClientSession, base_url: str, buyer: Buyer
) -> list[dict[str, Any]]:
    """Every message the vendor left for ``buyer``, each verified with the vendor's
    published keys and addressed to the buyer (spec §11.4)."""
    keys = await vendor_keys(session, base_url)
    payloads: list[dict[str, Any]] = []
    cursor = 0
    for _ in range(100):  # bounded: a page holds up to 50
        token = buyer.poll_token(cursor)
        async with session.get(
            f"{base_url}{MAILBOX_PATH}?after={cursor}",
            headers={"Authorization": f"{POLL_AUTH_SCHEME} {token.decode()}"},
        ) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        for item in page["messages"]:
            received = decode(
                item.encode(),
                resolve_key=key_resolver(keys),
                receiver=buyer.id,
                now=datetime.now(UTC),
            )
            payloads.append(dict(received.payload))
        if not page["messages"] or page["next"] == cursor:
            return payloads
        cursor = int(page["next"])
    raise AssertionError("the mailbox did not end")
