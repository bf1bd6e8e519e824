"""What a vendor publishes is untrusted input (spec D6, D7).

Real hostile vendors on 127.0.0.1 against the real buyer agent: discovery
documents that point elsewhere, redirects, key sets far too large or with
too many keys, stalled answers; and the delivery policy for the buyer's own
POSTs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from reference_buyer.agent import BuyerAgent
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.directory import BoundedCache
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_rfi_body
from vrm_agent.net import KeyCache
from vrm_agent.outbox import DeliveryBudget
from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.http_binding import DeliveryPolicy, DeliveryRefused
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.vocabulary import MessageType

from .conftest import BuyerFactory, RunningBuyer, VendorFactory, offer_body

#: Far more than any key set may be (spec D7: 64 KiB), far less than a test can afford.
HUGE = 64 * 1024 * 1024


def _posts(vendor_requests: list[str]) -> list[str]:
    return [r for r in vendor_requests if r.startswith("POST ")]


async def test_an_inbox_named_on_another_origin_is_never_posted_to(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor, elsewhere = await start_vendor("Dealer"), await start_vendor("Victim")
    vendor.endpoints_override = {"inbox": elsewhere.id + "/vrm/inbox"}
    with pytest.raises(ProtocolError):
        await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    assert not _posts(elsewhere.requests)
    assert not _posts(vendor.requests)


@pytest.mark.parametrize("endpoint", ["jwks", "mailbox"])
async def test_other_endpoints_named_on_another_origin_are_refused(
    endpoint: str, buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor, elsewhere = await start_vendor("Dealer"), await start_vendor("Victim")
    vendor.endpoints_override = {endpoint: elsewhere.id + f"/vrm/{endpoint}"}
    with pytest.raises(ProtocolError):
        await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    assert elsewhere.requests == []


async def test_a_huge_key_set_is_refused_without_reading_it_and_the_agent_stays_responsive(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    written: list[int] = []

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent = 0
        try:
            await response.write(b'{"keys": [')
            chunk = b" " * 65536
            while sent < HUGE:
                await response.write(chunk)
                sent += len(chunk)
            await response.write(b"]}")
        except (ConnectionError, RuntimeError):
            pass  # the buyer hung up, as it should
        finally:  # also when the server cancels this handler as the buyer hangs up
            written.append(sent)
        return response

    vendor.jwks_handler = huge
    with pytest.raises(ProtocolError) as refused:
        await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    assert refused.value.code is ErrorCode.TEMPORARILY_UNAVAILABLE
    await asyncio.sleep(0.2)
    # What the sockets buffered at most, not the 64 MiB offered.
    assert written
    assert written[0] < 16 * 1024 * 1024, written
    assert _posts(vendor.requests) == []
    status, _, _ = await buyer.post(b"not.a.jws")
    assert status == 400


async def test_a_key_set_with_too_many_keys_is_refused_whole(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    keys = [vendor.key.public(), *(SigningKey.generate("EdDSA").public() for _ in range(16))]

    async def many(request: web.Request) -> web.Response:
        return web.json_response(KeySet(keys).to_jwks())

    vendor.jwks_handler = many
    with pytest.raises(ProtocolError):
        await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    assert _posts(vendor.requests) == []


async def test_redirects_are_never_followed(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor, elsewhere = await start_vendor("Dealer"), await start_vendor("Elsewhere")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(elsewhere.id + "/vrm/jwks.json")

    vendor.jwks_handler = moved
    with pytest.raises(ProtocolError):
        await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    assert elsewhere.requests == []


async def test_a_redirect_answering_her_post_is_a_failed_attempt_never_followed(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor, elsewhere = await start_vendor("Dealer"), await start_vendor("Elsewhere")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(elsewhere.id + "/vrm/inbox")

    vendor.inbox_handler = moved
    with pytest.raises(ProtocolError) as refused:
        await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    assert refused.value.code is ErrorCode.TEMPORARILY_UNAVAILABLE
    assert elsewhere.requests == []
    # A bounded number of attempts, not a loop.
    assert 1 <= len(_posts(vendor.requests)) <= 3


async def test_a_stalled_answer_is_given_up_on(
    buyers: BuyerFactory, start_vendor: VendorFactory
) -> None:
    buyer = await buyers(fetch_timeout=0.5)
    vendor = await start_vendor("Dealer")
    release = asyncio.Event()

    async def stalled(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(KeySet([vendor.key.public()]).to_jwks())

    vendor.jwks_handler = stalled
    try:
        with pytest.raises(ProtocolError) as refused:
            await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
        assert refused.value.code is ErrorCode.TEMPORARILY_UNAVAILABLE
    finally:
        release.set()


@pytest.fixture
async def strict_agent(tmp_path: Path) -> AsyncIterator[BuyerAgent]:
    """A buyer agent whose operator allowed no loopback delivery (the production default)."""
    agent = await BuyerAgent.open(
        BuyerConfig(data_dir=tmp_path / "strict", decorrelation=Decorrelation(spread_seconds=0.0)),
        load_policy(),
    )
    try:
        yield agent
    finally:
        await agent.close()


async def test_without_an_allow_list_loopback_and_plain_http_are_refused(
    strict_agent: BuyerAgent, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    with pytest.raises(ProtocolError) as refused:
        await strict_agent.buying.send_rfis([vendor.id], sally_rfi_body(strict_agent.clock.now()))
    assert refused.value.code is ErrorCode.TEMPORARILY_UNAVAILABLE
    assert vendor.requests == []


def _refused(policy: DeliveryPolicy, url: str) -> bool:
    try:
        policy.check_url(url)
    except DeliveryRefused:
        return True
    return False


def _address_allowed(policy: DeliveryPolicy, host: str, port: int, address: str) -> bool:
    try:
        policy.check_address(policy.check_url(f"https://{host}:{port}/"), address)
    except DeliveryRefused:
        return False
    return True


def test_the_delivery_policy_judges_scheme_host_and_address() -> None:
    # Her agent's policy is the runtime's (spec §11.8, D6): the buyer keeps no copy.
    strict = BuyerConfig(data_dir=Path("unused")).delivery_policy
    loopback = DeliveryPolicy.from_entries(["127.0.0.1"])
    assert _refused(strict, "http://dealer.example/vrm/inbox")  # http: allow-list only
    assert _refused(strict, "ftp://dealer.example/")
    assert not _refused(strict, "https://dealer.example/vrm/inbox")
    assert not _refused(loopback, "http://127.0.0.1:8080/vrm/inbox")
    for address in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "240.0.0.1",
    ):
        assert not _address_allowed(strict, "dealer.example", 443, address), address
    assert _address_allowed(strict, "dealer.example", 443, "93.184.215.14")
    assert _address_allowed(loopback, "127.0.0.1", 8080, "127.0.0.1")
    one_port = DeliveryPolicy.from_entries(["127.0.0.1:9"])
    assert _address_allowed(one_port, "127.0.0.1", 9, "127.0.0.1")
    assert not _address_allowed(one_port, "127.0.0.1", 10, "127.0.0.1")
    # Test mode adds loopback to the operator's list.
    assert not _refused(
        BuyerConfig(data_dir=Path("unused"), test_mode=True).delivery_policy,
        "http://127.0.0.1:8080/vrm/inbox",
    )


@pytest.mark.parametrize("kind", ["runtime", "directory"])
def test_the_key_cache_is_bounded_in_entries_and_time(kind: str) -> None:
    cache: KeyCache | BoundedCache[KeySet] = (
        KeyCache(max_entries=2, ttl_seconds=60.0)
        if kind == "runtime"
        else BoundedCache(max_entries=2, ttl_seconds=60.0)
    )
    keys = KeySet([SigningKey.generate("EdDSA").public()])
    cache.put("https://a.example", keys, now=0.0)
    cache.put("https://b.example", keys, now=1.0)
    cache.put("https://c.example", keys, now=2.0)
    assert cache.get("https://a.example", now=3.0) is None  # evicted: the oldest
    assert cache.get("https://c.example", now=3.0) is keys
    assert cache.get("https://c.example", now=63.0) is None  # expired
    assert len(cache) <= 2


async def test_a_known_vendor_rotating_keys_is_refetched_within_bounds(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    vendor.key = SigningKey.generate("EdDSA")  # rotated: the new key is published
    _, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    status, answer, _ = await buyer.post(token)
    assert status == 202, json.loads(answer)


async def test_a_relationship_without_a_deal_stops_costing_attempts_when_its_budget_is_spent(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Down Motors")

    async def down(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable()

    vendor.inbox_handler = down
    buyer.agent.courier.budget = DeliveryBudget(
        attempts=1, stranger_attempts=1, stranger_failures=2
    )
    for _ in range(4):
        with pytest.raises(ProtocolError) as refused:
            await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
        assert refused.value.code is ErrorCode.TEMPORARILY_UNAVAILABLE
    # Two attempts, then none: a peer that never answers cannot make her agent hammer it.
    assert len(_posts(vendor.requests)) == 2
