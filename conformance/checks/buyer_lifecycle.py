"""A buyer agent's behaviour through the lifecycle (``--role buyer``; the suite
plays the vendors).

The buyer acts for a person, so every step starts with a prompt: through
the test driver when the buyer lists one (``POST {driver}/rfi`` ...), else an
instruction to the operator. The vendors' side is scripted here.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import (
    BuyerRelationships,
    buyer_rfi_to_new_vendor,
    buyer_rfis,
    fresh_relationships,
    prompt_buyer,
    prompt_wait,
    record_instruction,
    reply_inbox,
)
from conformance.context import CheckContext, Session, fixture
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest, message_ref, sign
from conformance.peers.posting import InboxReply
from conformance.peers.vendors import SuiteVendor, require_accepted, vendor_side
from conformance.registry import REGISTRY
from conformance.target import advance_clock, call_driver_raw
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import LifecycleStep, Role

BUYER = (Role.BUYER,)
E = ErrorCode

#: How long the suite watches for a message the buyer must NOT send.
ABSENCE_WATCH_SECONDS = 2.0
#: How long the suite waits for the declines a buyer should send after accepting.
DECLINE_WATCH_SECONDS = 2.0


async def _relationships(ctx: CheckContext) -> BuyerRelationships:
    return await ctx.use(buyer_rfis)


async def _offer_from(
    ctx: CheckContext, relationships: BuyerRelationships, vendor: SuiteVendor, **offer: Any
) -> tuple[Inbound, dict[str, Any], bytes]:
    """The vendor answers the buyer's RFI with an offer; the buyer must take it."""
    rfi = relationships.rfis[vendor.id]
    # Binding: only a binding offer can be accepted (spec §7), so a buyer that
    # refuses to accept one refuses for the reason the check is about.
    offer.setdefault("basis", "binding")
    payload = vendor.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now(), **offer))
    token = sign(payload, vendor.signer)
    reply = await vendor.deliver_token(
        token,
        to=str(rfi.field("from")),
        inbox=relationships.delivery_inbox(vendor),
        note="offer answering the buyer's RFI",
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="an offer answering its RFI")
    return rfi, payload, token


@REGISTRY.check(
    "BUY-RFI-SENT",
    title="The buyer's RFIs are well formed and addressed",
    step=LifecycleStep.SEARCH,
    requirements=(
        "VRM-ENV-001",
        "VRM-FRESH-006",
        "VRM-ENV-009",
    ),
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
            requirement="VRM-ENV-001",
        )
        sender = rfi.field("from")
        ctx.expect(
            isinstance(sender, str) and sender.startswith("did:jwk:"),
            "the buyer writes as a did:jwk pseudonym",
            actual=sender,
            requirement="VRM-PRIV-001",
        )
        ctx.expect(
            rfi.field("to") == [vendor.id],
            "the RFI is addressed to that vendor only",
            expected=[vendor.id],
            actual=rfi.field("to"),
            requirement="VRM-FRESH-006",
        )
        ctx.expect(
            rfi.field("thread") == rfi.id,
            "the RFI starts its own thread",
            actual=rfi.field("thread"),
            requirement="VRM-ENV-007",
        )


@REGISTRY.check(
    "BUY-PSEUDONYMS-UNLINKABLE",
    title="The buyer's pseudonyms share nothing across vendors",
    step=LifecycleStep.SEARCH,
    requirements=(
        "VRM-PRIV-001",
        "VRM-PRIV-004",
    ),
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
            requirement="VRM-PRIV-001",
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
            requirement="VRM-PRIV-001",
        )
    inboxes = [reply_inbox(rfi) for rfi in rfis if reply_inbox(rfi) is not None]
    ctx.recommend(
        len(set(inboxes)) == len(inboxes),
        "no two vendors are given the same replyTo inbox (a shared inbox links them)",
        actual=inboxes,
        requirement="VRM-PRIV-004",
    )


def _identity_values(identity: Any) -> set[str]:
    """The personal details in an acceptance's ``identity`` (strings of 4+ characters)."""
    values: set[str] = set()
    if isinstance(identity, dict):
        for value in identity.values():
            values |= _identity_values(value)
    elif isinstance(identity, list):
        for value in identity:
            values |= _identity_values(value)
    elif isinstance(identity, str) and len(identity) >= 4:
        values.add(identity)
    return values


def _kid(inbound: Inbound) -> str:
    from conformance.peers.posting import header_kid

    return header_kid(inbound.token)


@REGISTRY.check(
    "BUY-RECEIPT",
    title="The buyer receipts an offer as the pseudonym it used",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-HTTP-004",),
    roles=BUYER,
)
async def buyer_receipt(ctx: CheckContext) -> None:
    """``202`` and a receipt signed by the RFI's pseudonym, binding the offer's bytes."""
    relationships = await _relationships(ctx)
    vendor = relationships.vendors[0]
    rfi, payload, token = await _offer_from(ctx, relationships, vendor)
    reply = vendor.sent[-1].reply
    if reply is None:
        ctx.skip("the buyer named no replyTo inbox: it collects offers from the mailbox")
    receipt = reply.receipt
    ctx.require(
        receipt is not None and receipt.ok and receipt.payload is not None,
        "the receipt passes the receiving pipeline",
        requirement="VRM-HTTP-004",
    )
    assert receipt is not None
    assert receipt.payload is not None
    ctx.expect(
        receipt.payload.get("from") == rfi.field("from"),
        "the receipt comes from the pseudonym the RFI came from",
        expected=rfi.field("from"),
        actual=receipt.payload.get("from"),
        requirement="VRM-PRIV-001",
    )
    regarding = (receipt.payload.get("body") or {}).get("regarding")
    ctx.expect(
        regarding == message_ref(token, payload["id"]),
        "the receipt binds the offer's id and digest",
        expected=message_ref(token, payload["id"]),
        actual=regarding,
        requirement="VRM-HTTP-004",
    )


@REGISTRY.check(
    "BUY-ACCEPT-BINDS-OFFER",
    title="The buyer's acceptance binds the exact offer",
    step=LifecycleStep.TRANSACT,
    requirements=(
        "VRM-MSG-010",
        "VRM-SIG-018",
        "VRM-PRIV-003",
        "VRM-MSG-013",
    ),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def accept_binds(ctx: CheckContext) -> None:
    """Prompted to accept an offer, the buyer sends an acceptance whose ``offer``
    is that offer's id and the digest of the exact bytes it received. The other
    vendor it asked, whose offer is still open, should then get a decline."""
    relationships = await fresh_relationships(
        ctx.session, "Conformance Chosen Motors", "Conformance Other Motors"
    )
    vendor, other = relationships.vendors
    await _offer_from(ctx, relationships, other, total="29500")
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
        requirement="VRM-MSG-010",
    )
    ctx.require(
        acceptance.ok,
        "the acceptance passes the receiving pipeline",
        actual=acceptance.error_detail,
        requirement="VRM-ENV-001",
    )
    expected = message_ref(token, payload["id"])
    ctx.expect(
        acceptance.body.get("offer") == expected,
        "the acceptance names the offer's id and the digest of its bytes",
        expected=expected,
        actual=acceptance.body.get("offer"),
        requirement="VRM-MSG-010",
    )
    ctx.expect(
        acceptance.field("parent") == payload["id"],
        "the acceptance answers the offer",
        expected=payload["id"],
        actual=acceptance.field("parent"),
        requirement="VRM-ENV-008",
    )
    ctx.expect(
        acceptance.field("thread") == rfi.field("thread"),
        "the acceptance stays in the RFI's thread",
        expected=rfi.field("thread"),
        actual=acceptance.field("thread"),
        requirement="VRM-ENV-007",
    )
    ctx.expect(
        acceptance.field("from") == rfi.field("from"),
        "the acceptance comes from the same pseudonym",
        requirement="VRM-PRIV-001",
    )
    disclosed = _identity_values(acceptance.body.get("identity"))
    earlier = [
        item
        for item in vendor.received()
        if item.order < acceptance.order and item.payload is not None
    ]
    leaks = sorted(
        {
            f"{item.type} {item.id}: {value}"
            for item in earlier
            for value in disclosed
            if value in json.dumps(item.payload, ensure_ascii=False)
        }
    )
    ctx.expect(
        not leaks,
        "no personal detail of the acceptance appeared in an earlier message to this vendor",
        expected=[],
        actual=leaks or None,
        requirement="VRM-PRIV-003",
    )
    await asyncio.sleep(DECLINE_WATCH_SECONDS)
    for other in relationships.vendors:
        if other is vendor:
            continue
        offered = {
            str(sent.payload.get("id"))
            for sent in other.sent
            if sent.payload.get("type") == "offer" and sent.taken
        }
        answered = {
            str(offer_id)
            for item in other.received()
            for offer_id in (
                item.body.get("offers") or []
                if item.type == "offer-decline"
                else [(item.body.get("offer") or {}).get("id")]
                if item.type == "offer-acceptance"
                else []
            )
        }
        if offered - answered:
            ctx.recommend(
                False,
                f"after accepting one offer, the buyer declines the open offers of {other.name}",
                expected=sorted(offered - answered),
                actual=f"no decline or acceptance of these; answered: {sorted(answered)}",
                requirement="VRM-MSG-013",
            )
        elif offered:
            ctx.recommend(
                True,
                f"the buyer closed every offer of {other.name}",
                requirement="VRM-MSG-013",
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
    requirements=(
        "VRM-MSG-006",
        "VRM-BUY-001",
    ),
    roles=BUYER,
    needs=("test-driver",),
)
async def no_accept_superseded(ctx: CheckContext) -> None:
    """Offer A, then offer B superseding A. Told to accept A, the buyer must
    refuse: no acceptance of A reaches the vendor."""
    relationships = await fresh_relationships(ctx.session, "Conformance Superseding Motors")
    vendor = relationships.vendors[0]
    _, first, first_token = await _offer_from(ctx, relationships, vendor, total="29000")
    replaced = message_ref(first_token, str(first["id"]))
    await _offer_from(ctx, relationships, vendor, total="28000", supersedes=replaced)
    instruction = {"vendor": vendor.id, "offer": first["id"]}
    record_instruction(ctx.session, "accept", instruction)
    status, _ = await call_driver_raw(ctx.session, "POST", "/accept", instruction)
    ctx.expect(
        status >= 400,
        "the test driver reports that the offer cannot be accepted",
        actual=status,
        requirement="VRM-MSG-006",
    )
    await _expect_no_acceptance(
        ctx, vendor, first["id"], "no acceptance of the superseded offer is sent", "VRM-MSG-006"
    )


@REGISTRY.check(
    "BUY-NO-ACCEPT-EXPIRED",
    title="The buyer never accepts an expired offer",
    step=LifecycleStep.TRANSACT,
    requirements=(
        "VRM-STATE-005",
        "VRM-CONF-004",
        "VRM-BUY-001",
    ),
    roles=BUYER,
    needs=("test-driver",),
    timeout=60,
)
async def no_accept_expired(ctx: CheckContext) -> None:
    """An offer valid for a minute; two minutes pass; told to accept it, the
    buyer must refuse."""
    relationships = await fresh_relationships(ctx.session, "Conformance Expiring Motors")
    vendor = relationships.vendors[0]
    _, offer, _ = await _offer_from(ctx, relationships, vendor, valid_for=timedelta(seconds=60))
    await advance_clock(ctx.session, 120)
    instruction = {"vendor": vendor.id, "offer": offer["id"]}
    record_instruction(ctx.session, "accept", instruction)
    status, _ = await call_driver_raw(ctx.session, "POST", "/accept", instruction)
    ctx.expect(
        status >= 400,
        "the test driver reports that the offer has expired",
        actual=status,
        requirement="VRM-STATE-005",
    )
    await _expect_no_acceptance(
        ctx, vendor, offer["id"], "no acceptance of the expired offer is sent", "VRM-STATE-005"
    )


@REGISTRY.check(
    "BUY-DECLINE",
    title="The buyer declines an offer with a decline message",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-MSG-012",),
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
        requirement="VRM-MSG-012",
    )
    ctx.expect(
        offer["id"] in (declined.body.get("offers") or []),
        "the decline names the offer",
        expected=offer["id"],
        actual=declined.body.get("offers"),
        requirement="VRM-MSG-012",
    )


@REGISTRY.check(
    "BUY-NOT-A-PARTICIPANT",
    title="The buyer refuses a vendor writing into another's thread",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-STATE-003",),
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
        requirement="VRM-STATE-003",
    )


@REGISTRY.check(
    "BUY-NO-FETCH-STRANGER",
    title="The buyer fetches nothing from a party it has no relationship with",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-SIG-008", "VRM-STATE-003"),
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
        requirement="VRM-STATE-003",
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
        requirement="VRM-SIG-008",
    )


@REGISTRY.check(
    "BUY-TERMS-RESPONSE",
    title="The buyer's terms response shares only what it accepts",
    step=LifecycleStep.WELCOME,
    requirements=(
        "VRM-MSG-018",
        "VRM-MSG-017",
    ),
    roles=BUYER,
    needs=("sends:terms-response",),
)
async def terms_response(ctx: CheckContext) -> None:
    """A vendor presents terms; the buyer's response binds the assertion, accepts
    nothing that was not asked, and carries data only for accepted items."""
    relationships = await fresh_relationships(ctx.session, "Conformance Terms Motors")
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
            # Published on the vendor's origin, so a buyer can match its digest (§6.8).
            terms=vendor.publish_terms(),
        ),
    )
    token = sign(assertion, vendor.signer)
    reply = await vendor.deliver_token(
        token,
        to=str(rfi.field("from")),
        inbox=relationships.delivery_inbox(vendor),
        note="terms assertion",
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="the terms assertion")
    if ctx.session.driver_url is not None:
        # A buyer may answer terms of sharing by its owner's standing policy,
        # without being told: a driver without a /terms instruction is fine.
        status, answer = await call_driver_raw(
            ctx.session, "POST", "/terms", {"vendor": vendor.id, "assertion": assertion["id"]}
        )
        ctx.require(
            status < 400 or status in (404, 405),
            "the test driver takes the terms instruction (or has none)",
            actual=f"{status} {answer}",
        )
    else:
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
        requirement="VRM-MSG-018",
    )
    ctx.expect(
        response.body.get("assertion") == message_ref(token, assertion["id"]),
        "the response binds the assertion's exact bytes",
        requirement="VRM-MSG-018",
    )
    asked = {"contact.email", "vehicle.model"}
    accepted = {str(item.get("item")) for item in response.body.get("accepted") or []}
    shared = {str(item.get("item")) for item in response.body.get("data") or []}
    ctx.expect(
        accepted <= asked,
        "the buyer accepts nothing that was not asked",
        expected=sorted(asked),
        actual=sorted(accepted),
        requirement="VRM-MSG-018",
    )
    ctx.expect(
        shared <= accepted,
        "data is shared only for accepted items",
        expected=sorted(accepted),
        actual=sorted(shared),
        requirement="VRM-MSG-018",
    )
    requested = {
        str(request["item"]): set(request["purposes"]) for request in assertion["body"]["requests"]
    }
    for item in response.body.get("accepted") or []:
        name = str(item.get("item"))
        purposes = set(item.get("purposes") or [])
        ctx.expect(
            bool(purposes) and purposes <= requested.get(name, set()),
            f"the consent for {name} lists purposes, only among those requested",
            expected=sorted(requested.get(name, set())),
            actual=sorted(purposes),
            requirement="VRM-MSG-017",
        )


@dataclass(slots=True)
class BuyerExit:
    """The buyer's exit from one vendor's relationship, acknowledged by the vendor."""

    relationships: BuyerRelationships
    vendor: SuiteVendor
    notice: Inbound
    acknowledgement: InboxReply | None


@fixture("buyer-exit")
async def buyer_exit_done(session: Session) -> BuyerExit:
    """The buyer is told to exit its relationship with the last vendor; the
    vendor acknowledges with an (empty) export and a deletion receipt."""
    relationships = await session.use(buyer_rfis)
    vendor = relationships.vendors[-1]
    await prompt_buyer(
        session,
        "exit",
        {"vendor": vendor.id},
        instruction=f"Make the buyer exit its relationship with {vendor.id}",
    )
    notice = await vendor.expect(
        lambda item: item.type == "exit-notice",
        description="the buyer sends the exit notice",
        within=prompt_wait(session),
        requirement="VRM-MSG-023",
    )
    ack = vendor.reply_to(
        notice,
        "exit-acknowledgement",
        bodies.exit_acknowledgement_body(
            notice_ref=notice.ref(),
            relationship=str(notice.field("from")),
            now=session.clock.now(),
            held={},
        ),
    )
    reply = await vendor.deliver(
        ack, inbox=relationships.delivery_inbox(vendor), note="exit acknowledgement"
    )
    return BuyerExit(relationships, vendor, notice, reply)


@REGISTRY.check(
    "BUY-EXIT",
    title="The buyer exits with export and deletion requests",
    step=LifecycleStep.EXIT,
    requirements=(
        "VRM-MSG-023",
        "VRM-STATE-007",
        "VRM-STATE-009",
        "VRM-STATE-010",
    ),
    roles=BUYER,
    needs=("sends:exit-notice",),
)
async def buyer_exit(ctx: CheckContext) -> None:
    """Prompted to exit, the buyer sends an exit notice; after the vendor's
    acknowledgement, a vendor offer outside the buyer's re-engagement
    preferences is refused."""
    done = await ctx.use(buyer_exit_done)
    vendor, notice = done.vendor, done.notice
    rfi = done.relationships.rfis[vendor.id]
    ctx.require(
        notice.ok,
        "the exit notice passes the receiving pipeline",
        actual=notice.error_detail,
        requirement="VRM-ENV-001",
    )
    body = notice.body
    ctx.expect(
        isinstance(body.get("export"), dict) and isinstance(body.get("deletion"), dict),
        "the notice states the export and deletion wanted",
        requirement="VRM-MSG-023",
    )
    if done.acknowledgement is not None:
        expect_accepted(ctx, done.acknowledgement, what="the exit acknowledgement")
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
    inbox = done.relationships.inbox_for(vendor, ctx.session)
    offer = vendor.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now(), topic=outside))
    late = await vendor.deliver(offer, inbox=inbox, note="vendor offer after the exit")
    ctx.require(late is not None, "the buyer has an inbox the suite can POST to")
    assert late is not None
    expect_rejection(
        ctx,
        late,
        (E.REENGAGEMENT_NOT_PERMITTED, E.RELATIONSHIP_EXITED),
        what="a vendor offer outside the re-engagement preferences",
        requirement="VRM-STATE-010",
    )


@REGISTRY.check(
    "BUY-REENGAGE-HISTORY",
    title="After an exit the buyer keeps the history a re-engagement cites",
    step=LifecycleStep.REENGAGEMENT,
    requirements=("VRM-BUY-002",),
    roles=BUYER,
    needs=("test-driver", "sends:exit-notice"),
)
async def reengage_with_history(ctx: CheckContext) -> None:
    """Told to send an RFI to the vendor it exited, the buyer re-engages: each
    ``history`` reference it cites is a message of the old relationship, with
    the digest of its exact bytes (the buyer kept them, spec §7)."""
    done = await ctx.use(buyer_exit_done)
    vendor = done.vendor
    before = {item.id for item in vendor.received()}
    await prompt_buyer(
        ctx.session,
        "rfi",
        {"vendors": [vendor.id]},
        instruction=f"Make the buyer send a new personal RFI to {vendor.id}",
    )
    rfi = await vendor.expect(
        lambda item: item.type == "personal-rfi" and item.id not in before,
        description="the buyer sends the re-engagement RFI",
        within=prompt_wait(ctx.session),
        requirement="VRM-BUY-002",
    )
    history = rfi.body.get("history") or []
    ctx.recommend(
        bool(history),
        "the re-engagement RFI cites the kept history",
        actual=history or None,
        requirement="VRM-BUY-002",
    )
    exchanged: dict[str, set[str]] = {}
    for item in vendor.received():
        if item.id is not None:
            exchanged.setdefault(item.id, set()).add(item.digest)
    for sent in vendor.sent:
        if isinstance(sent.payload.get("id"), str):
            exchanged.setdefault(sent.payload["id"], set()).add(digest(sent.token))
    for reference in history:
        known = exchanged.get(str(reference.get("id")) if isinstance(reference, dict) else "")
        ctx.expect(
            known is not None and reference.get("digest") in known,
            "a history reference names a message of the old relationship by its exact digest",
            actual=reference,
            requirement="VRM-BUY-002",
        )


@REGISTRY.check(
    "BUY-RFP-COPIES",
    title="An RFP to several vendors is the same RFP, counted",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-MSG-003",),
    roles=BUYER,
    needs=("test-driver", "sends:personal-rfp"),
)
async def rfp_copies(ctx: CheckContext) -> None:
    """Told to send one personal RFP to two vendors, the buyer sends each a copy
    with the same requirements, stating two copies in ``recipientCount``."""
    relationships = await _relationships(ctx)
    vendors = relationships.vendors[:2]
    known = {vendor.id: {item.id for item in vendor.received()} for vendor in vendors}
    await prompt_buyer(
        ctx.session,
        "rfp",
        {"vendors": [vendor.id for vendor in vendors]},
        instruction="Make the buyer send one personal RFP to:\n"
        + "\n".join(f"  {vendor.id}" for vendor in vendors),
    )
    copies: list[Inbound] = []
    for vendor in vendors:
        seen = known[vendor.id]

        def new_rfp(item: Inbound, seen: set[str | None] = seen) -> bool:
            return item.type == "personal-rfp" and item.id not in seen

        copies.append(
            await vendor.expect(
                new_rfp,
                description=f"the buyer sends the RFP to {vendor.name}",
                within=prompt_wait(ctx.session),
                requirement="VRM-MSG-003",
            )
        )
    # Every member VRM-MSG-003 names, not only the first: a copy with another
    # budget or responseBy is another request.
    for member in (
        "requirements",
        "budget",
        "financing",
        "delivery",
        "tradeIn",
        "conditions",
        "responseBy",
    ):
        values = [copy.body.get(member) for copy in copies]
        ctx.expect(
            all(value == values[0] for value in values),
            f"every copy carries the same {member}",
            actual=values,
            requirement="VRM-MSG-003",
        )
    counts = [copy.body.get("recipientCount") for copy in copies]
    ctx.expect(
        all(count == len(copies) for count in counts),
        "every copy states the number of copies",
        expected=len(copies),
        actual=counts,
        requirement="VRM-MSG-003",
    )


@REGISTRY.check(
    "BUY-TERMS-SIGNATURE",
    title="The buyer refuses a terms assertion whose signature does not verify",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-BUY-003",),
    roles=BUYER,
)
async def terms_signature(ctx: CheckContext) -> None:
    """A terms assertion with one bit of its signature flipped is refused with
    ``bad-signature``: the buyer verifies before it presents terms to its owner."""
    from conformance.forge import tamper_signature

    relationships = await _relationships(ctx)
    vendor = relationships.vendors[1 % len(relationships.vendors)]
    rfi = relationships.rfis[vendor.id]
    assertion = vendor.reply_to(
        rfi,
        "terms-assertion",
        bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=ctx.session.clock.now(),
            categories=["contact.email"],
        ),
    )
    reply = await vendor.deliver_token(
        tamper_signature(sign(assertion, vendor.signer)),
        to=str(rfi.field("from")),
        inbox=relationships.inbox_for(vendor, ctx.session),
        note="forged: terms assertion with a tampered signature",
    )
    ctx.require(reply is not None, "the buyer has an inbox the suite can POST to")
    assert reply is not None
    expect_rejection(
        ctx,
        reply,
        E.BAD_SIGNATURE,
        what="a terms assertion with a tampered signature",
        requirement="VRM-BUY-003",
    )


@dataclass(slots=True)
class BuyerServicing:
    """A relationship the buyer took to servicing with one of the suite's vendors."""

    vendor: SuiteVendor
    rfi: Inbound
    inbox: str | None
    terms_response: Inbound


@fixture("buyer-servicing")
async def buyer_servicing(session: Session) -> BuyerServicing:
    """A vendor of its own: the buyer's RFI, an offer, the acceptance it is told
    to send, the deal confirmation, terms of sharing and the buyer's answer."""
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Service Motors")
    inbox = reply_inbox(rfi)
    offer = vendor.reply_to(rfi, "offer", bodies.offer_body(session.clock.now(), basis="binding"))
    offer_token = sign(offer, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            offer_token, to=str(rfi.field("from")), inbox=inbox, note="offer"
        ),
        "the buyer takes the offer",
    )
    await prompt_buyer(
        session,
        "accept",
        {"vendor": vendor.id, "offer": offer["id"]},
        instruction=f"Make the buyer accept offer {offer['id']} from {vendor.id}",
    )
    acceptance = await vendor.expect(
        lambda item: item.type == "offer-acceptance",
        description="the buyer sends the acceptance",
        within=prompt_wait(session),
    )
    confirmation = vendor.reply_to(
        acceptance,
        "deal-confirmation",
        bodies.deal_confirmation_body(
            offer_ref=message_ref(offer_token, offer["id"]),
            acceptance_id=str(acceptance.id),
            total=offer["body"]["price"]["total"],
            now=session.clock.now(),
        ),
    )
    require_accepted(
        await vendor.deliver(confirmation, inbox=inbox, note="deal confirmation"),
        "the buyer takes the deal confirmation",
    )
    assertion = vendor.reply_to(
        acceptance,
        "terms-assertion",
        bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=session.clock.now(),
            categories=["contact.email"],
            terms=vendor.publish_terms(),
        ),
    )
    require_accepted(
        await vendor.deliver(assertion, inbox=inbox, note="terms assertion"),
        "the buyer takes the terms assertion",
    )
    if session.driver_url is not None:
        # Answering terms may be the buyer's standing policy (no instruction needed).
        record_instruction(session, "terms", {"vendor": vendor.id})
        await call_driver_raw(
            session, "POST", "/terms", {"vendor": vendor.id, "assertion": assertion["id"]}
        )
    response = await vendor.expect(
        lambda item: item.type == "terms-response",
        description="the buyer answers the terms of sharing",
        within=prompt_wait(session),
    )
    return BuyerServicing(vendor, rfi, inbox, response)


@REGISTRY.check(
    "BUY-SERVICE-RESPONSE",
    title="The buyer's service response grants data only as it accepts",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-MSG-021",),
    roles=BUYER,
    needs=("sends:service-response",),
)
async def service_response(ctx: CheckContext) -> None:
    """After the deal and the welcome, the vendor proposes a service and asks for
    scoped data; the buyer's answer (by its owner's policy) binds the notice's
    exact bytes and carries data only for accepted requests."""
    servicing = await ctx.use(buyer_servicing)
    vendor = servicing.vendor
    allowed = (servicing.terms_response.body.get("notificationPreferences") or {}).get(
        "allowed"
    ) or []
    if not allowed:
        ctx.skip("the buyer allows no notification category, so no notice may be sent")
    notice = vendor.reply_to(
        servicing.rfi,
        "service-notice",
        bodies.service_notice_body(category=str(allowed[0]), data_requests=True),
    )
    token = sign(notice, vendor.signer)
    reply = await vendor.deliver_token(
        token,
        to=str(servicing.rfi.field("from")),
        inbox=servicing.inbox,
        note="service notice with a data request",
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="the service notice")
    if ctx.session.driver_url is not None:
        # The owner decides how to answer; a driver may relay that decision
        # (POST /service), or the buyer answers by its standing policy.
        instruction = {"vendor": vendor.id, "notice": notice["id"]}
        record_instruction(ctx.session, "service", instruction)
        await call_driver_raw(ctx.session, "POST", "/service", instruction)
    try:
        response = await vendor.expect(
            lambda item: item.type == "service-response" and item.field("parent") == notice["id"],
            description="the buyer answers the service notice",
        )
    except CheckFailed:
        ctx.skip(
            "the buyer did not answer the service notice within the reply timeout "
            "(it answers only when its owner decides)"
        )
    ctx.expect(
        response.body.get("notice") == message_ref(token, notice["id"]),
        "the response binds the notice's exact bytes",
        expected=message_ref(token, notice["id"]),
        actual=response.body.get("notice"),
        requirement="VRM-MSG-021",
    )
    accepted = {str(item) for item in response.body.get("accepted") or []}
    granted = {str(item.get("item")) for item in response.body.get("data") or []}
    asked = {"travel.dates"}
    ctx.expect(
        granted <= accepted & asked,
        "data is granted only for accepted requests",
        expected=sorted(accepted & asked),
        actual=sorted(granted),
        requirement="VRM-MSG-021",
    )
