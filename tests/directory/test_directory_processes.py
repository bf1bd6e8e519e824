"""The directory (spec §11.10) between real processes: ``vrm directory serve`` and a
``vrm vendor serve --list-at`` that lists itself as it starts."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vrm_protocol.directory import (
    LISTING_MEDIA_TYPE,
    LISTINGS_PATH,
    SEARCH_PATH,
    SEARCH_SCHEMA,
    make_listing,
    verify_listing,
)
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.schema_registry import default_registry

pytestmark = pytest.mark.slow

LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")


@contextlib.contextmanager
def _process(*argv: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from vrm_protocol.cli import main; main()", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the process announces itself
        match = LISTENING.search(line)
        assert match, line
        yield match.group(1).decode()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    data_dir: Path = tmp_path_factory.mktemp("vendor")
    with (
        _process("directory", "serve", "--port", "0", "--test-mode") as directory,
        _process(
            "vendor",
            "serve",
            "--catalogue",
            "dealer-mayfair",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--test-mode",
            "--list-at",
            directory,
            "--area",
            "GB-NW",
        ) as vendor,
    ):
        yield directory, vendor


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _post(url: str, data: bytes, content_type: str = LISTING_MEDIA_TYPE) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": content_type}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _search(directory: str, query: str = "category=vehicles.cars&area=GB-NW") -> Any:
    status, headers, answer = _get(f"{directory}{SEARCH_PATH}?{query}")
    assert status == 200, answer
    # VRM-DIR-003: nothing asked, nothing set: no cookie, nothing cached on the way.
    assert "Set-Cookie" not in headers
    assert headers.get("Cache-Control") == "no-store"
    default_registry().validate(answer, SEARCH_SCHEMA)
    return answer


def _vendor_keys(vendor: str) -> KeySet:
    _, _, jwks = _get(vendor + "/vrm/jwks.json")
    return KeySet.from_jwks(jwks)


def test_a_vendor_lists_itself_at_start_up_and_a_search_finds_it(
    running: tuple[str, str],
) -> None:
    directory, vendor = running
    answer = _search(directory)
    assert [v["party"] for v in answer["vendors"]] == [vendor]
    found = answer["vendors"][0]
    assert found["name"] == "Mayfair Motors"
    assert found["discovery"] == vendor + "/.well-known/vrm"
    # The token is the vendor's own, unchanged: it verifies under the vendor's keys.
    listing = verify_listing(
        found["listing"].encode(), _vendor_keys(vendor), party=vendor, now=datetime.now(UTC)
    )
    assert listing.categories == ("vehicles.cars",)
    assert listing.areas == ("GB-NW",)
    # The whole country finds it; another postcode area or category does not.
    assert len(_search(directory, "category=vehicles.cars&area=GB")["vendors"]) == 1
    assert _search(directory, "category=vehicles.cars&area=GB-SE")["vendors"] == []
    assert _search(directory, "category=vehicles.audio&area=GB-NW")["vendors"] == []


def test_nobody_lists_someone_else(running: tuple[str, str]) -> None:
    """VRM-DIR-002: a listing naming the vendor, signed by a key it does not publish."""
    directory, vendor = running
    before = _search(directory)
    forged = make_listing(
        SigningKey.generate("EdDSA"),
        party=vendor,
        name="Mayfair Motors (cheaper)",
        categories=["vehicles.cars"],
        areas=["GB"],
        now=datetime.now(UTC),
    )
    status, problem = _post(directory + LISTINGS_PATH, forged)
    assert status == 401 or 400 <= status < 500, problem
    assert problem["code"] == "unknown-key"
    assert _search(directory) == before


def test_a_listing_of_a_party_that_publishes_nothing_is_refused(
    running: tuple[str, str],
) -> None:
    directory, _ = running
    listing = make_listing(
        SigningKey.generate("EdDSA"),
        party=directory,  # answers no discovery document
        name="Nobody",
        categories=["vehicles.cars"],
        areas=["GB"],
        now=datetime.now(UTC),
    )
    status, problem = _post(directory + LISTINGS_PATH, listing)
    assert status == 503
    assert problem["code"] == "temporarily-unavailable"


def test_malformed_requests_are_refused_with_problem_details(running: tuple[str, str]) -> None:
    directory, _ = running
    status, problem = _post(directory + LISTINGS_PATH, b"{}", content_type="application/json")
    assert (status, problem["code"]) == (415, "unsupported-media-type")
    status, problem = _post(directory + LISTINGS_PATH, b"not.a.listing")
    assert 400 <= status < 500
    status, _, problem = _get(
        f"{directory}{SEARCH_PATH}?category=vehicles.cars&area=GB-NW&pseudonym=did:jwk:x"
    )
    assert (status, problem["code"]) == (400, "invalid-request")
    status, _, problem = _get(f"{directory}{SEARCH_PATH}?category=vehicles.cars&area=NW3%201AB")
    assert (status, problem["code"]) == (400, "invalid-request")


def test_her_agent_finds_the_vendor_from_the_command_line(
    running: tuple[str, str], tmp_path: Path
) -> None:
    directory, vendor = running
    finished = subprocess.run(
        [
            sys.executable,
            "-c",
            "from vrm_protocol.cli import main; main()",
            "buyer",
            "search",
            "--data-dir",
            str(tmp_path / "buyer"),
            "--allow-delivery-to",
            "127.0.0.1",
            "--directory",
            directory,
            "--area",
            "GB-NW",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert f"{vendor}: Mayfair Motors (listing verified)" in finished.stdout
