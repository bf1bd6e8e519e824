"""A vendor's behaviour through the lifecycle (``--role vendor``; the suite is the buyer).

Positive checks judge the shared scenarios of :mod:`conformance.checks.scenarios`;
negative ones (illegal transitions) run in relationships of their own and
end by showing that the rejection changed nothing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from conformance.checks._support import (
    CANARY_GRACE_SECONDS,
    expect_accepted,
    expect_rejection,
)
from conformance.checks.scenarios import (
    VendorThread,
    acceptable_offer,
    await_terms,
    disclosed_categories,
    run_deal,
    run_welcome,
    vendor_deal,
    vendor_exit,
    vendor_negotiation,
    vendor_rfi,
    vendor_welcome,
)
from conformance.context import CheckContext
from conformance.forge import canonical_json
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.issuer import TestIssuer
from conformance.peers.messages import digest, message_ref, new_message_id
from conformance.registry import REGISTRY
from conformance.target import advance_clock, driver_state
from conformance.transcript import peek_jws_payload
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import EXPORTS_PATH_PREFIX
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
E = ErrorCode


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _amount(money: Any) -> Decimal | None:
    try:
        return Decimal(str(money["amount"]))
    except (KeyError, TypeError, InvalidOperation):
        return None


def _judge_offer_answer(
    ctx: CheckContext,
    thread: VendorThread,
    offer: Inbound,
    request: dict[str, Any],
    *,
    requirement: str,
) -> None:
    """An offer answering an RFI/RFP: in its thread, in time, within the budget."""
    ctx.require(
        offer.ok,
        "the offer passes the receiving pipeline",
        actual=offer.error,
        requirement="VRM-ENV-001",
    )
    ctx.expect(
        offer.field("thread") == thread.thread,
        "the offer is in the request's thread",
        expected=thread.thread,
        actual=offer.field("thread"),
        requirement="VRM-ENV-007",
    )
    ctx.expect(
        offer.field("parent") == request["id"],
        "the offer's parent is the request",
        expected=request["id"],
        actual=offer.field("parent"),
        requirement="VRM-ENV-008",
    )
    response_by = _parse_time(request["body"].get("responseBy"))
    created = _parse_time(offer.field("created"))
    ctx.expect(
        response_by is not None
        and offer.received_at <= response_by
        and (created is None or created <= response_by),
        "the offer arrives before the request's responseBy",
        expected=request["body"].get("responseBy"),
        actual=offer.field("created"),
        requirement=requirement,
    )
    valid_until = _parse_time(offer.body.get("validUntil"))
    ctx.expect(
        valid_until is not None and valid_until > offer.received_at,
        "the offer is still valid when it arrives",
        actual=offer.body.get("validUntil"),
        requirement="VRM-MSG-008",
    )
    budget = request["body"]["budget"]
    total = (offer.body.get("price") or {}).get("total")
    amount, ceiling = _amount(total), _amount(budget["max"])
    same_currency = isinstance(total, dict) and total.get("currency") == budget["max"]["currency"]
    ctx.expect(
        amount is not None and ceiling is not None and same_currency and amount <= ceiling,
        "the offer's total is within the buyer's budget",
        expected=f"<= {budget['max']['amount']} {budget['max']['currency']}",
        actual=total,
        requirement="VRM-MSG-005",
    )


@REGISTRY.check(
    "VEN-RFI-RECEIPT",
    title="The vendor receipts a personal RFI",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-HTTP-004",),
    roles=VENDOR,
)
async def rfi_receipt(ctx: CheckContext) -> None:
    """``202`` with a signed ``receipt`` whose ``regarding`` binds the RFI's exact bytes."""
    thread = await ctx.use(vendor_rfi)
    reply = thread.rfi.reply
    assert reply is not None  # personas always POST
    expect_accepted(ctx, reply, what="a personal RFI")
    receipt = reply.receipt
    assert receipt is not None
    assert receipt.payload is not None
    ctx.require(
        receipt.payload.get("type") == "receipt",
        "the receipt is a receipt message",
        actual=receipt.payload.get("type"),
        requirement="VRM-HTTP-004",
    )
    regarding = receipt.payload.get("body", {}).get("regarding")
    expected = message_ref(thread.rfi.token, thread.thread)
    ctx.require(
        regarding == expected,
        "the receipt names the RFI's id and digest",
        expected=expected,
        actual=regarding,
        requirement="VRM-HTTP-004",
    )


@REGISTRY.check(
    "VEN-RFI-OFFER",
    title="The vendor answers an RFI in time and within budget",
    step=LifecycleStep.SEARCH,
    requirements=(
        "VRM-MSG-002",
        "VRM-MSG-005",
        "VRM-ENV-008",
        "VRM-MSG-008",
    ),
    roles=VENDOR,
)
async def rfi_offer(ctx: CheckContext) -> None:
    """An offer in the RFI's thread, before ``responseBy``, at most the budget's maximum."""
    thread = await ctx.use(vendor_rfi)
    _judge_offer_answer(
        ctx, thread, thread.offers[0], thread.rfi.payload, requirement="VRM-MSG-002"
    )


@REGISTRY.check(
    "VEN-RFP-OFFER",
    title="The vendor answers an RFP in time and within budget",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-MSG-004", "VRM-MSG-005"),
    roles=VENDOR,
    needs=("accepts:personal-rfp",),
)
async def rfp_offer(ctx: CheckContext) -> None:
    """The RFP (same thread, parent the RFI) is answered by a new offer."""
    thread = await ctx.use(vendor_negotiation)
    assert thread.rfp is not None
    _judge_offer_answer(
        ctx, thread, thread.offers[1], thread.rfp.payload, requirement="VRM-MSG-004"
    )


@REGISTRY.check(
    "VEN-COUNTER-SUPERSEDES",
    title="A counter-offer supersedes the vendor's offer",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-MSG-006",),
    roles=VENDOR,
)
async def counter_supersedes(ctx: CheckContext) -> None:
    """After the buyer's counter-offer, accepting the offer it superseded is
    refused (``offer-superseded``); any new vendor offer names what it supersedes."""
    thread = await ctx.use(vendor_negotiation)
    persona = thread.persona
    superseded = thread.offers[-1]
    acceptance = persona.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(superseded.ref()),
        thread=thread.thread,
        parent=str(superseded.id),
    )
    reply = await persona.send(acceptance, note="accepting a superseded offer")
    expect_rejection(
        ctx,
        reply,
        E.OFFER_SUPERSEDED,
        what="the acceptance of a superseded offer",
        requirement="VRM-MSG-006",
    )
    # What a revision may supersede: an offer of the thread, by id and by the
    # digest of its exact bytes (VRM-MSG-006: "by a messageRef carrying that
    # offer's digest"), so both clauses are probed, not only the id.
    known = {str(offer.id): offer.digest for offer in thread.offers}
    assert thread.counter is not None
    known[str(thread.counter.payload["id"])] = digest(thread.counter.token)
    earlier = {o.id for o in thread.offers}
    try:
        await persona.expect(
            lambda item: item.type == "offer" and item.id not in earlier,
            description="the vendor revises its offer after the counter",
            within=ctx.session.options.reply_timeout,
        )
    except CheckFailed:
        ctx.note("the vendor made no new offer after the counter: no revision to judge")
    for offer in persona.received():
        if offer.type == "offer" and offer.id not in earlier:
            named = offer.body.get("supersedes")
            named_id = named.get("id") if isinstance(named, dict) else None
            ctx.expect(
                named_id in known,
                "a vendor offer after the counter names the offer it supersedes",
                expected=sorted(known),
                actual=named,
                requirement="VRM-MSG-006",
            )
            if named_id in known:
                assert isinstance(named, dict)
                ctx.expect(
                    named.get("digest") == known[str(named_id)],
                    "the revision names what it supersedes with the digest of its exact bytes",
                    expected=known[str(named_id)],
                    actual=named.get("digest"),
                    requirement="VRM-MSG-006",
                )


@REGISTRY.check(
    "VEN-DEAL-BINDS-OFFER",
    title="The deal confirmation binds exactly the accepted offer",
    step=LifecycleStep.TRANSACT,
    requirements=(
        "VRM-MSG-010",
        "VRM-MSG-014",
        "VRM-SIG-018",
    ),
    roles=VENDOR,
)
async def deal_binds(ctx: CheckContext) -> None:
    """``deal.offer`` is the accepted offer's id *and* digest, ``deal.acceptance``
    the acceptance's id, ``deal.total`` the offer's total; parent the acceptance."""
    thread = await ctx.use(vendor_deal)
    assert thread.deal is not None
    assert thread.acceptance
    assert thread.accepted_offer
    deal = thread.deal
    ctx.require(
        deal.ok,
        "the deal confirmation passes the receiving pipeline",
        actual=deal.error,
        requirement="VRM-ENV-001",
    )
    body = deal.body.get("deal") or {}
    offer = thread.accepted_offer
    ctx.expect(
        body.get("offer") == offer.ref(),
        "deal.offer is the accepted offer's exact ref",
        expected=offer.ref(),
        actual=body.get("offer"),
        requirement="VRM-MSG-010",
    )
    acceptance_id = thread.acceptance.payload["id"]
    ctx.expect(
        body.get("acceptance") == acceptance_id,
        "deal.acceptance is the acceptance's id",
        expected=acceptance_id,
        actual=body.get("acceptance"),
        requirement="VRM-MSG-010",
    )
    total = (offer.body.get("price") or {}).get("total")
    ctx.expect(
        body.get("total") == total,
        "deal.total equals the offer's total",
        expected=total,
        actual=body.get("total"),
        requirement="VRM-MSG-010",
    )
    ctx.expect(
        deal.field("parent") == acceptance_id,
        "the confirmation answers the acceptance",
        expected=acceptance_id,
        actual=deal.field("parent"),
        requirement="VRM-ENV-008",
    )


async def _fresh_offer(ctx: CheckContext) -> tuple[Persona, str, Inbound]:
    """A new relationship up to an offer that may be accepted (a binding one)."""
    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    reply = await persona.send(rfi, note="a personal RFI")
    expect_accepted(ctx, reply, what="a personal RFI")
    offer = await persona.expect(
        lambda item: item.type == "offer",
        description="the vendor answers the RFI with an offer",
        requirement="VRM-MSG-002",
    )
    thread = VendorThread(persona, persona.sent[-1])
    return persona, str(rfi["id"]), await acceptable_offer(persona, thread, offer)


async def _accept(
    persona: Persona, thread: str, offer_ref: dict[str, str], parent: str, note: str, **fields: Any
) -> Any:
    acceptance = persona.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(offer_ref),
        thread=thread,
        parent=parent,
        **fields,
    )
    return acceptance, await persona.send(acceptance, note=note)


@REGISTRY.check(
    "VEN-ACCEPT-DIGEST",
    title="An acceptance whose digest does not match is refused",
    step=LifecycleStep.TRANSACT,
    requirements=(
        "VRM-MSG-010",
        "VRM-STATE-002",
        "VRM-SIG-018",
        "VRM-SIG-027",
    ),
    roles=VENDOR,
)
async def accept_wrong_digest(ctx: CheckContext) -> None:
    """The offer's id with another digest: the buyer did not see these bytes, so
    nothing is bound (``reference-mismatch``); the correct acceptance still works."""
    persona, thread, offer = await _fresh_offer(ctx)
    wrong = {"id": str(offer.id), "digest": "sha-256:" + "B" * 43}
    acceptance, reply = await _accept(
        persona, thread, wrong, str(offer.id), "acceptance with a wrong digest"
    )
    expect_rejection(
        ctx,
        reply,
        E.REFERENCE_MISMATCH,
        what="an acceptance of other bytes",
        requirement="VRM-SIG-027",
    )
    _, follow = await _accept(
        persona,
        thread,
        offer.ref(),
        str(offer.id),
        "the correct acceptance",
        message_id=acceptance["id"],
    )
    expect_accepted(ctx, follow, what="the correct acceptance after the refused one")


@REGISTRY.check(
    "VEN-ACCEPT-UNKNOWN",
    title="Accepting an unknown offer is refused",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-STATE-004",),
    roles=VENDOR,
)
async def accept_unknown(ctx: CheckContext) -> None:
    """An acceptance naming an offer the vendor never made: ``unknown-offer``."""
    persona, thread, offer = await _fresh_offer(ctx)
    ghost = {"id": new_message_id(), "digest": offer.digest}
    acceptance, reply = await _accept(
        persona, thread, ghost, str(offer.id), "acceptance of an unknown offer"
    )
    expect_rejection(
        ctx,
        reply,
        E.UNKNOWN_OFFER,
        what="an acceptance of an unknown offer",
        requirement="VRM-STATE-004",
    )
    _, follow = await _accept(
        persona,
        thread,
        offer.ref(),
        str(offer.id),
        "the legal acceptance",
        message_id=acceptance["id"],
    )
    expect_accepted(ctx, follow, what="the legal acceptance after the refused one")


@REGISTRY.check(
    "VEN-ACCEPT-EXPIRED",
    title="Accepting an expired offer is refused",
    step=LifecycleStep.TRANSACT,
    requirements=(
        "VRM-STATE-005",
        "VRM-CONF-004",
    ),
    roles=VENDOR,
    timeout=60,
)
async def accept_expired(ctx: CheckContext) -> None:
    """Time passes beyond the offer's ``validUntil`` (test driver clock, or a real
    wait); the acceptance is then ``offer-expired``."""
    persona, thread, offer = await _fresh_offer(ctx)
    valid_until = _parse_time(offer.body.get("validUntil"))
    ctx.require(
        valid_until is not None,
        "the offer has a validUntil",
        actual=offer.body.get("validUntil"),
        requirement="VRM-MSG-008",
    )
    assert valid_until is not None
    wait = (valid_until - ctx.session.clock.now()).total_seconds() + 120
    ctx.extend_deadline(wait if ctx.session.driver_url is None else 0)
    await advance_clock(ctx.session, max(wait, 1))
    _, reply = await _accept(
        persona, thread, offer.ref(), str(offer.id), "acceptance after validUntil"
    )
    expect_rejection(
        ctx,
        reply,
        E.OFFER_EXPIRED,
        what="the acceptance of an expired offer",
        requirement="VRM-STATE-005",
    )


@REGISTRY.check(
    "VEN-ACCEPT-TWICE",
    title="An offer cannot be accepted twice",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-STATE-006",),
    roles=VENDOR,
)
async def accept_twice(ctx: CheckContext) -> None:
    """A second acceptance (a new message) of an offer already accepted: ``offer-closed``."""
    persona, thread, offer = await _fresh_offer(ctx)
    _, first = await _accept(persona, thread, offer.ref(), str(offer.id), "acceptance")
    expect_accepted(ctx, first, what="the first acceptance")
    _, second = await _accept(persona, thread, offer.ref(), str(offer.id), "second acceptance")
    expect_rejection(
        ctx, second, E.OFFER_CLOSED, what="a second acceptance", requirement="VRM-STATE-006"
    )


@REGISTRY.check(
    "VEN-NOT-A-PARTICIPANT",
    title="A party outside the thread cannot act in it",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-STATE-003",),
    roles=VENDOR,
)
async def not_a_participant(ctx: CheckContext) -> None:
    """A second pseudonym accepts the first one's offer, in the first one's
    thread: ``not-a-participant``; the rightful buyer can still accept."""
    persona, thread, offer = await _fresh_offer(ctx)
    intruder = (await buyer_side(ctx)).new_persona()
    _acceptance, reply = await _accept(
        intruder, thread, offer.ref(), str(offer.id), "acceptance by a stranger to the thread"
    )
    expect_rejection(
        ctx,
        reply,
        (E.NOT_A_PARTICIPANT,),
        what="a stranger's acceptance",
        requirement="VRM-STATE-003",
    )
    _, follow = await _accept(
        persona, thread, offer.ref(), str(offer.id), "the rightful acceptance"
    )
    expect_accepted(ctx, follow, what="the rightful buyer's acceptance afterwards")


@REGISTRY.check(
    "VEN-ATTESTATION-UNTRUSTED",
    title="An attestation from an untrusted issuer is refused",
    step=LifecycleStep.SEARCH,
    requirements=(
        "VRM-ATT-002",
        "VRM-ATT-004",
    ),
    roles=VENDOR,
)
async def untrusted_attestation(ctx: CheckContext) -> None:
    """An ability-to-pay attestation signed by an issuer nobody configured, whose
    id is a URL of the suite's: ``untrusted-issuer``, without fetching that URL
    (trust is configuration, spec §10.3); the same RFI without it is accepted."""
    side = await buyer_side(ctx)
    persona = side.new_persona()
    canary_url, nonce = side.server.new_canary()
    stranger = TestIssuer.ephemeral(canary_url)
    attestation = stranger.attest(
        kind="ability-to-pay",
        subject=persona.id,
        audience=[side.target_id],
        now=persona.now(),
        claims={"range": {"max": bodies.money("30000")}},
    )
    rfi = persona.compose(
        "personal-rfi", bodies.personal_rfi_body(persona.now(), attestations=[attestation])
    )
    reply = await persona.send(rfi, note="RFI with an untrusted attestation")
    expect_rejection(
        ctx,
        reply,
        E.UNTRUSTED_ISSUER,
        what="an untrusted issuer's attestation",
        requirement="VRM-ATT-002",
    )
    await asyncio.sleep(CANARY_GRACE_SECONDS)
    hits = side.server.canary_hits.get(nonce, [])
    ctx.require(
        not hits,
        "the vendor does not fetch keys from the URL the unknown issuer is named by",
        expected="no request to the issuer's URL",
        actual=hits or None,
        requirement="VRM-ATT-004",
    )
    legal = persona.compose(
        "personal-rfi", bodies.personal_rfi_body(persona.now()), message_id=rfi["id"]
    )
    expect_accepted(
        ctx,
        await persona.send(legal, note="the RFI without it"),
        what="the same RFI without the attestation",
    )


@REGISTRY.check(
    "VEN-TERMS-COMPLETE",
    title="The terms assertion is complete",
    step=LifecycleStep.WELCOME,
    requirements=(
        "VRM-MSG-015",
        "VRM-MSG-016",
        "VRM-VEN-001",
    ),
    roles=VENDOR,
    needs=("sends:terms-assertion",),
)
async def terms_complete(ctx: CheckContext) -> None:
    """Terms reference with digest, the asserting party, every request with
    purposes and retention, at least one ``willNotDo`` commitment, a future
    ``validUntil``."""
    thread = await ctx.use(vendor_welcome)
    terms = thread.terms
    assert terms is not None
    ctx.require(
        terms.ok,
        "the terms assertion passes the receiving pipeline",
        actual=terms.error,
        requirement="VRM-ENV-001",
    )
    body = terms.body
    reference = body.get("terms") or {}
    ctx.expect(
        all(reference.get(k) for k in ("id", "version", "url", "digest")),
        "the terms reference names id, version, url and digest",
        actual=reference,
        requirement="VRM-MSG-015",
    )
    party = body.get("party") or {}
    ctx.expect(
        party.get("id") == terms.field("from"),
        "the asserting party is the sender, signing with its own key",
        expected=terms.field("from"),
        actual=party.get("id"),
        requirement="VRM-MSG-016",
    )
    on_behalf_of = body.get("onBehalfOf")
    ctx.expect(
        on_behalf_of is None or (isinstance(on_behalf_of, str) and on_behalf_of != party.get("id")),
        "onBehalfOf, when present, names another party than the one asserting",
        actual=on_behalf_of,
        requirement="VRM-MSG-016",
    )
    for item in body.get("requests") or []:
        ctx.expect(
            bool(item.get("purposes")) and bool((item.get("retention") or {}).get("period")),
            f"the request for {item.get('item')} states purposes and a retention period",
            actual=item,
            requirement="VRM-MSG-015",
        )
    commitments = body.get("commitments") or {}
    ctx.expect(
        bool(commitments.get("willNotDo")),
        "the assertion commits to what it will not do",
        actual=commitments,
        requirement="VRM-MSG-015",
    )
    valid_until = _parse_time(body.get("validUntil"))
    ctx.expect(
        valid_until is not None and valid_until > terms.received_at,
        "the assertion is valid when it arrives",
        actual=body.get("validUntil"),
        requirement="VRM-MSG-015",
    )


def _held_for(state: dict[str, Any], pseudonym: str) -> dict[str, Any] | None:
    """The state summary's entry for one relationship, if the summary has one."""
    relationships = state.get("relationships")
    if isinstance(relationships, dict):
        entry = relationships.get(pseudonym)
        return entry if isinstance(entry, dict) else None
    if isinstance(relationships, list):
        for entry in relationships:
            if isinstance(entry, dict) and pseudonym in (
                entry.get("peer"),
                entry.get("id"),
                entry.get("party"),
            ):
                return entry
    return None


def _categories(entry: dict[str, Any] | None) -> set[str]:
    if entry is None:
        return set()
    data = entry.get("data") or entry.get("dataHeld") or {}
    if isinstance(data, dict):
        return set(data)
    if isinstance(data, list):
        return {str(item.get("item") if isinstance(item, dict) else item) for item in data}
    return set()


@REGISTRY.check(
    "VEN-DATA-AS-ACCEPTED",
    title="The vendor holds only the data accepted",
    step=LifecycleStep.WELCOME,
    requirements=(
        "VRM-MSG-018",
        "VRM-VEN-001",
    ),
    roles=VENDOR,
    needs=("test-driver", "sends:terms-assertion"),
)
async def data_as_accepted(ctx: CheckContext) -> None:
    """After a terms response accepting all but one request, the vendor's state
    (test driver) holds every accepted category for this pseudonym, nothing
    refused, and nothing else but what the acceptance disclosed."""
    thread = await ctx.use(vendor_welcome)
    state = await driver_state(ctx.session)
    entry = _held_for(state, thread.persona.id)
    ctx.require(entry is not None, "the state summary lists the relationship", actual=sorted(state))
    held = _categories(entry)
    disclosed = set(disclosed_categories(thread.acceptance))
    ctx.expect(
        set(thread.shared_categories) <= held,
        "the vendor holds the categories the individual accepted and shared",
        expected=sorted(thread.shared_categories),
        actual=sorted(held),
        requirement="VRM-MSG-018",
    )
    allowed = set(thread.shared_categories) | disclosed
    ctx.require(
        held <= allowed,
        "the vendor holds nothing beyond what was accepted (or disclosed to close the deal)",
        expected=sorted(allowed),
        actual=sorted(held),
        requirement="VRM-MSG-018",
    )
    refused = set(thread.refused_categories) - disclosed
    ctx.require(
        not held & refused,
        "the vendor holds none of the refused categories",
        expected=[],
        actual=sorted(held & refused),
        requirement="VRM-MSG-018",
    )


@REGISTRY.check(
    "VEN-DATA-NOT-ACCEPTED",
    title="Data outside the accepted terms is refused",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-MSG-018",),
    roles=VENDOR,
    needs=("sends:terms-assertion",),
)
async def data_not_accepted(ctx: CheckContext) -> None:
    """In a relationship of its own, a terms response that refuses every request
    but still carries data for one of them is refused with
    ``not-accepted-by-terms``; the lawful response under the same id is then accepted."""
    thread = await run_deal(ctx.session)
    persona = thread.persona
    terms = await await_terms(thread)
    requests = [r for r in terms.body.get("requests", []) if isinstance(r, dict)]
    ctx.require(bool(requests), "the terms assertion asks for data", actual=terms.body)
    refused = [str(r["item"]) for r in requests]
    response = persona.compose(
        "terms-response",
        bodies.terms_response_body(
            terms.ref(),
            accepted=[],
            refused=refused,
            data=[{"item": refused[0], "value": "not for you"}],
        ),
        thread=str(terms.field("thread") or terms.id),
        parent=str(terms.id),
    )
    reply = await persona.send(response, note="data for a category the response refuses")
    expect_rejection(
        ctx,
        reply,
        E.NOT_ACCEPTED_BY_TERMS,
        what="data outside the accepted terms",
        requirement="VRM-MSG-018",
    )
    lawful = {
        **response,
        "body": bodies.terms_response_body(terms.ref(), accepted=[], refused=refused),
    }
    expect_accepted(
        ctx,
        await persona.send(lawful, note="the same response without the data"),
        what="the refusal without data, under the same id",
    )


@REGISTRY.check(
    "VEN-RETENTION",
    title="The vendor deletes data when its retention ends",
    step=LifecycleStep.SERVICING,
    requirements=(
        "VRM-PRIV-005",
        "VRM-CONF-004",
    ),
    roles=VENDOR,
    needs=("test-driver", "sends:terms-assertion"),
    timeout=60,
)
async def retention_enforced(ctx: CheckContext) -> None:
    """In a relationship of its own, the clock moves past the longest accepted
    retention period; the vendor's state no longer holds the data shared under
    the terms."""
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    assert thread.terms is not None
    periods = [
        (r.get("retention") or {}).get("period")
        for r in thread.terms.body.get("requests", [])
        if isinstance(r, dict) and r.get("item") in thread.shared_categories
    ]
    days = max((_period_days(str(p)) for p in periods if p), default=0)
    ctx.require(days > 0, "the accepted requests state retention periods", actual=periods)
    # What the acceptance disclosed is held under the transaction, not these terms.
    governed = set(thread.shared_categories) - set(disclosed_categories(thread.acceptance))
    before = _categories(_held_for(await driver_state(ctx.session), thread.persona.id))
    ctx.require(
        governed <= before,
        "the vendor holds the shared data before the period ends",
        expected=sorted(governed),
        actual=sorted(before),
    )
    await advance_clock(ctx.session, (days + 2) * 86400)
    after = _categories(_held_for(await driver_state(ctx.session), thread.persona.id))
    ctx.require(
        not after & governed,
        "after the retention period the data shared under the terms is gone",
        expected=[],
        actual=sorted(after & governed),
        requirement="VRM-PRIV-005",
    )


def _period_days(period: str) -> int:
    """Whole days in an ISO 8601 period of Y/M/W/D (months as 31 days: an upper bound)."""
    import re

    match = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?", period)
    if not match:
        return 0
    years, months, weeks, days = (int(group or 0) for group in match.groups())
    return years * 366 + months * 31 + weeks * 7 + days


@REGISTRY.check(
    "VEN-EXIT-ACK",
    title="An exit is acknowledged with export and deletion receipt",
    step=LifecycleStep.EXIT,
    requirements=(
        "VRM-MSG-024",
        "VRM-MSG-025",
        "VRM-MSG-026",
        "VRM-VEN-004",
        "VRM-MSG-035",
    ),
    roles=VENDOR,
    needs=("accepts:exit-notice",),
)
async def exit_acknowledged(ctx: CheckContext) -> None:
    """The acknowledgement binds the notice, exports what was held (with a
    digest), and receipts the deletion for this pseudonym."""
    thread = await ctx.use(vendor_exit)
    ack = thread.exit_ack
    assert ack is not None
    assert thread.exit_notice is not None
    ctx.require(
        ack.ok,
        "the acknowledgement passes the receiving pipeline",
        actual=ack.error,
        requirement="VRM-ENV-001",
    )
    body = ack.body
    notice_ref = message_ref(thread.exit_notice.token, str(thread.exit_notice.payload["id"]))
    ctx.expect(
        body.get("notice") == notice_ref,
        "the acknowledgement binds the exit notice",
        expected=notice_ref,
        actual=body.get("notice"),
        requirement="VRM-MSG-024",
    )
    export = body.get("export") or {}
    ctx.expect(
        isinstance(export.get("data"), dict) and bool(export.get("digest")),
        "the export carries the data held, with a digest",
        actual=sorted(export),
        requirement="VRM-MSG-025",
    )
    # §6.14: the export is either embedded, or published on the vendor's own
    # origin at /vrm/exports/{id} with its size (VRM-MSG-035).
    url = export.get("url")
    published = (
        isinstance(url, str)
        and urlsplit(url).path.startswith(EXPORTS_PATH_PREFIX + "/")
        and isinstance(export.get("size"), int)
    )
    ctx.expect(
        (isinstance(export.get("data"), dict)) != (url is not None) and (url is None or published),
        "the export is embedded in export.data, or published at /vrm/exports/{id} with its size",
        expected="export.data, or export.url under /vrm/exports/ and export.size",
        actual={name: export.get(name) for name in ("url", "size") if name in export}
        or sorted(export),
        requirement="VRM-MSG-035",
    )
    if isinstance(export.get("data"), dict):
        expected_digest = digest(canonical_json(export["data"]))
        ctx.expect(
            export.get("digest") == expected_digest,
            "the export's digest is the SHA-256 digest of its RFC 8785 canonical form",
            expected=expected_digest,
            actual=export.get("digest"),
            requirement="VRM-VEN-004",
        )
    exported = set((export.get("data") or {}).keys())
    held = set(thread.shared_categories) | set(disclosed_categories(thread.acceptance))
    ctx.expect(
        held <= exported,
        "the export includes every category the individual shared",
        expected=sorted(held),
        actual=sorted(exported),
        requirement="VRM-MSG-025",
    )
    receipt = body.get("deletionReceipt") or {}
    ctx.expect(
        receipt.get("relationship") == thread.persona.id,
        "the deletion receipt names this pseudonym",
        expected=thread.persona.id,
        actual=receipt.get("relationship"),
        requirement="VRM-MSG-026",
    )
    deleted = set(receipt.get("deleted") or [])
    retained = {
        str(item.get("item")) for item in receipt.get("retained") or [] if isinstance(item, dict)
    }
    ctx.expect(
        held <= deleted | retained,
        "every shared category is deleted or retained with a stated basis",
        expected=sorted(held),
        actual=sorted(deleted | retained),
        requirement="VRM-MSG-026",
    )


@REGISTRY.check(
    "VEN-EXIT-FINAL",
    title="Nothing is processed for an exited relationship",
    step=LifecycleStep.EXIT,
    requirements=("VRM-STATE-007",),
    roles=VENDOR,
    needs=("accepts:exit-notice",),
)
async def exit_final(ctx: CheckContext) -> None:
    """After the exit a support request is refused with ``relationship-exited``,
    the vendor sends nothing more, and (test driver) holds no data."""
    thread = await ctx.use(vendor_exit)
    persona = thread.persona
    request = persona.compose(
        "support-request", bodies.support_request_body(), thread=thread.thread
    )
    reply = await persona.send(request, note="a message after the exit")
    expect_rejection(
        ctx,
        reply,
        E.RELATIONSHIP_EXITED,
        what="a message after the exit",
        requirement="VRM-STATE-007",
    )
    ack_index = next(i for i, item in enumerate(persona.received()) if item is thread.exit_ack)
    later = [item.describe() for item in persona.received()[ack_index + 1 :]]
    ctx.expect(
        not later,
        "the vendor sends nothing after acknowledging the exit",
        actual=later or None,
        requirement="VRM-STATE-009",
    )
    if ctx.session.driver_url is not None:
        held = _categories(_held_for(await driver_state(ctx.session), persona.id))
        retained = (
            {
                str(item.get("item"))
                for item in (thread.exit_ack.body.get("deletionReceipt") or {}).get("retained")
                or []
                if isinstance(item, dict)
            }
            if thread.exit_ack
            else set()
        )
        ctx.expect(
            held <= retained,
            "after the exit the vendor holds nothing but what it retains on a stated basis",
            expected=sorted(retained),
            actual=sorted(held),
            requirement="VRM-MSG-026",
        )


@REGISTRY.check(
    "VEN-REENGAGE-BY-INDIVIDUAL",
    title="The individual may re-engage after an exit",
    step=LifecycleStep.REENGAGEMENT,
    requirements=("VRM-STATE-008",),
    roles=VENDOR,
    needs=("accepts:exit-notice",),
)
async def reengage(ctx: CheckContext) -> None:
    """A new RFI from the same pseudonym, showing the history it kept, starts a
    new relationship and is answered."""
    thread = await ctx.use(vendor_exit)
    persona = thread.persona
    history = [message_ref(thread.rfi.token, thread.thread)]
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now(), history=history))
    reply = await persona.send(rfi, note="re-engagement RFI after the exit")
    expect_accepted(
        ctx,
        reply,
        what="a re-engagement the individual starts",
        requirement="VRM-STATE-008",
    )
    offer = await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == rfi["id"],
        description="the vendor answers the re-engagement RFI",
        requirement="VRM-STATE-008",
    )
    ctx.expect(offer.ok, "the answer passes the receiving pipeline", actual=offer.error)


@REGISTRY.check(
    "VEN-MAILBOX",
    title="Replies wait in the mailbox when no replyTo is given",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-HTTP-010",),
    roles=VENDOR,
)
async def mailbox(ctx: CheckContext) -> None:
    """An RFI without ``replyTo``: the offer is collected with a signed poll token."""
    from conformance.checks.mailbox import poll_mailbox

    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()), reply=False)
    expect_accepted(
        ctx, await persona.send(rfi, note="RFI without replyTo"), what="an RFI without replyTo"
    )
    offer = await poll_mailbox(
        ctx,
        persona,
        lambda item: item.type == "offer",
        within=timedelta(seconds=ctx.options.reply_timeout),
    )
    ctx.require(
        offer.ok,
        "the offer collected from the mailbox passes the pipeline",
        actual=offer.error,
        requirement="VRM-HTTP-010",
    )
    ctx.expect(
        offer.field("thread") == rfi["id"],
        "it answers the RFI",
        expected=rfi["id"],
        actual=offer.field("thread"),
        requirement="VRM-ENV-007",
    )


@REGISTRY.check(
    "VEN-RETRY-IDENTICAL",
    title="A delivery the buyer could not take is retried with the same bytes",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-FRESH-010", "VRM-HTTP-009"),
    roles=VENDOR,
)
async def retry_identical(ctx: CheckContext) -> None:
    """The persona's inbox answers the vendor's first delivery ``503`` with
    ``Retry-After: 1``. The vendor should retry (SHOULD), and a retry must be
    the identical bytes, never the message signed again under its id."""
    side = await buyer_side(ctx)
    persona = side.new_persona()
    persona.party.extra["refuse_deliveries"] = 1
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    thread = rfi["id"]
    try:
        retried = await persona.expect(
            lambda item: item.type == "offer" and item.field("thread") == thread,
            description="the vendor retries the delivery it could not make",
            within=ctx.options.reply_timeout + 5,
        )
    except CheckFailed:
        retried = None
    refused = [
        token
        for token, _ in side.core.refused
        if (peek_jws_payload(token) or {}).get("to") == [persona.id]
    ]
    ctx.require(bool(refused), "the vendor attempted a delivery", requirement="VRM-MSG-002")
    ctx.recommend(
        retried is not None,
        "the vendor retries a delivery answered 503",
        expected="a retry within the reply timeout",
        actual="no retry" if retried is None else "retried",
        requirement="VRM-HTTP-009",
    )
    if retried is not None:
        first = peek_jws_payload(refused[0]) or {}
        if first.get("id") == retried.id:
            ctx.require(
                retried.token == refused[0],
                "the retry under the same id is the identical bytes",
                expected=digest(refused[0]),
                actual=retried.digest,
                requirement="VRM-FRESH-010",
            )
        else:
            ctx.note("the vendor answered with a new message rather than a retry")


@REGISTRY.check(
    "VEN-SUPPORT-RESOLUTION",
    title="A support request is answered with a resolution",
    step=LifecycleStep.PROBLEMS,
    requirements=("VRM-MSG-022",),
    roles=VENDOR,
    needs=("accepts:support-request",),
)
async def support_resolution(ctx: CheckContext) -> None:
    """After the welcome, the individual reports a problem (step 8); the vendor
    should answer with a ``support-resolution`` that binds the request's exact
    bytes (a resolution that is ``in-progress`` is an answer too)."""
    thread = await ctx.use(vendor_welcome)
    persona = thread.persona
    request = persona.compose(
        "support-request", bodies.support_request_body(), thread=thread.thread
    )
    reply = await persona.send(request, note="a support request")
    expect_accepted(ctx, reply, what="a support request", requirement="VRM-STATE-001")
    try:
        resolution = await persona.expect(
            lambda item: item.type == "support-resolution",
            description="the vendor answers the support request",
        )
    except CheckFailed:
        resolution = None
    ctx.recommend(
        resolution is not None,
        "the vendor answers the support request with a support-resolution",
        actual=None if resolution is not None else "no answer within the reply timeout",
        requirement="VRM-MSG-022",
    )
    if resolution is not None:
        expected = message_ref(persona.sent[-1].token, str(request["id"]))
        ctx.recommend(
            resolution.body.get("request") == expected,
            "the resolution binds the request's exact bytes",
            expected=expected,
            actual=resolution.body.get("request"),
            requirement="VRM-MSG-022",
        )
