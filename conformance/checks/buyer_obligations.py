"""A buyer agent's own obligations, read from outside (``--role buyer``).

Each check plays a vendor and exercises one buyer requirement that carries a
code (spec §6, §7, VRM-BUY-*): an indicative offer is never accepted; an exit
acknowledgement whose deletion receipt leaves out an item she shared is
refused; terms get only what she decided; several open offers are told apart;
notices and offers the state does not allow are refused with the code the
spec names. Every behaviour the spec allows is accepted: a refusal in the
answer to the POST, or a receipt followed by a problem report (VRM-HTTP-029);
a test driver that refuses an instruction with problem details (VRM-CONF-007).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.buyer_guard import _binding_offer, _deal, _require_inbox
from conformance.checks.scenarios import (
    BuyerRelationships,
    fresh_relationships,
    prompt_buyer,
    prompt_wait,
    record_instruction,
)
from conformance.context import CheckContext, Session, fixture
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest, message_ref, new_message_id, sign
from conformance.peers.posting import InboxReply
from conformance.peers.vendors import SuiteVendor, require_accepted
from conformance.registry import REGISTRY
from conformance.target import call_driver, call_driver_raw
from vrm_protocol.errors import ErrorCode
from vrm_protocol.registries import acceptance_categories
from vrm_protocol.vocabulary import LifecycleStep, Role

BUYER = (Role.BUYER,)
E = ErrorCode

#: How long the suite watches for a message the buyer must NOT send.
ABSENCE_WATCH_SECONDS = 2.0
#: What the terms of the servicing scenario ask, and what she decides to give.
TERMS_ASKED = ("vehicle.model", "vehicle.mileage", "travel.dates")
TERMS_GRANTED = ("vehicle.model",)
#: The notification categories she allows in the servicing scenario.
NOTIFICATIONS_ALLOWED = ("maintenance", "safety", "recall")


# -- shared helpers -------------------------------------------------------------------------------


def _codes(codes: ErrorCode | Collection[ErrorCode]) -> list[ErrorCode]:
    return [codes] if isinstance(codes, ErrorCode) else list(codes)


async def expect_refused(
    ctx: CheckContext,
    vendor: SuiteVendor,
    reply: InboxReply | None,
    message_id: str,
    codes: ErrorCode | Collection[ErrorCode],
    *,
    what: str,
    requirement: str,
) -> None:
    """Require that the buyer refused ``what`` with one of ``codes``: in the answer
    to the POST, or, after a receipt (or a mailbox delivery), with a problem
    report whose ``regarding`` names the message (spec §11.3, VRM-HTTP-029).

    Raises:
        CheckFailed: the message was taken, or refused with another code.
    """
    allowed = _codes(codes)
    if reply is not None and not reply.accepted:
        expect_rejection(ctx, reply, allowed, what=what, requirement=requirement)
        return

    def about_it(item: Inbound) -> bool:
        regarding = item.body.get("regarding") or {}
        return item.type == "problem-report" and regarding.get("id") == message_id

    problem = await vendor.expect(
        about_it,
        description=f"the buyer refuses {what} (it gave a receipt: a problem report must follow)",
        within=ctx.session.options.reply_timeout,
        requirement=requirement,
    )
    ctx.require(
        problem.body.get("code") in {code.value for code in allowed},
        f"the problem report refusing {what} names the right code",
        expected=" or ".join(code.value for code in allowed),
        actual=problem.body.get("code"),
        requirement=requirement,
    )
    ctx.require(
        (problem.body.get("regarding") or {}).get("digest") == _sent_digest(vendor, message_id),
        "the problem report names the refused message by id and digest",
        expected=_sent_digest(vendor, message_id),
        actual=(problem.body.get("regarding") or {}).get("digest"),
        requirement="VRM-HTTP-029",
    )


def _sent_digest(vendor: SuiteVendor, message_id: str) -> str | None:
    """The digest of the last token the vendor sent under ``message_id``."""
    for sent in reversed(vendor.sent):
        if sent.payload.get("id") == message_id:
            return digest(sent.token)
    return None


async def _deliver(
    vendor: SuiteVendor, payload: Mapping[str, Any], inbox: str | None, note: str
) -> InboxReply | None:
    return await vendor.deliver(payload, inbox=inbox, note=note)


async def _instruct_forbidden(
    ctx: CheckContext, action: str, instruction: dict[str, Any], what: str
) -> tuple[int, Any] | None:
    """Give the buyer an instruction the protocol forbids: through its driver (its
    status and answer are returned, to be judged by :func:`_judge_refusal`
    after what crossed the wire), else through the operator (``None``)."""
    record_instruction(ctx.session, action, instruction)
    if ctx.session.driver_url is None:
        if ctx.session.operator is not None:
            ctx.extend_deadline(ctx.options.operator_timeout)
            ctx.session.operator.instruct(
                f"Try to make the buyer {what} (it must refuse)",
                timeout_seconds=ctx.options.operator_timeout,
            )
        return None
    return await call_driver_raw(ctx.session, "POST", f"/{action}", instruction)


def _judge_refusal(
    ctx: CheckContext, answer: tuple[int, Any] | None, code: ErrorCode, what: str
) -> None:
    """A driver refuses a forbidden instruction with problem details naming ``code``
    (VRM-CONF-007)."""
    if answer is None:
        return
    status, document = answer
    said = document.get("code") if isinstance(document, dict) else None
    ctx.require(
        status == code.http_status and said == code.value,
        f"the test driver refuses to {what} with problem details naming {code.value}",
        expected=f"{code.http_status} {code.value}",
        actual=f"{status} {said if said is not None else document!r}"[:300],
        requirement="VRM-CONF-007",
    )


# -- an indicative offer is never accepted --------------------------------------------------------


@REGISTRY.check(
    "BUY-OBL-INDICATIVE",
    title="The buyer never accepts an indicative offer",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-STATE-018", "VRM-CONF-007"),
    roles=BUYER,
)
async def indicative_offer(ctx: CheckContext) -> None:
    """A vendor answers the buyer's RFI with an indicative offer; told to accept
    it, the buyer sends no acceptance, and its driver refuses the instruction
    with ``offer-not-binding`` (spec §7.4)."""
    relationships = await fresh_relationships(ctx.session, "Conformance Indicative Motors")
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    offer = vendor.reply_to(
        rfi, "offer", bodies.offer_body(ctx.session.clock.now(), basis="indicative")
    )
    reply = await _deliver(
        vendor, offer, relationships.delivery_inbox(vendor), "an indicative offer"
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="an indicative offer answering its RFI")
    what = f"accept the indicative offer {offer['id']} from {vendor.id}"
    answer = await _instruct_forbidden(
        ctx, "accept", {"vendor": vendor.id, "offer": offer["id"]}, what
    )
    await asyncio.sleep(ABSENCE_WATCH_SECONDS)
    sent = [
        item.describe()
        for item in vendor.received()
        if item.type == "offer-acceptance"
        and (item.body.get("offer") or {}).get("id") == offer["id"]
    ]
    ctx.require(
        not sent,
        "no acceptance of the indicative offer is sent",
        expected="no acceptance",
        actual=sent or None,
        requirement="VRM-STATE-018",
    )
    _judge_refusal(ctx, answer, E.OFFER_NOT_BINDING, what)


# -- several open offers --------------------------------------------------------------------------


@REGISTRY.check(
    "BUY-OBL-OPEN-OFFERS",
    title="With several open offers, the acceptance binds the one she chose",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-MSG-010", "VRM-MSG-013"),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def open_offers(ctx: CheckContext) -> None:
    """One vendor makes two binding offers (neither supersedes the other) and a
    second vendor one. Told to accept the first vendor's second offer, the
    buyer's acceptance names exactly that offer, by the digest of its bytes;
    then it should decline the other vendor's open offer (a SHOULD)."""
    relationships = await fresh_relationships(
        ctx.session, "Conformance Twofold Motors", "Conformance Other Motors"
    )
    chosen_vendor, other_vendor = relationships.vendors
    first, _ = await _binding_offer(ctx, relationships, chosen_vendor, total="29000")
    second, second_token = await _binding_offer(ctx, relationships, chosen_vendor, total="28000")
    other, _ = await _binding_offer(ctx, relationships, other_vendor, total="28800")
    await prompt_buyer(
        ctx.session,
        "accept",
        {"vendor": chosen_vendor.id, "offer": second["id"]},
        instruction=f"Make the buyer accept offer {second['id']} from {chosen_vendor.id}",
    )
    acceptance = await chosen_vendor.expect(
        lambda item: item.type == "offer-acceptance",
        description="the buyer sends the acceptance",
        within=prompt_wait(ctx.session),
        requirement="VRM-MSG-010",
    )
    named = acceptance.body.get("offer") or {}
    wanted = {"id": second["id"], "digest": digest(second_token)}
    ctx.require(
        named.get("id") == wanted["id"] and named.get("digest") == wanted["digest"],
        "the acceptance names the offer she chose, with the digest of its bytes, not the "
        "vendor's other open offer",
        expected=wanted,
        actual={"id": named.get("id"), "digest": named.get("digest")},
        requirement="VRM-MSG-010",
    )
    ctx.note(f"the vendor's other open offer {first['id']} is left as the buyer chooses")
    try:
        decline = await other_vendor.expect(
            lambda item: item.type == "offer-decline",
            description="the buyer declines the other vendor's open offer",
            within=ctx.session.options.reply_timeout,
        )
    except CheckFailed:  # its absence is judged below, at SHOULD level
        declined: list[Any] = []
    else:
        declined = list(decline.body.get("offers") or [])
    ctx.recommend(
        other["id"] in declined,
        "once she accepted an offer, the other vendor's open offer is declined",
        expected=other["id"],
        actual=declined or None,
        requirement="VRM-MSG-013",
    )


# -- a relationship in servicing, with her decided terms ------------------------------------------


@dataclass(slots=True)
class DecidedServicing:
    """A relationship past the welcome: the deal, her answer to terms she decided."""

    relationships: BuyerRelationships
    vendor: SuiteVendor
    inbox: str | None
    acceptance: Inbound
    #: The notice sent in WELCOME before the terms, and the buyer's answer to it.
    early_notice: dict[str, Any]
    early_reply: InboxReply | None
    #: Her terms response (None when the driver refused the instruction).
    response: Inbound | None
    #: The driver's answer to the terms instruction: status and body.
    driver: tuple[int, Any] | None


@fixture("buyer-decided-servicing")
async def buyer_decided_servicing(session: Session) -> DecidedServicing:
    """A deal with a new vendor; in WELCOME the vendor sends a maintenance notice
    (kept for BUY-OBL-NOTICE-STATE); then terms asking three items, which she
    answers with her decision: the model only, notices of maintenance, safety
    and recall (VRM-CONF-008)."""
    relationships = await fresh_relationships(session, "Conformance DecidedServicing Motors")
    vendor = relationships.vendors[0]
    inbox = relationships.delivery_inbox(vendor)
    rfi = relationships.rfis[vendor.id]
    offer = vendor.reply_to(rfi, "offer", bodies.offer_body(session.clock.now(), basis="binding"))
    token = sign(offer, vendor.signer)
    reply = await vendor.deliver_token(token, to=str(rfi.field("from")), inbox=inbox, note="offer")
    if reply is not None:
        require_accepted(reply, "the buyer takes a binding offer answering its RFI")
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
            offer_ref=message_ref(token, offer["id"]),
            acceptance_id=str(acceptance.id),
            total=offer["body"]["price"]["total"],
            now=session.clock.now(),
        ),
    )
    require_accepted(
        await vendor.deliver(confirmation, inbox=inbox, note="deal confirmation"),
        "the buyer takes the deal confirmation",
    )
    early = vendor.reply_to(
        acceptance, "service-notice", bodies.service_notice_body(category="maintenance")
    )
    early_reply = await vendor.deliver(early, inbox=inbox, note="a maintenance notice in WELCOME")
    assertion = vendor.reply_to(
        acceptance,
        "terms-assertion",
        bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=session.clock.now(),
            categories=list(TERMS_ASKED),
            terms=vendor.publish_terms(),
        ),
    )
    require_accepted(
        await vendor.deliver(assertion, inbox=inbox, note="terms assertion"),
        "the buyer takes the terms assertion",
    )
    instruction = {
        "vendor": vendor.id,
        "assertion": assertion["id"],
        "decision": {
            "decision": "accept-in-part",
            "accept": list(TERMS_GRANTED),
            "notifications": list(NOTIFICATIONS_ALLOWED),
        },
    }
    record_instruction(session, "terms", instruction)
    driver: tuple[int, Any] | None = None
    if session.driver_url is not None:
        driver = await call_driver_raw(session, "POST", "/terms", instruction)
        if driver[0] >= 400:
            return DecidedServicing(
                relationships, vendor, inbox, acceptance, early, early_reply, None, driver
            )
    elif session.operator is not None:
        session.operator.instruct(
            f"Make the buyer answer the terms from {vendor.id}: accept only "
            f"{', '.join(TERMS_GRANTED)}, allow notices of {', '.join(NOTIFICATIONS_ALLOWED)}",
            timeout_seconds=session.options.operator_timeout,
        )
    response = await vendor.expect(
        lambda item: item.type == "terms-response",
        description="the buyer answers the terms as she decided",
        within=prompt_wait(session),
        requirement="VRM-CONF-008",
    )
    return DecidedServicing(
        relationships, vendor, inbox, acceptance, early, early_reply, response, driver
    )


def _items(entries: Any) -> list[str]:
    return [str(entry.get("item")) for entry in entries or [] if isinstance(entry, Mapping)]


@REGISTRY.check(
    "BUY-OBL-TERMS-DECISION",
    title="Terms get only what she decided: nothing beyond it is accepted or shared",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-BUY-001", "VRM-CONF-008"),
    roles=BUYER,
    needs=("sends:terms-response",),
)
async def terms_decision(ctx: CheckContext) -> None:
    """After the deal, terms ask for three items; she decides to accept one and to
    allow three notification categories. The buyer's terms response accepts
    and carries nothing beyond that one item and allows no other category; a
    driver may instead refuse the instruction with problem details
    (VRM-CONF-007), and then no terms response is sent."""
    servicing = await ctx.use(buyer_decided_servicing)
    if servicing.response is None:
        assert servicing.driver is not None
        status, answer = servicing.driver
        ctx.note(f"the driver refused the terms instruction: {status} {answer!r}"[:300])
        answers = [i.describe() for i in servicing.vendor.received() if i.type == "terms-response"]
        ctx.require(
            not answers,
            "a refused instruction sends no terms response",
            expected=[],
            actual=answers or None,
            requirement="VRM-CONF-007",
        )
        return
    body = servicing.response.body
    accepted = _items(body.get("accepted"))
    shared = _items(body.get("data"))
    beyond = sorted({*accepted, *shared} - set(TERMS_GRANTED))
    ctx.require(
        not beyond,
        "the terms response accepts and shares nothing she did not approve",
        expected=f"at most {list(TERMS_GRANTED)}",
        actual={"accepted": accepted, "data": shared},
        requirement="VRM-BUY-001",
    )
    allowed = list((body.get("notificationPreferences") or {}).get("allowed") or [])
    ctx.require(
        set(allowed) <= set(NOTIFICATIONS_ALLOWED),
        "the terms response allows no notification category she did not choose",
        expected=f"a subset of {list(NOTIFICATIONS_ALLOWED)}",
        actual=allowed,
        requirement="VRM-BUY-001",
    )
    ctx.expect(
        body.get("decision") == "accept-in-part" and sorted(accepted) == sorted(TERMS_GRANTED),
        "the terms response is her decision: accept-in-part, with the item she accepted",
        expected={"decision": "accept-in-part", "accepted": list(TERMS_GRANTED)},
        actual={"decision": body.get("decision"), "accepted": accepted},
        requirement="VRM-CONF-008",
    )


def _servicing_or_skip(ctx: CheckContext, servicing: DecidedServicing) -> str:
    if servicing.response is None:
        ctx.skip("the buyer's driver refused the terms instruction: no relationship in servicing")
    allowed = (servicing.response.body.get("notificationPreferences") or {}).get("allowed") or []
    if "maintenance" not in allowed:
        ctx.skip(f"the buyer allowed notices of {allowed!r}, not maintenance")
    return _require_inbox(ctx, servicing.inbox)


@REGISTRY.check(
    "BUY-OBL-NOTICE-STATE",
    title="Before her terms, only a safety recall may be noticed",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-STATE-014",),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def notice_in_welcome(ctx: CheckContext) -> None:
    """Right after the deal (WELCOME), the vendor sends a maintenance reminder:
    ``illegal-transition`` (spec §7.2). After her terms response allowed
    maintenance notices, the same notice (another id) is taken."""
    servicing = await ctx.use(buyer_decided_servicing)
    await expect_refused(
        ctx,
        servicing.vendor,
        servicing.early_reply,
        str(servicing.early_notice["id"]),
        E.ILLEGAL_TRANSITION,
        what="a maintenance notice in WELCOME",
        requirement="VRM-STATE-014",
    )
    inbox = _servicing_or_skip(ctx, servicing)
    legal = servicing.vendor.reply_to(
        servicing.acceptance, "service-notice", bodies.service_notice_body(category="maintenance")
    )
    reply = await _deliver(servicing.vendor, legal, inbox, "a maintenance notice in SERVICING")
    assert reply is not None
    expect_accepted(ctx, reply, what="a maintenance notice once she allowed them")


@REGISTRY.check(
    "BUY-OBL-MISLABELLED-NOTICE",
    title="A notice of a kind its category does not allow is refused",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-MSG-038",),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def mislabelled_notice(ctx: CheckContext) -> None:
    """In SERVICING, a notice of kind ``programme-offer`` in category
    ``maintenance`` (which she allowed) is ``mislabelled-notice``; the same
    notice as a ``maintenance-reminder`` is then taken."""
    servicing = await ctx.use(buyer_decided_servicing)
    inbox = _servicing_or_skip(ctx, servicing)
    message_id = new_message_id()
    body = {**bodies.service_notice_body(category="maintenance"), "kind": "programme-offer"}
    notice = servicing.vendor.reply_to(
        servicing.acceptance, "service-notice", body, message_id=message_id
    )
    reply = await _deliver(servicing.vendor, notice, inbox, "a programme offer as maintenance")
    await expect_refused(
        ctx,
        servicing.vendor,
        reply,
        message_id,
        E.MISLABELLED_NOTICE,
        what="a programme offer labelled maintenance",
        requirement="VRM-MSG-038",
    )
    if reply is not None and not reply.accepted:
        legal = servicing.vendor.reply_to(
            servicing.acceptance,
            "service-notice",
            bodies.service_notice_body(category="maintenance"),
            message_id=message_id,
        )
        again = await _deliver(servicing.vendor, legal, inbox, "the notice, labelled right")
        assert again is not None
        expect_accepted(ctx, again, what="the same notice of a kind its category allows")


@REGISTRY.check(
    "BUY-OBL-OFFER-BASIS",
    title="Only the individual counters",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-STATE-021",),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def offer_basis(ctx: CheckContext) -> None:
    """A vendor's offer of basis ``counter`` answering the buyer's RFI is
    ``illegal-transition``, and the same offer as ``binding`` is then taken."""
    relationships = await fresh_relationships(ctx.session, "Conformance Counter Motors")
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    inbox = _require_inbox(ctx, relationships.delivery_inbox(vendor))
    message_id = new_message_id()
    counter = vendor.reply_to(
        rfi,
        "offer",
        bodies.offer_body(ctx.session.clock.now(), basis="counter"),
        message_id=message_id,
    )
    reply = await _deliver(vendor, counter, inbox, "a vendor's offer of basis counter")
    await expect_refused(
        ctx,
        vendor,
        reply,
        message_id,
        E.ILLEGAL_TRANSITION,
        what="a vendor's offer of basis counter",
        requirement="VRM-STATE-021",
    )
    if reply is not None and not reply.accepted:
        legal = vendor.reply_to(
            rfi,
            "offer",
            bodies.offer_body(ctx.session.clock.now(), basis="binding"),
            message_id=message_id,
        )
        again = await _deliver(vendor, legal, inbox, "the offer as binding")
        assert again is not None
        expect_accepted(ctx, again, what="the same offer of basis binding")


@REGISTRY.check(
    "BUY-OBL-DEVELOPMENT-TOPIC",
    title="A vendor's offer after the welcome names its topic",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-MSG-037",),
    roles=BUYER,
    needs=("sends:offer-acceptance",),
)
async def development_topic(ctx: CheckContext) -> None:
    """In SERVICING, a vendor's offer without a ``topic`` is a development offer
    that does not say what it is about: ``illegal-transition`` (spec §6.3)."""
    servicing = await ctx.use(buyer_decided_servicing)
    servicing_inbox = _servicing_or_skip(ctx, servicing)
    development_id = new_message_id()
    untopical = servicing.vendor.reply_to(
        servicing.acceptance,
        "offer",
        bodies.offer_body(ctx.session.clock.now(), basis="binding"),
        message_id=development_id,
    )
    late = await _deliver(
        servicing.vendor, untopical, servicing_inbox, "a development offer without a topic"
    )
    await expect_refused(
        ctx,
        servicing.vendor,
        late,
        development_id,
        E.ILLEGAL_TRANSITION,
        what="a vendor's offer in SERVICING without a topic",
        requirement="VRM-MSG-037",
    )


# -- a vendor's exit ------------------------------------------------------------------------------


@REGISTRY.check(
    "BUY-OBL-VENDOR-EXIT-REASON",
    title="A vendor exits only because it leaves the market",
    step=LifecycleStep.EXIT,
    requirements=("VRM-STATE-015",),
    roles=BUYER,
)
async def vendor_exit_reason(ctx: CheckContext) -> None:
    """A vendor sends the buyer an exit notice with reason ``need-changed``:
    ``illegal-transition``; the same notice with reason
    ``vendor-leaving-market`` is then taken."""
    relationships = await fresh_relationships(ctx.session, "Conformance Leaving Motors")
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    inbox = _require_inbox(ctx, relationships.delivery_inbox(vendor))
    message_id = new_message_id()
    body = bodies.exit_notice_body(ctx.session.clock.now(), export=False, deletion=False)
    wrong = vendor.reply_to(rfi, "exit-notice", body, message_id=message_id)
    reply = await _deliver(vendor, wrong, inbox, "a vendor's exit notice, reason need-changed")
    await expect_refused(
        ctx,
        vendor,
        reply,
        message_id,
        E.ILLEGAL_TRANSITION,
        what="a vendor's exit notice whose reason is need-changed",
        requirement="VRM-STATE-015",
    )
    if reply is not None and not reply.accepted:
        legal = vendor.reply_to(
            rfi, "exit-notice", {**body, "reason": "vendor-leaving-market"}, message_id=message_id
        )
        again = await _deliver(vendor, legal, inbox, "the exit notice, vendor-leaving-market")
        assert again is not None
        expect_accepted(ctx, again, what="a vendor's exit notice because it leaves the market")


# -- her exit: the receipt accounts for everything she shared -------------------------------------


def _shared_from_wire(vendor: SuiteVendor) -> set[str]:
    """What she shared with ``vendor``, as the suite saw it: identity at acceptance,
    data in terms and service responses."""
    shared: set[str] = set()
    for item in vendor.received():
        if item.type == "offer-acceptance":
            # The acceptance's members and the categories they are held under:
            # the data-categories registry's acceptanceMember (spec §6.4, §16.8).
            for member, category in acceptance_categories().items():
                if _member(item.body, member) is not None:
                    shared.add(category)
        shared |= set(_items(item.body.get("data")))
    return shared


def _member(body: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted member path of ``body`` (``identity.name``), if any."""
    value: Any = body
    for name in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


async def _shared_by_driver(session: Session, pseudonym: str) -> set[str]:
    if session.driver_url is None:
        return set()
    state = await call_driver(session, "GET", "/state")
    relationships = state.get("relationships") if isinstance(state, Mapping) else None
    view = relationships.get(pseudonym) if isinstance(relationships, Mapping) else None
    shared = view.get("shared") if isinstance(view, Mapping) else None
    return {str(c) for c in shared} if isinstance(shared, list) else set()


def _acknowledgement(
    notice: Inbound, now: Any, held: Collection[str], *, receipt: bool = True, export: bool = True
) -> dict[str, Any]:
    data = {category: "held" for category in sorted(held)}
    body = bodies.exit_acknowledgement_body(
        notice_ref=notice.ref(), relationship=str(notice.field("from")), now=now, held=data
    )
    if not export or not notice.body.get("export", {}).get("requested"):
        body.pop("export")
    if not receipt:
        body.pop("deletionReceipt")
    return body


@REGISTRY.check(
    "BUY-OBL-EXIT-RECEIPT",
    title="An exit acknowledgement must account for every item she shared",
    step=LifecycleStep.EXIT,
    requirements=("VRM-BUY-014", "VRM-MSG-034", "VRM-SIG-027"),
    roles=BUYER,
    needs=("sends:offer-acceptance", "sends:exit-notice"),
)
async def exit_receipt(ctx: CheckContext) -> None:
    """After a deal in which she shared data, she exits asking for deletion. An
    acknowledgement whose deletion receipt leaves out one item she shared is
    ``exit-incomplete`` (VRM-BUY-014), so is one without the deletion receipt
    she asked for (VRM-MSG-034); one naming her notice with another digest is
    ``reference-mismatch`` (VRM-SIG-027); one that accounts for every item is taken."""
    relationships = await fresh_relationships(ctx.session, "Conformance Forgetful Motors")
    vendor = relationships.vendors[0]
    inbox = relationships.delivery_inbox(vendor)
    acceptance = await _deal(ctx, relationships, vendor)
    pseudonym = str(relationships.rfis[vendor.id].field("from"))
    await prompt_buyer(
        ctx.session,
        "exit",
        {"vendor": vendor.id, "export": True, "deletion": True},
        instruction=f"Make the buyer exit its relationship with {vendor.id}, asking for "
        "an export and deletion",
    )
    notice = await vendor.expect(
        lambda item: item.type == "exit-notice",
        description="the buyer sends the exit notice",
        within=prompt_wait(ctx.session),
        requirement="VRM-MSG-023",
    )
    if not (notice.body.get("deletion") or {}).get("requested"):
        ctx.skip("the buyer's exit notice asks for no deletion: there is no receipt to judge")
    shared = _shared_from_wire(vendor) | await _shared_by_driver(ctx.session, pseudonym)
    ctx.note(f"she shared {sorted(shared)} (acceptance {acceptance.id})")
    if not shared:
        ctx.skip("she shared nothing with the vendor: no receipt can leave an item out")
    left_out = sorted(shared)[0]
    now = ctx.session.clock.now()
    omitting = _acknowledgement(notice, now, shared)
    receipt = omitting["deletionReceipt"]
    receipt["deleted"] = [c for c in receipt["deleted"] if c != left_out]
    wrong_digest = _acknowledgement(notice, now, shared)
    wrong_digest["notice"] = {**wrong_digest["notice"], "digest": digest(b"another notice")}
    cases: list[tuple[str, dict[str, Any], ErrorCode, str]] = [
        (f"an acknowledgement whose deletion receipt leaves out {left_out}", omitting,
         E.EXIT_INCOMPLETE, "VRM-BUY-014"),
        ("an acknowledgement without the deletion receipt she asked for",
         _acknowledgement(notice, now, shared, receipt=False), E.EXIT_INCOMPLETE, "VRM-MSG-034"),
        ("an acknowledgement naming her exit notice with another digest", wrong_digest,
         E.REFERENCE_MISMATCH, "VRM-SIG-027"),
    ]  # fmt: skip
    if (notice.body.get("export") or {}).get("requested"):
        cases.append(
            (
                "an acknowledgement without the export she asked for",
                _acknowledgement(notice, now, shared, export=False),
                E.EXIT_INCOMPLETE,
                "VRM-MSG-034",
            )
        )
    for what, body, code, requirement in cases:
        message_id = new_message_id()
        ack = vendor.reply_to(notice, "exit-acknowledgement", body, message_id=message_id)
        reply = await _deliver(vendor, ack, inbox, what)
        await expect_refused(
            ctx, vendor, reply, message_id, code, what=what, requirement=requirement
        )
    complete = vendor.reply_to(
        notice, "exit-acknowledgement", _acknowledgement(notice, now, shared)
    )
    reply = await _deliver(vendor, complete, inbox, "the complete acknowledgement")
    if reply is not None:
        expect_accepted(
            ctx, reply, what="an acknowledgement that accounts for every item she shared"
        )
