"""The discovery document and the published keys (spec §11.2, §9.1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext
from conformance.model import DISCOVERY_STEP
from conformance.peers.identity import thumbprint
from conformance.protocol import jwks_refusal
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw, discovery_url, driver_state
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.vocabulary import PROTOCOL_VERSION, MessageType, Role

BOTH = (Role.VENDOR, Role.BUYER)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: The profile's allow-list (spec §8.2): a party may declare a subset.
ALLOWED_ALGORITHMS = frozenset({"EdDSA", "ES256"})
#: JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2; RFC 8037).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@REGISTRY.check(
    "DISC-DOCUMENT",
    title="The discovery document is served and complete",
    step=DISCOVERY_STEP,
    requirements=(
        "VRM-HTTP-001",
        "VRM-HTTP-027",
        "VRM-SIG-020",
    ),
    roles=BOTH,
)
async def discovery_document(ctx: CheckContext) -> None:
    """``GET /.well-known/vrm`` answers JSON naming versions, role, message types,
    algorithms and limits; a vendor's also its id and endpoints, a buyer's no id
    and no endpoint but its test driver (spec §11.1, VRM-HTTP-027)."""
    url = discovery_url(ctx.options.target)
    try:
        reply = await request(ctx.session.http, ctx.session.transcript, "GET", url)
    except TargetUnreachable as error:
        ctx.fail(f"the target answers GET {url}", actual=error.reason)
    ctx.require(reply.status == 200, f"GET {url} answers 200", actual=reply.status)
    ctx.expect(
        reply.content_type == "application/json",
        "the document is application/json",
        actual=reply.content_type,
    )
    try:
        document: Any = reply.json()
    except ValueError:
        ctx.fail("the discovery document is JSON")
    ctx.require(isinstance(document, dict), "the discovery document is a JSON object")
    versions = document.get("versions")
    ctx.expect(
        isinstance(versions, list) and PROTOCOL_VERSION in versions,
        f"versions lists {PROTOCOL_VERSION}",
        actual=versions,
    )
    if ctx.role is Role.BUYER:
        ctx.expect(
            "id" not in document,
            "a buyer's discovery document names no party (no id)",
            actual=document.get("id"),
            requirement="VRM-HTTP-027",
        )
    else:
        ctx.expect(
            isinstance(document.get("id"), str) and bool(document.get("id")),
            "the document names the party id",
            actual=document.get("id"),
            requirement="VRM-HTTP-001",
        )
    if ctx.role is Role.VENDOR:
        target = ctx.options.target.rstrip("/")
        parsed = urlsplit(target)
        ctx.expect(
            str(document.get("id", "")).rstrip("/") == target,
            "a vendor's party id is the base URL its discovery document is served from",
            expected=target,
            actual=document.get("id"),
            requirement="VRM-SIG-020",
        )
        ctx.expect(
            parsed.scheme == "https"
            or (parsed.scheme == "http" and parsed.hostname in _LOOPBACK_HOSTS),
            "the vendor is reached over HTTPS (plain HTTP only on the loopback interface)",
            actual=target,
            requirement="VRM-SIG-020",
        )
    ctx.expect(
        document.get("role") == ctx.role.value,
        f"the document declares the role {ctx.role.value}",
        actual=document.get("role"),
    )
    endpoints = document.get("endpoints")
    if ctx.role is Role.VENDOR:
        ctx.require(isinstance(endpoints, dict), "the document has endpoints")
        assert isinstance(endpoints, dict)
        for name in ("inbox", "jwks", "mailbox"):
            value = endpoints.get(name)
            ctx.expect(
                isinstance(value, str) and value.startswith(("http://", "https://")),
                f"endpoints.{name} is an absolute URL",
                actual=value,
            )
    else:
        listed = sorted(endpoints) if isinstance(endpoints, dict) else []
        ctx.expect(
            endpoints is None or (isinstance(endpoints, dict) and set(endpoints) <= {"testDriver"}),
            "a buyer's discovery document lists no endpoint but its test driver",
            actual=listed or None,
            requirement="VRM-HTTP-027",
        )
    types = document.get("messageTypes")
    known = {t.value for t in MessageType}
    ctx.require(isinstance(types, dict), "the document lists messageTypes")
    for direction in ("accepts", "sends"):
        listed = types.get(direction)
        ctx.expect(
            isinstance(listed, list) and set(listed) <= known and bool(listed),
            f"messageTypes.{direction} lists known message types only",
            actual=listed,
        )
    algorithms = document.get("algorithms")
    ctx.expect(
        isinstance(algorithms, list) and bool(algorithms) and set(algorithms) <= ALLOWED_ALGORITHMS,
        "algorithms is a non-empty subset of the profile's allow-list",
        expected=sorted(ALLOWED_ALGORITHMS),
        actual=algorithms,
    )
    limits = document.get("limits")
    ctx.expect(
        isinstance(limits, dict)
        and all(
            isinstance(limits.get(name), int) and limits[name] > 0
            for name in ("maxMessageBytes", "maxDepth")
        ),
        "limits declares maxMessageBytes and maxDepth",
        actual=limits,
    )


@REGISTRY.check(
    "DISC-JWKS",
    title="The published JWKS holds public keys under their thumbprints",
    step=DISCOVERY_STEP,
    requirements=("VRM-SIG-015", "VRM-SIG-016", "VRM-SIG-022"),
    roles=(Role.VENDOR,),
)
async def published_keys(ctx: CheckContext) -> None:
    """``endpoints.jwks`` serves a JWKS of Ed25519 or P-256 public keys, each
    with ``kid`` = its RFC 7638 thumbprint, and never a private member; a
    receiver imports it (the library and the suite's own verifier both)."""
    endpoints = ctx.discovery.get("endpoints") or {}
    url = endpoints.get("jwks") if isinstance(endpoints, dict) else None
    ctx.require(isinstance(url, str), "the discovery document names endpoints.jwks")
    assert isinstance(url, str)
    try:
        reply = await request(ctx.session.http, ctx.session.transcript, "GET", url)
        document: Any = reply.json()
    except (TargetUnreachable, ValueError) as error:
        ctx.fail(f"GET {url} answers a JSON JWKS", actual=str(error))
    keys = document.get("keys") if isinstance(document, dict) else None
    ctx.require(
        isinstance(keys, list) and bool(keys),
        "the JWKS has at least one key",
        requirement="VRM-SIG-015",
    )
    assert isinstance(keys, list)
    for key in keys:
        kid = key.get("kid") if isinstance(key, dict) else None
        ctx.require(
            isinstance(key, dict) and not PRIVATE_MEMBERS & set(key),
            f"key {kid} carries no private member",
            requirement="VRM-SIG-015",
        )
        kind = (key.get("kty"), key.get("crv"))
        ctx.expect(
            kind in {("OKP", "Ed25519"), ("EC", "P-256")},
            f"key {kid} is Ed25519 or P-256",
            actual=list(kind),
        )
        try:
            expected = thumbprint(key)
        except (ValueError, KeyError):
            expected = None
        ctx.expect(
            kid == expected,
            f"key {kid}: kid is its RFC 7638 thumbprint",
            expected=expected,
            actual=kid,
            requirement="VRM-SIG-016",
        )
    refusal = jwks_refusal(document, judge=ctx.session.judge, subject=f"JWKS {url}")
    ctx.require(
        refusal is None,
        "a receiver accepts the JWKS: every key one somebody owns (no small-order, "
        "mixed-order or non-canonical Ed25519 key)",
        actual=refusal,
        requirement="VRM-SIG-022",
    )


#: Instructions a buyer agent's test driver takes (spec §14.3).
BUYER_DRIVER_ROUTES = ("/rfi", "/rfp", "/accept", "/decline", "/exit")


@REGISTRY.check(
    "DISC-TEST-DRIVER",
    title="The test driver is listed exactly when it is offered, and complete",
    step=DISCOVERY_STEP,
    requirements=("VRM-CONF-003", "VRM-CONF-005"),
    roles=BOTH,
)
async def test_driver(ctx: CheckContext) -> None:
    """When ``endpoints.testDriver`` is listed, ``GET state`` answers a JSON
    object, ``POST clock`` takes the current offset, and a buyer's driver has
    every instruction route (an empty instruction is refused, never 404).
    When it is not listed, the well-known driver path serves nothing."""
    driver = ctx.session.driver_url
    if driver is None:
        url = ctx.options.target.rstrip("/") + TEST_DRIVER_PREFIX + "/state"
        try:
            reply = await request(ctx.session.http, ctx.session.transcript, "GET", url)
        except TargetUnreachable as error:
            ctx.fail("the target answers HTTP requests", actual=error.reason)
        ctx.require(
            reply.status != 200,
            "a target that lists no test driver serves none",
            expected="not 200",
            actual=reply.status,
            requirement="VRM-CONF-003",
        )
        return
    state = await driver_state(ctx.session)
    ctx.require(
        isinstance(state, dict),
        "GET {testDriver}/state answers a JSON object",
        requirement="VRM-CONF-005",
    )
    offset = int(ctx.session.clock.offset.total_seconds())
    status, answer = await call_driver_raw(ctx.session, "POST", "/clock", {"offsetSeconds": offset})
    ctx.require(
        200 <= status < 300,
        "POST {testDriver}/clock takes an offset",
        actual=f"{status} {answer}",
        requirement="VRM-CONF-005",
    )
    if ctx.role is Role.BUYER:
        for route in BUYER_DRIVER_ROUTES:
            status, answer = await call_driver_raw(ctx.session, "POST", route, {})
            ctx.expect(
                status not in (404, 405),
                f"the buyer's test driver has POST {route}",
                actual=f"{status} {answer}",
                requirement="VRM-CONF-005",
            )
