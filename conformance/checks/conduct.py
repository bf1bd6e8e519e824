"""Audits of what the target's messages say, and of how the target conducts itself.

Like :mod:`conformance.checks.audit`, these run after every other check and
judge everything the target sent during the run: envelope hygiene (ids,
timestamps, amounts, extension names), the bindings its messages make to the
suite's messages (every ``messageRef`` digest), the content rules of offers,
counter-offers and problem reports, the attestations it presents, and — for a
buyer agent — that it discloses nothing it must not and acts only on its
owner's instructions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from conformance.checks.audit import (
    Conversation,
    conversations_of,
    ensure_traffic,
    target_messages,
)
from conformance.checks.scenarios import instructions
from conformance.context import CheckContext
from conformance.model import WIRE_STEP
from conformance.peers.inbox import Inbound
from conformance.peers.messages import digest
from conformance.protocol import attestation_refusal, schema_errors_of
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import ATTESTATION_TYP, Role

BOTH = (Role.VENDOR, Role.BUYER)
BUYER = (Role.BUYER,)

#: RFC 9562 §5.4: a version 4 UUID, as a URN (spec §5.1).
_UUID4_URN: Final = re.compile(
    r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    re.IGNORECASE,
)
_TIMESTAMP: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
#: Reverse-DNS extension names (spec §5.4): two or more dot-separated labels.
_LABEL: Final = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_EXTENSION_NAME: Final = re.compile(rf"^{_LABEL}(\.{_LABEL})+")
_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ERROR_CODES: Final = frozenset(code.value for code in ErrorCode)
_ALLOWED_ALGORITHMS: Final = frozenset({"EdDSA", "ES256"})
#: Messages that disclose data by the individual's consent, or in accepting an offer.
# A material request carries her postal address under a one-purpose consent
# (spec §6.60, VRM-MAT-001): the one disclosure before acceptance VRM-PRIV-003 allows.
_CONSENTED_SHARING: Final = frozenset(
    {"offer-acceptance", "terms-response", "service-response", "material-request"}
)


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (JSON path, value) in a JSON document, depth first."""
    yield path or "/", value
    if isinstance(value, dict):
        for name, member in value.items():
            yield from _walk(member, f"{path}/{name}")
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from _walk(member, f"{path}/{index}")


def _judged(ctx: CheckContext, messages: list[Inbound]) -> list[Inbound]:
    """The target's messages whose payload could be read, requiring at least one."""
    readable = [message for message in messages if message.payload is not None]
    ctx.require(bool(readable), "the target sent at least one message to judge")
    return readable


@REGISTRY.check(
    "AUD-ENVELOPE",
    title="Every message the target sent has a fresh id, exact timestamps and clean members",
    step=WIRE_STEP,
    requirements=(
        "VRM-ENV-004",
        "VRM-ENV-005",
        "VRM-ENV-006",
        "VRM-ENV-012",
        "VRM-FRESH-004",
        "VRM-ENV-010",
    ),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_envelope(ctx: CheckContext) -> None:
    """Each id is a ``urn:uuid`` of a version 4 UUID never used for other bytes
    (nor one of the suite's ids); ``created`` and ``expires`` are UTC with ``Z``
    and whole seconds, ``expires`` later; no amount anywhere is a JSON number
    with a fraction; every extension name is reverse-DNS."""
    await ensure_traffic(ctx)
    messages = _judged(ctx, target_messages(ctx))
    suite_ids = {
        str(sent.payload.get("id"))
        for conversation in conversations_of(ctx)
        for sent in conversation.sent
    }
    tokens_by_id: dict[str, set[bytes]] = {}
    for message in messages:
        label = f"{message.type} {message.id}"
        identifier = message.id or ""
        tokens_by_id.setdefault(identifier, set()).add(message.token)
        ctx.expect(
            bool(_UUID4_URN.fullmatch(identifier)),
            f"{label}: the id is a urn:uuid of a version 4 UUID",
            actual=identifier,
            requirement="VRM-ENV-004",
        )
        ctx.expect(
            identifier not in suite_ids,
            f"{label}: the id is the target's own, not one of the suite's",
            requirement="VRM-ENV-004",
        )
        created, expires = message.field("created"), message.field("expires")
        exact = all(
            isinstance(value, str) and _TIMESTAMP.fullmatch(value) for value in (created, expires)
        )
        ctx.expect(
            exact,
            f"{label}: created and expires are UTC, with Z and whole seconds",
            actual={"created": created, "expires": expires},
            requirement="VRM-ENV-005",
        )
        ctx.expect(
            not exact or str(expires) > str(created),
            f"{label}: expires is later than created",
            actual={"created": created, "expires": expires},
            requirement="VRM-FRESH-004",
        )
        fractions = [path for path, value in _walk(message.payload) if isinstance(value, float)]
        ctx.expect(
            not fractions,
            f"{label}: no number with a fraction (amounts are decimal strings)",
            actual=fractions or None,
            requirement="VRM-ENV-006",
        )
        extensions = message.field("extensions")
        names = sorted(extensions) if isinstance(extensions, dict) else []
        bad_names = [name for name in names if not _EXTENSION_NAME.fullmatch(name)]
        ctx.expect(
            not bad_names,
            f"{label}: extension names are reverse-DNS",
            actual=bad_names or None,
            requirement="VRM-ENV-012",
        )
    endpoints = ctx.discovery.get("endpoints")
    has_inbox = isinstance(endpoints, dict) and isinstance(endpoints.get("inbox"), str)
    if has_inbox:
        silent = sorted(
            f"{message.type} {message.id}"
            for message in messages
            if message.type != "receipt" and not isinstance(message.field("replyTo"), dict)
        )
        ctx.recommend(
            not silent,
            "a target that publishes an inbox names it in replyTo",
            actual=silent[:10] or None,
            requirement="VRM-ENV-010",
        )
    reused = sorted(identifier for identifier, tokens in tokens_by_id.items() if len(tokens) > 1)
    ctx.expect(
        not reused,
        "the target never used one id for two different messages",
        actual=reused or None,
        requirement="VRM-ENV-004",
    )


def _suite_digests(
    conversations: list[Conversation], *, taken_only: bool = True
) -> dict[str, set[str]]:
    """Message id -> digests of the tokens the suite sent under it (those the target
    took, or with ``taken_only=False`` every one: a problem report names what it
    refused by the digest of the bytes it refused, spec §6.15)."""
    digests: dict[str, set[str]] = {}
    for conversation in conversations:
        for sent in conversation.sent:
            if (sent.taken or not taken_only) and isinstance(sent.payload.get("id"), str):
                digests.setdefault(sent.payload["id"], set()).add(digest(sent.token))
    return digests


def _message_refs(payload: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``messageRef``-shaped object ({id, digest}) in a message's body."""
    for path, value in _walk(payload.get("body"), "/body"):
        if isinstance(value, dict) and "id" in value and "digest" in value:
            yield path, value


@REGISTRY.check(
    "AUD-CONTENT",
    title="The target's references, offers and problem reports follow the message rules",
    step=WIRE_STEP,
    requirements=("VRM-SIG-018", "VRM-MSG-007", "VRM-MSG-008", "VRM-MSG-027", "VRM-MSG-028"),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_content(ctx: CheckContext) -> None:
    """Every ``messageRef`` to a message of the suite's carries the digest of
    exactly the bytes the suite sent; a vendor's offers state ``validUntil`` and
    the terms of sale with a digest; a buyer's offers are counter-offers naming
    what they supersede; problem reports carry a registry code and are never
    answers to problem reports."""
    await ensure_traffic(ctx)
    messages = _judged(ctx, target_messages(ctx))
    conversations = conversations_of(ctx)
    sent_digests = _suite_digests(conversations)
    any_sent_digests = _suite_digests(conversations, taken_only=False)
    problem_reports = {message.id for message in messages if message.type == "problem-report"}
    suite_problem_reports = {
        str(sent.payload.get("id"))
        for conversation in conversations
        for sent in conversation.sent
        if sent.payload.get("type") == "problem-report"
    }
    references = 0
    for message in messages:
        assert message.payload is not None
        label = f"{message.type} {message.id}"
        by_id = any_sent_digests if message.type == "problem-report" else sent_digests
        for path, reference in _message_refs(message.payload):
            known = by_id.get(str(reference.get("id")))
            if known is None:
                continue
            references += 1
            ctx.expect(
                reference.get("digest") in known,
                f"{label} {path}: the reference carries the digest of the exact bytes sent",
                expected=sorted(known),
                actual=reference.get("digest"),
                requirement="VRM-SIG-018",
            )
        body = message.body
        if message.type == "offer" and ctx.role is Role.VENDOR:
            terms = body.get("terms")
            ctx.expect(
                isinstance(body.get("validUntil"), str)
                and isinstance(terms, dict)
                and isinstance(terms.get("digest"), str)
                and isinstance(terms.get("url"), str),
                f"{label}: the offer states validUntil and its terms of sale with their digest",
                actual={"validUntil": body.get("validUntil"), "terms": terms},
                requirement="VRM-MSG-008",
            )
        if message.type == "offer" and ctx.role is Role.BUYER:
            ctx.expect(
                body.get("basis") == "counter" and isinstance(body.get("supersedes"), dict),
                f"{label}: a buyer's offer is a counter-offer naming what it supersedes",
                actual={"basis": body.get("basis"), "supersedes": body.get("supersedes")},
                requirement="VRM-MSG-007",
            )
        if message.type == "problem-report":
            regarding = body.get("regarding")
            ctx.expect(
                body.get("code") in _ERROR_CODES
                and (regarding is None or isinstance(regarding.get("id"), str)),
                f"{label}: the problem report carries a registry code (and the id it regards)",
                actual={"code": body.get("code"), "regarding": regarding},
                requirement="VRM-MSG-027",
            )
            answered = message.field("parent")
            regarding_id = regarding.get("id") if isinstance(regarding, dict) else None
            ctx.expect(
                answered not in suite_problem_reports | problem_reports
                and regarding_id not in suite_problem_reports,
                f"{label}: a problem report never answers a problem report",
                requirement="VRM-MSG-028",
            )
    ctx.note(f"{references} reference(s) to the suite's messages judged")


def _unverified_segments(token: str) -> tuple[Any, Any] | None:
    """Header and payload of a compact JWS, decoded for their shape only."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except (ValueError, binascii.Error):
        return None
    return header, payload


@REGISTRY.check(
    "AUD-ATTESTATIONS",
    title="Every attestation the target presented is well formed and bound",
    step=WIRE_STEP,
    requirements=("VRM-ATT-001", "VRM-ATT-005", "VRM-ATT-006", "VRM-ATT-007", "VRM-ATT-011"),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_attestations(ctx: CheckContext) -> None:
    """Each attestation in the target's messages is a compact JWS typed
    ``vrm-attestation+jws`` under the profile, with schema-valid claims about
    the message's sender, addressed to its receiver; an ability-to-pay
    attestation states a range; an approval by a ``did:jwk`` co-decision-maker
    verifies under that key and names what it approves. (A credit union's
    signature is judged by the vendor that trusts it, not here.)"""
    await ensure_traffic(ctx)
    messages = target_messages(ctx)
    judged = 0
    for message in messages:
        if message.payload is None:
            continue
        body = message.body
        for member in ("attestations", "approvals"):
            for attestation in body.get(member) or []:
                if not isinstance(attestation, dict) or attestation.get("format") == "dc+sd-jwt":
                    # An SD-JWT credential (spec §10.5): AUD-SDJWT-PRESENTATIONS judges it.
                    continue
                judged += 1
                label = f"{message.type} {message.id} {member}"
                token = attestation.get("token")
                segments = _unverified_segments(token) if isinstance(token, str) else None
                ctx.require(
                    segments is not None,
                    f"{label}: the attestation is a compact JWS",
                    actual=str(token)[:80],
                    requirement="VRM-ATT-001",
                )
                assert segments is not None
                header, claims = segments
                ctx.expect(
                    isinstance(header, dict)
                    and header.get("typ") == ATTESTATION_TYP
                    and header.get("alg") in _ALLOWED_ALGORITHMS
                    and set(header) == {"alg", "kid", "typ"},
                    f"{label}: the header is exactly alg, kid and typ {ATTESTATION_TYP}",
                    actual=header,
                    requirement="VRM-ATT-001",
                )
                fault = schema_errors_of(claims, "attestation.schema.json")
                ctx.expect(
                    fault is None,
                    f"{label}: the claims are schema-valid",
                    actual=fault,
                    requirement="VRM-ATT-001",
                )
                if not isinstance(claims, dict):
                    continue
                if claims.get("kind") == "terms-signatory":
                    # Spec §10.4: a party attestation is about the party itself,
                    # has no audience, and names the terms asserted.
                    signed = (claims.get("claims") or {}).get("terms") or {}
                    asserted = body.get("terms") or {}
                    ctx.expect(
                        claims.get("sub") == message.field("from")
                        and "aud" not in claims
                        and all(
                            signed.get(name) == asserted.get(name)
                            for name in ("id", "version", "digest")
                        ),
                        f"{label}: a party attestation is about the sender, has no aud, and "
                        "names the terms asserted",
                        actual={
                            "sub": claims.get("sub"),
                            "aud": claims.get("aud"),
                            "terms": signed,
                        },
                        requirement="VRM-ATT-011",
                    )
                    continue
                ctx.expect(
                    claims.get("sub") == message.field("from")
                    and message.receiver in (claims.get("aud") or []),
                    f"{label}: it is about the sender and addressed to the receiver",
                    actual={"sub": claims.get("sub"), "aud": claims.get("aud")},
                    requirement="VRM-ATT-006",
                )
                inner = claims.get("claims") or {}
                if claims.get("kind") == "ability-to-pay":
                    ctx.expect(
                        isinstance(inner.get("range"), dict),
                        f"{label}: an ability-to-pay attestation states a range",
                        actual=inner,
                        requirement="VRM-ATT-005",
                    )
                if claims.get("kind") == "approval":
                    issuer = str(claims.get("iss", ""))
                    ctx.expect(
                        isinstance(inner.get("approves"), dict),
                        f"{label}: the approval names what it approves",
                        actual=inner,
                        requirement="VRM-ATT-007",
                    )
                    if issuer.startswith("did:jwk:"):
                        verified = attestation_refusal(
                            attestation,
                            subject=str(message.field("from")),
                            audience=str(message.receiver),
                            now=message.received_at,
                            judge=ctx.session.judge,
                        )
                        ctx.expect(
                            verified is None,
                            f"{label}: the approval verifies under the co-decision-maker's key",
                            actual=verified,
                            requirement="VRM-ATT-007",
                        )
    if not judged:
        ctx.skip("the target presented no attestation in this run")


def _identity_values(value: Any) -> set[str]:
    found: set[str] = set()
    for _, member in _walk(value):
        if isinstance(member, str) and len(member) >= 4:
            found.add(member)
    return found


@REGISTRY.check(
    "AUD-BUYER-PRIVACY",
    title="The buyer discloses nothing identifying and links nothing across vendors",
    step=WIRE_STEP,
    requirements=("VRM-MSG-001", "VRM-PRIV-002", "VRM-PRIV-003"),
    roles=BUYER,
    audit=True,
    timeout=60,
)
async def audit_buyer_privacy(ctx: CheckContext) -> None:
    """No RFI carries a contact detail; no message to a vendor carries a
    personal detail before the buyer accepts that vendor's offer; no message
    to one vendor carries an identifier (pseudonym, message or thread id,
    digest) of the buyer's relationship with another."""
    await ensure_traffic(ctx)
    messages = _judged(ctx, target_messages(ctx))
    by_vendor: dict[str, list[Inbound]] = {}
    for message in messages:
        by_vendor.setdefault(str(message.receiver), []).append(message)
    personal: set[str] = set()
    accepted_at: dict[str, int] = {}
    for vendor, received in by_vendor.items():
        for message in received:
            if message.type == "offer-acceptance":
                personal |= _identity_values(message.body.get("identity"))
                accepted_at.setdefault(vendor, message.order)
    for vendor, received in by_vendor.items():
        others = [
            message for other, items in by_vendor.items() if other != vendor for message in items
        ]
        foreign = {str(message.field("from")) for message in others}
        foreign |= {str(message.id) for message in others}
        foreign |= {str(message.field("thread")) for message in others}
        foreign |= {message.digest for message in others}
        foreign -= {"None", ""}
        for message in received:
            text = json.dumps(message.payload, ensure_ascii=False)
            label = f"{message.type} {message.id}"
            if message.type == "personal-rfi":
                ctx.expect(
                    not _EMAIL.search(json.dumps(message.body, ensure_ascii=False)),
                    f"{label}: the RFI carries no contact detail",
                    requirement="VRM-MSG-001",
                )
            before_acceptance = message.order < accepted_at.get(vendor, 1 << 62)
            # Data the individual shares under accepted terms (a consent record)
            # is governed by VRM-MSG-018, not by this rule on unsolicited disclosure.
            if before_acceptance and message.type not in _CONSENTED_SHARING:
                leaked = sorted(value for value in personal if value in text)
                ctx.expect(
                    not leaked,
                    f"{label}: no personal detail before the buyer accepted this vendor's offer",
                    actual=leaked or None,
                    requirement="VRM-PRIV-003",
                )
            linked = sorted(value for value in foreign if value in text)
            ctx.expect(
                not linked,
                f"{label}: nothing from the buyer's relationships with other vendors",
                actual=linked or None,
                requirement="VRM-PRIV-002",
            )


@REGISTRY.check(
    "AUD-BUYER-INSTRUCTED",
    title="The buyer accepts, declines and exits only when told to",
    step=WIRE_STEP,
    requirements=("VRM-BUY-001",),
    roles=BUYER,
    audit=True,
    timeout=60,
)
async def audit_buyer_instructed(ctx: CheckContext) -> None:
    """Every acceptance, decline and exit notice the suite's vendors received
    follows an instruction the suite gave (through the test driver or the
    operator) for that vendor — and, for an acceptance or decline, that offer.
    A decline that follows the individual's acceptance of another offer is the
    acceptance's consequence (VRM-MSG-013), not an unprompted act."""
    await ensure_traffic(ctx)
    messages = _judged(ctx, target_messages(ctx))
    given = instructions(ctx.session)
    actions = {"offer-acceptance": "accept", "offer-decline": "decline", "exit-notice": "exit"}
    judged = 0
    unprompted: list[str] = []
    for message in messages:
        action = actions.get(message.type or "")
        if action is None:
            continue
        judged += 1
        offers: set[str] = set()
        if message.type == "offer-acceptance":
            offers = {str((message.body.get("offer") or {}).get("id"))}
        elif message.type == "offer-decline":
            offers = {str(offer) for offer in message.body.get("offers") or []}
        told = any(
            instruction.get("action") == action
            and instruction.get("vendor") == message.receiver
            and (not offers or instruction.get("offer") in offers)
            for instruction in given
        )
        if message.type == "offer-decline" and any(
            instruction.get("action") == "accept" for instruction in given
        ):
            # Declining the other vendors' open offers once the individual has
            # accepted one is what a buyer should do (VRM-MSG-013).
            told = True
        if not told:
            unprompted.append(f"{message.type} {message.id} to {message.receiver}")
    ctx.note(f"{judged} acceptance(s), decline(s) and exit notice(s) judged")
    ctx.expect(
        not unprompted,
        "no acceptance, decline or exit notice was sent without an instruction",
        expected=[],
        actual=unprompted or None,
        requirement="VRM-BUY-001",
    )


@REGISTRY.check(
    "AUD-BUYER-POLLS",
    title="The buyer polls each mailbox with the key of that relationship",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-012",),
    roles=BUYER,
    audit=True,
    timeout=60,
)
async def audit_buyer_polls(ctx: CheckContext) -> None:
    """Every poll of a suite vendor's mailbox carries a valid poll token signed
    by the pseudonym the buyer uses with that vendor, never another's."""
    from conformance.peers.vendors import VendorSide

    await ensure_traffic(ctx)
    side = ctx.session.services.get("vendor-side")
    polls = 0
    if isinstance(side, VendorSide):
        for vendor in side.vendors:
            pseudonyms = {str(item.field("from")) for item in vendor.received()}
            for poller, fault in vendor.polls:
                polls += 1
                ctx.expect(
                    poller is not None and poller in pseudonyms,
                    f"a poll of {vendor.name}'s mailbox is signed by the buyer's pseudonym there",
                    expected=sorted(pseudonyms),
                    actual=poller or fault,
                    requirement="VRM-HTTP-012",
                )
    if not polls:
        ctx.skip("the buyer polled no mailbox in this run (it named a replyTo inbox)")
