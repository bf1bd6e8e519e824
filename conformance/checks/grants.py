"""A vendor under access grants (``--role vendor``, spec §6.18, §6.19, §11.9).

The suite plays the individual: a persona in negotiation with the vendor
grants it her travel dates, served by the suite's own read endpoint, and the
vendor is prompted to read through its test driver (``POST {driver}/read-grant
{"grant": <id>}``; a driver without that instruction makes these checks skip,
with that reason). The endpoint judges every read the vendor makes with the
library (the proof's signature by the key the grant names, its grant, method,
URL, time and ``jti``) and counts them: after the persona revokes the grant,
or once its ``until`` has passed, the vendor must make no read at all.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from aiohttp import web

from conformance.checks.scenarios import VendorThread, vendor_negotiation
from conformance.context import CheckContext, Session
from conformance.model import CheckSkipped
from conformance.peers.buyers import buyer_side
from conformance.peers.server import SuiteServer
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import KeySet, thumbprint
from vrm_protocol.read_proof import proof_from_authorization, verify_read_proof
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
#: The suite's read endpoints: ``{server}/vrm/read/{tag}``.
READ_PATH: Final = "/vrm/read"
#: How long the suite watches for a read the vendor must NOT make.
ABSENCE_WATCH_SECONDS: Final = 2.0
#: What the persona grants: her travel dates, for the programme (seed 000 step 7).
TRAVEL: Final = {"travel.dates": "2027-04-10/2027-04-17"}


@dataclass(slots=True)
class ReadLog:
    """What the vendor did at one grant's endpoint: every request, and the verdict."""

    grant: str
    endpoint: str
    key: str
    keys: KeySet
    revoked: bool = False
    verdicts: list[str] = field(default_factory=list)
    jtis: set[str] = field(default_factory=set)

    @property
    def requests(self) -> int:
        """Every request to the endpoint, good or bad."""
        return len(self.verdicts)


@dataclass(slots=True)
class ReadEndpoints:
    """The suite's read endpoint server: one log per grant, by the endpoint's tag."""

    server: SuiteServer
    session: Session
    logs: dict[str, ReadLog] = field(default_factory=dict)

    def new(self, grant: str, key: str, keys: KeySet) -> ReadLog:
        """A fresh endpoint for ``grant``, whose reads must be signed by ``key``."""
        tag = secrets.token_urlsafe(16)
        log = ReadLog(grant, f"{self.server.base_url}{READ_PATH}/{tag}", key, keys)
        self.logs[tag] = log
        return log

    async def handle(self, request: web.Request, body: bytes) -> web.Response:
        log = self.logs.get(request.match_info["tag"])
        if log is None:
            return web.json_response({"code": "not-found"}, status=404)
        try:
            proof = verify_read_proof(
                proof_from_authorization(request.headers.get("Authorization")),
                resolve_key=log.keys.get,
                key_thumbprint=log.key,
                grant=log.grant,
                method=request.method,
                url=log.endpoint,
                now=self.session.clock.now(),
            )
        except ProtocolError as error:
            log.verdicts.append(f"refused: {error.code.value}: {error.detail}")
            return web.json_response(
                {"code": error.code.value, "detail": error.detail}, status=error.http_status
            )
        if proof.jti in log.jtis:
            log.verdicts.append("refused: replay")
            return web.json_response({"code": "replay"}, status=409)
        log.jtis.add(proof.jti)
        if log.revoked:
            log.verdicts.append("refused: grant-revoked")
            return web.json_response({"code": "grant-revoked"}, status=403)
        log.verdicts.append("answered")
        items = [{"item": item, "value": value} for item, value in TRAVEL.items()]
        return web.json_response(
            {"grant": log.grant, "at": format_timestamp(self.session.clock.now()), "items": items}
        )


async def _start(session: Session) -> ReadEndpoints:
    server = SuiteServer(session, "her read endpoint")
    endpoints = ReadEndpoints(server, session)
    server.route("GET", READ_PATH + "/{tag}", endpoints.handle)
    await server.start()
    return endpoints


async def read_endpoints(ctx: CheckContext) -> ReadEndpoints:
    """The run's read endpoint server, started on first use."""
    return await ctx.session.service("read-endpoints", _start)


async def _granted(
    ctx: CheckContext, thread: VendorThread, *, until: timedelta = timedelta(days=30)
) -> ReadLog:
    """The persona grants the vendor her travel dates; the grant names the key the
    vendor publishes now (its current JWKS)."""
    side = await buyer_side(ctx)
    jwks = await side.keys.refresh()
    keys = KeySet.from_jwks(jwks)
    published = list(jwks.get("keys") or [])
    ctx.require(bool(published), "the vendor publishes a key to bind the grant to", actual=jwks)
    key = thumbprint(published[-1])
    grant = f"urn:uuid:{uuid.uuid4()}"
    log = (await read_endpoints(ctx)).new(grant, key, keys)
    persona = thread.persona
    body = {
        "id": grant,
        "grantee": side.target_id,
        "items": sorted(TRAVEL),
        "purposes": ["programme-membership"],
        "until": format_timestamp(persona.now() + until),
        "endpoint": log.endpoint,
        "key": key,
    }
    reply = await persona.send(
        persona.compose("access-grant", body, thread=thread.thread, parent=thread.thread),
        note="an access grant",
    )
    ctx.require(
        reply.status == 202,
        "the vendor takes the access grant",
        expected="202",
        actual=reply.describe(),
        requirement="VRM-GRANT-001",
    )
    return log


async def _prompt_read(ctx: CheckContext, log: ReadLog) -> tuple[int, Any]:
    status, answer = await call_driver_raw(ctx.session, "POST", "/read-grant", {"grant": log.grant})
    # The grant was just taken (202): a driver that knows the instruction knows
    # the grant, so 404 or 405 means the instruction is not there.
    if status in (404, 405):
        raise CheckSkipped("the target's test driver has no read-grant instruction")
    return status, answer


async def _wait_for_reads(log: ReadLog, count: int) -> None:
    for _ in range(40):
        if log.requests >= count:
            return
        await asyncio.sleep(0.05)


@REGISTRY.check(
    "VEN-GRANT-READ",
    title="The grantee reads with a proof bound to its key, the grant and the request",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-GRANT-001", "VRM-GRANT-002"),
    roles=VENDOR,
    needs=("test-driver", "accepts:access-grant"),
)
async def grant_read(ctx: CheckContext) -> None:
    """In negotiation, the persona grants the vendor her travel dates; prompted twice,
    the vendor reads them at her endpoint with GET and a VRM-Proof signed by the
    key the grant names, bound to the grant, the method, the exact URL and the
    time, with a new jti each time."""
    thread = await ctx.use(vendor_negotiation)
    log = await _granted(ctx, thread)
    for attempt in (1, 2):
        status, answer = await _prompt_read(ctx, log)
        ctx.require(
            200 <= status < 300,
            "the test driver takes the read-grant instruction",
            actual=f"{status} {answer}",
        )
        await _wait_for_reads(log, attempt)
    ctx.require(
        log.verdicts == ["answered", "answered"],
        "each read carries a valid proof with a jti never used before",
        expected=["answered", "answered"],
        actual=log.verdicts,
        requirement="VRM-GRANT-002",
    )


@REGISTRY.check(
    "VEN-GRANT-STOPS",
    title="The grantee makes no read after the revocation, nor after the grant's until",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-GRANT-003",),
    roles=VENDOR,
    needs=("test-driver", "accepts:access-grant", "accepts:access-revocation"),
)
async def grant_stops(ctx: CheckContext) -> None:
    """The vendor reads once under a grant; the persona revokes it; prompted again,
    the vendor makes no request to her endpoint. Under a second grant whose
    until has passed, prompted, it makes none either. The suite counts requests
    (good or bad) at each endpoint."""
    thread = await ctx.use(vendor_negotiation)
    log = await _granted(ctx, thread)
    await _prompt_read(ctx, log)
    await _wait_for_reads(log, 1)
    ctx.require(
        log.verdicts == ["answered"],
        "the vendor reads under the grant while it is in force",
        actual=log.verdicts,
        requirement="VRM-GRANT-002",
    )
    persona = thread.persona
    reply = await persona.send(
        persona.compose(
            "access-revocation",
            {"grant": log.grant, "reason": "the trip is over"},
            thread=thread.thread,
            parent=thread.thread,
        ),
        note="the grant's revocation",
    )
    ctx.require(
        reply.status == 202,
        "the vendor takes the revocation",
        expected="202",
        actual=reply.describe(),
    )
    log.revoked = True
    await _prompt_read(ctx, log)
    await asyncio.sleep(ABSENCE_WATCH_SECONDS)
    ctx.require(
        log.requests == 1,
        "no read after the revocation",
        expected=1,
        actual=log.verdicts,
        requirement="VRM-GRANT-003",
    )
    short = await _granted(ctx, thread, until=timedelta(seconds=1))
    await asyncio.sleep(1.5)
    await _prompt_read(ctx, short)
    await asyncio.sleep(ABSENCE_WATCH_SECONDS)
    ctx.require(
        short.requests == 0,
        "no read after the grant's until",
        expected=0,
        actual=short.verdicts,
        requirement="VRM-GRANT-003",
    )
