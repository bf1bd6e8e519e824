"""Retired keys (spec §8.4): a party keeps a retired key published under
``retired`` with its ``retiredAt`` and never signs with it (VRM-SIG-028); a
receiver refuses a message signed with a key its sender lists as retired
(VRM-SIG-029): a retired key verifies only evidence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import fresh_relationships
from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext
from conformance.model import WIRE_STEP
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.identity import new_key
from conformance.peers.messages import sign, timestamp
from conformance.peers.posting import header_kid
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import LifecycleStep, Role

E = ErrorCode


@REGISTRY.check(
    "BUY-RETIRED-KEY",
    title="A message signed with a key its sender retired is refused",
    step=WIRE_STEP,
    requirements=("VRM-SIG-029",),
    roles=(Role.BUYER,),
)
async def retired_key_refused(ctx: CheckContext) -> None:
    """The suite's vendor lists a second key under ``retired`` (retired a day
    ago) and signs its offer with it: the buyer refuses it with
    ``unknown-key``. The same offer signed with the vendor's current key is
    then taken."""
    relationships = await fresh_relationships(ctx.session, "Conformance Retiring Motors")
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    inbox = relationships.delivery_inbox(vendor)
    retired = new_key("EdDSA")
    vendor.retired_public_keys.append(
        {
            **retired.public_jwk,
            "kid": retired.kid,
            "alg": retired.alg,
            "use": "sig",
            "retiredAt": timestamp(ctx.session.clock.now() - timedelta(days=1)),
        }
    )
    offer = vendor.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now()))
    reply = await vendor.deliver_token(
        sign(offer, retired),
        to=str(offer["to"][0]),
        inbox=inbox,
        note="an offer signed with the vendor's retired key",
    )
    if reply is None:
        ctx.skip("the buyer takes this vendor's messages from its mailbox: no refusal to judge")
    expect_rejection(
        ctx,
        reply,
        E.UNKNOWN_KEY,
        what="an offer signed with a key its sender retired",
        requirement="VRM-SIG-029",
    )
    reply = await vendor.deliver(offer, inbox=inbox, note="the same offer, current key")
    assert reply is not None
    expect_accepted(ctx, reply, what="the same offer signed with the vendor's current key")


@REGISTRY.check(
    "VEN-RETIRED-KEYS",
    title="Retired keys are published with retiredAt and never sign",
    step=LifecycleStep.REENGAGEMENT,
    requirements=("VRM-SIG-028",),
    roles=(Role.VENDOR,),
)
async def retired_keys_published(ctx: CheckContext) -> None:
    """Late in the run, the vendor's JWKS is read: every key under ``retired``
    carries a ``kid`` and its ``retiredAt`` instant and is not also current,
    and no message the vendor sent during the run is signed under a retired
    ``kid``. A vendor that retired no key has nothing to judge."""
    endpoints = ctx.discovery.get("endpoints") or {}
    url = endpoints.get("jwks") if isinstance(endpoints, dict) else None
    ctx.require(isinstance(url, str), "the discovery document names endpoints.jwks")
    assert isinstance(url, str)
    try:
        document: Any = (await request(ctx.session.http, ctx.session.transcript, "GET", url)).json()
    except (TargetUnreachable, ValueError) as error:
        ctx.fail(f"GET {url} answers a JSON JWKS", actual=str(error))
    retired = document.get("retired") if isinstance(document, dict) else None
    if not retired:
        ctx.skip("the vendor lists no retired key")
    ctx.require(
        isinstance(retired, list) and all(isinstance(entry, dict) for entry in retired),
        "retired is an array of keys",
        actual=retired,
        requirement="VRM-SIG-028",
    )
    current = {str(key.get("kid")) for key in document.get("keys") or [] if isinstance(key, dict)}
    kids: set[str] = set()
    for entry in retired:
        kid = entry.get("kid")
        ctx.expect(
            isinstance(kid, str) and isinstance(entry.get("retiredAt"), str),
            f"retired key {kid} carries its kid and retiredAt",
            actual=sorted(entry),
            requirement="VRM-SIG-028",
        )
        ctx.expect(
            kid not in current,
            f"retired key {kid} is not also a current key",
            requirement="VRM-SIG-028",
        )
        kids.add(str(kid))
    side = await buyer_side(ctx)
    signed = sorted(
        {f"{item.type} {item.id}" for item in side.core.received if header_kid(item.token) in kids}
    )
    ctx.expect(
        not signed,
        "no message of the run is signed with a retired key",
        expected=[],
        actual=signed or None,
        requirement="VRM-SIG-028",
    )
