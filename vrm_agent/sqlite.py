"""The SQLite base of an agent's store: group commit, per-thread readers, migrations.

:class:`SqliteDatabase` is the plumbing (no tables of its own but the schema
versions); :class:`SqliteProtocolStore` adds the protocol records every agent
keeps (:mod:`vrm_agent.store`) and implements
:class:`~vrm_agent.store.ProtocolStore`. An agent's store subclasses it with
its own tables (a schema component of its own) and its own domain writes
(:meth:`SqliteProtocolStore.apply_domain`).

How the writes are made:

* **group commit**: one writer thread owns the write connection; it takes every
  unit of work waiting (up to ``max_batch``), applies each inside its own
  ``SAVEPOINT`` (when it is not alone) of one ``BEGIN IMMEDIATE`` transaction,
  commits once (one fsync for the group) and only then tells each waiter how
  its unit fared. A unit that fails is rolled back to its savepoint alone and
  its caller gets the error; the others commit. The fsync never runs on the
  event loop;
* **reads** use connections of their own, one per reading thread (WAL lets
  them read while the writer commits: a reader never waits for the writer).
  The point reads the pipeline makes for every message (one indexed row each)
  run on the caller's thread: a hop to a pool thread and back costs more than
  such a read. Scans run on a small pool;
* **migrations**: each schema component (``vrm_agent`` for the protocol
  records, the agent's own for its domain) is a list of numbered steps; the
  table ``schema_version`` holds how far each component was brought, and a
  store written by a newer version is refused;
* the database runs in WAL mode with ``synchronous=FULL`` (a committed
  transaction survives power loss) and enforced foreign keys; its files are
  ``0600`` whatever the umask (D10).

SQLite's errors do not leave this module: ``OperationalError`` (locked, disk
full, read-only, I/O) is :class:`~vrm_agent.store.StoreUnavailable` (D11),
``IntegrityError`` is :class:`~vrm_agent.store.ConstraintViolation`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from vrm_agent.store import (
    ConstraintViolation,
    DeliveryOutcome,
    DeliveryStanding,
    DeliveryStatus,
    InboundConflict,
    MailboxEntry,
    OutboxEntry,
    RelationshipRecord,
    StaleRelationship,
    StoreClosed,
    StoredMessage,
    StoreError,
    StoreUnavailable,
)
from vrm_agent.unit import DomainWrite, UnitOfWork
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.ledger import (
    CORE_ONLY_EFFECTS,
    Effect,
    ExitCompleted,
    LedgerFacts,
    LedgerQuery,
    OfferOpened,
    OfferRecord,
    OfferStatus,
    OfferStatusChanged,
    OpenOffersLapsed,
    RelationshipCore,
    RequestClosed,
    RequestOpened,
    RequestRecord,
    RequestStatus,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_MAX_BATCH",
    "PROTOCOL_SCHEMA",
    "RELATIONSHIP",
    "Schema",
    "SqliteDatabase",
    "SqliteProtocolStore",
    "Step",
    "WriteStats",
    "dumps",
]

T = TypeVar("T")

#: A migration step: an SQL script (statements separated by ``;``), or a function
#: run on the write connection inside the migration's transaction.
Step = str | Callable[[sqlite3.Connection], None]

#: Seconds a statement waits for a lock another connection holds before it
#: fails (``database is locked``).
DEFAULT_BUSY_TIMEOUT: Final = 5.0
#: Units of work applied in one transaction at most (bounds how long a batch
#: holds the write lock, and so the latency of the last unit in it).
DEFAULT_MAX_BATCH: Final = 64
#: Threads that run scans (a reader connection each).
SCAN_THREADS: Final = 2


@dataclass(frozen=True, slots=True)
class Schema:
    """One component's migrations: ``steps[0]`` brings it to version 1, and so on."""

    component: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class WriteStats:
    """What the writer has done since the store opened (figures for operators and
    benchmarks; units include failed ones)."""

    transactions: int
    units: int
    largest_batch: int


@dataclass(slots=True)
class _Work:
    """One caller's writes, applied by the writer inside its own savepoint."""

    work: Callable[[sqlite3.Connection], Any]
    outcome: Future[Any]


def dumps(value: Any) -> str:
    """Compact JSON with sorted members, for a TEXT column."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


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


def _store_error(error: sqlite3.Error) -> StoreError:
    """The store's error for an SQLite error."""
    if isinstance(error, sqlite3.IntegrityError):
        return ConstraintViolation(str(error))
    return StoreUnavailable(str(error))


class SqliteDatabase:
    """The plumbing: group commit, readers, migrations (see the module docstring).

    Args:
        path: the database file (created, with its schema, on first use).
        schemas: the components' migrations, applied in this order.
        max_batch: the most units of work committed in one transaction.
        busy_timeout: seconds to wait for a lock held by another connection.
        name: a name for the store's threads.

    Raises:
        ValueError: ``max_batch`` is below 1.
        StoreError: the database cannot be opened or migrated, or was written by
            a newer version.
    """

    def __init__(
        self,
        path: Path,
        schemas: Sequence[Schema],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        name: str = "store",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch is at least 1")
        self.path = path
        self.max_batch = max_batch
        self.busy_timeout = busy_timeout
        self.schemas = tuple(schemas)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A store holds personal data: 0600 whatever the umask (D10). SQLite
            # gives its -wal and -shm files the database file's mode; older ones
            # are brought in line too.
            for file in (
                path,
                path.with_name(path.name + "-wal"),
                path.with_name(path.name + "-shm"),
            ):
                if file == path or file.exists():
                    _private(file)
            # The write connection belongs to the writer thread once it runs; the
            # migration runs on it first, before anything else can write.
            self._conn = _connect(path, busy_timeout)
        except sqlite3.Error as error:
            raise _store_error(error) from error
        except OSError as error:
            raise StoreUnavailable(f"cannot open {path}: {error.strerror or error}") from error
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise
        self._thread_readers = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._readers_closed = False
        self._executor = ThreadPoolExecutor(
            max_workers=SCAN_THREADS, thread_name_prefix=f"{name}-reader"
        )
        self._queue: deque[_Work] = deque()
        self._queue_changed = threading.Condition()
        self._closing = False
        self._closed = False
        self._stats = WriteStats(0, 0, 0)
        self._writer = threading.Thread(
            target=self._write_forever, name=f"{name}-writer", daemon=True
        )
        self._writer.start()

    # -- migrations --

    def _versions(self, conn: sqlite3.Connection) -> dict[str, int]:
        try:
            rows = conn.execute("SELECT component, version FROM schema_version").fetchall()
        except sqlite3.OperationalError:
            return {}  # no table yet: a new store
        return {str(row[0]): int(row[1]) for row in rows}

    def _before_migrations(self, conn: sqlite3.Connection) -> None:
        """A hook for a subclass that must judge the file before migrating it.

        Raises:
            StoreError: the file cannot be used.
        """

    def _migrate(self) -> None:
        conn = self._conn
        self._before_migrations(conn)
        versions = self._versions(conn)
        for schema in self.schemas:
            if versions.get(schema.component, 0) > len(schema.steps):
                raise StoreError(
                    f"{self.path} was written by a newer version ({schema.component} schema "
                    f"{versions[schema.component]}, this version knows {len(schema.steps)})"
                )
        if all(versions.get(s.component, 0) == len(s.steps) for s in self.schemas):
            # Nothing to write: a store that cannot be written now (read-only,
            # disk full) still opens, and serves what needs no write (D11).
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY,"
                    " version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
                )
                versions = self._versions(conn)
                for schema in self.schemas:
                    done = versions.get(schema.component, 0)
                    for step in schema.steps[done:]:
                        if callable(step):
                            step(conn)
                        else:
                            for statement in step.split(";"):
                                if statement.strip():
                                    conn.execute(statement)
                    if done < len(schema.steps):
                        conn.execute(
                            "INSERT INTO schema_version (component, version, applied_at)"
                            " VALUES (?, ?, ?) ON CONFLICT (component) DO UPDATE SET"
                            " version = excluded.version, applied_at = excluded.applied_at",
                            (
                                schema.component,
                                len(schema.steps),
                                format_timestamp(datetime.now(UTC)),
                            ),
                        )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            raise _store_error(error) from error

    def schema_versions(self) -> dict[str, int]:
        """How far each schema component was brought."""
        return self._versions(self._reader())

    # -- reads --

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on its first read).

        Raises:
            StoreClosed: the store is closed.
        """
        if self._readers_closed:
            raise StoreClosed("the store is closed")
        reader: sqlite3.Connection | None = getattr(self._thread_readers, "connection", None)
        if reader is None:
            with self._readers_lock:
                if self._readers_closed:
                    raise StoreClosed("the store is closed")
                reader = _connect(self.path, self.busy_timeout)
                self._readers.append(reader)
            self._thread_readers.connection = reader
        return reader

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of a query, on the caller's thread (for indexed point reads).

        Raises:
            StoreUnavailable: SQLite cannot read now. StoreClosed: the store is closed.
        """
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as error:
            raise _store_error(error) from error

    async def _scan(self, function: Callable[[], T]) -> T:
        """Run ``function`` (which reads through :meth:`_read`) on a reader thread.

        Raises:
            StoreUnavailable, StoreClosed: as :meth:`_read`.
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function)
        except RuntimeError as error:  # the executor was shut down
            raise StoreClosed(str(error)) from error

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Several reads that see one committed state (a read transaction).

        Raises:
            StoreUnavailable, StoreClosed: as :meth:`_read`.
        """
        reader = self._reader()
        try:
            reader.execute("BEGIN")
        except sqlite3.Error as error:
            raise _store_error(error) from error
        try:
            yield
        finally:
            with suppress(sqlite3.Error):
                reader.execute("COMMIT")

    # -- writes --

    def _submit(self, work: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Queue ``work`` for the writer; its future resolves after the commit.

        Raises:
            StoreClosed: the store is closed.
        """
        outcome: Future[T] = Future()
        with self._queue_changed:
            if self._closing:
                raise StoreClosed("the store is closed")
            self._queue.append(_Work(work, outcome))
            self._queue_changed.notify()
        return outcome

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in the writer's next transaction; return once it committed.

        Raises:
            StoreUnavailable: SQLite cannot write now (nothing of it applied).
            ConstraintViolation: a rule of the schema was broken (nothing applied).
            StoreClosed: the store is closed.
            StoreError: whatever ``work`` raised of the store's own errors.
        """
        try:
            return await self._outcome(self._submit(work))
        except sqlite3.Error as error:
            raise _store_error(error) from error

    def _write_blocking(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`_write` for a thread that is not the event loop's (nor the writer).

        Raises:
            as :meth:`_write`; RuntimeError on the writer thread itself.
        """
        if threading.current_thread() is self._writer:
            raise RuntimeError("the writer cannot wait for itself")
        try:
            return self._submit(work).result()
        except sqlite3.Error as error:
            raise _store_error(error) from error

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
                batch: list[_Work] = []
                while self._queue and len(batch) < self.max_batch:
                    unit = self._queue.popleft()
                    # A unit whose caller gave up before it was taken is dropped;
                    # once taken it can no longer be cancelled.
                    if unit.outcome.set_running_or_notify_cancel():
                        batch.append(unit)
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[_Work]) -> None:
        """Apply ``batch`` in one transaction, each unit in its own savepoint (a unit
        alone in the batch needs none), commit once, then resolve every future."""
        conn = self._conn
        results: list[tuple[Any, BaseException | None]] = []
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

    def write_stats(self) -> WriteStats:
        """How many transactions and units of work the writer has committed."""
        return self._stats

    # -- closing --

    def close_blocking(self) -> None:
        """Let the callers in flight finish, write every unit still queued, then
        close the connections and stop the store's threads."""
        if self._closed:
            return
        self._closed = True
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

    async def close(self) -> None:
        """:meth:`close_blocking`, off the event loop (it waits for the last fsync)."""
        await asyncio.to_thread(self.close_blocking)


# -- the protocol records --------------------------------------------------------------------------

#: The protocol records every agent keeps (component ``vrm_agent``).
#:
#: Rows refer to their relationship by its integer key (``relationships.pk``),
#: not by the peer's identifier: a buyer's ``did:jwk`` is a hundred characters,
#: and every index keyed by it would hold a few dozen entries a page, so each
#: message would dirty (and the WAL rewrite) many more pages. A receipt lives
#: in its message's row.
PROTOCOL_SCHEMA: Final = Schema(
    "vrm_agent",
    (
        """
        CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE relationships (
            pk INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL UNIQUE,
            core TEXT NOT NULL,
            thread TEXT,
            reply_inbox TEXT,
            deal_seen INTEGER NOT NULL DEFAULT 0,
            delivery_failures INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE messages (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            message_id TEXT NOT NULL,
            sender TEXT NOT NULL,
            type TEXT NOT NULL,
            thread TEXT NOT NULL,
            parent TEXT,
            digest TEXT NOT NULL,
            token BLOB NOT NULL,
            receipt BLOB,
            at TEXT NOT NULL,
            expires TEXT NOT NULL,
            UNIQUE (message_id, relationship, direction)
        );
        CREATE INDEX messages_relationship ON messages (relationship, pk);
        CREATE INDEX messages_receipted ON messages (digest) WHERE receipt IS NOT NULL;
        CREATE TABLE threads (
            thread TEXT PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk)
        ) WITHOUT ROWID;
        CREATE TABLE ledger_offers (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            id TEXT NOT NULL,
            sender TEXT NOT NULL,
            basis TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            status TEXT NOT NULL,
            digest TEXT,
            supersedes TEXT,
            topic TEXT,
            requires_approval INTEGER NOT NULL,
            UNIQUE (relationship, id)
        );
        CREATE INDEX ledger_offers_open ON ledger_offers (relationship, sender)
            WHERE status = 'open';
        CREATE TABLE ledger_requests (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            sender TEXT NOT NULL,
            status TEXT NOT NULL,
            UNIQUE (relationship, id)
        );
        CREATE INDEX ledger_requests_open ON ledger_requests (relationship, type)
            WHERE status = 'open';
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            message_pk INTEGER NOT NULL REFERENCES messages (pk),
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            inbox TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL,
            status TEXT NOT NULL,
            last_error TEXT,
            delivered_at TEXT,
            expires TEXT NOT NULL
        );
        CREATE INDEX outbox_pending ON outbox (next_attempt) WHERE status = 'pending';
        CREATE INDEX outbox_relationship ON outbox (relationship, id)
        """,
        # 2: each relationship counts the units that changed it, so that a unit
        # decided on what another writer has since changed is refused, not applied.
        # A stored relationship is at version 1 or more; 0 in a record means "new".
        "ALTER TABLE relationships ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
    ),
)

#: The relationship of a peer, as a subquery (its one parameter: the peer's id).
RELATIONSHIP: Final = "(SELECT pk FROM relationships WHERE peer_id = ?)"

_DIRECTIONS: Final = {Direction.RECEIVED: "in", Direction.SENT: "out"}
_DIRECTION_OF: Final = {"in": Direction.RECEIVED, "out": Direction.SENT}

_OFFER_COLUMNS: Final = (
    "id, sender, basis, valid_until, status, digest, supersedes, topic, requires_approval"
)
_REQUEST_COLUMNS: Final = "id, type, sender, status"
_MESSAGE_COLUMNS: Final = (
    "m.sender, m.message_id, m.direction, m.type, m.thread, m.parent, r.peer_id, m.digest,"
    " m.token, m.at, m.expires"
)
_OUTBOX_COLUMNS: Final = (
    "o.id, r.peer_id, m.message_id, m.type, m.token, o.inbox, o.attempts, o.next_attempt,"
    " o.status, r.deal_seen, r.delivery_failures"
)
_OUTBOX_JOIN: Final = (
    "outbox o JOIN messages m ON m.pk = o.message_pk JOIN relationships r ON r.pk = o.relationship"
)
#: A pending entry that no older pending entry of the same relationship holds back.
_HEAD_OF_QUEUE: Final = (
    "o.status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox p"
    " WHERE p.relationship = o.relationship AND p.status = 'pending' AND p.id < o.id)"
)


def _offer(row: sqlite3.Row) -> OfferRecord:
    return OfferRecord(
        id=row["id"],
        sender=Role(row["sender"]),
        basis=row["basis"],
        valid_until=parse_timestamp(row["valid_until"]),
        status=OfferStatus(row["status"]),
        digest=row["digest"],
        supersedes=row["supersedes"],
        topic=row["topic"],
        requires_approval=bool(row["requires_approval"]),
    )


def _request(row: sqlite3.Row) -> RequestRecord:
    return RequestRecord(
        row["id"], MessageType(row["type"]), Role(row["sender"]), RequestStatus(row["status"])
    )


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        sender=row["sender"],
        message_id=row["message_id"],
        direction=_DIRECTION_OF[row["direction"]],
        type=MessageType(row["type"]),
        thread=row["thread"],
        parent=row["parent"],
        peer=row["peer_id"],
        digest=row["digest"],
        token=bytes(row["token"]),
        at=row["at"],
        expires=row["expires"],
    )


def _outbox(row: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry(
        id=int(row["id"]),
        peer=row["peer_id"],
        message_id=row["message_id"],
        type=MessageType(row["type"]),
        token=bytes(row["token"]),
        inbox=row["inbox"],
        attempts=int(row["attempts"]),
        next_attempt=float(row["next_attempt"]),
        status=DeliveryStatus(row["status"]),
        standing=DeliveryStanding(bool(row["deal_seen"]), int(row["delivery_failures"])),
    )


def _outbox_status(deliver_to: str | None, delivered_at: str | None) -> DeliveryStatus:
    """Where a message sent starts in the outbox: taken already, owed to an inbox,
    or waiting in the mailbox only."""
    if delivered_at is not None:
        return DeliveryStatus.DELIVERED
    return DeliveryStatus.PENDING if deliver_to else DeliveryStatus.MAILBOX


def _ceil_timestamp(moment: datetime) -> str:
    """``moment`` as a timestamp, rounded up to the whole second: an offer valid
    until second S is live at ``moment`` iff S >= this."""
    if moment.microsecond:
        moment = moment + timedelta(seconds=1)
    return format_timestamp(moment)


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


class SqliteProtocolStore(SqliteDatabase):
    """The protocol records on SQLite: :class:`~vrm_agent.store.ProtocolStore`.

    An agent's own tables refer to a relationship as the protocol tables do,
    by ``relationships.pk`` (its writes name the peer; :data:`RELATIONSHIP` is
    the subquery that finds the key).

    Args:
        path, max_batch, busy_timeout, name: as :class:`SqliteDatabase`.
        schemas: the agent's own schema components, after :data:`PROTOCOL_SCHEMA`.

    Raises:
        StoreError: as :class:`SqliteDatabase`.
    """

    def __init__(
        self,
        path: Path,
        schemas: Iterable[Schema] = (),
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        name: str = "store",
    ) -> None:
        super().__init__(
            path,
            (PROTOCOL_SCHEMA, *schemas),
            max_batch=max_batch,
            busy_timeout=busy_timeout,
            name=name,
        )

    # -- the inbox pipeline --

    @asynccontextmanager
    async def exclusive(self, *keys: str) -> AsyncIterator[None]:
        """Nothing to hold: one process serves a SQLite store (its data directory is
        locked, D10), and the pipeline's in-process locks serialise its work."""
        yield

    async def receipt_for_digest(self, digest: str) -> bytes | None:
        """The receipt given for the inbound message with this token digest."""
        rows = self._read(
            "SELECT receipt FROM messages WHERE digest = ? AND receipt IS NOT NULL", (digest,)
        )
        return bytes(rows[0][0]) if rows else None

    async def inbound_digest(self, sender: str, message_id: str) -> str | None:
        """The digest of the stored inbound message (sender, id), if any."""
        rows = self._read(
            f"SELECT digest FROM messages WHERE message_id = ? AND relationship = {RELATIONSHIP}"
            " AND direction = 'in'",
            (message_id, sender),
        )
        return str(rows[0][0]) if rows else None

    async def thread_peer(self, thread: str) -> str | None:
        """The peer of the relationship the thread belongs to, if the thread is known."""
        rows = self._read(
            "SELECT r.peer_id FROM threads t JOIN relationships r ON r.pk = t.relationship"
            " WHERE t.thread = ?",
            (thread,),
        )
        return str(rows[0][0]) if rows else None

    async def message_peers(self, message_id: str) -> frozenset[str]:
        """The peers of the relationships holding a message with this id."""
        rows = self._read(
            "SELECT DISTINCT r.peer_id FROM messages m JOIN relationships r"
            " ON r.pk = m.relationship WHERE m.message_id = ?",
            (message_id,),
        )
        return frozenset(str(row[0]) for row in rows)

    async def relationship(self, peer: str) -> RelationshipRecord | None:
        """The relationship with ``peer``."""
        return self._relationship(peer)

    def _relationship(self, peer: str) -> RelationshipRecord | None:
        rows = self._read(
            "SELECT core, thread, reply_inbox, deal_seen, delivery_failures, version"
            " FROM relationships WHERE peer_id = ?",
            (peer,),
        )
        if not rows:
            return None
        row = rows[0]
        return RelationshipRecord(
            peer=peer,
            core=RelationshipCore.from_json(orjson.loads(row["core"])),
            thread=row["thread"],
            reply_inbox=row["reply_inbox"],
            deal_seen=bool(row["deal_seen"]),
            delivery_failures=int(row["delivery_failures"]),
            version=int(row["version"]),
        )

    async def ledger_facts(self, peer: str, query: LedgerQuery, now: datetime) -> LedgerFacts:
        """Exactly the records ``query`` names in the relationship with ``peer``."""
        offers: dict[str, OfferRecord] = {}
        requests: dict[str, RequestRecord] = {}
        if query.offers:
            ids = sorted(query.offers)
            for row in self._read(
                f"SELECT {_OFFER_COLUMNS} FROM ledger_offers WHERE relationship = {RELATIONSHIP}"
                f" AND id IN ({_placeholders(len(ids))})",
                (peer, *ids),
            ):
                offers[row["id"]] = _offer(row)
        if query.open_offers_of is not None:
            for row in self._read(
                f"SELECT {_OFFER_COLUMNS} FROM ledger_offers WHERE relationship = {RELATIONSHIP}"
                " AND sender = ? AND status = 'open' AND valid_until >= ?",
                (peer, query.open_offers_of.value, _ceil_timestamp(now)),
            ):
                offers[row["id"]] = _offer(row)
        if query.requests:
            ids = sorted(query.requests)
            for row in self._read(
                f"SELECT {_REQUEST_COLUMNS} FROM ledger_requests"
                f" WHERE relationship = {RELATIONSHIP} AND id IN ({_placeholders(len(ids))})",
                (peer, *ids),
            ):
                requests[row["id"]] = _request(row)
        if query.open_requests_of is not None:
            for row in self._read(
                f"SELECT {_REQUEST_COLUMNS} FROM ledger_requests"
                f" WHERE relationship = {RELATIONSHIP} AND type = ? AND status = 'open'",
                (peer, query.open_requests_of.value),
            ):
                requests[row["id"]] = _request(row)
        return LedgerFacts.of(query, offers.values(), requests.values())

    async def commit(self, unit: UnitOfWork) -> None:
        """Apply ``unit`` in the writer's next transaction; return once it committed.

        Raises:
            InboundConflict: the unit's inbound (sender, id) is already stored.
            ConstraintViolation: another rule was broken (nothing applied).
            StoreUnavailable: it cannot be written now (nothing applied).
            StoreClosed: the store is closed.
        """
        await self._write(partial(self._apply_unit, unit=unit))

    # -- history and the ledger --

    async def message(self, sender: str, message_id: str) -> StoredMessage | None:
        """A stored message by its sender and id."""
        rows = self._read(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN relationships r"
            " ON r.pk = m.relationship WHERE m.message_id = ? AND m.sender = ?",
            (message_id, sender),
        )
        return _message(rows[0]) if rows else None

    async def messages_of(self, peer: str) -> list[StoredMessage]:
        """Every message of the relationship with ``peer``, both ways, oldest first."""
        rows = self._read(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN relationships r"
            " ON r.pk = m.relationship WHERE r.peer_id = ? ORDER BY m.pk",
            (peer,),
        )
        return [_message(row) for row in rows]

    async def offers(self, peer: str) -> list[OfferRecord]:
        """Every offer record of the relationship, oldest first."""
        rows = self._read(
            f"SELECT {_OFFER_COLUMNS} FROM ledger_offers WHERE relationship = {RELATIONSHIP}"
            " ORDER BY pk",
            (peer,),
        )
        return [_offer(row) for row in rows]

    async def requests(self, peer: str) -> list[RequestRecord]:
        """Every request record of the relationship, oldest first."""
        rows = self._read(
            f"SELECT {_REQUEST_COLUMNS} FROM ledger_requests WHERE relationship = {RELATIONSHIP}"
            " ORDER BY pk",
            (peer,),
        )
        return [_request(row) for row in rows]

    # -- the outbox and the mailbox --

    async def due_deliveries(self, now: float, limit: int = 20) -> list[OutboxEntry]:
        """Entries to POST due at ``now``, oldest first, in order per peer."""
        rows = self._read(
            f"SELECT {_OUTBOX_COLUMNS} FROM {_OUTBOX_JOIN}"
            f" WHERE {_HEAD_OF_QUEUE} AND o.next_attempt <= ? ORDER BY o.id LIMIT ?",
            (now, limit),
        )
        return [_outbox(row) for row in rows]

    async def next_delivery_at(self) -> float | None:
        """When the next entry to POST is due, or ``None``."""
        rows = self._read(f"SELECT MIN(o.next_attempt) FROM outbox o WHERE {_HEAD_OF_QUEUE}")
        value = rows[0][0] if rows else None
        return None if value is None else float(value)

    async def delivery_standing(self, peer: str) -> DeliveryStanding:
        """Whether a deal was seen with ``peer``, and how many deliveries to it failed."""
        rows = self._read(
            "SELECT deal_seen, delivery_failures FROM relationships WHERE peer_id = ?", (peer,)
        )
        if not rows:
            return DeliveryStanding(False, 0)
        return DeliveryStanding(bool(rows[0][0]), int(rows[0][1]))

    async def record_deliveries(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Record how delivery attempts ended, in one unit of work.

        Raises:
            StoreUnavailable: it cannot be written now (nothing recorded).
        """
        if not outcomes:
            return

        def record(conn: sqlite3.Connection) -> None:
            for outcome in outcomes:
                if outcome.delivered_at is not None:
                    conn.execute(
                        "UPDATE outbox SET status = 'delivered', delivered_at = ?,"
                        " attempts = attempts + 1 WHERE id = ?",
                        (outcome.delivered_at, outcome.entry_id),
                    )
                    continue
                status = DeliveryStatus.FAILED if outcome.final else DeliveryStatus.PENDING
                conn.execute(
                    "UPDATE outbox SET attempts = attempts + ?, next_attempt = ?,"
                    " last_error = ?, status = ? WHERE id = ?",
                    (
                        int(outcome.attempted),
                        outcome.next_attempt,
                        (outcome.error or "")[:500],
                        status.value,
                        outcome.entry_id,
                    ),
                )
                if outcome.count_against is not None:
                    conn.execute(
                        "UPDATE relationships SET delivery_failures = delivery_failures + 1"
                        " WHERE peer_id = ?",
                        (outcome.count_against,),
                    )

        await self._write(record)

    async def mailbox(self, peer: str, after: int, now: str, limit: int = 50) -> list[MailboxEntry]:
        """Messages for ``peer`` after ``after``, unexpired at ``now``, none withdrawn."""
        rows = self._read(
            "SELECT o.id, m.token, o.inbox FROM outbox o JOIN messages m ON m.pk = o.message_pk"
            f" WHERE o.relationship = {RELATIONSHIP} AND o.id > ? AND o.status <> 'cancelled'"
            " AND o.expires > ? ORDER BY o.id LIMIT ?",
            (peer, after, now, limit),
        )
        return [MailboxEntry(int(row[0]), bytes(row[1]), row[2]) for row in rows]

    async def outbox_entries(self, peer: str) -> list[OutboxEntry]:
        """Every outbox entry for ``peer`` (any status), oldest first."""
        rows = self._read(
            f"SELECT {_OUTBOX_COLUMNS} FROM {_OUTBOX_JOIN} WHERE r.peer_id = ? ORDER BY o.id",
            (peer,),
        )
        return [_outbox(row) for row in rows]

    # -- settings --

    async def setting(self, name: str) -> str | None:
        """A persisted agent setting."""
        rows = self._read("SELECT value FROM settings WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def set_setting(self, name: str, value: str) -> None:
        """Persist an agent setting.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

        await self._write(record)

    # -- applying a unit of work (on the writer thread) --

    def _apply_unit(self, conn: sqlite3.Connection, unit: UnitOfWork) -> None:
        """Write ``unit`` on ``conn`` (inside the writer's savepoint for it).

        Raises:
            InboundConflict, StaleRelationship: see :meth:`commit`.
        """
        relationship = self._write_relationship(conn, unit)
        if unit.inbound is not None:
            # spec §9.3: the store is the replay guard of record: unique (id,
            # relationship, direction), which for an inbound message is (sender,
            # id), checked inside the transaction, so it sees earlier units of
            # the same batch too. Nothing of the unit stays when it conflicts.
            try:
                self._insert_message(conn, unit.inbound, relationship, unit.receipt)
            except sqlite3.IntegrityError:
                stored = conn.execute(
                    "SELECT digest, receipt FROM messages WHERE message_id = ?"
                    " AND relationship = ? AND direction = 'in'",
                    (unit.inbound.message_id, relationship),
                ).fetchone()
                if stored is None:
                    raise  # another rule of the table was broken
                raise InboundConflict(
                    unit.inbound.sender,
                    unit.inbound.message_id,
                    str(stored[0]),
                    None if stored[1] is None else bytes(stored[1]),
                ) from None
        for effect in unit.effects:
            self._apply_effect(conn, relationship, effect)
        for write in unit.writes:
            self.apply_domain(conn, write)
        if unit.cancel_deliveries:
            conn.execute(
                "UPDATE outbox SET status = 'cancelled' WHERE relationship = ?"
                " AND status IN ('pending', 'mailbox')",
                (relationship,),
            )
        # spec §7.3: the first relationship to use a thread owns it.
        threads = {outbound.message.thread for outbound in unit.outbound}
        if unit.inbound is not None:
            threads.add(unit.inbound.thread)
        for thread in sorted(threads):
            conn.execute(
                "INSERT INTO threads (thread, relationship) VALUES (?, ?)"
                " ON CONFLICT (thread) DO NOTHING",
                (thread, relationship),
            )
        for outbound in unit.outbound:
            pk = self._insert_message(conn, outbound.message, relationship, None)
            conn.execute(
                "INSERT INTO outbox (message_pk, relationship, inbox, next_attempt, status,"
                " expires, delivered_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    pk,
                    relationship,
                    outbound.deliver_to,
                    unit.deliver_at,
                    _outbox_status(outbound.deliver_to, outbound.delivered_at).value,
                    outbound.message.expires,
                    outbound.delivered_at,
                    int(outbound.delivered_at is not None),
                ),
            )

    @staticmethod
    def _write_relationship(conn: sqlite3.Connection, unit: UnitOfWork) -> int:
        """The relationship's row as the unit leaves it (its key returned): inserted
        when new, else updated, and only if it is still at the version the unit read.

        Raises:
            StaleRelationship: another writer changed (or created) it meanwhile.
        """
        record = unit.relationship
        values = (
            dumps(record.core.to_json()),
            record.thread,
            record.reply_inbox,
            int(record.deal_seen),
        )
        if record.version is None:
            # Not read from the store (a record made by hand): an upsert, as a
            # record that never was read cannot be stale.
            row = conn.execute(
                "INSERT INTO relationships (core, thread, reply_inbox, deal_seen, peer_id)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (peer_id) DO UPDATE SET"
                " core = excluded.core, thread = excluded.thread,"
                " reply_inbox = excluded.reply_inbox, deal_seen = excluded.deal_seen,"
                " version = version + 1 RETURNING pk",
                (*values, unit.peer),
            ).fetchone()
            return int(row[0])
        if record.version == 0:
            # A relationship the unit found absent: it must still be absent.
            try:
                row = conn.execute(
                    "INSERT INTO relationships (core, thread, reply_inbox, deal_seen, peer_id)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING pk",
                    (*values, unit.peer),
                ).fetchone()
            except sqlite3.IntegrityError:
                raise StaleRelationship(
                    f"the relationship with {unit.peer} was created meanwhile"
                ) from None
            return int(row[0])
        row = conn.execute(
            "UPDATE relationships SET core = ?, thread = ?, reply_inbox = ?, deal_seen = ?,"
            " version = version + 1 WHERE peer_id = ? AND version = ? RETURNING pk",
            (*values, unit.peer, record.version),
        ).fetchone()
        if row is None:
            raise StaleRelationship(
                f"the relationship with {unit.peer} changed since version {record.version}"
            )
        return int(row[0])

    def apply_domain(self, conn: sqlite3.Connection, write: DomainWrite) -> None:
        """Apply one of the agent's own writes (on the writer thread, inside the
        unit's savepoint). Subclasses handle their own writes.

        Raises:
            TypeError: an agent write this store does not know (a defect).
        """
        raise TypeError(f"{type(self).__name__} does not know {type(write).__name__}")

    @staticmethod
    def _insert_message(
        conn: sqlite3.Connection, message: StoredMessage, relationship: int, receipt: bytes | None
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO messages (relationship, direction, message_id, sender, type, thread,"
            " parent, digest, token, receipt, at, expires)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                relationship,
                _DIRECTIONS[message.direction],
                message.message_id,
                message.sender,
                message.type.value,
                message.thread,
                message.parent,
                message.digest,
                message.token,
                receipt,
                message.at,
                message.expires,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @staticmethod
    def _apply_effect(conn: sqlite3.Connection, relationship: int, effect: Effect) -> None:
        """One ledger effect as rows (what :class:`~vrm_protocol.ledger.MemoryLedger`
        does in memory; the contract test holds them to the same result).

        Raises:
            TypeError: an effect this store does not know (the library grew one).
        """
        if isinstance(effect, OfferOpened):
            offer = effect.record
            conn.execute(
                f"INSERT INTO ledger_offers (relationship, {_OFFER_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (relationship, id) DO UPDATE SET"
                " sender = excluded.sender, basis = excluded.basis,"
                " valid_until = excluded.valid_until, status = excluded.status,"
                " digest = excluded.digest, supersedes = excluded.supersedes,"
                " topic = excluded.topic, requires_approval = excluded.requires_approval",
                (
                    relationship,
                    offer.id,
                    offer.sender.value,
                    offer.basis,
                    format_timestamp(offer.valid_until),
                    offer.status.value,
                    offer.digest,
                    offer.supersedes,
                    offer.topic,
                    int(offer.requires_approval),
                ),
            )
        elif isinstance(effect, OfferStatusChanged):
            conn.execute(
                "UPDATE ledger_offers SET status = ? WHERE relationship = ? AND id = ?",
                (effect.status.value, relationship, effect.offer_id),
            )
        elif isinstance(effect, OpenOffersLapsed):
            # Every offer live at `at` but the one excepted; those past their
            # validUntil stay expired (spec §7.4).
            conn.execute(
                "UPDATE ledger_offers SET status = 'lapsed' WHERE relationship = ?"
                " AND status = 'open' AND valid_until >= ? AND id <> ?",
                (relationship, _ceil_timestamp(effect.at), effect.except_offer or ""),
            )
        elif isinstance(effect, RequestOpened):
            request = effect.record
            conn.execute(
                f"INSERT INTO ledger_requests (relationship, {_REQUEST_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (relationship, id) DO UPDATE SET"
                " type = excluded.type, sender = excluded.sender, status = excluded.status",
                (
                    relationship,
                    request.id,
                    request.type.value,
                    request.sender.value,
                    request.status.value,
                ),
            )
        elif isinstance(effect, RequestClosed):
            conn.execute(
                "UPDATE ledger_requests SET status = 'closed' WHERE relationship = ? AND id = ?",
                (relationship, effect.request_id),
            )
        elif isinstance(effect, ExitCompleted):
            # spec §7.4, §7.5: the exit closes every open offer and voids every
            # request; the records stay, so a later reference is refused for what it is.
            conn.execute(
                "UPDATE ledger_offers SET status = 'lapsed' WHERE relationship = ?"
                " AND status = 'open'",
                (relationship,),
            )
            conn.execute(
                "UPDATE ledger_requests SET status = 'void' WHERE relationship = ?",
                (relationship,),
            )
        elif isinstance(effect, CORE_ONLY_EFFECTS):
            pass  # the core holds what they change; the answer itself is a stored message
        else:
            raise TypeError(f"a ledger effect this store does not know: {type(effect).__name__}")
