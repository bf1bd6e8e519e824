"""Third-party attestations a vendor receives (spec §10; ``--role vendor``).

The suite plays a credit union (:class:`~conformance.peers.issuer.TestIssuer`)
whose key the operator configures in the vendor as trusted before the run
(``vrm conformance issuer``). A vendor that does not trust it cannot be
judged on how it verifies attestations: those checks are then skipped, with
that reason, rather than failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import VendorThread, acceptable_offer
from conformance.context import CheckContext, Session, fixture
from conformance.model import CheckFailed, CheckSkipped, Expectation
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.identity import new_pairwise
from conformance.peers.inbox import Inbound
from conformance.peers.issuer import DEFAULT_ISSUER_ID, TestIssuer
from conformance.peers.posting import Sent
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
E = ErrorCode


def suite_issuer(session: Session) -> TestIssuer:
    """The credit union the operator configured the target to trust.

    Raises:
        OSError, ValueError: the ``--issuer-key`` file cannot be read or created.
    """
    service = session.services.get("test-issuer")
    if isinstance(service, TestIssuer):
        return service
    key_file = session.options.issuer_key_file
    issuer = (
        TestIssuer.load_or_create(Path(key_file))
        if key_file
        else TestIssuer.ephemeral(DEFAULT_ISSUER_ID)
    )
    session.services["test-issuer"] = issuer
    return issuer


def ability_to_pay(
    issuer: TestIssuer,
    *,
    subject: str,
    audience: str,
    session: Session,
    issued_days_ago: int = 0,
) -> dict[str, Any]:
    """An ability-to-pay attestation covering the suite's RFI budget (spec §10.1)."""
    return issuer.attest(
        kind="ability-to-pay",
        subject=subject,
        audience=[audience],
        now=session.clock.now() - timedelta(days=issued_days_ago),
        claims={"range": {"max": bodies.money("32000")}, "purpose": "vehicle purchase"},
    )


@dataclass(slots=True)
class AttestedRfi:
    """An RFI carrying the trusted issuer's attestation, and the vendor's answer."""

    persona: Persona
    rfi: Sent
    offer: Inbound


@fixture("vendor-attested-rfi")
async def vendor_attested_rfi(session: Session) -> AttestedRfi:
    """A persona's RFI with an ability-to-pay attestation from the trusted issuer."""
    side = await buyer_side(session)
    persona = side.new_persona()
    attestation = ability_to_pay(
        suite_issuer(session), subject=persona.id, audience=side.target_id, session=session
    )
    payload = persona.compose(
        "personal-rfi",
        bodies.personal_rfi_body(session.clock.now(), attestations=[attestation]),
    )
    reply = await persona.send(payload, note="RFI with the trusted issuer's attestation")
    if reply.problem_code == E.UNTRUSTED_ISSUER.value:
        raise CheckSkipped(
            "the target does not trust the suite's test issuer; configure it "
            "(`vrm conformance issuer` prints its id and JWKS) to judge attestations"
        )
    if reply.status != 202:
        raise CheckFailed(
            Expectation(
                "the vendor accepts an RFI with a valid attestation from an issuer it trusts",
                False,
                expected="202",
                actual=reply.describe(),
                requirement="VRM-ATT-003",
            )
        )
    thread = payload["id"]
    offer = await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == thread,
        description="the vendor answers the attested RFI with an offer",
        requirement="VRM-MSG-002",
    )
    return AttestedRfi(persona, persona.sent[-1], offer)


@REGISTRY.check(
    "VEN-ATTESTATION-TRUSTED",
    title="A valid attestation from a trusted issuer is accepted",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-ATT-003", "VRM-CONF-009"),
    roles=VENDOR,
)
async def trusted_attestation(ctx: CheckContext) -> None:
    """An RFI with the trusted credit union's ability-to-pay attestation, bound to
    the persona's pseudonym and to the vendor, is accepted and answered."""
    attested = await ctx.use(vendor_attested_rfi)
    reply = attested.rfi.reply
    assert reply is not None  # personas always POST
    expect_accepted(ctx, reply, what="an RFI with a valid attestation")
    # The issuer is known to the vendor only from the issuer-trust document the
    # operator gave it (`vrm conformance issuer`): taking its attestation shows it.
    ctx.expect(
        reply.status == 202,
        "the vendor trusts the issuer its issuer-trust document describes",
        expected="202",
        actual=reply.describe(),
        requirement="VRM-CONF-009",
    )
    ctx.require(
        attested.offer.ok,
        "the offer answering it passes the receiving pipeline",
        actual=attested.offer.error,
        requirement="VRM-ENV-001",
    )


async def _refused_attestation(
    ctx: CheckContext, *, what: str, attestation_for: Any, requirement: str
) -> None:
    await ctx.use(vendor_attested_rfi)  # the target trusts the issuer: judged, not skipped
    side = await buyer_side(ctx)
    persona = side.new_persona()
    attestation = attestation_for(persona, side.target_id)
    rfi = persona.compose(
        "personal-rfi", bodies.personal_rfi_body(persona.now(), attestations=[attestation])
    )
    reply = await persona.send(rfi, note=what)
    expect_rejection(ctx, reply, E.ATTESTATION_INVALID, what=what, requirement=requirement)
    legal = persona.compose(
        "personal-rfi", bodies.personal_rfi_body(persona.now()), message_id=rfi["id"]
    )
    expect_accepted(
        ctx,
        await persona.send(legal, note="the same RFI without the attestation"),
        what="the same RFI without the attestation (the refused one was not stored)",
        requirement="VRM-HTTP-006",
    )


@REGISTRY.check(
    "VEN-ATTESTATION-SUBJECT",
    title="An attestation about another pseudonym is refused",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-ATT-009",),
    roles=VENDOR,
)
async def attestation_other_subject(ctx: CheckContext) -> None:
    """A genuine attestation of the trusted issuer, but about a different
    pseudonym: lifted from another relationship, it proves nothing about the
    sender (``attestation-invalid``)."""

    def lifted(persona: Persona, target: str) -> dict[str, Any]:
        someone_else, _ = new_pairwise()
        return ability_to_pay(
            suite_issuer(ctx.session), subject=someone_else, audience=target, session=ctx.session
        )

    await _refused_attestation(
        ctx,
        what="an attestation about another pseudonym",
        attestation_for=lifted,
        requirement="VRM-ATT-009",
    )


@REGISTRY.check(
    "VEN-ATTESTATION-EXPIRED",
    title="An expired attestation is refused",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-ATT-003",),
    roles=VENDOR,
)
async def attestation_expired(ctx: CheckContext) -> None:
    """The trusted issuer's attestation, issued 40 days ago for 30 days:
    ``attestation-invalid``."""

    def stale(persona: Persona, target: str) -> dict[str, Any]:
        return ability_to_pay(
            suite_issuer(ctx.session),
            subject=persona.id,
            audience=target,
            session=ctx.session,
            issued_days_ago=40,
        )

    await _refused_attestation(
        ctx,
        what="an expired attestation",
        attestation_for=stale,
        requirement="VRM-ATT-003",
    )


@REGISTRY.check(
    "VEN-ATTESTATION-FORGED",
    title="An attestation whose signature does not verify is refused",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-ATT-003",),
    roles=VENDOR,
)
async def attestation_forged(ctx: CheckContext) -> None:
    """The trusted issuer's id on an attestation signed by another key, under
    the issuer's ``kid``: ``attestation-invalid`` (or ``untrusted-issuer``,
    since no trusted key verifies it)."""
    from conformance.forge import JoseSigner
    from conformance.peers.identity import new_key

    def forged(persona: Persona, target: str) -> dict[str, Any]:
        genuine = suite_issuer(ctx.session)
        impostor_key = new_key(genuine.signer.alg)
        impostor = TestIssuer(
            genuine.issuer_id,
            JoseSigner(genuine.signer.alg, genuine.signer.kid, impostor_key.private_jwk),
        )
        return ability_to_pay(impostor, subject=persona.id, audience=target, session=ctx.session)

    await ctx.use(vendor_attested_rfi)
    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose(
        "personal-rfi",
        bodies.personal_rfi_body(persona.now(), attestations=[forged(persona, side.target_id)]),
    )
    reply = await persona.send(rfi, note="an attestation signed by an impostor")
    expect_rejection(
        ctx,
        reply,
        (E.ATTESTATION_INVALID, E.UNTRUSTED_ISSUER),
        what="a forged attestation",
        requirement="VRM-ATT-003",
    )


@REGISTRY.check(
    "VEN-ATTESTATION-FOR-FINANCING",
    title="Accepting a financing plan that requires an attestation, without one, is refused",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-ATT-010",),
    roles=VENDOR,
)
async def financing_needs_attestation(ctx: CheckContext) -> None:
    """spec §6.4, §10.1 (VRM-ATT-010): an acceptance that chooses a plan marked
    ``requiresAttestation`` and carries no ability-to-pay attestation is refused
    with ``attestation-missing``; the same acceptance carrying one for the vendor
    and the pseudonym is taken."""
    await ctx.use(vendor_attested_rfi)  # the target trusts the issuer: judged, not skipped
    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    first = await persona.expect(
        lambda item: item.type == "offer" and item.field("thread") == rfi["id"],
        description="the vendor answers the RFI with an offer",
        requirement="VRM-MSG-002",
    )
    offer = await acceptable_offer(persona, VendorThread(persona, persona.sent[-1]), first)
    plans = [
        plan.get("plan")
        for plan in offer.body.get("financing") or ()
        if isinstance(plan, dict) and plan.get("requiresAttestation") is True
    ]
    if not plans:
        raise CheckSkipped("the target's binding offer marks no financing plan requiresAttestation")

    def acceptance(attestations: list[dict[str, Any]] | None, message_id: str | None) -> Any:
        body = bodies.offer_acceptance_body(offer.ref())
        body["payment"] = {"method": "finance", "financingPlan": plans[0]}
        if attestations is not None:
            body["attestations"] = attestations
        fields: dict[str, Any] = {"message_id": message_id} if message_id is not None else {}
        return persona.compose(
            "offer-acceptance", body, thread=str(rfi["id"]), parent=str(offer.id), **fields
        )

    bare = acceptance(None, None)
    expect_rejection(
        ctx,
        await persona.send(bare, note="an acceptance of an attested plan without attestation"),
        E.ATTESTATION_MISSING,
        what="an acceptance of a plan that requires an attestation, carrying none",
        requirement="VRM-ATT-010",
    )
    attestation = ability_to_pay(
        suite_issuer(ctx.session), subject=persona.id, audience=side.target_id, session=ctx.session
    )
    expect_accepted(
        ctx,
        await persona.send(
            acceptance([attestation], str(bare["id"])),
            note="the same acceptance with the ability-to-pay attestation",
        ),
        what="the acceptance carrying the attestation the plan requires",
    )
