"""A vendor answering her consent changes (``--role vendor``, spec §6.20, §6.21).

After a deal and the welcome (the persona accepted the vendor's terms in part
and shared data), the persona changes her consent: a malformed change must be
refused, a withdrawal must be answered with a consent receipt that binds the
change and accounts for the item, the vendor must then hold the item no more
(its test driver's ``GET state``, unless the receipt retains it on a basis),
and a widening must add no purpose the vendor's terms did not ask for.
"""

from __future__ import annotations

from typing import Any

from conformance.checks.scenarios import VendorThread, run_deal, run_welcome
from conformance.context import CheckContext
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest
from conformance.registry import REGISTRY
from conformance.target import call_driver
from vrm_protocol.registries import purposes
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)


async def _welcomed(ctx: CheckContext) -> VendorThread:
    """A relationship of its own, past the welcome, with data shared."""
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    ctx.require(
        bool(thread.shared_categories),
        "the persona shared data under the vendor's terms",
        actual=thread.shared_categories,
    )
    return thread


async def _change(
    ctx: CheckContext, thread: VendorThread, changes: list[dict[str, Any]]
) -> tuple[dict[str, str], Inbound]:
    """Send the change; the vendor's receipt of it."""
    persona = thread.persona
    payload = persona.compose(
        "consent-change", {"changes": changes}, thread=thread.thread, parent=thread.thread
    )
    reply = await persona.send(payload, note="a consent change")
    ctx.require(
        reply.status == 202,
        "the vendor takes the consent change",
        expected="202",
        actual=reply.describe(),
    )
    sent = persona.sent[-1]
    ref = {"id": str(payload["id"]), "digest": digest(sent.token)}
    receipt = await persona.expect(
        lambda item: (
            item.type == "consent-receipt"
            and isinstance(item.body.get("change"), dict)
            and item.body["change"].get("id") == ref["id"]
        ),
        description="the vendor answers the consent change with a consent receipt",
        requirement="VRM-GRANT-009",
    )
    ctx.require(receipt.ok, "the receipt passes the receiving pipeline", actual=receipt.error)
    return ref, receipt


def _applied(receipt: Inbound, item: str) -> dict[str, Any] | None:
    for entry in receipt.body.get("applied") or []:
        if isinstance(entry, dict) and entry.get("item") == item:
            return entry
    return None


def _retained(receipt: Inbound, item: str) -> dict[str, Any] | None:
    for entry in receipt.body.get("retained") or []:
        if isinstance(entry, dict) and entry.get("item") == item:
            return entry
    return None


@REGISTRY.check(
    "VEN-CONSENT-RECEIPT",
    title="A consent change is refused when malformed, else answered with a receipt "
    "accounting for it",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-GRANT-008", "VRM-GRANT-009"),
    roles=VENDOR,
    needs=("accepts:consent-change", "sends:consent-receipt"),
)
async def consent_receipt(ctx: CheckContext) -> None:
    """A narrowing without purposes is refused with ``schema-invalid``; the
    withdrawal of an item the persona shared is answered with a consent receipt
    naming the change by id and digest, listing the item with no purpose left,
    deleted or retained with a basis and a date."""
    thread = await _welcomed(ctx)
    persona = thread.persona
    item = thread.shared_categories[0]
    bad = persona.compose(
        "consent-change",
        {"changes": [{"item": item, "action": "narrow"}]},
        thread=thread.thread,
        parent=thread.thread,
    )
    reply = await persona.send(bad, note="a narrowing without purposes")
    ctx.expect(
        reply.status >= 400 and reply.problem_code == "schema-invalid",
        "a narrowing without purposes is refused with schema-invalid",
        expected="schema-invalid",
        actual=reply.describe(),
        requirement="VRM-GRANT-008",
    )
    ref, receipt = await _change(ctx, thread, [{"item": item, "action": "withdraw"}])
    ctx.require(
        receipt.body.get("change") == ref,
        "the receipt names the change by its id and digest",
        expected=ref,
        actual=receipt.body.get("change"),
        requirement="VRM-GRANT-009",
    )
    applied, retained = _applied(receipt, item), _retained(receipt, item)
    ctx.require(
        (applied is not None and applied.get("purposes") == [] and applied.get("deleted") is True)
        or (retained is not None and bool(retained.get("basis")) and bool(retained.get("until"))),
        f"the receipt accounts for {item}: deleted, or retained with a basis and a date",
        actual={"applied": applied, "retained": retained},
        requirement="VRM-GRANT-009",
    )


@REGISTRY.check(
    "VEN-CONSENT-APPLIED",
    title="A withdrawn item is held no more, unless retained on a legal basis",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-GRANT-010",),
    roles=VENDOR,
    needs=("test-driver", "accepts:consent-change"),
)
async def consent_applied(ctx: CheckContext) -> None:
    """The persona withdraws every item she shared; after the receipt, the vendor's
    ``GET state`` shows no consent to any of them, and no data for any the receipt
    does not retain on a legal basis."""
    thread = await _welcomed(ctx)
    items = list(thread.shared_categories)
    _, receipt = await _change(ctx, thread, [{"item": i, "action": "withdraw"} for i in items])
    state = await call_driver(ctx.session, "GET", "/state")
    relationship = (state.get("relationships") or {}).get(thread.persona.id) or {}
    held = relationship.get("data") or {}
    consents = [c for c in relationship.get("consents") or [] if isinstance(c, dict)]
    ctx.require(
        not {str(c.get("item")) for c in consents} & set(items),
        "no purpose of a withdrawn item remains: the vendor holds no consent to it",
        actual=consents,
        requirement="VRM-GRANT-010",
    )
    deleted = [i for i in items if _retained(receipt, i) is None]
    ctx.require(
        not set(held) & set(deleted),
        "the vendor holds no data it does not retain on a legal basis",
        expected=f"none of {deleted}",
        actual=sorted(held),
        requirement="VRM-GRANT-010",
    )


@REGISTRY.check(
    "VEN-CONSENT-WIDEN",
    title="Widening adds no purpose the vendor's terms did not ask for",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-GRANT-011",),
    roles=VENDOR,
    needs=("accepts:consent-change", "sends:consent-receipt"),
)
async def consent_widen(ctx: CheckContext) -> None:
    """The persona widens a shared item to a purpose the vendor's terms never asked
    for it: the receipt does not list that purpose for the item."""
    thread = await _welcomed(ctx)
    item = thread.shared_categories[0]
    terms = thread.terms
    asked: set[str] = set()
    for request in (terms.body.get("requests") or []) if terms is not None else []:
        if isinstance(request, dict) and request.get("item") == item:
            asked.update(str(p) for p in request.get("purposes") or [])
    unasked = sorted(set(purposes()) - asked)
    ctx.require(
        bool(unasked), "a registered purpose the terms did not ask for", actual=sorted(asked)
    )
    _, receipt = await _change(
        ctx, thread, [{"item": item, "action": "widen", "purposes": [unasked[0]]}]
    )
    applied = _applied(receipt, item)
    ctx.require(
        applied is not None and unasked[0] not in (applied.get("purposes") or []),
        f"{item} is not widened to {unasked[0]}, which the terms did not ask for",
        actual=applied,
        requirement="VRM-GRANT-011",
    )
