"""``vrm buyer``: the commands on a data directory, and ``serve`` as a real process."""

from __future__ import annotations

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
from reference_buyer.store import OfferRecord, SqliteStore

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _offer_payload(message_id: str, total: str) -> dict[str, object]:
    return {
        "vrm": "1.0",
        "type": "offer",
        "id": message_id,
        "thread": message_id,
        "from": "https://dealer.example",
        "to": ["did:jwk:x"],
        "created": "2026-11-23T10:00:00Z",
        "expires": "2099-11-24T10:00:00Z",
        "body": {
            "basis": "binding",
            "validUntil": "2099-01-01T00:00:00Z",
            "price": {
                "subtotal": {"amount": total, "currency": "GBP"},
                "total": {"amount": total, "currency": "GBP"},
            },
        },
    }


def test_offers_and_history_read_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    for message_id, total in (("urn:uuid:a", "28000"), ("urn:uuid:b", "26500")):
        payload = _offer_payload(message_id, total)
        store.record_message(
            direction="in",
            channel="inbox",
            payload=payload,
            counterparty="https://dealer.example",
            token=b"x.y.z",
            digest="sha-256:" + message_id[-1],
            verified=True,
            now=NOW,
        )
        store.save_offer(
            OfferRecord(
                message_id,
                "https://dealer.example",
                message_id,
                None,
                "binding",
                "open",
                True,
                payload["body"],  # type: ignore[arg-type]
                "2026-11-23T10:00:00Z",
                "in",
            )
        )
    store.close()
    runner = CliRunner()
    offers = runner.invoke(buyer, ["offers", "--data-dir", str(tmp_path)])
    assert offers.exit_code == 0, offers.output
    lines = offers.output.splitlines()
    assert lines[0].startswith("1. urn:uuid:b")
    assert "GBP 26500" in lines[0]
    assert lines[1].startswith("2. urn:uuid:a")
    history = runner.invoke(buyer, ["history", "--data-dir", str(tmp_path)])
    assert history.exit_code == 0, history.output
    assert "<- https://dealer.example offer urn:uuid:a [inbox, verified, stored]" in history.output


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
        with urllib.request.urlopen(base + "/.well-known/vrm", timeout=10) as reply:
            document = json.loads(reply.read())
        assert document["id"] == base
        assert document["role"] == "buyer"
        assert document["endpoints"]["testDriver"] == base + "/vrm/test-driver"
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
