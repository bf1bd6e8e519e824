"""The buyer agent as a real process: replies in flight survive a SIGKILL and a
restart on another port (spec D5), a stale ``agent.json`` never makes the CLI
advertise a dead inbox, and two agents cannot serve one store (D10).

The vendor here is the small library-built vendor of the buyer tests, on its
own 127.0.0.1 port, behaving as D5 says every party does: each message for
the buyer goes to its mailbox, and is also POSTed to the ``replyTo`` inbox
the buyer named (which, after the SIGKILL, no longer answers).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.buyer.conftest import InTestVendor, offer_body
from tests.e2e.conftest import HTTP_TIMEOUT, VRM_COMMAND, Agents
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

#: Bound on every wait for the restarted agent to catch up (never a timing assertion).
CATCH_UP_SECONDS = 20.0


@pytest.fixture
async def vendor() -> AsyncIterator[InTestVendor]:
    dealer = InTestVendor("Dealer")
    server = TestServer(dealer.app(), host="127.0.0.1")
    await server.start_server()
    dealer.server = server
    try:
        yield dealer
    finally:
        await server.close()


async def _driver(base_url: str, action: str, body: dict[str, Any]) -> Any:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.post(f"{base_url}{TEST_DRIVER_PREFIX}/{action}", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def _state(base_url: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.get(f"{base_url}{TEST_DRIVER_PREFIX}/state") as response,
    ):
        return dict(await response.json())


async def _deliver_as_d5_says(vendor: InTestVendor, payload: dict[str, Any], token: bytes) -> bool:
    """Keep ``token`` in the mailbox for its addressee, and POST it to the
    ``replyTo`` inbox the buyer named; whether that POST was taken."""
    vendor.mailbox.setdefault(payload["to"][0], []).append(token)
    _, rfi = vendor.last("personal-rfi")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.post(
                rfi["replyTo"]["inbox"], data=token, headers={"Content-Type": MESSAGE_MEDIA_TYPE}
            ) as response,
        ):
            return response.status in (200, 202)
    except aiohttp.ClientError:
        return False


async def _wait_for_offer(base_url: str, pseudonym: str, offer_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while True:
        state = await _state(base_url)
        offers = state["relationships"].get(pseudonym, {}).get("offers", {})
        if offer_id in offers or time.monotonic() > deadline:
            return dict(offers)
        await asyncio.sleep(0.2)


async def test_a_reply_in_flight_survives_sigkill_and_a_restart_on_another_port(
    agents: Agents, vendor: InTestVendor
) -> None:
    buyer = agents.start("buyer")
    await _driver(buyer.base_url, "rfi", {"vendors": [vendor.id]})
    _, rfi = vendor.last("personal-rfi")
    assert rfi["replyTo"]["inbox"].startswith(buyer.base_url)
    buyer.kill()  # SIGKILL: the offer below is in flight while no agent runs

    offer, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    assert not await _deliver_as_d5_says(vendor, offer, token)  # the old inbox is dead

    restarted = agents.start("buyer")  # --port 0: another port
    assert restarted.base_url != buyer.base_url
    offers = await _wait_for_offer(restarted.base_url, rfi["from"], offer["id"])
    assert offers.get(offer["id"]) == "open", (offers, restarted.log())

    # While it waits for answers it keeps polling: a reply that only reaches
    # the mailbox (the vendor's POST went to the old address) is collected too.
    revised, revised_token = vendor.reply(
        rfi,
        MessageType.OFFER,
        offer_body(datetime.now(UTC), total="27900", supersedes=vendor.ref(token, offer)),
    )
    vendor.mailbox[rfi["from"]].append(revised_token)
    offers = await _wait_for_offer(restarted.base_url, rfi["from"], revised["id"])
    assert offers.get(revised["id"]) == "open", (offers, restarted.log())
    assert offers.get(offer["id"]) == "superseded"
    # The poll is made under the pseudonym of that relationship only.
    assert set(vendor.pollers) == {rfi["from"]}


async def test_a_stale_agent_file_never_makes_the_cli_advertise_a_dead_inbox(
    agents: Agents, vendor: InTestVendor
) -> None:
    buyer = agents.start("buyer")
    buyer.kill()
    agent_file = buyer.data_dir / "agent.json"
    assert json.loads(agent_file.read_text())["inbox"].startswith(buyer.base_url)
    finished = await asyncio.to_thread(
        subprocess.run,
        [
            *VRM_COMMAND,
            "buyer",
            "rfi",
            "--data-dir",
            str(buyer.data_dir),
            "--allow-delivery-to",
            "127.0.0.1",
            vendor.id,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "Traceback" not in finished.stderr
    notes = [line for line in finished.stderr.splitlines() if "not running" in line]
    assert len(notes) == 1, finished.stderr
    _, rfi = vendor.last("personal-rfi")
    assert "replyTo" not in rfi, rfi["replyTo"]


def test_two_agents_cannot_serve_one_store(agents: Agents) -> None:
    agents.start("buyer")
    with pytest.raises(RuntimeError) as refused:
        agents.start("buyer")
    message = str(refused.value)
    assert "Traceback" not in message
    # One line, the runtime's (vrm_agent.files.lock_data_dir): who holds it, what to do.
    errors = [line for line in message.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, message
    assert "another buyer agent serves" in errors[0]
    assert "(pid " in errors[0]
