"""Verified terms signatories (``--role buyer``; spec §10.4, seed 000 step 5).

A party asserting terms carries a registry's ``terms-signatory`` attestation
that it signed them. The buyer must verify it before sharing anything under
those terms (VRM-ATT-012): one from a registry it does not trust, or about
another party than the one asserting the terms, gets nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from conformance.checks._support import expect_accepted
from conformance.checks.scenarios import fresh_relationships, prompt_wait, record_instruction
from conformance.context import CheckContext
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.issuer import TestIssuer
from conformance.peers.messages import new_message_id, sign, timestamp
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.vocabulary import ATTESTATION_TYP, LifecycleStep, Role

BUYER = (Role.BUYER,)
#: How long the suite watches for data that must not come.
WATCH_SECONDS = 1.0


def _signatory(
    issuer: TestIssuer, party: str, terms: Mapping[str, str], now: Any
) -> dict[str, str]:
    """A party attestation (spec §10.4): ``sub`` the party, no ``aud``."""
    payload = {
        "iss": issuer.issuer_id,
        "sub": party,
        "jti": new_message_id(),
        "iat": timestamp(now),
        "exp": timestamp(now + timedelta(days=365)),
        "kind": "terms-signatory",
        "claims": {"terms": dict(terms)},
    }
    token = sign(payload, issuer.signer, typ=ATTESTATION_TYP)
    return {"kind": "terms-signatory", "issuer": issuer.issuer_id, "token": token.decode()}


@REGISTRY.check(
    "BUY-TERMS-SIGNATORY",
    title="Terms whose signatory attestation does not verify for the asserting party get nothing",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-ATT-012",),
    roles=BUYER,
)
async def unverified_signatory(ctx: CheckContext) -> None:
    """Two third parties present terms (published, digest matching) asking for
    the car's model, each with a ``terms-signatory`` attestation: one from a
    registry the buyer was never told to trust, one lifted from another party
    (its ``sub`` names someone else). Prompted to answer each, the buyer shares
    nothing under either."""
    if ctx.session.driver_url is None:
        ctx.skip("answering terms is instructed through the test driver here")
    relationships = await fresh_relationships(
        ctx.session, "Conformance Unvouched Audio", "Conformance Borrowed Audio"
    )
    registry = TestIssuer.ephemeral("https://unknown-terms-registry.example")
    shared: list[str] = []
    for index, vendor in enumerate(relationships.vendors):
        rfi = relationships.rfis[vendor.id]
        now = ctx.session.clock.now()
        terms = vendor.publish_terms()
        body = bodies.terms_assertion_body(
            party_id=vendor.id,
            party_name=vendor.name,
            now=now,
            categories=["vehicle.model"],
            terms=terms,
        )
        body["party"]["role"] = "third-party"
        subject = vendor.id if index == 0 else "https://another-party.example"
        body["attestations"] = [_signatory(registry, subject, terms, now)]
        assertion = vendor.reply_to(rfi, "terms-assertion", body)
        reply = await vendor.deliver(
            assertion,
            inbox=relationships.delivery_inbox(vendor),
            note="terms with a signatory attestation it cannot verify",
        )
        if reply is not None:
            expect_accepted(ctx, reply, what="a terms assertion")
        instruction = {"vendor": vendor.id, "assertion": assertion["id"]}
        record_instruction(ctx.session, "terms", instruction)
        await call_driver_raw(ctx.session, "POST", "/terms", instruction)
        try:
            await vendor.expect(
                lambda item: item.type in ("terms-response", "problem-report"),
                description="the buyer answers the terms",
                within=prompt_wait(ctx.session),
            )
        except CheckFailed:
            ctx.note(f"{vendor.name}: the buyer did not answer the terms")
        await asyncio.sleep(WATCH_SECONDS)
        shared += [
            f"{vendor.name}: {item.describe()}"
            for item in vendor.received()
            if item.type == "terms-response"
            and (item.body.get("data") or item.body.get("accepted"))
        ]
    ctx.require(
        not shared,
        "nothing is shared under terms whose signatory attestation is from an untrusted "
        "registry or about another party",
        expected=[],
        actual=shared or None,
        requirement="VRM-ATT-012",
    )
