"""Living with the product (issue 12): the retention touchpoints (seed 004, spec §6.9),
a vendor leaving the market (seed 003 step 9, spec §6.13) and re-engagement with
the evidence she kept (seed 003 step 10, spec §6.1), for both roles.

A vendor (a manufacturer, a dealer) decides on its own when to run its
retention touchpoints; in test mode the suite asks it to through the test
driver (``POST {driver}/touchpoints {"buyer": <pseudonym>}``), which answers
what it did with each: ``{"touchpoints": [{"code", "kind", "category",
"needs", "sent", "id", "reason"}]}``. A driver without that instruction makes
the check skip, with that reason.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any

from conformance.checks.scenarios import (
    prompt_buyer,
    prompt_wait,
    reply_inbox,
    run_deal,
    run_welcome,
)
from conformance.context import CheckContext
from conformance.forge import b64url, canonical_json
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest, new_message_id, sign
from conformance.peers.vendors import SuiteVendor, require_accepted, vendor_side
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw, driver_state
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
BUYER = (Role.BUYER,)
#: How long the suite watches for notices after the touchpoints ran.
WATCH_SECONDS = 2.0
#: Every notification category: she allows them all, and shares little.
EVERY_CATEGORY = (
    "safety", "recall", "maintenance", "technical", "warranty", "promotions", "new-products",
    "events",
)  # fmt: skip


@REGISTRY.check(
    "VEN-TOUCHPOINTS",
    title="Retention touchpoints only within the data she shared, the others recorded",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-RET-001", "VRM-RET-002", "VRM-MSG-019"),
    roles=VENDOR,
    needs=("test-driver", "sends:service-notice"),
)
async def touchpoints(ctx: CheckContext) -> None:
    """After the welcome (she allows every category, and shares all the vendor asked
    for but the last item), the vendor runs its touchpoints: none that depends on
    data she did not share is sent (VRM-RET-001); each sent one reaches her in a
    category she allowed; each not sent says why (VRM-RET-002)."""
    thread = await run_deal(ctx.session)
    thread = await run_welcome(ctx.session, thread, notifications=EVERY_CATEGORY)
    status, answer = await call_driver_raw(
        ctx.session, "POST", "/touchpoints", {"buyer": thread.persona.id}
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no touchpoints instruction")
    ctx.require(
        200 <= status < 300 and isinstance(answer, dict),
        "the test driver takes the touchpoints instruction",
        actual=f"{status} {answer}",
    )
    reported = answer.get("touchpoints")
    ctx.require(
        isinstance(reported, list) and all(isinstance(t, dict) for t in reported),
        "the driver answers the touchpoints it ran",
        actual=answer,
    )
    await asyncio.sleep(WATCH_SECONDS)
    received = {
        str(item.id): item for item in thread.persona.received() if item.type == "service-notice"
    }
    shared = set(thread.shared_categories)
    for touchpoint in reported:
        code = touchpoint.get("code")
        needs = {str(item) for item in touchpoint.get("needs") or []}
        if touchpoint.get("sent"):
            ctx.expect(
                needs <= shared,
                f"touchpoint {code} is sent only with the data it depends on shared",
                expected=sorted(shared),
                actual=sorted(needs),
                requirement="VRM-RET-001",
            )
            notice = received.get(str(touchpoint.get("id")))
            ctx.expect(
                notice is not None and notice.body.get("category") in EVERY_CATEGORY,
                f"touchpoint {code} reaches her as the service notice the driver names",
                actual=sorted(received),
                requirement="VRM-MSG-019",
            )
        else:
            ctx.expect(
                bool(touchpoint.get("reason")),
                f"touchpoint {code} not sent says why",
                actual=touchpoint,
                requirement="VRM-RET-002",
            )


# -- a vendor leaving the market (seed 003 step 9, spec §6.13) ----------------------------------


@REGISTRY.check(
    "VEN-LEAVE-MARKET",
    title="A vendor leaving the market gives notice with her export and a deletion receipt",
    step=LifecycleStep.EXIT,
    requirements=("VRM-RET-003", "VRM-RET-007"),
    roles=VENDOR,
    needs=("test-driver", "sends:exit-notice"),
)
async def leave_market(ctx: CheckContext) -> None:
    """After the welcome (she shared all the vendor asked for but the last item), the
    vendor is told to leave the market (``POST {driver}/leave-market {"buyer"}``): its
    exit notice gives the reason, carries the export of every category she shared with
    the digest of its canonical JSON, and a deletion receipt about her pseudonym that
    deletes each or retains it with a basis; the data it deleted is gone."""
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    persona = thread.persona
    status, answer = await call_driver_raw(
        ctx.session, "POST", "/leave-market", {"buyer": persona.id}
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no leave-market instruction")
    ctx.require(
        200 <= status < 300,
        "the test driver takes the leave-market instruction",
        actual=f"{status} {answer}",
    )
    notice = await persona.expect(
        lambda item: item.type == "exit-notice",
        description="the vendor gives notice that it leaves the market",
        requirement="VRM-RET-003",
    )
    ctx.require(notice.ok, "the notice passes the receiving pipeline", actual=notice.error)
    body = notice.body
    ctx.expect(
        body.get("reason") == "vendor-leaving-market",
        "the notice's reason is vendor-leaving-market",
        actual=body.get("reason"),
        requirement="VRM-RET-003",
    )
    export: dict[str, Any] = _object(body.get("export"))
    data: dict[str, Any] = _object(export.get("data"))
    ctx.require(
        isinstance(export.get("data"), dict),
        "the notice carries the export in export.data",
        actual=export,
        requirement="VRM-RET-003",
    )
    shared = sorted(thread.shared_categories)
    ctx.expect(
        set(shared) <= set(data),
        "the export holds every category she shared",
        expected=shared,
        actual=sorted(data),
        requirement="VRM-RET-003",
    )
    ctx.expect(
        export.get("digest") == "sha-256:" + b64url(hashlib.sha256(canonical_json(data)).digest()),
        "export.digest is the digest of the export's canonical JSON",
        actual=export.get("digest"),
        requirement="VRM-RET-003",
    )
    ctx.recommend(
        isinstance(data.get("history"), list) and bool(data.get("history")),
        "the export carries the relationship's history: the vendor's signed messages of record",
        actual=sorted(data),
        requirement="VRM-RET-007",
    )
    receipt: dict[str, Any] = _object(body.get("deletionReceipt"))
    ctx.require(
        isinstance(body.get("deletionReceipt"), dict),
        "the notice carries a deletion receipt",
        actual=body,
        requirement="VRM-RET-003",
    )
    ctx.expect(
        receipt.get("relationship") == persona.id,
        "the deletion receipt is about her pseudonym",
        expected=persona.id,
        actual=receipt.get("relationship"),
        requirement="VRM-RET-003",
    )
    deleted = set(receipt.get("deleted") or [])
    retained = {
        str(item.get("item"))
        for item in receipt.get("retained") or []
        if isinstance(item, dict) and item.get("basis")
    }
    ctx.expect(
        set(shared) <= deleted | retained,
        "every category she shared is deleted or retained with a basis",
        expected=shared,
        actual={"deleted": sorted(deleted), "retained": sorted(retained)},
        requirement="VRM-RET-003",
    )
    state = await driver_state(ctx.session)
    held = state.get("relationships", {}).get(persona.id, {}).get("data", {})
    still = sorted(set(held) & deleted)
    ctx.expect(
        not still,
        "what the receipt lists as deleted is no longer held",
        actual=still,
        requirement="VRM-RET-003",
    )


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _leaving_notice(now: datetime, *, complete: bool, pseudonym: str) -> dict[str, Any]:
    """A leaving vendor's notice: with the export and the receipt, or with neither."""
    body = bodies.exit_notice_body(now)
    body["reason"] = "vendor-leaving-market"
    body["reengagement"] = {"allowed": False}
    if complete:
        data: dict[str, Any] = {"rfi": {"held": "the enquiry's context"}, "history": []}
        body["export"] = {
            "requested": True,
            "mediaType": "application/json",
            "data": data,
            "digest": "sha-256:" + b64url(hashlib.sha256(canonical_json(data)).digest()),
        }
        body["deletionReceipt"] = {
            "relationship": pseudonym,
            "deleted": ["rfi"],
            "deletedAt": format_timestamp(now),
        }
    return body


async def _leaving_vendor(
    ctx: CheckContext, name: str, *, complete: bool
) -> tuple[SuiteVendor, str, str]:
    """A suite vendor she enquired of, that leaves the market: the notice's id and digest."""
    session = ctx.session
    vendor = await (await vendor_side(session)).add_vendor(name)
    await prompt_buyer(
        session,
        "rfi",
        {"vendors": [vendor.id]},
        instruction=f"Make the buyer agent send a personal RFI (any car) to {vendor.id}",
    )
    rfi = await vendor.expect(
        lambda item: item.type == "personal-rfi",
        description=f"the buyer sends a personal RFI to {vendor.id}",
        within=prompt_wait(session),
    )
    notice = vendor.reply_to(
        rfi,
        "exit-notice",
        _leaving_notice(session.clock.now(), complete=complete, pseudonym=str(rfi.field("from"))),
    )
    token = sign(notice, vendor.signer)
    require_accepted(
        await vendor.deliver_token(
            token, to=str(rfi.field("from")), inbox=reply_inbox(rfi), note="exit notice"
        ),
        "the buyer takes the leaving vendor's exit notice",
    )
    return vendor, digest(token), str(notice["id"])


@REGISTRY.check(
    "BUY-VENDOR-LEAVING",
    title="Her agent checks a leaving vendor's export and receipt, and acknowledges",
    step=LifecycleStep.EXIT,
    requirements=("VRM-RET-004",),
    roles=BUYER,
    needs=("test-driver",),
)
async def vendor_leaving(ctx: CheckContext) -> None:
    """Two vendors she enquired of leave the market: one with her export and a
    deletion receipt, one with neither. Her agent acknowledges each by digest, and
    reports the second as `exit-incomplete`."""
    for name, complete in (
        ("Conformance Leaving Motors", True),
        ("Conformance Careless Motors", False),
    ):
        vendor, notice_digest, notice_id = await _leaving_vendor(ctx, name, complete=complete)
        ack = await vendor.expect(
            lambda item: item.type == "exit-acknowledgement",
            description=f"the buyer acknowledges {name}'s exit notice",
            requirement="VRM-RET-004",
            within=prompt_wait(ctx.session),
        )
        named = _object(ack.body.get("notice"))
        ctx.expect(
            named.get("id") == notice_id and named.get("digest") == notice_digest,
            f"the acknowledgement names {name}'s notice by its digest",
            expected={"id": notice_id, "digest": notice_digest},
            actual=named,
            requirement="VRM-RET-004",
        )
        reports = [
            item
            for item in vendor.received()
            if item.type == "problem-report"
            and isinstance(item.body.get("regarding"), dict)
            and item.body["regarding"].get("id") == notice_id
        ]
        if complete:
            ctx.expect(
                not reports,
                "a complete notice draws no problem report",
                actual=[r.body for r in reports],
                requirement="VRM-RET-004",
            )
        else:
            ctx.expect(
                any(r.body.get("code") == "exit-incomplete" for r in reports),
                "a notice without export or receipt is reported as exit-incomplete",
                actual=[r.body for r in reports],
                requirement="VRM-RET-004",
            )


# -- re-engagement with what she kept (seed 003 step 10, spec §6.1) -----------------------------


async def _offer_for_evidence(ctx: CheckContext, evidence: list[str], what: str) -> Inbound:
    """A new pseudonym's RFI carrying ``evidence``; the vendor's offer answering it."""
    persona = (await buyer_side(ctx.session)).new_persona()
    body = bodies.personal_rfi_body(persona.now())
    body["evidence"] = evidence
    rfi = persona.compose("personal-rfi", body)
    reply = await persona.send(rfi, note=f"a personal RFI with {what}")
    ctx.require(
        reply.status == 202,
        f"the vendor accepts an RFI with {what}",
        actual=reply.describe(),
        requirement="VRM-RET-005",
    )
    return await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == rfi["id"],
        description=f"the vendor answers the RFI with {what} with an offer",
    )


def _names(offer: Inbound, deal_id: str) -> bool:
    return any(
        isinstance(condition, dict) and deal_id in str(condition.get("description", ""))
        for condition in offer.body.get("conditions") or []
    )


@REGISTRY.check(
    "VEN-EVIDENCE",
    title="Evidence she kept: relied on only when it verifies as the vendor's own",
    step=LifecycleStep.REENGAGEMENT,
    requirements=("VRM-RET-005", "VRM-RET-006"),
    roles=VENDOR,
    needs=("sends:offer",),
)
async def evidence(ctx: CheckContext) -> None:
    """After a deal, two new RFIs carry evidence: the vendor's own deal confirmation,
    and a confirmation of a deal that never was, signed by the individual's key in the
    vendor's name. The vendor's offers may name the first (VRM-RET-006) and must not
    name the second (VRM-RET-005)."""
    thread = await run_deal(ctx.session)
    assert thread.deal is not None  # run_deal waits for it
    deal_id = str(_object(thread.deal.body.get("deal")).get("id"))
    forged = dict(thread.deal.payload or {})
    forged_body = dict(_object(forged.get("body")))
    forged_deal = dict(_object(forged_body.get("deal")))
    forged_deal["id"] = "deal-never-made"
    forged_body["deal"] = forged_deal
    forged["body"] = forged_body
    forged["id"] = new_message_id()
    forged_token = sign(forged, thread.persona.signer).decode()
    kept = await _offer_for_evidence(ctx, [thread.deal.token.decode()], "her kept confirmation")
    ctx.expect(
        _names(kept, deal_id),
        "the offer uses the evidence: it names the earlier deal",
        expected=deal_id,
        actual=kept.body.get("conditions"),
        requirement="VRM-RET-006",
    )
    refused = await _offer_for_evidence(ctx, [forged_token], "a forged confirmation")
    ctx.require(
        not _names(refused, "deal-never-made"),
        "the offer relies on no evidence that does not verify as the vendor's own message",
        actual=refused.body.get("conditions"),
        requirement="VRM-RET-005",
    )
