"""``vrm buyer``: run the reference buyer agent and act for the individual.

Every command works on a data directory (the personal data store).  ``serve``
runs the agent's HTTP side (discovery, inbox, test driver), holds the store's
lock (one agent per store, spec D10) and records its address in
``<data-dir>/agent.json``; the other commands, run while it serves, give that
inbox as ``replyTo`` so the replies land in the store.  Without a running
server (a stale ``agent.json`` left by a killed agent is detected by its lock,
and said so) they send without ``replyTo``, and ``offers --poll`` or the next
``serve`` collects the replies from the vendors' mailboxes (spec §11.4, D5).

The agent connects only as its delivery policy allows (spec D6): https, or
http and non-public addresses for hosts given with ``--allow-delivery-to``
(``serve --test-mode`` allows loopback).

Exit codes: 0 success; 1 the protocol refused something (the message says
which code), or the store or policy cannot be used; 2 usage errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import click
from aiohttp import web

from reference_buyer.agent import BuyerAgent, Decorrelation
from reference_buyer.app import AppConfig, create_app
from reference_buyer.faults import FAULTS, FaultError, check_faults
from reference_buyer.letters import PostalRecipient
from reference_buyer.net import LOOPBACK, DeliveryPolicy
from reference_buyer.policy import SharingPolicy, load_policy
from reference_buyer.scenario import sally_profile, sally_rfi_body, sally_rfp_body
from reference_buyer.store import SqliteStore, write_private
from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import INBOX_PATH

#: The lock a serving agent holds on its store for as long as it runs (spec D10).
LOCK_FILE = "serve.lock"
#: Where a serving agent records its address (and pid) for the other commands.
AGENT_FILE = "agent.json"

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


_ALLOW = click.option(
    "--allow-delivery-to",
    "allow",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Allow plain http and non-public addresses for this host (spec D6); repeatable.",
)


def _policy(data_dir: Path, policy_file: Path | None) -> SharingPolicy:
    """The sharing policy, refused in one line when unsafe or malformed.

    Raises:
        click.ClickException: the policy file is writable by others, unreadable or malformed.
    """
    if policy_file is None and (data_dir / "policy.toml").exists():
        policy_file = data_dir / "policy.toml"
    try:
        return load_policy(policy_file)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as error:
        raise click.ClickException(f"policy: {error}") from error


def _delivery(allow: Sequence[str], *, loopback: bool = False) -> DeliveryPolicy:
    hosts = frozenset(item.strip().lower() for item in allow if item.strip())
    return DeliveryPolicy(allow=hosts | (LOOPBACK if loopback else frozenset()))


def _agent_alive(data_dir: Path) -> bool:
    """Whether a ``serve`` holds the store's lock now: a killed agent's lock is
    released by the kernel, so a stale ``agent.json`` is told from a live one."""
    lock = data_dir / LOCK_FILE
    try:
        descriptor = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing releases a lock taken here
    return False


def _live_inbox(data_dir: Path) -> str | None:
    """The inbox of the agent serving this store, or ``None`` (said in one line
    when ``agent.json`` names an agent that is not running)."""
    served = data_dir / AGENT_FILE
    if not served.exists():
        return None
    try:
        recorded = json.loads(served.read_text("utf-8"))
    except (OSError, ValueError):
        recorded = {}
    if not _agent_alive(data_dir):
        click.echo(
            f"note: the agent recorded in {served} (pid {recorded.get('pid', '?')}) is not "
            "running; sending without a reply address: replies wait in the vendors' mailboxes "
            "(`vrm buyer offers --poll`, or the next `vrm buyer serve`, collects them)",
            err=True,
        )
        return None
    inbox = recorded.get("inbox") if isinstance(recorded, dict) else None
    return inbox if isinstance(inbox, str) else None


def _seed_profile(store: SqliteStore) -> None:
    # A new store starts with Sally's volunteered information, so the reference
    # agent has something to disclose at acceptance; edit it like any profile.
    if not store.profile():
        for category, value in sally_profile().items():
            store.set_profile(category, value)


def _run(
    data_dir: Path,
    policy_file: Path | None,
    action: Callable[[BuyerAgent], Awaitable[T]],
    allow: Sequence[str] = (),
) -> T:
    policy = _policy(data_dir, policy_file)

    async def main() -> T:
        store = SqliteStore(data_dir)
        _seed_profile(store)
        agent = BuyerAgent(
            store, policy, inbox_url=_live_inbox(data_dir), delivery=_delivery(allow)
        )
        try:
            return await action(agent)
        finally:
            await agent.close()
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
@_ALLOW
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between polls of the vendors' mailboxes (default 5; 1 in test mode "
    "or with --no-inbox). They are polled at start too (spec D5).",
)
@click.option(
    "--spread-seconds",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Random pause, up to this, before each copy of a message to several vendors "
    "(spec §12; default 2; 0.2 in test mode).",
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
    allow: tuple[str, ...],
    poll_interval: float | None,
    spread_seconds: float | None,
    faults: tuple[str, ...],
) -> None:
    """Run the agent's HTTP side until SIGINT/SIGTERM.

    Prints `listening on http://HOST:PORT` once bound. A fault switch without
    --test-mode is a usage error (exit 2). A second agent on the same
    --data-dir is refused (exit 1).
    """
    try:
        chosen_faults = check_faults(faults, test_mode=test_mode)
    except FaultError as error:
        raise click.UsageError(str(error)) from error
    policy = _policy(data_dir, policy_file)
    interval = (
        poll_interval if poll_interval is not None else (1.0 if test_mode or no_inbox else 5.0)
    )
    spread = spread_seconds if spread_seconds is not None else (0.2 if test_mode else 2.0)

    async def main() -> None:
        store = SqliteStore(data_dir)
        _seed_profile(store)
        agent = BuyerAgent(
            store,
            policy,
            faults=chosen_faults,
            delivery=_delivery(allow, loopback=test_mode),
            decorrelation=Decorrelation(spread_seconds=spread),
        )
        try:
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
            write_private(
                data_dir / AGENT_FILE,
                json.dumps(
                    {"baseUrl": base, "inbox": agent.inbox_url, "pid": os.getpid()}
                ).encode(),
            )
            # Spec D5: replies in flight while no agent ran (or sent to an address
            # of an earlier run) wait in the vendors' mailboxes: collect them now,
            # and keep polling while she waits for answers.
            poller = asyncio.create_task(agent.poll_forever(interval=interval))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            click.echo(f"listening on {base}")
            sys.stdout.flush()
            try:
                await stop.wait()
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
                (data_dir / AGENT_FILE).unlink(missing_ok=True)
                await runner.cleanup()
        finally:
            await agent.close()
            store.close()

    lock = _lock_store(data_dir)
    try:
        asyncio.run(main())
    finally:
        os.close(lock)


def _lock_store(data_dir: Path) -> int:
    """Take the store's lock for the life of this process (spec D10: one agent per store).

    Raises:
        click.ClickException: another agent serves this store.
    """
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise click.ClickException(f"cannot use {data_dir}: {error}") from error
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        try:
            pid = json.loads((data_dir / AGENT_FILE).read_text("utf-8")).get("pid", "?")
        except (OSError, ValueError, AttributeError):
            pid = "?"
        raise click.ClickException(
            f"another agent already serves {data_dir} (pid {pid}): stop it first"
        ) from None
    return descriptor


@buyer.command()
@_DATA_DIR
@_POLICY
@_ALLOW
@click.argument("vendors", nargs=-1, required=True)
def rfi(
    data_dir: Path, policy_file: Path | None, allow: tuple[str, ...], vendors: Sequence[str]
) -> None:
    """Send the personal RFI (Sally's car) to VENDORS, one pseudonym each."""

    async def action(agent: BuyerAgent) -> None:
        sent = await agent.send_rfis(list(vendors), sally_rfi_body(agent.clock.now()))
        for vendor, delivery in sent.items():
            state = "delivered" if delivery.receipt else delivery.message.delivery
            click.echo(f"{vendor}: {delivery.message.message_id} ({state})")

    _run(data_dir, policy_file, action, allow)


@buyer.command()
@_DATA_DIR
@_POLICY
@click.option("--poll", is_flag=True, help="Collect replies from the vendors' mailboxes first.")
@_ALLOW
def offers(data_dir: Path, policy_file: Path | None, poll: bool, allow: tuple[str, ...]) -> None:
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

    _run(data_dir, policy_file, action, allow)


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
    "--approver",
    metavar="PARTY-ID",
    help="The co-decision-maker who must approve the deal: his own party id (one vendor "
    "only: the same id to several would link them). His approval comes from him.",
)
@_ALLOW
def rfp(
    data_dir: Path,
    policy_file: Path | None,
    vendors: Sequence[str],
    letters: Sequence[str],
    approver: str | None,
    allow: tuple[str, ...],
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
            approver=approver,
        )
        for vendor, delivery in sent.items():
            click.echo(f"{vendor}: {delivery.message.message_id}")
        for vendor, letter in printed.items():
            click.echo(f"{vendor}: letter {letter.message_id} in {agent.letters_dir}")

    _run(data_dir, policy_file, action, allow)


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
@click.option(
    "--approval",
    "approval_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An approval attestation (JSON) the co-decision-maker signed himself.",
)
@_ALLOW
@click.argument("offer_id")
def accept(
    data_dir: Path,
    policy_file: Path | None,
    approval_files: tuple[Path, ...],
    allow: tuple[str, ...],
    offer_id: str,
) -> None:
    """Accept OFFER_ID (identity disclosed now, as the policy allows).

    An offer that needs a co-decision-maker's approval is accepted only with
    his approval (--approval): this agent never signs for anyone else.
    """
    try:
        approvals = [json.loads(path.read_text("utf-8")) for path in approval_files]
    except (OSError, ValueError) as error:
        raise click.ClickException(f"approval: {error}") from error

    async def action(agent: BuyerAgent) -> None:
        delivery = await agent.accept(offer_id, approvals=approvals)
        click.echo(f"accepted: {delivery.message.message_id}")

    _run(data_dir, policy_file, action, allow)


@buyer.command(name="exit")
@_DATA_DIR
@_POLICY
@_ALLOW
@click.argument("vendor")
def exit_command(
    data_dir: Path, policy_file: Path | None, allow: tuple[str, ...], vendor: str
) -> None:
    """Exit the relationship with VENDOR, asking for export and deletion."""

    async def action(agent: BuyerAgent) -> None:
        delivery = await agent.exit(vendor.rstrip("/"))
        click.echo(f"exit notice: {delivery.message.message_id}")

    _run(data_dir, policy_file, action, allow)


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
