"""``vrm buyer``: the commands on a data directory, and ``serve`` as a real process."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from reference_buyer.cli import buyer
from reference_buyer.scenario import sally_rfi_body
from vrm_protocol.vocabulary import MessageType

from .conftest import BuyerFactory, VendorFactory, offer_body, stop_buyer

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def test_offers_and_history_read_the_store(
    buyers: BuyerFactory, start_vendor: VendorFactory
) -> None:
    running = await buyers()
    vendor = await start_vendor("Dealer")
    await running.agent.buying.send_rfis([vendor.id], sally_rfi_body(running.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    ids = {}
    for name, total in (("a", "28000"), ("b", "26500")):
        offer, token = vendor.reply(
            rfi, MessageType.OFFER, offer_body(datetime.now(UTC), basis="binding", total=total)
        )
        assert (await running.post(token))[0] == 202
        ids[name] = offer["id"]
    data_dir = running.agent.config.data_dir
    await stop_buyer(running)
    runner = CliRunner()
    offers = await asyncio.to_thread(runner.invoke, buyer, ["offers", "--data-dir", str(data_dir)])
    assert offers.exit_code == 0, offers.output
    lines = offers.output.splitlines()
    assert lines[0].startswith(f"1. {ids['b']}")
    assert "GBP 26500" in lines[0]
    assert "[signed]" in lines[0]
    assert lines[1].startswith(f"2. {ids['a']}")
    history = await asyncio.to_thread(
        runner.invoke, buyer, ["history", "--data-dir", str(data_dir)]
    )
    assert history.exit_code == 0, history.output
    assert f"-> {vendor.id} personal-rfi" in history.output
    assert f"<- {vendor.id} offer {ids['a']} [inbox, verified, received]" in history.output


def test_serve_announces_its_address_serves_discovery_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from vrm_protocol.cli import main; main()",
            "buyer",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--test-mode",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        match = re.match(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        base = match.group(1)
        # Then her dashboard's address, on loopback, with its secret.
        dashboard = process.stdout.readline().decode()
        assert re.match(r"dashboard: http://127\.0\.0\.1:\d+/open\?key=[\w-]{43}$", dashboard)
        with urllib.request.urlopen(base + "/.well-known/vrm", timeout=10) as reply:
            document = json.loads(reply.read())
        # VRM-HTTP-027: nothing that names or finds a pseudonym of hers.
        assert "id" not in document
        assert document["role"] == "buyer"
        assert document["endpoints"] == {"testDriver": base + "/vrm/test-driver"}
        assert {"offer-acceptance", "offer-decline", "exit-notice", "terms-response"} <= set(
            document["messageTypes"]["sends"]
        )
        with urllib.request.urlopen(base + "/vrm/jwks.json", timeout=10) as reply:
            assert json.loads(reply.read()) == {"keys": []}
        assert json.loads((tmp_path / "data" / "agent.json").read_text())["inbox"] == (
            base + "/vrm/inbox"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert not (tmp_path / "data" / "agent.json").exists()
