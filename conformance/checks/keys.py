"""Keys nobody owns, signatures with a second form, and timestamps that are not instants
(spec §3.1, §8.2, §8.4, §9.1).

What the reference implementation got wrong once (issue 9), a third party's
agent can get wrong too:

* an Ed25519 key of small or mixed order (or a non-canonical encoding) is a
  pseudonym anyone can sign as, or whose holder can deny what it signed:
  the key must be refused on import (``unknown-key``);
* a signature with R of small order, or S not below L, or the high-S twin
  of an ES256 signature, must be refused (``bad-signature``), never taken
  as a new message, a resend or a replay;
* a did:jwk spelled another way is not a key identifier (``unknown-key``)
  and not the party it encodes (``wrong-audience``);
* a timestamp with second 60 or on 31 February is ``schema-invalid`` (never
  a 5xx), and ``9999-12-31T23:59:59Z`` is the far future.

Every forgery is made by the suite's own code (``conformance.forge``, with
libsodium's point arithmetic), never by the library's signer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.checks._support import (
    Probe,
    expect_accepted,
    expect_rejection,
    open_probe,
)
from conformance.checks.scenarios import (
    _buyer_inbox,
    buyer_rfi_to_new_vendor,
)
from conformance.context import CheckContext, Session, fixture
from conformance.forge import (
    ED25519_IDENTITY,
    ED25519_IDENTITY_NON_CANONICAL,
    JoseSigner,
    Signs,
    canonical_json,
    compact,
    high_s_twin,
    mixed_order_signer,
    nonce_free_signer,
    small_order_signer,
    unreduced_s,
)
from conformance.model import WIRE_STEP, CheckFailed, Expectation
from conformance.peers.buyers import buyer_side
from conformance.peers.identity import non_canonical_did_jwk
from conformance.peers.inbox import Inbound
from conformance.peers.messages import new_message_id, sign
from conformance.peers.posting import InboxReply
from conformance.peers.vendors import SuiteVendor
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import MESSAGE_TYP, Role

BOTH = (Role.VENDOR, Role.BUYER)
E = ErrorCode
#: The last instant a timestamp can name.
LAST_INSTANT = "9999-12-31T23:59:59Z"


def _token(signer: Signs, payload: Mapping[str, Any]) -> bytes:
    header = {"alg": signer.alg, "kid": signer.kid, "typ": MESSAGE_TYP}
    return compact(header, canonical_json(dict(payload)), signer)


def _as(probe: Probe, legal: dict[str, Any], pseudonym: str) -> dict[str, Any]:
    """The legal message as sent by ``pseudonym`` (vendor targets), or as it is
    (buyer targets, where the sender is the suite's vendor: only the key differs)."""
    if probe.persona is not None:
        return {**legal, "from": pseudonym}
    return legal


async def _refused_under_forged_keys(
    ctx: CheckContext, cases: list[tuple[str, Signs]], *, requirement: str
) -> None:
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    for what, forger in cases:
        pseudonym = forger.kid.removesuffix("#0")
        reply = await probe.post(
            _token(forger, _as(probe, legal, pseudonym)), note=f"forged: {what}"
        )
        expect_rejection(ctx, reply, E.UNKNOWN_KEY, what=what, requirement=requirement)
    await probe.confirm_unchanged(legal, before)


# -- keys nobody owns ------------------------------------------------------------------------------


@REGISTRY.check(
    "KEY-SMALL-ORDER",
    title="A did:jwk of a small-order key, with the signature anyone can make, is refused",
    step=WIRE_STEP,
    requirements=("VRM-SIG-022", "VRM-HTTP-006"),
    roles=BOTH,
)
async def small_order_key(ctx: CheckContext) -> None:
    """The pseudonym is the identity point (and the same point written with
    y = p + 1); R = identity and S = 0 satisfy the verification equation over
    any message. The key must be refused on import: ``unknown-key``."""
    cases: list[tuple[str, Signs]] = [
        ("a did:jwk of the identity point", small_order_signer(ED25519_IDENTITY)[1]),
        (
            "a did:jwk of the identity point written with y = p + 1",
            small_order_signer(ED25519_IDENTITY_NON_CANONICAL)[1],
        ),
    ]
    await _refused_under_forged_keys(ctx, cases, requirement="VRM-SIG-022")


@REGISTRY.check(
    "KEY-MIXED-ORDER",
    title="A did:jwk of a mixed-order key is refused, though its signature verifies",
    step=WIRE_STEP,
    requirements=("VRM-SIG-022", "VRM-HTTP-006"),
    roles=BOTH,
)
async def mixed_order_key(ctx: CheckContext) -> None:
    """A prime-order key plus a point of order 8, signing with nonces chosen so
    that the signature verifies under plain RFC 8032 (without the cofactor).
    Such a key lets its holder sign what other verifiers refuse, and deny
    it: ``unknown-key``."""
    await _refused_under_forged_keys(
        ctx,
        [("a did:jwk of a mixed-order key", mixed_order_signer()[1])],
        requirement="VRM-SIG-022",
    )


# -- one did:jwk spelling --------------------------------------------------------------------------


@REGISTRY.check(
    "KEY-DID-JWK-SPELLING",
    title="A did:jwk spelled another way is not a key identifier and not the party",
    step=WIRE_STEP,
    requirements=("VRM-SIG-026", "VRM-HTTP-006"),
    roles=BOTH,
)
async def did_jwk_spelling(ctx: CheckContext) -> None:
    """Against a vendor: the persona's own key under its did:jwk with the JWK
    members reversed and spaced, correctly signed: ``unknown-key``. Against a
    buyer: an offer addressed to her pseudonym spelled that way:
    ``wrong-audience`` (another spelling is not her)."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    if probe.persona is not None:
        alias = non_canonical_did_jwk(probe.sender)
        signer = JoseSigner(probe.signer.alg, alias + "#0", probe.signer.private_jwk)
        reply = await probe.post(
            _token(signer, {**legal, "from": alias}),
            note="forged: the persona's key under another did:jwk spelling",
        )
        expect_rejection(
            ctx,
            reply,
            E.UNKNOWN_KEY,
            what="a did:jwk in a non-canonical spelling",
            requirement="VRM-SIG-026",
        )
    else:
        alias = non_canonical_did_jwk(probe.target_party)
        reply = await probe.post(
            sign({**legal, "to": [alias]}, probe.signer),
            note="forged: addressed to the buyer's pseudonym spelled another way",
        )
        expect_rejection(
            ctx,
            reply,
            E.WRONG_AUDIENCE,
            what="a message addressed to another spelling of the buyer's pseudonym",
            requirement="VRM-SIG-026",
        )
    await probe.confirm_unchanged(legal, before)


# -- signatures with a second form -----------------------------------------------------------------


@REGISTRY.check(
    "KEY-SIG-SMALL-ORDER-R",
    title="An EdDSA signature with R of small order, or S not reduced, is refused",
    step=WIRE_STEP,
    requirements=("VRM-SIG-023", "VRM-HTTP-006"),
    roles=BOTH,
)
async def small_order_r(ctx: CheckContext) -> None:
    """Under the sender's own, honest key: R = the identity and S = H(R, A, M)·a
    (a signature that needs no nonce and satisfies S·B = R + H·A), the same
    with R written non-canonically, and a valid signature with L added to S.
    Each is ``bad-signature``."""
    probe = await open_probe(ctx)
    if probe.signer.alg != "EdDSA":
        ctx.skip("the sender's key is not Ed25519")
    legal = probe.legal()
    before = await probe.state()
    cases = [
        ("R of small order (the identity)", _token(nonce_free_signer(probe.signer), legal)),
        (
            "R written non-canonically (the identity, y = p + 1)",
            _token(nonce_free_signer(probe.signer, ED25519_IDENTITY_NON_CANONICAL), legal),
        ),
        ("S not below L", unreduced_s(sign(legal, probe.signer))),
    ]
    for what, token in cases:
        reply = await probe.post(token, note=f"forged: {what}")
        expect_rejection(
            ctx, reply, E.BAD_SIGNATURE, what=f"a signature with {what}", requirement="VRM-SIG-023"
        )
    await probe.confirm_unchanged(legal, before)


@fixture("buyer-rfi-to-es256-vendor")
async def buyer_rfi_to_es256_vendor(session: Session) -> tuple[SuiteVendor, Inbound, str]:
    """The buyer's RFI to a vendor that signs with a P-256 key (ES256)."""
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance P-256 Motors", alg="ES256")
    inbox = _buyer_inbox(rfi, session)
    if inbox is None:
        raise CheckFailed(
            Expectation(
                "the buyer's RFI names a replyTo inbox, or its discovery document an inbox", False
            )
        )
    return vendor, rfi, inbox


async def _es256_probe(ctx: CheckContext) -> Probe:
    if ctx.role is Role.VENDOR:
        side = await buyer_side(ctx)
        persona = side.new_persona("ES256")
        return Probe(ctx, persona.id, persona.signer, side.target_id, side.server, persona=persona)
    vendor, rfi, inbox = await ctx.use(buyer_rfi_to_es256_vendor)
    return Probe(
        ctx,
        vendor.id,
        vendor.signer,
        str(rfi.field("from")),
        vendor.server,
        vendor=vendor,
        rfi=rfi,
        buyer_inbox=inbox,
    )


@REGISTRY.check(
    "KEY-ES256-HIGH-S",
    title="The high-S twin of an ES256 message is refused, before and after the message",
    step=WIRE_STEP,
    requirements=("VRM-SIG-024", "VRM-SIG-002", "VRM-HTTP-006"),
    roles=BOTH,
)
async def es256_high_s(ctx: CheckContext) -> None:
    """A legal message signed with ES256 (low-S, as the profile sends) and its
    twin (r, n - s), which verifies as plain ECDSA. The twin first:
    ``bad-signature``, and the legal message is then accepted as new (the
    twin changed nothing). The twin again, after: ``bad-signature`` still,
    neither the original's receipt (a resend) nor ``replay``."""
    probe = await _es256_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    token = sign(legal, probe.signer)
    twin = high_s_twin(token)
    first = await probe.post(twin, note="forged: the high-S twin, before the message")
    expect_rejection(
        ctx, first, E.BAD_SIGNATURE, what="a high-S ES256 signature", requirement="VRM-SIG-024"
    )
    if before is not None:
        ctx.require(
            await probe.state() == before,
            "the refused twin changed nothing in the target's state (test driver)",
            requirement="VRM-HTTP-006",
        )
    original = await probe.post(token, note="the legal ES256 message (low-S)")
    expect_accepted(ctx, original, what="the legal ES256 message", requirement="VRM-SIG-002")
    again = await probe.post(twin, note="forged: the high-S twin, after the message")
    _refused_not_resent(ctx, again, original)


def _refused_not_resent(ctx: CheckContext, twin: InboxReply, original: InboxReply) -> None:
    ctx.require(
        twin.status != 200 and twin.http.body.strip() != original.http.body.strip(),
        "the twin of an accepted message is not answered as an identical resend",
        expected="401 bad-signature",
        actual=twin.describe(),
        requirement="VRM-SIG-024",
    )
    expect_rejection(
        ctx,
        twin,
        E.BAD_SIGNATURE,
        what="the high-S twin of an accepted message (not a replay)",
        requirement="VRM-SIG-024",
    )


# -- timestamps that are not instants --------------------------------------------------------------


def _body_timestamp(body: Mapping[str, Any]) -> str | None:
    for member in ("responseBy", "validUntil"):
        if isinstance(body.get(member), str):
            return member
    return None


def _problem_paths(reply: InboxReply) -> set[str]:
    try:
        problem = reply.http.json()
    except ValueError:
        return set()
    if not isinstance(problem, dict):
        return set()
    paths = {problem.get("path")}
    errors = problem.get("errors")
    if isinstance(errors, list):
        paths.update(item.get("path") for item in errors if isinstance(item, dict))
    return {path for path in paths if isinstance(path, str)}


@REGISTRY.check(
    "TIME-NOT-AN-INSTANT",
    title="A leap second or 31 February is schema-invalid; year 9999 is the far future",
    step=WIRE_STEP,
    requirements=("VRM-FRESH-012", "VRM-FRESH-013", "VRM-HTTP-006"),
    roles=BOTH,
)
async def not_an_instant(ctx: CheckContext) -> None:
    """``created`` at ``23:59:60`` and a body timestamp on 31 February match the
    timestamp's shape but name no instant: ``schema-invalid`` at their JSON
    Pointer, never a 5xx. Then a legal message that ``expires`` at
    ``9999-12-31T23:59:59Z``: accepted, or refused for its lifetime
    (``lifetime-too-long``, VRM-FRESH-005), never a 5xx."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    before = await probe.state()
    year = int(str(legal["created"])[:4])
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "created at a leap second (23:59:60)",
            {**legal, "created": f"{year}-12-31T23:59:60Z"},
            "/created",
        ),
    ]
    member = _body_timestamp(legal["body"])
    if member is not None:
        body = {**legal["body"], member: f"{year + 1}-02-31T10:00:00Z"}
        cases.append((f"{member} on 31 February", {**legal, "body": body}, f"/body/{member}"))
    for what, payload, path in cases:
        reply = await probe.post(sign(payload, probe.signer), note=f"forged: {what}")
        expect_rejection(
            ctx, reply, E.SCHEMA_INVALID, what=f"a timestamp {what}", requirement="VRM-FRESH-012"
        )
        paths = _problem_paths(reply)
        ctx.expect(
            path in paths,
            f"the refusal of {what} names the location {path}",
            expected=path,
            actual=sorted(paths) or None,
            requirement="VRM-FRESH-012",
        )
    await probe.confirm_unchanged(legal, before)
    far = probe.legal(message_id=new_message_id())
    far["expires"] = LAST_INSTANT
    reply = await probe.post(sign(far, probe.signer), note="expires 9999-12-31T23:59:59Z")
    ctx.require(
        reply.status == 202
        or (
            reply.status == E.LIFETIME_TOO_LONG.http_status
            and reply.problem_code == E.LIFETIME_TOO_LONG.value
        ),
        "a message that expires at 9999-12-31T23:59:59Z is judged, not failed on: accepted, "
        "or refused for its lifetime",
        expected=f"202, or {E.LIFETIME_TOO_LONG.http_status} lifetime-too-long",
        actual=reply.describe(),
        requirement="VRM-FRESH-013",
    )
