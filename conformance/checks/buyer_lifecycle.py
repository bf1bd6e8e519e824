"""A buyer agent's behaviour through the lifecycle (``--role buyer``; the suite
plays the vendors).

The buyer acts for a person, so every step starts with a prompt: through
the test driver when the buyer lists one (``POST {driver}/rfi`` ...), else an
instruction to the operator. The vendors' side is scripted here.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import (
    BuyerRelationships,
    buyer_rfis,
    prompt_buyer,
    prompt_wait,
)
from conformance.context import CheckContext
from conformance.peers import bodies
from conformance.peers.inbox import Inbound
from conformance.peers.messages import message_ref, sign
from conformance.peers.vendors import SuiteVendor, vendor_side
from conformance.registry import REGISTRY
from conformance.target import advance_clock
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import LifecycleStep, Role

BUYER = (Role.BUYER,)
E = ErrorCode

#: How long the suite watches for a message the buyer must NOT send.
ABSENCE_WATCH_SECONDS = 2.0


async def _relationships(ctx: CheckContext) -> BuyerRelationships:
    return await ctx.use(buyer_rfis)


async def _offer_from(
    ctx: CheckContext, relationships: BuyerRelationships, vendor: SuiteVendor, **offer: Any
) -> tuple[Inbound, dict[str, Any], bytes]:
    """The vendor answers the buyer's RFI with an offer; the buyer must take it."""
    rfi = relationships.rfis[vendor.id]
    payload = vendor.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now(), **offer))
    token = sign(payload, vendor.signer)
    reply = await vendor.deliver_token(
        token,
        to=str(rfi.field("from")),
        inbox=relationships.inbox_for(vendor, ctx.session),
        note="offer answering the buyer's RFI",
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="an offer answering its RFI")
    return rfi, payload, token


@REGISTRY.check(
    "BUY-RFI-SENT",
    title="The buyer's RFIs are well formed and addressed",
    step=LifecycleStep.SEARCH,
    requirements=("MSG-VALID", "AUDIENCE"),
    roles=BUYER,
)
async def rfis_sent(ctx: CheckContext) -> None:
    """Each vendor receives one RFI: valid, from a did:jwk pseudonym, to that
    vendor only, starting its own thread, with a future ``responseBy``."""
    relationships = await _relationships(ctx)
    for vendor in relationships.vendors:
        rfi = relationships.rfis[vendor.id]
        ctx.expect(
            rfi.ok,
            f"the RFI to {vendor.name} passes the receiving pipeline",
            actual=rfi.error_detail,
            requirement="MSG-VALID",
        )
        sender = rfi.field("from")
        ctx.expect(
            isinstance(sender, str) and sender.startswith("did:jwk:"),
            "the buyer writes as a did:jwk pseudonym",
            actual=sender,
            requirement="PSEUDONYM-PAIRWISE",
        )
        ctx.expect(
            rfi.field("to") == [vendor.id],
            "the RFI is addressed to that vendor only",
            expected=[vendor.id],
            actual=rfi.field("to"),
            requirement="AUDIENCE",
        )
        ctx.expect(
            rfi.field("thread") == rfi.id,
            "the RFI starts its own thread",
            actual=rfi.field("thread"),
            requirement="THREAD-ID",
        )


@REGISTRY.check(
    "BUY-PSEUDONYMS-UNLINKABLE",
    title="The buyer's pseudonyms share nothing across vendors",
    step=LifecycleStep.SEARCH,
    requirements=("PSEUDONYM-PAIRWISE",),
    roles=BUYER,
)
async def pseudonyms_unlinkable(ctx: CheckContext) -> None:
    """Across the RFIs to different vendors: distinct identifiers, keys, message
    and thread ids, attestation tokens, and no sub-second timestamps that
    could correlate them."""
    relationships = await _relationships(ctx)
    rfis = list(relationships.rfis.values())
    ctx.require(len(rfis) >= 2, "the buyer wrote to at least two vendors", actual=len(rfis))

    def distinct(values: list[Any], what: str) -> None:
        ctx.expect(
            len(set(map(str, values))) == len(values),
            f"no two vendors see the same {what}",
            actual=values,
            requirement="PSEUDONYM-PAIRWISE",
        )

    distinct([rfi.field("from") for rfi in rfis], "sender identifier")
    distinct([_kid(rfi) for rfi in rfis], "signing key")
    distinct([rfi.id for rfi in rfis], "message id")
    distinct([rfi.field("thread") for rfi in rfis], "thread id")
    tokens = [
        a.get("token")
        for rfi in rfis
        for a in rfi.body.get("attestations") or []
        if isinstance(a, dict)
    ]
    distinct(tokens, "attestation token")
    for rfi in rfis:
        created = str(rfi.field("created") or "")
        ctx.expect(
            "." not in created,
            "timestamps are whole seconds (no correlating fraction)",
            actual=created,
            requirement="PSEUDONYM-PAIRWISE",
        )


def _kid(inbound: Inbound) -> str:
    from conformance.peers.posting import header_kid

    return header_kid(inbound.token)


@REGISTRY.check(
    "BUY-RECEIPT",
    title="The buyer receipts an offer as the pseudonym it used",
    step=LifecycleStep.SEARCH,
    requirements=("HTTP-INBOX-RECEIPT",),
    roles=BUYER,
)
async def buyer_receipt(ctx: CheckContext) -> None:
    """``202`` and a receipt signed by the RFI's pseudonym, binding the offer's bytes."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[0]
    rfi, payload, token = await _offer_from(ctx, relationships, vendor)
    reply = vendor.sent[-1].reply
    receipt = reply.receipt
    ctx.require(
        receipt is not None and receipt.ok and receipt.payload is not None,
        "the receipt passes the receiving pipeline",
        requirement="HTTP-INBOX-RECEIPT",
    )
    assert receipt is not None
    assert receipt.payload is not None
    ctx.expect(
        receipt.payload.get("from") == rfi.field("from"),
        "the receipt comes from the pseudonym the RFI came from",
        expected=rfi.field("from"),
        actual=receipt.payload.get("from"),
        requirement="PSEUDONYM-PAIRWISE",
    )
    regarding = (receipt.payload.get("body") or {}).get("regarding")
    ctx.expect(
        regarding == message_ref(token, payload["id"]),
        "the receipt binds the offer's id and digest",
        expected=message_ref(token, payload["id"]),
        actual=regarding,
        requirement="HTTP-INBOX-RECEIPT",
    )


@REGISTRY.check(
    "BUY-ACCEPT-BINDS-OFFER",
    title="The buyer's acceptance binds the exact offer",
    step=LifecycleStep.TRANSACT,
    requirements=("ACCEPT-BINDS-OFFER",),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def accept_binds(ctx: CheckContext) -> None:
    """Prompted to accept an offer, the buyer sends an acceptance whose ``offer``
    is that offer's id and the digest of the exact bytes it received."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[1 % len(relationships.vendors)]
    rfi, payload, token = await _offer_from(ctx, relationships, vendor)
    await prompt_buyer(
        ctx.session,
        "accept",
        {"vendor": vendor.id, "offer": payload["id"]},
        instruction=f"Make the buyer accept offer {payload['id']} from {vendor.id}",
    )
    acceptance = await vendor.expect(
        lambda item: item.type == "offer-acceptance",
        description="the buyer sends the acceptance",
        within=prompt_wait(ctx.session),
        requirement="ACCEPT-BINDS-OFFER",
    )
    ctx.require(
        acceptance.ok,
        "the acceptance passes the receiving pipeline",
        actual=acceptance.error_detail,
        requirement="MSG-VALID",
    )
    expected = message_ref(token, payload["id"])
    ctx.expect(
        acceptance.body.get("offer") == expected,
        "the acceptance names the offer's id and the digest of its bytes",
        expected=expected,
        actual=acceptance.body.get("offer"),
        requirement="ACCEPT-BINDS-OFFER",
    )
    ctx.expect(
        acceptance.field("parent") == payload["id"],
        "the acceptance answers the offer",
        expected=payload["id"],
        actual=acceptance.field("parent"),
        requirement="THREAD-PARENT",
    )
    ctx.expect(
        acceptance.field("thread") == rfi.field("thread"),
        "the acceptance stays in the RFI's thread",
        expected=rfi.field("thread"),
        actual=acceptance.field("thread"),
        requirement="THREAD-ID",
    )
    ctx.expect(
        acceptance.field("from") == rfi.field("from"),
        "the acceptance comes from the same pseudonym",
        requirement="PSEUDONYM-PAIRWISE",
    )


async def _expect_no_acceptance(
    ctx: CheckContext, vendor: SuiteVendor, offer_id: str, description: str, requirement: str
) -> None:
    await asyncio.sleep(ABSENCE_WATCH_SECONDS)
    sent = [
        item.describe()
        for item in vendor.received()
        if item.type == "offer-acceptance" and (item.body.get("offer") or {}).get("id") == offer_id
    ]
    ctx.require(
        not sent,
        description,
        expected="no acceptance",
        actual=sent or None,
        requirement=requirement,
    )


@REGISTRY.check(
    "BUY-NO-ACCEPT-SUPERSEDED",
    title="The buyer never accepts a superseded offer",
    step=LifecycleStep.NEGOTIATE,
    requirements=("OFFER-SUPERSEDE",),
    roles=BUYER,
    needs=("test-driver",),
)
async def no_accept_superseded(ctx: CheckContext) -> None:
    """Offer A, then offer B superseding A. Told to accept A, the buyer must
    refuse: no acceptance of A reaches the vendor."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[2 % len(relationships.vendors)]
    _, first, _ = await _offer_from(ctx, relationships, vendor, total="29000")
    await _offer_from(ctx, relationships, vendor, total="28000", supersedes=first["id"])
    from conformance.target import call_driver_raw

    status, _ = await call_driver_raw(
        ctx.session, "POST", "/accept", {"vendor": vendor.id, "offer": first["id"]}
    )
    ctx.expect(
        status >= 400,
        "the test driver reports that the offer cannot be accepted",
        actual=status,
        requirement="OFFER-SUPERSEDE",
    )
    await _expect_no_acceptance(
        ctx, vendor, first["id"], "no acceptance of the superseded offer is sent", "OFFER-SUPERSEDE"
    )


@REGISTRY.check(
    "BUY-NO-ACCEPT-EXPIRED",
    title="The buyer never accepts an expired offer",
    step=LifecycleStep.TRANSACT,
    requirements=("STATE-OFFER-EXPIRY",),
    roles=BUYER,
    needs=("test-driver",),
    timeout=60,
)
async def no_accept_expired(ctx: CheckContext) -> None:
    """An offer valid for a minute; two minutes pass; told to accept it, the
    buyer must refuse."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[0]
    _, offer, _ = await _offer_from(ctx, relationships, vendor, valid_for=timedelta(seconds=60))
    await advance_clock(ctx.session, 120)
    from conformance.target import call_driver_raw

    status, _ = await call_driver_raw(
        ctx.session, "POST", "/accept", {"vendor": vendor.id, "offer": offer["id"]}
    )
    ctx.expect(
        status >= 400,
        "the test driver reports that the offer has expired",
        actual=status,
        requirement="STATE-OFFER-EXPIRY",
    )
    await _expect_no_acceptance(
        ctx, vendor, offer["id"], "no acceptance of the expired offer is sent", "STATE-OFFER-EXPIRY"
    )


@REGISTRY.check(
    "BUY-DECLINE",
    title="The buyer declines an offer with a decline message",
    step=LifecycleStep.NEGOTIATE,
    requirements=("LIFE-DECLINE",),
    roles=BUYER,
    needs=("sends:offer-decline",),
)
async def decline(ctx: CheckContext) -> None:
    """Prompted to decline, the buyer sends ``offer-decline`` naming the offer."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[-1]
    _, offer, _ = await _offer_from(ctx, relationships, vendor, total="31000")
    await prompt_buyer(
        ctx.session,
        "decline",
        {"vendor": vendor.id, "offer": offer["id"]},
        instruction=f"Make the buyer decline offer {offer['id']} from {vendor.id}",
    )
    declined = await vendor.expect(
        lambda item: item.type == "offer-decline",
        description="the buyer sends the decline",
        within=prompt_wait(ctx.session),
        requirement="LIFE-DECLINE",
    )
    ctx.expect(
        offer["id"] in (declined.body.get("offers") or []),
        "the decline names the offer",
        expected=offer["id"],
        actual=declined.body.get("offers"),
        requirement="LIFE-DECLINE",
    )


@REGISTRY.check(
    "BUY-NOT-A-PARTICIPANT",
    title="The buyer refuses a vendor writing into another's thread",
    step=LifecycleStep.NEGOTIATE,
    requirements=("STATE-PARTICIPANT",),
    roles=BUYER,
)
async def stranger_in_thread(ctx: CheckContext) -> None:
    """Vendor B sends an offer into the thread the buyer opened with vendor A,
    to A's pseudonym: ``not-a-participant``."""
    relationships = await _relationships(ctx)
    owner, stranger = relationships.vendors[0], relationships.vendors[1]
    rfi = relationships.rfis[owner.id]
    payload = stranger.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now()))
    reply = await stranger.deliver(
        payload,
        inbox=relationships.inbox_for(owner, ctx.session),
        note="offer from a vendor outside the thread",
    )
    ctx.require(reply is not None, "the buyer has an inbox the suite can POST to")
    assert reply is not None
    expect_rejection(
        ctx,
        reply,
        (E.NOT_A_PARTICIPANT, E.WRONG_AUDIENCE),
        what="a message from outside the thread",
        requirement="STATE-PARTICIPANT",
    )


@REGISTRY.check(
    "BUY-NO-FETCH-STRANGER",
    title="The buyer fetches nothing from a party it has no relationship with",
    step=LifecycleStep.SEARCH,
    requirements=("NO-URL-FETCH", "STATE-PARTICIPANT"),
    roles=BUYER,
)
async def no_fetch_from_stranger(ctx: CheckContext) -> None:
    """An unsolicited offer from a vendor the buyer never contacted is refused,
    and the buyer does not fetch that vendor's discovery document or keys."""
    relationships = await _relationships(ctx)
    side = await vendor_side(ctx)
    stranger = await side.add_vendor("Unsolicited Motors")
    owner = relationships.vendors[0]
    rfi = relationships.rfis[owner.id]
    payload = stranger.compose(
        "offer", bodies.offer_body(ctx.session.clock.now()), to=str(rfi.field("from"))
    )
    reply = await stranger.deliver(
        payload, inbox=relationships.inbox_for(owner, ctx.session), note="unsolicited offer"
    )
    assert reply is not None
    ctx.require(
        not reply.accepted,
        "the unsolicited offer is refused",
        actual=reply.describe(),
        requirement="STATE-PARTICIPANT",
    )
    await asyncio.sleep(1.0)
    fetched = [
        exchange.request_headers.get("Host", "") + " " + exchange.url
        for exchange in ctx.session.transcript
        if exchange.url.startswith(stranger.id) and exchange.method == "GET"
    ]
    ctx.require(
        not fetched,
        "the buyer does not fetch anything from the unsolicited sender",
        expected="no request",
        actual=fetched or None,
        requirement="NO-URL-FETCH",
    )


@REGISTRY.check(
    "BUY-TERMS-RESPONSE",
    title="The buyer's terms response shares only what it accepts",
    step=LifecycleStep.WELCOME,
    requirements=("TERMS-DATA-AS-ACCEPTED",),
    roles=BUYER,
    needs=("sends:terms-response",),
)
async def terms_response(ctx: CheckContext) -> None:
    """A vendor presents terms; the buyer's response binds the assertion, accepts
    nothing that was not asked, and carries data only for accepted items."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    assertion = vendor.reply_to(
        rfi,
        "terms-assertion",
        bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=ctx.session.clock.now(),
            categories=["contact.email", "vehicle.model"],
        ),
    )
    token = sign(assertion, vendor.signer)
    reply = await vendor.deliver_token(
        token,
        to=str(rfi.field("from")),
        inbox=relationships.inbox_for(vendor, ctx.session),
        note="terms assertion",
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="the terms assertion")
    await prompt_buyer(
        ctx.session,
        "terms",
        {"vendor": vendor.id, "assertion": assertion["id"]},
        instruction=f"Make the buyer answer the terms of sharing from {vendor.id}",
    )
    response = await vendor.expect(
        lambda item: item.type == "terms-response",
        description="the buyer answers the terms assertion",
        within=prompt_wait(ctx.session),
        requirement="TERMS-DATA-AS-ACCEPTED",
    )
    ctx.expect(
        response.body.get("assertion") == message_ref(token, assertion["id"]),
        "the response binds the assertion's exact bytes",
        requirement="TERMS-DATA-AS-ACCEPTED",
    )
    asked = {"contact.email", "vehicle.model"}
    accepted = {str(item.get("item")) for item in response.body.get("accepted") or []}
    shared = {str(item.get("item")) for item in response.body.get("data") or []}
    ctx.expect(
        accepted <= asked,
        "the buyer accepts nothing that was not asked",
        expected=sorted(asked),
        actual=sorted(accepted),
        requirement="TERMS-DATA-AS-ACCEPTED",
    )
    ctx.expect(
        shared <= accepted,
        "data is shared only for accepted items",
        expected=sorted(accepted),
        actual=sorted(shared),
        requirement="TERMS-DATA-AS-ACCEPTED",
    )


@REGISTRY.check(
    "BUY-EXIT",
    title="The buyer exits with export and deletion requests",
    step=LifecycleStep.EXIT,
    requirements=("EXIT-NOTICE", "EXIT-FINAL", "REENGAGE-PREFERENCES"),
    roles=BUYER,
    needs=("sends:exit-notice",),
)
async def buyer_exit(ctx: CheckContext) -> None:
    """Prompted to exit, the buyer sends an exit notice; after the vendor's
    acknowledgement, a vendor offer outside the buyer's re-engagement
    preferences is refused."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[-1]
    rfi = relationships.rfis[vendor.id]
    await prompt_buyer(
        ctx.session,
        "exit",
        {"vendor": vendor.id},
        instruction=f"Make the buyer exit its relationship with {vendor.id}",
    )
    notice = await vendor.expect(
        lambda item: item.type == "exit-notice",
        description="the buyer sends the exit notice",
        within=prompt_wait(ctx.session),
        requirement="EXIT-NOTICE",
    )
    ctx.require(
        notice.ok,
        "the exit notice passes the receiving pipeline",
        actual=notice.error_detail,
        requirement="MSG-VALID",
    )
    body = notice.body
    ctx.expect(
        isinstance(body.get("export"), dict) and isinstance(body.get("deletion"), dict),
        "the notice states the export and deletion wanted",
        requirement="EXIT-NOTICE",
    )
    inbox = relationships.inbox_for(vendor, ctx.session)
    ack = vendor.reply_to(
        notice,
        "exit-acknowledgement",
        bodies.exit_acknowledgement_body(
            notice_ref=notice.ref(),
            relationship=str(notice.field("from")),
            now=ctx.session.clock.now(),
            held={},
        ),
    )
    reply = await vendor.deliver(ack, inbox=inbox, note="exit acknowledgement")
    if reply is not None:
        expect_accepted(ctx, reply, what="the exit acknowledgement")
    preferences = body.get("reengagement") or {}
    topics = set(preferences.get("topics") or [])
    outside = next(
        (
            t
            for t in ("promotions", "test-drive", "service-offers", "warranty", "new-models")
            if t not in topics
        ),
        None,
    )
    ctx.require(
        outside is not None or not preferences.get("allowed"),
        "the suite can find a topic outside the buyer's preferences",
    )
    offer = vendor.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now(), topic=outside))
    late = await vendor.deliver(offer, inbox=inbox, note="vendor offer after the exit")
    assert late is not None
    expect_rejection(
        ctx,
        late,
        (E.RELATIONSHIP_EXITED, E.REENGAGEMENT_NOT_PERMITTED),
        what="a vendor offer outside the re-engagement preferences",
        requirement="REENGAGE-PREFERENCES",
    )
