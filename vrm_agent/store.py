"""What the runtime needs from an agent's store: the protocol's own records.

Every agent built on :mod:`vrm_agent` keeps the same protocol records, whatever
else its domain adds (a vendor's deals and consents, an individual's profile):

* **messages** — every message received or sent, as the exact token, keyed by
  (sender, id): the evidence, the durable replay guard (spec §9.3) and the
  relationship's history;
* **receipts** — the receipt given for each inbound message, by the message's
  digest, so an identical resend is answered with the original bytes (§11.3);
* **threads** — which relationship each thread belongs to (§7.3);
* **relationships** — one row per peer holding the
  :class:`~vrm_protocol.ledger.RelationshipCore` (constant in size: the history
  is the stored messages) and a few constant-size facts of the runtime (the
  latest thread the peer wrote in, the reply address it named, whether a deal
  was ever made, failed deliveries);
* **the ledger** — offer and request records, one row each, changed only by the
  effects a :class:`~vrm_protocol.state_machine.Transition` returns;
* **the outbox** — every message sent, in the addressee's mailbox until it
  expires (D5), and the POSTs still owed to a ``replyTo`` inbox (D6).

:class:`ProtocolStore` is that interface: typed async methods and nothing
that names a database. Its errors are this module's (:class:`StoreUnavailable`
for D11, :class:`InboundConflict` for a used (sender, id),
:class:`ConstraintViolation` for any other broken rule), so an implementation
on SQLite (:mod:`vrm_agent.sqlite`) and one on a server database are
interchangeable, and one contract test judges both.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import orjson

from vrm_protocol.canonical import b64url_decode
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.ledger import (
    LedgerFacts,
    LedgerQuery,
    OfferRecord,
    RelationshipCore,
    RequestRecord,
)
from vrm_protocol.models import Message, parse_message_dict
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from vrm_agent.unit import UnitOfWork

__all__ = [
    "ConstraintViolation",
    "DeliveryOutcome",
    "DeliveryStanding",
    "DeliveryStatus",
    "InboundConflict",
    "MailboxEntry",
    "OutboxEntry",
    "ProtocolStore",
    "RelationshipRecord",
    "StaleRelationship",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "StoredMessage",
]


# -- errors ---------------------------------------------------------------------------------------


class StoreError(Exception):
    """Base of the store's errors: nothing of the work that raised it was applied."""


class StoreUnavailable(StoreError):
    """The store cannot be written (or read) now: its disk is full, it is read-only,
    another process holds it locked, an I/O error, the server is down. Nothing
    was applied; the same work may succeed later (D11: ``503`` with ``Retry-After``)."""


class StoreClosed(StoreError, RuntimeError):
    """The store was closed: no more work is taken."""


class ConstraintViolation(StoreError):
    """A unit of work broke a rule of the store other than the replay key (a
    reference to a record that does not exist, a duplicate key): a defect of
    the agent, not of the message. Nothing of the unit was applied."""


class StaleRelationship(StoreError):
    """A unit of work was decided on a relationship that another writer changed
    since it was read (another process on the same store: an agent's command
    line beside its server, or another vendor process on one database).
    Nothing of the unit was applied; decide it again on what the store holds now."""


class InboundConflict(StoreError):
    """A unit of work carried an inbound message whose (sender, id) is already
    stored (spec §9.3): nothing of the unit was applied.

    ``digest`` and ``receipt`` are those of the message on record, so the
    caller can tell an identical resend (same digest: answer with ``receipt``,
    spec §11.3) from a replay (another digest: refuse it).
    """

    def __init__(self, sender: str, message_id: str, digest: str, receipt: bytes | None) -> None:
        super().__init__(f"a message {message_id} from {sender} is already stored")
        self.sender = sender
        self.message_id = message_id
        self.digest = digest
        self.receipt = receipt


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message received or sent: the exact token, and what routes it.

    ``peer`` is the other party of the relationship it belongs to; ``at`` when
    it was stored (a protocol timestamp); ``expires`` its envelope's expiry.
    """

    sender: str
    message_id: str
    direction: Direction
    type: MessageType
    thread: str
    parent: str | None
    peer: str
    digest: str
    token: bytes
    at: str
    expires: str

    def model(self) -> Message:
        """The message as its model, read back from the stored token.

        The token is the agent's own evidence: verified when it was received,
        or signed by the agent itself. Its payload is parsed again, not verified
        again (the history of a relationship is its stored messages).

        Raises:
            RemoteProtocolError: the stored payload is not a message (a store
                that was tampered with).
        """
        try:
            payload = orjson.loads(b64url_decode(self.token.split(b".")[1]))
        except (IndexError, ValueError) as error:
            raise RemoteProtocolError(
                ErrorCode.MALFORMED_JSON, f"stored message {self.message_id} is unreadable"
            ) from error
        return parse_message_dict(payload)


@dataclass(frozen=True, slots=True)
class RelationshipRecord:
    """A relationship as the store holds it: the core and the runtime's few facts.

    Attributes:
        peer: the other party.
        core: the state machine's core (state, exit in force, accepted offer).
        thread: the latest thread the peer wrote in (vendors write only in
            threads the individual started, spec §5.2).
        reply_inbox: the ``replyTo`` inbox the peer last named, if any.
        deal_seen: a deal was made in this relationship at some time (the
            delivery budget of spec §11.8 is for relationships without one).
        delivery_failures: failed deliveries to the peer's addresses, counted
            while no deal was seen.
        version: how many units of work changed the relationship (1 or more), as
            read from the store; ``0`` for one the reader found absent; ``None``
            for a record not read at all (made by hand). A unit carrying a
            version commits only if the store still holds the relationship at
            that version, or still holds none for ``0``
            (:class:`StaleRelationship` otherwise): the guard against a lost
            update by another writer. Bookkeeping, not part of the record's
            value (not compared).
    """

    peer: str
    core: RelationshipCore
    thread: str | None = None
    reply_inbox: str | None = None
    deal_seen: bool = False
    delivery_failures: int = 0
    version: int | None = field(default=None, compare=False)


class DeliveryStatus(StrEnum):
    """Where an outbox entry stands."""

    #: To be POSTed to the inbox the addressee named.
    PENDING = "pending"
    DELIVERED = "delivered"
    #: Given up (or refused by the delivery policy): it waits in the mailbox.
    FAILED = "failed"
    #: Withdrawn (after an exit, spec §7.5): neither POSTed nor in the mailbox.
    CANCELLED = "cancelled"
    #: Never to be POSTed: the addressee named no inbox; it waits in the mailbox.
    MAILBOX = "mailbox"


@dataclass(frozen=True, slots=True)
class DeliveryStanding:
    """What the delivery budget of a relationship depends on (spec §11.8)."""

    deal_seen: bool
    failures: int


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A message sent, as the outbox holds it, with the standing of its relationship."""

    id: int
    peer: str
    message_id: str
    type: MessageType
    token: bytes
    inbox: str | None
    attempts: int
    next_attempt: float
    status: DeliveryStatus
    standing: DeliveryStanding = DeliveryStanding(False, 0)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How one delivery attempt of an outbox entry ended.

    Attributes:
        entry_id: the outbox entry.
        delivered_at: when the inbox took it (a protocol timestamp); ``None``
            when it did not.
        next_attempt: when to try again (wall time), if not ``final``.
        error: why it failed.
        final: give up (the message stays in the mailbox).
        attempted: a POST was made (false: refused without one).
        count_against: the peer whose delivery budget the failure spends.
    """

    entry_id: int
    delivered_at: str | None = None
    next_attempt: float = 0.0
    error: str | None = None
    final: bool = False
    attempted: bool = True
    count_against: str | None = None


@dataclass(frozen=True, slots=True)
class MailboxEntry:
    """A message waiting in a mailbox: its cursor (the outbox id) and token."""

    cursor: int
    token: bytes
    #: The inbox it was also POSTed to, if the message it answers named one.
    inbox: str | None


# -- the interface ---------------------------------------------------------------------------------


class ProtocolStore(Protocol):
    """The protocol records of one agent (see the module docstring).

    Every method may raise :class:`StoreUnavailable` (nothing applied) and,
    once the store is closed, :class:`StoreClosed`.
    """

    # -- the inbox pipeline --

    def exclusive(self, *keys: str) -> AbstractAsyncContextManager[None]:
        """Hold ``keys`` (``"p " + peer``, ``"t " + thread``, ``"m " + id``) against every
        other holder of any of them in every process serving this store, for the block.

        The pipeline reads a relationship, decides and commits one unit of work
        inside such a block (after taking the same keys in its own process), so
        two messages of one relationship are never decided on the same state,
        whichever processes receive them. A unit committed inside the block is
        committed before the keys are released. A store that only one process
        can serve (SQLite in a locked data directory, D10) holds nothing here:
        the pipeline's in-process locks already serialise everything.

        Raises:
            StoreUnavailable: the keys cannot be held now (nothing was done).
        """
        ...

    async def receipt_for_digest(self, digest: str) -> bytes | None:
        """The receipt given for the inbound message with this token digest."""
        ...

    async def inbound_digest(self, sender: str, message_id: str) -> str | None:
        """The digest of the inbound message (sender, id), if one was stored."""
        ...

    async def thread_peer(self, thread: str) -> str | None:
        """The peer whose relationship the thread belongs to, if the thread is known."""
        ...

    async def message_peers(self, message_id: str) -> frozenset[str]:
        """The peers of the relationships holding a message with this id (any sender)."""
        ...

    async def relationship(self, peer: str) -> RelationshipRecord | None:
        """The relationship with ``peer``, if there is one."""
        ...

    async def ledger_facts(self, peer: str, query: LedgerQuery, now: datetime) -> LedgerFacts:
        """Exactly the ledger records ``query`` names in the relationship with ``peer``:
        the offers and requests asked for by id (whatever their status), the
        offers of ``query.open_offers_of`` live at ``now``, and the open requests
        of ``query.open_requests_of``."""
        ...

    async def commit(self, unit: UnitOfWork) -> None:
        """Apply ``unit`` atomically and durably; return once it is committed.

        An implementation may commit it in a transaction shared with other
        units (group commit); it is still all or nothing on its own, and this
        returns only after the transaction holding it committed.

        Raises:
            InboundConflict: the unit's inbound (sender, id) is already stored.
            StaleRelationship: the unit's relationship carries a version and the
                store holds another (or, for a new one, already holds it).
            ConstraintViolation: another rule of the store was broken.
            StoreUnavailable: it cannot be written now.
        """
        ...

    # -- history and the ledger --

    async def message(self, sender: str, message_id: str) -> StoredMessage | None:
        """A stored message by its sender and id."""
        ...

    async def messages_of(self, peer: str) -> list[StoredMessage]:
        """Every message of the relationship with ``peer``, both ways, oldest first."""
        ...

    async def offers(self, peer: str) -> list[OfferRecord]:
        """Every offer record of the relationship, oldest first."""
        ...

    async def requests(self, peer: str) -> list[RequestRecord]:
        """Every request record of the relationship, oldest first."""
        ...

    # -- the outbox and the mailbox (D5, D6) --

    async def due_deliveries(self, now: float, limit: int = 20) -> list[OutboxEntry]:
        """Entries to POST whose attempt is due at wall time ``now``, oldest first,
        each with its relationship's standing; an entry waits while an older one
        for the same peer is still pending, so a peer receives its messages in
        the order they were made (and never two at once)."""
        ...

    async def next_delivery_at(self) -> float | None:
        """When the next of those entries is due (wall time), or ``None`` when none is."""
        ...

    async def delivery_standing(self, peer: str) -> DeliveryStanding:
        """Whether a deal was seen with ``peer``, and how many deliveries to it failed."""
        ...

    async def record_deliveries(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Record how delivery attempts ended, all in one unit of work: a delivered
        entry is done; a failed one is tried again at ``next_attempt``, or given
        up when ``final`` (it stays in the mailbox); ``count_against`` spends that
        peer's delivery budget."""
        ...

    async def mailbox(
        self, peer: str, after: int, now: str, limit: int = 50
    ) -> Sequence[MailboxEntry]:
        """Messages for ``peer`` after cursor ``after`` not expired at ``now``: every
        message sent, POSTed or not (spec §11.4), but none withdrawn."""
        ...

    # -- settings --

    async def setting(self, name: str) -> str | None:
        """A persisted agent setting."""
        ...

    async def set_setting(self, name: str, value: str) -> None:
        """Persist an agent setting."""
        ...

    async def close(self) -> None:
        """Write what is pending, then close."""
        ...
