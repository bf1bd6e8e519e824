"""Fixtures every test directory may use: a real PostgreSQL server.

The PostgreSQL backend is tested against a real server, started here from the
pip-installable ``pgserver`` package (the ``test`` extra): no mock, and no skip
when it is absent, so ``pytest`` on a fresh machine runs these tests too. One
server for the whole session (on a unix socket in the session's temporary
directory), a fresh database for each test that asks for one.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.postgres import create_database, drop_database, start, stop

_DATABASES = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of the session's PostgreSQL server (its ``postgres`` database).

    Its data lives in a directory of its own, not under pytest's temporary root:
    run as root, the server runs as another user, which must reach its data
    through every parent directory, and pytest makes its root private again
    whenever any pytest session on the machine starts.
    """
    home = Path(tempfile.mkdtemp(prefix="vrm-postgres-"))
    data_dir = home / "data"
    try:
        url = start(data_dir)
        try:
            yield url
        finally:
            stop(data_dir)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh, empty database of its own, dropped after the test."""
    name = f"vrm_test_{next(_DATABASES)}"
    url = create_database(postgres_server, name)
    try:
        yield url
    finally:
        drop_database(postgres_server, name)
