"""The story at the top of the demo's transcript (reference_buyer.journey_story)."""

from __future__ import annotations

from typing import Any

from reference_buyer.journey_story import gist, story_lines
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.vocabulary import MessageType


def _item(seq: int, step: str, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "seq": seq,
        "step": step,
        "channel": "http",
        "type": "offer",
        "senderName": "Mayfair Motors",
        "recipient": "Sally",
        "gist": "binding, GBP 19248: Toyota Prius",
        "verified": True,
        "receiptVerified": True,
    }
    item.update(overrides)
    return item


def test_one_line_per_message_under_its_step_with_the_verdict() -> None:
    lines = story_lines(
        [
            _item(1, "search", senderName="Sally", recipient="Mayfair Motors", type="personal-rfi"),
            _item(2, "search"),
            _item(3, "engage", verified=None, receiptVerified=None, gist="typed in from paper"),
            _item(4, "engage", channel="letter", receiptVerified=None),
            _item(5, "negotiate", verified=False, receiptVerified=False),
        ],
        {"search": "1. Search", "engage": "2. Engage"},
        {"search": ["Sally's agent → the directory: a search"]},
    )
    text = "\n".join(lines)
    assert text.startswith("## The story")
    assert "**1. Search**" in text
    assert "**2. Engage**" in text
    assert "**negotiate**" in text  # a step without a title keeps its name
    assert "- Sally's agent → the directory: a search" in text
    told = [line for line in lines if line.startswith("- ") and " · " in line]
    assert [line.split(" · ")[0] for line in told] == ["- 1", "- 2", "- 3", "- 4", "- 5"]
    assert told[0] == (
        "- 1 · Sally → Mayfair Motors: **personal-rfi**, binding, GBP 19248: Toyota Prius"
        " — ✔ verified, receipt ✔"
    )
    assert told[2].endswith("— unsigned (typed in from paper)")
    assert "(by post)" in told[3]
    assert told[3].endswith("— ✔ verified")
    assert told[4].endswith("— ✘ NOT VERIFIED, RECEIPT ✘")


def test_a_type_without_words_of_its_own_is_told_by_its_summary() -> None:
    words = gist(MessageType.RECEIPT, None)
    assert words
    assert len(words) <= 70
    assert MESSAGE_TYPES[MessageType.RECEIPT].summary.startswith(words.rstrip("…")[:20])
