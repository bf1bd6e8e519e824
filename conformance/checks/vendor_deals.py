"""A vendor's terms of the deal: trade-ins and co-decision approvals (``--role vendor``).

Seed 001 is the reason for the trade-in check: a dealer asked for the old car
and its papers days before paying for the new one. Seed 000 has Sally's
partner approve the purchase: a vendor whose offer requires that approval
must not close the deal without it.
"""

from __future__ import annotations

from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import vendor_negotiation
from conformance.context import CheckContext
from conformance.forge import JoseSigner
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.identity import new_pairwise
from conformance.peers.inbox import Inbound
from conformance.peers.issuer import TestIssuer
from conformance.peers.messages import message_ref
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
E = ErrorCode
#: Handover times no earlier than the delivery of the new car (spec §6.3).
_NOT_EARLIER = frozenset({"with-delivery", "after-delivery"})


@REGISTRY.check(
    "VEN-TRADE-IN",
    title="The vendor never asks for a trade-in before the delivery",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-MSG-009",),
    roles=VENDOR,
    needs=("accepts:personal-rfp",),
)
async def trade_in_handover(ctx: CheckContext) -> None:
    """The RFP offers the old car ``with-delivery`` (papers too); the offer that
    answers it, if it takes the trade-in, keeps both handovers no earlier
    than the delivery of the new car."""
    thread = await ctx.use(vendor_negotiation)
    offer = thread.offers[1]
    trade_in = offer.body.get("tradeIn")
    if not isinstance(trade_in, dict):
        ctx.skip("the vendor's offer took no trade-in: there is no handover to judge")
    ctx.expect(
        trade_in.get("handover") in _NOT_EARLIER,
        "the old car is handed over with (or after) the delivery of the new one",
        expected=sorted(_NOT_EARLIER),
        actual=trade_in.get("handover"),
        requirement="VRM-MSG-009",
    )
    papers = trade_in.get("papersHandover")
    ctx.expect(
        papers is None or papers in _NOT_EARLIER,
        "the papers are handed over no earlier than the delivery",
        expected=sorted(_NOT_EARLIER),
        actual=papers,
        requirement="VRM-MSG-009",
    )


def _requires_approval(offer: Inbound) -> bool:
    return any(
        isinstance(condition, dict) and condition.get("kind") == "approval-required"
        for condition in offer.body.get("conditions") or []
    )


@REGISTRY.check(
    "VEN-APPROVAL",
    title="An acceptance without a required approval is refused",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-MSG-011", "VRM-ATT-007"),
    roles=VENDOR,
    needs=("accepts:personal-rfp",),
)
async def approval_required(ctx: CheckContext) -> None:
    """The RFP names a co-decision-maker (a did:jwk) whose approval the deal
    needs. If the vendor's offer makes that a condition, an acceptance
    without the approval is ``approval-missing``; with the co-decision-maker's
    signed approval of exactly that offer, the same acceptance is taken."""
    side = await buyer_side(ctx)
    persona = side.new_persona()
    partner_id, partner_key = new_pairwise()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    first = await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == rfi["id"],
        description="the vendor answers the RFI with an offer",
        requirement="VRM-MSG-002",
    )
    condition = {
        "kind": "approval-required",
        "description": "My partner approves the purchase before it is final",
        "party": partner_id,
    }
    rfp = persona.compose(
        "personal-rfp",
        bodies.personal_rfp_body(persona.now(), conditions=[condition]),
        thread=rfi["id"],
        parent=str(first.id),
    )
    expect_accepted(ctx, await persona.send(rfp, note="an RFP needing approval"), what="the RFP")
    offer = await persona.expect(
        lambda item: item.type == "offer" and item.field("parent") == rfp["id"],
        description="the vendor answers the RFP with an offer",
        requirement="VRM-MSG-004",
    )
    if not _requires_approval(offer):
        ctx.skip("the vendor's offer does not make the co-decision-maker's approval a condition")
    acceptance: dict[str, Any] = persona.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(offer.ref()),
        thread=rfi["id"],
        parent=str(offer.id),
    )
    reply = await persona.send(acceptance, note="acceptance without the approval")
    expect_rejection(
        ctx,
        reply,
        E.APPROVAL_MISSING,
        what="an acceptance without the required approval",
        requirement="VRM-MSG-011",
    )
    partner = TestIssuer(partner_id, JoseSigner("EdDSA", partner_key.kid, partner_key.private_jwk))
    approval = partner.attest(
        kind="approval",
        subject=persona.id,
        audience=[side.target_id],
        now=persona.now(),
        claims={
            "approves": {"offer": message_ref(offer.token, str(offer.id)), "summary": "Go ahead"},
            "relation": "partner",
        },
    )
    approved = {
        **acceptance,
        "body": {**acceptance["body"], "approvals": [approval]},
    }
    expect_accepted(
        ctx,
        await persona.send(approved, note="the acceptance with the approval, same id"),
        what="the acceptance carrying the co-decision-maker's approval",
        requirement="VRM-MSG-011",
    )
