"""Rules the rest of the suite left unjudged: declining offers, what an acceptance
may not say, and the test driver's own state summary (spec §5.3, §6.4, §14.3).

* an offer-decline naming an offer the vendor never made is ``unknown-offer``,
  one naming an offer already declined is ``offer-closed`` (VRM-STATE-019);
* an acceptance stating when the trade-in changes hands is ``schema-invalid``:
  the handover is the offer's (VRM-MSG-036);
* the test driver's summary is valid against the ``State`` definition and a
  refused message leaves it unchanged (VRM-CONF-006).
"""

from __future__ import annotations

from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection, open_probe
from conformance.context import CheckContext
from conformance.forge import tamper_signature
from conformance.model import WIRE_STEP
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.messages import new_message_id, sign
from conformance.registry import REGISTRY
from conformance.target import driver_state
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import TEST_DRIVER_SCHEMA
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
BOTH = (Role.VENDOR, Role.BUYER)
E = ErrorCode


async def _offer(ctx: CheckContext) -> tuple[Persona, str, Inbound]:
    """A new relationship up to the vendor's first offer."""
    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    offer = await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == rfi["id"],
        description="the vendor answers the RFI with an offer",
        requirement="VRM-MSG-002",
    )
    return persona, str(rfi["id"]), offer


@REGISTRY.check(
    "VEN-DECLINE-UNKNOWN-CLOSED",
    title="Declining an offer never made, or one already declined, is refused",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-STATE-019",),
    roles=VENDOR,
)
async def decline_unknown_or_closed(ctx: CheckContext) -> None:
    """A decline naming an id the vendor never offered: ``unknown-offer``. With
    two live offers (one for the RFI, one for the RFP), the decline of the first
    is taken and the negotiation goes on; a second decline of it (a new
    message) names a declined offer: ``offer-closed`` (spec §5.3)."""
    persona, thread, first = await _offer(ctx)
    rfp = persona.compose(
        "personal-rfp",
        bodies.personal_rfp_body(persona.now()),
        thread=thread,
        parent=str(first.id),
    )
    expect_accepted(ctx, await persona.send(rfp, note="an RFP"), what="a personal RFP")
    second = await persona.expect(
        lambda item: item.type == "offer" and item.field("parent") == rfp["id"],
        description="the vendor answers the RFP with an offer",
        requirement="VRM-MSG-004",
    )
    supersedes = second.body.get("supersedes")
    if isinstance(supersedes, dict) and supersedes.get("id") == str(first.id):
        ctx.skip("the vendor's second offer supersedes its first: no offer to decline twice")

    async def decline(offer_id: str, note: str) -> Any:
        payload = persona.compose(
            "offer-decline",
            bodies.offer_decline_body([offer_id]),
            thread=thread,
            parent=str(second.id),
        )
        return await persona.send(payload, note=note)

    reply = await decline(new_message_id(), "a decline of an offer never made")
    expect_rejection(
        ctx, reply, E.UNKNOWN_OFFER, what="a decline of an offer never made",
        requirement="VRM-STATE-019",
    )  # fmt: skip
    reply = await decline(str(first.id), "the decline of the first offer")
    expect_accepted(ctx, reply, what="the decline of the first offer, the second still live")
    reply = await decline(str(first.id), "a second decline of the same offer")
    expect_rejection(
        ctx, reply, E.OFFER_CLOSED, what="a decline of an offer already declined",
        requirement="VRM-STATE-019",
    )  # fmt: skip


@REGISTRY.check(
    "VEN-ACCEPT-NO-HANDOVER",
    title="An acceptance may not say when the trade-in changes hands",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-MSG-036",),
    roles=VENDOR,
)
async def acceptance_states_no_handover(ctx: CheckContext) -> None:
    """An acceptance whose trade-in states a ``handover`` of its own (the old car
    before the delivery) is refused with ``schema-invalid`` (spec §6.4: the
    handover is the accepted offer's); the same acceptance without the trade-in,
    under the same id, is then taken."""
    persona, thread, offer = await _offer(ctx)
    body = bodies.offer_acceptance_body(offer.ref())
    trade_in = {
        "item": {
            "description": "2019 family hatchback, one owner",
            "make": "Volkswagen",
            "model": "Golf",
            "year": 2019,
            "mileage": 48000,
            "registration": "AB12 CDE",
        },
        "handover": "before-delivery",
    }
    stating = persona.compose(
        "offer-acceptance", {**body, "tradeIn": trade_in}, thread=thread, parent=str(offer.id)
    )
    reply = await persona.send(stating, note="an acceptance stating the trade-in's handover")
    expect_rejection(
        ctx, reply, E.SCHEMA_INVALID, what="an acceptance stating when the trade-in changes hands",
        requirement="VRM-MSG-036",
    )  # fmt: skip
    plain = {**stating, "body": body}
    expect_accepted(
        ctx,
        await persona.send(plain, note="the acceptance without it, same id"),
        what="the acceptance that states no handover",
    )


def _state_errors(state: Any) -> list[str]:
    """Why ``state`` is not valid against the test driver schema's ``State``."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from vrm_protocol.schema_registry import default_registry

    documents = default_registry().schemas()
    registry: Registry[Any] = Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in documents.values()
    )
    base = str(documents[TEST_DRIVER_SCHEMA]["$id"])
    validator = Draft202012Validator({"$ref": f"{base}#/$defs/State"}, registry=registry)
    return [error.message for error in validator.iter_errors(state)][:5]


@REGISTRY.check(
    "DRIVER-STATE",
    title="The test driver's state is a valid summary that a refused message leaves alone",
    step=WIRE_STEP,
    requirements=("VRM-CONF-006",),
    roles=BOTH,
)
async def driver_state_summary(ctx: CheckContext) -> None:
    """``GET state`` answers a summary valid against the ``State`` definition,
    keyed by pseudonym; a message with a tampered signature (refused) leaves it
    as it was (spec §14.3)."""
    if ctx.session.driver_url is None:
        ctx.skip("the target has no test driver")
    probe = await open_probe(ctx)
    errors = _state_errors(await driver_state(ctx.session))
    ctx.require(
        not errors,
        "the test driver's state is valid against the State definition",
        expected="no schema errors",
        actual=errors or None,
        requirement="VRM-CONF-006",
    )
    before = await probe.settled_state()
    legal = probe.legal()
    reply = await probe.post(tamper_signature(sign(legal, probe.signer)), note="refused message")
    expect_rejection(ctx, reply, E.BAD_SIGNATURE, what="a message with a tampered signature")
    after = await probe.state()
    ctx.require(
        after == before,
        "the refused message leaves the driver's summary of the relationship unchanged",
        expected=before,
        actual=after,
        requirement="VRM-CONF-006",
    )
