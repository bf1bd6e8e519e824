"""Access grants between the two real agents, each in its own process (spec §6.18,
§6.19, §11.9): she grants the vendor her travel dates, the vendor reads them
from her agent with a proof bound to its key, she revokes, and the next read
is refused (the vendor stops by itself; a vendor that does not is refused by
her agent with ``grant-revoked``). Every read is logged in her store.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp

from reference_buyer.store import SqliteBuyerStore
from tests.e2e.conftest import HTTP_TIMEOUT, AgentProcess, Agents
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.keys import SigningKey
from vrm_protocol.read_proof import sign_read_proof

TEST_DEADLINE_SECONDS = 40.0
TRAVEL = "travel.dates"


async def _driver(
    session: aiohttp.ClientSession, agent: AgentProcess, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with session.post(agent.base_url + TEST_DRIVER_PREFIX + path, json=body) as response:
        return response.status, dict(await response.json(content_type=None))


async def _engaged(session: aiohttp.ClientSession, buyer: AgentProcess, vendor: str) -> None:
    """Her RFP to the vendor, and its offer: the relationship is in negotiation."""
    status, answer = await _driver(session, buyer, "/rfp", {"vendor": vendor})
    assert status == 200, answer
    for _ in range(200):
        async with session.get(buyer.base_url + TEST_DRIVER_PREFIX + "/state") as response:
            state = await response.json()
        relationships = [r for r in state["relationships"].values() if r["peer"] == vendor]
        if relationships and relationships[0]["state"] == "negotiation":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no negotiation with {vendor}: {state}")


async def _grant(
    session: aiohttp.ClientSession, buyer: AgentProcess, vendor: str
) -> dict[str, Any]:
    status, granted = await _driver(
        session,
        buyer,
        "/grant",
        {"vendor": vendor, "items": [TRAVEL], "purposes": ["programme-membership"]},
    )
    assert status == 200, granted
    return granted


async def _read(
    session: aiohttp.ClientSession, vendor: AgentProcess, granted: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """The vendor, told by its test driver to read under the grant now."""
    return await _driver(session, vendor, "/read-grant", {"grant": granted["grant"]})


async def _reads(buyer: AgentProcess, grant: str) -> list[str]:
    # Her store, read beside her running agent (SQLite readers do not block it).
    store = SqliteBuyerStore(buyer.data_dir / "buyer.sqlite3")
    try:
        return [read.outcome for read in await store.grant_reads(grant)]
    finally:
        await store.close()


async def test_the_vendor_reads_by_grant_and_stops_when_she_revokes(agents: Agents) -> None:
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        vendor = agents.start("vendor")
        buyer = agents.start("buyer")
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            await _engaged(session, buyer, vendor.base_url)
            granted = await _grant(session, buyer, vendor.base_url)
            assert granted["endpoint"].startswith(buyer.base_url + "/vrm/read/")

            status, read = await _driver(
                session, vendor, "/read-grant", {"grant": granted["grant"]}
            )
            assert status == 200, read
            assert read["status"] == 200, read
            assert read["answer"]["grant"] == granted["grant"]
            assert [item["item"] for item in read["answer"]["items"]] == [TRAVEL]

            # No proof, or a proof by a key the grant does not name: refused.
            async with session.get(granted["endpoint"]) as response:
                assert response.status == 401
                assert (await response.json(content_type=None))["code"] == (
                    "authentication-required"
                )
            stranger = SigningKey.generate()
            proof = sign_read_proof(
                stranger,
                grant=granted["grant"],
                method="GET",
                url=granted["endpoint"],
                now=datetime.now(UTC),
            )
            async with session.get(
                granted["endpoint"], headers={"Authorization": f"VRM-Proof {proof}"}
            ) as response:
                assert response.status == 401
                assert (await response.json(content_type=None))["code"] == "unknown-key"

            status, revoked = await _driver(session, buyer, "/revoke", {"grant": granted["grant"]})
            assert status == 200, revoked
            # The vendor took the revocation: it stops by itself, sending nothing.
            status, refused = await _driver(
                session, vendor, "/read-grant", {"grant": granted["grant"]}
            )
            assert status == 403, refused
            assert refused["code"] == "grant-revoked"
            async with session.get(granted["endpoint"]) as response:
                assert response.status == 401  # no proof: nothing is said of the grant

        outcomes = await _reads(buyer, granted["grant"])
        assert outcomes.count("answered") == 1, outcomes
        assert "refused: unknown-key" in outcomes, outcomes


async def test_her_agent_refuses_a_read_after_revocation(agents: Agents) -> None:
    # A vendor that keeps reading after she revoked (the fault the suite must
    # catch): her agent refuses it with grant-revoked whatever its proof.
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        vendor = agents.start("vendor", extra_args=["--fault", "read-after-revocation"])
        buyer = agents.start("buyer")
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            await _engaged(session, buyer, vendor.base_url)
            granted = await _grant(session, buyer, vendor.base_url)
            status, read = await _driver(
                session, vendor, "/read-grant", {"grant": granted["grant"]}
            )
            assert (status, read["status"]) == (200, 200), read
            status, _ = await _driver(session, buyer, "/revoke", {"grant": granted["grant"]})
            assert status == 200
            status, read = await _driver(
                session, vendor, "/read-grant", {"grant": granted["grant"]}
            )
            assert status == 200, read
            assert read["status"] == 403, read
            assert read["answer"]["code"] == "grant-revoked"
        outcomes = await _reads(buyer, granted["grant"])
        assert outcomes == ["answered", "refused: grant-revoked"], outcomes
