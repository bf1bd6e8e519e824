"""The vendor's receiving fault switches (test mode only, for the conformance
suite's negative self-tests): each lets exactly one defect through, and only
when it is switched on."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from reference_vendor.app import create_app
from reference_vendor.config import VendorConfig
from reference_vendor.faults import CATALOGUE, FaultError, VendorStrategies
from tests.vendor.conftest import Buyer
from tests.vendor.test_lifecycle import _welcome
from vrm_agent.strategies import PRODUCTION
from vrm_protocol.canonical import b64url_encode, canonical_json

Client = TestClient[web.Request, web.Application]


def _alg_none(buyer: Buyer, payload: dict[str, Any], spelling: str = "none") -> bytes:
    header = {"alg": spelling, "kid": buyer.id + "#0", "typ": "vrm+jws"}
    return ".".join(
        [b64url_encode(json.dumps(header).encode()), b64url_encode(canonical_json(payload)), ""]
    ).encode()


def _tampered(token: bytes) -> bytes:
    head, payload, signature = token.split(b".")
    flipped = (b"A" if signature[:1] != b"A" else b"B") + signature[1:]
    return head + b"." + payload + b"." + flipped


async def _vendor_with(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], *faults: str
) -> Buyer:
    client: Client = await aiohttp_client(create_app(make_config(faults=frozenset(faults))))
    return Buyer(client)


def _code(reply: tuple[int, bytes, str]) -> tuple[int, str]:
    return reply[0], str(json.loads(reply[1])["code"])


async def test_without_faults_alg_none_tampering_and_replays_are_refused(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    buyer = await _vendor_with(aiohttp_client, make_config)
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert _code(await buyer.post(_alg_none(buyer, rfi))) == (400, "unsupported-algorithm")
    assert _code(await buyer.post(_tampered(buyer.sign(rfi)))) == (401, "bad-signature")
    assert (await buyer.send(rfi))[0] == 202
    replayed = {**rfi, "extensions": {"org.example.replayed": True}}
    assert _code(await buyer.send(replayed)) == (409, "replay")


async def test_accept_alg_none_takes_unsigned_messages_and_nothing_else(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    buyer = await _vendor_with(aiohttp_client, make_config, "accept-alg-none")
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    # The other stages still judge it: a message for someone else is still refused.
    elsewhere = {**rfi, "to": ["https://another-vendor.test"]}
    assert _code(await buyer.post(_alg_none(buyer, elsewhere, "NONE"))) == (
        421,
        "wrong-audience",
    )
    # Only alg none is let through: a bad signature under a real algorithm is not.
    assert _code(await buyer.post(_tampered(buyer.sign(rfi)))) == (401, "bad-signature")
    assert (await buyer.post(_alg_none(buyer, rfi, "nOnE")))[0] == 202
    assert len(await buyer.poll()) == 1  # processed: the RFI was answered


async def test_skip_signature_check_takes_bad_signatures_but_not_alg_none(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    buyer = await _vendor_with(aiohttp_client, make_config, "skip-signature-check")
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert _code(await buyer.post(_alg_none(buyer, rfi))) == (400, "unsupported-algorithm")
    assert (await buyer.post(_tampered(buyer.sign(rfi))))[0] == 202


async def test_no_replay_guard_processes_another_message_under_a_used_id(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    buyer = await _vendor_with(aiohttp_client, make_config, "no-replay-guard")
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    token = buyer.sign(rfi)
    first = await buyer.post(token)
    assert first[0] == 202
    # An identical resend is still answered with the original receipt.
    assert await buyer.post(token) == (200, first[1], first[2])
    replayed = {**rfi, "extensions": {"org.example.replayed": True}}
    assert (await buyer.send(replayed))[0] == 202
    assert [reply.type for reply in await buyer.poll()] == ["offer", "offer"]


async def test_offer_over_budget_answers_above_the_budget(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    buyer = await _vendor_with(aiohttp_client, make_config, "offer-over-budget")
    body = bodies.personal_rfi_body(buyer.now())
    assert (await buyer.send(buyer.compose("personal-rfi", body)))[0] == 202
    [offer] = await buyer.poll()
    assert offer.type == "offer"
    total = Decimal(offer.body["price"]["total"]["amount"])
    assert total > Decimal(body["budget"]["max"]["amount"])


@pytest.mark.parametrize("faults", [(), ("ignore-exit",)])
async def test_ignore_exit_receipts_the_deletion_but_keeps_the_data(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], faults: tuple[str, ...]
) -> None:
    buyer = await _vendor_with(aiohttp_client, make_config, *faults)
    rfi, shared = await _welcome(buyer)
    notice = buyer.compose("exit-notice", bodies.exit_notice_body(buyer.now()), thread=rfi["id"])
    assert (await buyer.send(notice))[0] == 202
    ack = await buyer.expect("exit-acknowledgement")
    assert set(shared) <= set(ack.body["deletionReceipt"]["deleted"]), "receipted either way"
    state = await (await buyer.client.get("/vrm/test-driver/state")).json()
    held = set(state["relationships"][buyer.id]["data"])
    assert held == (set(shared) if faults else set())


def test_vendor_faults_are_strategies_installed_only_in_test_mode() -> None:
    assert VendorStrategies().runtime is PRODUCTION
    with pytest.raises(FaultError, match="test-mode"):
        CATALOGUE.apply(VendorStrategies(), ["skip-signature-check"], test_mode=False)
    with pytest.raises(FaultError, match="unknown"):
        CATALOGUE.apply(VendorStrategies(), ["no-such-fault"], test_mode=True)
    assert CATALOGUE.apply(VendorStrategies(), [], test_mode=False) == VendorStrategies()
    for name in CATALOGUE.descriptions:
        assert CATALOGUE.apply(VendorStrategies(), [name], test_mode=True) != VendorStrategies()
