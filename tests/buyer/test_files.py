"""Her store on disk (spec D10): private whatever the umask, and configuration
that others can write is refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from reference_buyer.agent import BuyerAgent
from reference_buyer.cli import buyer as buyer_cli
from reference_buyer.config import BuyerConfig
from reference_buyer.letters import PostalRecipient, render_letter, write_letter
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_rfp_body
from vrm_protocol.codec import build_message
from vrm_protocol.keys import PairwiseIdentity
from vrm_protocol.models import PersonalRfpMessage, to_payload

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_store_is_private_whatever_the_umask(tmp_path: Path, open_umask: None) -> None:
    data_dir = tmp_path / "buyer"
    agent = await BuyerAgent.open(BuyerConfig(data_dir=data_dir), load_policy())
    try:
        await agent.pseudonyms.ensure("https://dealer.example")
        await agent.store.set_profile("identity.name", "Sally Example")
        message = PersonalRfpMessage.model_validate(
            build_message(
                "personal-rfp",
                to_payload(sally_rfp_body(NOW)),
                sender=PairwiseIdentity.generate().identifier,
                to=["https://postal.example"],
                now=NOW,
            )
        )
        letter = render_letter(
            message,
            b"a.b.c",
            recipient=PostalRecipient("https://postal.example", "Postal Motors", ("1 Road",)),
            reply_address=("PO Box 1",),
            date="2026-11-23",
        )
        write_letter(letter, agent.config.letters, "postal-motors")
    finally:
        await agent.close()
    directories = [data_dir, *(p for p in data_dir.rglob("*") if p.is_dir())]
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files
    assert {str(p.relative_to(data_dir)): _mode(p) for p in directories} == {
        str(p.relative_to(data_dir)): 0o700 for p in directories
    }
    assert {str(p.relative_to(data_dir)): _mode(p) for p in files} == {
        str(p.relative_to(data_dir)): 0o600 for p in files
    }


@pytest.mark.parametrize("where", ["data-dir", "--policy"])
def test_a_policy_others_can_write_is_refused_in_one_line(tmp_path: Path, where: str) -> None:
    data_dir = tmp_path / "buyer"
    data_dir.mkdir(mode=0o700)
    policy = data_dir / "policy.toml" if where == "data-dir" else tmp_path / "policy.toml"
    policy.write_text("[notifications]\nallowed = ['promotions']\n")
    policy.chmod(0o666)
    arguments = ["offers", "--data-dir", str(data_dir)]
    if where == "--policy":
        arguments += ["--policy", str(policy)]
    result = CliRunner().invoke(buyer_cli, arguments)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(policy) in lines[0]
    assert "writable" in lines[0]
