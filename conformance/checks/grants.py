"""Access grants (spec §6.18, §6.19, §11.9): the grantee (``--role vendor``) and
her agent's read endpoint (``--role buyer``).

The suite plays the individual: a persona in negotiation with the vendor
grants it her travel dates, served by the suite's own read endpoint, and the
vendor is prompted to read through its test driver (``POST {driver}/read-grant
{"grant": <id>}``; a driver without that instruction makes these checks skip,
with that reason). The endpoint judges every read the vendor makes with the
library (the proof's signature by the key the grant names, its grant, method,
URL, time and ``jti``) and counts them: after the persona revokes the grant,
or once its ``until`` has passed, the vendor must make no read at all.

Against a buyer the suite is the grantee: one of its vendors receives an RFP
from the buyer, then (``POST {driver}/grant``) a grant, and reads at the
endpoint the grant names with proofs the suite mints itself, good and bad;
then (``POST {driver}/revoke``) the grant is revoked and a read must be
refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from conformance.checks.scenarios import (
    VendorThread,
    prompt_buyer,
    prompt_wait,
    vendor_negotiation,
)
from conformance.client import HttpReply, request
from conformance.context import CheckContext, Session
from conformance.forge import canonical_json, compact
from conformance.model import CheckSkipped
from conformance.peers.buyers import buyer_side
from conformance.peers.identity import new_key, thumbprint
from conformance.peers.inbox import Inbound
from conformance.peers.server import SuiteServer
from conformance.peers.vendors import SuiteVendor, vendor_side
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import KeySet
from vrm_protocol.read_proof import (
    READ_AUTH_SCHEME,
    READ_TYP,
    proof_from_authorization,
    verify_read_proof,
)
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
BUYER = (Role.BUYER,)
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
    published = [key for key in jwks.get("keys") or [] if isinstance(key, dict)]
    ctx.require(bool(published), "the vendor publishes a key to bind the grant to", actual=jwks)
    # The key it signs with now: the one that signed its latest message to the persona.
    signing = _kid(thread.offers[-1].token) if thread.offers else None
    chosen = next((key for key in published if key.get("kid") == signing), published[-1])
    key = thumbprint(chosen)
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


def _kid(token: bytes) -> str | None:
    """The ``kid`` of a compact JWS's protected header, unverified (it was verified
    when the message was taken)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(b".")[0] + b"=="))
    except (ValueError, IndexError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


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


# -- against a buyer: the suite is the grantee ---------------------------------------------------


@dataclass(slots=True)
class HeldGrant:
    """A grant the buyer under test gave one of the suite's vendors."""

    vendor: SuiteVendor
    message: Inbound
    grant: str
    endpoint: str
    items: list[str]


def _read_proof(
    session: Session,
    signer: Any,
    held: HeldGrant,
    *,
    url: str | None = None,
    age: timedelta = timedelta(0),
    jti: str | None = None,
) -> str:
    """A read proof minted by the suite (never by the library's signer)."""
    header = {"alg": signer.alg, "kid": signer.kid, "typ": READ_TYP}
    payload = {
        "grant": held.grant,
        "htm": "GET",
        "htu": url if url is not None else held.endpoint,
        "iat": int((session.clock.now() - age).timestamp()),
        "jti": jti if jti is not None else secrets.token_urlsafe(18),
    }
    return compact(header, canonical_json(payload), signer).decode("ascii")


async def _read(ctx: CheckContext, held: HeldGrant, proof: str | None, note: str) -> HttpReply:
    headers = {"Authorization": f"{READ_AUTH_SCHEME} {proof}"} if proof is not None else {}
    return await request(
        ctx.session.http, ctx.session.transcript, "GET", held.endpoint, headers=headers, note=note
    )


async def _given_grant(ctx: CheckContext, name: str, *, seconds: int = 3600) -> HeldGrant:
    """A new vendor of the suite's: the buyer sends it an RFP (negotiation), then is
    told to grant it her travel dates."""
    side = await vendor_side(ctx.session)
    vendor = await side.add_vendor(name)
    await prompt_buyer(
        ctx.session,
        "rfp",
        {"vendors": [vendor.id]},
        instruction=f"Make the buyer agent send a personal RFP (any car) to {vendor.id}",
    )
    await vendor.expect(
        lambda item: item.type == "personal-rfp",
        description=f"the buyer sends a personal RFP to {vendor.id}",
        within=prompt_wait(ctx.session),
    )
    items = sorted(TRAVEL)
    await prompt_buyer(
        ctx.session,
        "grant",
        {
            "vendor": vendor.id,
            "items": items,
            "purposes": ["programme-membership"],
            "seconds": seconds,
        },
        instruction=f"Make the buyer agent grant {vendor.id} reads of her travel dates",
    )
    message = await vendor.expect(
        lambda item: item.type == "access-grant",
        description=f"the buyer sends an access grant to {vendor.id}",
        within=prompt_wait(ctx.session),
    )
    ctx.require(message.ok, "the grant passes the receiving pipeline", actual=message.error)
    body = message.body
    ctx.require(
        body.get("grantee") == vendor.id
        and body.get("key") in {thumbprint(key) for key in vendor.jwks()["keys"]},
        "the grant names the vendor and the key it publishes",
        actual={"grantee": body.get("grantee"), "key": body.get("key")},
        requirement="VRM-GRANT-001",
    )
    endpoint = str(body.get("endpoint"))
    if origin(endpoint) != origin(ctx.session.options.target):
        # The suite fetches only from the target it was pointed at (no SSRF by proxy).
        raise CheckSkipped("the grant's endpoint is not on the target's origin")
    return HeldGrant(vendor, message, str(body.get("id")), endpoint, items)


def origin(url: str) -> tuple[str, str, int | None]:
    """The scheme, host and port of ``url``."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


@REGISTRY.check(
    "BUY-GRANT-READ",
    title="Her agent answers a granted read only with a valid, fresh, unused proof",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-GRANT-004", "VRM-GRANT-006"),
    roles=BUYER,
    needs=("test-driver", "sends:access-grant"),
)
async def buyer_grant_read(ctx: CheckContext) -> None:
    """Told to grant a vendor of the suite's her travel dates, her agent answers a
    read with a proof signed by that vendor's key (the granted items only); it
    refuses a read without a proof, the same proof again (replay), a proof for
    another URL, a stale proof, and a proof signed by a key the grant does not name."""
    held = await _given_grant(ctx, "Conformance Grants Motors")
    signer = held.vendor.signer
    proof = _read_proof(ctx.session, signer, held)
    answered = await _read(ctx, held, proof, "a read with a valid proof")
    ctx.require(
        answered.status == 200,
        "a read with a valid proof is answered",
        actual=f"{answered.status} {answered.body[:300]!r}",
        requirement="VRM-GRANT-004",
    )
    document = answered.json() if answered.status == 200 else {}
    read_items = [item.get("item") for item in document.get("items") or []]
    ctx.expect(
        set(read_items) <= set(held.items) and document.get("grant") == held.grant,
        "the answer names the grant and holds the granted items only",
        expected=held.items,
        actual=document,
        requirement="VRM-GRANT-006",
    )
    refusals = [
        ("no proof", None, "authentication-required"),
        ("the same proof again", proof, "replay"),
        (
            "a proof for another URL",
            _read_proof(ctx.session, signer, held, url=held.endpoint + "x"),
            "authentication-required",
        ),
        (
            "a proof made ten minutes ago",
            _read_proof(ctx.session, signer, held, age=timedelta(minutes=10)),
            "authentication-required",
        ),
        (
            "a proof signed by a key the vendor does not publish",
            _read_proof(ctx.session, new_key(), held),
            "unknown-key",
        ),
    ]
    for what, given, code in refusals:
        reply = await _read(ctx, held, given, what)
        ctx.expect(
            reply.status >= 400 and reply.problem_code() == code,
            f"{what} is refused with {code}",
            expected=code,
            actual=f"{reply.status} {reply.problem_code()}",
            requirement="VRM-GRANT-004",
        )


@REGISTRY.check(
    "BUY-GRANT-REVOKED",
    title="Her agent refuses every read after she revokes a grant, or after its until",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-GRANT-005",),
    roles=BUYER,
    needs=("test-driver", "sends:access-grant", "sends:access-revocation"),
)
async def buyer_grant_revoked(ctx: CheckContext) -> None:
    """Told to revoke a grant, her agent sends the revocation and answers the next read
    (with a valid proof) 403 ``grant-revoked``; under a grant of one second, a read
    after it is answered 403 ``grant-expired``."""
    held = await _given_grant(ctx, "Conformance Revoked Grants Motors")
    signer = held.vendor.signer
    await prompt_buyer(
        ctx.session,
        "revoke",
        {"grant": held.grant},
        instruction=f"Make the buyer agent revoke its grant {held.grant}",
    )
    await held.vendor.expect(
        lambda item: item.type == "access-revocation" and item.body.get("grant") == held.grant,
        description="the buyer sends the grant's revocation",
        within=prompt_wait(ctx.session),
    )
    reply = await _read(
        ctx, held, _read_proof(ctx.session, signer, held), "a read after revocation"
    )
    ctx.require(
        (reply.status, reply.problem_code()) == (403, "grant-revoked"),
        "a read under a revoked grant is refused 403 grant-revoked",
        actual=f"{reply.status} {reply.problem_code()}",
        requirement="VRM-GRANT-005",
    )
    short = await _given_grant(ctx, "Conformance Expired Grants Motors", seconds=1)
    await asyncio.sleep(1.5)
    reply = await _read(
        ctx, short, _read_proof(ctx.session, short.vendor.signer, short), "a read after until"
    )
    ctx.require(
        (reply.status, reply.problem_code()) == (403, "grant-expired"),
        "a read after the grant's until is refused 403 grant-expired",
        actual=f"{reply.status} {reply.problem_code()}",
        requirement="VRM-GRANT-005",
    )
