"""The vendor agent's core: from a received token to a committed decision.

Independent of HTTP (the aiohttp application in :mod:`reference_vendor.app`
only carries bytes): :meth:`VendorAgent.receive` runs the receiving pipeline,
the durable replay check, the relationship state machine and the business
rules, then commits the inbound message, its receipt, the relationship's
new state, the business effects and the replies to deliver in *one* store
transaction (spec §11.3: nothing acknowledged is lost, nothing rejected
leaves a trace).

Inbound messages are processed one at a time *per relationship* (per-key
:class:`asyncio.Lock` s on the sender, the thread and the message id, held
from the replay check to the end of the commit): reading the relationship,
deciding and committing cannot interleave with another message for the same
relationship, for the same thread (spec §7.3: a thread belongs to one
relationship) or under the same id. Messages of different relationships are
decided concurrently, so the store can commit them together (group commit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from reference_vendor import rules
from reference_vendor.catalogue import Catalogue, parse_duration
from reference_vendor.clock import AgentClock, format_timestamp, parse_timestamp
from reference_vendor.config import VendorConfig
from reference_vendor.faults import (
    announces_alg_none,
    reframed_with_key_alg,
    signature_not_checked,
)
from reference_vendor.protocol import (
    Inbound,
    decode_inbound,
    envelope,
    export_digest,
    message_digest,
    new_message_id,
    receipt_payload,
    sign_message,
)
from reference_vendor.store import (
    Commit,
    ConsentRow,
    DataRow,
    DealRow,
    DeletionRow,
    DocumentRow,
    ExitRow,
    InboundConflict,
    MessageRow,
    OfferRow,
    RelationshipRow,
    SuppressedRow,
    VendorStore,
)
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.codec import decode
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import INBOX_PATH, RateLimiter, verify_poll_token
from vrm_protocol.keys import KeySet, SigningKey, key_resolver
from vrm_protocol.state_machine import Relationship
from vrm_protocol.vocabulary import MessageType, Role

__all__ = ["InboxAnswer", "NoticeOutcome", "VendorAgent"]

log = logging.getLogger(__name__)

#: Settings key under which the test driver's clock offset survives restarts.
CLOCK_OFFSET_SETTING = "clock-offset-seconds"
#: How long the vendor keeps deal records after an exit, and why (spec §6.14 ``retained``).
DEAL_RECORD_RETENTION = timedelta(days=6 * 365)
DEAL_RECORD_BASIS = "legal-obligation: sales and tax records are kept for six years"


#: The categories the vendor has something to say in, most useful first (seed 000 step 6).
NOTICE_PREFERENCE = (
    "maintenance", "safety", "recall", "technical", "warranty", "new-products", "events",
    "promotions",
)  # fmt: skip
#: The notice kind for each category.
NOTICE_KINDS = {
    "maintenance": "maintenance-reminder",
    "safety": "safety-recall",
    "recall": "safety-recall",
    "technical": "software-update",
    "warranty": "warranty-extension",
    "new-products": "programme-offer",
    "events": "programme-offer",
}
NOTICE_SUMMARIES = {
    "maintenance-reminder": "Your annual service is due next month",
    "safety-recall": "Safety recall: the tyre pressure sensor needs a software fix",
    "software-update": "A software update for the infotainment system is available",
    "warranty-extension": "Extend your warranty by two years before it ends",
    "programme-offer": "A programme for owners like you",
}


@dataclass(frozen=True, slots=True)
class InboxAnswer:
    """What the inbox answers: ``202`` with a new receipt, ``200`` with the original."""

    status: int
    receipt: bytes


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    """Whether an operator's notice was sent, and why not when it was not."""

    sent: bool
    message_id: str | None = None
    reason: str | None = None


class _KeyedLocks:
    """One :class:`asyncio.Lock` per key, created on demand and dropped when unused.

    :meth:`hold` takes several keys in sorted order, so two holders that share
    keys can never wait for each other in a cycle.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, *keys: str) -> AsyncIterator[None]:
        """Hold the locks of every key in ``keys`` for the duration of the block."""
        ordered = sorted(set(keys))
        for key in ordered:
            self._users[key] = self._users.get(key, 0) + 1
        held: list[asyncio.Lock] = []
        try:
            for key in ordered:
                lock = self._locks.setdefault(key, asyncio.Lock())
                await lock.acquire()
                held.append(lock)
            yield
        finally:
            for lock in reversed(held):
                lock.release()
            for key in ordered:
                self._users[key] -= 1
                if not self._users[key]:
                    del self._users[key]
                    self._locks.pop(key, None)  # absent when cancelled before reaching it


@dataclass(slots=True)
class _Reply:
    type: str
    body: dict[str, Any]
    thread: str
    parent: str | None


@dataclass(slots=True)
class _Plan:
    """A decision: the commit to apply and the replies to sign, send and queue."""

    commit: Commit = field(default_factory=Commit)
    replies: list[_Reply] = field(default_factory=list)
    offers_to_record: dict[int, tuple[int, str | None]] = field(default_factory=dict)
    documents_to_record: set[int] = field(default_factory=set)


class VendorAgent:
    """The vendor (or third party) as a protocol participant.

    Args:
        config: the agent's configuration.
        store: its CRM store.
        clock: its clock (the test driver may shift it).
        key: its signing key (published in its JWKS).
        sender_limiter: the per-sender budget, charged once a message's signature
            verified (spec §11.6); none when absent.
    """

    def __init__(
        self,
        config: VendorConfig,
        store: VendorStore,
        clock: AgentClock,
        key: SigningKey,
        *,
        sender_limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.key = key
        self.key_set = KeySet([key.public()])
        # The terms are served on the agent's own origin, so that is where the
        # references in its messages point (spec §11.7).
        self.catalogue: Catalogue = config.catalogue.at_origin(config.party_id)
        self.party_id = config.party_id
        self.faults = config.faults
        self.trusted_issuers: dict[str, KeySet | None] = {
            issuer.id: KeySet.from_jwks(issuer.jwks) for issuer in self.catalogue.trusted_issuers
        }
        self.sender_limiter = sender_limiter
        #: Where replies may be POSTed (spec §11.8).
        self.delivery_policy = config.delivery_policy
        self._locks = _KeyedLocks()
        self.outbox_ready = asyncio.Event()
        self.delivery_lock = asyncio.Lock()

    # -- receiving ----------------------------------------------------------------------------

    async def receive(self, token: bytes) -> InboxAnswer:
        """Process one message POSTed to the inbox (spec §11.3).

        Returns ``202`` and a new signed receipt once the message and everything
        it caused are committed, or ``200`` and the *original* receipt bytes for
        an identical resend.

        Raises:
            RemoteProtocolError: the message is rejected (the code of the first
                stage that failed, or RATE_LIMITED once the verified sender is over
                its budget); nothing was stored.
        """
        original = await self.store.call(self.store.receipt_for_digest, message_digest(token))
        if original is not None:
            # spec §11.3, §9.3: an identical resend is not an error and has no
            # second effect; answer with the original receipt, byte for byte.
            return InboxAnswer(200, original)
        now = self.clock.now()
        inbound = self._decode(token, now)
        if self.sender_limiter is not None:
            # spec §11.6 (VRM-HTTP-018): a budget kept per key or sender is charged
            # only after the signature verified and the key was bound to `from`, so
            # junk naming a victim's key cannot spend the victim's budget.
            self.sender_limiter.check(inbound.sender, time.monotonic())
        async with self._locks.hold(inbound.sender, inbound.thread, inbound.id):
            known = await self.store.call(self.store.inbound_digest, inbound.sender, inbound.id)
            replayed = (
                known is not None and known != inbound.digest and "no-replay-guard" in self.faults
            )
            if known is not None and not replayed:
                # The identical resend raced the first copy (200), or a replay (409).
                receipt = (
                    await self.store.call(self.store.receipt_for_digest, known)
                    if known == inbound.digest
                    else None
                )
                return _known_answer(inbound, known, receipt)
            plan = await self._decide(inbound, now)
            receipt_token = sign_message(self._receipt(inbound, now), self.key)
            plan.commit.receipt_token = receipt_token
            # The no-replay-guard fault processed a replay as new; the store keeps
            # one message per (sender, id), so the replayed copy itself is not kept.
            plan.commit.inbound = (
                None
                if replayed
                else MessageRow(
                    sender=inbound.sender,
                    message_id=inbound.id,
                    direction="in",
                    type=inbound.type,
                    thread=inbound.thread,
                    parent=inbound.payload.get("parent"),
                    peer_id=inbound.sender,
                    digest=inbound.digest,
                    token=token,
                    at=format_timestamp(now),
                )
            )
            plan.commit.deliver_after = self.config.reply_delay
            try:
                await self.store.commit(plan.commit)
            except InboundConflict as conflict:
                # The store is the replay guard of record: the same (sender, id)
                # was committed first by someone the locks do not see (another
                # process on the same database, or a unit ahead in the same
                # group commit). Answered only after that commit returned.
                return _known_answer(inbound, conflict.digest, conflict.receipt)
        log.info(
            "accepted %s %s from %s; %d repl%s",
            inbound.type,
            inbound.id,
            inbound.sender[:48],
            len(plan.commit.outbound),
            "y" if len(plan.commit.outbound) == 1 else "ies",
        )
        if plan.commit.outbound:
            self.outbox_ready.set()
        return InboxAnswer(202, receipt_token)

    def _decode(self, token: bytes, now: datetime) -> Inbound:
        """The receiving pipeline (spec §8-§9.2); weakened only by a fault switch.

        Raises:
            RemoteProtocolError: the code of the first stage that failed.
        """
        receiver = None if "skip-audience-check" in self.faults else self.party_id
        limits = self.config.limits
        if "accept-alg-none" in self.faults and announces_alg_none(token):
            return self._decode_unverified(token, now, receiver, alg_none=True)
        try:
            return decode_inbound(token, receiver=receiver, now=now, limits=limits)
        except RemoteProtocolError as error:
            if error.code is ErrorCode.BAD_SIGNATURE and "skip-signature-check" in self.faults:
                return self._decode_unverified(token, now, receiver, alg_none=False)
            raise

    def _decode_unverified(
        self, token: bytes, now: datetime, receiver: str | None, *, alg_none: bool
    ) -> Inbound:
        """FAULTS ONLY (``accept-alg-none``, ``skip-signature-check``): every stage of
        the pipeline but the signature (and, for alg none, the algorithm allow-list).

        Raises:
            RemoteProtocolError: the code of the first other stage that failed.
        """
        resolve = key_resolver(None)
        checked = token
        if alg_none:
            try:
                checked = reframed_with_key_alg(token, resolve)
            except ValueError as error:
                raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, str(error)) from error
        received = decode(
            checked,
            resolve_key=signature_not_checked(resolve),
            receiver=receiver,
            now=now,
            limits=self.config.limits,
        )
        return Inbound(json.loads(received.payload_bytes), token, message_digest(token))

    def _receipt(self, inbound: Inbound, now: datetime) -> dict[str, Any]:
        payload = receipt_payload(inbound, sender=self.party_id, now=now)
        if "wrong-receipt-digest" in self.faults:
            payload["body"]["regarding"]["digest"] = message_digest(b"not " + inbound.token)
        return payload

    async def _relationship(self, peer: str) -> tuple[RelationshipRow | None, Relationship]:
        row = await self.store.call(self.store.relationship, peer)
        if row is None:
            return None, Relationship(Role.VENDOR, self.party_id, peer)
        snapshot = dict(row.snapshot)
        # The party id is the agent's base URL; if it moved, the relationship follows.
        snapshot["ourId"] = self.party_id
        return row, Relationship.restore(snapshot)

    async def _decide(self, inbound: Inbound, now: datetime) -> _Plan:
        peer = inbound.sender
        # spec §7.3: a thread belongs to one relationship; a stranger cannot act in it.
        owner = await self.store.call(self.store.thread_peer, inbound.thread)
        if owner is not None and owner != peer:
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT,
                "the thread belongs to another relationship",
                path="/thread",
            )
        row, relationship = await self._relationship(peer)
        machine_now = await self._machine_time(inbound, now)
        # spec §7: the state machine first (relationship state, offers ledger),
        # then the content rules of stage 7 (attestations, terms).
        relationship.receive(inbound.payload, now=machine_now, digest=inbound.digest)
        plan = _Plan()
        handler = _HANDLERS.get(inbound.type)
        if handler is not None:
            await handler(self, inbound, plan, now, row)
        reply_to = inbound.payload.get("replyTo") or {}
        inbox = reply_to.get("inbox") if isinstance(reply_to, Mapping) else None
        self._sign_replies(plan, relationship, peer, inbox, now, regarding=inbound)
        plan.commit.relationship = self._relationship_row(row, relationship, peer, inbound, inbox)
        return plan

    async def _machine_time(self, inbound: Inbound, now: datetime) -> datetime:
        """``now`` for the state machine; the ``accept-expired-offer`` fault turns back
        the clock to just before the accepted offer's end."""
        if "accept-expired-offer" in self.faults and inbound.type == MessageType.OFFER_ACCEPTANCE:
            offer_id = str((inbound.body.get("offer") or {}).get("id"))
            offer = await self.store.call(self.store.offer, offer_id)
            if offer is not None:
                return min(now, parse_timestamp(offer.valid_until))
        return now

    def _relationship_row(
        self,
        row: RelationshipRow | None,
        relationship: Relationship,
        peer: str,
        inbound: Inbound,
        inbox: str | None,
    ) -> RelationshipRow:
        exited = row.exited if row is not None else False
        engagements = row.engagements if row is not None else 1
        reengagement = row.reengagement if row is not None else None
        notifications = row.notifications_allowed if row is not None else None
        if exited and inbound.type in (MessageType.PERSONAL_RFI, MessageType.PERSONAL_RFP):
            # spec §7.5 (step 10): she re-engages; the history is kept, the exit's
            # preferences no longer apply.
            exited, engagements, reengagement, notifications = False, engagements + 1, None, None
        if inbound.type == MessageType.EXIT_NOTICE and "ignore-exit" not in self.faults:
            exited = True
            reengagement = dict(inbound.body.get("reengagement") or {"allowed": False})
        if inbound.type == MessageType.TERMS_RESPONSE:
            allowed = (inbound.body.get("notificationPreferences") or {}).get("allowed") or []
            notifications = tuple(str(item) for item in allowed)
        return RelationshipRow(
            peer_id=peer,
            state=relationship.state.value,
            snapshot=relationship.snapshot(),
            exited=exited,
            reengagement=reengagement,
            notifications_allowed=notifications,
            reply_inbox=inbox or (row.reply_inbox if row is not None else None),
            engagements=engagements,
        )

    def _sign_replies(
        self,
        plan: _Plan,
        relationship: Relationship,
        peer: str,
        inbox: str | None,
        now: datetime,
        regarding: Inbound | None = None,
    ) -> None:
        index = 0
        while index < len(plan.replies):
            reply = plan.replies[index]
            message_id = new_message_id()
            # A message that starts a thread is the thread (spec §5.2).
            reply.thread = reply.thread or message_id
            payload = envelope(
                reply.type,
                reply.body,
                sender=self.party_id,
                to=[peer],
                now=now,
                thread=reply.thread,
                parent=reply.parent,
                # spec §5.1 (VRM-ENV-010): a sender with a reachable inbox names it.
                reply_inbox=self.party_id + INBOX_PATH,
                message_id=message_id,
            )
            try:
                token = sign_message(payload, self.key)
            except LocalProtocolError as error:
                # The message was accepted; our answer to it could not be made
                # (spec §6.15): tell the sender with a problem report instead.
                log.error("cannot send %s to %s: %s", reply.type, peer, error)
                if regarding is None:
                    raise  # the operator's own notice: tell the operator
                if regarding is not None and reply.type != MessageType.PROBLEM_REPORT:
                    plan.replies[index] = _problem_report(regarding, reply.thread)
                    plan.offers_to_record.pop(index, None)
                    plan.documents_to_record.discard(index)
                    continue
                index += 1
                continue
            digest = message_digest(token)
            try:
                relationship.send(payload, now=now, digest=digest)
            except LocalProtocolError as error:
                # Our own rule would break the protocol here: send nothing rather
                # than an illegal message (spec §7).
                log.warning("not sending %s to %s: %s", reply.type, peer, error)
                index += 1
                continue
            plan.commit.outbound.append(
                (
                    MessageRow(
                        sender=self.party_id,
                        message_id=message_id,
                        direction="out",
                        type=reply.type,
                        thread=reply.thread,
                        parent=reply.parent,
                        peer_id=peer,
                        digest=digest,
                        token=token,
                        at=format_timestamp(now),
                        expires=str(payload["expires"]),
                    ),
                    inbox,
                )
            )
            if index in plan.offers_to_record:
                round_number, supersedes = plan.offers_to_record[index]
                plan.commit.offers.append(
                    _offer_row(
                        message_id,
                        peer,
                        reply.thread,
                        reply.body,
                        digest,
                        supersedes,
                        round_number,
                        now,
                        made_by="vendor",
                    )
                )
                if supersedes is not None:
                    plan.commit.offer_status.append((supersedes, "superseded"))
            if index in plan.documents_to_record:
                plan.commit.documents.append(
                    DocumentRow(
                        message_id, reply.type, peer, digest, reply.body, format_timestamp(now)
                    )
                )
            if reply.type == MessageType.EXIT_ACKNOWLEDGEMENT:
                plan.commit.exits = [
                    replace(row, acknowledgement_id=message_id) for row in plan.commit.exits
                ]
            index += 1

    # -- content rules (spec §6, §10, §12) -----------------------------------------------------

    def _verified_claims(
        self, body: Mapping[str, Any], subject: str, now: datetime, kind: str
    ) -> list[Mapping[str, Any]]:
        """Verify every attestation a request carries (spec §10.3); the claims of
        those of ``kind``.

        Raises:
            RemoteProtocolError: UNTRUSTED_ISSUER or ATTESTATION_INVALID.
        """
        claims: list[Mapping[str, Any]] = []
        for attestation in body.get("attestations") or []:
            verified = verify_attestation(
                attestation,
                trusted_issuers=self.trusted_issuers,
                subject=subject,
                audience=self.party_id,
                now=now,
            )
            if verified.kind == kind:
                claims.append(verified.claims)
        return claims

    def _over_budget(self, body: dict[str, Any] | None, request: Mapping[str, Any]) -> None:
        if body is None or "offer-over-budget" not in self.faults:
            return
        ceiling = rules.parse_amount((request.get("budget") or {}).get("max"))
        if ceiling is not None:
            body["price"]["total"] = rules.money(ceiling + 500, self.catalogue.currency)

    async def _on_rfi(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        self._verified_claims(inbound.body, inbound.sender, now, "ability-to-pay")
        if self.catalogue.role != "vendor":
            category = str((inbound.body.get("intent") or {}).get("category", ""))
            if self.catalogue.serves(category) and self.catalogue.data_requests:
                self._add_terms_assertion(plan, inbound, now, parent=inbound.id)
            return
        if _too_late(inbound.body, now):
            return
        body = rules.indicative_offer(self.catalogue, inbound.body, now=now)
        if body is None:
            return
        if self.catalogue.rfi_offer_basis == "binding":
            body["basis"] = "binding"
            body["validUntil"] = format_timestamp(now + self.catalogue.offer_validity)
        self._over_budget(body, inbound.body)
        body["inResponseTo"] = inbound.ref()
        self._add_offer(plan, body, inbound.thread, inbound.id, round_number=0, supersedes=None)

    async def _on_rfp(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        claims = self._verified_claims(inbound.body, inbound.sender, now, "ability-to-pay")
        if self.catalogue.role != "vendor":
            return
        if _too_late(inbound.body, now):
            return
        cover = rules.financing_cover(claims, self.catalogue.currency)
        body = rules.binding_offer(self.catalogue, inbound.body, now=now, cover=cover)
        if body is None:
            return
        self._over_budget(body, inbound.body)
        body["inResponseTo"] = inbound.ref()
        self._add_offer(plan, body, inbound.thread, inbound.id, round_number=0, supersedes=None)

    async def _on_offer(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        # The state machine accepted it: a counter-offer superseding an open offer.
        countered_id = str(inbound.body.get("supersedes"))
        countered = await self.store.call(self.store.offer, countered_id)
        plan.commit.offers.append(
            _offer_row(
                inbound.id,
                inbound.sender,
                inbound.thread,
                inbound.body,
                inbound.digest,
                countered_id,
                countered.round if countered else 0,
                now,
                made_by="buyer",
            )
        )
        plan.commit.offer_status.append((countered_id, "superseded"))
        if countered is None or countered.made_by != "vendor":
            return
        outcome = rules.answer_counter(
            self.catalogue,
            countered.body,
            inbound.body,
            round_number=countered.round + 1,
            now=now,
        )
        body = outcome.body
        body["supersedes"] = inbound.id
        body["inResponseTo"] = inbound.ref()
        self._add_offer(
            plan,
            body,
            inbound.thread,
            inbound.id,
            round_number=countered.round + 1,
            supersedes=inbound.id,
        )

    async def _on_acceptance(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        reference = inbound.body.get("offer") or {}
        offer = await self.store.call(self.store.offer, str(reference.get("id")))
        if offer is None or offer.peer_id != inbound.sender:
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT,
                "the offer was made to someone else",
                path="/body/offer",
            )
        self._check_approvals(offer, inbound, now)
        plan.commit.offer_status.append((offer.id, "accepted"))
        for other in await self.store.call(self.store.offers_for, inbound.sender):
            if other.id != offer.id and other.status == "open":
                plan.commit.offer_status.append((other.id, "lapsed"))
        deal_id = "deal-" + uuid.uuid4().hex[:16]
        identity = dict(inbound.body.get("identity") or {})
        if inbound.body.get("tradeIn"):
            identity["tradeIn"] = inbound.body["tradeIn"]
        total = offer.body["price"]["total"]
        plan.commit.deals.append(
            DealRow(
                deal_id,
                inbound.sender,
                offer.id,
                inbound.id,
                total["amount"],
                total["currency"],
                identity,
                format_timestamp(now),
            )
        )
        confirmation: dict[str, Any] = {
            "deal": {
                "id": deal_id,
                "offer": {"id": offer.id, "digest": offer.digest},
                "acceptance": inbound.id,
                "total": dict(total),
            },
            "delivery": {
                "scheduledFor": format_timestamp(
                    now + timedelta(days=self.catalogue.delivery_days)
                ),
                "method": str(
                    (offer.body.get("delivery") or {}).get("method")
                    or self.catalogue.delivery_method
                ),
            },
        }
        trade_in = offer.body.get("tradeIn")
        if isinstance(trade_in, Mapping):
            # Seed 001: the old car and its papers change hands with the new one.
            confirmation["tradeIn"] = {
                "handover": trade_in["handover"],
                "papersHandover": trade_in.get("papersHandover", trade_in["handover"]),
                "valuation": trade_in["valuation"],
            }
        conditions = [
            c for c in offer.body.get("conditions") or [] if c.get("kind") != "approval-required"
        ]
        if conditions:
            confirmation["conditions"] = conditions
        plan.replies.append(
            _Reply(MessageType.DEAL_CONFIRMATION.value, confirmation, inbound.thread, inbound.id)
        )
        if self.catalogue.data_requests:
            # spec §4 step 5: the welcome presents the terms of sharing.
            self._add_terms_assertion(plan, inbound, now, parent=None)

    def _check_approvals(self, offer: OfferRow, inbound: Inbound, now: datetime) -> None:
        """A co-decision-maker's approval the offer requires must be present and
        verify (spec §6.4, §10.2).

        Raises:
            RemoteProtocolError: APPROVAL_MISSING or ATTESTATION_INVALID.
        """
        required = [
            c for c in offer.body.get("conditions") or [] if c.get("kind") == "approval-required"
        ]
        approvals = inbound.body.get("approvals") or []
        for condition in required:
            party = condition.get("party")
            candidates = [a for a in approvals if party is None or a.get("issuer") == party]
            if not candidates:
                raise RemoteProtocolError(
                    ErrorCode.APPROVAL_MISSING,
                    f"offer {offer.id} requires the approval of {party or 'a co-decision-maker'}",
                    path="/body/approvals",
                )
            for attestation in candidates:
                issuer = str(attestation.get("issuer"))
                verified = verify_attestation(
                    attestation,
                    trusted_issuers={issuer: None} if party is not None else self.trusted_issuers,
                    subject=inbound.sender,
                    audience=self.party_id,
                    now=now,
                    kind="approval",
                )
                approved = (verified.claims.get("approves") or {}).get("offer")
                if approved is not None and approved != {"id": offer.id, "digest": offer.digest}:
                    raise RemoteProtocolError(
                        ErrorCode.ATTESTATION_INVALID,
                        "the approval names another offer",
                        path="/body/approvals",
                    )

    async def _on_decline(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        for offer_id in inbound.body.get("offers") or []:
            offer = await self.store.call(self.store.offer, str(offer_id))
            if offer is not None and offer.status == "open":
                plan.commit.offer_status.append((offer.id, "declined"))

    async def _on_terms_response(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        reference = inbound.body.get("assertion") or {}
        document = await self.store.call(self.store.document, str(reference.get("id")))
        if document is None or document.peer_id != inbound.sender:
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT,
                "the terms assertion answered was not made to this party",
                path="/body/assertion",
            )
        if reference.get("digest") != document.digest:
            raise RemoteProtocolError(
                ErrorCode.NOT_ACCEPTED_BY_TERMS,
                "the response answers other terms than those asserted (digest differs)",
                path="/body/assertion/digest",
            )
        requested = {str(r["item"]): r for r in document.body.get("requests") or []}
        self._record_consents(
            plan, inbound, now, requested, inbound.body.get("accepted") or [], "/body/accepted"
        )

    def _record_consents(
        self,
        plan: _Plan,
        inbound: Inbound,
        now: datetime,
        requested: Mapping[str, Mapping[str, Any]],
        accepted: Sequence[Mapping[str, Any]],
        where: str,
    ) -> None:
        """Consents for the accepted requests and the data shared under them.

        Raises:
            RemoteProtocolError: NOT_ACCEPTED_BY_TERMS for an accepted item or
                purpose that was never requested, or data for an item not
                accepted (spec §12: only what was accepted may be shared).
        """
        deadlines: dict[str, tuple[str, tuple[str, ...]]] = {}
        for index, item in enumerate(accepted):
            category = str(item.get("item"))
            request = requested.get(category)
            if request is None:
                raise RemoteProtocolError(
                    ErrorCode.NOT_ACCEPTED_BY_TERMS,
                    f"{category} was not requested",
                    path=f"{where}/{index}/item",
                )
            purposes = tuple(str(p) for p in item.get("purposes") or request["purposes"])
            if not set(purposes) <= set(request["purposes"]):
                raise RemoteProtocolError(
                    ErrorCode.NOT_ACCEPTED_BY_TERMS,
                    f"{category} was not requested for "
                    f"{sorted(set(purposes) - set(request['purposes']))}",
                    path=f"{where}/{index}/purposes",
                )
            period = str((item.get("retention") or request["retention"])["period"])
            requested_period = str(request["retention"]["period"])
            # Never keep longer than asked, nor longer than accepted.
            span = min(parse_duration(period), parse_duration(requested_period))
            retain_until = format_timestamp(now + span)
            deadlines[category] = (retain_until, purposes)
            plan.commit.consents.append(
                ConsentRow(
                    inbound.sender,
                    category,
                    purposes,
                    period,
                    retain_until,
                    inbound.id,
                    format_timestamp(now),
                )
            )
        for index, data in enumerate(inbound.body.get("data") or []):
            category = str(data.get("item"))
            if category not in deadlines:
                raise RemoteProtocolError(
                    ErrorCode.NOT_ACCEPTED_BY_TERMS,
                    f"data for {category}, which the response does not accept",
                    path=f"/body/data/{index}/item",
                )
            retain_until, purposes = deadlines[category]
            plan.commit.data.append(
                DataRow(
                    inbound.sender,
                    category,
                    data.get("value"),
                    purposes,
                    retain_until,
                    inbound.id,
                    format_timestamp(now),
                )
            )

    async def _on_service_response(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        reference = inbound.body.get("notice") or {}
        document = await self.store.call(self.store.document, str(reference.get("id")))
        if document is None or document.peer_id != inbound.sender:
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT,
                "the notice answered was not sent to this party",
                path="/body/notice",
            )
        requested = {str(r["item"]): r for r in document.body.get("dataRequests") or []}
        accepted_items = inbound.body.get("accepted")
        accepted = [
            {"item": item, "purposes": request["purposes"], "retention": request["retention"]}
            for item, request in requested.items()
            if accepted_items is None or item in accepted_items
        ]
        if inbound.body.get("decision") == "decline":
            accepted = []
        self._record_consents(plan, inbound, now, requested, accepted, "/body/accepted")

    async def _on_support_request(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        safety = inbound.body.get("severity") == "safety"
        resolution = {
            "request": inbound.ref(),
            "status": "in-progress" if safety else "resolved",
            "resolution": (
                "A technician will contact you today; do not use the vehicle meanwhile."
                if safety
                else "A software update fixes this; it is applied at your next service, "
                "or now at any of our workshops."
            ),
        }
        plan.replies.append(
            _Reply(MessageType.SUPPORT_RESOLUTION.value, resolution, inbound.thread, inbound.id)
        )

    async def _on_exit(
        self, inbound: Inbound, plan: _Plan, now: datetime, row: RelationshipRow | None
    ) -> None:
        peer = inbound.sender
        held = await self.store.call(self.store.data_for, peer)
        consents = await self.store.call(self.store.consents_for, peer)
        deals = await self.store.call(self.store.deals_for, peer)
        offers = await self.store.call(self.store.offers_for, peer)
        earlier = await self.store.call(self.store.deletions_for, peer)
        body = inbound.body
        stamp = format_timestamp(now)
        acknowledgement: dict[str, Any] = {"notice": inbound.ref()}
        export_requested = bool((body.get("export") or {}).get("requested"))
        export_data: dict[str, Any] = {
            data.item: {
                "value": data.value,
                "purposes": list(data.purposes),
                "retainUntil": data.retain_until,
                "collectedAt": data.created_at,
            }
            for data in held
        }
        for past in earlier:
            # Deleted before the exit (retention ended): the export says so.
            export_data.setdefault(past.item, {"deletedAt": past.deleted_at, "reason": past.reason})
        export_data["consents"] = [
            {"item": c.item, "purposes": list(c.purposes), "retention": c.retention}
            for c in consents
        ]
        export_data["deals"] = [
            {
                "id": d.id,
                "offer": d.offer_id,
                "total": {"amount": d.total_amount, "currency": d.currency},
                "identity": d.identity,
            }
            for d in deals
        ]
        export_data["offers"] = [
            {"id": o.id, "basis": o.basis, "status": o.status, "madeBy": o.made_by} for o in offers
        ]
        digest = export_digest(export_data)
        if export_requested:
            acknowledgement["export"] = {
                "mediaType": "application/json",
                "data": export_data,
                "digest": digest,
            }
        deletion = body.get("deletion") or {}
        deleted: list[str] = []
        if deletion.get("requested") and "ignore-exit" not in self.faults:
            scope = set(deletion.get("categories") or [])
            targets = [d for d in held if not scope or d.item in scope]
            deleted = sorted({d.item for d in targets} | {c.item for c in consents})
            for data in targets:
                plan.commit.deletions.append(DeletionRow(peer, data.item, "exit", stamp))
            plan.commit.erase_peer_data = peer
        elif deletion.get("requested"):
            deleted = sorted({d.item for d in held} | {c.item for c in consents})
        # What was deleted earlier, when its retention ended, is deleted too.
        deleted = sorted(set(deleted) | {d.item for d in earlier})
        receipt: dict[str, Any] = {"relationship": peer, "deleted": deleted, "deletedAt": stamp}
        if deals:
            # The contract's records, with the identity disclosed at acceptance,
            # are kept on a legal basis and named category by category (spec §6.14).
            until = (now + DEAL_RECORD_RETENTION).date().isoformat()
            kept = {"transaction.records"} | {c for d in deals for c in _deal_categories(d)}
            receipt["retained"] = [
                {"item": item, "basis": DEAL_RECORD_BASIS, "until": until} for item in sorted(kept)
            ]
        acknowledgement["deletionReceipt"] = receipt
        # Nothing queued earlier reaches her after the acknowledgement (spec §7.5).
        plan.commit.cancel_outbox_for = peer
        plan.replies.append(
            _Reply(
                MessageType.EXIT_ACKNOWLEDGEMENT.value, acknowledgement, inbound.thread, inbound.id
            )
        )
        plan.commit.exits.append(
            ExitRow(
                peer,
                inbound.id,
                inbound.digest,
                digest if export_requested else None,
                receipt,
                "",
                stamp,
            )
        )

    # -- replies ------------------------------------------------------------------------------

    def _add_offer(
        self,
        plan: _Plan,
        body: dict[str, Any],
        thread: str,
        parent: str,
        *,
        round_number: int,
        supersedes: str | None,
    ) -> None:
        plan.offers_to_record[len(plan.replies)] = (round_number, supersedes)
        plan.replies.append(_Reply(MessageType.OFFER.value, body, thread, parent))

    def _add_terms_assertion(
        self, plan: _Plan, inbound: Inbound, now: datetime, *, parent: str | None
    ) -> None:
        body = rules.terms_assertion_body(self.catalogue, self.party_id, now=now)
        plan.documents_to_record.add(len(plan.replies))
        plan.replies.append(
            _Reply(MessageType.TERMS_ASSERTION.value, body, inbound.thread, parent or inbound.id)
        )

    # -- operator actions ---------------------------------------------------------------------

    async def send_notice(
        self,
        peer: str,
        *,
        kind: str | None = None,
        category: str | None = None,
        programme: str | None = None,
        summary: str | None = None,
        proposals: Sequence[Mapping[str, Any]] = (),
    ) -> NoticeOutcome:
        """Send a service notice (servicing, spec §6.9) or a programme offer
        (development) to ``peer``, if the individual's preferences allow it.

        Without a category (or programme) the vendor picks the first category
        it has something to say in that the individual allows. A notice in a
        category the individual did not allow is not sent; the refusal is
        recorded (spec §12, notification preferences).

        Raises:
            LookupError: no relationship with ``peer``, or no such programme.
            LocalProtocolError: the notice would not be a valid message (e.g. a
                malformed proposal); nothing was sent or recorded.
        """
        now = self.clock.now()
        chosen = self.catalogue.programme(programme) if programme else None
        if programme and chosen is None:
            raise LookupError(f"no programme {programme!r} in the catalogue")
        async with self._locks.hold(peer):
            row, relationship = await self._relationship(peer)
            if row is None:
                raise LookupError(f"no relationship with {peer}")
            if category is None:
                category = chosen.category if chosen else self._choose_category(row)
            if kind is None:
                kind = chosen.kind if chosen else NOTICE_KINDS.get(category, "other")
            if chosen is None and summary is None:
                summary = NOTICE_SUMMARIES.get(kind)
            reason: str | None = None
            if row.exited:
                pass  # the state machine judges the exit's re-engagement preferences
            elif row.notifications_allowed is None:
                reason = "the individual has not chosen notification categories"
            elif category not in row.notifications_allowed:
                reason = f"the individual does not allow {category} notifications"
            body: dict[str, Any] = {
                "kind": kind,
                "category": category,
                "summary": summary or (chosen.summary if chosen else kind.replace("-", " ")),
            }
            if proposals:
                # Work proposed, each accepted or declined on its own (seed 000 step 6).
                body["proposals"] = [dict(proposal) for proposal in proposals]
            if chosen is not None:
                body["details"] = chosen.details
                if chosen.data_requests:
                    body["dataRequests"] = [_scoped_request(r) for r in chosen.data_requests]
                    body["terms"] = self.catalogue.terms_reference()
            body["respondBy"] = format_timestamp(now + timedelta(days=14))
            plan = _Plan()
            if reason is None:
                plan.documents_to_record.add(0)
                # Vendors write only in threads the individual started (spec §5.2):
                # the notice joins the relationship's latest one.
                thread = await self.store.call(self.store.latest_inbound_thread, peer)
                plan.replies.append(
                    _Reply(MessageType.SERVICE_NOTICE.value, body, thread or "", None)
                )
                self._sign_replies(plan, relationship, peer, row.reply_inbox, now)
                if not plan.commit.outbound:
                    reason = "the relationship's state or re-engagement preferences forbid it"
            if reason is not None:
                plan = _Plan()
                plan.commit.suppressed.append(
                    SuppressedRow(peer, kind, category, reason, format_timestamp(now))
                )
                await self.store.commit(plan.commit)
                return NoticeOutcome(False, reason=reason)
            plan.commit.relationship = RelationshipRow(
                peer_id=peer,
                state=relationship.state.value,
                snapshot=relationship.snapshot(),
                exited=row.exited,
                reengagement=row.reengagement,
                notifications_allowed=row.notifications_allowed,
                reply_inbox=row.reply_inbox,
                engagements=row.engagements,
            )
            await self.store.commit(plan.commit)
        self.outbox_ready.set()
        return NoticeOutcome(True, message_id=plan.commit.outbound[0][0].message_id)

    def _choose_category(self, row: RelationshipRow) -> str:
        if row.exited:
            allowed = tuple((row.reengagement or {}).get("topics") or ())
        else:
            allowed = row.notifications_allowed or ()
        for category in NOTICE_PREFERENCE:
            if category in allowed and category in self.catalogue.notification_categories:
                return category
        return NOTICE_PREFERENCE[0]

    async def sweep(self) -> list[DeletionRow]:
        """Delete data whose retention has ended, by the agent's clock (spec §12)."""
        if "keep-data-after-retention" in self.faults:
            return []
        return await self.store.call(self.store.sweep_retention, format_timestamp(self.clock.now()))

    async def set_clock_offset(self, seconds: int) -> None:
        """Shift the agent's clock (test driver, spec §14.3); the offset survives restarts."""
        self.clock.set_offset_seconds(seconds)
        await self.store.call(self.store.set_setting, CLOCK_OFFSET_SETTING, str(seconds))
        await self.sweep()

    async def restore_clock_offset(self) -> None:
        """Re-apply a clock offset the test driver set before a restart."""
        value = await self.store.call(self.store.get_setting, CLOCK_OFFSET_SETTING)
        if value is not None:
            self.clock.set_offset_seconds(int(value))

    async def mailbox(self, poll_token: bytes, after: int | None) -> dict[str, Any]:
        """The replies waiting for the polling party (spec §11.4).

        Raises:
            RemoteProtocolError: the poll token does not verify.
        """
        request = verify_poll_token(
            poll_token, mailbox_owner=self.party_id, now=self.clock.now(), limits=self.config.limits
        )
        start = request.after if after is None else max(after, request.after)
        # spec §11.4 (VRM-HTTP-010): every message for the poller until it expires,
        # also those delivered to its replyTo (a restarted agent may have missed them).
        now = format_timestamp(self.clock.now())
        rows = await self.store.call(self.store.mailbox, request.poller, start, now)
        if "mailbox-only-without-reply-to" in self.faults:
            rows = [row for row in rows if row.inbox is None]
        return {
            "messages": [row.token.decode("ascii") for row in rows],
            "next": rows[-1].id if rows else start,
        }

    async def summary(self) -> dict[str, Any]:
        """The state summary of the test driver (after a retention sweep)."""
        await self.sweep()
        summary = await self.store.call(self.store.summary)
        summary["party"] = self.party_id
        return summary


#: Identity members of an acceptance and the data categories they disclose (spec §6.4).
ACCEPTANCE_CATEGORIES = {
    "name": "identity.name",
    "email": "contact.email",
    "phone": "contact.phone",
    "address": "contact.postal-address",
}


def _deal_categories(deal: DealRow) -> set[str]:
    """The data categories a deal record holds: what the acceptance disclosed."""
    categories = {ACCEPTANCE_CATEGORIES[k] for k in deal.identity if k in ACCEPTANCE_CATEGORIES}
    trade_in = deal.identity.get("tradeIn")
    if isinstance(trade_in, Mapping) and (trade_in.get("item") or {}).get("registration"):
        categories.add("vehicle.registration")
    return categories


def _known_answer(inbound: Inbound, stored_digest: str, receipt: bytes | None) -> InboxAnswer:
    """The answer to a message whose (sender, id) is already stored.

    Raises:
        RemoteProtocolError: REPLAY, the stored message has another digest
            (spec §9.3), or INTERNAL_ERROR, the identical one has no receipt.
    """
    if stored_digest != inbound.digest:
        # spec §9.3: another message under a used (sender, id) is a replay.
        raise RemoteProtocolError(
            ErrorCode.REPLAY,
            f"another message with id {inbound.id} was already received from this sender",
            path="/id",
        )
    if receipt is None:
        raise RemoteProtocolError(
            ErrorCode.INTERNAL_ERROR, "the message is stored but its receipt is missing"
        )
    # spec §11.3: an identical resend is answered with the original receipt, byte for byte.
    return InboxAnswer(200, receipt)


def _too_late(request: Mapping[str, Any], now: datetime) -> bool:
    """Whether the request's ``responseBy`` has passed: an answer now would be one
    she no longer waits for (spec §6.1, §6.2)."""
    try:
        return parse_timestamp(str(request.get("responseBy"))) < now
    except ValueError:
        return False


def _problem_report(regarding: Inbound, thread: str) -> _Reply:
    """A problem report: the message was accepted, but the vendor failed to answer it."""
    body = {
        "regarding": regarding.ref(),
        "code": ErrorCode.INTERNAL_ERROR.value,
        "title": ErrorCode.INTERNAL_ERROR.info.title,
        "detail": "Your message was received and stored, but the vendor could not prepare "
        "its answer. Its operator has been told; you may send the request again later.",
    }
    return _Reply(MessageType.PROBLEM_REPORT.value, body, thread, regarding.id)


def _scoped_request(request: Mapping[str, Any]) -> dict[str, Any]:
    entry = dict(request)
    retention = entry.get("retention")
    if isinstance(retention, str):
        entry["retention"] = {"period": retention}
    return entry


def _offer_row(
    offer_id: str,
    peer: str,
    thread: str,
    body: Mapping[str, Any],
    digest: str,
    supersedes: str | None,
    round_number: int,
    now: datetime,
    *,
    made_by: str,
) -> OfferRow:
    total = (body.get("price") or {}).get("total") or {}
    return OfferRow(
        id=offer_id,
        peer_id=peer,
        thread=thread,
        basis=str(body.get("basis")),
        status="open",
        made_by=made_by,
        valid_until=str(body.get("validUntil")),
        total_amount=str(total.get("amount", "0")),
        currency=str(total.get("currency", "")),
        digest=digest,
        body=dict(body),
        supersedes=supersedes,
        round=round_number,
        created_at=format_timestamp(now),
    )


_HANDLERS = {
    MessageType.PERSONAL_RFI.value: VendorAgent._on_rfi,
    MessageType.PERSONAL_RFP.value: VendorAgent._on_rfp,
    MessageType.OFFER.value: VendorAgent._on_offer,
    MessageType.OFFER_ACCEPTANCE.value: VendorAgent._on_acceptance,
    MessageType.OFFER_DECLINE.value: VendorAgent._on_decline,
    MessageType.TERMS_RESPONSE.value: VendorAgent._on_terms_response,
    MessageType.SERVICE_RESPONSE.value: VendorAgent._on_service_response,
    MessageType.SUPPORT_REQUEST.value: VendorAgent._on_support_request,
    MessageType.EXIT_NOTICE.value: VendorAgent._on_exit,
}
