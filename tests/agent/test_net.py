"""What a party publishes about itself, judged by the runtime before use (D7): its
discovery document names it and only endpoints on its own origin; its key set
has at most 16 keys, every one the library accepts, or is refused whole; no
redirect is followed. Real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from vrm_agent.net import (
    FetchRefused,
    client_session,
    fetch_discovery,
    fetch_key_set,
    loopback_policy,
)
from vrm_protocol.http_binding import DISCOVERY_PATH, JWKS_PATH, DeliveryPolicy, DeliveryRefused
from vrm_protocol.keys import KeySet, SigningKey


class Published:
    """A party's publications, changed by each test."""

    def __init__(self) -> None:
        self.base = ""
        self.endpoints: dict[str, Any] = {}
        self.named: str | None = None
        self.jwks: Any = {"keys": []}
        self.redirect: str | None = None


@pytest.fixture
async def party(aiohttp_server: Any) -> Published:
    published = Published()

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": published.named or published.base,
                "endpoints": {
                    "inbox": published.base + "/vrm/inbox",
                    "jwks": published.base + JWKS_PATH,
                    "mailbox": published.base + "/vrm/mailbox",
                    **published.endpoints,
                },
            }
        )

    async def jwks(request: web.Request) -> web.Response:
        if published.redirect is not None:
            raise web.HTTPFound(published.redirect)
        return web.json_response(published.jwks)

    app = web.Application()
    app.router.add_get(DISCOVERY_PATH, discovery)
    app.router.add_get(JWKS_PATH, jwks)
    server = await aiohttp_server(app, host="127.0.0.1")
    published.base = str(server.make_url("")).rstrip("/")
    return published


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    opened = client_session(loopback_policy())
    yield opened
    await opened.close()


async def test_a_discovery_document_on_its_own_origin_is_taken(
    party: Published, session: aiohttp.ClientSession
) -> None:
    found = await fetch_discovery(session, loopback_policy(), party.base)
    assert found.party == party.base
    assert found.inbox == party.base + "/vrm/inbox"
    assert found.jwks == party.base + JWKS_PATH


@pytest.mark.parametrize("endpoint", ["inbox", "jwks", "mailbox"])
async def test_an_endpoint_on_another_origin_refuses_the_document(
    endpoint: str, party: Published, session: aiohttp.ClientSession
) -> None:
    party.endpoints = {endpoint: "http://127.0.0.2:9/elsewhere"}
    with pytest.raises(FetchRefused, match="another origin"):
        await fetch_discovery(session, loopback_policy(), party.base)


async def test_a_document_naming_another_party_is_refused(
    party: Published, session: aiohttp.ClientSession
) -> None:
    party.named = "https://someone-else.example"
    with pytest.raises(FetchRefused, match="another party"):
        await fetch_discovery(session, loopback_policy(), party.base)


async def test_key_sets_are_bounded_and_refused_whole(
    party: Published, session: aiohttp.ClientSession
) -> None:
    url = party.base + JWKS_PATH
    good = SigningKey.generate("EdDSA").public()
    party.jwks = KeySet([good]).to_jwks()
    _, keys = await fetch_key_set(session, loopback_policy(), url)
    assert good.kid in keys
    party.jwks = KeySet(SigningKey.generate("EdDSA").public() for _ in range(17)).to_jwks()
    with pytest.raises(FetchRefused, match="at most 16"):
        await fetch_key_set(session, loopback_policy(), url)
    # One key nobody owns (the identity point, D1) refuses the whole set.
    party.jwks = {"keys": [good.to_jwk(), {"kty": "OKP", "crv": "Ed25519", "x": "AQ" + "A" * 41}]}
    with pytest.raises(FetchRefused, match="refused"):
        await fetch_key_set(session, loopback_policy(), url)
    party.redirect = "http://127.0.0.2:9/jwks.json"
    with pytest.raises(FetchRefused):
        await fetch_key_set(session, loopback_policy(), url)


async def test_without_the_allow_list_loopback_is_never_contacted(
    party: Published, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(DeliveryRefused):
        await fetch_discovery(session, DeliveryPolicy(), party.base)
