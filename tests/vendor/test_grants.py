"""The reference vendor as a grantee (spec §6.18, §6.19, §11.9), in process, against a
small read endpoint of the test's on 127.0.0.1: it reads with a proof of its key,
and stops once she revoked the grant, whether her revocation or her agent's
refusal told it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from reference_vendor.app import AGENT
from tests.vendor.conftest import Buyer
from tests.vendor.test_lifecycle import _deal
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import KeySet
from vrm_protocol.read_proof import proof_from_authorization, verify_read_proof

Client = TestClient[web.Request, web.Application]


class Endpoint:
    """Her read endpoint, as the test plays it: answers, or refuses as revoked."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.grant: dict[str, Any] = {}
        self.revoked = False
        self.reads: list[str] = []
        self.server = TestServer(self._app(), host="127.0.0.1")

    def _app(self) -> web.Application:
        async def read(request: web.Request) -> web.Response:
            proof = verify_read_proof(
                proof_from_authorization(request.headers.get("Authorization")),
                resolve_key=self.keys.get,
                key_thumbprint=self.grant["key"],
                grant=self.grant["id"],
                method=request.method,
                url=self.grant["endpoint"],
                now=datetime.now(UTC),
            )
            self.reads.append(proof.jti)
            if self.revoked:
                return web.json_response({"code": "grant-revoked"}, status=403)
            return web.json_response(
                {"grant": self.grant["id"], "items": [{"item": "travel.dates", "value": "x"}]}
            )

        app = web.Application()
        app.router.add_get("/vrm/read/tag", read)
        return app


async def _granted(vendor: Client, buyer: Buyer, endpoint: Endpoint) -> dict[str, Any]:
    rfi, _, _ = await _deal(buyer)
    agent = vendor.server.app[AGENT]
    await endpoint.server.start_server()
    endpoint.grant = {
        "id": f"urn:uuid:{uuid.uuid4()}",
        "grantee": agent.party_id,
        "items": ["travel.dates"],
        "purposes": ["programme-membership"],
        "until": format_timestamp(buyer.now() + timedelta(days=1)),
        "endpoint": str(endpoint.server.make_url("/vrm/read/tag")),
        "key": agent.key.thumbprint(),
    }
    message = buyer.compose("access-grant", endpoint.grant, thread=rfi["id"], parent=rfi["id"])
    assert (await buyer.send(message))[0] == 202
    return {**endpoint.grant, "thread": rfi["id"]}


async def test_it_reads_with_its_key_and_stops_when_her_agent_says_revoked(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    agent = vendor.server.app[AGENT]
    endpoint = Endpoint(agent.key_set)
    grant = await _granted(vendor, new_buyer(), endpoint)
    try:
        first = await agent.read_grant(grant["id"])
        assert (first.status, first.document["items"][0]["item"]) == (200, "travel.dates")
        endpoint.revoked = True  # her revocation has not reached the vendor
        refused = await agent.read_grant(grant["id"])
        assert (refused.status, refused.document["code"]) == (403, "grant-revoked")
        with pytest.raises(LocalProtocolError) as stopped:
            await agent.read_grant(grant["id"])
        assert stopped.value.code is ErrorCode.GRANT_REVOKED
        assert len(endpoint.reads) == 2
        assert len(set(endpoint.reads)) == 2  # a new jti each time
    finally:
        await endpoint.server.close()


async def test_her_revocation_stops_it_before_any_request(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    agent = vendor.server.app[AGENT]
    endpoint = Endpoint(agent.key_set)
    buyer = new_buyer()
    grant = await _granted(vendor, buyer, endpoint)
    try:
        revocation = buyer.compose(
            "access-revocation", {"grant": grant["id"]}, thread=grant["thread"]
        )
        assert (await buyer.send(revocation))[0] == 202
        with pytest.raises(LocalProtocolError) as stopped:
            await agent.read_grant(grant["id"])
        assert stopped.value.code is ErrorCode.GRANT_REVOKED
        assert endpoint.reads == []
        # A grant it does not hold is not read either.
        with pytest.raises(LookupError):
            await agent.read_grant("urn:uuid:" + str(uuid.uuid4()))
    finally:
        await endpoint.server.close()
