"""Probes for clauses of a MUST that the first probe of it left out (``--role vendor``).

A requirement with several clauses gets a probe per clause (the clause map,
``conformance/data/clauses.toml``): these are the probes that a broken
vendor slipped past while only the requirement's first clause was tested.
"""

from __future__ import annotations

from typing import Any

from conformance.checks.attestations import _refused_attestation, ability_to_pay, suite_issuer
from conformance.context import CheckContext
from conformance.peers.buyers import Persona
from conformance.peers.identity import new_pairwise
from conformance.registry import REGISTRY
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)


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
