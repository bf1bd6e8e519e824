"""The vendor's files (D10): its data directory and what is in it are its own
whatever the umask, configuration others can write is refused, the signing key
is written atomically and read with a one-line error, and one store is served
by one agent at a time.

Real application on a real data directory; ``vrm vendor serve`` as a real
process for what the operator sees (bounded by ``RUN_BOUND``).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_vendor.app import create_app
from reference_vendor.catalogue import CatalogueError, load_catalogue, load_issuer_file
from reference_vendor.config import (
    KEY_FILE,
    LOCK_FILE,
    STORE_FILE,
    VendorConfig,
    load_or_create_key,
)
from vrm_agent.files import DataDirError
from vrm_protocol.keys import SigningKey

#: The longest a refused start may take before the test gives up on it.
RUN_BOUND = 60.0
SHIPPED = Path(__file__).parents[2] / "reference_vendor" / "catalogues" / "dealer-mayfair.toml"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask there is, for the duration of the test."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _serve(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``vrm vendor serve`` expected to refuse to start: its exit and output."""
    argv = [
        sys.executable,
        "-c",
        "from vrm_protocol.cli import main; main()",
        "vendor",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    if "--catalogue" not in extra:
        argv += ["--catalogue", "dealer-mayfair"]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=RUN_BOUND,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]


async def test_the_data_directory_and_its_files_are_private_whatever_the_umask(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], open_umask: None
) -> None:
    config = make_config()
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/.well-known/vrm")).status == 200
    data_dir = config.data_dir
    assert _mode(data_dir) == 0o700
    for name in (KEY_FILE, STORE_FILE, LOCK_FILE):
        assert _mode(data_dir / name) == 0o600, name
    for extra in ("-wal", "-shm"):
        side = data_dir / (STORE_FILE + extra)
        if side.exists():
            assert _mode(side) == 0o600, side


async def test_an_existing_data_directory_is_made_private(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], open_umask: None
) -> None:
    config = make_config()
    config.data_dir.mkdir(mode=0o755)
    (config.data_dir / STORE_FILE).touch(mode=0o644)
    await aiohttp_client(create_app(config))
    assert _mode(config.data_dir) == 0o700
    assert _mode(config.data_dir / STORE_FILE) == 0o600


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_catalogue_or_issuer_file_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    catalogue = tmp_path / "dealer.toml"
    catalogue.write_text(SHIPPED.read_text())
    catalogue.chmod(mode)
    with pytest.raises(CatalogueError, match="writ"):
        load_catalogue(str(catalogue))
    issuer = tmp_path / "issuer.json"
    issuer.write_text(json.dumps({"issuer": "https://cu.test", "jwks": {"keys": []}}))
    issuer.chmod(mode)
    with pytest.raises(CatalogueError, match="writ"):
        load_issuer_file(issuer)
    catalogue.chmod(0o644)
    assert load_catalogue(str(catalogue)).key == "dealer"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_catalogue_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    catalogue = tmp_path / "dealer.toml"
    catalogue.write_text(SHIPPED.read_text())
    os.chown(catalogue, 65534, 65534)
    with pytest.raises(CatalogueError, match="owned"):
        load_catalogue(str(catalogue))


def test_serve_refuses_a_catalogue_others_can_write_in_one_line(tmp_path: Path) -> None:
    catalogue = tmp_path / "dealer.toml"
    catalogue.write_text(SHIPPED.read_text())
    catalogue.chmod(0o666)
    _one_line_error(_serve(tmp_path / "data", "--catalogue", str(catalogue)), "writable")


def test_the_key_file_is_written_atomically_and_privately(tmp_path: Path, open_umask: None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    key = load_or_create_key(data_dir / KEY_FILE)
    assert _mode(data_dir / KEY_FILE) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == [KEY_FILE], "no temporary file left"
    again = load_or_create_key(data_dir / KEY_FILE)
    assert again.thumbprint() == key.thumbprint()


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        json.dumps(SigningKey.generate().public().to_jwk()),  # public only
        json.dumps({"kty": "oct", "k": "c2VjcmV0"}),
        "[]",
    ],
)
def test_an_empty_or_corrupt_key_file_is_one_line_not_a_traceback(
    tmp_path: Path, content: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    (data_dir / KEY_FILE).write_text(content)
    with pytest.raises(DataDirError, match="signing key"):
        load_or_create_key(data_dir / KEY_FILE)
    _one_line_error(_serve(data_dir), "signing key", KEY_FILE)


async def test_two_agents_cannot_serve_one_store(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    config = make_config()
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/.well-known/vrm")).status == 200
    _one_line_error(_serve(config.data_dir), "another vendor agent", str(config.data_dir))
    # The first one is unharmed.
    assert (await client.get("/.well-known/vrm")).status == 200
