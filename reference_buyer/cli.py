"""``vrm buyer``: run the reference buyer agent and act for the individual.

Every command works on a data directory (the personal data store).  ``serve``
runs the agent's HTTP side (discovery, inbox, test driver) and records its
address in ``<data-dir>/agent.json``; the other commands, run while it
serves, give that inbox as ``replyTo`` so the replies land in the store.
Without a running server they send without ``replyTo`` and ``offers --poll``
collects the replies from the vendors' mailboxes (spec §11.4).

Exit codes: 0 success; 1 the protocol refused something (the message says
which code); 2 usage errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import click
from aiohttp import web

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import AppConfig, create_app
from reference_buyer.faults import FAULTS, FaultError, check_faults
from reference_buyer.letters import PostalRecipient
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_profile, sally_rfi_body, sally_rfp_body
from reference_buyer.store import SqliteStore
from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import INBOX_PATH

__all__ = ["buyer"]

T = TypeVar("T")

_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("buyer-data"),
    show_default=True,
    help="The personal data store.",
)
_POLICY = click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sharing policy (TOML); default: <data-dir>/policy.toml, else the shipped defaults.",
)


def _policy(data_dir: Path, policy_file: Path | None) -> Any:
    if policy_file is None and (data_dir / "policy.toml").exists():
        policy_file = data_dir / "policy.toml"
    return load_policy(policy_file)


def _seed_profile(store: SqliteStore) -> None:
    # A new store starts with Sally's volunteered information, so the reference
    # agent has something to disclose at acceptance; edit it like any profile.
    if not store.profile():
        for category, value in sally_profile().items():
            store.set_profile(category, value)


def _run(
    data_dir: Path, policy_file: Path | None, action: Callable[[BuyerAgent], Awaitable[T]]
) -> T:
    async def main() -> T:
        store = SqliteStore(data_dir)
        _seed_profile(store)
        served = data_dir / "agent.json"
        inbox = json.loads(served.read_text())["inbox"] if served.exists() else None
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                agent = BuyerAgent(
                    store, _policy(data_dir, policy_file), http=http, inbox_url=inbox
                )
                return await action(agent)
        finally:
            store.close()

    try:
        return asyncio.run(main())
    except ProtocolError as error:
        click.echo(f"refused: {error.code.value}: {error.detail}", err=True)
        sys.exit(1)


@click.group()
def buyer() -> None:
    """The reference buyer agent: the individual's own agent."""


@buyer.command()
@_DATA_DIR
@_POLICY
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, help="0: any free port.")
@click.option("--test-mode", is_flag=True, help="Serve the conformance test driver.")
@click.option(
    "--no-inbox",
    is_flag=True,
    help="Give vendors no replyTo: collect replies from their mailboxes instead.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice(sorted(FAULTS)),
    help="Misbehave on purpose (test mode only; for the conformance suite's own tests).",
)
def serve(
    data_dir: Path,
    policy_file: Path | None,
    host: str,
    port: int,
    test_mode: bool,
    no_inbox: bool,
    faults: tuple[str, ...],
) -> None:
    """Run the agent's HTTP side until SIGINT/SIGTERM.

    Prints `listening on http://HOST:PORT` once bound. A fault switch without
    --test-mode is a usage error (exit 2).
    """
    try:
        chosen_faults = check_faults(faults, test_mode=test_mode)
    except FaultError as error:
        raise click.UsageError(str(error)) from error

    async def main() -> None:
        store = SqliteStore(data_dir)
        _seed_profile(store)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                agent = BuyerAgent(
                    store, _policy(data_dir, policy_file), http=http, faults=chosen_faults
                )
                config = AppConfig(test_mode=test_mode)
                runner = web.AppRunner(create_app(agent, config), handle_signals=False)
                await runner.setup()
                site = web.TCPSite(runner, host, port)
                await site.start()
                bound = runner.addresses[0][1]
                base = f"http://{host}:{bound}"
                config.base_url = base
                agent.agent_id = base
                agent.inbox_url = None if no_inbox else base + INBOX_PATH
                (data_dir / "agent.json").write_text(
                    json.dumps({"baseUrl": base, "inbox": agent.inbox_url})
                )
                # Without a public inbox the replies wait in the vendors' mailboxes.
                poller = asyncio.create_task(agent.poll_forever()) if no_inbox else None
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)
                click.echo(f"listening on {base}")
                sys.stdout.flush()
                try:
                    await stop.wait()
                finally:
                    if poller is not None:
                        poller.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await poller
                    (data_dir / "agent.json").unlink(missing_ok=True)
                    await runner.cleanup()
        finally:
            store.close()

    asyncio.run(main())


@buyer.command()
@_DATA_DIR
@_POLICY
@click.argument("vendors", nargs=-1, required=True)
def rfi(data_dir: Path, policy_file: Path | None, vendors: Sequence[str]) -> None:
    """Send the personal RFI (Sally's car) to VENDORS, one pseudonym each."""

    async def action(agent: BuyerAgent) -> None:
        sent = await agent.send_rfis(list(vendors), sally_rfi_body(agent.clock.now()))
        for vendor, delivery in sent.items():
            state = "delivered" if delivery.receipt else delivery.message.delivery
            click.echo(f"{vendor}: {delivery.message.message_id} ({state})")

    _run(data_dir, policy_file, action)


@buyer.command()
@_DATA_DIR
@_POLICY
@click.option("--poll", is_flag=True, help="Collect replies from the vendors' mailboxes first.")
def offers(data_dir: Path, policy_file: Path | None, poll: bool) -> None:
    """List open offers, cheapest total cost first."""

    async def action(agent: BuyerAgent) -> None:
        if poll:
            for relationship in agent.store.relationships():
                try:
                    await agent.poll_mailbox(relationship.counterparty)
                except ProtocolError as error:
                    click.echo(f"{relationship.counterparty}: {error.detail}", err=True)
        for row in agent.ranked_offers():
            offer = agent.store.offer(row.offer_id)
            signed = "signed" if offer is not None and offer.verified else "UNSIGNED (paper)"
            click.echo(
                f"{row.rank}. {row.offer_id} from {row.vendor}: total cost {row.currency} "
                f"{row.total_cost} (net {row.net_price} + finance {row.finance_cost}"
                f"{', plan ' + row.plan if row.plan else ''}) [{signed}]"
            )

    _run(data_dir, policy_file, action)


@buyer.command()
@_DATA_DIR
@_POLICY
@click.argument("vendors", nargs=-1)
@click.option(
    "--letter",
    "letters",
    multiple=True,
    metavar="ID|NAME|ADDRESS-LINES",
    help="A vendor reached by post: party id, name, address lines separated by ';'.",
)
@click.option(
    "--approval-required", is_flag=True, help="A co-decision-maker must approve the deal."
)
def rfp(
    data_dir: Path,
    policy_file: Path | None,
    vendors: Sequence[str],
    letters: Sequence[str],
    approval_required: bool,
) -> None:
    """Send the personal RFP to VENDORS (and print letters for --letter vendors)."""
    postal = []
    for spec in letters:
        party, name, address = [*spec.split("|"), "", ""][:3]
        postal.append(PostalRecipient(party, name or party, tuple(address.split(";"))))

    async def action(agent: BuyerAgent) -> None:
        sent, printed = await agent.send_rfp(
            list(vendors),
            sally_rfp_body(agent.clock.now()),
            postal=postal,
            co_decision_maker=approval_required,
        )
        for vendor, delivery in sent.items():
            click.echo(f"{vendor}: {delivery.message.message_id}")
        for vendor, letter in printed.items():
            click.echo(f"{vendor}: letter {letter.message_id} in {agent.letters_dir}")

    _run(data_dir, policy_file, action)


@buyer.command()
@_DATA_DIR
@_POLICY
@click.option("--letter", "letter_id", required=True, help="The id of the letter it answers.")
@click.argument("vendor")
@click.argument("offer_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def paper(
    data_dir: Path, policy_file: Path | None, letter_id: str, vendor: str, offer_file: Path
) -> None:
    """Type in VENDOR's answer by post: OFFER_FILE holds the offer body (JSON).

    It is stored unsigned, ranks with the other offers, and is answered by post.
    """

    body = json.loads(offer_file.read_text("utf-8"))

    async def action(agent: BuyerAgent) -> None:
        stored = agent.enter_paper_answer(vendor, body, in_reply_to=letter_id)
        click.echo(f"stored unsigned offer {stored.message_id}")

    _run(data_dir, policy_file, action)


@buyer.command()
@_DATA_DIR
@_POLICY
@click.argument("offer_id")
def accept(data_dir: Path, policy_file: Path | None, offer_id: str) -> None:
    """Accept OFFER_ID (identity disclosed now, as the policy allows)."""

    async def action(agent: BuyerAgent) -> None:
        delivery = await agent.accept(offer_id)
        click.echo(f"accepted: {delivery.message.message_id}")

    _run(data_dir, policy_file, action)


@buyer.command(name="exit")
@_DATA_DIR
@_POLICY
@click.argument("vendor")
def exit_command(data_dir: Path, policy_file: Path | None, vendor: str) -> None:
    """Exit the relationship with VENDOR, asking for export and deletion."""

    async def action(agent: BuyerAgent) -> None:
        delivery = await agent.exit(vendor.rstrip("/"))
        click.echo(f"exit notice: {delivery.message.message_id}")

    _run(data_dir, policy_file, action)


@buyer.command()
@_DATA_DIR
@click.argument("vendor", required=False)
def history(data_dir: Path, vendor: str | None) -> None:
    """Every message kept (optionally with one VENDOR), and how exits checked out."""
    store = SqliteStore(data_dir)
    try:
        for message in store.messages(counterparty=vendor.rstrip("/") if vendor else None):
            arrow = "->" if message.direction == "out" else "<-"
            check = "verified" if message.verified else "UNSIGNED"
            click.echo(
                f"{message.stored_at} {arrow} {message.counterparty} {message.type} "
                f"{message.message_id} [{message.channel}, {check}, {message.delivery}]"
            )
        for record in store.exits(vendor.rstrip("/") if vendor else None):
            outcome = {
                None: "awaiting acknowledgement",
                True: "deletion verified",
                False: "deletion NOT verified",
            }[record.receipt_verified]
            click.echo(f"exit {record.counterparty}: {outcome} {list(record.problems)}")
    finally:
        store.close()
