"""Audits of every message the target sent during the run.

These checks run after all others (``audit=True``) and judge the whole
transcript: each message the target put on the wire must be signed under
the profile, schema-valid, fresh, correctly addressed, legal in the
relationship state machine and consistent with its thread — whichever check
happened to provoke it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformance.checks.scenarios import buyer_rfis, vendor_rfi
from conformance.context import CheckContext
from conformance.model import WIRE_STEP
from conformance.peers.buyers import BuyerSide
from conformance.peers.inbox import Inbound
from conformance.peers.posting import Sent, header_kid
from conformance.peers.vendors import VendorSide
from conformance.protocol import StateReplay, replay_relationship, schema_errors
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import Role

BOTH = (Role.VENDOR, Role.BUYER)
E = ErrorCode

#: Pipeline codes meaning "not signed under the profile" (spec §8.1-§8.3).
PROFILE_CODES = frozenset(
    code.value
    for code in (
        E.PAYLOAD_TOO_LARGE,
        E.NESTING_TOO_DEEP,
        E.MALFORMED_JWS,
        E.UNSUPPORTED_ALGORITHM,
        E.INVALID_TYP,
        E.INVALID_HEADER,
        E.UNSUPPORTED_CRITICAL,
        E.UNKNOWN_KEY,
        E.BAD_SIGNATURE,
        E.MALFORMED_JSON,
        E.DUPLICATE_MEMBER,
        E.NON_CANONICAL_PAYLOAD,
    )
)
FRESHNESS_CODES = frozenset(
    {E.MESSAGE_EXPIRED.value, E.MESSAGE_NOT_YET_VALID.value, E.LIFETIME_TOO_LONG.value}
)
ADDRESS_CODES = frozenset({E.WRONG_AUDIENCE.value, E.KEY_SENDER_MISMATCH.value})
_RECEIPT_STATUS = frozenset({"accepted", "duplicate"})
SHAPE_CODES = frozenset(
    {E.UNSUPPORTED_VERSION.value, E.UNKNOWN_MESSAGE_TYPE.value, E.SCHEMA_INVALID.value}
)


@dataclass(frozen=True, slots=True)
class Conversation:
    """Everything exchanged in one relationship, from the suite's side."""

    our_role: Role
    our_id: str
    peer_id: str
    sent: tuple[Sent, ...]
    received: tuple[Inbound, ...]


async def ensure_traffic(ctx: CheckContext) -> None:
    """Make sure there is something to audit, even when the audit runs alone."""
    if ctx.role is Role.VENDOR:
        await ctx.use(vendor_rfi)
    else:
        await ctx.use(buyer_rfis)


def target_messages(ctx: CheckContext) -> list[Inbound]:
    """Every message the target sent to a party the suite plays, in arrival order.

    The check cites the transcript scopes the messages arrived in.
    """
    messages: list[Inbound] = []
    buyers = ctx.session.services.get("buyer-side")
    if isinstance(buyers, BuyerSide):
        messages.extend(buyers.core.received)
    vendors = ctx.session.services.get("vendor-side")
    if isinstance(vendors, VendorSide):
        for vendor in vendors.vendors:
            messages.extend(vendor.core.received)
    messages.sort(key=lambda item: item.order)
    for item in messages:
        if item.scope:
            ctx.scopes.add(item.scope)
    return messages


def conversations_of(ctx: CheckContext) -> list[Conversation]:
    """Every relationship of the run, from the suite's side: what it sent, what it got."""
    conversations: list[Conversation] = []
    buyers = ctx.session.services.get("buyer-side")
    if isinstance(buyers, BuyerSide):
        for persona in buyers.personas:
            conversations.append(
                Conversation(
                    Role.BUYER,
                    persona.id,
                    buyers.target_id,
                    tuple(persona.sent),
                    tuple(persona.received()),
                )
            )
    vendors = ctx.session.services.get("vendor-side")
    if isinstance(vendors, VendorSide):
        for vendor in vendors.vendors:
            peers = {str(item.field("from")) for item in vendor.received()}
            for peer in sorted(peers):
                conversations.append(
                    Conversation(
                        Role.VENDOR,
                        vendor.id,
                        peer,
                        tuple(s for s in vendor.sent if s.payload.get("to") == [peer]),
                        tuple(i for i in vendor.received() if i.field("from") == peer),
                    )
                )
    return conversations


def _judge_codes(
    ctx: CheckContext,
    messages: Iterable[Inbound],
    codes: frozenset[str],
    description: str,
    requirement: str,
) -> None:
    judged = 0
    for message in messages:
        judged += 1
        ctx.expect(
            message.error not in codes,
            f"{description}: {message.type or '?'} {message.id or '?'}",
            actual=None
            if message.error not in codes
            else f"{message.error}: {message.error_detail}",
            requirement=requirement,
        )
    ctx.require(judged > 0, "the target sent at least one message to judge")


@REGISTRY.check(
    "AUD-SIGNED",
    title="Every message the target sent is signed under the profile",
    step=WIRE_STEP,
    requirements=(
        "VRM-SIG-001",
        "VRM-SIG-003",
        "VRM-SIG-010",
        "VRM-SIG-025",
        "VRM-HTTP-002",
    ),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_signed(ctx: CheckContext) -> None:
    """Compact JWS, allowed algorithm, typ ``vrm+jws``, only alg/kid/typ, a key
    the sender published (or its did:jwk, canonical and of prime order), a
    signature that verifies and is in its one accepted form (an ES256 S at
    most n/2), a canonical payload."""
    await ensure_traffic(ctx)
    _judge_codes(
        ctx, target_messages(ctx), PROFILE_CODES, "signed under the profile", "VRM-SIG-001"
    )


@REGISTRY.check(
    "AUD-SCHEMA",
    title="Every message the target sent is schema-valid",
    step=WIRE_STEP,
    requirements=("VRM-ENV-002",),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_schema(ctx: CheckContext) -> None:
    """Each payload validates against its type's schema, whatever else is wrong with it."""
    await ensure_traffic(ctx)
    messages = target_messages(ctx)
    ctx.require(bool(messages), "the target sent at least one message to judge")
    for message in messages:
        if message.payload is None:
            ctx.expect(
                False,
                f"message is a readable JSON payload ({message.error})",
                requirement="VRM-ENV-002",
            )
            continue
        fault = schema_errors(message.payload)
        ctx.expect(
            fault is None,
            f"schema-valid: {message.type} {message.id}",
            actual=fault,
            requirement="VRM-ENV-002",
        )


@REGISTRY.check(
    "AUD-FRESH",
    title="Every message the target sent is fresh when it arrives",
    step=WIRE_STEP,
    requirements=("VRM-FRESH-001", "VRM-FRESH-002"),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_fresh(ctx: CheckContext) -> None:
    """``created`` not in the future and ``expires`` not in the past, by the
    target's own clock (within the allowed skew)."""
    await ensure_traffic(ctx)
    _judge_codes(ctx, target_messages(ctx), FRESHNESS_CODES, "fresh on arrival", "VRM-FRESH-001")


@REGISTRY.check(
    "AUD-ADDRESSED",
    title="Every message the target sent is correctly addressed",
    step=WIRE_STEP,
    requirements=(
        "VRM-FRESH-006",
        "VRM-SIG-014",
        "VRM-SIG-019",
        "VRM-ENV-009",
    ),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_addressed(ctx: CheckContext) -> None:
    """``to`` names the receiving party and no other party the suite plays;
    ``from`` is the party that signed, and the same party throughout a relationship."""
    await ensure_traffic(ctx)
    messages = target_messages(ctx)
    _judge_codes(
        ctx, messages, ADDRESS_CODES, "addressed and signed by its sender", "VRM-FRESH-006"
    )
    ours = _suite_parties(ctx)
    for message in messages:
        recipients = message.field("to")
        others = sorted(set(recipients or []) & ours - {message.receiver})
        ctx.expect(
            not others,
            f"{message.type} {message.id} names no other suite party in to",
            actual=others or None,
            requirement="VRM-FRESH-006",
        )
    for conversation in conversations_of(ctx):
        senders = {str(item.field("from")) for item in conversation.received}
        ctx.expect(
            len(senders) <= 1,
            "the target writes as one party in a relationship",
            actual=sorted(senders),
            requirement="VRM-PRIV-001",
        )
        if conversation.our_role is Role.BUYER and senders:
            ctx.expect(
                senders == {conversation.peer_id},
                "the vendor writes as the party id of its discovery document",
                expected=conversation.peer_id,
                actual=sorted(senders),
                requirement="VRM-FRESH-006",
            )
    if ctx.role is Role.BUYER:
        for message in messages:
            sender = message.field("from")
            kid = header_kid(message.token)
            ctx.expect(
                isinstance(sender, str) and sender.startswith("did:jwk:") and kid == f"{sender}#0",
                f"{message.type} {message.id}: the buyer writes as a did:jwk pseudonym, "
                "signing with kid <identifier>#0",
                actual={"from": sender, "kid": kid},
                requirement="VRM-SIG-019",
            )
            recipients = message.field("to")
            ctx.expect(
                isinstance(recipients, list) and len(recipients) == 1,
                f"{message.type} {message.id}: addressed to exactly one counterparty",
                actual=recipients,
                requirement="VRM-ENV-009",
            )


def _suite_parties(ctx: CheckContext) -> set[str]:
    parties: set[str] = set()
    buyers = ctx.session.services.get("buyer-side")
    if isinstance(buyers, BuyerSide):
        parties.update(persona.id for persona in buyers.personas)
    vendors = ctx.session.services.get("vendor-side")
    if isinstance(vendors, VendorSide):
        parties.update(vendor.id for vendor in vendors.vendors)
    return parties


@REGISTRY.check(
    "AUD-STATE-MACHINE",
    title="Every message the target sent is a legal transition",
    step=WIRE_STEP,
    requirements=("VRM-STATE-001",),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_state_machine(ctx: CheckContext) -> None:
    """Each relationship, replayed through the protocol's state machine in the
    order things happened, never sees the target make an illegal move — nor
    accept one from the suite."""
    await ensure_traffic(ctx)
    target_messages(ctx)
    conversations = conversations_of(ctx)
    ctx.require(bool(conversations), "the run has at least one relationship to replay")
    for conversation in conversations:
        replay: StateReplay = replay_relationship(
            our_role=conversation.our_role,
            our_id=conversation.our_id,
            peer_id=conversation.peer_id,
            sent=[(s.order, s.payload, s.taken, reply_digest(s.token)) for s in conversation.sent],
            received=[(i.order, i.payload, i.ok, i.digest) for i in conversation.received],
        )
        for fault in replay.faults:
            ctx.expect(False, fault, requirement="VRM-STATE-001")
        ctx.expect(
            not replay.faults,
            f"relationship {conversation.our_id[:40]}... replays legally "
            f"({replay.steps} message(s))",
            requirement="VRM-STATE-001",
        )


@REGISTRY.check(
    "AUD-THREAD",
    title="Every message the target sent is consistent with its thread",
    step=WIRE_STEP,
    requirements=(
        "VRM-ENV-007",
        "VRM-ENV-008",
        "VRM-STATE-011",
    ),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_threads(ctx: CheckContext) -> None:
    """``thread`` is the id of a conversation's first message (or the message's
    own id when it starts one); ``parent`` names a message of the same
    relationship and thread."""
    await ensure_traffic(ctx)
    target_messages(ctx)
    conversations = conversations_of(ctx)
    judged = 0
    for conversation in conversations:
        by_id: dict[str, dict[str, Any]] = {}
        for sent in conversation.sent:
            if sent.taken and isinstance(sent.payload.get("id"), str):
                by_id[sent.payload["id"]] = sent.payload
        for item in conversation.received:
            if item.payload is not None and item.id is not None:
                by_id.setdefault(item.id, item.payload)
        for item in conversation.received:
            if not item.ok or item.type == "receipt":
                continue
            judged += 1
            thread = item.field("thread")
            ctx.expect(
                thread == item.id or thread in by_id,
                f"{item.type} {item.id}: thread is a conversation of this relationship",
                actual=thread,
                requirement="VRM-ENV-007",
            )
            if conversation.our_role is Role.BUYER:
                # The target is the vendor: every conversation is one the buyer
                # started (spec §7, a vendor never starts a relationship).
                started_by_buyer = {
                    str(sent.payload.get("id"))
                    for sent in conversation.sent
                    if sent.taken and sent.payload.get("thread") == sent.payload.get("id")
                }
                ctx.expect(
                    thread in started_by_buyer,
                    f"{item.type} {item.id}: the vendor writes only in threads the buyer started",
                    expected=sorted(started_by_buyer),
                    actual=thread,
                    requirement="VRM-STATE-011",
                )
            parent = item.field("parent")
            if parent is not None:
                ctx.expect(
                    parent in by_id,
                    f"{item.type} {item.id}: parent is a message of this relationship",
                    actual=parent,
                    requirement="VRM-ENV-008",
                )
                parent_thread = (by_id.get(str(parent)) or {}).get("thread")
                ctx.expect(
                    parent_thread in (None, thread),
                    f"{item.type} {item.id}: parent is in the same thread",
                    expected=thread,
                    actual=parent_thread,
                    requirement="VRM-ENV-008",
                )
    ctx.require(judged > 0, "the target sent at least one message to judge")


@REGISTRY.check(
    "AUD-RECEIPTS",
    title="Every receipt the target gave is valid and binding",
    step=WIRE_STEP,
    requirements=(
        "VRM-HTTP-004",
        "VRM-MSG-030",
        "VRM-HTTP-007",
    ),
    roles=BOTH,
    audit=True,
    timeout=60,
)
async def audit_receipts(ctx: CheckContext) -> None:
    """Each 2xx answer of the target's inbox is a signed ``receipt`` addressed
    to the sender, naming the id and digest of exactly what was sent."""
    await ensure_traffic(ctx)
    target_messages(ctx)
    judged = 0
    for conversation in conversations_of(ctx):
        for sent in conversation.sent:
            reply = sent.reply
            if reply is None or not reply.accepted:
                continue
            judged += 1
            receipt = reply.receipt
            ctx.expect(
                receipt is not None and receipt.ok,
                f"the receipt for {sent.payload.get('type')} {sent.payload.get('id')} "
                "passes the receiving pipeline",
                actual=None if receipt is None else receipt.error_code,
                requirement="VRM-HTTP-004",
            )
            if receipt is None or receipt.payload is None:
                continue
            ctx.expect(
                receipt.payload.get("type") == "receipt",
                "the HTTP answer carries a receipt, never a reply (replies are messages "
                "of their own)",
                actual=receipt.payload.get("type"),
                requirement="VRM-HTTP-007",
            )
            body = receipt.payload.get("body") or {}
            ctx.expect(
                isinstance(body.get("receivedAt"), str) and body.get("status") in _RECEIPT_STATUS,
                "the receipt states when the message was committed, and its status",
                actual={"receivedAt": body.get("receivedAt"), "status": body.get("status")},
                requirement="VRM-MSG-030",
            )
            regarding = body.get("regarding") or {}
            ctx.expect(
                regarding.get("id") == sent.payload.get("id")
                and regarding.get("digest") == reply_digest(sent.token),
                "the receipt binds the exact message",
                actual=regarding,
                requirement="VRM-HTTP-004",
            )
    if not judged:
        ctx.skip("the target took no message over HTTP in this run (mailbox delivery only)")


def reply_digest(token: bytes) -> str:
    """The digest a receipt must name for ``token``."""
    from conformance.peers.messages import digest

    return digest(token)
