"""Her agent's directory search (spec §11.9, reference_buyer.vendor_search): what
the directory is told, and which of its listings she believes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from reference_buyer.vendor_search import search_directory
from tests.buyer.conftest import InTestVendor, RunningBuyer, VendorFactory
from vrm_protocol.directory import SEARCH_PATH, make_listing
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.keys import SigningKey


@dataclass
class FakeDirectory:
    answer: Any = None
    seen: list[dict[str, Any]] = field(default_factory=list)
    base: str = ""


@pytest.fixture
async def directory() -> AsyncIterator[FakeDirectory]:
    fake = FakeDirectory()

    async def search(request: web.Request) -> web.Response:
        fake.seen.append(
            {
                "query": list(request.query.items()),
                "headers": {k.lower(): v for k, v in request.headers.items()},
            }
        )
        response = web.json_response(fake.answer)
        # A directory that tries to know her again: she never sends it back.
        response.set_cookie("visitor", "v-123")
        return response

    app = web.Application()
    app.router.add_get(SEARCH_PATH, search)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.base = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


def _entry(vendor: InTestVendor, *, key: SigningKey | None = None, **overrides: Any) -> Any:
    entry = {
        "party": vendor.id,
        "name": vendor.name,
        "discovery": vendor.id + "/.well-known/vrm",
        "listing": make_listing(
            key or vendor.key,
            party=vendor.id,
            name=vendor.name,
            categories=["vehicles.cars"],
            areas=["GB"],
            now=datetime.now(UTC),
        ).decode(),
    }
    entry.update(overrides)
    return entry


async def test_she_asks_with_two_parameters_and_believes_only_verified_listings(
    buyer: RunningBuyer, start_vendor: VendorFactory, directory: FakeDirectory
) -> None:
    honest = await start_vendor("Honest Motors")
    impersonated = await start_vendor("Impersonated Motors")
    elsewhere = await start_vendor("Elsewhere Motors")
    directory.answer = {
        "category": "vehicles.cars",
        "area": "GB-NW",
        "vendors": [
            _entry(honest),
            _entry(impersonated, key=honest.key),
            _entry(elsewhere, discovery=honest.id + "/.well-known/vrm"),
        ],
    }
    for _ in range(2):
        found = await search_directory(
            buyer.agent, directory.base, category="vehicles.cars", area="GB-NW"
        )
    assert found.vendors == [honest.id]
    why = dict(found.set_aside)
    assert why[impersonated.id].startswith("unknown-key")
    assert why[elsewhere.id] == "its discovery is not on its own origin"
    assert len(directory.seen) == 2
    for seen in directory.seen:
        assert seen["query"] == [("category", "vehicles.cars"), ("area", "GB-NW")]
        headers = seen["headers"]
        # VRM-DIR-004: nothing to know her by, not even the cookie it set last time.
        for name in ("cookie", "authorization", "user-agent", "from", "referer"):
            assert name not in headers, name
        assert not any("did:jwk" in value for value in headers.values())
    # She never wrote to the directory's vendors through it, nor to the impostor.
    assert not impersonated.received
    assert not elsewhere.received


async def test_a_directory_answer_that_is_not_one_is_refused(
    buyer: RunningBuyer, directory: FakeDirectory
) -> None:
    directory.answer = {"vendors": "all of them"}
    with pytest.raises(LocalProtocolError) as refused:
        await search_directory(buyer.agent, directory.base, category="vehicles.cars", area="GB")
    assert refused.value.code is ErrorCode.TEMPORARILY_UNAVAILABLE


async def test_a_finer_area_than_a_postcode_area_is_never_asked(
    buyer: RunningBuyer, directory: FakeDirectory
) -> None:
    with pytest.raises(LocalProtocolError) as refused:
        await search_directory(
            buyer.agent, directory.base, category="vehicles.cars", area="NW3 1AB"
        )
    assert refused.value.code is ErrorCode.INVALID_REQUEST
    assert directory.seen == []
