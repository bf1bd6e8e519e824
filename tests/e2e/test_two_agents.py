"""Two real agents, one crash: a reply owed to a buyer survives the buyer's SIGKILL
(spec §11.3: replies are messages of their own, POSTed to ``replyTo.inbox``).

The buyer sends an RFI through its test driver (spec §14.3) with its inbox as
``replyTo``; it is killed before the vendor's first delivery attempt; the
vendor keeps the committed offer in its outbox and retries with backoff; the
buyer, restarted on the same port and data directory (same pseudonym, same
inbox URL), receives it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.e2e.conftest import HTTP_TIMEOUT, Agents
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX

TEST_DEADLINE_SECONDS = 28.0
#: The vendor waits this long before its first delivery attempt, so that the
#: buyer is dead by then (it is killed as soon as its driver has answered).
REPLY_DELAY_SECONDS = "1.0"


async def _driver_state(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    async with session.get(base_url + TEST_DRIVER_PREFIX + "/state") as response:
        assert response.status == 200, await response.text()
        return dict(await response.json())


async def _relationship_with(
    session: aiohttp.ClientSession, buyer_url: str, vendor_url: str
) -> tuple[str, dict[str, Any]]:
    """The buyer's (pseudonym, relationship) with the vendor."""
    state = await _driver_state(session, buyer_url)
    matches = [
        (pseudonym, relationship)
        for pseudonym, relationship in state["relationships"].items()
        if relationship["peer"] == vendor_url
    ]
    assert len(matches) == 1, state
    return matches[0]


async def test_a_reply_owed_to_a_killed_buyer_is_delivered_after_its_restart(
    agents: Agents,
) -> None:
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        vendor = agents.start("vendor", extra_args=["--reply-delay", REPLY_DELAY_SECONDS])
        buyer = agents.start("buyer")
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            async with session.post(
                buyer.base_url + TEST_DRIVER_PREFIX + "/rfi", json={"vendor": vendor.base_url}
            ) as response:
                assert response.status == 200, await response.text()
                sent = await response.json()
            assert set(sent["sent"]) == {vendor.base_url}
            pseudonym, before = await _relationship_with(session, buyer.base_url, vendor.base_url)
            assert before["offers"] == {}
            buyer.kill()

            # The vendor committed the RFI and its answer before its 202.
            vendor_state = await _driver_state(session, vendor.base_url)
            assert pseudonym in vendor_state["relationships"], vendor_state

            # Restart only once the vendor has tried and failed to deliver, so the
            # offer reaches the buyer through the outbox's retry, not by luck.
            for _ in range(100):
                if "delivery of offer" in vendor.log() and "failed" in vendor.log():
                    break
                await asyncio.sleep(0.1)
            assert "failed" in vendor.log(), vendor.log()

            restarted = agents.start("buyer", port=buyer.port)
            assert restarted.base_url == buyer.base_url
            # Bounded wait for the vendor's retry (backoff 1 s, then 2 s, ...).
            for _ in range(100):
                again, relationship = await _relationship_with(
                    session, restarted.base_url, vendor.base_url
                )
                if relationship["offers"]:
                    break
                await asyncio.sleep(0.2)
            assert again == pseudonym  # the pseudonym survived the crash too
            assert len(relationship["offers"]) == 1, (relationship, vendor.log())
            assert relationship["state"] != before["state"]
        assert restarted.stop() == 0
        assert vendor.stop() == 0
