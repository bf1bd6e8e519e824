"""A buyer agent guards the individual, not only parses correctly (``--role buyer``).

Each check plays a vendor that tries what a careless or hostile vendor could:
ask for her identity before any deal, write outside her notification
choices or into another relationship, confirm a deal or assert terms with
references she cannot match, require an approval only a third party could
give, probe which pseudonyms are hers, guess her reply addresses, aim her
agent at someone else's server, or feed it a key set far too large. What a
conformant buyer must do is what the cited requirements say, no more.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import (
    BuyerRelationships,
    buyer_rfis,
    fresh_relationships,
    prompt_wait,
    record_instruction,
    reply_inbox,
)
from conformance.client import request as http_request
from conformance.context import CheckContext
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.identity import new_pairwise
from conformance.peers.inbox import Inbound
from conformance.peers.messages import message_ref, new_message_id, sign
from conformance.peers.server import SuiteServer
from conformance.peers.vendors import SuiteVendor, require_accepted, vendor_side
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import DISCOVERY_PATH, INBOX_PATH
from vrm_protocol.vocabulary import LifecycleStep, Role

BUYER = (Role.BUYER,)
E = ErrorCode

#: How long the suite watches for a message the buyer must NOT send.
ABSENCE_WATCH_SECONDS = 2.0
#: Spec §12 "Identifying data": these categories and every category under them.
IDENTIFYING_CATEGORIES = (
    "identity",
    "contact",
    "location.home-area",
    "location.work-area",
    "location.address",
    "vehicle.registration",
    "vehicle.vin",
    "finance.account",
    "vehicle.registration-keeper",
    "insurance",
)
#: Every notification category of the schemas (spec §16).
NOTIFICATION_CATEGORIES = (
    "safety",
    "recall",
    "technical",
    "maintenance",
    "warranty",
    "promotions",
    "new-products",
    "events",
)
#: What the hostile vendor streams as its JWKS: far beyond the 64 KiB a buyer reads.
HUGE_JWKS_BYTES = 200 * 1024 * 1024
#: What a buyer that stops at 64 KiB can have let through: its socket buffers and
#: the suite's, a few MiB on any system. Reading the whole key set passes it.
HUGE_JWKS_TOLERANCE = 16 * 1024 * 1024
#: The spec's time bound on a fetch (§11.1), and the slack the suite adds.
FETCH_SECONDS = 5.0
#: The smallest size a URL part holding 128 random bits can have (22 base64url characters).
MIN_RANDOM_CHARACTERS = 22


def is_identifying(category: str) -> bool:
    """Whether ``category`` is identifying (spec §12)."""
    return any(
        category == rule or category.startswith(rule + ".") for rule in IDENTIFYING_CATEGORIES
    )


async def _instruct(ctx: CheckContext, action: str, instruction: dict[str, Any], text: str) -> None:
    """Give the buyer an instruction it may refuse: through its driver (any
    answer is fine), else through the operator."""
    record_instruction(ctx.session, action, instruction)
    if ctx.session.driver_url is not None:
        await call_driver_raw(ctx.session, "POST", f"/{action}", instruction)
    elif ctx.session.operator is not None:
        ctx.extend_deadline(ctx.options.operator_timeout)
        ctx.session.operator.instruct(text, timeout_seconds=ctx.options.operator_timeout)


async def _binding_offer(
    ctx: CheckContext, relationships: BuyerRelationships, vendor: SuiteVendor, **offer: Any
) -> tuple[dict[str, Any], bytes]:
    """A binding offer answering the buyer's RFI, taken by the buyer."""
    rfi = relationships.rfis[vendor.id]
    offer.setdefault("basis", "binding")
    payload = vendor.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now(), **offer))
    token = sign(payload, vendor.signer)
    reply = await vendor.deliver_token(
        token, to=str(rfi.field("from")), inbox=relationships.delivery_inbox(vendor), note="offer"
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="a binding offer answering its RFI")
    return payload, token


async def _accepted(
    ctx: CheckContext, relationships: BuyerRelationships, vendor: SuiteVendor
) -> tuple[dict[str, Any], bytes, Inbound]:
    """A binding offer, and the buyer's acceptance of it (prompted)."""
    offer, token = await _binding_offer(ctx, relationships, vendor)
    await _instruct(
        ctx,
        "accept",
        {"vendor": vendor.id, "offer": offer["id"]},
        f"Make the buyer accept offer {offer['id']} from {vendor.id}",
    )
    acceptance = await vendor.expect(
        lambda item: item.type == "offer-acceptance",
        description="the buyer sends the acceptance",
        within=prompt_wait(ctx.session),
    )
    return offer, token, acceptance


async def _deal(
    ctx: CheckContext, relationships: BuyerRelationships, vendor: SuiteVendor
) -> Inbound:
    """An accepted offer and the vendor's correct deal confirmation: the welcome."""
    offer, token, acceptance = await _accepted(ctx, relationships, vendor)
    confirmation = vendor.reply_to(
        acceptance,
        "deal-confirmation",
        bodies.deal_confirmation_body(
            offer_ref=message_ref(token, offer["id"]),
            acceptance_id=str(acceptance.id),
            total=offer["body"]["price"]["total"],
            now=ctx.session.clock.now(),
        ),
    )
    require_accepted(
        await vendor.deliver(
            confirmation, inbox=relationships.delivery_inbox(vendor), note="deal confirmation"
        ),
        "the buyer takes the deal confirmation",
    )
    return acceptance


def _require_inbox(ctx: CheckContext, inbox: str | None) -> str:
    if inbox is None:
        ctx.skip(
            "the buyer named no replyTo inbox and lists no inbox: its refusals have no HTTP "
            "answer for the suite to judge"
        )
    return inbox


def _data_items(message: Inbound) -> list[str]:
    return [
        str(item.get("item"))
        for item in message.body.get("data") or []
        if isinstance(item, Mapping)
    ]


async def _watch(seconds: float) -> None:
    await asyncio.sleep(seconds)


# -- identity before the deal ---------------------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-TERMS-IDENTITY",
    title="Terms shown during negotiation get nothing identifying",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-PRIV-011",),
    roles=BUYER,
)
async def terms_identity(ctx: CheckContext) -> None:
    """A vendor whose offer the buyer has not accepted presents terms of sharing
    (published, with a matching digest) asking for her name, e-mail, postal
    address and home area, and her car's model. Prompted to answer, the buyer
    may share the model, but no data of an identifying category (spec §12)."""
    relationships = await fresh_relationships(ctx.session, "Conformance Curious Motors")
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    await _binding_offer(ctx, relationships, vendor)
    asked = ["identity.name", "contact.email", "contact.postal-address", "location.home-area"]
    assertion = vendor.reply_to(
        rfi,
        "terms-assertion",
        bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=ctx.session.clock.now(),
            categories=[*asked, "vehicle.model"],
            terms=vendor.publish_terms(),
        ),
    )
    reply = await vendor.deliver(
        assertion, inbox=relationships.delivery_inbox(vendor), note="terms during negotiation"
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="terms of sharing during negotiation")
    await _instruct(
        ctx,
        "terms",
        {"vendor": vendor.id, "assertion": assertion["id"]},
        f"Make the buyer answer the terms of sharing from {vendor.id} (offer not accepted)",
    )
    try:
        await vendor.expect(
            lambda item: item.type in ("terms-response", "problem-report"),
            description="the buyer answers the terms",
            within=prompt_wait(ctx.session),
        )
    except CheckFailed:
        ctx.note("the buyer did not answer the terms: nothing was shared")
    await _watch(ABSENCE_WATCH_SECONDS)
    shared = sorted(
        {
            f"{item.type}: {category}"
            for item in vendor.received()
            for category in _data_items(item)
            if is_identifying(category)
        }
    )
    ctx.require(
        not shared,
        "nothing identifying reaches a vendor whose offer she has not accepted",
        expected=[],
        actual=shared or None,
        requirement="VRM-PRIV-011",
    )
    early = [item.describe() for item in vendor.received() if item.body.get("identity")]
    ctx.require(
        not early,
        "no message carries her identity before an acceptance",
        expected=[],
        actual=early or None,
        requirement="VRM-PRIV-011",
    )


# -- notices outside her preferences --------------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-NOTICE-PREFERENCES",
    title="A notice outside her notification choices is refused, and never answered",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-BUY-007",),
    roles=BUYER,
    needs=("sends:offer-acceptance", "sends:terms-response"),
)
async def notice_preferences(ctx: CheckContext) -> None:
    """After the deal and the welcome, the vendor sends a notice of a category the
    buyer's terms response did not allow, asking for data: ``not-accepted-by-terms``,
    and no service response follows. The same notice in an allowed category is
    then taken (the refusal changed nothing)."""
    relationships = await fresh_relationships(ctx.session, "Conformance Pushy Motors")
    vendor = relationships.vendors[0]
    inbox = _require_inbox(ctx, relationships.delivery_inbox(vendor))
    acceptance = await _deal(ctx, relationships, vendor)
    assertion = vendor.reply_to(
        acceptance,
        "terms-assertion",
        bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=ctx.session.clock.now(),
            categories=["vehicle.model"],
            terms=vendor.publish_terms(),
        ),
    )
    require_accepted(
        await vendor.deliver(assertion, inbox=inbox, note="terms assertion"),
        "the buyer takes the terms assertion",
    )
    # Her decision travels with the instruction (VRM-CONF-008): a buyer that
    # would otherwise wait for her, or answer by a standing policy, answers as
    # she decided: the terms accepted, notices of maintenance only.
    await _instruct(
        ctx,
        "terms",
        {
            "vendor": vendor.id,
            "assertion": assertion["id"],
            "decision": {"decision": "accept", "notifications": ["maintenance"]},
        },
        f"Make the buyer accept the terms of sharing from {vendor.id}, allowing notices of "
        "maintenance only",
    )
    response = await vendor.expect(
        lambda item: item.type == "terms-response",
        description="the buyer answers the terms of sharing",
        within=prompt_wait(ctx.session),
    )
    allowed = (response.body.get("notificationPreferences") or {}).get("allowed") or []
    outside = next((c for c in NOTIFICATION_CATEGORIES if c not in allowed), None)
    if outside is None:
        ctx.skip("the buyer allows every notification category")
    rfi = relationships.rfis[vendor.id]
    message_id = new_message_id()
    notice = vendor.reply_to(
        rfi,
        "service-notice",
        bodies.service_notice_body(category=outside, data_requests=True),
        message_id=message_id,
    )
    reply = await vendor.deliver(notice, inbox=inbox, note=f"notice of category {outside}")
    assert reply is not None
    expect_rejection(
        ctx,
        reply,
        E.NOT_ACCEPTED_BY_TERMS,
        what=f"a notice of category {outside!r}, which she did not allow",
        requirement="VRM-BUY-007",
    )
    await _watch(ABSENCE_WATCH_SECONDS)
    answers = [
        item.describe()
        for item in vendor.received()
        if item.type == "service-response" and item.field("parent") == message_id
    ]
    ctx.require(
        not answers,
        "the refused notice is never answered (no data goes with it)",
        expected=[],
        actual=answers or None,
        requirement="VRM-BUY-007",
    )
    if allowed:
        legal = vendor.reply_to(
            rfi,
            "service-notice",
            bodies.service_notice_body(category=str(allowed[0])),
            message_id=message_id,
        )
        again = await vendor.deliver(legal, inbox=inbox, note="the notice in an allowed category")
        assert again is not None
        expect_accepted(ctx, again, what="the same notice in a category she allowed")


# -- participation by thread and parent -----------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-FOREIGN-THREAD",
    title="A vendor cannot write into another relationship's thread",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-BUY-008",),
    roles=BUYER,
)
async def foreign_thread(ctx: CheckContext) -> None:
    """Vendor B writes to the pseudonym the buyer uses with B (a relationship it
    has), but in the thread the buyer opened with vendor A, in a thread nobody
    started, or answering A's message: each is ``not-a-participant``. The same
    offer in B's own thread is then taken."""
    relationships = await fresh_relationships(
        ctx.session, "Conformance Owner Motors", "Conformance Writer Motors"
    )
    owner, writer = relationships.vendors
    owner_rfi, writer_rfi = relationships.rfis[owner.id], relationships.rfis[writer.id]
    inbox = _require_inbox(ctx, relationships.delivery_inbox(writer))
    cases = [
        ("the thread of another vendor's relationship", owner_rfi.field("thread"), owner_rfi.id),
        ("a thread nobody started", new_message_id(), None),
        ("a parent that is another vendor's message", writer_rfi.field("thread"), owner_rfi.id),
    ]
    message_id = new_message_id()
    for what, thread, parent in cases:
        fields: dict[str, Any] = {"thread": thread, "message_id": message_id}
        if parent is not None:
            fields["parent"] = parent
        payload = writer.compose(
            "offer",
            bodies.offer_body(ctx.session.clock.now()),
            to=str(writer_rfi.field("from")),
            **fields,
        )
        reply = await writer.deliver(payload, inbox=inbox, note=f"offer in {what}")
        assert reply is not None
        expect_rejection(
            ctx, reply, E.NOT_A_PARTICIPANT, what=f"an offer in {what}", requirement="VRM-BUY-008"
        )
    legal = writer.reply_to(
        writer_rfi, "offer", bodies.offer_body(ctx.session.clock.now()), message_id=message_id
    )
    reply = await writer.deliver(legal, inbox=inbox, note="the offer in its own thread")
    assert reply is not None
    expect_accepted(ctx, reply, what="the same offer in the vendor's own thread")


# -- bindings -------------------------------------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-DEAL-BINDING",
    title="A deal confirmation must bind her offer and her acceptance",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-BUY-009", "VRM-MSG-032"),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def deal_binding(ctx: CheckContext) -> None:
    """After the buyer accepts an offer, a deal confirmation naming the offer with
    another digest, then one naming another acceptance, are refused with
    ``reference-mismatch``; the correct confirmation is then taken."""
    relationships = await fresh_relationships(ctx.session, "Conformance Binding Motors")
    vendor = relationships.vendors[0]
    inbox = _require_inbox(ctx, relationships.delivery_inbox(vendor))
    offer, token, acceptance = await _accepted(ctx, relationships, vendor)
    right = message_ref(token, offer["id"])
    message_id = new_message_id()
    wrong_digest = {**right, "digest": message_ref(token + b"x", offer["id"])["digest"]}
    for what, reference, acceptance_id in (
        ("another digest of the offer", wrong_digest, str(acceptance.id)),
        ("an acceptance she did not send", right, new_message_id()),
    ):
        confirmation = vendor.reply_to(
            acceptance,
            "deal-confirmation",
            bodies.deal_confirmation_body(
                offer_ref=reference,
                acceptance_id=acceptance_id,
                total=offer["body"]["price"]["total"],
                now=ctx.session.clock.now(),
            ),
            message_id=message_id,
        )
        reply = await vendor.deliver(confirmation, inbox=inbox, note=f"deal naming {what}")
        assert reply is not None
        expect_rejection(
            ctx,
            reply,
            E.REFERENCE_MISMATCH,
            what=f"a deal confirmation naming {what}",
            requirement="VRM-BUY-009",
        )
        # §6.5: the same refusal is the receiver's rule for every deal message.
        ctx.expect(
            reply.problem_code == E.REFERENCE_MISMATCH.value,
            f"a deal-confirmation naming {what} is refused as a reference mismatch",
            expected=E.REFERENCE_MISMATCH.value,
            actual=reply.describe(),
            requirement="VRM-MSG-032",
        )
    correct = vendor.reply_to(
        acceptance,
        "deal-confirmation",
        bodies.deal_confirmation_body(
            offer_ref=right,
            acceptance_id=str(acceptance.id),
            total=offer["body"]["price"]["total"],
            now=ctx.session.clock.now(),
        ),
        message_id=message_id,
    )
    reply = await vendor.deliver(correct, inbox=inbox, note="the correct deal confirmation")
    assert reply is not None
    expect_accepted(ctx, reply, what="the deal confirmation binding her offer and acceptance")


@REGISTRY.check(
    "BUY-GUARD-TERMS-DIGEST",
    title="Terms whose document she cannot match get a problem report and no data",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-BUY-010",),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def terms_digest(ctx: CheckContext) -> None:
    """After the deal, the vendor asserts terms whose digest matches nothing it
    publishes, then terms whose document is published only on another origin.
    Prompted to answer each, the buyer shares no data and answers with a
    ``problem-report`` of code ``reference-mismatch``."""
    relationships = await fresh_relationships(
        ctx.session, "Conformance Unmatched Motors", "Conformance Elsewhere Motors"
    )
    vendor, elsewhere = relationships.vendors
    acceptance = await _deal(ctx, relationships, vendor)
    text = "What we really do with your data.\n"
    cases = [
        ("a digest nobody can match", vendor.publish_terms(text, digest_of=b"what we showed")),
        ("a document on another origin", elsewhere.publish_terms(text)),
    ]
    for what, reference in cases:
        assertion = vendor.reply_to(
            acceptance,
            "terms-assertion",
            bodies.terms_assertion_body(
                party_id=vendor.id,
                party_name=vendor.name,
                now=ctx.session.clock.now(),
                categories=["contact.email"],
                terms=reference,
            ),
        )
        require_accepted(
            await vendor.deliver(
                assertion, inbox=relationships.delivery_inbox(vendor), note=f"terms with {what}"
            ),
            "the buyer takes the terms assertion (it is signed and well formed)",
        )
        await _instruct(
            ctx,
            "terms",
            {"vendor": vendor.id, "assertion": assertion["id"]},
            f"Make the buyer answer the terms of sharing from {vendor.id}",
        )

        def about_it(item: Inbound, about: str = assertion["id"]) -> bool:
            regarding = item.body.get("regarding") or {}
            return item.type == "problem-report" and regarding.get("id") == about

        problem = await vendor.expect(
            about_it,
            description=f"the buyer answers terms with {what} with a problem report",
            within=prompt_wait(ctx.session),
            requirement="VRM-BUY-010",
        )
        ctx.require(
            problem.body.get("code") == E.REFERENCE_MISMATCH.value,
            f"the problem report about terms with {what} says reference-mismatch",
            expected=E.REFERENCE_MISMATCH.value,
            actual=problem.body.get("code"),
            requirement="VRM-BUY-010",
        )
        await _watch(ABSENCE_WATCH_SECONDS)
        shared = [
            item.describe()
            for item in vendor.received()
            if item.type == "terms-response"
            and (item.body.get("assertion") or {}).get("id") == assertion["id"]
            and item.body.get("data")
        ]
        ctx.require(
            not shared,
            f"no data is shared under terms with {what}",
            expected=[],
            actual=shared or None,
            requirement="VRM-BUY-010",
        )


# -- an approval only a third party can give ------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-NO-FORGED-APPROVAL",
    title="The buyer never signs a co-decision-maker's approval itself",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-BUY-011",),
    roles=BUYER,
)
async def no_forged_approval(ctx: CheckContext) -> None:
    """A binding offer requires the approval of a co-decision-maker whose key
    only the suite holds, and who never approves. Told to accept it, the buyer
    sends no acceptance of it: any acceptance would carry an approval nobody
    gave, or none at all."""
    relationships = await fresh_relationships(ctx.session, "Conformance Approval Motors")
    vendor = relationships.vendors[0]
    # The co-decision-maker: a pseudonym whose key only the suite holds, and never uses.
    party, _ = new_pairwise()
    offer, offer_token = await _binding_offer(ctx, relationships, vendor)
    conditions = [
        {"kind": "approval-required", "description": "Her partner approves", "party": party}
    ]
    offer_with, _ = await _offer_with_conditions(
        ctx, relationships, vendor, message_ref(offer_token, str(offer["id"])), conditions
    )
    await _instruct(
        ctx,
        "accept",
        {"vendor": vendor.id, "offer": offer_with["id"]},
        f"Make the buyer accept offer {offer_with['id']} from {vendor.id} (her partner "
        "must approve it; he does not)",
    )
    await _watch(ABSENCE_WATCH_SECONDS)
    sent = [
        item.describe()
        + f" approvals by {[a.get('issuer') for a in item.body.get('approvals') or []]}"
        for item in vendor.received()
        if item.type == "offer-acceptance"
        and (item.body.get("offer") or {}).get("id") == offer_with["id"]
    ]
    ctx.require(
        not sent,
        "no acceptance of an offer whose required approval was never given",
        expected="no acceptance",
        actual=sent or None,
        requirement="VRM-BUY-011",
    )


async def _offer_with_conditions(
    ctx: CheckContext,
    relationships: BuyerRelationships,
    vendor: SuiteVendor,
    previous: Mapping[str, str],
    conditions: list[dict[str, Any]],
) -> tuple[dict[str, Any], bytes]:
    rfi = relationships.rfis[vendor.id]
    body = bodies.offer_body(ctx.session.clock.now(), basis="binding", supersedes=previous)
    body["conditions"] = conditions
    payload = vendor.reply_to(rfi, "offer", body)
    token = sign(payload, vendor.signer)
    reply = await vendor.deliver_token(
        token,
        to=str(rfi.field("from")),
        inbox=relationships.delivery_inbox(vendor),
        note="offer requiring a co-decision-maker's approval",
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="an offer requiring an approval")
    return payload, token


# -- linkable pseudonyms --------------------------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-PSEUDONYM-ORACLE",
    title="The inbox says nothing about which pseudonyms are hers",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-PRIV-012",),
    roles=BUYER,
)
async def pseudonym_oracle(ctx: CheckContext) -> None:
    """Vendor B, which has a relationship with the buyer, writes to the pseudonym
    the buyer uses with vendor A, and to a pseudonym nobody has. The inbox must
    answer both alike (status and code)."""
    relationships = await _relationships(ctx)
    owner, prober = relationships.vendors[0], relationships.vendors[1]
    inbox = _require_inbox(ctx, relationships.inbox_for(prober, ctx.session))
    nobodys, _ = new_pairwise()
    answers: list[tuple[str, int, str | None]] = []
    for what, pseudonym in (
        ("her pseudonym with another vendor", str(relationships.rfis[owner.id].field("from"))),
        ("a pseudonym nobody has", nobodys),
    ):
        payload = prober.compose("offer", bodies.offer_body(ctx.session.clock.now()), to=pseudonym)
        reply = await prober.deliver(payload, inbox=inbox, note=f"offer to {what}")
        assert reply is not None
        ctx.require(
            not reply.accepted,
            f"an offer to {what} is refused",
            actual=reply.describe(),
            requirement="VRM-PRIV-012",
        )
        answers.append((what, reply.status, reply.problem_code))
    ctx.require(
        answers[0][1:] == answers[1][1:],
        "both are answered alike: the answer tells no one which pseudonyms are hers",
        expected=f"{answers[1][1]} {answers[1][2]}",
        actual=f"{answers[0][1]} {answers[0][2]}",
        requirement="VRM-PRIV-012",
    )


async def _relationships(ctx: CheckContext) -> BuyerRelationships:
    return await ctx.use(buyer_rfis)


def _derivations(identifier: str) -> set[str]:
    """Values anyone holding a pseudonym can compute from it (8+ characters each)."""
    digest_bytes = hashlib.sha256(identifier.encode()).digest()
    candidates = {
        identifier,
        identifier.removeprefix("did:jwk:")[:16],
        digest_bytes.hex()[:12],
        base64.urlsafe_b64encode(digest_bytes).decode().rstrip("=")[:12],
        hashlib.sha1(identifier.encode()).hexdigest()[:12],  # noqa: S324 - a guess, not a use
        hashlib.md5(identifier.encode()).hexdigest()[:12],  # noqa: S324 - a guess, not a use
    }
    encoded = identifier.removeprefix("did:jwk:")
    try:
        jwk = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        required = {name: jwk[name] for name in ("crv", "kty", "x", "y") if name in jwk}
        canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
        thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).decode()
        candidates |= {thumbprint.rstrip("=")[:12], str(jwk.get("x", ""))[:12]}
    except (ValueError, TypeError, KeyError):
        pass
    return {value.lower() for value in candidates if len(value) >= 8}


def _differing_part(one: str, other: str) -> str:
    """``one`` without the prefix and suffix it shares with ``other``."""
    start = 0
    while start < min(len(one), len(other)) and one[start] == other[start]:
        start += 1
    end = 0
    while end < min(len(one), len(other)) - start and one[-1 - end] == other[-1 - end]:
        end += 1
    return one[start : len(one) - end]


@REGISTRY.check(
    "BUY-GUARD-REPLY-ADDRESS",
    title="Reply addresses are random per relationship, not computable from the pseudonym",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-PRIV-013",),
    roles=BUYER,
)
async def reply_address(ctx: CheckContext) -> None:
    """The ``replyTo`` inboxes of the buyer's RFIs to different vendors differ,
    by a part long enough to hold 128 random bits, in which nothing computable
    from the pseudonym (the identifier, its key, common hashes of it) appears."""
    relationships = await _relationships(ctx)
    inboxes = {
        vendor.id: (str(rfi.field("from")), reply_inbox(rfi))
        for vendor, rfi in ((v, relationships.rfis[v.id]) for v in relationships.vendors)
    }
    given = {vendor: value for vendor, value in inboxes.items() if value[1] is not None}
    if len(given) < 2:
        ctx.skip("the buyer names no replyTo inbox (its replies wait in the mailboxes)")
    pairs = list(given.values())
    for index, (pseudonym, inbox) in enumerate(pairs):
        assert inbox is not None
        found = sorted(value for value in _derivations(pseudonym) if value in inbox.lower())
        ctx.require(
            not found,
            "the reply address holds nothing computable from the pseudonym",
            expected=[],
            actual={"replyTo": inbox, "derived from the pseudonym": found} if found else None,
            requirement="VRM-PRIV-013",
        )
        for _, other in pairs[index + 1 :]:
            assert other is not None
            differing = _differing_part(inbox, other)
            ctx.require(
                len(differing) >= MIN_RANDOM_CHARACTERS,
                "two relationships' reply addresses differ by a part that can hold 128 random bits",
                expected=f"at least {MIN_RANDOM_CHARACTERS} differing characters",
                actual={"replyTo": [inbox, other], "differing": differing},
                requirement="VRM-PRIV-013",
            )


@REGISTRY.check(
    "BUY-GUARD-COPIES",
    title="Copies of one RFI to several vendors are decorrelated",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-PRIV-014",),
    roles=BUYER,
)
async def decorrelated_copies(ctx: CheckContext) -> None:
    """The RFIs the buyer sent the suite's vendors for one instruction carry
    distinct ``created`` values."""
    relationships = await _relationships(ctx)
    created = [str(rfi.field("created")) for rfi in relationships.rfis.values()]
    ctx.require(len(created) >= 2, "the buyer wrote to at least two vendors", actual=len(created))
    ctx.recommend(
        len(set(created)) == len(created),
        "no two copies carry the same created",
        actual=created,
        requirement="VRM-PRIV-014",
    )


# -- what a vendor publishes ----------------------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-DISCOVERY-ORIGIN",
    title="An inbox a discovery document names on another origin is never posted to",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-BUY-012",),
    roles=BUYER,
)
async def discovery_origin(ctx: CheckContext) -> None:
    """A vendor's discovery document names, as its inbox, an address on another
    server. Told to send that vendor an RFI, the buyer POSTs nothing there."""
    side = await vendor_side(ctx)
    vendor = await side.add_vendor("Conformance Redirecting Motors")
    victim = SuiteServer(ctx.session, "Conformance Victim")
    posts: list[str] = []

    async def record(request: web.Request, body: bytes) -> web.Response:
        posts.append(f"{request.method} {request.path} ({len(body)} bytes)")
        return web.Response(status=404)

    victim.route("POST", INBOX_PATH, record)
    await victim.start()
    vendor.endpoints_override = {"inbox": victim.base_url + INBOX_PATH}
    await _instruct(
        ctx,
        "rfi",
        {"vendors": [vendor.id]},
        f"Make the buyer agent send a personal RFI (any car) to {vendor.id}",
    )
    await _watch(ABSENCE_WATCH_SECONDS)
    ctx.require(
        not posts,
        "the buyer posts nothing to an inbox on another origin than the vendor's",
        expected="no request",
        actual=posts or None,
        requirement="VRM-BUY-012",
    )


@REGISTRY.check(
    "BUY-GUARD-JWKS-SIZE",
    title="A key set far too large is refused unread, and the buyer stays responsive",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-BUY-012",),
    roles=BUYER,
    timeout=60,
)
async def jwks_size(ctx: CheckContext) -> None:
    """A vendor streams a 200 MB JWKS. Told to send it an RFI, the buyer stops
    reading long before the end (it reads at most 64 KiB; only what sockets
    buffer may have been sent), and afterwards still answers its discovery
    document promptly."""
    streamed: list[int] = []
    hung_up = asyncio.Event()

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        sent = 0
        try:
            await response.write(b'{"keys": [')
            chunk = b" " * 65536
            while sent < HUGE_JWKS_BYTES:
                await response.write(chunk)
                sent += len(chunk)
            await response.write(b"]}")
        except (ConnectionError, RuntimeError):
            pass  # the buyer hung up
        finally:
            streamed.append(sent)
            hung_up.set()
        return response

    side = await vendor_side(ctx)
    vendor = await side.add_vendor("Conformance Bloated Motors", raw_jwks=huge)
    started = time.monotonic()
    await _instruct(
        ctx,
        "rfi",
        {"vendors": [vendor.id]},
        f"Make the buyer agent send a personal RFI (any car) to {vendor.id}",
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hung_up.wait(), FETCH_SECONDS + prompt_wait(ctx.session))
    if not streamed:
        ctx.skip("the buyer did not fetch the vendor's keys (it may fetch them only later)")
    ctx.require(
        streamed[0] < HUGE_JWKS_TOLERANCE,
        "the buyer stops reading a key set far larger than 64 KiB",
        expected=f"under {HUGE_JWKS_TOLERANCE // (1024 * 1024)} MiB sent before it hung up",
        actual=f"{streamed[0] / (1024 * 1024):.1f} MiB sent",
        requirement="VRM-BUY-012",
    )
    ctx.note(f"the buyer hung up after {time.monotonic() - started:.1f} s")
    probe_started = time.monotonic()
    reply = await http_request(
        ctx.session.http,
        ctx.session.transcript,
        "GET",
        ctx.options.target.rstrip("/") + DISCOVERY_PATH,
        time_limit=FETCH_SECONDS,
        note="is the buyer still responsive?",
    )
    ctx.require(
        reply.status == 200,
        "the buyer still answers, within the fetch bound, once it refused the key set",
        expected="200 within 5 s",
        actual=f"{reply.status} after {time.monotonic() - probe_started:.1f} s",
        requirement="VRM-BUY-012",
    )


# -- lost replies ---------------------------------------------------------------------------------


@REGISTRY.check(
    "BUY-GUARD-MAILBOX-COLLECT",
    title="While it waits for answers, the buyer collects them from mailboxes too",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-BUY-013",),
    roles=BUYER,
)
async def mailbox_collect(ctx: CheckContext) -> None:
    """After the buyer's RFI (with or without a ``replyTo``), the vendor leaves its
    offer only in its mailbox, as it would when a POST to the reply address
    failed. The buyer collects it while it waits for answers."""
    relationships = await fresh_relationships(ctx.session, "Conformance Mailbox Motors")
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    offer = vendor.reply_to(rfi, "offer", bodies.offer_body(ctx.session.clock.now()))
    try:
        await vendor.deliver(offer, inbox=None, note="offer left in the mailbox only")
    except CheckFailed as failure:
        ctx.require(
            False,
            "the buyer collects the offer waiting in the vendor's mailbox",
            expected=f"a poll within {ctx.options.reply_timeout:.0f} s",
            actual=failure.expectation.actual,
            requirement="VRM-BUY-013",
        )
    ctx.require(
        True,
        "the buyer collects the offer waiting in the vendor's mailbox",
        requirement="VRM-BUY-013",
    )
