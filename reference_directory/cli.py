"""``vrm directory``: run the reference directory (spec §11.10).

::

    vrm directory serve [--host 127.0.0.1] [--port 0] [--test-mode]
                        [--allow-delivery-to HOST[:PORT] ...]

``serve`` prints exactly ``listening on http://HOST:PORT`` once the socket is
bound (``--port 0`` picks a free port). The directory fetches a listed
vendor's discovery document and keys over ``https``, from public addresses
only (spec §11.8), unless the vendor's host is allow-listed; test mode
allow-lists loopback, where the demo's agents run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys

import click

from vrm_agent.net import loopback_policy
from vrm_protocol.http_binding import DeliveryPolicy

__all__ = ["directory"]


@click.group()
def directory() -> None:
    """Run the reference directory: vendors list themselves, individuals search."""


async def _serve(policy: DeliveryPolicy, sock: socket.socket, shown_url: str) -> None:
    from reference_directory.app import DirectoryConfig, serve

    running = await serve(DirectoryConfig(policy=policy), sock)
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
        await running.close()


@directory.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option(
    "--test-mode", is_flag=True, help="Fetch listed vendors' documents over loopback too."
)
@click.option(
    "--allow-delivery-to",
    "allow_delivery_to",
    multiple=True,
    metavar="HOST[:PORT]",
    help="A host the directory may fetch from over http or at a private address.",
)
def serve(host: str, port: int, test_mode: bool, allow_delivery_to: tuple[str, ...]) -> None:
    """Serve the directory until interrupted."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        policy = (
            loopback_policy(*allow_delivery_to)
            if test_mode
            else DeliveryPolicy.from_entries(allow_delivery_to)
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from error
    sock.listen(128)
    sock.setblocking(False)
    shown_host = f"[{host}]" if ":" in host else host
    asyncio.run(_serve(policy, sock, f"http://{shown_host}:{sock.getsockname()[1]}"))
