"""``vrm buyer``: run the reference buyer agent and act for the individual.

Every command works on a data directory (her personal data store). ``serve``
runs the agent's HTTP side (discovery, inbox, mailbox, test driver), holds the
data directory's lock (one agent per store, D10) and records its address in
``<data-dir>/agent.json``; the other commands, run while it serves, give that
inbox as ``replyTo`` so the replies land in the store. Without a running
server (a stale ``agent.json`` left by a killed agent is detected by its lock,
and said so) they send without ``replyTo``, and ``offers --poll`` or the next
``serve`` collects the replies from the vendors' mailboxes (spec §11.4, D5).

Her agent connects only as its delivery policy allows (D6): https, or http
and non-public addresses for hosts given with ``--allow-delivery-to``
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
import socket
import sys
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from reference_buyer import handlers_living
from reference_buyer.agent import BuyerAgent
from reference_buyer.config import AGENT_FILE, LOCK_FILE, BuyerConfig, Decorrelation
from reference_buyer.dashboard import DashboardError, check_loopback, listen_dashboard
from reference_buyer.faults import FAULTS, FaultError, check_faults
from reference_buyer.letters import PostalRecipient
from reference_buyer.policy import SharingPolicy, load_policy
from reference_buyer.scenario import sally_profile, sally_rfi_body, sally_rfp_body
from reference_buyer.store import STORE_FILE, SqliteBuyerStore
from reference_buyer.wallet import WALLET_FILE, CredentialWallet
from vrm_agent.clock import AgentClock
from vrm_agent.files import DataDirError, lock_data_dir, write_private_atomically
from vrm_agent.store import StoreError
from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import RateLimiter
from vrm_protocol.state_machine import Direction

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
    help="Allow plain http and non-public addresses for this host (D6); repeatable.",
)


def _policy(data_dir: Path, policy_file: Path | None) -> SharingPolicy:
    """Her sharing policy, refused in one line when unsafe or malformed.

    Raises:
        click.ClickException: the policy file is writable by others, unreadable or malformed.
    """
    if policy_file is None and (data_dir / "policy.toml").exists():
        policy_file = data_dir / "policy.toml"
    try:
        return load_policy(policy_file)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as error:
        raise click.ClickException(f"policy: {error}") from error


def _allow(allow: Sequence[str]) -> frozenset[str]:
    return frozenset(item.strip().lower() for item in allow if item.strip())


def _agent_alive(data_dir: Path) -> bool:
    """Whether a ``serve`` holds the store's lock now: a killed agent's lock is
    released by the kernel, so a stale ``agent.json`` is told from a live one."""
    try:
        descriptor = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
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
    if not isinstance(recorded, dict):
        recorded = {}
    if not _agent_alive(data_dir):
        click.echo(
            f"note: the agent recorded in {served} (pid {recorded.get('pid', '?')}) is not "
            "running; sending without a reply address: replies wait in the vendors' mailboxes "
            "(`vrm buyer offers --poll`, or the next `vrm buyer serve`, collects them)",
            err=True,
        )
        return None
    inbox = recorded.get("inbox")
    return inbox if isinstance(inbox, str) else None


async def _seed_profile(agent: BuyerAgent) -> None:
    # A new store starts with Sally's volunteered information, so the reference
    # agent has something to disclose at acceptance; edit it like any profile.
    if not await agent.store.profile():
        for category, value in sally_profile().items():
            await agent.store.set_profile(category, value)


def _run(
    data_dir: Path,
    policy_file: Path | None,
    action: Callable[[BuyerAgent], Awaitable[T]],
    allow: Sequence[str] = (),
) -> T:
    policy = _policy(data_dir, policy_file)

    async def main() -> T:
        config = BuyerConfig(data_dir=data_dir, allow_delivery_to=_allow(allow))
        agent = await BuyerAgent.open(config, policy)
        try:
            await _seed_profile(agent)
            agent.inbox_url = _live_inbox(data_dir)
            return await action(agent)
        finally:
            await agent.close()

    try:
        return asyncio.run(main())
    except ProtocolError as error:
        click.echo(f"refused: {error.code.value}: {error.detail}", err=True)
        sys.exit(1)
    except (DataDirError, ValueError) as error:
        raise click.ClickException(str(error)) from error


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
    "or with --no-inbox). They are polled at start too (D5).",
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
@click.option(
    "--dashboard-host",
    default="127.0.0.1",
    show_default=True,
    help="Her dashboard's address: a loopback address only (anything else is refused).",
)
@click.option("--dashboard-port", default=0, show_default=True, help="0: any free port.")
@click.option("--no-dashboard", is_flag=True, help="Serve no dashboard.")
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
    dashboard_host: str,
    dashboard_port: int,
    no_dashboard: bool,
) -> None:
    """Run the agent's HTTP side until SIGINT/SIGTERM.

    Prints `listening on http://HOST:PORT` once bound, then `dashboard:
    http://127.0.0.1:PORT/open?key=SECRET` (her dashboard, on loopback only,
    opened with a secret new at every start; unless --no-dashboard). A
    fault switch without --test-mode, or a dashboard host that is not
    loopback, is a usage error (exit 2). A second agent on the same
    --data-dir is refused (exit 1).
    """
    try:
        chosen = check_faults(faults, test_mode=test_mode)
    except FaultError as error:
        raise click.UsageError(str(error)) from error
    if not no_dashboard:
        try:
            check_loopback(dashboard_host)
        except DashboardError as error:
            raise click.UsageError(str(error)) from error
    policy = _policy(data_dir, policy_file)
    interval = (
        poll_interval if poll_interval is not None else (1.0 if test_mode or no_inbox else 5.0)
    )
    spread = spread_seconds if spread_seconds is not None else (0.2 if test_mode else 2.0)
    try:
        # The data directory first: private, and locked so that no second agent
        # serves the same store (D10). Each failure is one line.
        lock = lock_data_dir(data_dir, lock_file=LOCK_FILE, agent="buyer agent")
    except DataDirError as error:
        raise click.ClickException(str(error)) from error
    try:
        sock = _listen(host, port)
        try:
            board = None if no_dashboard else listen_dashboard(dashboard_host, dashboard_port)
        except DashboardError as error:
            sock.close()
            raise click.ClickException(str(error)) from error
        base = f"http://{host}:{sock.getsockname()[1]}"
        config = BuyerConfig(
            data_dir=data_dir,
            public_url=base,
            inbox=not no_inbox,
            test_mode=test_mode,
            faults=chosen,
            allow_delivery_to=_allow(allow),
            decorrelation=Decorrelation(spread_seconds=spread),
            poll_interval=interval,
        )
        asyncio.run(_serve(config, policy, sock, board))
    except DataDirError as error:
        raise click.ClickException(str(error)) from error
    finally:
        lock.release()


def _listen(host: str, port: int) -> socket.socket:
    """A listening, non-blocking socket on ``host:port``.

    Raises:
        click.ClickException: it cannot be bound.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from error
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _serve(
    config: BuyerConfig,
    policy: SharingPolicy,
    sock: socket.socket,
    board: socket.socket | None = None,
) -> None:
    from reference_buyer.app import serve as serve_agent
    from reference_buyer.dashboard import serve_dashboard

    # Her ability-to-pay credentials, when a batch was issued to her (spec §10.5).
    wallet_path = config.data_dir / WALLET_FILE
    clock = AgentClock()
    try:
        wallet = (
            CredentialWallet.from_file(wallet_path, clock=clock) if wallet_path.exists() else None
        )
    except (OSError, ValueError, KeyError) as error:
        raise DataDirError(f"cannot read {wallet_path}: {error}") from error
    agent = await BuyerAgent.open(
        config,
        policy,
        clock=clock,
        ability_to_pay=wallet,
        sender_limiter=RateLimiter(config.rate_per_second, config.burst),
    )
    try:
        await _seed_profile(agent)
        running = await serve_agent(agent, sock)
        dashboard = None
        agent_file = config.data_dir / AGENT_FILE
        try:
            opened = None
            if board is not None:
                opened, dashboard = await serve_dashboard(agent, board)
            await asyncio.to_thread(
                write_private_atomically,
                agent_file,
                json.dumps(
                    {"baseUrl": config.party_id, "inbox": config.inbox_url, "pid": os.getpid()}
                ).encode(),
            )
            # D5: replies in flight while no agent ran (or sent to an address of
            # an earlier run) wait in the vendors' mailboxes: collect them now,
            # and keep polling while she waits for answers.
            poller = asyncio.create_task(agent.poll_forever(interval=config.poll_interval))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(signum, stop.set)
            click.echo(f"listening on {config.party_id}")
            if opened is not None:
                # The secret is printed once, to her terminal, and kept nowhere.
                click.echo(f"dashboard: {opened.open_url}")
            sys.stdout.flush()
            try:
                await stop.wait()
            finally:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
                agent_file.unlink(missing_ok=True)
        finally:
            if dashboard is not None:
                await dashboard.close()
            await running.close()
    finally:
        await agent.close()


@buyer.command()
@_DATA_DIR
@_POLICY
@_ALLOW
@click.option("--directory", required=True, help="The directory's base URL (spec §11.10).")
@click.option("--category", default="vehicles.cars", show_default=True)
@click.option("--area", required=True, help="A country or a country and postcode area: GB-NW.")
@click.option("--rfi", "send_rfi", is_flag=True, help="Send the RFI to every vendor found.")
def search(
    data_dir: Path,
    policy_file: Path | None,
    allow: tuple[str, ...],
    directory: str,
    category: str,
    area: str,
    send_rfi: bool,
) -> None:
    """Find vendors in a directory without saying who she is (and send them the RFI)."""
    from reference_buyer.vendor_search import search_directory

    async def action(agent: BuyerAgent) -> None:
        found = await search_directory(agent, directory, category=category, area=area)
        for listed in found.found:
            click.echo(f"{listed.party}: {listed.name} (listing verified)")
        for party, why in found.set_aside:
            click.echo(f"{party}: set aside: {why}")
        if send_rfi and found.vendors:
            sent = await agent.buying.send_rfis(found.vendors, sally_rfi_body(agent.clock.now()))
            for vendor, delivery in sent.items():
                click.echo(f"{vendor}: RFI {delivery.message.message_id}")

    _run(data_dir, policy_file, action, allow)


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
        sent = await agent.buying.send_rfis(
            [v.rstrip("/") for v in vendors], sally_rfi_body(agent.clock.now())
        )
        for vendor, delivery in sent.items():
            state = "delivered" if delivery.delivered.receipt else "sent"
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
            for relationship in await agent.store.relationships():
                try:
                    await agent.poll_mailbox(relationship.peer)
                except ProtocolError as error:
                    click.echo(f"{relationship.peer}: {error.detail}", err=True)
        warnings = await handlers_living.offer_warnings(agent)
        for row in await agent.ranked_offers():
            offer = await agent.store.offer_view(row.offer_id)
            signed = "signed" if offer is not None and offer.verified else "UNSIGNED (paper)"
            flagged = warnings.get(row.offer_id)
            click.echo(
                f"{row.rank}. {row.offer_id} from {row.vendor}: total cost {row.currency} "
                f"{row.total_cost} (net {row.net_price} + finance {row.finance_cost}"
                f"{', plan ' + row.plan if row.plan else ''}) [{signed}]"
                + (f" FLAGGED: {'; '.join(flagged)}" if flagged else "")
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
        sent, printed = await agent.buying.send_rfp(
            [v.rstrip("/") for v in vendors],
            sally_rfp_body(agent.clock.now()),
            postal=postal,
            approver=approver,
        )
        for vendor, delivery in sent.items():
            click.echo(f"{vendor}: {delivery.message.message_id}")
        for vendor, letter in printed.items():
            click.echo(f"{vendor}: letter {letter.message_id} in {agent.config.letters}")

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

    It is kept unsigned, ranks with the other offers, and is answered by post.
    """
    try:
        body = json.loads(offer_file.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise click.ClickException(f"offer: {error}") from error
    if not isinstance(body, dict):
        raise click.ClickException("offer: the file holds no JSON object")

    async def action(agent: BuyerAgent) -> None:
        entry = await agent.buying.enter_paper_answer(vendor, body, in_reply_to=letter_id)
        click.echo(f"stored unsigned offer {entry.message_id}")

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
    if not all(isinstance(approval, dict) for approval in approvals):
        raise click.ClickException("approval: a file holds no JSON object")

    async def action(agent: BuyerAgent) -> None:
        delivery = await agent.buying.accept(offer_id, approvals=approvals)
        click.echo(f"accepted: {delivery.message.message_id}")

    _run(data_dir, policy_file, action, allow)


@buyer.command()
@_DATA_DIR
@_POLICY
def approvals(data_dir: Path, policy_file: Path | None) -> None:
    """The approval requests she asked of a co-decision-maker, and those asked of
    this agent (spec §10.2): id, status, and what they are about."""

    async def action(agent: BuyerAgent) -> None:
        for row in await agent.codecision.asked():
            click.echo(f"asked     {row['jti']}  {row['status']:<8}  {row['data']['summary']}")
        for item in await agent.codecision.pending():
            click.echo(
                f"received  {item['request']}  {item['status']:<8}  {item['summary']} "
                f"({item['vendor']}, until {item['expires']})"
            )

    _run(data_dir, policy_file, action)


@buyer.command()
@_DATA_DIR
@_POLICY
@_ALLOW
@click.option("--refuse", is_flag=True, help="Refuse instead of approving.")
@click.option("--reason", default="", help="Why (sent with a refusal).")
@click.argument("request_id")
def approve(
    data_dir: Path,
    policy_file: Path | None,
    allow: tuple[str, ...],
    refuse: bool,
    reason: str,
    request_id: str,
) -> None:
    """Approve (or --refuse) REQUEST_ID, an approval request asked of this agent: the
    approval is signed with this agent's own key and posted to the asker's agent."""

    async def action(agent: BuyerAgent) -> None:
        done = await agent.codecision.decide(request_id, approve=not refuse, reason=reason)
        click.echo(f"{'approved' if done.approved else 'refused'}: {done.request}")

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
        delivery = await agent.owning.exit(vendor.rstrip("/"))
        click.echo(f"exit notice: {delivery.message.message_id}")

    _run(data_dir, policy_file, action, allow)


@buyer.command()
@_DATA_DIR
@_POLICY
def appointments(data_dir: Path, policy_file: Path | None) -> None:
    """Her confirmed appointments, earliest first; those due soon are her reminders."""

    async def action(agent: BuyerAgent) -> None:
        due = {a.confirmation for a in await handlers_living.reminders(agent)}
        for item in await handlers_living.appointments(agent):
            slot = item.slot
            reminder = " REMINDER: due soon" if item.confirmation in due else ""
            click.echo(
                f"{slot.start} to {slot.end} {item.kind} with {item.peer} "
                f"[{item.confirmation}]{reminder}"
            )

    _run(data_dir, policy_file, action)


@buyer.command(name="service-history")
@_DATA_DIR
@_POLICY
def service_history(data_dir: Path, policy_file: Path | None) -> None:
    """Her service history: the dealers' signed service records, declined work flagged."""

    async def action(agent: BuyerAgent) -> None:
        for entry in await handlers_living.service_history(agent):
            flagged = f" FLAGGED (declined): {', '.join(entry.flagged)}" if entry.flagged else ""
            click.echo(
                f"{entry.completed_at} {entry.peer}: {', '.join(entry.work)}; {entry.cost}; "
                f"{entry.mileage} miles [{entry.record}]{flagged}"
            )

    _run(data_dir, policy_file, action)


@buyer.command()
@_DATA_DIR
@click.argument("vendor", required=False)
def history(data_dir: Path, vendor: str | None) -> None:
    """Every message kept (optionally with one VENDOR), and how exits checked out."""
    peer = vendor.rstrip("/") if vendor else None

    async def show() -> None:
        store = await asyncio.to_thread(SqliteBuyerStore, data_dir / STORE_FILE)
        try:
            for entry in await store.history(peer=peer):
                arrow = "->" if entry.direction is Direction.SENT else "<-"
                check = "verified" if entry.verified else "UNSIGNED"
                click.echo(
                    f"{entry.at} {arrow} {entry.peer} {entry.type.value} "
                    f"{entry.message_id} [{entry.channel}, {check}, {entry.status}]"
                )
            for record in await store.exits(peer):
                outcome = {
                    None: "awaiting acknowledgement",
                    True: "deletion verified",
                    False: "deletion NOT verified",
                }[record.receipt_verified]
                click.echo(f"exit {record.peer}: {outcome} {list(record.problems)}")
        finally:
            await store.close()

    if not (data_dir / STORE_FILE).exists():
        raise click.ClickException(f"no personal data store in {data_dir}")
    try:
        asyncio.run(show())
    except StoreError as error:
        raise click.ClickException(f"cannot read the store: {error}") from error


@buyer.command()
@_DATA_DIR
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "dpv"]),
    default="text",
    show_default=True,
    help="dpv: ISO/IEC TS 27560 consent records in the W3C Data Privacy Vocabulary (JSON-LD).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (private, 0600) instead of standard output.",
)
def consents(data_dir: Path, output_format: str, output: Path | None) -> None:
    """Her consents: one per data item and party, with its lifecycle (given,
    narrowed, widened, withdrawn, refused) and the signed messages behind it."""
    from reference_buyer.dpv import consent_records

    async def export() -> dict[str, Any]:
        store = await asyncio.to_thread(SqliteBuyerStore, data_dir / STORE_FILE)
        try:
            return await consent_records(store)
        finally:
            await store.close()

    if not (data_dir / STORE_FILE).exists():
        raise click.ClickException(f"no personal data store in {data_dir}")
    try:
        document = asyncio.run(export())
    except StoreError as error:
        raise click.ClickException(f"cannot read the store: {error}") from error
    if output_format == "dpv":
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        lines = []
        for record in document["@graph"]:
            process = record["dpv:hasProcess"]
            events = record["dpv:hasConsentStatus"]
            lines.append(
                f"{process['dpv:hasDataController']['@id']} {process['dpv:hasPersonalData']}: "
                f"{events[-1]['@type'].removeprefix('dpv:')} "
                f"[{', '.join(process['dpv:hasPurpose'])}] ({len(events)} events)"
            )
        text = "".join(line + "\n" for line in lines)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            write_private_atomically(output, text.encode("utf-8"))
        except OSError as error:
            raise click.ClickException(f"cannot write {output}: {error}") from error
        click.echo(f"{len(document['@graph'])} consent records written to {output}")


def run_with_agent(data_dir: Path, action: Callable[[BuyerAgent], Awaitable[T]]) -> T:
    """Run ``action`` with her agent opened on ``data_dir`` (for the other command
    groups built on her store, e.g. ``vrm evidence``); one line on a refusal."""
    if not (data_dir / STORE_FILE).exists():
        raise click.ClickException(f"no personal data store in {data_dir}")
    return _run(data_dir, None, action)
