"""``vrm demo`` end to end: real vendor processes, the real buyer, all ten steps."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from vrm_protocol.vocabulary import LifecycleStep


def test_demo_runs_all_ten_steps_and_every_signature_verifies(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    finished = subprocess.run(
        [
            sys.executable,
            "-c",
            "from vrm_protocol.cli import main; main()",
            "demo",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    report = finished.stdout + finished.stderr
    assert finished.returncode == 0, report

    transcript = json.loads((out / "transcript.json").read_text())
    assert transcript["ok"] is True
    assert [step["step"] for step in transcript["steps"]] == [str(s) for s in LifecycleStep]
    assert all(step["ok"] for step in transcript["steps"])
    # Every signed message verified (and its receipt); only the paper answer is unsigned.
    messages = transcript["messages"]
    signed = [m for m in messages if m["channel"] != "paper"]
    assert signed
    assert all(m["verified"] is True for m in signed)
    # Every message that crossed HTTP has a verified receipt binding its exact bytes.
    assert all(m["receiptVerified"] is True for m in signed if m["channel"] != "letter")
    letters = [m for m in messages if m["channel"] == "letter"]
    assert [m["type"] for m in letters] == ["personal-rfp"]
    paper = [m for m in messages if m["channel"] == "paper"]
    assert len(paper) == 1
    assert paper[0]["verified"] is None
    # Every step left messages in the transcript, and the lifecycle's key documents are there.
    steps_seen = {m["step"] for m in messages}
    assert steps_seen == {str(s) for s in LifecycleStep}
    types = {m["type"] for m in messages}
    for kind in (
        "personal-rfi",
        "personal-rfp",
        "offer",
        "offer-acceptance",
        "offer-decline",
        "deal-confirmation",
        "terms-assertion",
        "terms-response",
        "service-notice",
        "service-response",
        "support-request",
        "support-resolution",
        "exit-notice",
        "exit-acknowledgement",
    ):
        assert kind in types, kind
    assert transcript["exits"]
    assert all(e["verified"] for e in transcript["exits"])
    # The readable transcript and the letter to the dealer who is not online.
    text = (out / "transcript.md").read_text()
    assert "every step succeeded and every signature verified" in text
    for title in (
        "Search",
        "Engage",
        "Negotiate",
        "Transact",
        "Welcome",
        "servicing",
        "development",
        "problems",
        "exits",
        "Re-engagement",
    ):
        assert title in text
    assert (out / "letters" / "hampstead-motors.txt").exists()
    # The story first (issue 12): one line per message, in order, names not ids,
    # then the full messages; step 1 starts at the directory (spec §11.9).
    story, _, full = text.partition("## The messages")
    assert "## The story" in story
    assert full
    told = [line for line in story.splitlines() if re.match(r"^- \d+ · ", line)]
    assert [int(line[2:].split(" ")[0]) for line in told] == [m["seq"] for m in messages]
    assert all("did:jwk" not in line for line in told)
    assert all("verified" in line or "unsigned" in line for line in told)
    assert "the directory: a search for vehicles.cars" in story
    # Every agent kept its own SQLite store.
    for agent in ("buyer", "dealer-mayfair", "dealer-online", "road-warrior"):
        assert list((out / agent).glob("*.sqlite3")), agent
