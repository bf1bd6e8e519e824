"""The inbox pipeline: from a received token to one committed unit of work.

Every inbound message goes through the same steps (ARCHITECTURE.md, "Agents
of one shape"); step 1 is the HTTP layer's (:mod:`vrm_agent.http`):

1. limits and the address budget, before anything is read or verified; the
   body read with a timeout;
2. an identical resend is answered with the original receipt (by digest);
3. ``decode`` — the library's pipeline through the agent's
   :class:`Reception` and the (replaceable) verifier — then the per-sender
   budget, charged only now that the sender is verified (spec §11.6);
4. replay (durable: the store's unique (sender, id)); participation: a thread
   belongs to one relationship, a parent must be a message of this one (§7.3);
5. the relationship's core, :func:`~vrm_protocol.state_machine.ledger_query`,
   exactly the records it names, :func:`~vrm_protocol.state_machine.decide`;
6. the handler registered for the message's type adds domain writes and
   replies (typed bodies) to the :class:`~vrm_agent.unit.UnitOfWork`;
7. each reply is signed and passes ``decide`` as SENT (it gets its own
   effects); one that breaks the protocol is not sent, one that cannot be
   made becomes a problem report;
8. ONE unit of work commits: the inbound token, its receipt, the core, the
   ledger effects, the domain writes, the outbox rows. Only then is the
   receipt answered (spec §11.3).

Work is serialised per sender, thread and message id (:class:`KeyedLocks`),
not globally, so messages of different relationships share a group commit;
a store that several processes serve holds the same keys across them
(:meth:`~vrm_agent.store.ProtocolStore.exclusive`).
:meth:`Pipeline.act` runs steps 5-8 for what the agent starts itself and the
outbox delivers later (an operator's notice); :meth:`Pipeline.send` for a
message the agent delivers itself, at once, and commits only once the peer
took it (an individual's RFI, acceptance or exit).

A unit decided on a relationship that another writer changed meanwhile (a
second process on the same store) is refused by the store
(:class:`~vrm_agent.store.StaleRelationship`) and decided again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, Generic, Protocol, TypeVar

from pydantic import ValidationError

from vrm_agent.clock import Clock
from vrm_agent.locks import KeyedLocks
from vrm_agent.registry import BoundHandlers
from vrm_agent.store import (
    InboundConflict,
    ProtocolStore,
    RelationshipRecord,
    StaleRelationship,
    StoredMessage,
)
from vrm_agent.strategies import PRODUCTION, ReplayVerdict, Strategies, Verifier, refuse_replay
from vrm_agent.unit import DomainWrite, Outbound, Reply, UnitOfWork
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import Received, encode, new_message_id
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import RateLimiter
from vrm_protocol.keys import KeyResolver, SigningKey
from vrm_protocol.ledger import (
    DealAccepted,
    Effect,
    LedgerFacts,
    LedgerQuery,
    MemoryLedger,
    OfferRecord,
    RelationshipCore,
    RequestRecord,
)
from vrm_protocol.limits import Limits
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.models import (
    BaseMessage,
    Message,
    MessageRef,
    ProblemReportBody,
    ProblemSubject,
    ReceiptBody,
    ReceiptMessage,
    VRMModel,
)
from vrm_protocol.state_machine import Direction, Transition, ledger_query
from vrm_protocol.vocabulary import PROTOCOL_VERSION, MessageType, Role

__all__ = [
    "STALE_RETRIES",
    "Deliver",
    "Delivered",
    "DirectReception",
    "Identities",
    "Inbound",
    "InboxAnswer",
    "Pipeline",
    "Reception",
    "Sent",
    "SingleIdentity",
    "Us",
]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseMessage)

#: How many times a unit is decided again when another writer changed its
#: relationship meanwhile (spec §11.3: nothing half-applied, nothing lost).
STALE_RETRIES: Final = 5


@dataclass(frozen=True, slots=True)
class Us:
    """Who the agent is in one relationship: its party id there, the key it signs
    with, and the inbox it names in ``replyTo`` (spec §5.1, VRM-ENV-010)."""

    party_id: str
    key: SigningKey
    inbox_url: str | None


class Identities(Protocol):
    """Who the agent is towards each peer (a vendor: always itself; an individual:
    the pairwise pseudonym she uses with that peer, spec §3.1)."""

    async def for_peer(self, peer: str) -> Us:
        """The agent's identity towards ``peer``.

        Raises:
            RemoteProtocolError: the agent has no identity towards ``peer``.
        """
        ...


@dataclass(frozen=True, slots=True)
class SingleIdentity:
    """One identity towards every peer (a vendor, a third party)."""

    us: Us

    async def for_peer(self, peer: str) -> Us:
        """Always the same identity."""
        return self.us


class Reception(Protocol):
    """How the agent runs the library's pipeline on a token (step 3): which keys
    resolve, and to which audience the message must be addressed."""

    async def decode(self, token: bytes, now: datetime, verifier: Verifier) -> Received:
        """The verified, validated message (replay is the store's, later).

        Raises:
            RemoteProtocolError: the first stage that refused it.
        """
        ...


@dataclass(frozen=True, slots=True)
class DirectReception:
    """A party with one identity: keys from ``resolve_key``, audience ``receiver``."""

    receiver: str
    resolve_key: KeyResolver
    limits: Limits

    async def decode(self, token: bytes, now: datetime, verifier: Verifier) -> Received:
        """``verifier.decode`` with this party's keys and audience.

        Raises:
            RemoteProtocolError: the first stage that refused the message.
        """
        return verifier.decode(
            token,
            resolve_key=self.resolve_key,
            receiver=self.receiver,
            now=now,
            limits=self.limits,
        )


@dataclass(frozen=True, slots=True)
class Inbound(Generic[M]):
    """A message that passed steps 2-5, as its handler sees it.

    Attributes:
        message: the typed model (``inbound.message.body.offer.id``).
        token: the compact JWS as received; ``digest`` its message digest.
        now: the agent's time the message was judged at.
        us: the agent's identity in this relationship.
        before: the relationship before the message (``None``: a new one).
        transition: what the state machine decided (new state, effects).
        facts: the ledger records the decision read.
        via: how it reached the agent: ``inbox`` (POSTed to it), or ``mailbox``
            (collected from the counterparty's mailbox, spec §11.4).
    """

    message: M
    token: bytes
    digest: str
    now: datetime
    us: Us
    before: RelationshipRecord | None
    transition: Transition
    facts: LedgerFacts
    via: str = "inbox"

    @property
    def peer(self) -> str:
        """The sender: the relationship's other party."""
        return self.message.from_

    @property
    def id(self) -> str:
        """The message id."""
        return self.message.id

    @property
    def thread(self) -> str:
        """The thread the message is in."""
        return self.message.thread

    def ref(self) -> MessageRef:
        """A ``messageRef`` binding a reply to exactly these bytes (spec §8.5)."""
        return MessageRef(id=self.message.id, digest=self.digest)

    def answer(
        self, work: UnitOfWork, body: VRMModel, *, writes: tuple[DomainWrite, ...] = ()
    ) -> Reply:
        """Reply with ``body`` in this message's thread, answering it."""
        return work.reply(body, thread=self.message.thread, parent=self.message.id, writes=writes)


@dataclass(frozen=True, slots=True)
class Delivered:
    """How the peer took a message the agent sent itself (:meth:`Pipeline.send`).

    Attributes:
        receipt: the peer's signed receipt, when its inbox answered with one (the
            deliverer verified that it binds the message's exact bytes).
        writes: the agent's own records of the delivery, committed with the message.
    """

    receipt: bytes | None = None
    writes: tuple[DomainWrite, ...] = ()


#: Delivers a message the agent sent itself, before it is committed: returns how
#: the peer took it, or raises (nothing is stored then).
Deliver = Callable[[StoredMessage, Message], Awaitable[Delivered]]


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the agent sent itself, delivered and committed.

    ``applied`` is false only when another writer moved the relationship while
    the message was delivered and the state machine no longer allows it on
    what the store holds now: the peer has it, so it is kept, without effects.
    """

    message: StoredMessage
    model: Message
    transition: Transition
    delivered: Delivered
    applied: bool = True


@dataclass(frozen=True, slots=True)
class InboxAnswer:
    """What the inbox answers: ``202`` with a new receipt, ``200`` with the original.

    ``queued``: the unit queued messages to POST (wake the outbox once the
    receipt is on its way: a reply never overtakes the receipt).
    ``message_id``: the id of the message a ``202`` took.
    """

    status: int
    receipt: bytes
    queued: bool = False
    message_id: str | None = None


class _LedgerView:
    """The ledger of one relationship during one unit of work: the store's records
    as they were, with the effects decided so far applied on top, so that each
    reply is decided against the ledger as the unit leaves it."""

    def __init__(self, store: ProtocolStore, peer: str, *, exists: bool) -> None:
        self._store = store
        self._peer = peer
        self._exists = exists
        self._offers: dict[str, OfferRecord] = {}
        self._requests: dict[str, RequestRecord] = {}
        self._effects: list[Effect] = []

    async def facts(self, query: LedgerQuery, now: datetime) -> LedgerFacts:
        """Exactly the records ``query`` names, as they stand in this unit.

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        if query.empty:
            return LedgerFacts(query=query)
        stored = (
            await self._store.ledger_facts(self._peer, query, now)
            if self._exists
            else LedgerFacts(query=query)
        )
        if not self._effects:
            return stored
        for offer in stored.offers.values():
            self._offers.setdefault(offer.id, offer)
        for request in stored.requests.values():
            self._requests.setdefault(request.id, request)
        ledger = MemoryLedger(self._offers.values(), self._requests.values())
        ledger.apply(self._effects)
        return LedgerFacts(
            MappingProxyType(
                {
                    record.id: record
                    for record in ledger.offers.values()
                    if record.id in query.offers
                    or (record.sender is query.open_offers_of and record.live_at(now))
                }
            ),
            MappingProxyType(
                {
                    record.id: record
                    for record in ledger.requests.values()
                    if record.id in query.requests
                    or (record.type is query.open_requests_of and record.open)
                }
            ),
            query,
        )

    def apply(self, effects: tuple[Effect, ...]) -> None:
        """Later decisions see these effects."""
        self._effects.extend(effects)


def _message_model(
    reply: Reply, *, us: Us, peer: str, now: datetime, lifetime: timedelta
) -> Message:
    """The message a reply becomes (its body is already a validated model).

    Raises:
        LocalProtocolError: the envelope is not valid (SCHEMA_INVALID).
    """
    spec = MESSAGE_TYPES[reply.type]
    envelope: dict[str, Any] = {
        "vrm": PROTOCOL_VERSION,
        "type": reply.type.value,
        "id": reply.id,
        "thread": reply.thread,
        "from": us.party_id,
        "to": (peer,),
        "created": format_timestamp(now),
        "expires": format_timestamp(now + lifetime),
        "body": reply.body,
    }
    if reply.parent is not None:
        envelope["parent"] = reply.parent
    if us.inbox_url is not None:
        # spec §5.1 (VRM-ENV-010): a sender with a reachable inbox names it.
        envelope["replyTo"] = {"inbox": us.inbox_url}
    try:
        return spec.model.model_validate(envelope)  # type: ignore[return-value]
    except ValidationError as error:
        raise LocalProtocolError(
            ErrorCode.SCHEMA_INVALID, f"not a valid envelope: {error}"
        ) from None


def _problem_reply(regarding: Inbound[Any], thread: str) -> Reply:
    """A problem report: the message was accepted, but the agent failed to answer it."""
    body = ProblemReportBody(
        regarding=ProblemSubject(id=regarding.id, digest=regarding.digest),
        code=ErrorCode.INTERNAL_ERROR.value,
        title=ErrorCode.INTERNAL_ERROR.info.title,
        detail="Your message was received and stored, but its answer could not be "
        "prepared. The operator has been told; you may send the request again later.",
    )
    return Reply(body, MessageType.PROBLEM_REPORT, new_message_id(), thread, regarding.id)


class Pipeline:
    """Steps 2-8 of every inbound message, and steps 5-8 of what the agent starts.

    Args:
        role: the agent's role (a third party takes the vendor's).
        store: the protocol store.
        handlers: the agent's handlers, bound to it (checked complete at start-up).
        identities: who the agent is towards each peer.
        reception: how tokens are decoded (keys, audience).
        clock: the agent's clock.
        strategies: production, or weakened by test-mode faults.
        sender_limiter: the per-sender budget, charged after verification.
        message_lifetime: the lifetime of the messages the agent signs.
        reply_delay: seconds between a commit and the first POST of its messages
            (so a reply never overtakes the receipt of the message it answers).
        on_commit: called with each unit once it is committed (e.g. to wake
            a task that depends on what was written).
    """

    def __init__(
        self,
        *,
        role: Role,
        store: ProtocolStore,
        handlers: BoundHandlers,
        identities: Identities,
        reception: Reception,
        clock: Clock,
        strategies: Strategies = PRODUCTION,
        sender_limiter: RateLimiter | None = None,
        message_lifetime: timedelta = timedelta(days=1),
        reply_delay: float = 0.0,
        on_commit: Callable[[UnitOfWork], None] | None = None,
    ) -> None:
        self.role = role
        self.store = store
        self.handlers = handlers
        self.identities = identities
        self.reception = reception
        self.clock = clock
        self.strategies = strategies
        self.sender_limiter = sender_limiter
        self.message_lifetime = message_lifetime
        self.reply_delay = reply_delay
        self.on_commit = on_commit
        self.locks = KeyedLocks()

    # -- receiving ---------------------------------------------------------------------------

    async def receive(
        self, token: bytes, *, reception: Reception | None = None, via: str = "inbox"
    ) -> InboxAnswer:
        """Run steps 2-8 on one message.

        Returns ``202`` and a new signed receipt once the message and all it
        caused are committed, or ``200`` and the original receipt's bytes for
        an identical resend. ``reception`` replaces the pipeline's for this
        message (e.g. an inbox address that takes one relationship's messages
        only); ``via`` says how it reached the agent (:attr:`Inbound.via`).

        Raises:
            RemoteProtocolError: the message is refused (the code of the first
                step that refused it); nothing was stored.
            StoreUnavailable: the store cannot be read or written; nothing was stored.
        """
        digest = message_digest(token)
        original = await self.store.receipt_for_digest(digest)
        if original is not None:
            # spec §11.3, §9.3: an identical resend is not an error and has no
            # second effect; the original receipt, byte for byte.
            return InboxAnswer(200, original)
        now = self.clock.now()
        received = await (reception or self.reception).decode(token, now, self.strategies.verifier)
        message = received.message
        sender = message.from_
        if self.sender_limiter is not None:
            # spec §11.6 (VRM-HTTP-018): a budget per sender is charged only once
            # the signature verified and the key was bound to `from`.
            self.sender_limiter.check(sender, self.clock.monotonic())
        keys = ("p " + sender, "t " + message.thread, "m " + message.id)
        # In this process first (so waiting tasks hold no database connection), then
        # in every process serving the same store (a no-op where only one can).
        async with self.locks.hold(*keys), self.store.exclusive(*keys):
            for attempt in range(STALE_RETRIES):
                try:
                    return await self._receive_locked(received, now, via)
                except StaleRelationship:
                    # Another writer (another process on this store) moved the
                    # relationship since it was read: decide the message again.
                    if attempt + 1 == STALE_RETRIES:
                        raise
            raise AssertionError("unreachable")

    async def _receive_locked(self, received: Received, now: datetime, via: str) -> InboxAnswer:
        message = received.message
        sender = message.from_
        keep = True
        known = await self.store.inbound_digest(sender, message.id)
        if known is not None:
            verdict = self.strategies.replay.judge(known, received.digest)
            if verdict is ReplayVerdict.DUPLICATE:
                # The identical resend raced the first copy.
                return _known_answer(
                    message.id, received.digest, known, await self.store.receipt_for_digest(known)
                )
            if verdict is ReplayVerdict.REPLAY:
                raise refuse_replay(message.id)
            keep = False  # a test-mode fault processes it as new, without keeping it
        await self._check_participation(message, sender)
        us = await self.identities.for_peer(sender)
        record = await self.store.relationship(sender)
        work = UnitOfWork(peer=sender, relationship=record or _new_relationship(sender))
        ledger = _LedgerView(self.store, sender, exists=record is not None)
        facts = await ledger.facts(ledger_query(message, sender=self.role.peer), now)
        transition = self.strategies.decider.decide(
            work.core,
            message,
            our_role=self.role,
            our_id=us.party_id,
            peer_id=sender,
            direction=Direction.RECEIVED,
            facts=facts,
            now=now,
            digest=received.digest,
        )
        self._record(work, ledger, transition)
        reply_inbox = message.reply_to.inbox if message.reply_to is not None else None
        work.relationship = replace(
            work.relationship,
            thread=message.thread,
            reply_inbox=reply_inbox or work.relationship.reply_inbox,
        )
        inbound: Inbound[Any] = Inbound(
            message, received.token, received.digest, now, us, record, transition, facts, via
        )
        await self._handle(inbound, work)
        await self._sign_replies(work, us, ledger, now, regarding=inbound, deliver_to=reply_inbox)
        receipt = self._receipt(inbound)
        if keep:
            work.inbound = StoredMessage(
                sender=sender,
                message_id=message.id,
                direction=Direction.RECEIVED,
                type=MessageType(message.type),
                thread=message.thread,
                parent=message.parent,
                peer=sender,
                digest=received.digest,
                token=received.token,
                at=format_timestamp(now),
                expires=message.expires,
            )
            work.receipt = receipt
        try:
            await self._commit(work)
        except InboundConflict as conflict:
            # The store is the replay guard of record: the same (sender, id) was
            # committed first by someone the locks do not see (another process on
            # the same database, or a unit ahead in the same group commit).
            return _known_answer(message.id, received.digest, conflict.digest, conflict.receipt)
        log.info(
            "accepted %s %s from %s; %d sent",
            message.type,
            message.id,
            sender[:48],
            len(work.outbound),
        )
        return InboxAnswer(
            202,
            receipt,
            queued=any(o.deliver_to is not None for o in work.outbound),
            message_id=message.id,
        )

    async def _check_participation(self, message: Message, sender: str) -> None:
        """spec §7.3: a thread belongs to one relationship; a parent the agent holds
        must be a message of this relationship (and, for some agents, of this thread).

        Raises:
            RemoteProtocolError: NOT_A_PARTICIPANT.
        """
        rules = self.strategies.participation
        if not rules.checked:
            return
        owner = await self.store.thread_peer(message.thread)
        if (owner is None and rules.thread_must_be_known) or (
            owner is not None and owner != sender
        ):
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT,
                "the thread belongs to another relationship"
                if owner is not None
                else "the thread is not one of this relationship",
                path="/thread",
            )
        if message.parent is None:
            return
        holders = await self.store.message_peers(message.parent)
        if holders and sender not in holders:
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT,
                "the parent is a message of another relationship",
                path="/parent",
            )
        if holders and rules.parent_in_same_thread:
            parent = await self.store.message(sender, message.parent)
            if parent is None:
                parent = await self.store.message(
                    (await self.identities.for_peer(sender)).party_id, message.parent
                )
            if parent is not None and parent.thread != message.thread:
                raise RemoteProtocolError(
                    ErrorCode.NOT_A_PARTICIPANT,
                    "the parent is a message of another thread",
                    path="/parent",
                )

    async def _handle(self, inbound: Inbound[Any], work: UnitOfWork) -> None:
        """Step 6: the registered handler (wrapped by the strategies).

        A handler that fails to build a valid body (a model refuses what it
        computed) has accepted the message all the same: its replies are
        dropped and a problem report says so (spec §6.15).

        Raises:
            RemoteProtocolError: the handler refused the message (nothing is stored).
        """
        message_type = MessageType(inbound.message.type)
        handler = self.handlers.get(message_type)
        if handler is None:
            return
        try:
            await self.strategies.wrap_handler(message_type, handler)(inbound, work)
        except ValidationError as error:
            log.error(
                "cannot answer %s %s from %s: %s",
                message_type.value,
                inbound.id,
                inbound.peer[:48],
                str(error).splitlines()[0],
            )
            work.replies[:] = [_problem_reply(inbound, inbound.thread)]

    def _receipt(self, inbound: Inbound[Any]) -> bytes:
        """The signed receipt answering ``inbound`` (spec §6.16, §11.3): it binds the
        message's id and digest, in its thread, addressed to its sender."""
        now = inbound.now
        stamp = format_timestamp(now)
        regarding = self.strategies.receipts.regarding(inbound.id, inbound.token, inbound.digest)
        receipt = ReceiptMessage(
            vrm=PROTOCOL_VERSION,
            type="receipt",
            id=new_message_id(),
            thread=inbound.thread,
            parent=inbound.id,
            from_=inbound.us.party_id,
            to=(inbound.peer,),
            created=stamp,
            expires=format_timestamp(now + self.message_lifetime),
            body=ReceiptBody(regarding=regarding, status="accepted", received_at=stamp),
        )
        return encode(receipt, inbound.us.key)

    # -- acting --------------------------------------------------------------------------------

    async def act(
        self,
        peer: str,
        compose: Callable[[RelationshipRecord, UnitOfWork], Awaitable[None]],
        *,
        deliver_to: str | None = None,
        finish: Callable[[UnitOfWork], None] | None = None,
    ) -> UnitOfWork:
        """Steps 5-8 for what the agent starts itself (an operator's notice).

        Under the relationship's lock: ``compose`` reads the relationship and adds
        replies and writes to the unit; each reply is signed and decided as
        SENT (one the state machine refuses is not sent: the returned unit's
        ``outbound`` says what was); ``finish`` may add writes knowing that;
        the unit is committed.

        Raises:
            LookupError: there is no relationship with ``peer``.
            LocalProtocolError: a reply is not a valid message (nothing committed).
            StoreUnavailable: the store cannot be read or written.
        """
        async with self.locks.hold("p " + peer), self.store.exclusive("p " + peer):
            record = await self.store.relationship(peer)
            if record is None:
                raise LookupError(f"no relationship with {peer}")
            work = UnitOfWork(peer=peer, relationship=record)
            await compose(record, work)
            us = await self.identities.for_peer(peer)
            ledger = _LedgerView(self.store, peer, exists=True)
            await self._sign_replies(
                work,
                us,
                ledger,
                self.clock.now(),
                regarding=None,
                deliver_to=deliver_to or record.reply_inbox,
            )
            if finish is not None:
                finish(work)
            await self._commit(work)
        return work

    async def send(
        self,
        peer: str,
        reply: Reply,
        *,
        deliver: Deliver,
        backdate: timedelta = timedelta(0),
    ) -> Sent:
        """Steps 5-8 for a message the agent sends itself and delivers at once.

        Under the relationship's lock: the message (``reply``, from
        :func:`vrm_agent.unit.outgoing`) is signed as the agent's identity
        towards ``peer``, with ``created`` set back by ``backdate`` (copies of
        one message to several parties are decorrelated so, spec §12), and
        decided as SENT against the relationship as stored (a new one if there
        is none): a move the state machine refuses is never signed for
        sending. Then ``deliver`` hands it to the peer, still under the lock
        (a reply racing the receipt waits for the commit), and only once the
        peer took it is the unit committed: the message, the new core, the
        ledger effects, ``reply.writes`` and the delivery's writes. A message
        the peer refused changes nothing: nothing of it is stored.

        Raises:
            LocalProtocolError: the state machine refuses the move, or the
                message is not valid; nothing was stored or delivered.
            Exception: whatever ``deliver`` raises; nothing was stored.
            StoreUnavailable: the store cannot be read or written.
        """
        async with self.locks.hold("p " + peer):
            now = self.clock.now()
            us = await self.identities.for_peer(peer)
            message = _message_model(
                reply, us=us, peer=peer, now=now - backdate, lifetime=self.message_lifetime
            )
            token = encode(message, us.key)
            digest = message_digest(token)
            work, transition = await self._decide_sent(peer, message, us, now, digest)
            stored = StoredMessage(
                sender=us.party_id,
                message_id=reply.id,
                direction=Direction.SENT,
                type=reply.type,
                thread=reply.thread,
                parent=reply.parent,
                peer=peer,
                digest=digest,
                token=token,
                at=format_timestamp(now),
                expires=message.expires,
            )
            delivered = await deliver(stored, message)
            applied = True
            for attempt in range(STALE_RETRIES):
                work.outbound = [
                    Outbound(stored, None, delivered_at=format_timestamp(self.clock.now()))
                ]
                work.writes = [*reply.writes, *delivered.writes] if applied else []
                try:
                    await self._commit(work)
                    break
                except StaleRelationship:
                    if attempt + 1 == STALE_RETRIES:
                        raise
                # Another writer moved the relationship while the message was
                # delivered. The peer has it: decide it again on what is stored.
                try:
                    work, transition = await self._decide_sent(peer, message, us, now, digest)
                except LocalProtocolError as error:
                    log.error(
                        "%s %s to %s was delivered, but the relationship moved meanwhile "
                        "and no longer allows it (%s); it is kept without effects",
                        reply.type.value,
                        reply.id,
                        peer[:48],
                        error,
                    )
                    record = await self.store.relationship(peer)
                    work = UnitOfWork(peer=peer, relationship=record or _new_relationship(peer))
                    applied = False
        return Sent(stored, message, transition, delivered, applied)

    async def check_send(self, peer: str, reply: Reply) -> Transition:
        """Whether the state machine would let the agent send ``reply`` to ``peer``
        now: the transition it would make. Nothing is signed, stored or sent
        (an agent asks before it gathers what a message needs, so that the
        relationship's own refusal is the one reported).

        Raises:
            LocalProtocolError: the state machine refuses it, or it is not valid.
            RemoteProtocolError: the agent has no identity towards ``peer``.
            StoreUnavailable: the store cannot be read.
        """
        now = self.clock.now()
        us = await self.identities.for_peer(peer)
        message = _message_model(reply, us=us, peer=peer, now=now, lifetime=self.message_lifetime)
        _, transition = await self._decide_sent(peer, message, us, now, None)
        return transition

    async def _decide_sent(
        self, peer: str, message: Message, us: Us, now: datetime, digest: str | None
    ) -> tuple[UnitOfWork, Transition]:
        """The unit of a message the agent sends, decided on the relationship as stored.

        Raises:
            LocalProtocolError: the state machine refuses it.
            StoreUnavailable: the store cannot be read.
        """
        record = await self.store.relationship(peer)
        work = UnitOfWork(peer=peer, relationship=record or _new_relationship(peer))
        ledger = _LedgerView(self.store, peer, exists=record is not None)
        facts = await ledger.facts(ledger_query(message, sender=self.role), now)
        transition = self.strategies.decider.decide(
            work.core,
            message,
            our_role=self.role,
            our_id=us.party_id,
            peer_id=peer,
            direction=Direction.SENT,
            facts=facts,
            now=now,
            digest=digest,
        )
        self._record(work, ledger, transition)
        return work, transition

    # -- steps 7 and 8 ----------------------------------------------------------------------------

    def _record(self, work: UnitOfWork, ledger: _LedgerView, transition: Transition) -> None:
        ledger.apply(transition.effects)
        work.effects.extend(transition.effects)
        work.relationship = replace(
            work.relationship,
            core=transition.core,
            deal_seen=work.relationship.deal_seen
            or any(isinstance(effect, DealAccepted) for effect in transition.effects),
        )

    async def _sign_replies(
        self,
        work: UnitOfWork,
        us: Us,
        ledger: _LedgerView,
        now: datetime,
        *,
        regarding: Inbound[Any] | None,
        deliver_to: str | None,
    ) -> None:
        """Step 7: sign each reply, decide it as SENT, queue it.

        Raises:
            LocalProtocolError: a reply of the agent's own action (``regarding``
                ``None``) is not a valid message.
        """
        replies, work.replies = work.replies, []
        index = 0
        while index < len(replies):
            reply = replies[index]
            try:
                message = _message_model(
                    reply, us=us, peer=work.peer, now=now, lifetime=self.message_lifetime
                )
                token = encode(message, us.key)
            except LocalProtocolError as error:
                # The message was accepted; our answer to it could not be made
                # (spec §6.15): tell the sender with a problem report instead.
                log.error("cannot send %s to %s: %s", reply.type.value, work.peer[:48], error)
                if regarding is None:
                    raise
                if reply.type is not MessageType.PROBLEM_REPORT:
                    replies[index] = _problem_reply(regarding, reply.thread)
                    continue
                index += 1
                continue
            digest = message_digest(token)
            try:
                facts = await ledger.facts(ledger_query(message, sender=self.role), now)
                transition = self.strategies.decider.decide(
                    work.core,
                    message,
                    our_role=self.role,
                    our_id=us.party_id,
                    peer_id=work.peer,
                    direction=Direction.SENT,
                    facts=facts,
                    now=now,
                    digest=digest,
                )
            except LocalProtocolError as error:
                # Our own rule would break the protocol here: send nothing rather
                # than an illegal message (spec §7).
                log.warning("not sending %s to %s: %s", reply.type.value, work.peer[:48], error)
                index += 1
                continue
            self._record(work, ledger, transition)
            work.outbound.append(
                Outbound(
                    StoredMessage(
                        sender=us.party_id,
                        message_id=reply.id,
                        direction=Direction.SENT,
                        type=reply.type,
                        thread=reply.thread,
                        parent=reply.parent,
                        peer=work.peer,
                        digest=digest,
                        token=token,
                        at=format_timestamp(now),
                        expires=message.expires,
                    ),
                    deliver_to,
                )
            )
            work.writes.extend(reply.writes)
            index += 1

    async def _commit(self, work: UnitOfWork) -> None:
        """Step 8.

        Raises:
            InboundConflict, ConstraintViolation, StoreUnavailable: from the store.
        """
        work.deliver_at = self.clock.wall() + self.reply_delay
        await self.store.commit(work)
        if self.on_commit is not None:
            self.on_commit(work)


def _new_relationship(peer: str) -> RelationshipRecord:
    """A relationship the store does not hold yet (version 0: it must still be
    absent when the unit commits)."""
    return RelationshipRecord(peer, RelationshipCore(), version=0)


def _known_answer(
    message_id: str, digest: str, stored_digest: str, receipt: bytes | None
) -> InboxAnswer:
    """The answer to a message whose (sender, id) is already stored.

    Raises:
        RemoteProtocolError: REPLAY, the stored message has another digest
            (spec §9.3), or INTERNAL_ERROR, the identical one has no receipt.
    """
    if stored_digest != digest:
        raise refuse_replay(message_id)
    if receipt is None:
        raise RemoteProtocolError(
            ErrorCode.INTERNAL_ERROR, "the message is stored but its receipt is missing"
        )
    # spec §11.3: an identical resend is answered with the original receipt, byte for byte.
    return InboxAnswer(200, receipt)
