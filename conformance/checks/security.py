"""Negative cases of the wire format: every one must be rejected, with the right
error code, and change nothing (spec §8, §9, §11.3; RFC 8725).

Each check sends one defective variant of a legal message through a probe
(see :mod:`conformance.checks._support`), judges the rejection, then proves
the target's state did not move.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import Any

from conformance.checks._support import (
    CANARY_GRACE_SECONDS,
    Probe,
    expect_accepted,
    expect_rejection,
    open_probe,
)
from conformance.context import CheckContext
from conformance.forge import (
    b64url,
    canonical_json,
    compact,
    hmac_with_public_key,
    tamper_signature,
)
from conformance.model import WIRE_STEP, HarnessError
from conformance.peers.identity import new_key, new_pairwise
from conformance.peers.messages import protected_header, sign, timestamp
from conformance.registry import REGISTRY
from conformance.target import call_driver, fetch_discovery
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import MESSAGE_TYP, Role

BOTH = (Role.VENDOR, Role.BUYER)
E = ErrorCode


Forge = Callable[[Probe, dict[str, Any]], bytes]


async def _negative(
    ctx: CheckContext,
    *,
    what: str,
    forge: Forge,
    codes: ErrorCode | Collection[ErrorCode],
    requirement: str,
    content_type: str | None = None,
) -> Probe:
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    reply = await probe.post(forge(probe, legal), note=f"forged: {what}", content_type=content_type)
    expect_rejection(ctx, reply, codes, what=what, requirement=requirement)
    await probe.confirm_unchanged(legal, before)
    return probe


def _payload(legal: Mapping[str, Any]) -> bytes:
    return canonical_json(dict(legal))


def _header(probe: Probe, **members: Any) -> dict[str, Any]:
    header: dict[str, Any] = dict(protected_header(probe.signer))
    for name, value in members.items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    return header


# -- signatures --------------------------------------------------------------------------------


@REGISTRY.check(
    "SEC-SIG-TAMPERED",
    title="A message whose signature does not verify is rejected",
    step=WIRE_STEP,
    requirements=(
        "VRM-SIG-009",
        "VRM-HTTP-006",
        "VRM-HTTP-013",
        "VRM-STATE-002",
    ),
    roles=BOTH,
)
async def tampered_signature(ctx: CheckContext) -> None:
    """One bit of an otherwise valid signature is flipped: ``bad-signature``."""
    await _negative(
        ctx,
        what="a message with a tampered signature",
        forge=lambda probe, legal: tamper_signature(sign(legal, probe.signer)),
        codes=E.BAD_SIGNATURE,
        requirement="VRM-SIG-009",
    )


@REGISTRY.check(
    "SEC-SIG-MISSING",
    title="A message with an empty signature is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-009",),
    roles=BOTH,
)
async def missing_signature(ctx: CheckContext) -> None:
    """The signature segment is empty (``header.payload.``)."""
    await _negative(
        ctx,
        what="a message with an empty signature",
        forge=lambda probe, legal: compact(_header(probe), _payload(legal), None),
        codes=(E.BAD_SIGNATURE, E.MALFORMED_JWS),
        requirement="VRM-SIG-009",
    )


@REGISTRY.check(
    "SEC-JWS-MALFORMED",
    title="A body that is not a compact JWS is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-004",),
    roles=BOTH,
)
async def malformed_jws(ctx: CheckContext) -> None:
    """Two segments instead of three (the signature dropped): ``malformed-jws``."""
    await _negative(
        ctx,
        what="a two-segment token",
        forge=lambda probe, legal: sign(legal, probe.signer).rsplit(b".", 1)[0],
        codes=E.MALFORMED_JWS,
        requirement="VRM-SIG-004",
    )


@REGISTRY.check(
    "SEC-ALG-NONE",
    title="alg 'none' is rejected in every letter case",
    step=WIRE_STEP,
    requirements=("VRM-SIG-002",),
    roles=BOTH,
)
async def alg_none(ctx: CheckContext) -> None:
    """``none``, ``None``, ``NONE`` and ``nOnE`` with an empty signature: each is
    ``unsupported-algorithm`` (RFC 8725 §3.1: never trust ``alg`` to choose)."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    for spelling in ("none", "None", "NONE", "nOnE"):
        token = compact(_header(probe, alg=spelling), _payload(legal), None)
        reply = await probe.post(token, note=f"forged: alg {spelling!r}")
        expect_rejection(
            ctx,
            reply,
            E.UNSUPPORTED_ALGORITHM,
            what=f"alg {spelling!r}",
            requirement="VRM-SIG-002",
        )
    await probe.confirm_unchanged(legal, before)


@REGISTRY.check(
    "SEC-ALG-HMAC",
    title="HMAC keyed with the sender's public key is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-002",),
    roles=BOTH,
)
async def alg_hmac(ctx: CheckContext) -> None:
    """HS256 over the message with the sender's public JWK as the secret (the
    algorithm-confusion attack, RFC 8725 §2.1): ``unsupported-algorithm``."""
    await _negative(
        ctx,
        what="an HS256 token keyed with the public key",
        forge=lambda probe, legal: hmac_with_public_key(
            _header(probe, alg="HS256"), _payload(legal), probe.signer.public_jwk
        ),
        codes=E.UNSUPPORTED_ALGORITHM,
        requirement="VRM-SIG-002",
    )


@REGISTRY.check(
    "SEC-KID-UNKNOWN",
    title="A message signed under an unknown kid is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-013",),
    roles=BOTH,
)
async def unknown_kid(ctx: CheckContext) -> None:
    """Signed by a key the sender never published, under that key's thumbprint."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        stranger = new_key("EdDSA")
        return compact(_header(probe, kid=stranger.kid), _payload(legal), stranger)

    await _negative(
        ctx,
        what="a message under an unknown kid",
        forge=forge,
        codes=E.UNKNOWN_KEY,
        requirement="VRM-SIG-013",
    )


@REGISTRY.check(
    "SEC-KEY-SENDER",
    title="A key that does not belong to the sender is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-014",),
    roles=BOTH,
)
async def key_not_senders(ctx: CheckContext) -> None:
    """A valid signature by another party's key (a did:jwk the target can
    resolve) on a message whose ``from`` is the probe's sender."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        _, other = new_pairwise()
        return compact(_header(probe, kid=other.kid, alg=other.alg), _payload(legal), other)

    await _negative(
        ctx,
        what="a message signed by someone else's key",
        forge=forge,
        codes=E.KEY_SENDER_MISMATCH,
        requirement="VRM-SIG-014",
    )


@REGISTRY.check(
    "SEC-HDR-TYP",
    title="A wrong or missing typ is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-005",),
    roles=BOTH,
)
async def wrong_typ(ctx: CheckContext) -> None:
    """``typ`` ``JWT`` and no ``typ`` at all: ``invalid-typ`` (RFC 8725 §3.11)."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    for typ in ("JWT", None):
        token = compact(_header(probe, typ=typ), _payload(legal), probe.signer)
        reply = await probe.post(token, note=f"forged: typ {typ!r}")
        expect_rejection(ctx, reply, E.INVALID_TYP, what=f"typ {typ!r}", requirement="VRM-SIG-005")
    await probe.confirm_unchanged(legal, before)


@REGISTRY.check(
    "SEC-HDR-NO-KID",
    title="A protected header without kid is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-006",),
    roles=BOTH,
)
async def missing_kid(ctx: CheckContext) -> None:
    """``kid`` is required: without it the key would be guessed."""
    await _negative(
        ctx,
        what="a header without kid",
        forge=lambda probe, legal: compact(_header(probe, kid=None), _payload(legal), probe.signer),
        codes=E.INVALID_HEADER,
        requirement="VRM-SIG-006",
    )


async def _injected(ctx: CheckContext, parameter: str) -> None:
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    attacker = new_key("EdDSA")
    canary_url, nonce = probe.server.new_canary()
    value: Any
    if parameter in ("jku", "x5u"):
        value = canary_url
    elif parameter == "jwk":
        value = {**attacker.public_jwk, "kid": attacker.kid}
    else:  # x5c: a certificate chain the verifier would have to parse
        value = [b64url(b"not a certificate, never parse me")]
    header = _header(probe, kid=attacker.kid)
    header[parameter] = value
    reply = await probe.post(
        compact(header, _payload(legal), attacker), note=f"forged: injected {parameter}"
    )
    expect_rejection(
        ctx,
        reply,
        E.INVALID_HEADER,
        what=f"a header carrying {parameter}",
        requirement="VRM-SIG-006",
    )
    if parameter in ("jku", "x5u"):
        await asyncio.sleep(CANARY_GRACE_SECONDS)
        hits = probe.server.canary_hits.get(nonce, [])
        ctx.require(
            not hits,
            f"the target does not fetch the URL in {parameter} (no SSRF)",
            expected="no request to the planted URL",
            actual=hits or None,
            requirement="VRM-SIG-008",
        )
    await probe.confirm_unchanged(legal, before)


@REGISTRY.check(
    "SEC-HDR-JKU",
    title="An injected jku is rejected and never fetched",
    step=WIRE_STEP,
    requirements=("VRM-SIG-006", "VRM-SIG-008"),
    roles=BOTH,
)
async def injected_jku(ctx: CheckContext) -> None:
    """``jku`` points at the suite's canary; the target must refuse the header and
    must not request the URL (RFC 8725 §3.10)."""
    await _injected(ctx, "jku")


@REGISTRY.check(
    "SEC-HDR-X5U",
    title="An injected x5u is rejected and never fetched",
    step=WIRE_STEP,
    requirements=("VRM-SIG-006", "VRM-SIG-008"),
    roles=BOTH,
)
async def injected_x5u(ctx: CheckContext) -> None:
    """``x5u`` points at the suite's canary."""
    await _injected(ctx, "x5u")


@REGISTRY.check(
    "SEC-HDR-JWK",
    title="An embedded jwk is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-006",),
    roles=BOTH,
)
async def injected_jwk(ctx: CheckContext) -> None:
    """The attacker's own public key embedded in the header, with a signature
    that verifies under it: trusting it would let anyone sign as anyone."""
    await _injected(ctx, "jwk")


@REGISTRY.check(
    "SEC-HDR-X5C",
    title="An embedded x5c chain is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-006",),
    roles=BOTH,
)
async def injected_x5c(ctx: CheckContext) -> None:
    """A certificate chain in the header (the profile uses no X.509)."""
    await _injected(ctx, "x5c")


@REGISTRY.check(
    "SEC-HDR-CRIT",
    title="An unknown crit extension is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-007",),
    roles=BOTH,
)
async def unknown_crit(ctx: CheckContext) -> None:
    """``crit`` naming an extension the profile does not define (RFC 7515 §4.1.11)."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        header = _header(probe)
        header["crit"] = ["org.example.must-understand"]
        header["org.example.must-understand"] = True
        return compact(header, _payload(legal), probe.signer)

    await _negative(
        ctx,
        what="an unknown crit",
        forge=forge,
        codes=E.UNSUPPORTED_CRITICAL,
        requirement="VRM-SIG-007",
    )


@REGISTRY.check(
    "SEC-HDR-B64",
    title="An unencoded payload (b64: false) is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-007",),
    roles=BOTH,
)
async def b64_false(ctx: CheckContext) -> None:
    """RFC 7797 ``b64: false`` with ``crit: ["b64"]``: the profile signs encoded
    payloads only. The header rules apply in the order of spec §8.6, ``crit``
    before the other parameters, so the code is ``unsupported-critical-header``."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        header = _header(probe)
        header["b64"] = False
        header["crit"] = ["b64"]
        # RFC 7797 §5.2: a compact unencoded payload may not contain '.'.
        payload = _payload(legal).replace(b".", b"_")
        return compact(header, payload, probe.signer, encode_payload=False)

    await _negative(
        ctx,
        what="b64: false",
        forge=forge,
        codes=E.UNSUPPORTED_CRITICAL,
        requirement="VRM-SIG-007",
    )


@REGISTRY.check(
    "SEC-HDR-DUPLICATE",
    title="A protected header repeating a member is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-012",),
    roles=BOTH,
)
async def duplicate_header_member(ctx: CheckContext) -> None:
    """``{"alg":"EdDSA","alg":"none",...}``: which one a parser keeps is undefined
    (RFC 8259 §4), so the profile refuses both, with ``duplicate-member`` (spec
    §8.6: one code per fault, VRM-SIG-012)."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        kid = json.dumps(probe.signer.kid)
        raw = (
            f'{{"alg":"{probe.signer.alg}","alg":"none","kid":{kid},"typ":"{MESSAGE_TYP}"}}'
        ).encode()
        return compact(raw, _payload(legal), probe.signer)

    await _negative(
        ctx,
        what="a duplicate header member",
        forge=forge,
        codes=E.DUPLICATE_MEMBER,
        requirement="VRM-SIG-012",
    )


# -- payload bytes -----------------------------------------------------------------------------


@REGISTRY.check(
    "SEC-JSON-DUPLICATE",
    title="A payload repeating a member name is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-012",),
    roles=BOTH,
)
async def duplicate_payload_member(ctx: CheckContext) -> None:
    """The payload repeats ``type`` (once legal, once not), correctly signed."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        canonical = _payload(legal)
        needle = b'"type":' + json.dumps(legal["type"]).encode()
        doubled = canonical.replace(needle, needle + b',"type":"receipt"', 1)
        return compact(protected_header(probe.signer), doubled, probe.signer)

    await _negative(
        ctx,
        what="a duplicate payload member",
        forge=forge,
        codes=E.DUPLICATE_MEMBER,
        requirement="VRM-SIG-012",
    )


@REGISTRY.check(
    "SEC-JSON-NONCANONICAL",
    title="A payload not in RFC 8785 form is rejected",
    step=WIRE_STEP,
    requirements=("VRM-SIG-011",),
    roles=BOTH,
)
async def non_canonical(ctx: CheckContext) -> None:
    """The same members, pretty-printed and in another order, correctly signed."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        pretty = json.dumps(dict(reversed(list(legal.items()))), indent=2).encode()
        return compact(protected_header(probe.signer), pretty, probe.signer)

    await _negative(
        ctx,
        what="a non-canonical payload",
        forge=forge,
        codes=E.NON_CANONICAL_PAYLOAD,
        requirement="VRM-SIG-011",
    )


# -- freshness and audience --------------------------------------------------------------------


def _resigned(probe: Probe, legal: dict[str, Any], **changes: Any) -> bytes:
    return sign({**legal, **changes}, probe.signer)


@REGISTRY.check(
    "SEC-FRESH-EXPIRED",
    title="An expired message is rejected",
    step=WIRE_STEP,
    requirements=("VRM-FRESH-001",),
    roles=BOTH,
)
async def expired(ctx: CheckContext) -> None:
    """Created two days ago, expired yesterday: ``message-expired``."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        now = ctx.session.clock.now()
        return _resigned(
            probe,
            legal,
            created=timestamp(now - timedelta(days=2)),
            expires=timestamp(now - timedelta(days=1)),
        )

    await _negative(
        ctx,
        what="an expired message",
        forge=forge,
        codes=E.MESSAGE_EXPIRED,
        requirement="VRM-FRESH-001",
    )


@REGISTRY.check(
    "SEC-FRESH-FUTURE",
    title="A future-dated message is rejected",
    step=WIRE_STEP,
    requirements=("VRM-FRESH-002",),
    roles=BOTH,
)
async def future_dated(ctx: CheckContext) -> None:
    """Created an hour from now (beyond any reasonable clock skew)."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        later = ctx.session.clock.now() + timedelta(hours=1)
        return _resigned(
            probe, legal, created=timestamp(later), expires=timestamp(later + timedelta(days=1))
        )

    await _negative(
        ctx,
        what="a future-dated message",
        forge=forge,
        codes=E.MESSAGE_NOT_YET_VALID,
        requirement="VRM-FRESH-002",
    )


@REGISTRY.check(
    "SEC-AUDIENCE",
    title="A message addressed to someone else is rejected",
    step=WIRE_STEP,
    requirements=("VRM-FRESH-006",),
    roles=BOTH,
)
async def wrong_audience(ctx: CheckContext) -> None:
    """``to`` names another party only: ``wrong-audience``."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        other = "https://another-party.vrm-protocol.example"
        if probe.target_party.startswith("did:"):
            other, _ = new_pairwise()
        return _resigned(probe, legal, to=[other])

    await _negative(
        ctx,
        what="a message for another party",
        forge=forge,
        codes=E.WRONG_AUDIENCE,
        requirement="VRM-FRESH-006",
    )


# -- replay ------------------------------------------------------------------------------------


@REGISTRY.check(
    "SEC-REPLAY-DIFFERENT",
    title="A different message under a used id is a replay",
    step=WIRE_STEP,
    requirements=(
        "VRM-FRESH-007",
        "VRM-HTTP-006",
        "VRM-HTTP-013",
    ),
    roles=BOTH,
)
async def replay_different(ctx: CheckContext) -> None:
    """Same sender, same id, different bytes: ``409 replay``."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    first = await probe.post(sign(legal, probe.signer), note="original")
    expect_accepted(ctx, first, what="the original message")
    changed = {**legal, "extensions": {"org.example.replayed": True}}
    second = await probe.post(sign(changed, probe.signer), note="same id, other bytes")
    expect_rejection(
        ctx, second, E.REPLAY, what="another message under a used id", requirement="VRM-FRESH-007"
    )


@REGISTRY.check(
    "SEC-REPLAY-IDENTICAL",
    title="An identical resend gets the original receipt and no second effect",
    step=WIRE_STEP,
    requirements=(
        "VRM-HTTP-005",
        "VRM-VEN-002",
    ),
    roles=BOTH,
)
async def replay_identical(ctx: CheckContext) -> None:
    """The same bytes twice: ``200`` with the original receipt's bytes (spec §11.3)."""
    probe = await open_probe(ctx)
    token = sign(probe.legal(), probe.signer)
    first = await probe.post(token, note="original")
    expect_accepted(ctx, first, what="the original message")
    # The first message may still be having its effect (a reply the target
    # owes): compare from the state it settles in.
    before = await probe.settled_state()
    second = await probe.post(token, note="identical resend")
    ctx.require(
        second.status == 200,
        "an identical resend is answered 200",
        expected="200",
        actual=second.describe(),
        requirement="VRM-HTTP-005",
    )
    ctx.require(
        second.http.body.strip() == first.http.body.strip(),
        "the resend is answered with the original receipt, byte for byte",
        requirement="VRM-HTTP-005",
    )
    if before is not None:
        after = await probe.settled_state()
        ctx.require(
            after == before,
            "the resend had no second effect (test driver state)",
            requirement="VRM-HTTP-005",
        )


async def _restart_target(ctx: CheckContext) -> None:
    command = ctx.options.restart_command
    if not command:
        raise HarnessError("no --restart-command")
    ctx.extend_deadline(120)
    process = await asyncio.create_subprocess_exec(
        *shlex.split(command),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise HarnessError(
            f"--restart-command exited {process.returncode}: {stderr.decode(errors='replace')}"
        )
    from conformance.client import TargetUnreachable

    for _ in range(600):
        try:
            reply = await fetch_discovery(ctx.session)
        except TargetUnreachable:
            await asyncio.sleep(0.1)
            continue
        if reply.status == 200:
            offset = int(ctx.session.clock.offset.total_seconds())
            if offset and ctx.session.driver_url is not None:
                # A test clock need not survive a restart; the suite's view of
                # the target's time must, or every later message is stale.
                await call_driver(ctx.session, "POST", "/clock", {"offsetSeconds": offset})
            return
        await asyncio.sleep(0.1)
    ctx.fail("the target answers its discovery document within 60 s of a restart")


@REGISTRY.check(
    "SEC-REPLAY-RESTART",
    title="Replay protection survives a restart",
    step=WIRE_STEP,
    requirements=(
        "VRM-FRESH-008",
        "VRM-HTTP-005",
        "VRM-VEN-002",
    ),
    roles=BOTH,
    needs=("restart-command",),
    timeout=120,
)
async def replay_after_restart(ctx: CheckContext) -> None:
    """Accepted before a restart; after it, the identical resend still gets the
    original receipt and a different message under the id is still a replay."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    token = sign(legal, probe.signer)
    first = await probe.post(token, note="before restart")
    expect_accepted(ctx, first, what="the original message")
    await _restart_target(ctx)
    again = await probe.post(token, note="identical resend after restart")
    ctx.require(
        again.status == 200 and again.http.body.strip() == first.http.body.strip(),
        "after a restart, the identical resend gets the original receipt",
        expected="200 + original receipt",
        actual=again.describe(),
        requirement="VRM-HTTP-005",
    )
    changed = {**legal, "extensions": {"org.example.replayed": True}}
    other = await probe.post(sign(changed, probe.signer), note="other bytes after restart")
    expect_rejection(
        ctx, other, E.REPLAY, what="a replay after a restart", requirement="VRM-FRESH-008"
    )


# -- shape -------------------------------------------------------------------------------------


def _without_required(legal: dict[str, Any]) -> dict[str, Any]:
    body = dict(legal["body"])
    for member in ("budget", "price", "validUntil", "responseBy"):
        if member in body:
            del body[member]
            break
    return {**legal, "body": body}


@REGISTRY.check(
    "SEC-SCHEMA-MISSING",
    title="A body missing a required member is rejected",
    step=WIRE_STEP,
    requirements=("VRM-ENV-002",),
    roles=BOTH,
)
async def schema_missing_member(ctx: CheckContext) -> None:
    """The body lacks a required member (the budget of an RFI, the price of an offer)."""
    await _negative(
        ctx,
        what="a body missing a required member",
        forge=lambda probe, legal: sign(_without_required(legal), probe.signer),
        codes=E.SCHEMA_INVALID,
        requirement="VRM-ENV-002",
    )


@REGISTRY.check(
    "SEC-SCHEMA-UNKNOWN-MEMBER",
    title="An undefined envelope member is rejected",
    step=WIRE_STEP,
    requirements=("VRM-ENV-003",),
    roles=BOTH,
)
async def schema_unknown_member(ctx: CheckContext) -> None:
    """Every object is closed; open data goes in ``extensions`` (spec §5.4)."""
    await _negative(
        ctx,
        what="an undefined envelope member",
        forge=lambda probe, legal: _resigned(probe, legal, colour="red"),
        codes=E.SCHEMA_INVALID,
        requirement="VRM-ENV-003",
    )


@REGISTRY.check(
    "SEC-SCHEMA-FLOAT-MONEY",
    title="Money as a JSON number is rejected",
    step=WIRE_STEP,
    requirements=("VRM-ENV-002",),
    roles=BOTH,
)
async def schema_float_money(ctx: CheckContext) -> None:
    """Amounts are decimal strings, never floats: ``28500.5`` as a number is invalid."""

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        body = json.loads(json.dumps(legal["body"]))
        holder = body.get("budget", {}).get("min") or body.get("price", {}).get("total")
        holder["amount"] = 28500.5
        return sign({**legal, "body": body}, probe.signer)

    await _negative(
        ctx,
        what="money as a number",
        forge=forge,
        codes=E.SCHEMA_INVALID,
        requirement="VRM-ENV-002",
    )


@REGISTRY.check(
    "SEC-TYPE-UNKNOWN",
    title="An unknown message type is rejected",
    step=WIRE_STEP,
    requirements=("VRM-ENV-014",),
    roles=BOTH,
)
async def unknown_type(ctx: CheckContext) -> None:
    """``type: personal-rfq`` (no such type in 1.0): ``unknown-message-type``."""
    await _negative(
        ctx,
        what="an unknown message type",
        forge=lambda probe, legal: _resigned(probe, legal, type="personal-rfq"),
        codes=E.UNKNOWN_MESSAGE_TYPE,
        requirement="VRM-ENV-014",
    )


@REGISTRY.check(
    "SEC-VERSION",
    title="An unsupported protocol version is rejected",
    step=WIRE_STEP,
    requirements=("VRM-ENV-013",),
    roles=BOTH,
)
async def unsupported_version(ctx: CheckContext) -> None:
    """``vrm: "9.0"``: ``unsupported-version``."""
    await _negative(
        ctx,
        what="protocol version 9.0",
        forge=lambda probe, legal: _resigned(probe, legal, vrm="9.0"),
        codes=E.UNSUPPORTED_VERSION,
        requirement="VRM-ENV-013",
    )


# -- transport limits --------------------------------------------------------------------------


def _declared_limit(ctx: CheckContext, name: str, default: int) -> int:
    limits = ctx.discovery.get("limits")
    value = limits.get(name) if isinstance(limits, dict) else None
    return value if isinstance(value, int) and value > 0 else default


@REGISTRY.check(
    "SEC-LIMIT-SIZE",
    title="A message over the declared size limit is refused",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-015",),
    roles=BOTH,
)
async def oversized(ctx: CheckContext) -> None:
    """One byte over ``limits.maxMessageBytes`` of the discovery document: ``413``."""
    limit = _declared_limit(ctx, "maxMessageBytes", 1024 * 1024)

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        padded = {**legal, "extensions": {"org.example.padding": "x" * limit}}
        return sign(padded, probe.signer)

    await _negative(
        ctx,
        what=f"a message over {limit} bytes",
        forge=forge,
        codes=E.PAYLOAD_TOO_LARGE,
        requirement="VRM-HTTP-015",
    )


@REGISTRY.check(
    "SEC-LIMIT-DEPTH",
    title="A payload nested deeper than the limit is refused",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-016",),
    roles=BOTH,
)
async def too_deep(ctx: CheckContext) -> None:
    """An extension value nested past ``limits.maxDepth``: ``nesting-too-deep``."""
    depth = _declared_limit(ctx, "maxDepth", 64) + 8

    def forge(probe: Probe, legal: dict[str, Any]) -> bytes:
        nested: Any = "bottom"
        for _ in range(depth):
            nested = [nested]
        return sign({**legal, "extensions": {"org.example.deep": nested}}, probe.signer)

    await _negative(
        ctx,
        what=f"a payload nested {depth} deep",
        forge=forge,
        codes=E.NESTING_TOO_DEEP,
        requirement="VRM-HTTP-016",
    )


@REGISTRY.check(
    "SEC-MEDIA-TYPE",
    title="An inbox POST not typed application/vrm+jws is refused",
    step=WIRE_STEP,
    requirements=(
        "VRM-HTTP-003",
        "VRM-HTTP-013",
    ),
    roles=BOTH,
)
async def wrong_media_type(ctx: CheckContext) -> None:
    """A valid message sent as ``application/json``: ``415``."""
    await _negative(
        ctx,
        what="a message sent as application/json",
        forge=lambda probe, legal: sign(legal, probe.signer),
        codes=E.UNSUPPORTED_MEDIA_TYPE,
        requirement="VRM-HTTP-003",
        content_type="application/json",
    )


# -- extensions and pipeline order -------------------------------------------------------------


@REGISTRY.check(
    "SEC-EXTENSIONS-IGNORED",
    title="Unknown extensions are ignored, not rejected",
    step=WIRE_STEP,
    requirements=("VRM-ENV-011",),
    roles=BOTH,
)
async def extensions_ignored(ctx: CheckContext) -> None:
    """A legal message with an extension the target cannot know
    (``org.example.conformance-unknown``) is accepted (spec §5.4)."""
    probe = await open_probe(ctx)
    legal = probe.legal(
        extensions={"org.example.conformance-unknown": {"colour": "teal", "depth": [1, 2]}}
    )
    reply = await probe.post(sign(legal, probe.signer), note="legal message with an extension")
    expect_accepted(
        ctx, reply, what="a message carrying an unknown extension", requirement="VRM-ENV-011"
    )


@REGISTRY.check(
    "SEC-PIPELINE-ORDER",
    title="A message with several faults is rejected for the earliest stage's",
    step=WIRE_STEP,
    requirements=("VRM-ENV-015",),
    roles=BOTH,
)
async def pipeline_order(ctx: CheckContext) -> None:
    """Expired *and* badly signed: ``bad-signature`` (the signature is judged
    before the payload is read). An unknown type *and* addressed elsewhere:
    ``unknown-message-type`` (shape before audience). Expired *and* addressed
    elsewhere: ``wrong-audience`` (audience before freshness)."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    now = ctx.session.clock.now()
    stale = {
        "created": timestamp(now - timedelta(days=2)),
        "expires": timestamp(now - timedelta(days=1)),
    }
    elsewhere = "https://another-party.vrm-protocol.example"
    if probe.target_party.startswith("did:"):
        elsewhere, _ = new_pairwise()
    cases: list[tuple[str, bytes, ErrorCode]] = [
        (
            "an expired message with a bad signature",
            tamper_signature(_resigned(probe, legal, **stale)),
            E.BAD_SIGNATURE,
        ),
        (
            "an unknown type addressed to another party",
            _resigned(probe, legal, type="personal-rfq", to=[elsewhere]),
            E.UNKNOWN_MESSAGE_TYPE,
        ),
        (
            "an expired message addressed to another party",
            _resigned(probe, legal, to=[elsewhere], **stale),
            E.WRONG_AUDIENCE,
        ),
    ]
    for what, token, code in cases:
        reply = await probe.post(token, note=f"forged: {what}")
        expect_rejection(ctx, reply, code, what=what, requirement="VRM-ENV-015")
    await probe.confirm_unchanged(legal, before)


@REGISTRY.check(
    "SEC-FRESH-SKEW",
    title="A message a little ahead of the target's clock is accepted",
    step=WIRE_STEP,
    requirements=("VRM-FRESH-003",),
    roles=BOTH,
)
async def tolerated_skew(ctx: CheckContext) -> None:
    """``created`` two minutes in the future is within the recommended 300 s of
    allowed skew (spec §9.1): clocks differ, and a receiver should not refuse
    an honest sender for it."""
    probe = await open_probe(ctx)
    ahead = ctx.session.clock.now() + timedelta(seconds=120)
    legal = probe.legal(created=ahead, expires=ahead + timedelta(days=1))
    reply = await probe.post(sign(legal, probe.signer), note="created 120 s ahead")
    ctx.recommend(
        reply.status == 202,
        "a message created 120 s ahead of the target's clock is accepted",
        expected="202",
        actual=reply.describe(),
        requirement="VRM-FRESH-003",
    )
