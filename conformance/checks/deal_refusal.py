"""A vendor's deal-refusal, as the buyer takes it (spec §6.6): it must name the
accepted offer as sent and her acceptance of it (VRM-MSG-032), and after it the
relationship is back in negotiation (VRM-MSG-033)."""

from __future__ import annotations

from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection, relationship_view
from conformance.checks.buyer_guard import _accepted, _require_inbox
from conformance.checks.scenarios import fresh_relationships
from conformance.context import CheckContext
from conformance.peers.messages import message_ref, new_message_id
from conformance.registry import REGISTRY
from conformance.target import driver_state
from vrm_protocol.errors import ErrorCode
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, Role

E = ErrorCode


def _state_with(summary: dict[str, Any], peer: str) -> Any:
    view = relationship_view(summary, peer)
    entries = list(view.values()) if isinstance(view, dict) else list(view)
    entry = entries[0] if len(entries) == 1 else None
    return entry.get("state") if isinstance(entry, dict) else None


@REGISTRY.check(
    "BUY-DEAL-REFUSAL",
    title="A deal refusal must name her offer and acceptance; after it she negotiates again",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-MSG-032", "VRM-MSG-033"),
    roles=(Role.BUYER,),
    needs=("sends:offer-acceptance",),
)
async def deal_refused(ctx: CheckContext) -> None:
    """After the buyer accepts a binding offer, the vendor refuses the deal: a
    refusal naming the offer with another digest is refused with
    ``reference-mismatch``; the refusal naming the offer and her acceptance as
    sent is taken, and (test driver) the relationship is in ``negotiation``
    again, the state in which she accepted."""
    relationships = await fresh_relationships(ctx.session, "Conformance Refusing Motors")
    vendor = relationships.vendors[0]
    inbox = _require_inbox(ctx, relationships.delivery_inbox(vendor))
    offer, token, acceptance = await _accepted(ctx, relationships, vendor)
    right = message_ref(token, offer["id"])
    wrong = {**right, "digest": message_ref(token + b"x", offer["id"])["digest"]}
    message_id = new_message_id()

    def refusal(offer_ref: dict[str, str]) -> dict[str, Any]:
        return vendor.reply_to(
            acceptance,
            "deal-refusal",
            {"offer": offer_ref, "acceptance": acceptance.ref(), "reason": "item-unavailable"},
            message_id=message_id,
        )

    reply = await vendor.deliver(refusal(wrong), inbox=inbox, note="refusal, another digest")
    assert reply is not None
    expect_rejection(
        ctx,
        reply,
        E.REFERENCE_MISMATCH,
        what="a deal refusal naming the offer with another digest",
        requirement="VRM-MSG-032",
    )
    reply = await vendor.deliver(refusal(right), inbox=inbox, note="the deal refusal")
    assert reply is not None
    expect_accepted(ctx, reply, what="the deal refusal naming her offer and acceptance")
    if ctx.session.driver_url is None:
        ctx.note("no test driver: the state after the refusal is not observed")
        return
    state = _state_with(await driver_state(ctx.session), vendor.id)
    ctx.require(
        state == RelationshipState.NEGOTIATION.value,
        "after the deal refusal the relationship is in negotiation again",
        expected=RelationshipState.NEGOTIATION.value,
        actual=state,
        requirement="VRM-MSG-033",
    )
