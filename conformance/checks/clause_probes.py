"""Probes for clauses of a MUST that the first probe of it left out (``--role vendor``).

A requirement with several clauses gets a probe per clause (the clause map,
``conformance/data/clauses.toml``): these are the probes that a broken
vendor slipped past while only the requirement's first clause was tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.checks._support import Probe, expect_accepted, expect_rejection
from conformance.checks.attestations import _refused_attestation, ability_to_pay, suite_issuer
from conformance.checks.scenarios import VendorThread, _lower_total, acceptable_offer
from conformance.checks.security import _header, _negative, _payload
from conformance.context import CheckContext
from conformance.forge import b64url, compact
from conformance.model import WIRE_STEP
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.identity import new_pairwise
from conformance.peers.inbox import Inbound
from conformance.peers.messages import new_message_id
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
E = ErrorCode


@REGISTRY.check(
    "VEN-ATTESTATION-AUDIENCE",
    title="An attestation addressed to another party is refused",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-ATT-009",),
    roles=VENDOR,
)
async def attestation_other_audience(ctx: CheckContext) -> None:
    """A genuine attestation of the trusted issuer about the sender's own
    pseudonym, but whose ``aud`` names only another vendor: shown to this one,
    it is ``attestation-invalid`` (spec §10.3, the second clause of VRM-ATT-009)."""

    def elsewhere(persona: Persona, target: str) -> dict[str, Any]:
        other_vendor, _ = new_pairwise()
        return ability_to_pay(
            suite_issuer(ctx.session),
            subject=persona.id,
            audience=other_vendor,
            session=ctx.session,
        )

    await _refused_attestation(
        ctx,
        what="an attestation addressed to another party",
        attestation_for=elsewhere,
        requirement="VRM-ATT-009",
    )


async def _rfi_and_offer(ctx: CheckContext) -> tuple[Persona, str, Inbound]:
    """A new relationship: the persona's RFI and the vendor's first offer."""
    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    offer = await persona.expect(
        lambda item: item.type == "offer",
        description="the vendor answers the RFI with an offer",
        requirement="VRM-MSG-002",
    )
    return persona, str(rfi["id"]), offer


@REGISTRY.check(
    "VEN-ACCEPT-INDICATIVE",
    title="Accepting an indicative offer is refused",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-STATE-018",),
    roles=VENDOR,
)
async def accept_indicative(ctx: CheckContext) -> None:
    """The vendor answered the RFI with an indicative offer; an acceptance of it is
    ``offer-not-binding`` (spec §7.4, the vendor's clause of VRM-STATE-018). The
    same acceptance of the binding offer that answers an RFP is then taken."""
    persona, thread, offer = await _rfi_and_offer(ctx)
    if offer.body.get("basis") != "indicative":
        ctx.skip(f"the vendor answered the RFI with a {offer.body.get('basis')!r} offer")
    acceptance = persona.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(offer.ref()),
        thread=thread,
        parent=str(offer.id),
    )
    reply = await persona.send(acceptance, note="accepting an indicative offer")
    expect_rejection(
        ctx,
        reply,
        E.OFFER_NOT_BINDING,
        what="an acceptance of an indicative offer",
        requirement="VRM-STATE-018",
    )
    binding = await acceptable_offer(persona, VendorThread(persona, persona.sent[0]), offer)
    legal = persona.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(binding.ref()),
        thread=thread,
        parent=str(binding.id),
        message_id=acceptance["id"],
    )
    expect_accepted(
        ctx,
        await persona.send(legal, note="accepting the binding offer"),
        what="the same acceptance of the binding offer (the refused one changed nothing)",
    )


@REGISTRY.check(
    "VEN-OFFER-BASIS",
    title="The individual's offers are counter-offers naming what they counter",
    step=LifecycleStep.NEGOTIATE,
    requirements=("VRM-STATE-021",),
    roles=VENDOR,
)
async def her_offer_basis(ctx: CheckContext) -> None:
    """Answering the vendor's offer, the individual's offer of basis ``binding``
    is ``illegal-transition``, so is a counter-offer that names nothing in
    ``supersedes`` (spec §7.4, the receiver's first two clauses of
    VRM-STATE-021); the counter-offer naming the vendor's offer is then taken."""
    persona, thread, offer = await _rfi_and_offer(ctx)
    counter = bodies.counter_offer_body(
        offer.body, offer.ref(), now=persona.now(), total=_lower_total(offer.body)
    )
    message_id = new_message_id()
    unnamed = {name: value for name, value in counter.items() if name != "supersedes"}
    for what, body in (
        ("an offer of hers of basis binding", {**counter, "basis": "binding"}),
        ("a counter-offer that names no offer in supersedes", unnamed),
    ):
        payload = persona.compose(
            "offer", body, thread=thread, parent=str(offer.id), message_id=message_id
        )
        reply = await persona.send(payload, note=what)
        expect_rejection(ctx, reply, E.ILLEGAL_TRANSITION, what=what, requirement="VRM-STATE-021")
    legal = persona.compose(
        "offer", counter, thread=thread, parent=str(offer.id), message_id=message_id
    )
    expect_accepted(
        ctx,
        await persona.send(legal, note="the counter-offer naming the vendor's offer"),
        what="the same counter-offer naming what it counters",
    )


#: Header members VRM-SIG-006 refuses that no other probe sends: a ``kid`` that is
#: not a non-empty string, and the JOSE parameters the profile names besides
#: those SEC-HDR-JKU/JWK/X5U/X5C/B64 probe.
_OTHER_HEADERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("a kid that is a number", {"kid": 7}),
    ("an empty kid", {"kid": ""}),
    ("an x5t thumbprint", {"x5t": b64url(b"0" * 20)}),
    ("an x5t#S256 thumbprint", {"x5t#S256": b64url(b"0" * 32)}),
    ("a zip parameter", {"zip": "DEF"}),
)


@REGISTRY.check(
    "SEC-HDR-OTHER",
    title="A kid that is not a string, x5t, x5t#S256 and zip are rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-006",),
    roles=(Role.VENDOR, Role.BUYER),
)
async def other_header_members(ctx: CheckContext) -> None:
    """Each of the protected-header members VRM-SIG-006 lists that the other
    header probes leave out, in an otherwise valid signed message:
    ``invalid-header`` (spec §8.2), and the rejected message changed nothing."""
    for what, members in _OTHER_HEADERS:

        def forged(probe: Probe, legal: Mapping[str, Any], members: Any = members) -> bytes:
            return compact(_header(probe, **members), _payload(legal), probe.signer)

        await _negative(
            ctx,
            what=f"a header with {what}",
            forge=forged,
            codes=E.INVALID_HEADER,
            requirement="VRM-SIG-006",
        )
