"""A throwaway PostgreSQL server for tests, benchmarks and the README (not shipped).

It runs the server of the pip-installable ``pgserver`` package (PostgreSQL 16,
the ``test`` extra): on a unix socket in a directory of its own, nothing
listening on the network, trust authentication. Never for production: there a
vendor points ``--store`` at its own server.

From the shell (the README's PostgreSQL block)::

    python -m tools.postgres start DIR     # prints the URL of database "postgres"
    python -m tools.postgres database DIR NAME   # a fresh database NAME; its URL
    python -m tools.postgres stop DIR

From Python: :func:`start`, :func:`create_database`, :func:`drop_database`, :func:`stop`.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import re
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = ["create_database", "drop_database", "main", "start", "stop"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _server(data_dir: Path, cleanup: str | None) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); pgserver
        # then keeps its lock in /tmp, which is what a test machine wants.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        return get_server(data_dir, cleanup_mode=cleanup)


def start(data_dir: Path, *, stop_at_exit: bool = True) -> str:
    """Start (or find running) the server whose data lives in ``data_dir``; the URL of
    its ``postgres`` database. ``stop_at_exit``: stop it when this process exits
    (else it runs until :func:`stop`).

    Raises:
        subprocess.CalledProcessError, subprocess.TimeoutExpired: it did not start.
    """
    server = _server(data_dir, None)
    if stop_at_exit:
        atexit.register(stop, data_dir)
    return str(server.get_uri())


def stop(data_dir: Path, *, timeout: float = 30.0) -> None:
    """Stop the server whose data lives in ``data_dir`` (if it runs): a fast
    shutdown (SIGINT to the postmaster), waited for at most ``timeout`` seconds,
    then SIGKILL."""
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _with_database(url: str, name: str) -> str:
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _admin(url: str, statement: str) -> None:
    """Run ``statement`` on its own thread and event loop (callers may be inside one)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_execute(url, statement))
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=run, name="postgres-admin")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url`` (dropped first if it
    exists); its URL.

    Raises:
        ValueError: ``name`` is not a plain lower-case identifier.
    """
    if _NAME.match(name) is None:
        raise ValueError(f"not a plain database name: {name!r}")
    _admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(url, f"CREATE DATABASE {name}")
    return _with_database(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` on the server of ``url``, ending its sessions.

    Raises:
        ValueError: ``name`` is not a plain lower-case identifier.
    """
    if _NAME.match(name) is None:
        raise ValueError(f"not a plain database name: {name!r}")
    _admin(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main(argv: list[str] | None = None) -> int:
    """``python -m tools.postgres start|database|stop DIR [NAME]``."""
    parser = argparse.ArgumentParser(prog="python -m tools.postgres", description=__doc__)
    parser.add_argument("action", choices=("start", "database", "stop"))
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("name", nargs="?", default="vrm")
    arguments = parser.parse_args(argv)
    if arguments.action == "stop":
        stop(arguments.data_dir)
        return 0
    url = start(arguments.data_dir, stop_at_exit=False)
    if arguments.action == "database":
        url = create_database(url, arguments.name)
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
