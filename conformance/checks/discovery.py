"""The discovery document and the published keys (spec §11.2, §9.1)."""

from __future__ import annotations

from typing import Any

from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext
from conformance.model import DISCOVERY_STEP
from conformance.peers.identity import thumbprint
from conformance.registry import REGISTRY
from conformance.target import discovery_url
from vrm_protocol.vocabulary import PROTOCOL_VERSION, MessageType, Role

BOTH = (Role.VENDOR, Role.BUYER)
#: The profile's allow-list (spec §8.2): a party may declare a subset.
ALLOWED_ALGORITHMS = frozenset({"EdDSA", "ES256"})
#: JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2; RFC 8037).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@REGISTRY.check(
    "DISC-DOCUMENT",
    title="The discovery document is served and complete",
    step=DISCOVERY_STEP,
    requirements=("DISCOVERY-DOCUMENT",),
    roles=BOTH,
)
async def discovery_document(ctx: CheckContext) -> None:
    """``GET /.well-known/vrm`` answers JSON naming versions, id, role, endpoints,
    message types, algorithms and limits."""
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
    ctx.expect(
        isinstance(document.get("id"), str) and bool(document.get("id")),
        "the document names the party id",
        actual=document.get("id"),
    )
    ctx.expect(
        document.get("role") == ctx.role.value,
        f"the document declares the role {ctx.role.value}",
        actual=document.get("role"),
    )
    endpoints = document.get("endpoints")
    ctx.require(isinstance(endpoints, dict), "the document has endpoints")
    for name in ("inbox", "jwks", "mailbox"):
        value = endpoints.get(name)
        ctx.expect(
            isinstance(value, str) and value.startswith(("http://", "https://")),
            f"endpoints.{name} is an absolute URL",
            actual=value,
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
    requirements=("KEYS-PUBLISHED", "KEYS-KID-THUMBPRINT"),
    roles=(Role.VENDOR,),
)
async def published_keys(ctx: CheckContext) -> None:
    """``endpoints.jwks`` serves a JWKS of Ed25519 or P-256 public keys, each
    with ``kid`` = its RFC 7638 thumbprint, and never a private member."""
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
        requirement="KEYS-PUBLISHED",
    )
    assert isinstance(keys, list)
    for key in keys:
        kid = key.get("kid") if isinstance(key, dict) else None
        ctx.require(
            isinstance(key, dict) and not PRIVATE_MEMBERS & set(key),
            f"key {kid} carries no private member",
            requirement="KEYS-PUBLISHED",
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
            requirement="KEYS-KID-THUMBPRINT",
        )
