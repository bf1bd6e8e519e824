"""The buyer's fault switches (test mode only, for the conformance suite's
negative self-tests): each lets exactly one defect through, only when it is on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from reference_buyer.cli import buyer as buyer_cli
from reference_buyer.faults import FAULTS, FaultError, check_faults
from reference_buyer.scenario import sally_rfi_body
from tests.buyer.conftest import (
    BuyerFactory,
    InTestVendor,
    RunningBuyer,
    VendorFactory,
    offer_body,
)
from vrm_protocol.codec import encode
from vrm_protocol.keys import PairwiseIdentity
from vrm_protocol.vocabulary import MessageType


def test_faults_only_by_name_and_only_in_test_mode() -> None:
    assert check_faults(["ignore-audience"], test_mode=True) == {"ignore-audience"}
    assert check_faults([], test_mode=False) == frozenset()
    with pytest.raises(FaultError, match="only with --test-mode"):
        check_faults(["ignore-audience"], test_mode=False)
    with pytest.raises(FaultError, match="unknown"):
        check_faults(["no-such-fault"], test_mode=True)
    assert all("(" in description for description in FAULTS.values())


def test_serve_refuses_a_fault_without_test_mode(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        buyer_cli, ["serve", "--data-dir", str(tmp_path), "--fault", "accept-without-verifying"]
    )
    assert result.exit_code == 2
    assert "only with --test-mode" in result.output


def _tampered(token: bytes) -> bytes:
    head, payload, signature = token.split(b".")
    return head + b"." + payload + b"." + (b"A" if signature[:1] != b"A" else b"B") + signature[1:]


async def _offer_tokens(buyer: RunningBuyer, vendor: InTestVendor) -> tuple[bytes, bytes]:
    """A tampered offer and a well-signed offer addressed to another pseudonym."""
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    _, signed = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    misaddressed, _ = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    misaddressed["to"] = [PairwiseIdentity.generate().identifier]
    return _tampered(signed), encode(misaddressed, vendor.key)


async def _code(buyer: RunningBuyer, token: bytes) -> tuple[int, str]:
    status, body, _ = await buyer.post(token)
    return status, str(json.loads(body)["code"]) if status >= 400 else ""


async def test_without_faults_bad_signatures_and_other_audiences_are_refused(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    tampered, misaddressed = await _offer_tokens(buyer, await start_vendor("A"))
    assert await _code(buyer, tampered) == (401, "bad-signature")
    assert await _code(buyer, misaddressed) == (421, "wrong-audience")


async def test_accept_without_verifying_lets_only_bad_signatures_through(
    buyers: BuyerFactory, start_vendor: VendorFactory
) -> None:
    buyer = await buyers(faults=frozenset({"accept-without-verifying"}))
    tampered, misaddressed = await _offer_tokens(buyer, await start_vendor("A"))
    assert await _code(buyer, misaddressed) == (421, "wrong-audience")
    assert await _code(buyer, tampered) == (202, "")


async def test_ignore_audience_lets_only_other_audiences_through(
    buyers: BuyerFactory, start_vendor: VendorFactory
) -> None:
    buyer = await buyers(faults=frozenset({"ignore-audience"}))
    tampered, misaddressed = await _offer_tokens(buyer, await start_vendor("A"))
    assert await _code(buyer, tampered) == (401, "bad-signature")
    assert await _code(buyer, misaddressed) == (202, "")


def test_production_has_no_fault_switch_in_its_path() -> None:
    # Each fault replaces one strategy; without faults the agent runs the
    # production strategies, and only test mode may weaken them.
    from reference_buyer.config import BuyerConfig
    from reference_buyer.faults import BUYER_RUNTIME, BuyerStrategies

    production = BuyerConfig(data_dir=Path("unused")).strategies
    assert production == BuyerStrategies()
    assert production.runtime is BUYER_RUNTIME
    assert production.runtime.participation.thread_must_be_known
    for name in FAULTS:
        weakened = BuyerConfig(
            data_dir=Path("unused"), test_mode=True, faults=frozenset({name})
        ).strategies
        assert weakened != production, name
        with pytest.raises(FaultError):
            _ = BuyerConfig(data_dir=Path("unused"), faults=frozenset({name})).strategies
