"""The vendor's CRM store: a ``Protocol`` and its SQLite implementation.

What the store guarantees (ARCHITECTURE.md, "Stores"; spec §9.3, §11.3):

* every inbound message is stored with its raw token *before* it is
  acknowledged, and ``UNIQUE(sender, message_id)`` makes the table the
  durable replay guard: it survives restarts;
* an inbound message, its receipt, the relationship's new state, the
  business effects and the replies to deliver form **one** unit of work
  (a :class:`Commit`), applied all or nothing, and :meth:`VendorStore.commit`
  returns only once the transaction holding it is durable: nothing
  acknowledged is lost, nothing is half-applied;
* a unit whose inbound (sender, id) is already stored is refused with
  :class:`InboundConflict`, carrying what is on record, so the agent can
  answer an identical resend with the original receipt and refuse a replay.

How the SQLite implementation does it is its own business (a server database
behind the same interface would use its own transactions):

* **group commit**: one writer thread owns the write connection; it takes
  every pending unit of work (up to ``max_batch``), applies each inside its
  own ``SAVEPOINT`` (when it is not alone) of one ``BEGIN IMMEDIATE``
  transaction, commits once (one
  fsync for the whole group) and only then tells each waiter how its unit
  fared. A unit that fails is rolled back to its savepoint alone and its
  caller gets the error; the others commit. Under concurrency the cost of a
  durable commit is shared instead of paid once per message;
* reads use connections of their own, one per reading thread (WAL lets them
  read while the writer commits, and a reader never waits for the writer), so
  neither the event loop nor reads wait for an fsync. The point reads the
  agent makes for every inbound message (replay, receipt, thread,
  relationship: each one indexed row) run on the caller's thread: a hop to a
  pool thread and back costs more than such a read, and under load the hop
  also waits for the interpreter lock behind the event loop. Everything else
  reached through :meth:`SqliteVendorStore.call` (scans, writes that wait
  for a group commit) runs on a small thread pool.

The database runs in WAL mode with ``synchronous=FULL`` (a committed
transaction survives power loss) and enforced foreign keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson

__all__ = [
    "Commit",
    "ConsentRow",
    "DataRow",
    "DealRow",
    "DeletionRow",
    "DocumentRow",
    "ExitRow",
    "InboundConflict",
    "MessageRow",
    "OfferRow",
    "OutboxRow",
    "RelationshipRow",
    "SqliteVendorStore",
    "StoreUnavailable",
    "SuppressedRow",
    "VendorStore",
    "WriteStats",
]

T = TypeVar("T")


# -- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRow:
    """A message received or sent: the evidence (raw token) and the replay key."""

    sender: str
    message_id: str
    direction: str  # "in" | "out"
    type: str
    thread: str
    parent: str | None
    peer_id: str
    digest: str
    token: bytes
    at: str
    #: When the message expires (its envelope's ``expires``); kept for messages
    #: sent, which the mailbox serves until then.
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class RelationshipRow:
    """The vendor's relationship with one pseudonymous buyer."""

    peer_id: str
    state: str
    snapshot: dict[str, Any]
    exited: bool = False
    reengagement: dict[str, Any] | None = None
    notifications_allowed: tuple[str, ...] | None = None
    reply_inbox: str | None = None
    engagements: int = 1


@dataclass(frozen=True, slots=True)
class OfferRow:
    """An offer: ours (``made_by='vendor'``) or the buyer's counter-offer."""

    id: str
    peer_id: str
    thread: str
    basis: str
    status: str  # open | superseded | accepted | declined
    made_by: str  # vendor | buyer
    valid_until: str
    total_amount: str
    currency: str
    digest: str
    body: dict[str, Any]
    supersedes: str | None
    round: int
    created_at: str


@dataclass(frozen=True, slots=True)
class DealRow:
    """A closed deal. The identity the buyer disclosed at acceptance is kept here."""

    id: str
    peer_id: str
    offer_id: str
    acceptance_id: str
    total_amount: str
    currency: str
    identity: dict[str, Any]
    created_at: str


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A terms assertion or service notice we sent, to check answers against."""

    id: str
    kind: str  # terms-assertion | service-notice
    peer_id: str
    digest: str
    body: dict[str, Any]
    created_at: str


@dataclass(frozen=True, slots=True)
class ConsentRow:
    """One accepted data request of a terms response (or service response)."""

    peer_id: str
    item: str
    purposes: tuple[str, ...]
    retention: str
    retain_until: str
    source_message: str
    created_at: str


@dataclass(frozen=True, slots=True)
class DataRow:
    """One item of personal data held, with the purpose and deadline it is held under."""

    peer_id: str
    item: str
    value: Any
    purposes: tuple[str, ...]
    retain_until: str
    source_message: str
    created_at: str


@dataclass(frozen=True, slots=True)
class DeletionRow:
    """A deletion event: what was deleted, why, when."""

    peer_id: str
    item: str
    reason: str  # retention-expired | exit
    deleted_at: str


@dataclass(frozen=True, slots=True)
class ExitRow:
    """An exit: the notice, the export digest and the deletion receipt sent."""

    peer_id: str
    notice_id: str
    notice_digest: str
    export_digest: str | None
    deletion_receipt: dict[str, Any]
    acknowledgement_id: str
    created_at: str


@dataclass(frozen=True, slots=True)
class SuppressedRow:
    """A notice the vendor wanted to send but the individual's preferences forbid."""

    peer_id: str
    kind: str
    category: str
    reason: str
    created_at: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A message sent: in the mailbox until it expires, and delivered to ``inbox`` too
    when the message it answers named one."""

    id: int
    peer_id: str
    message_id: str
    type: str
    token: bytes
    inbox: str | None
    attempts: int
    next_attempt: float
    status: str  # pending | delivered | failed | cancelled | mailbox


@dataclass(slots=True)
class Commit:
    """Everything one event changes, applied atomically by :meth:`VendorStore.apply`.

    Order of application: prospects and relationship, messages (the inbound
    one first, with its receipt), offers and their status changes, deals,
    documents, exit deletions, consents and data, deletion events, exits,
    suppressed notices, outbox cancellations, then the new outbox rows.
    """

    relationship: RelationshipRow | None = None
    inbound: MessageRow | None = None
    receipt_token: bytes | None = None
    outbound: list[tuple[MessageRow, str | None]] = field(default_factory=list)
    offers: list[OfferRow] = field(default_factory=list)
    offer_status: list[tuple[str, str]] = field(default_factory=list)
    deals: list[DealRow] = field(default_factory=list)
    documents: list[DocumentRow] = field(default_factory=list)
    erase_peer_data: str | None = None
    consents: list[ConsentRow] = field(default_factory=list)
    data: list[DataRow] = field(default_factory=list)
    deletions: list[DeletionRow] = field(default_factory=list)
    exits: list[ExitRow] = field(default_factory=list)
    suppressed: list[SuppressedRow] = field(default_factory=list)
    cancel_outbox_for: str | None = None
    deliver_after: float = 0.0


class StoreUnavailable(Exception):
    """The store cannot be written (or read) now: its disk is full, it is
    read-only, another process holds it locked, an I/O error. Nothing of the
    work that failed was applied; the same work may succeed later (D11)."""


class InboundConflict(Exception):
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


# -- the interface ---------------------------------------------------------------------------


class VendorStore(Protocol):
    """What the agent needs from its store. Apart from :meth:`commit`, methods
    are synchronous; run them through :meth:`call` from asynchronous code."""

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` off the event loop and return its result."""
        ...

    async def commit(self, commit: Commit) -> None:
        """Apply ``commit`` atomically and durably; return once it is committed.

        The store may commit it in a transaction shared with other units of
        work (an implementation detail); it is still all or nothing on its own,
        and this returns only after the transaction holding it committed.

        Raises:
            InboundConflict: ``commit.inbound``'s (sender, id) is already stored
                (nothing applied).
            sqlite3.IntegrityError: another uniqueness or reference rule was
                broken (nothing applied).
        """
        ...

    def close(self) -> None:
        """Write what is pending, then close the database."""
        ...

    def apply(self, commit: Commit) -> None:
        """Blocking form of :meth:`commit` (for synchronous callers).

        Raises:
            InboundConflict: ``commit.inbound``'s (sender, id) is already stored
                (nothing applied).
            sqlite3.IntegrityError: another uniqueness or reference rule was
                broken (nothing applied).
        """
        ...

    def receipt_for_digest(self, digest: str) -> bytes | None:
        """The receipt given for the inbound message with this token digest."""
        ...

    def inbound_digest(self, sender: str, message_id: str) -> str | None:
        """The digest of the inbound message (sender, id), if one was stored."""
        ...

    def thread_peer(self, thread: str) -> str | None:
        """The peer whose relationship a thread belongs to, if the thread is known."""
        ...

    def message(self, message_id: str) -> MessageRow | None:
        """A stored message by id (either direction)."""
        ...

    def latest_inbound_thread(self, peer_id: str) -> str | None:
        """The thread of the latest message received from ``peer_id``."""
        ...

    def relationship(self, peer_id: str) -> RelationshipRow | None:
        """The relationship with ``peer_id``."""
        ...

    def offer(self, offer_id: str) -> OfferRow | None:
        """An offer by id."""
        ...

    def offers_for(self, peer_id: str) -> list[OfferRow]:
        """Every offer in the relationship, oldest first."""
        ...

    def deals_for(self, peer_id: str) -> list[DealRow]:
        """Every deal with ``peer_id``."""
        ...

    def document(self, document_id: str) -> DocumentRow | None:
        """A terms assertion or service notice we sent."""
        ...

    def consents_for(self, peer_id: str) -> list[ConsentRow]:
        """The consents in force."""
        ...

    def data_for(self, peer_id: str) -> list[DataRow]:
        """The personal data held."""
        ...

    def deletions_for(self, peer_id: str) -> list[DeletionRow]:
        """Every deletion recorded for ``peer_id``, oldest first."""
        ...

    def sweep_retention(self, now: str) -> list[DeletionRow]:
        """Delete data and consents whose retention ended at or before ``now``."""
        ...

    def due_outbox(self, now: float, limit: int = 20) -> list[OutboxRow]:
        """Pending deliveries due at ``now`` (seconds since the epoch), oldest first."""
        ...

    def mark_delivered(self, row_id: int, at: str) -> None:
        """Record a successful delivery."""
        ...

    def mark_retry(
        self,
        row_id: int,
        next_attempt: float,
        error: str,
        final: bool,
        *,
        attempted: bool = True,
        peer_id: str | None = None,
    ) -> None:
        """Record a failed (or refused, ``attempted`` false) delivery (``final``: give
        up; the message stays in the mailbox); ``peer_id`` counts it against that
        relationship's delivery budget."""
        ...

    def delivery_standing(self, peer_id: str) -> tuple[bool, int]:
        """Whether ``peer_id`` holds a deal, and how many deliveries to it failed."""
        ...

    def mailbox(self, peer_id: str, after: int, now: str, limit: int = 50) -> list[OutboxRow]:
        """Messages kept for ``peer_id`` with an outbox id greater than ``after``,
        unexpired at ``now``."""
        ...

    def get_setting(self, name: str) -> str | None:
        """A persisted agent setting."""
        ...

    def set_setting(self, name: str, value: str) -> None:
        """Persist an agent setting."""
        ...

    def summary(self) -> dict[str, Any]:
        """A deterministic JSON summary of relationships, offers, data and deletions."""
        ...


# -- SQLite ----------------------------------------------------------------------------------

#: Each migration is applied once, in order, and recorded in ``schema_migrations``.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE prospects (
        party_id TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL
    );
    CREATE TABLE relationships (
        peer_id TEXT PRIMARY KEY REFERENCES prospects(party_id),
        state TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        exited INTEGER NOT NULL DEFAULT 0,
        reengagement TEXT,
        notifications_allowed TEXT,
        reply_inbox TEXT,
        engagements INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE messages (
        pk INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        type TEXT NOT NULL,
        thread TEXT NOT NULL,
        parent TEXT,
        peer_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        token BLOB NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (sender, message_id)
    );
    CREATE INDEX messages_digest ON messages (digest);
    CREATE INDEX messages_id ON messages (message_id);
    CREATE INDEX messages_thread ON messages (thread);
    CREATE INDEX messages_peer ON messages (peer_id, direction);
    CREATE TABLE receipts (
        message_pk INTEGER PRIMARY KEY REFERENCES messages(pk),
        token BLOB NOT NULL
    );
    CREATE TABLE offers (
        id TEXT PRIMARY KEY,
        peer_id TEXT NOT NULL,
        thread TEXT NOT NULL,
        basis TEXT NOT NULL,
        status TEXT NOT NULL,
        made_by TEXT NOT NULL,
        valid_until TEXT NOT NULL,
        total_amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        digest TEXT NOT NULL,
        body TEXT NOT NULL,
        supersedes TEXT,
        round INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX offers_peer ON offers (peer_id);
    CREATE TABLE deals (
        id TEXT PRIMARY KEY,
        peer_id TEXT NOT NULL,
        offer_id TEXT NOT NULL REFERENCES offers(id),
        acceptance_id TEXT NOT NULL,
        total_amount TEXT NOT NULL,
        currency TEXT NOT NULL,
        identity TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE documents (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        peer_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE consents (
        pk INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        item TEXT NOT NULL,
        purposes TEXT NOT NULL,
        retention TEXT NOT NULL,
        retain_until TEXT NOT NULL,
        source_message TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX consents_peer ON consents (peer_id);
    CREATE TABLE data_held (
        pk INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        item TEXT NOT NULL,
        value TEXT NOT NULL,
        purposes TEXT NOT NULL,
        retain_until TEXT NOT NULL,
        source_message TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (peer_id, item)
    );
    CREATE TABLE deletions (
        pk INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        item TEXT NOT NULL,
        reason TEXT NOT NULL,
        deleted_at TEXT NOT NULL
    );
    CREATE TABLE exits (
        pk INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        notice_id TEXT NOT NULL,
        notice_digest TEXT NOT NULL,
        export_digest TEXT,
        deletion_receipt TEXT NOT NULL,
        acknowledgement_id TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE suppressed_notices (
        pk INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        category TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        peer_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        type TEXT NOT NULL,
        token BLOB NOT NULL,
        inbox TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        status TEXT NOT NULL,
        last_error TEXT,
        delivered_at TEXT
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt);
    CREATE INDEX outbox_peer ON outbox (peer_id, id);
    """,
    # 2: every message sent stays in the addressee's mailbox until it expires,
    # delivered to a replyTo inbox or not (spec §11.4, VRM-HTTP-010); rows
    # written before have no expiry recorded and stay.
    """
    ALTER TABLE outbox ADD COLUMN expires TEXT;
    """,
    # 3: failed delivery attempts per relationship, the budget of a relationship
    # whose peer holds no deal yet (spec §11.8).
    """
    ALTER TABLE relationships ADD COLUMN delivery_failures INTEGER NOT NULL DEFAULT 0;
    """,
)


def _statement(sql: str, params: Sequence[Any]) -> Callable[[sqlite3.Connection], None]:
    """A unit of work of one statement (its cursor stays on the writer's thread)."""

    def run(conn: sqlite3.Connection) -> None:
        conn.execute(sql, params)

    return run


def _dumps(value: Any) -> str:
    """Compact JSON with sorted members, for a TEXT column (read back with ``json.loads``)."""
    try:
        # orjson does the writer's most frequent work (snapshots, bodies) several
        # times faster, and the writer holds the interpreter lock while it runs.
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        # What orjson refuses (an integer beyond 64 bits, a subclass it does not
        # know) the standard library still writes, as before.
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class WriteStats:
    """What the SQLite store's writer has done since it opened (figures for
    operators and benchmarks; units include failed ones)."""

    transactions: int
    units: int
    largest_batch: int


@dataclass(slots=True)
class _UnitOfWork:
    """One caller's writes, applied by the writer inside its own savepoint."""

    work: Callable[[sqlite3.Connection], Any]
    outcome: Future[Any]


#: Seconds a statement waits for a lock another connection holds before it
#: fails (``database is locked``).
DEFAULT_BUSY_TIMEOUT = 5.0
#: Units of work applied in one transaction at most (bounds how long a batch
#: holds the write lock, and so the latency of the last unit in it).
DEFAULT_MAX_BATCH = 64
#: Threads that run :meth:`SqliteVendorStore.call` for what is not a point read:
#: a blocking write waits for its group commit there without stalling reads.
CALL_THREADS = 2
#: The reads :meth:`SqliteVendorStore.call` runs on the caller's thread: each
#: fetches at most one row through a primary key or an index, so it costs
#: tens of microseconds, never waits for the writer (WAL), and never blocks.
INLINE_READS = frozenset(
    {
        "receipt_for_digest",
        "inbound_digest",
        "thread_peer",
        "message",
        "latest_inbound_thread",
        "relationship",
        "offer",
        "document",
        "get_setting",
        "delivery_standing",
    }
)


def _private(path: Path) -> None:
    """Create ``path`` if missing and make it mode 0600."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    connection = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout
    )
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


class SqliteVendorStore:
    """The SQLite implementation of :class:`VendorStore`, with group commit.

    Every write (a :class:`Commit`, a delivery mark, a retention sweep, a
    setting) is a unit of work for the one writer thread, which commits the
    units waiting for it together: see the module docstring.

    Args:
        path: the database file (created with its schema on first use).
        max_batch: the most units of work committed in one transaction.
        busy_timeout: seconds to wait for a lock held by another connection.

    Raises:
        ValueError: ``max_batch`` is below 1.
        sqlite3.Error: the database cannot be opened or migrated.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch is at least 1")
        self.path = path
        self.max_batch = max_batch
        path.parent.mkdir(parents=True, exist_ok=True)
        # The store holds customers' data: 0600 whatever the umask (D10). SQLite
        # gives its -wal and -shm files the database file's mode; older ones are
        # brought in line too.
        for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if name == path or name.exists():
                _private(name)
        # The write connection belongs to the writer thread once it runs; the
        # migration runs on it first, before anything else can write.
        self.busy_timeout = busy_timeout
        self._conn = _connect(path, busy_timeout)
        self._migrate()
        # One read connection per reading thread (a connection is not for two
        # threads at once); all are closed with the store.
        self._thread_readers = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._readers_closed = False
        self._executor = ThreadPoolExecutor(
            max_workers=CALL_THREADS, thread_name_prefix="vendor-store"
        )
        self._queue: deque[_UnitOfWork] = deque()
        self._queue_changed = threading.Condition()
        self._closing = False
        self._closed = False
        self._stats = WriteStats(0, 0, 0)
        self._writer = threading.Thread(
            target=self._write_forever, name="vendor-store-writer", daemon=True
        )
        self._writer.start()

    # -- plumbing --

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on one of the store's threads (off the event loop).

        Raises:
            StoreUnavailable: SQLite could not do it now (disk full, read-only,
                locked, I/O error); nothing was applied.
        """
        try:
            if getattr(function, "__self__", None) is self and function.__name__ in INLINE_READS:
                # An indexed point read: cheaper here than the round trip to a thread.
                return function(*args)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, lambda: function(*args))
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(str(error)) from error

    async def commit(self, commit: Commit) -> None:
        """Apply ``commit`` in the writer's next transaction; return once it committed.

        Raises:
            InboundConflict: ``commit.inbound``'s (sender, id) is already stored
                (nothing applied).
            sqlite3.IntegrityError: another uniqueness or reference rule was
                broken (nothing applied).
            StoreUnavailable: the store cannot be written now (disk full,
                read-only, locked, I/O error); nothing of it applied.
            sqlite3.Error: the transaction failed otherwise (nothing of it applied).
            RuntimeError: the store is closed.
        """
        try:
            await self._outcome(self._submit(partial(self._apply_commit, commit=commit)))
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(str(error)) from error

    def close(self) -> None:
        """Let the callers in flight finish, write every unit still queued, then
        close both connections and stop the store's threads."""
        if self._closed:
            return
        self._closed = True
        # Calls in flight may be waiting for the writer: it keeps running until they are done.
        self._executor.shutdown(wait=True)
        with self._queue_changed:
            self._closing = True
            self._queue_changed.notify_all()
        self._writer.join()
        self._conn.close()
        with self._readers_lock:
            self._readers_closed = True
            for reader in self._readers:
                reader.close()
            self._readers.clear()

    def write_stats(self) -> WriteStats:
        """How many transactions and units of work the writer has committed."""
        return self._stats

    def _submit(self, work: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue ``work`` for the writer; its future resolves after the commit.

        Raises:
            RuntimeError: the store is closed.
        """
        outcome: Future[T] = Future()
        with self._queue_changed:
            if self._closing:
                raise RuntimeError("the vendor store is closed")
            self._queue.append(_UnitOfWork(work, outcome))
            self._queue_changed.notify()
        return outcome

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Queue ``work`` and block until the transaction holding it committed.

        Raises:
            Exception: whatever ``work`` or the transaction raised.
        """
        if threading.current_thread() is self._writer:
            raise RuntimeError("the writer cannot wait for itself")
        return self._submit(work).result()

    @staticmethod
    async def _outcome(outcome: Future[T]) -> T:
        waiter = asyncio.wrap_future(outcome)
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not outcome.cancel():
                # Its transaction is under way: hold the caller (and the locks it
                # holds) until the unit's fate is decided, so no one reads the
                # relationship before it (spec §11.3: no half-known state).
                await asyncio.wait([waiter])
                if not waiter.cancelled():
                    waiter.exception()  # retrieved: its caller is gone
            raise

    def _write_forever(self) -> None:
        """The writer: take what is queued, commit it as one group, repeat."""
        while True:
            with self._queue_changed:
                while not self._queue and not self._closing:
                    self._queue_changed.wait()
                if not self._queue:
                    return  # closing, and everything submitted was written
                batch: list[_UnitOfWork] = []
                while self._queue and len(batch) < self.max_batch:
                    unit = self._queue.popleft()
                    # A unit whose caller gave up before it was taken is dropped;
                    # once taken it can no longer be cancelled.
                    if unit.outcome.set_running_or_notify_cancel():
                        batch.append(unit)
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[_UnitOfWork]) -> None:
        """Apply ``batch`` in one transaction, each unit in its own savepoint
        (a unit alone in the batch needs none), commit once, then resolve
        every unit's future."""
        conn = self._conn
        results: list[tuple[Any, BaseException | None]] = []
        # A unit alone in its transaction needs no savepoint: the transaction is
        # its all or nothing. (Every statement releases the interpreter lock and
        # must win it back from the event loop, so the two saved are worth it.)
        alone = len(batch) == 1
        try:
            conn.execute("BEGIN IMMEDIATE")
            for unit in batch:
                if not alone:
                    conn.execute("SAVEPOINT unit_of_work")
                try:
                    value = unit.work(conn)
                except Exception as error:
                    if not conn.in_transaction:
                        # SQLite rolled back the whole transaction (e.g. disk
                        # full, I/O error): every unit before this one is gone too.
                        raise
                    # This unit alone is undone; the others stay (all or nothing per unit).
                    if alone:
                        conn.execute("ROLLBACK")
                    else:
                        conn.execute("ROLLBACK TO unit_of_work")
                        conn.execute("RELEASE unit_of_work")
                    results.append((None, error))
                else:
                    if not alone:
                        conn.execute("RELEASE unit_of_work")
                    results.append((value, None))
            if conn.in_transaction:
                conn.execute("COMMIT")
        except BaseException as error:
            # Nothing of this transaction is durable: every unit in it failed.
            with suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            for unit in batch:
                unit.outcome.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        self._stats = WriteStats(
            self._stats.transactions + 1,
            self._stats.units + len(batch),
            max(self._stats.largest_batch, len(batch)),
        )
        # Only now, after COMMIT returned, is any unit's outcome known to its
        # caller: a 202 (or the 200 of a duplicate in this very batch) never
        # runs ahead of the fsync that makes it true (spec §11.3).
        for unit, (value, failure) in zip(batch, results, strict=True):
            if failure is None:
                unit.outcome.set_result(value)
            else:
                unit.outcome.set_exception(failure)

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that see one committed state (a read transaction)."""
        reader = self._reader()
        reader.execute("BEGIN")
        try:
            yield
        finally:
            reader.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on its first read).

        Raises:
            RuntimeError: the store is closed.
        """
        if self._readers_closed:
            raise RuntimeError("the vendor store is closed")
        reader: sqlite3.Connection | None = getattr(self._thread_readers, "connection", None)
        if reader is None:
            with self._readers_lock:
                if self._readers_closed:
                    raise RuntimeError("the vendor store is closed")
                reader = _connect(self.path, self.busy_timeout)
                self._readers.append(reader)
            self._thread_readers.connection = reader
        return reader

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._reader().execute(sql, params).fetchall()

    def _migrate(self) -> None:
        conn = self._conn
        with suppress(sqlite3.OperationalError):  # no table yet: a new store
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            if applied >= set(range(1, len(MIGRATIONS) + 1)):
                # Nothing to write: a store that cannot be written now (read-only,
                # disk full) still opens, and serves what needs no write (D11).
                return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, script in enumerate(MIGRATIONS, start=1):
                if version in applied:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", (version,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_version(self) -> int:
        """The highest migration applied."""
        rows = self._query("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    # -- writes --

    def apply(self, commit: Commit) -> None:
        """Apply ``commit`` and block until the transaction holding it committed.

        Raises:
            InboundConflict: ``commit.inbound``'s (sender, id) is already stored
                (nothing applied).
            sqlite3.IntegrityError: another uniqueness or reference rule was
                broken (nothing applied).
            sqlite3.Error: the transaction failed (nothing of it applied).
            RuntimeError: the store is closed.
        """
        self._write(partial(self._apply_commit, commit=commit))

    def _apply_commit(self, conn: sqlite3.Connection, commit: Commit) -> None:
        """Write ``commit`` on ``conn`` (inside the writer's savepoint for it)."""
        if commit.inbound is not None:
            # spec §9.3: the store is the replay guard of record: UNIQUE (sender,
            # message_id), checked inside the transaction, so it sees earlier
            # units of the same batch too. The inbound message goes first, so a
            # conflict is found before anything else of the unit is written.
            try:
                pk = self._insert_message(conn, commit.inbound)
            except sqlite3.IntegrityError:
                stored = conn.execute(
                    "SELECT m.digest, r.token FROM messages m"
                    " LEFT JOIN receipts r ON r.message_pk = m.pk"
                    " WHERE m.sender = ? AND m.message_id = ?",
                    (commit.inbound.sender, commit.inbound.message_id),
                ).fetchone()
                if stored is None:
                    raise  # another rule of the table was broken
                raise InboundConflict(
                    commit.inbound.sender,
                    commit.inbound.message_id,
                    str(stored[0]),
                    None if stored[1] is None else bytes(stored[1]),
                ) from None
            if commit.receipt_token is not None:
                conn.execute(
                    "INSERT INTO receipts (message_pk, token) VALUES (?, ?)",
                    (pk, commit.receipt_token),
                )
        if commit.relationship is not None:
            self._upsert_relationship(conn, commit.relationship)
        for offer in commit.offers:
            conn.execute(
                "INSERT INTO offers (id, peer_id, thread, basis, status, made_by, valid_until,"
                " total_amount, currency, digest, body, supersedes, round, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    offer.id,
                    offer.peer_id,
                    offer.thread,
                    offer.basis,
                    offer.status,
                    offer.made_by,
                    offer.valid_until,
                    offer.total_amount,
                    offer.currency,
                    offer.digest,
                    _dumps(offer.body),
                    offer.supersedes,
                    offer.round,
                    offer.created_at,
                ),
            )
        for offer_id, status in commit.offer_status:
            conn.execute("UPDATE offers SET status = ? WHERE id = ?", (status, offer_id))
        for deal in commit.deals:
            conn.execute(
                "INSERT INTO deals (id, peer_id, offer_id, acceptance_id, total_amount,"
                " currency, identity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    deal.id,
                    deal.peer_id,
                    deal.offer_id,
                    deal.acceptance_id,
                    deal.total_amount,
                    deal.currency,
                    _dumps(deal.identity),
                    deal.created_at,
                ),
            )
        for document in commit.documents:
            conn.execute(
                "INSERT INTO documents (id, kind, peer_id, digest, body, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    document.id,
                    document.kind,
                    document.peer_id,
                    document.digest,
                    _dumps(document.body),
                    document.created_at,
                ),
            )
        if commit.erase_peer_data is not None:
            # Spec §6.14: deletion happens in the same transaction as the
            # acknowledgement that receipts it.
            conn.execute("DELETE FROM data_held WHERE peer_id = ?", (commit.erase_peer_data,))
            conn.execute("DELETE FROM consents WHERE peer_id = ?", (commit.erase_peer_data,))
        for consent in commit.consents:
            conn.execute(
                "INSERT INTO consents (peer_id, item, purposes, retention, retain_until,"
                " source_message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    consent.peer_id,
                    consent.item,
                    _dumps(list(consent.purposes)),
                    consent.retention,
                    consent.retain_until,
                    consent.source_message,
                    consent.created_at,
                ),
            )
        for data in commit.data:
            conn.execute(
                "INSERT INTO data_held (peer_id, item, value, purposes, retain_until,"
                " source_message, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (peer_id, item) DO UPDATE SET value = excluded.value,"
                " purposes = excluded.purposes, retain_until = excluded.retain_until,"
                " source_message = excluded.source_message, created_at = excluded.created_at",
                (
                    data.peer_id,
                    data.item,
                    _dumps(data.value),
                    _dumps(list(data.purposes)),
                    data.retain_until,
                    data.source_message,
                    data.created_at,
                ),
            )
        for deletion in commit.deletions:
            self._insert_deletion(conn, deletion)
        for exit_row in commit.exits:
            conn.execute(
                "INSERT INTO exits (peer_id, notice_id, notice_digest, export_digest,"
                " deletion_receipt, acknowledgement_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    exit_row.peer_id,
                    exit_row.notice_id,
                    exit_row.notice_digest,
                    exit_row.export_digest,
                    _dumps(exit_row.deletion_receipt),
                    exit_row.acknowledgement_id,
                    exit_row.created_at,
                ),
            )
        for suppressed in commit.suppressed:
            conn.execute(
                "INSERT INTO suppressed_notices (peer_id, kind, category, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    suppressed.peer_id,
                    suppressed.kind,
                    suppressed.category,
                    suppressed.reason,
                    suppressed.created_at,
                ),
            )
        if commit.cancel_outbox_for is not None:
            conn.execute(
                "UPDATE outbox SET status = 'cancelled' WHERE peer_id = ?"
                " AND status IN ('pending', 'mailbox')",
                (commit.cancel_outbox_for,),
            )
        now = time.time()
        for message, inbox in commit.outbound:
            self._insert_message(conn, message)
            conn.execute(
                "INSERT INTO outbox (peer_id, message_id, type, token, inbox, next_attempt,"
                " status, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.peer_id,
                    message.message_id,
                    message.type,
                    message.token,
                    inbox,
                    now + commit.deliver_after,
                    "pending" if inbox else "mailbox",
                    message.expires,
                ),
            )

    @staticmethod
    def _upsert_relationship(conn: sqlite3.Connection, row: RelationshipRow) -> None:
        conn.execute(
            "INSERT INTO prospects (party_id, first_seen) VALUES (?, CURRENT_TIMESTAMP)"
            " ON CONFLICT (party_id) DO NOTHING",
            (row.peer_id,),
        )
        conn.execute(
            "INSERT INTO relationships (peer_id, state, snapshot, exited, reengagement,"
            " notifications_allowed, reply_inbox, engagements) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (peer_id) DO UPDATE SET state = excluded.state,"
            " snapshot = excluded.snapshot, exited = excluded.exited,"
            " reengagement = excluded.reengagement,"
            " notifications_allowed = excluded.notifications_allowed,"
            " reply_inbox = excluded.reply_inbox, engagements = excluded.engagements",
            (
                row.peer_id,
                row.state,
                _dumps(row.snapshot),
                int(row.exited),
                None if row.reengagement is None else _dumps(row.reengagement),
                None
                if row.notifications_allowed is None
                else _dumps(list(row.notifications_allowed)),
                row.reply_inbox,
                row.engagements,
            ),
        )

    @staticmethod
    def _insert_message(conn: sqlite3.Connection, row: MessageRow) -> int:
        cursor = conn.execute(
            "INSERT INTO messages (sender, message_id, direction, type, thread, parent, peer_id,"
            " digest, token, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.sender,
                row.message_id,
                row.direction,
                row.type,
                row.thread,
                row.parent,
                row.peer_id,
                row.digest,
                row.token,
                row.at,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @staticmethod
    def _insert_deletion(conn: sqlite3.Connection, row: DeletionRow) -> None:
        conn.execute(
            "INSERT INTO deletions (peer_id, item, reason, deleted_at) VALUES (?, ?, ?, ?)",
            (row.peer_id, row.item, row.reason, row.deleted_at),
        )

    def sweep_retention(self, now: str) -> list[DeletionRow]:
        """Delete data held and consents whose retention ended at or before ``now``
        (spec §12: data is kept no longer than the accepted retention), recording
        one deletion event per data item, in one unit of work.

        Raises:
            sqlite3.Error: the transaction failed (nothing deleted).
        """

        def sweep(conn: sqlite3.Connection) -> list[DeletionRow]:
            deleted: list[DeletionRow] = []
            rows = conn.execute(
                "SELECT peer_id, item FROM data_held WHERE retain_until <= ? ORDER BY pk", (now,)
            ).fetchall()
            for row in rows:
                deletion = DeletionRow(row["peer_id"], row["item"], "retention-expired", now)
                self._insert_deletion(conn, deletion)
                deleted.append(deletion)
            conn.execute("DELETE FROM data_held WHERE retain_until <= ?", (now,))
            conn.execute("DELETE FROM consents WHERE retain_until <= ?", (now,))
            return deleted

        return self._write(sweep)

    def mark_delivered(self, row_id: int, at: str) -> None:
        """Record a successful delivery.

        Raises:
            sqlite3.Error: the transaction failed.
        """
        self._write(
            _statement(
                "UPDATE outbox SET status = 'delivered', delivered_at = ?,"
                " attempts = attempts + 1 WHERE id = ?",
                (at, row_id),
            )
        )

    def mark_retry(
        self,
        row_id: int,
        next_attempt: float,
        error: str,
        final: bool,
        *,
        attempted: bool = True,
        peer_id: str | None = None,
    ) -> None:
        """Record a failed delivery attempt (or, ``attempted`` false, a delivery not
        attempted at all); ``final`` gives up on the row (it stays in the
        mailbox). ``peer_id`` counts the failure against that relationship's
        delivery budget, in the same transaction.

        Raises:
            sqlite3.Error: the transaction failed.
        """

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + ?, next_attempt = ?, last_error = ?,"
                " status = CASE WHEN ? THEN 'failed' ELSE status END WHERE id = ?",
                (int(attempted), next_attempt, error[:500], int(final), row_id),
            )
            if peer_id is not None:
                conn.execute(
                    "UPDATE relationships SET delivery_failures = delivery_failures + 1"
                    " WHERE peer_id = ?",
                    (peer_id,),
                )

        self._write(record)

    def delivery_standing(self, peer_id: str) -> tuple[bool, int]:
        """Whether ``peer_id`` holds a deal with the vendor, and how many deliveries
        to it have failed (the budget of spec §11.8)."""
        rows = self._query(
            "SELECT r.delivery_failures, EXISTS (SELECT 1 FROM deals d WHERE d.peer_id = ?)"
            " FROM relationships r WHERE r.peer_id = ?",
            (peer_id, peer_id),
        )
        if not rows:
            return False, 0
        return bool(rows[0][1]), int(rows[0][0])

    def get_setting(self, name: str) -> str | None:
        """A persisted agent setting."""
        rows = self._query("SELECT value FROM settings WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set_setting(self, name: str, value: str) -> None:
        """Persist an agent setting.

        Raises:
            sqlite3.Error: the transaction failed.
        """
        self._write(
            _statement(
                "INSERT INTO settings (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
        )

    # -- reads --

    def receipt_for_digest(self, digest: str) -> bytes | None:
        """The receipt given for the inbound message whose token has this digest."""
        rows = self._query(
            "SELECT r.token FROM messages m JOIN receipts r ON r.message_pk = m.pk"
            " WHERE m.digest = ? AND m.direction = 'in' LIMIT 1",
            (digest,),
        )
        return bytes(rows[0][0]) if rows else None

    def inbound_digest(self, sender: str, message_id: str) -> str | None:
        """The digest of the stored inbound message (sender, id), if any."""
        rows = self._query(
            "SELECT digest FROM messages WHERE sender = ? AND message_id = ?",
            (sender, message_id),
        )
        return str(rows[0][0]) if rows else None

    def thread_peer(self, thread: str) -> str | None:
        """The peer of the relationship the thread belongs to, if the thread is known."""
        rows = self._query(
            "SELECT peer_id FROM messages WHERE message_id = ? OR thread = ? ORDER BY pk LIMIT 1",
            (thread, thread),
        )
        return str(rows[0][0]) if rows else None

    def message(self, message_id: str) -> MessageRow | None:
        """A stored message by id."""
        rows = self._query(
            "SELECT * FROM messages WHERE message_id = ? ORDER BY pk LIMIT 1", (message_id,)
        )
        if not rows:
            return None
        row = rows[0]
        return MessageRow(
            row["sender"],
            row["message_id"],
            row["direction"],
            row["type"],
            row["thread"],
            row["parent"],
            row["peer_id"],
            row["digest"],
            bytes(row["token"]),
            row["at"],
        )

    def latest_inbound_thread(self, peer_id: str) -> str | None:
        """The thread of the latest message received from ``peer_id``."""
        rows = self._query(
            "SELECT thread FROM messages WHERE peer_id = ? AND direction = 'in'"
            " ORDER BY pk DESC LIMIT 1",
            (peer_id,),
        )
        return str(rows[0][0]) if rows else None

    def relationship(self, peer_id: str) -> RelationshipRow | None:
        """The relationship with ``peer_id``."""
        rows = self._query("SELECT * FROM relationships WHERE peer_id = ?", (peer_id,))
        if not rows:
            return None
        row = rows[0]
        allowed = row["notifications_allowed"]
        return RelationshipRow(
            peer_id=row["peer_id"],
            state=row["state"],
            snapshot=json.loads(row["snapshot"]),
            exited=bool(row["exited"]),
            reengagement=None if row["reengagement"] is None else json.loads(row["reengagement"]),
            notifications_allowed=None if allowed is None else tuple(json.loads(allowed)),
            reply_inbox=row["reply_inbox"],
            engagements=int(row["engagements"]),
        )

    @staticmethod
    def _offer(row: sqlite3.Row) -> OfferRow:
        return OfferRow(
            id=row["id"],
            peer_id=row["peer_id"],
            thread=row["thread"],
            basis=row["basis"],
            status=row["status"],
            made_by=row["made_by"],
            valid_until=row["valid_until"],
            total_amount=row["total_amount"],
            currency=row["currency"],
            digest=row["digest"],
            body=json.loads(row["body"]),
            supersedes=row["supersedes"],
            round=int(row["round"]),
            created_at=row["created_at"],
        )

    def offer(self, offer_id: str) -> OfferRow | None:
        """An offer by id."""
        rows = self._query("SELECT * FROM offers WHERE id = ?", (offer_id,))
        return self._offer(rows[0]) if rows else None

    def offers_for(self, peer_id: str) -> list[OfferRow]:
        """Every offer in the relationship with ``peer_id``, oldest first."""
        rows = self._query("SELECT * FROM offers WHERE peer_id = ? ORDER BY rowid", (peer_id,))
        return [self._offer(row) for row in rows]

    def deals_for(self, peer_id: str) -> list[DealRow]:
        """Every deal with ``peer_id``, oldest first."""
        rows = self._query("SELECT * FROM deals WHERE peer_id = ? ORDER BY rowid", (peer_id,))
        return [
            DealRow(
                row["id"],
                row["peer_id"],
                row["offer_id"],
                row["acceptance_id"],
                row["total_amount"],
                row["currency"],
                json.loads(row["identity"]),
                row["created_at"],
            )
            for row in rows
        ]

    def document(self, document_id: str) -> DocumentRow | None:
        """A terms assertion or service notice we sent."""
        rows = self._query("SELECT * FROM documents WHERE id = ?", (document_id,))
        if not rows:
            return None
        row = rows[0]
        return DocumentRow(
            row["id"],
            row["kind"],
            row["peer_id"],
            row["digest"],
            json.loads(row["body"]),
            row["created_at"],
        )

    def consents_for(self, peer_id: str) -> list[ConsentRow]:
        """The consents in force for ``peer_id``."""
        rows = self._query("SELECT * FROM consents WHERE peer_id = ? ORDER BY pk", (peer_id,))
        return [
            ConsentRow(
                row["peer_id"],
                row["item"],
                tuple(json.loads(row["purposes"])),
                row["retention"],
                row["retain_until"],
                row["source_message"],
                row["created_at"],
            )
            for row in rows
        ]

    def data_for(self, peer_id: str) -> list[DataRow]:
        """The personal data held about ``peer_id``."""
        rows = self._query("SELECT * FROM data_held WHERE peer_id = ? ORDER BY item", (peer_id,))
        return [
            DataRow(
                row["peer_id"],
                row["item"],
                json.loads(row["value"]),
                tuple(json.loads(row["purposes"])),
                row["retain_until"],
                row["source_message"],
                row["created_at"],
            )
            for row in rows
        ]

    def deletions_for(self, peer_id: str) -> list[DeletionRow]:
        """Every deletion recorded for ``peer_id``, oldest first."""
        rows = self._query("SELECT * FROM deletions WHERE peer_id = ? ORDER BY pk", (peer_id,))
        return [
            DeletionRow(row["peer_id"], row["item"], row["reason"], row["deleted_at"])
            for row in rows
        ]

    @staticmethod
    def _outbox(row: sqlite3.Row) -> OutboxRow:
        return OutboxRow(
            int(row["id"]),
            row["peer_id"],
            row["message_id"],
            row["type"],
            bytes(row["token"]),
            row["inbox"],
            int(row["attempts"]),
            float(row["next_attempt"]),
            row["status"],
        )

    def due_outbox(self, now: float, limit: int = 20) -> list[OutboxRow]:
        """Pending deliveries due at ``now``, oldest first.

        A row is held back while an older row for the same peer is still
        pending, so a peer receives its replies in the order they were made
        (a deal confirmation before the terms assertion that follows it).
        """
        rows = self._query(
            "SELECT * FROM outbox o WHERE o.status = 'pending' AND o.next_attempt <= ?"
            " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.peer_id = o.peer_id"
            " AND p.status = 'pending' AND p.id < o.id) ORDER BY o.id LIMIT ?",
            (now, limit),
        )
        return [self._outbox(row) for row in rows]

    def mailbox(self, peer_id: str, after: int, now: str, limit: int = 50) -> list[OutboxRow]:
        """Messages for ``peer_id`` after outbox id ``after`` that have not expired at
        ``now`` (a protocol timestamp): every message sent, whether it was also
        delivered to an inbox or not (spec §11.4, VRM-HTTP-010), but none whose
        sending was cancelled (after an exit, spec §7.5)."""
        rows = self._query(
            "SELECT * FROM outbox WHERE peer_id = ? AND id > ? AND status != 'cancelled'"
            " AND (expires IS NULL OR expires > ?) ORDER BY id LIMIT ?",
            (peer_id, after, now, limit),
        )
        return [self._outbox(row) for row in rows]

    def outbox_for(self, peer_id: str) -> list[OutboxRow]:
        """Every outbox row for ``peer_id`` (any status), oldest first."""
        rows = self._query("SELECT * FROM outbox WHERE peer_id = ? ORDER BY id", (peer_id,))
        return [self._outbox(row) for row in rows]

    def summary(self) -> dict[str, Any]:
        """A deterministic summary for the test driver's ``GET /state`` (spec §14.3).

        It holds no wall-clock readings and no delivery progress, so it changes
        only when a message is processed or data is deleted: the suite compares
        it before and after a rejected message. It is read in one read
        transaction, so it never mixes states before and after a commit.
        """
        with self._snapshot():
            return self._summary()

    def _summary(self) -> dict[str, Any]:
        relationships: dict[str, Any] = {}
        for row in self._query("SELECT * FROM relationships ORDER BY peer_id"):
            peer = row["peer_id"]
            relationship = self.relationship(peer)
            assert relationship is not None
            relationships[peer] = {
                "peer": peer,
                "state": relationship.state,
                "exited": relationship.exited,
                "engagements": relationship.engagements,
                "reengagement": relationship.reengagement,
                "notificationsAllowed": None
                if relationship.notifications_allowed is None
                else list(relationship.notifications_allowed),
                "data": {
                    data.item: {
                        "value": data.value,
                        "purposes": list(data.purposes),
                        "retainUntil": data.retain_until,
                    }
                    for data in self.data_for(peer)
                },
                "consents": [
                    {
                        "item": consent.item,
                        "purposes": list(consent.purposes),
                        "retainUntil": consent.retain_until,
                    }
                    for consent in self.consents_for(peer)
                ],
                "offers": [
                    {
                        "id": offer.id,
                        "basis": offer.basis,
                        "madeBy": offer.made_by,
                        "status": offer.status,
                        "total": {"amount": offer.total_amount, "currency": offer.currency},
                        "validUntil": offer.valid_until,
                        "supersedes": offer.supersedes,
                    }
                    for offer in self.offers_for(peer)
                ],
                "deals": [
                    {
                        "id": deal.id,
                        "offer": deal.offer_id,
                        "total": {"amount": deal.total_amount, "currency": deal.currency},
                    }
                    for deal in self.deals_for(peer)
                ],
                "messages": int(
                    self._query("SELECT COUNT(*) FROM messages WHERE peer_id = ?", (peer,))[0][0]
                ),
            }
        deletions = [
            {
                "peer": row["peer_id"],
                "item": row["item"],
                "reason": row["reason"],
                "deletedAt": row["deleted_at"],
            }
            for row in self._query("SELECT * FROM deletions ORDER BY pk")
        ]
        suppressed = [
            {
                "peer": row["peer_id"],
                "kind": row["kind"],
                "category": row["category"],
                "reason": row["reason"],
            }
            for row in self._query("SELECT * FROM suppressed_notices ORDER BY pk")
        ]
        exits = [
            {
                "peer": row["peer_id"],
                "notice": row["notice_id"],
                "acknowledgement": row["acknowledgement_id"],
                "exportDigest": row["export_digest"],
            }
            for row in self._query("SELECT * FROM exits ORDER BY pk")
        ]
        return {
            "relationships": relationships,
            "deletions": deletions,
            "suppressedNotices": suppressed,
            "exits": exits,
        }
