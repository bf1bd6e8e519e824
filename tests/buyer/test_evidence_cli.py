"""``vrm evidence bundle`` and ``vrm verify --bundle`` (spec §6.32): her thread
from her real store, written as a bundle, checked offline; a bad bundle is one
line on stderr and exit 1."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner, Result

from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.cli import cli
from vrm_protocol.vocabulary import MessageType

from .conftest import VendorFactory, offer_body, start_buyer, stop_buyer


async def _vrm(*arguments: str) -> Result:
    """``vrm ARGUMENTS`` in process, off the event loop (the commands run their own)."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(arguments))


async def _thread(data_dir: Path, start_vendor: VendorFactory) -> str:
    """Her RFI and a vendor's offer in her store (the agent stopped afterwards)."""
    buyer = await start_buyer(data_dir)
    try:
        vendor = await start_vendor("Mayfair")
        await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
        _, rfi = vendor.last("personal-rfi")
        _, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
        assert (await buyer.post(token))[0] == 202
        return str(rfi["thread"])
    finally:
        await stop_buyer(buyer)


async def test_a_thread_is_bundled_and_verified_offline(
    tmp_path: Path, start_vendor: VendorFactory
) -> None:
    data_dir = tmp_path / "sally"
    thread = await _thread(data_dir, start_vendor)
    out = tmp_path / "evidence.json"
    made = await _vrm(
        "evidence", "bundle", "--data-dir", str(data_dir), "--thread", thread, "-o", str(out)
    )
    assert made.exit_code == 0, made.output
    checked = await _vrm("verify", "--bundle", str(out))
    assert checked.exit_code == 0, checked.output
    assert f"verified: 2 messages of thread {thread}" in checked.output

    bundle = json.loads(out.read_text())
    del bundle["messages"][0]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(bundle))
    refuted = await _vrm("verify", "--bundle", str(broken))
    assert refuted.exit_code == 1
    assert refuted.stdout == ""
    assert len(refuted.stderr.strip().splitlines()) == 1
    assert "reference-mismatch" in refuted.stderr


async def test_what_cannot_be_bundled_or_verified_is_one_line(tmp_path: Path) -> None:
    missing = await _vrm(
        "evidence", "bundle", "--data-dir", str(tmp_path / "none"), "--thread", "t", "-o", "x"
    )
    assert missing.exit_code == 1
    assert "no personal data store" in missing.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("{")
    refused = await _vrm("verify", "--bundle", str(junk))
    assert refused.exit_code == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (await _vrm("verify")).exit_code == 2
    both = await _vrm("verify", str(junk), "--bundle", str(junk))
    assert both.exit_code == 2


async def test_an_unknown_thread_is_one_line(tmp_path: Path, start_vendor: VendorFactory) -> None:
    data_dir = tmp_path / "sally"
    await _thread(data_dir, start_vendor)
    result = await _vrm(
        "evidence", "bundle", "--data-dir", str(data_dir), "--thread", "urn:uuid:none", "-o", "x"
    )
    assert result.exit_code == 1
    assert "no signed message of thread" in result.stderr
