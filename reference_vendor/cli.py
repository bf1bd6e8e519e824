"""``vrm vendor``: run the reference vendor agent, and operate it.

::

    vrm vendor serve --catalogue dealer-mayfair (--data-dir DIR | --store postgresql://...)
                     [--host 127.0.0.1] [--port 0]
                     [--test-mode] [--fault NAME ...] [--public-url URL] [--trust-issuer FILE ...]
                     [--operator-token T] [--allow-delivery-to HOST[:PORT] ...]
                     [--reply-delay S] [--list-at DIRECTORY_URL ...] [--area AREA ...]
    vrm vendor catalogues
    vrm vendor send-notice --url URL --peer DID [--kind K] [--category C] [--programme P]
                           [--token T]
    vrm vendor export (--data-dir DIR | --store postgresql://...) --peer DID

``serve`` prints exactly ``listening on http://HOST:PORT`` once the socket is
bound (``--port 0`` picks a free port); the party id is the base URL (or
``--public-url``). The signing key is created in the data directory on first
run (mode 0600) and reused after every restart, so is the SQLite store. With
``--store postgresql://...`` both live in that database instead, and several
processes of the vendor (one ``--public-url``) may serve it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reference_vendor.catalogue import (
    CatalogueError,
    TrustedIssuer,
    load_catalogue,
    load_issuer_file,
    shipped_catalogues,
)
from reference_vendor.config import STORE_FILE, VendorConfig

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent
from reference_vendor.faults import FAULTS, FaultError, check_faults
from reference_vendor.party_attestations import PartyAttestationError, load_party_attestation
from vrm_agent.files import DataDirError
from vrm_protocol.http_binding import DeliveryPolicy

__all__ = ["vendor"]


@click.group()
def vendor() -> None:
    """Run and operate the reference vendor agent."""


@vendor.command("catalogues")
def catalogues_command() -> None:
    """List the catalogues shipped with the agent."""
    for name in shipped_catalogues():
        catalogue = load_catalogue(name)
        click.echo(f"{name:<16} {catalogue.role:<12} {catalogue.name}")


async def _serve(
    config: VendorConfig,
    sock: socket.socket,
    shown_url: str,
    directories: tuple[str, ...] = (),
    areas: tuple[str, ...] = (),
) -> None:
    from reference_vendor.app import AGENT, serve

    try:
        running = await serve(config, sock)
    except DataDirError as error:
        # One line for the operator (an empty key file, a second agent on the
        # same store, a store that cannot be opened), never a traceback.
        sock.close()
        raise click.ClickException(str(error)) from error
    # Serving first: the directory fetches our keys while it takes the listing (§11.10).
    agent = running.runner.app[AGENT]
    await _list(agent, directories, areas)
    # A listing lives a week at most: it is renewed at half its life while serving.
    renewing = asyncio.create_task(_keep_listed(agent, directories, areas)) if directories else None
    click.echo(f"listening on {shown_url}")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        if renewing is not None:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        await running.close()


async def _keep_listed(
    agent: VendorAgent, directories: tuple[str, ...], areas: tuple[str, ...]
) -> None:
    """Renew the listings at half their lifetime, for as long as the vendor serves."""
    from vrm_protocol.directory import DEFAULT_LISTING_LIFETIME

    while True:
        await asyncio.sleep(DEFAULT_LISTING_LIFETIME.total_seconds() / 2)
        await _list(agent, directories, areas)


async def _list(agent: VendorAgent, directories: tuple[str, ...], areas: tuple[str, ...]) -> None:
    """List the vendor in each directory (spec §11.10); a refusal is logged, not fatal."""
    from reference_vendor.listing import ListingRefused, list_at

    for directory in directories:
        try:
            answer = await list_at(agent, directory, areas)
        except (ListingRefused, ValueError) as error:
            logging.getLogger(__name__).warning("not listed at %s: %s", directory, error)
            continue
        logging.getLogger(__name__).info("listed at %s until %s", directory, answer.get("expires"))


def _check_store_options(data_dir: Path | None, store_url: str | None) -> None:
    """One store: a data directory (SQLite) or a PostgreSQL URL.

    Raises:
        click.UsageError: neither, both, or a URL that is not PostgreSQL's.
    """
    if store_url is None and data_dir is None:
        raise click.UsageError("give --data-dir (SQLite) or --store (PostgreSQL)")
    if store_url is not None and data_dir is not None:
        raise click.UsageError("give --data-dir (SQLite) or --store (PostgreSQL), not both")
    if store_url is not None and not store_url.lower().startswith(("postgresql://", "postgres://")):
        raise click.UsageError("--store takes a PostgreSQL URL: postgresql://USER@HOST/DATABASE")


@vendor.command("serve")
@click.option(
    "--catalogue",
    "catalogue_name",
    required=True,
    help=f"A shipped catalogue ({', '.join(shipped_catalogues())}) or a TOML file.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the SQLite store and the signing key live (created if missing).",
)
@click.option(
    "--store",
    "store_url",
    envvar="VRM_VENDOR_STORE",
    metavar="postgresql://...",
    help="Keep the store and the signing key in this PostgreSQL database instead of "
    "--data-dir; several vendor processes (one --public-url) may serve it at once. "
    "Needs the postgresql extra.",
)
@click.option("--test-mode", is_flag=True, help="Serve the conformance test driver.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice(sorted(FAULTS)),
    help="Misbehave on purpose (test mode only; for the suite's own tests).",
)
@click.option("--public-url", help="The party id / base URL, when not http://HOST:PORT.")
@click.option(
    "--trust-issuer",
    "issuer_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trust an attestation issuer: `vrm conformance issuer` output ({issuer, jwks}).",
)
@click.option(
    "--party-attestation",
    "party_attestation_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Carry this attestation about the party itself (JSON {kind, issuer, token}, e.g. a "
    "terms registry's terms-signatory, spec §10.4) in its terms assertions.",
)
@click.option(
    "--operator-token",
    envvar="VRM_VENDOR_OPERATOR_TOKEN",
    help="Enable POST /vrm/operator/service-notice with this bearer token.",
)
@click.option(
    "--allow-delivery-to",
    "allow_delivery_to",
    multiple=True,
    metavar="HOST[:PORT]",
    help="Let replies reach this host (or host and port) over http and whatever its "
    "addresses: e.g. 127.0.0.1 for buyer agents on this machine. Without it only https "
    "to public addresses (spec §11.8); --test-mode allows loopback.",
)
@click.option(
    "--reply-delay",
    type=float,
    default=0.25,
    show_default=True,
    help="Seconds between committing a reply and delivering it.",
)
@click.option(
    "--list-at",
    "directories",
    multiple=True,
    metavar="DIRECTORY_URL",
    help="A directory to list the vendor in at start-up (spec §11.10).",
)
@click.option(
    "--area",
    "areas",
    multiple=True,
    metavar="AREA",
    help="An area served, e.g. GB or GB-NW (default: the catalogue's countries).",
)
def serve(
    catalogue_name: str,
    host: str,
    port: int,
    data_dir: Path | None,
    store_url: str | None,
    test_mode: bool,
    faults: tuple[str, ...],
    public_url: str | None,
    issuer_files: tuple[Path, ...],
    party_attestation_files: tuple[Path, ...],
    operator_token: str | None,
    allow_delivery_to: tuple[str, ...],
    reply_delay: float,
    directories: tuple[str, ...],
    areas: tuple[str, ...],
) -> None:
    """Serve the vendor agent until interrupted."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _check_store_options(data_dir, store_url)
    try:
        chosen_faults = check_faults(faults, test_mode=test_mode)
        DeliveryPolicy.from_entries(allow_delivery_to)
    except (FaultError, ValueError) as error:
        raise click.UsageError(str(error)) from error
    try:
        catalogue = load_catalogue(catalogue_name)
        issuers: tuple[TrustedIssuer, ...] = tuple(load_issuer_file(p) for p in issuer_files)
        catalogue = catalogue.with_trusted_issuers(issuers)
    except CatalogueError as error:
        # A file's content or permissions, not the command line: one line.
        raise click.ClickException(str(error)) from error
    # Bind first, so the party id (the base URL) is known before the app is built.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from error
    sock.listen(128)
    sock.setblocking(False)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    shown_url = f"http://{shown_host}:{bound_port}"
    try:
        party_attestations = tuple(
            load_party_attestation(path, (public_url or shown_url).rstrip("/"))
            for path in party_attestation_files
        )
    except PartyAttestationError as error:
        sock.close()
        raise click.ClickException(str(error)) from error
    config = VendorConfig(
        party_attestations=party_attestations,
        catalogue=catalogue,
        data_dir=data_dir,
        store_url=store_url,
        public_url=public_url or shown_url,
        test_mode=test_mode,
        faults=chosen_faults,
        reply_delay=reply_delay,
        operator_token=operator_token,
        allow_delivery_to=frozenset(allow_delivery_to),
    )
    asyncio.run(_serve(config, sock, shown_url, directories, areas))


@vendor.command("send-notice")
@click.option("--url", required=True, help="The vendor agent's base URL.")
@click.option("--peer", required=True, help="The individual's pseudonym (did:jwk).")
@click.option("--kind", help="Notice kind (default: from the category).")
@click.option("--category", help="Notification category (default: one the individual allows).")
@click.option("--programme", help="A programme of the catalogue (e.g. road-warrior).")
@click.option(
    "--token",
    envvar="VRM_VENDOR_OPERATOR_TOKEN",
    help="The agent's operator token; without it the test driver is used (test mode).",
)
def send_notice(
    url: str,
    peer: str,
    kind: str | None,
    category: str | None,
    programme: str | None,
    token: str | None,
) -> None:
    """Ask a running agent to send a service notice or programme offer to one individual.

    Exit code 0 when sent; 1 when the individual's preferences forbid it (the
    agent records the refusal) or the agent refused the request.
    """
    import urllib.error
    import urllib.request

    document = {"peer": peer, "kind": kind, "category": category, "programme": programme}
    route = "/vrm/operator/service-notice" if token else "/vrm/test-driver/service-notice"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - the operator names the agent's URL
        url.rstrip("/") + route,
        data=json.dumps({k: v for k, v in document.items() if v is not None}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            click.echo(response.read().decode())
    except urllib.error.HTTPError as error:
        click.echo(error.read().decode(), err=True)
        sys.exit(1)


@vendor.command("leave-market")
@click.option("--url", required=True, help="The vendor agent's base URL.")
@click.option("--explanation", help="Why the vendor leaves, in words, for every individual.")
@click.option(
    "--token",
    envvar="VRM_VENDOR_OPERATOR_TOKEN",
    help="The agent's operator token; without it the test driver is used (test mode).",
)
def leave_market(url: str, explanation: str | None, token: str | None) -> None:
    """Make a running agent leave the market (spec §6.13): an exit notice to every
    individual, carrying her export and the receipt of the deletion done with it.

    Exit code 0 when the agent took the instruction; 1 when it refused it.
    """
    import urllib.error
    import urllib.request

    route = "/vrm/operator/leave-market" if token else "/vrm/test-driver/leave-market"
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    document = {"explanation": explanation} if explanation else {}
    request = urllib.request.Request(  # noqa: S310 - the operator names the agent's URL
        url.rstrip("/") + route, data=json.dumps(document).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            click.echo(response.read().decode())
    except urllib.error.HTTPError as error:
        click.echo(error.read().decode(), err=True)
        sys.exit(1)


@vendor.command("export")
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--store", "store_url", envvar="VRM_VENDOR_STORE", metavar="postgresql://...")
@click.option("--peer", required=True, help="The individual's pseudonym (did:jwk).")
def export(data_dir: Path | None, store_url: str | None, peer: str) -> None:
    """Print everything the store holds about one individual, as JSON."""
    from reference_vendor.store import SqliteVendorStore, VendorStore
    from vrm_agent.store import StoreError

    _check_store_options(data_dir, store_url)

    async def read() -> dict[str, object]:
        store: VendorStore
        if store_url is not None:
            from reference_vendor.store_postgres import PostgresVendorStore

            store = await PostgresVendorStore.open(store_url, pool_size=1)
        else:
            assert data_dir is not None
            store = SqliteVendorStore(data_dir / STORE_FILE)
        try:
            return await store.summary()
        finally:
            await store.close()

    try:
        summary = asyncio.run(read())
    except StoreError as error:
        raise click.ClickException(f"cannot read the store: {error}") from error
    relationships = summary["relationships"]
    assert isinstance(relationships, dict)
    entry = relationships.get(peer)
    if entry is None:
        raise click.ClickException(f"no relationship with {peer}")
    click.echo(json.dumps(entry, indent=2, ensure_ascii=False))
