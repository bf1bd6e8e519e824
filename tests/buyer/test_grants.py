"""Her read endpoint over real HTTP (spec §11.9): the in-test vendor holds its key,
so the test reads as the grantee would, across a restart of her agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from reference_buyer.grants import READ_PATH
from reference_buyer.scenario import sally_rfp_body
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError
from vrm_protocol.read_proof import sign_read_proof
from vrm_protocol.vocabulary import MessageType

from .conftest import BuyerFactory, InTestVendor, RunningBuyer, VendorFactory, stop_buyer

TRAVEL = "travel.dates"


async def _get(url: str, proof: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"VRM-Proof {proof}"} if proof is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, dict(await response.json(content_type=None))


async def _granted(buyer: RunningBuyer, vendor: InTestVendor, **options: Any) -> Any:
    now = buyer.agent.clock.now()
    await buyer.agent.buying.send_rfp([vendor.id], sally_rfp_body(now))
    _, record = await buyer.agent.grants.grant(
        vendor.id,
        items=(TRAVEL,),
        purposes=("programme-membership",),
        until=options.get("until", now + timedelta(days=1)),
    )
    return record


async def test_a_read_answers_the_current_value_and_a_proof_is_taken_once_even_across_a_restart(
    buyers: BuyerFactory, start_vendor: VendorFactory
) -> None:
    buyer = await buyers("sally")
    vendor = await start_vendor("Road Warrior")
    record = await _granted(buyer, vendor)
    (_, grant_message) = vendor.last(MessageType.ACCESS_GRANT.value)
    assert grant_message["body"]["key"] == vendor.key.thumbprint()
    assert grant_message["body"]["endpoint"] == record.endpoint

    def proof(jti: str | None = None) -> str:
        return sign_read_proof(
            vendor.key,
            grant=record.grant_id,
            method="GET",
            url=record.endpoint,
            now=datetime.now(UTC),
            jti=jti,
        )

    first = proof()
    status, document = await _get(record.endpoint, first)
    assert status == 200, document
    assert document["items"] == [{"item": TRAVEL, "value": (await buyer.store.profile())[TRAVEL]}]
    # The trip moved: nothing is pushed, the next read answers the new value (VRM-GRANT-006).
    await buyer.store.set_profile(TRAVEL, "2027-04-11/2027-04-18 (Cornwall)")
    status, document = await _get(record.endpoint, proof())
    assert (status, document["items"][0]["value"]) == (200, "2027-04-11/2027-04-18 (Cornwall)")

    await stop_buyer(buyer)
    again = await buyers("sally")  # the same store, another port
    tag = record.endpoint.rsplit("/", 1)[1]
    status, document = await _get(again.url(f"{READ_PATH}/{tag}"), first)
    assert (status, document["code"]) == (409, "replay")
    status, _ = await _get(again.url(f"{READ_PATH}/{tag}"), proof())
    assert status == 200
    outcomes = [read.outcome for read in await again.store.grant_reads(record.grant_id)]
    assert outcomes == ["answered", "answered", "refused: replay", "answered"]


async def test_no_read_after_revocation_or_until_and_unknown_endpoints(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Road Warrior")
    record = await _granted(buyer, vendor)
    await buyer.agent.grants.revoke(record.grant_id, reason="trip over")
    (_, revocation) = vendor.last(MessageType.ACCESS_REVOCATION.value)
    assert revocation["body"]["grant"] == record.grant_id
    fresh = sign_read_proof(
        vendor.key, grant=record.grant_id, method="GET", url=record.endpoint, now=datetime.now(UTC)
    )
    status, document = await _get(record.endpoint, fresh)
    assert (status, document["code"]) == (403, "grant-revoked")

    other = await start_vendor("Other")
    soon = buyer.agent.clock.now() + timedelta(seconds=1)
    short = await _granted(buyer, other, until=soon)
    buyer.agent.clock.set_offset_seconds(5)
    late = sign_read_proof(
        other.key,
        grant=short.grant_id,
        method="GET",
        url=short.endpoint,
        now=buyer.agent.clock.now(),
    )
    status, document = await _get(short.endpoint, late)
    assert (status, document["code"]) == (403, "grant-expired")

    status, document = await _get(buyer.url(f"{READ_PATH}/nothing-here"), fresh)
    assert (status, document["code"]) == (404, "not-found")


async def test_a_revocation_takes_effect_at_her_agent_even_if_the_grantee_cannot_be_told(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Road Warrior")
    record = await _granted(buyer, vendor)
    vendor.refuse_next = ErrorCode.ILLEGAL_TRANSITION
    with pytest.raises(ProtocolError):
        await buyer.agent.grants.revoke(record.grant_id)
    proof = sign_read_proof(
        vendor.key, grant=record.grant_id, method="GET", url=record.endpoint, now=datetime.now(UTC)
    )
    status, document = await _get(record.endpoint, proof)
    assert (status, document["code"]) == (403, "grant-revoked")
    # She tells the grantee again; once it took the revocation, there is nothing left to revoke.
    await buyer.agent.grants.revoke(record.grant_id)
    held = await buyer.store.access_grant(grant_id=record.grant_id)
    assert held is not None
    assert held.revocation_id is not None
    with pytest.raises(LocalProtocolError):
        await buyer.agent.grants.revoke(record.grant_id)
