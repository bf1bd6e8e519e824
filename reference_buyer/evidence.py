"""Her evidence bundles (spec §6.32): ``vrm evidence bundle``.

A thread of one relationship, from her own store, as a self-verifying
document (:mod:`vrm_protocol.evidence`) she can hand to a third party: the
tokens she kept, the vendor's keys as her agent retrieved them, the digest
chain, sealed with the key of her pseudonym in that relationship. Anyone
checks it offline with ``vrm verify --bundle FILE``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from vrm_protocol.evidence import KeySnapshot, build_bundle

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = ["evidence", "evidence_bundle", "write_bundle"]


async def evidence_bundle(agent: BuyerAgent, thread: str) -> dict[str, Any]:
    """The bundle of ``thread``: every signed message of it she sent or took, in
    the order her agent recorded them, with its receipt (the vendor's for what
    she sent, hers for what she took); refused attempts and paper answers are
    not evidence of the relationship and are left out.

    Raises:
        LookupError: her store holds no signed message of ``thread``, or the
            thread's relationship has no pseudonym of hers.
        StoreUnavailable: the store cannot be read.
    """
    entries = [
        entry
        for entry in await agent.store.history(include_refused=False)
        if entry.thread == thread and entry.token is not None
    ]
    if not entries:
        raise LookupError(f"no signed message of thread {thread} in her store")
    peer = entries[0].peer
    entries = [entry for entry in entries if entry.peer == peer]
    pseudonym = await agent.pseudonyms.known(peer)
    if pseudonym is None:
        raise LookupError(f"no pseudonym of hers with {peer}")
    known = await agent.store.counterparty(peer)
    keys = [KeySnapshot(peer, known.jwks, known.fetched_at)] if known is not None else []
    tokens = [entry.token for entry in entries if entry.token is not None]
    return build_bundle(
        tokens,
        keys,
        [entry.receipt for entry in entries],
        thread=thread,
        seal_key=pseudonym.identity.signing_key,
        sealed_by=pseudonym.identifier,
        now=agent.clock.now(),
    )


def write_bundle(bundle: dict[str, Any], path: Path) -> None:
    """Write ``bundle`` to ``path`` (a new file or one replaced), as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n", "utf-8")


@click.group()
def evidence() -> None:
    """Evidence bundles of her relationships (spec §6.32)."""


@evidence.command("bundle")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("buyer-data"),
    show_default=True,
    help="Her personal data store (the agent must not be running on it).",
)
@click.option("--thread", required=True, help="The thread to bundle (e.g. a problem's).")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The bundle file to write.",
)
def bundle_command(data_dir: Path, thread: str, out: Path) -> None:
    """Write a thread as a self-verifying evidence bundle (check it: vrm verify --bundle)."""
    from reference_buyer.cli import run_with_agent

    async def action(agent: BuyerAgent) -> int:
        bundle = await evidence_bundle(agent, thread)
        write_bundle(bundle, out)
        return len(bundle["messages"])

    try:
        count = run_with_agent(data_dir, action)
    except LookupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{out}: {count} messages of thread {thread}, sealed")
