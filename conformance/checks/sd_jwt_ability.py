"""Ability to pay as single-use SD-JWT VCs (spec §10.5).

``--role vendor``: the suite plays the credit union (the issuer the operator
configured the vendor to trust, ``vrm conformance issuer``) and buyers who
present its credentials. A presentation bound to the vendor and to the
sender's pseudonym is taken; one made for another party, or for another
pseudonym (a presentation lifted from another relationship), is refused with
``attestation-invalid`` (VRM-ATT-016).

``--role buyer``: every SD-JWT presentation the buyer sent during the run is
bound to its receiver and to the pseudonym that sent it, and no credential is
shown twice (VRM-ATT-015).
"""

from __future__ import annotations

import json
from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.attestations import suite_issuer
from conformance.checks.audit import ensure_traffic, target_messages
from conformance.context import CheckContext
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.registry import REGISTRY
from vrm_protocol.canonical import b64url_decode
from vrm_protocol.errors import ErrorCode
from vrm_protocol.keys import SigningKey
from vrm_protocol.sd_jwt_vc import (
    ABILITY_TO_PAY_VCT,
    SD_JWT_FORMAT,
    SD_JWT_VC_TYP,
    HeldCredential,
    issue_batch,
    present,
)
from vrm_protocol.vocabulary import LifecycleStep, Role

E = ErrorCode


def _batch(ctx: CheckContext, count: int) -> list[HeldCredential]:
    issuer = suite_issuer(ctx.session)
    key = SigningKey.from_private_jwk(issuer.signer.private_jwk, kid=issuer.signer.kid)
    return issue_batch(
        issuer_key=key,
        issuer_id=issuer.issuer_id,
        range_={"max": bodies.money("32000")},
        purpose="vehicle purchase",
        now=ctx.session.clock.now(),
        count=count,
    )


def _attestation(ctx: CheckContext, token: str) -> dict[str, str]:
    return {
        "kind": "ability-to-pay",
        "issuer": suite_issuer(ctx.session).issuer_id,
        "format": SD_JWT_FORMAT,
        "token": token,
    }


@REGISTRY.check(
    "VEN-SDJWT-ABILITY",
    title="An SD-JWT ability to pay is taken only bound to this vendor and this sender",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-ATT-016",),
    roles=(Role.VENDOR,),
)
async def sd_jwt_ability(ctx: CheckContext) -> None:
    """Three personas send an RFI with a presentation of a credential of the
    trusted credit union: bound to the vendor and to the persona (taken); made
    for another party (refused); made for another persona's pseudonym
    (refused)."""
    side = await buyer_side(ctx.session)
    first, second, third = side.new_persona(), side.new_persona(), side.new_persona()
    credentials = _batch(ctx, 3)
    cases: list[tuple[Any, str, str, bool]] = [
        (first, side.target_id, first.id, True),
        (second, "https://another-dealer.example", second.id, False),
        (third, side.target_id, first.id, False),
    ]
    for (persona, audience, nonce, good), credential in zip(cases, credentials, strict=True):
        token = present(credential, audience=audience, nonce=nonce, now=ctx.session.clock.now())
        payload = persona.compose(
            "personal-rfi",
            bodies.personal_rfi_body(
                ctx.session.clock.now(), attestations=[_attestation(ctx, token)]
            ),
        )
        reply = await persona.send(payload, note=f"RFI with an SD-JWT presentation for {audience}")
        if reply.problem_code == E.UNTRUSTED_ISSUER.value:
            ctx.skip(
                "the target does not trust the suite's test issuer; configure it "
                "(`vrm conformance issuer`) to judge SD-JWT credentials"
            )
        if good:
            expect_accepted(
                ctx,
                reply,
                what="an SD-JWT presentation bound to the vendor and the sender",
                requirement="VRM-ATT-016",
            )
        else:
            expect_rejection(
                ctx,
                reply,
                E.ATTESTATION_INVALID,
                what="an SD-JWT presentation made for another party or another pseudonym",
                requirement="VRM-ATT-016",
            )


def _credential(token: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The SD-JWT's header and payload, and its disclosed claims (unverified: the
    suite does not hold the issuer's key; the shape is judged)."""
    parts = token.split("~")
    found: list[dict[str, Any]] = []
    for segment in parts[0].split(".")[:2]:
        try:
            value = json.loads(b64url_decode(segment))
        except ValueError:
            value = {}
        found.append(value if isinstance(value, dict) else {})
    disclosed: dict[str, Any] = {}
    for disclosure in parts[1:-1]:
        try:
            decoded = json.loads(b64url_decode(disclosure))
        except ValueError:
            continue
        if isinstance(decoded, list) and len(decoded) == 3 and isinstance(decoded[1], str):
            disclosed[decoded[1]] = decoded[2]
    return found[0] if found else {}, found[1] if len(found) > 1 else {}, disclosed


def _kb_claims(token: str) -> dict[str, Any] | None:
    try:
        claims = json.loads(b64url_decode(token.split("~")[-1].split(".")[1]))
    except (ValueError, IndexError):
        return None
    return claims if isinstance(claims, dict) else None


@REGISTRY.check(
    "AUD-SDJWT-PRESENTATIONS",
    title="Every SD-JWT credential the buyer presented is shown once, bound to its receiver",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-ATT-014", "VRM-ATT-015"),
    roles=(Role.BUYER,),
    audit=True,
    timeout=60,
)
async def audit_presentations(ctx: CheckContext) -> None:
    """Each SD-JWT presentation in the target's messages has a key-binding JWT
    whose ``aud`` is the message's receiver and whose ``nonce`` is its sender;
    no credential appears in two messages."""
    await ensure_traffic(ctx)
    seen: dict[str, str] = {}
    judged = 0
    for message in target_messages(ctx):
        if message.payload is None:
            continue
        for attestation in message.body.get("attestations") or []:
            if not isinstance(attestation, dict) or attestation.get("format") != SD_JWT_FORMAT:
                continue
            judged += 1
            token = str(attestation.get("token", ""))
            label = f"{message.type} {message.id}"
            kb = _kb_claims(token) or {}
            ctx.expect(
                kb.get("aud") == message.receiver and kb.get("nonce") == message.field("from"),
                f"{label}: the key-binding JWT names the receiver and the sender's pseudonym",
                actual={"aud": kb.get("aud"), "nonce": kb.get("nonce")},
                requirement="VRM-ATT-015",
            )
            credential = token.split("~")[0]
            header, claims, disclosed = _credential(token)
            ctx.expect(
                header.get("typ") == SD_JWT_VC_TYP
                and header.get("alg") == "ES256"
                and claims.get("vct") == ABILITY_TO_PAY_VCT
                and isinstance((claims.get("cnf") or {}).get("jwk"), dict)
                and "sub" not in claims
                and "amount" not in claims
                and "amount" not in disclosed
                and isinstance(disclosed.get("range"), dict),
                f"{label}: an ES256 dc+sd-jwt ability to pay, holder-bound, with no subject, "
                "disclosing a range and no amount",
                actual={"header": header, "claims": sorted(claims), "disclosed": sorted(disclosed)},
                requirement="VRM-ATT-014",
            )
            ctx.expect(
                credential not in seen,
                f"{label}: a credential is presented once",
                actual=seen.get(credential),
                requirement="VRM-ATT-015",
            )
            seen[credential] = label
    if not judged:
        ctx.skip("the target presented no SD-JWT credential in this run")
