"""Her own terms (IEEE 7012 "MyTerms", spec §6.70, §6.71) and programmes
joined by her request (spec §6.72), for both roles.

Against a vendor, the suite is an individual: after her RFI she proffers each
agreement of the roster (and once an agreement with a digest that is not the
roster's, which must be refused); each proffer must be answered with a
``terms-agreement`` bound to it by its digest, naming the same agreement, and
agreeing exactly when the vendor's discovery document lists the agreement
under ``agreements``. Against a buyer, the suite is a vendor to which the
buyer, told to (``POST {driver}/proffer {"vendor", "agreement"}``; a driver
without it makes the check skip), proffers a roster agreement; an answer
about another agreement, or naming the proffer with another digest, must be
refused, and the right answer taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import (
    buyer_rfi_to_new_vendor,
    prompt_buyer,
    prompt_wait,
    reply_inbox,
    run_deal,
    run_welcome,
)
from conformance.context import CheckContext
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest, sign
from conformance.peers.vendors import SUITE_PROGRAMME, require_accepted, vendor_side
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.errors import ErrorCode
from vrm_protocol.myterms import roster
from vrm_protocol.vocabulary import LifecycleStep, Role

E = ErrorCode
WRONG_DIGEST = "sha-256:" + "Z" * 43


def _answering(proffer_id: str) -> Callable[[Inbound], bool]:
    def predicate(item: Inbound) -> bool:
        named = item.body.get("proffer")
        return (
            item.type == "terms-agreement"
            and isinstance(named, dict)
            and (named.get("id") == proffer_id)
        )

    return predicate


def _refs() -> list[dict[str, str]]:
    return [{"id": a.id, "version": a.version, "digest": a.digest} for a in roster().values()]


@REGISTRY.check(
    "MYT-VEN-AGREEMENT",
    title="The vendor answers her proffered terms: agreeing exactly to what its discovery lists",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-MYT-001", "VRM-MYT-002", "VRM-MYT-003"),
    roles=(Role.VENDOR,),
    needs=("accepts:terms-proffer", "sends:terms-agreement"),
)
async def vendor_answers_proffers(ctx: CheckContext) -> None:
    """After her RFI, a proffer naming a roster agreement with another digest is
    ``reference-mismatch``; each roster agreement proffered is answered with a
    terms-agreement naming the proffer by its digest and the same agreement,
    ``agree`` exactly when the discovery document lists it."""
    listed = {
        (str(a.get("id")), str(a.get("version")), str(a.get("digest")))
        for a in ctx.discovery.get("agreements") or []
        if isinstance(a, dict)
    }
    side = await buyer_side(ctx.session)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    refs = _refs()
    forged = persona.compose(
        "terms-proffer",
        {"agreement": {**refs[0], "digest": WRONG_DIGEST}},
        thread=rfi["id"],
        parent=rfi["id"],
    )
    expect_rejection(
        ctx,
        await persona.send(forged, note="a proffer naming a roster agreement with another digest"),
        E.REFERENCE_MISMATCH,
        what="a proffer whose digest is not the roster's text's",
        requirement="VRM-MYT-001",
    )
    for ref in refs:
        proffer = persona.compose(
            "terms-proffer", {"agreement": ref}, thread=rfi["id"], parent=rfi["id"]
        )
        expect_accepted(
            ctx,
            await persona.send(proffer, note=f"her proffer of {ref['id']}"),
            what=f"her proffer of {ref['id']}",
            requirement="VRM-MYT-001",
        )
        sent = persona.sent[-1]
        answer = await persona.expect(
            _answering(str(proffer["id"])),
            description=f"the vendor answers her proffer of {ref['id']}",
            requirement="VRM-MYT-003",
        )
        ctx.expect(
            answer.body.get("proffer") == {"id": proffer["id"], "digest": digest(sent.token)},
            "the answer names her proffer by its digest",
            expected=proffer["id"],
            actual=answer.body.get("proffer"),
            requirement="VRM-MYT-002",
        )
        ctx.expect(
            answer.body.get("agreement") == ref,
            "the answer names the agreement she proffered",
            expected=ref,
            actual=answer.body.get("agreement"),
            requirement="VRM-MYT-003",
        )
        wanted = "agree" if (ref["id"], ref["version"], ref["digest"]) in listed else "decline"
        ctx.require(
            answer.body.get("decision") == wanted,
            f"the vendor's decision on {ref['id']} is what its discovery document promises",
            expected=wanted,
            actual=answer.body.get("decision"),
            requirement="VRM-MYT-003",
        )


@REGISTRY.check(
    "MYT-BUY-PROFFER",
    title="The buyer proffers a roster agreement and takes only an answer bound to it",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-MYT-001", "VRM-MYT-002", "VRM-MYT-004"),
    roles=(Role.BUYER,),
    needs=("test-driver", "sends:terms-proffer", "accepts:terms-agreement"),
)
async def buyer_proffers(ctx: CheckContext) -> None:
    """Told to proffer ``myterms-sd-bb`` after her RFI, the buyer sends a proffer
    naming it by the roster's digest. An answer about another roster agreement
    is ``reference-mismatch``; one naming her proffer with another digest is
    ``reference-mismatch``; the answer bound to her proffer is taken."""
    session = ctx.session
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance MyTerms Motors")
    refs = {ref["id"]: ref for ref in _refs()}
    status, answer = await call_driver_raw(
        session, "POST", "/proffer", {"vendor": vendor.id, "agreement": "myterms-sd-bb"}
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no proffer instruction")
    ctx.require(200 <= status < 300, "the test driver takes the proffer instruction", actual=answer)
    try:
        proffer = await vendor.expect(
            lambda item: item.type == "terms-proffer",
            description="the buyer proffers her terms",
            within=prompt_wait(session),
        )
    except CheckFailed:
        ctx.require(False, "the buyer sends the proffer she was told to", requirement="VRM-MYT-001")
        return
    ctx.require(
        proffer.body.get("agreement") == refs["myterms-sd-bb"],
        "the proffer names the roster agreement by id, version and the digest of its text",
        expected=refs["myterms-sd-bb"],
        actual=proffer.body.get("agreement"),
        requirement="VRM-MYT-001",
    )
    inbox = reply_inbox(rfi)

    def agreement(**changes: Any) -> dict[str, Any]:
        body = {"proffer": proffer.ref(), "agreement": refs["myterms-sd-bb"], "decision": "agree"}
        return vendor.reply_to(proffer, "terms-agreement", {**body, **changes})

    other = agreement(agreement=refs["myterms-notices-only"])
    reply = await vendor.deliver(other, inbox=inbox, note="an answer about another agreement")
    if reply is not None:
        expect_rejection(
            ctx,
            reply,
            E.REFERENCE_MISMATCH,
            what="an answer to her proffer that names another agreement",
            requirement="VRM-MYT-004",
        )
    wrong = agreement(proffer={"id": str(proffer.id), "digest": WRONG_DIGEST})
    reply = await vendor.deliver(wrong, inbox=inbox, note="an answer naming another digest")
    if reply is not None:
        expect_rejection(
            ctx,
            reply,
            E.REFERENCE_MISMATCH,
            what="an answer naming her proffer with another digest",
            requirement="VRM-MYT-002",
        )
    right = await vendor.deliver(agreement(), inbox=inbox, note="the vendor agrees to her terms")
    if right is not None:
        expect_accepted(
            ctx, right, what="the answer bound to her proffer", requirement="VRM-MYT-002"
        )


# -- programmes joined by her request (spec §6.72) -----------------------------------------------


def _programme_terms(enrolment_id: str) -> Callable[[Inbound], bool]:
    def predicate(item: Inbound) -> bool:
        named = item.body.get("programme")
        return (
            item.type == "terms-assertion"
            and isinstance(named, dict)
            and (named.get("enrolment") or {}).get("id") == enrolment_id
        ) or (item.type == "terms-assertion" and item.field("parent") == enrolment_id)

    return predicate


@REGISTRY.check(
    "PRG-VEN-ENROLMENT",
    title="The vendor answers her programme enrolment with the programme's terms, bound to it",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-MYT-005", "VRM-MYT-006"),
    roles=(Role.VENDOR,),
    needs=("accepts:programme-enrolment", "sends:terms-assertion"),
)
async def vendor_answers_enrolment(ctx: CheckContext) -> None:
    """In service, an enrolment in a programme the discovery document does not
    list is ``reference-mismatch``; an enrolment in the first programme it lists
    is answered with a terms assertion whose ``programme`` names the programme
    and the enrolment by its digest. Skips when it lists no programme."""
    listed = [
        str(p.get("code"))
        for p in ctx.discovery.get("programmes") or []
        if isinstance(p, dict) and p.get("code")
    ]
    if not listed:
        ctx.skip("the vendor's discovery document lists no programme")
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    persona = thread.persona
    parent = str(thread.terms_response.payload["id"]) if thread.terms_response else None
    unknown = persona.compose(
        "programme-enrolment",
        {"programme": "no-such-programme-" + listed[0][:20]},
        thread=thread.thread,
        parent=parent,
    )
    expect_rejection(
        ctx,
        await persona.send(unknown, note="an enrolment in a programme it does not list"),
        E.REFERENCE_MISMATCH,
        what="an enrolment in a programme its discovery document does not list",
        requirement="VRM-MYT-006",
    )
    enrolment = persona.compose(
        "programme-enrolment", {"programme": listed[0]}, thread=thread.thread, parent=parent
    )
    expect_accepted(
        ctx,
        await persona.send(enrolment, note=f"her enrolment in {listed[0]}"),
        what=f"her enrolment in {listed[0]}",
        requirement="VRM-MYT-006",
    )
    sent = persona.sent[-1]
    terms = await persona.expect(
        _programme_terms(str(enrolment["id"])),
        description="the vendor answers her enrolment with the programme's terms",
        requirement="VRM-MYT-006",
    )
    wanted = {"code": listed[0], "enrolment": {"id": enrolment["id"], "digest": digest(sent.token)}}
    ctx.require(
        terms.body.get("programme") == wanted,
        "the programme's terms name the programme and her enrolment by its digest",
        expected=wanted,
        actual=terms.body.get("programme"),
        requirement="VRM-MYT-006",
    )
    ctx.require(
        terms.ok,
        "the programme's terms pass the receiving pipeline (they answer her enrolment)",
        actual=terms.error_detail,
        requirement="VRM-MYT-005",
    )


@REGISTRY.check(
    "PRG-BUY-ENROLMENT",
    title="The buyer joins a listed programme by her request and takes only terms bound to it",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-MYT-005",),
    roles=(Role.BUYER,),
    needs=("test-driver", "sends:programme-enrolment", "accepts:terms-assertion"),
)
async def buyer_enrols(ctx: CheckContext) -> None:
    """The suite's vendor (a third party: terms, no offer) lists a programme. In
    service, told to enrol (``POST {driver}/enrol {"vendor", "programme"}``), the
    buyer sends a programme-enrolment naming it; programme terms naming her
    enrolment with another digest are ``reference-mismatch``; those bound to it
    are taken."""
    session = ctx.session
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Programme Audio")
    inbox = reply_inbox(rfi)

    def terms_body(**extra: Any) -> dict[str, Any]:
        return {
            **bodies.terms_assertion_body(
                party_id=vendor.id,
                party_name=vendor.name,
                now=session.clock.now(),
                categories=["vehicle.model"],
                terms=vendor.publish_terms(),
            ),
            **extra,
        }

    assertion = vendor.reply_to(rfi, "terms-assertion", terms_body())
    require_accepted(
        await vendor.deliver(assertion, inbox=inbox, note="terms answering the RFI"),
        "the buyer takes the terms answering her RFI",
    )
    await prompt_buyer(
        session,
        "terms",
        {"vendor": vendor.id, "assertion": assertion["id"]},
        instruction=f"Make the buyer answer the terms of sharing from {vendor.id}",
    )
    await vendor.expect(
        lambda item: item.type == "terms-response",
        description="the buyer answers the terms: service begins",
        within=prompt_wait(session),
    )
    status, answer = await call_driver_raw(
        session, "POST", "/enrol", {"vendor": vendor.id, "programme": SUITE_PROGRAMME}
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no enrol instruction")
    ctx.require(200 <= status < 300, "the test driver takes the enrol instruction", actual=answer)
    enrolment = await vendor.expect(
        lambda item: item.type == "programme-enrolment",
        description="the buyer asks to join the programme",
        within=prompt_wait(session),
    )
    ctx.require(
        enrolment.body.get("programme") == SUITE_PROGRAMME,
        "the enrolment names the programme the vendor lists",
        expected=SUITE_PROGRAMME,
        actual=enrolment.body.get("programme"),
        requirement="VRM-MYT-005",
    )
    wrong = vendor.reply_to(
        enrolment,
        "terms-assertion",
        terms_body(
            programme={
                "code": SUITE_PROGRAMME,
                "enrolment": {"id": str(enrolment.id), "digest": WRONG_DIGEST},
            }
        ),
    )
    reply = await vendor.deliver(wrong, inbox=inbox, note="programme terms, another digest")
    if reply is not None:
        expect_rejection(
            ctx,
            reply,
            E.REFERENCE_MISMATCH,
            what="programme terms naming her enrolment with another digest",
            requirement="VRM-MYT-005",
        )
    right = vendor.reply_to(
        enrolment,
        "terms-assertion",
        terms_body(programme={"code": SUITE_PROGRAMME, "enrolment": enrolment.ref()}),
    )
    reply = await vendor.deliver(right, inbox=inbox, note="the programme's terms")
    if reply is not None:
        expect_accepted(
            ctx, reply, what="the programme's terms bound to her enrolment",
            requirement="VRM-MYT-005",
        )  # fmt: skip


# -- notices that are what they say, her side (spec §6.9) -----------------------------------------


@REGISTRY.check(
    "BUY-GUARD-MISLABELLED-NOTICE",
    title="The buyer refuses a mislabelled notice, reports it and records it as a breach",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-MSG-038", "VRM-MYT-007"),
    roles=(Role.BUYER,),
    needs=("test-driver", "accepts:service-notice"),
)
async def buyer_reports_mislabelled(ctx: CheckContext) -> None:
    """In service with the suite's vendor, a programme offer labelled
    ``technical`` is ``mislabelled-notice``; the buyer then sends the vendor a
    problem report naming the notice by its digest, and its test driver's state
    lists the breach with that report."""
    session = ctx.session
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Sneaky Motors")
    inbox = reply_inbox(rfi)
    assertion = vendor.reply_to(
        rfi,
        "terms-assertion",
        bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=session.clock.now(),
            categories=["vehicle.model"],
            terms=vendor.publish_terms(),
        ),
    )
    require_accepted(
        await vendor.deliver(assertion, inbox=inbox, note="terms answering the RFI"),
        "the buyer takes the terms answering her RFI",
    )
    await prompt_buyer(
        session,
        "terms",
        {"vendor": vendor.id, "assertion": assertion["id"]},
        instruction=f"Make the buyer answer the terms of sharing from {vendor.id}",
    )
    await vendor.expect(
        lambda item: item.type == "terms-response",
        description="the buyer answers the terms: service begins",
        within=prompt_wait(session),
    )
    notice = vendor.reply_to(
        rfi,
        "service-notice",
        {
            "kind": "programme-offer",
            "category": "technical",
            "summary": "A technical update (really: our new-model promotion)",
        },
    )
    token = sign(notice, vendor.signer)
    reply = await vendor.deliver_token(
        token, to=str(rfi.field("from")), inbox=inbox, note="a programme offer labelled technical"
    )
    if reply is not None:
        expect_rejection(
            ctx,
            reply,
            E.MISLABELLED_NOTICE,
            what="a programme offer labelled technical",
            requirement="VRM-MSG-038",
        )
    wanted = {"id": notice["id"], "digest": digest(token)}
    try:
        report = await vendor.expect(
            lambda item: (
                item.type == "problem-report"
                and (item.body.get("regarding") or {}).get("id") == notice["id"]
            ),
            description="the buyer reports the mislabelled notice",
            within=prompt_wait(session),
        )
    except CheckFailed:
        ctx.require(
            False,
            "the buyer tells the vendor, in a problem report, that its notice is mislabelled",
            requirement="VRM-MYT-007",
        )
        return
    ctx.expect(
        report.body.get("regarding") == wanted and report.body.get("code") == "mislabelled-notice",
        "the report names the notice by its digest, with code mislabelled-notice",
        expected={"regarding": wanted, "code": "mislabelled-notice"},
        actual={"regarding": report.body.get("regarding"), "code": report.body.get("code")},
        requirement="VRM-MYT-007",
    )
    status, state = await call_driver_raw(session, "GET", "/state")
    breaches = state.get("breaches") if status == 200 and isinstance(state, dict) else None
    recorded = [
        b for b in breaches or [] if isinstance(b, dict) and b.get("message") == notice["id"]
    ]
    ctx.require(
        bool(recorded) and recorded[0].get("report") == str(report.id),
        "her agent records the notice as a breach of her terms, with its report",
        expected={"message": notice["id"], "report": str(report.id)},
        actual=breaches,
        requirement="VRM-MYT-007",
    )


# -- "my suppliers follow me" (spec §6.73, §6.74) ------------------------------------------------

#: How long the suite watches for an update that must not come.
ABSENCE_SECONDS = 3.0


@REGISTRY.check(
    "DET-VEN-RECEIPT",
    title="The vendor receipts her new details: exactly the items it holds under her consent",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-MYT-008", "VRM-MYT-009"),
    roles=(Role.VENDOR,),
    needs=("accepts:details-update", "sends:details-receipt"),
)
async def vendor_receipts_details(ctx: CheckContext) -> None:
    """After the welcome (data shared under its terms), her details update
    naming an item she shared and one she never shared is answered with a
    details receipt naming the update by its digest, listing as held the shared
    item and not the other."""
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    persona = thread.persona
    if not thread.shared_categories:
        ctx.skip("nothing was shared under the vendor's terms")
    shared = thread.shared_categories[0]
    never = "travel.dates" if shared != "travel.dates" else "location.home-area"
    update = persona.compose(
        "details-update",
        {"items": [{"item": shared, "value": "changed"}, {"item": never, "value": "changed"}]},
        thread=thread.thread,
    )
    expect_accepted(
        ctx, await persona.send(update, note="her new details"), what="her details update"
    )
    sent = persona.sent[-1]
    receipt = await persona.expect(
        lambda item: (
            item.type == "details-receipt"
            and (item.body.get("update") or {}).get("id") == update["id"]
        ),
        description="the vendor receipts her details update",
        requirement="VRM-MYT-009",
    )
    ctx.expect(
        receipt.body.get("update") == {"id": update["id"], "digest": digest(sent.token)},
        "the receipt names her update by its digest",
        actual=receipt.body.get("update"),
        requirement="VRM-MYT-008",
    )
    held = receipt.body.get("held")
    ctx.require(
        isinstance(held, list) and shared in held and never not in held,
        "the receipt holds the item she shared, and not the one she never shared",
        expected={"held": [shared], "not": never},
        actual=held,
        requirement="VRM-MYT-009",
    )


@REGISTRY.check(
    "DET-BUY-FOLLOWS-HER",
    title="The buyer's changed details go to the parties that hold them, and to no other",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-MYT-010",),
    roles=(Role.BUYER,),
    needs=("test-driver", "sends:details-update"),
)
async def buyer_details_follow_her(ctx: CheckContext) -> None:
    """Two of the suite's vendors (third parties) assert terms: one asks for the
    car's model, the other for its VIN; she answers both. Told to change the
    model (``POST {driver}/update-details {"items": {...}}``), the buyer sends a
    details update, with that item only, to the vendor she shared it with, and
    nothing to the other. Skips when she shared no model."""
    session = ctx.session
    side = await vendor_side(session)
    holder = await side.add_vendor("Conformance Model Registry")
    other = await side.add_vendor("Conformance VIN Registry")
    await prompt_buyer(
        session,
        "rfi",
        {"vendors": [holder.id, other.id]},
        instruction=f"Make the buyer send a personal RFI to {holder.id} and {other.id}",
    )
    responses = {}
    for vendor, category in ((holder, "vehicle.model"), (other, "vehicle.vin")):
        rfi = await vendor.expect(
            lambda item: item.type == "personal-rfi",
            description=f"the buyer sends a personal RFI to {vendor.id}",
            within=prompt_wait(session),
        )
        assertion = vendor.reply_to(
            rfi,
            "terms-assertion",
            bodies.terms_assertion_body(
                party_id=vendor.id,
                party_name=vendor.name,
                now=session.clock.now(),
                categories=[category],
                terms=vendor.publish_terms(),
            ),
        )
        require_accepted(
            await vendor.deliver(assertion, inbox=reply_inbox(rfi), note="terms"),
            "the buyer takes the terms answering her RFI",
        )
        await prompt_buyer(
            session,
            "terms",
            {"vendor": vendor.id, "assertion": assertion["id"]},
            instruction=f"Make the buyer answer the terms of sharing from {vendor.id}",
        )
        responses[vendor.id] = await vendor.expect(
            lambda item: item.type == "terms-response",
            description="the buyer answers the terms",
            within=prompt_wait(session),
        )
    shared = {
        str(d.get("item"))
        for d in responses[holder.id].body.get("data") or []
        if isinstance(d, dict)
    }
    if "vehicle.model" not in shared:
        ctx.skip("the buyer shared no car model: there is no holder to follow her")
    status, answer = await call_driver_raw(
        session,
        "POST",
        "/update-details",
        {"items": {"vehicle.model": "Toyota Prius Plug-in"}, "reason": "a new car"},
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no update-details instruction")
    ctx.require(200 <= status < 300, "the test driver takes the instruction", actual=answer)
    update = await holder.expect(
        lambda item: item.type == "details-update",
        description="the buyer sends her new details to the party that holds them",
        within=prompt_wait(session),
    )
    items = [str(i.get("item")) for i in update.body.get("items") or [] if isinstance(i, dict)]
    ctx.expect(
        items == ["vehicle.model"],
        "the update carries only the item that party holds",
        expected=["vehicle.model"],
        actual=items,
        requirement="VRM-MYT-010",
    )
    await asyncio.sleep(ABSENCE_SECONDS)
    leaked = [item for item in other.received() if item.type == "details-update"]
    ctx.require(
        not leaked,
        "a party that does not hold the item is not sent her new details",
        expected=[],
        actual=[item.body for item in leaked] or None,
        requirement="VRM-MYT-010",
    )
