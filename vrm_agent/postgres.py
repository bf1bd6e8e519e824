"""The PostgreSQL base of an agent's store: several processes of one agent, one database.

:class:`PostgresDatabase` is the plumbing (a connection pool, migrations, the
transaction a unit of work holds its keys in, errors);
:class:`PostgresProtocolStore` adds the protocol records every agent keeps
(:mod:`vrm_agent.store`) and implements :class:`~vrm_agent.store.ProtocolStore`,
table for table as :class:`~vrm_agent.sqlite.SqliteProtocolStore` does. An
agent's store subclasses it with its own tables (a schema component of its
own, :attr:`PostgresDatabase.SCHEMAS`) and its own domain writes
(:meth:`PostgresProtocolStore.apply_domain`).

What lets several processes serve one agent identity against one database:

* **idempotency and replay** are the unique keys: ``messages (message_id,
  sender)`` and ``receipts (digest)``. A unit whose inbound message is stored
  already is refused with what is on record (:class:`~vrm_agent.store.InboundConflict`),
  whichever process stored it;
* **per-relationship serialisation** across processes: :meth:`exclusive` opens
  the unit of work's transaction and takes a transaction-scoped advisory lock
  for each key (``"p " + peer``, ``"t " + thread``, ``"m " + id``), in ascending
  order of their 64-bit ids, so two holders never wait for each other in a
  cycle. The pipeline reads, decides and commits inside it; the locks go with
  the COMMIT, after which the unit is visible to the next holder. A unit
  committed outside such a block takes its peer's lock in its own transaction;
* **the mailbox** is the outbox table, shared. Its cursor is the entry's id;
  since every unit that queues a message for a peer holds that peer's lock
  while it takes ids and until it commits, a peer's entries become visible in
  the order of their ids, so a poller's cursor never passes one still to come;
* **deliveries** are claimed: :meth:`PostgresProtocolStore.due_deliveries`
  takes the due entries with ``FOR UPDATE SKIP LOCKED`` and marks them claimed
  for a lease by this process; another process takes them only when the
  lease ends or when the claimer is gone (its presence connection closed:
  a SIGKILLed process's claims are free at once). An entry is claimed only
  while no older entry of its peer is pending, so a peer still receives its
  messages in order;
* **one-at-a-time jobs** (the retention sweep) take an advisory lock of their own;
* **migrations** run in one transaction under an advisory lock, so processes
  starting together bring the schema up once.

Durability is the server's (a COMMIT returns once its WAL is flushed, with
the server's default ``synchronous_commit = on``); concurrent commits share
WAL flushes on the server, so there is no group commit here.

asyncpg's errors do not leave this module: a broken integrity rule is
:class:`~vrm_agent.store.ConstraintViolation`; anything else (the server is
down, disk full, read-only, a lock not had within the lock timeout, a dropped
connection) is :class:`~vrm_agent.store.StoreUnavailable` (D11).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Final, Self, TypeAlias, TypeVar

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from vrm_agent.store import (
    ConstraintViolation,
    DeliveryOutcome,
    DeliveryStanding,
    DeliveryStatus,
    InboundConflict,
    MailboxEntry,
    OutboxEntry,
    RelationshipRecord,
    StoreClosed,
    StoredMessage,
    StoreError,
    StoreUnavailable,
)
from vrm_agent.unit import DomainWrite, UnitOfWork
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.keys import InvalidKeyError, SigningKey
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
    "CLAIM_LEASE_SECONDS",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_POOL_SIZE",
    "PROTOCOL_SCHEMA",
    "Connection",
    "PgSchema",
    "PostgresDatabase",
    "PostgresProtocolStore",
    "Record",
    "is_postgres_url",
    "lock_id",
    "redact",
    "relationship_key",
    "relationships_of",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A connection of the store's pool, and a row, as this module's subclasses see them.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
Record: TypeAlias = asyncpg.Record

#: Connections a process keeps open at most (each unit of work in flight holds one
#: from its first read to its commit).
DEFAULT_POOL_SIZE: Final = 10
#: Seconds a statement waits for a lock another process holds before the work
#: fails as unavailable (PostgreSQL's ``lock_timeout``; SQLite's busy timeout).
DEFAULT_LOCK_TIMEOUT: Final = 5.0
#: Seconds a claimed delivery stays with its claimer while that process lives
#: (longer than a pass of attempts takes; a dead claimer's claims end at once).
CLAIM_LEASE_SECONDS: Final = 60.0
#: Seconds a statement may run before it is given up as unavailable.
COMMAND_TIMEOUT: Final = 30.0
#: A session holding a transaction open this long without a statement is ended by
#: the server, so a hung process cannot hold a relationship's lock for ever.
IDLE_IN_TRANSACTION_TIMEOUT: Final = "60s"

_URL = re.compile(r"^postgres(?:ql)?://", re.IGNORECASE)
_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


def is_postgres_url(value: str) -> bool:
    """Whether ``value`` names a PostgreSQL database (``postgresql://...``)."""
    return _URL.match(value) is not None


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return _PASSWORD.sub(r"\1:***@", url)


def lock_id(key: str) -> int:
    """The advisory lock id of ``key``: 64 bits of its BLAKE2b digest, signed as
    PostgreSQL's ``bigint`` is (a collision only serialises two unrelated keys)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=b"vrm-agent-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


_MIGRATION_LOCK: Final = lock_id("migrations")


@dataclass(frozen=True, slots=True)
class PgSchema:
    """One component's migrations: ``steps[0]`` (an SQL script) brings it to version 1."""

    component: str
    steps: tuple[str, ...]


def _store_error(error: BaseException) -> StoreError:
    """The store's error for a driver or connection error."""
    if isinstance(error, StoreError):
        return error
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return ConstraintViolation(str(error))
    if isinstance(error, asyncpg.PostgresError):
        return StoreUnavailable(f"{type(error).__name__}: {error}")
    if isinstance(error, TimeoutError):
        return StoreUnavailable("the database did not answer in time")
    return StoreUnavailable(f"{type(error).__name__}: {error}" if str(error) else repr(error))


#: What a store call may fail with, to be turned into the store's own errors.
_DRIVER_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@dataclass(slots=True, eq=False)
class _Held:
    """The transaction an :meth:`PostgresDatabase.exclusive` block holds its keys in."""

    store: PostgresDatabase
    conn: Connection
    task: asyncio.Task[Any] | None
    #: Still inside the block, with the transaction open (no unit committed yet).
    open: bool = True


#: The block the current task is in, if any (reads inside it use its connection).
_HELD: ContextVar[_Held | None] = ContextVar("vrm_agent_postgres_held", default=None)


class PostgresDatabase:
    """The plumbing (see the module docstring). Made by :meth:`open`.

    Subclasses name their schema components in :attr:`SCHEMAS` (the runtime's
    first).
    """

    #: The components' migrations, applied in this order.
    SCHEMAS: ClassVar[tuple[PgSchema, ...]] = ()

    def __init__(self, pool: asyncpg.Pool, presence: Connection, url: str, name: str) -> None:
        """Use :meth:`open`."""
        self._pool = pool
        self._presence = presence
        self._presence_id: tuple[int, datetime] | None = None
        self._presence_lock = asyncio.Lock()
        self.url = url
        self.name = name
        self._closed = False

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        name: str = "vrm-agent",
    ) -> Self:
        """Connect to the database at ``url``, bring its schema up to date, and
        return the store.

        Raises:
            ValueError: ``pool_size`` is below 1, or ``url`` is not a PostgreSQL URL.
            StoreError: the database cannot be reached or migrated, or was
                written by a newer version (one line, without the password).
        """
        if pool_size < 1:
            raise ValueError("pool_size is at least 1")
        if not is_postgres_url(url):
            raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
        settings = {
            "application_name": name,
            "lock_timeout": f"{int(lock_timeout * 1000)}ms",
            "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION_TIMEOUT,
            "timezone": "UTC",
        }
        try:
            presence = await asyncpg.connect(
                url, server_settings=settings, command_timeout=COMMAND_TIMEOUT
            )
        except (*_DRIVER_ERRORS, ValueError) as error:
            raise StoreUnavailable(
                f"cannot connect to {redact(url)}: {_store_error(error)}"
            ) from None
        try:
            await cls._migrate(presence, url)
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                server_settings=settings,
                command_timeout=COMMAND_TIMEOUT,
                connection_class=_Connection,
            )
        except BaseException as error:
            with suppress(*_DRIVER_ERRORS):
                await presence.close(timeout=5)
            if isinstance(error, _DRIVER_ERRORS):
                raise _store_error(error) from None
            raise
        return cls(pool, presence, url, name)

    # -- migrations --

    @classmethod
    async def _versions(cls, conn: Connection) -> dict[str, int]:
        if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
            return {}
        rows = await conn.fetch("SELECT component, version FROM schema_version")
        return {str(row[0]): int(row[1]) for row in rows}

    @classmethod
    def _check_not_newer(cls, versions: dict[str, int], url: str) -> None:
        for schema in cls.SCHEMAS:
            if versions.get(schema.component, 0) > len(schema.steps):
                raise StoreError(
                    f"{redact(url)} was written by a newer version ({schema.component} schema "
                    f"{versions[schema.component]}, this version knows {len(schema.steps)})"
                )

    @classmethod
    async def _migrate(cls, conn: Connection, url: str) -> None:
        """Bring every component to its latest version, once, whoever starts first."""
        versions = await cls._versions(conn)
        cls._check_not_newer(versions, url)
        if all(versions.get(s.component, 0) == len(s.steps) for s in cls.SCHEMAS):
            return  # nothing to write: a database that cannot be written now still opens
        async with conn.transaction():
            # Processes starting together: one migrates, the others wait here and
            # then find nothing left to do.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY,"
                " version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
            )
            versions = await cls._versions(conn)
            cls._check_not_newer(versions, url)
            for schema in cls.SCHEMAS:
                done = versions.get(schema.component, 0)
                for step in schema.steps[done:]:
                    await conn.execute(step)
                if done < len(schema.steps):
                    await conn.execute(
                        "INSERT INTO schema_version (component, version, applied_at)"
                        " VALUES ($1, $2, $3) ON CONFLICT (component) DO UPDATE SET"
                        " version = excluded.version, applied_at = excluded.applied_at",
                        schema.component,
                        len(schema.steps),
                        format_timestamp(datetime.now(UTC)),
                    )

    async def schema_versions(self) -> dict[str, int]:
        """How far each schema component was brought.

        Raises:
            StoreUnavailable: the database cannot be read.
        """
        try:
            async with self._pool.acquire() as conn:
                return await self._versions(conn)
        except _DRIVER_ERRORS as error:
            raise _store_error(error) from None

    # -- connections --

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    def _held(self) -> _Held | None:
        """The block this task holds keys in on this store, if any."""
        held = _HELD.get()
        if held is None or held.store is not self or held.task is not asyncio.current_task():
            return None
        return held

    async def _fetch(self, sql: str, *args: Any) -> list[Record]:
        """Rows of a query: on the connection of the block this task holds keys in
        (its reads see what the block's own locks protect, and never wait for a
        second connection), else on any connection of the pool.

        Raises:
            StoreUnavailable: the database cannot be read now. StoreClosed: closed.
        """
        self._check_open()
        held = self._held()
        try:
            if held is not None:
                return await held.conn.fetch(sql, *args)
            return await self._pool.fetch(sql, *args)
        except _DRIVER_ERRORS as error:
            self._check_open()
            raise _store_error(error) from None

    async def _fetchrow(self, sql: str, *args: Any) -> Record | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None

    async def _transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction of its own on a connection of the pool, and
        commit it (outside any block's transaction: a setting or a delivery's
        outcome is not part of a unit of work).

        Raises:
            ConstraintViolation: a rule of the schema was broken (nothing applied).
            StoreUnavailable: it cannot be written now (nothing applied).
            StoreClosed: the store is closed.
            StoreError: what ``work`` raised of the store's own errors.
        """
        self._check_open()
        try:
            async with self._pool.acquire() as conn:
                return await _shielded(self._in_transaction(conn, work))
        except _DRIVER_ERRORS as error:
            self._check_open()
            raise _store_error(error) from None

    async def snapshot(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run the reads of ``work`` in one read-only, repeatable-read transaction:
        they see one committed state, whatever other processes commit meanwhile.

        Raises:
            StoreUnavailable: the database cannot be read now. StoreClosed: closed.
        """
        self._check_open()
        try:
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                return await work(conn)
        except _DRIVER_ERRORS as error:
            self._check_open()
            raise _store_error(error) from None

    async def _autocommit(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``work`` (one statement, atomic on its own) on a connection of the pool,
        outside any transaction block.

        Raises:
            as :meth:`_transaction`.
        """
        self._check_open()
        try:
            async with self._pool.acquire() as conn:
                return await _shielded(work(conn))
        except _DRIVER_ERRORS as error:
            self._check_open()
            raise _store_error(error) from None

    @staticmethod
    async def _in_transaction(conn: Connection, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with conn.transaction():
            return await work(conn)

    @asynccontextmanager
    async def exclusive(self, *keys: str) -> AsyncIterator[None]:
        """Hold ``keys`` against every holder in every process, for the block (see
        the module docstring); the block's reads and its unit of work use the
        transaction the locks are held in.

        Raises:
            StoreUnavailable: the locks were not had within the lock timeout, or
                the database cannot be reached (nothing was done).
            StoreClosed: the store is closed.
            RuntimeError: the task already holds keys on this store (a unit of
                work holds all its keys at once).
        """
        self._check_open()
        if self._held() is not None:
            raise RuntimeError("keys are taken all at once, not one block inside another")
        ids = sorted({lock_id(key) for key in keys})
        try:
            conn = await self._pool.acquire()
        except _DRIVER_ERRORS as error:
            self._check_open()
            raise _store_error(error) from None
        try:
            try:
                # One round trip: the transaction and its locks, in ascending order
                # (integers this module made, so they are written into the script).
                await conn.execute(
                    "BEGIN; " + " ".join(f"SELECT pg_advisory_xact_lock({i});" for i in ids)
                )
            except _DRIVER_ERRORS as error:
                await _rollback(conn)
                self._check_open()
                raise _store_error(error) from None
            held = _Held(self, conn, asyncio.current_task())
            token = _HELD.set(held)
            try:
                yield
            finally:
                _HELD.reset(token)
                if held.open:
                    # Nothing was committed in the block (the message was refused):
                    # nothing it wrote stays, and the locks go.
                    held.open = False
                    await _rollback(conn)
        finally:
            with suppress(*_DRIVER_ERRORS):
                await _shielded(self._pool.release(conn))

    @asynccontextmanager
    async def job_lock(self, name: str) -> AsyncIterator[Connection]:
        """Run a job that one process at a time may run (``name``: the job's),
        in a transaction of its own that holds the job's advisory lock; the
        block gets the connection. Waits while another process runs it.

        Raises:
            StoreUnavailable: the lock was not had within the lock timeout, or
                the database cannot be reached. StoreClosed: the store is closed.
        """
        self._check_open()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id("job " + name))
                yield conn
        except _DRIVER_ERRORS as error:
            self._check_open()
            raise _store_error(error) from None

    # -- presence (who holds a claim) --

    async def _presence_of(self) -> tuple[int, datetime]:
        """This process's presence: the backend pid and start of its own long-lived
        connection. Claims are made under it; they end when it closes (reconnected
        here if it was lost).

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        async with self._presence_lock:
            try:
                if self._presence.is_closed():
                    self._presence_id = None
                    self._presence = await asyncpg.connect(
                        self.url,
                        server_settings={"application_name": self.name},
                        command_timeout=COMMAND_TIMEOUT,
                    )
                if self._presence_id is None:
                    row = await self._presence.fetchrow(
                        "SELECT pid, backend_start FROM pg_stat_activity"
                        " WHERE pid = pg_backend_pid()"
                    )
                    assert row is not None
                    self._presence_id = (int(row[0]), row[1])
            except _DRIVER_ERRORS as error:
                raise _store_error(error) from None
            return self._presence_id

    # -- closing --

    async def close(self) -> None:
        """Let the work in flight finish, then close every connection (a claim this
        process still holds ends with its presence)."""
        if self._closed:
            return
        self._closed = True
        with suppress(*_DRIVER_ERRORS):
            await asyncio.wait_for(self._pool.close(), timeout=COMMAND_TIMEOUT)
        self._pool.terminate()
        with suppress(*_DRIVER_ERRORS):
            await self._presence.close(timeout=5)


async def _shielded(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if the caller is cancelled meanwhile (a COMMIT
    or ROLLBACK half sent would leave the connection's state unknown), then let
    the cancellation through."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the caller is gone
        raise


async def _rollback(conn: Connection) -> None:
    """End the connection's transaction, if it has one, applying nothing (errors are
    moot: a connection that cannot roll back is closed by the pool)."""
    if not conn.is_closed() and conn.is_in_transaction():
        with suppress(*_DRIVER_ERRORS):
            await _shielded(conn.execute("ROLLBACK"))


class _Connection(asyncpg.Connection):
    """A pool connection that the pool hands on without a reset round trip: the
    store keeps no session state on them (no session locks, no LISTEN, no SET),
    and an open transaction is still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


# -- the protocol records --------------------------------------------------------------------------

#: The protocol records every agent keeps (component ``vrm_agent``): the tables of
#: :data:`vrm_agent.sqlite.PROTOCOL_SCHEMA`, with PostgreSQL's types, and rows naming
#: their relationship by its integer key as there. Text is compared and sorted byte
#: by byte (``COLLATE "C"``), as SQLite does, whatever the database's locale:
#: timestamps compare as text, and summaries sort alike. ``agent_keys`` holds the
#: agent's private keys (:meth:`PostgresProtocolStore.agent_key`); the outbox's
#: ``claimed_*`` columns say which process holds an entry it is delivering.
PROTOCOL_SCHEMA: Final = PgSchema(
    "vrm_agent",
    (
        """
        CREATE TABLE settings (name TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE agent_keys (
            name TEXT COLLATE "C" PRIMARY KEY,
            jwk TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE relationships (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            peer_id TEXT COLLATE "C" NOT NULL UNIQUE,
            core TEXT NOT NULL,
            thread TEXT COLLATE "C",
            reply_inbox TEXT,
            deal_seen BOOLEAN NOT NULL DEFAULT FALSE,
            delivery_failures INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE messages (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            message_id TEXT COLLATE "C" NOT NULL,
            sender TEXT COLLATE "C" NOT NULL,
            type TEXT NOT NULL,
            thread TEXT COLLATE "C" NOT NULL,
            parent TEXT COLLATE "C",
            digest TEXT COLLATE "C" NOT NULL,
            token BYTEA NOT NULL,
            receipt BYTEA,
            at TEXT COLLATE "C" NOT NULL,
            expires TEXT COLLATE "C" NOT NULL,
            UNIQUE (message_id, relationship, direction)
        );
        CREATE INDEX messages_relationship ON messages (relationship, pk);
        CREATE INDEX messages_receipted ON messages (digest) WHERE receipt IS NOT NULL;
        CREATE TABLE threads (
            thread TEXT COLLATE "C" PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk)
        );
        CREATE TABLE ledger_offers (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            id TEXT COLLATE "C" NOT NULL,
            sender TEXT NOT NULL,
            basis TEXT NOT NULL,
            valid_until TEXT COLLATE "C" NOT NULL,
            status TEXT NOT NULL,
            digest TEXT,
            supersedes TEXT,
            topic TEXT,
            requires_approval BOOLEAN NOT NULL,
            UNIQUE (relationship, id)
        );
        CREATE INDEX ledger_offers_open ON ledger_offers (relationship, sender)
            WHERE status = 'open';
        CREATE TABLE ledger_requests (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            id TEXT COLLATE "C" NOT NULL,
            type TEXT NOT NULL,
            sender TEXT NOT NULL,
            status TEXT NOT NULL,
            UNIQUE (relationship, id)
        );
        CREATE INDEX ledger_requests_open ON ledger_requests (relationship, type)
            WHERE status = 'open';
        CREATE TABLE outbox (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            message_pk BIGINT NOT NULL REFERENCES messages (pk),
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            inbox TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            last_error TEXT,
            delivered_at TEXT,
            expires TEXT COLLATE "C" NOT NULL,
            claimed_until DOUBLE PRECISION,
            claimed_by INTEGER,
            claimed_since TIMESTAMPTZ
        );
        CREATE INDEX outbox_pending ON outbox (next_attempt) WHERE status = 'pending';
        CREATE INDEX outbox_pending_relationship ON outbox (relationship, id)
            WHERE status = 'pending';
        CREATE INDEX outbox_relationship ON outbox (relationship, id)
        """,
    ),
)


def relationship_key(parameter: int) -> str:
    """The key of the relationship whose peer is parameter ``$parameter``, as a
    subquery (an agent's own tables name their relationship by this key too)."""
    return f"(SELECT pk FROM relationships WHERE peer_id = ${parameter})"


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
#: A pending entry that no older pending entry of the same relationship holds back.
_HEAD_OF_QUEUE: Final = (
    "o.status = 'pending' AND NOT EXISTS (SELECT 1 FROM outbox p"
    " WHERE p.relationship = o.relationship AND p.status = 'pending' AND p.id < o.id)"
)
#: The entry is claimed by a process that is still there (its presence connection).
_CLAIMER_ALIVE: Final = (
    "EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = o.claimed_by"
    " AND a.backend_start = o.claimed_since)"
)
#: When an entry of the queue can next be taken: at its attempt, or after its claim.
_TAKEABLE_AT: Final = (
    "CASE WHEN o.claimed_until IS NOT NULL AND o.claimed_until > o.next_attempt"
    f" AND {_CLAIMER_ALIVE} THEN o.claimed_until ELSE o.next_attempt END"
)

_INSERT_MESSAGE: Final = (
    "INSERT INTO messages (relationship, direction, message_id, sender, type, thread, parent,"
    " digest, token, receipt, at, expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
    " $11, $12)"
)
#: An inbound message and its receipt (spec §11.3); no row when the relationship
#: holds an inbound message of this id already.
_INSERT_INBOUND: Final = (
    _INSERT_MESSAGE + " ON CONFLICT (message_id, relationship, direction) DO NOTHING RETURNING pk"
)
#: A message sent: stored, and queued in the outbox (the mailbox): one round trip.
_INSERT_OUTBOUND: Final = f"""
    WITH m AS ({_INSERT_MESSAGE} RETURNING pk)
    INSERT INTO outbox (message_pk, relationship, inbox, next_attempt, status, expires)
    SELECT pk, $1, $13, $14, $15, $12 FROM m
"""


def _offer(row: Record) -> OfferRecord:
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


def _request(row: Record) -> RequestRecord:
    return RequestRecord(
        row["id"], MessageType(row["type"]), Role(row["sender"]), RequestStatus(row["status"])
    )


def _message(row: Record) -> StoredMessage:
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


def _outbox(row: Record) -> OutboxEntry:
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


def _message_values(
    relationship: int, message: StoredMessage, receipt: bytes | None
) -> tuple[Any, ...]:
    return (
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
    )


def _ceil_timestamp(moment: datetime) -> str:
    """``moment`` as a timestamp, rounded up to the whole second: an offer valid
    until second S is live at ``moment`` iff S >= this."""
    if moment.microsecond:
        moment = moment + timedelta(seconds=1)
    return format_timestamp(moment)


class PostgresProtocolStore(PostgresDatabase):
    """The protocol records on PostgreSQL: :class:`~vrm_agent.store.ProtocolStore`,
    for several processes of one agent (see the module docstring). An agent's own
    tables name a relationship by ``relationships.pk`` (:func:`relationship_key`)."""

    SCHEMAS: ClassVar[tuple[PgSchema, ...]] = (PROTOCOL_SCHEMA,)

    #: Seconds a claimed delivery stays with this process (see :data:`CLAIM_LEASE_SECONDS`).
    claim_lease: float = CLAIM_LEASE_SECONDS

    # -- the inbox pipeline --

    async def receipt_for_digest(self, digest: str) -> bytes | None:
        """The receipt given for the inbound message with this token digest."""
        row = await self._fetchrow(
            "SELECT receipt FROM messages WHERE digest = $1 AND receipt IS NOT NULL", digest
        )
        return None if row is None else bytes(row[0])

    async def inbound_digest(self, sender: str, message_id: str) -> str | None:
        """The digest of the stored inbound message (sender, id), if any."""
        row = await self._fetchrow(
            "SELECT digest FROM messages WHERE message_id = $1"
            f" AND relationship = {relationship_key(2)} AND direction = 'in'",
            message_id,
            sender,
        )
        return None if row is None else str(row[0])

    async def thread_peer(self, thread: str) -> str | None:
        """The peer of the relationship the thread belongs to, if the thread is known."""
        row = await self._fetchrow(
            "SELECT r.peer_id FROM threads t JOIN relationships r ON r.pk = t.relationship"
            " WHERE t.thread = $1",
            thread,
        )
        return None if row is None else str(row[0])

    async def message_peers(self, message_id: str) -> frozenset[str]:
        """The peers of the relationships holding a message with this id."""
        rows = await self._fetch(
            "SELECT DISTINCT r.peer_id FROM messages m JOIN relationships r"
            " ON r.pk = m.relationship WHERE m.message_id = $1",
            message_id,
        )
        return frozenset(str(row[0]) for row in rows)

    async def relationship(self, peer: str) -> RelationshipRecord | None:
        """The relationship with ``peer``."""
        row = await self._fetchrow(
            "SELECT peer_id, core, thread, reply_inbox, deal_seen, delivery_failures"
            " FROM relationships WHERE peer_id = $1",
            peer,
        )
        return None if row is None else _relationship(row)

    async def ledger_facts(self, peer: str, query: LedgerQuery, now: datetime) -> LedgerFacts:
        """Exactly the records ``query`` names in the relationship with ``peer``."""
        offers: list[OfferRecord] = []
        requests: list[RequestRecord] = []
        if query.offers or query.open_offers_of is not None:
            rows = await self._fetch(
                f"SELECT {_OFFER_COLUMNS} FROM ledger_offers"
                f" WHERE relationship = {relationship_key(1)} AND (id = ANY($2::text[])"
                " OR (sender = $3 AND status = 'open' AND valid_until >= $4))",
                peer,
                sorted(query.offers),
                query.open_offers_of.value if query.open_offers_of is not None else None,
                _ceil_timestamp(now),
            )
            offers = [_offer(row) for row in rows]
        if query.requests or query.open_requests_of is not None:
            rows = await self._fetch(
                f"SELECT {_REQUEST_COLUMNS} FROM ledger_requests"
                f" WHERE relationship = {relationship_key(1)} AND (id = ANY($2::text[])"
                " OR (type = $3 AND status = 'open'))",
                peer,
                sorted(query.requests),
                query.open_requests_of.value if query.open_requests_of is not None else None,
            )
            requests = [_request(row) for row in rows]
        return LedgerFacts.of(query, offers, requests)

    async def commit(self, unit: UnitOfWork) -> None:
        """Apply ``unit`` in one transaction and commit it: the transaction of the
        :meth:`exclusive` block this task is in, else one of its own holding the
        peer's lock (so the peer's outbox ids are taken in commit order).

        Raises:
            InboundConflict: the unit's inbound (sender, id) is already stored.
            ConstraintViolation: another rule was broken (nothing applied).
            StoreUnavailable: it cannot be written now (nothing applied).
            StoreClosed: the store is closed.
        """
        self._check_open()
        held = self._held()
        try:
            if held is not None and held.open:
                # The block's transaction ends with its unit; the locks go with it.
                held.open = False
                await _shielded(self._finish(held.conn, unit))
                return
            async with self._pool.acquire() as conn:
                await _shielded(self._finish(conn, unit, lock=True))
        except _DRIVER_ERRORS as error:
            self._check_open()
            raise _store_error(error) from None

    async def _finish(self, conn: Connection, unit: UnitOfWork, *, lock: bool = False) -> None:
        """Write ``unit`` and COMMIT (``lock``: BEGIN and take the peer's lock first);
        ROLLBACK whatever fails."""
        if lock:
            await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({lock_id('p ' + unit.peer)})")
        try:
            await self._apply_unit(conn, unit)
        except BaseException:
            await _rollback(conn)
            raise
        await conn.execute("COMMIT")

    # -- history and the ledger --

    async def message(self, sender: str, message_id: str) -> StoredMessage | None:
        """A stored message by its sender and id."""
        row = await self._fetchrow(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN relationships r"
            " ON r.pk = m.relationship WHERE m.message_id = $1 AND m.sender = $2",
            message_id,
            sender,
        )
        return None if row is None else _message(row)

    async def messages_of(self, peer: str) -> list[StoredMessage]:
        """Every message of the relationship with ``peer``, both ways, oldest first."""
        rows = await self._fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN relationships r"
            " ON r.pk = m.relationship WHERE r.peer_id = $1 ORDER BY m.pk",
            peer,
        )
        return [_message(row) for row in rows]

    async def offers(self, peer: str) -> list[OfferRecord]:
        """Every offer record of the relationship, oldest first."""
        rows = await self._fetch(
            f"SELECT {_OFFER_COLUMNS} FROM ledger_offers WHERE relationship = {relationship_key(1)}"
            " ORDER BY pk",
            peer,
        )
        return [_offer(row) for row in rows]

    async def requests(self, peer: str) -> list[RequestRecord]:
        """Every request record of the relationship, oldest first."""
        rows = await self._fetch(
            f"SELECT {_REQUEST_COLUMNS} FROM ledger_requests"
            f" WHERE relationship = {relationship_key(1)} ORDER BY pk",
            peer,
        )
        return [_request(row) for row in rows]

    # -- the outbox and the mailbox --

    async def due_deliveries(self, now: float, limit: int = 20) -> list[OutboxEntry]:
        """Entries to POST due at ``now``, oldest first, in order per peer, each with
        its relationship's standing and claimed for this process (see the module
        docstring): a process never gets an entry another live process claimed
        and has not yet recorded an outcome for.

        Raises:
            StoreUnavailable: it cannot be read or written now.
        """
        pid, since = await self._presence_of()

        async def claim(conn: Connection) -> list[Record]:
            # FOR UPDATE SKIP LOCKED: two processes claiming at once take different
            # entries, and neither waits for the other.
            return await conn.fetch(
                f"""
                WITH due AS (
                    SELECT o.id FROM outbox o
                    WHERE {_HEAD_OF_QUEUE} AND o.next_attempt <= $1
                      AND (o.claimed_until IS NULL OR o.claimed_until <= $1
                           OR NOT {_CLAIMER_ALIVE})
                    ORDER BY o.id LIMIT $2
                    FOR UPDATE OF o SKIP LOCKED
                )
                UPDATE outbox o SET claimed_until = $3, claimed_by = $4, claimed_since = $5
                FROM due, messages m, relationships r
                WHERE o.id = due.id AND m.pk = o.message_pk AND r.pk = o.relationship
                RETURNING {_OUTBOX_COLUMNS}
                """,
                now,
                limit,
                now + self.claim_lease,
                pid,
                since,
            )

        # One statement: atomic on its own, no BEGIN and COMMIT round trips.
        rows = await self._autocommit(claim)
        return sorted((_outbox(row) for row in rows), key=lambda entry: entry.id)

    async def next_delivery_at(self) -> float | None:
        """When the next entry to POST can be taken (its attempt, or the end of a
        live claim), or ``None``."""
        row = await self._fetchrow(
            f"SELECT MIN({_TAKEABLE_AT}) FROM outbox o WHERE {_HEAD_OF_QUEUE}"
        )
        value = None if row is None else row[0]
        return None if value is None else float(value)

    async def delivery_standing(self, peer: str) -> DeliveryStanding:
        """Whether a deal was seen with ``peer``, and how many deliveries to it failed."""
        row = await self._fetchrow(
            "SELECT deal_seen, delivery_failures FROM relationships WHERE peer_id = $1", peer
        )
        if row is None:
            return DeliveryStanding(False, 0)
        return DeliveryStanding(bool(row[0]), int(row[1]))

    async def record_deliveries(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Record how delivery attempts ended, in one transaction; each entry's claim
        ends with its outcome.

        Raises:
            StoreUnavailable: it cannot be written now (nothing recorded).
        """
        if not outcomes:
            return
        if len(outcomes) == 1 and outcomes[0].count_against is None:
            # One statement (the common case: one entry, delivered): atomic alone.
            await self._autocommit(partial(_record_outcome, outcome=outcomes[0]))
            return

        async def record(conn: Connection) -> None:
            for outcome in outcomes:
                await _record_outcome(conn, outcome)
                if outcome.count_against is not None:
                    await conn.execute(
                        "UPDATE relationships SET delivery_failures = delivery_failures + 1"
                        " WHERE peer_id = $1",
                        outcome.count_against,
                    )

        await self._transaction(record)

    async def mailbox(self, peer: str, after: int, now: str, limit: int = 50) -> list[MailboxEntry]:
        """Messages for ``peer`` after ``after``, unexpired at ``now``, none withdrawn."""
        rows = await self._fetch(
            "SELECT o.id, m.token, o.inbox FROM outbox o JOIN messages m ON m.pk = o.message_pk"
            f" WHERE o.relationship = {relationship_key(1)} AND o.id > $2"
            " AND o.status <> 'cancelled' AND o.expires > $3 ORDER BY o.id LIMIT $4",
            peer,
            after,
            now,
            limit,
        )
        return [MailboxEntry(int(row[0]), bytes(row[1]), row[2]) for row in rows]

    async def outbox_entries(self, peer: str) -> list[OutboxEntry]:
        """Every outbox entry for ``peer`` (any status), oldest first."""
        rows = await self._fetch(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox o JOIN messages m ON m.pk = o.message_pk"
            " JOIN relationships r ON r.pk = o.relationship WHERE r.peer_id = $1 ORDER BY o.id",
            peer,
        )
        return [_outbox(row) for row in rows]

    # -- settings and keys --

    async def setting(self, name: str) -> str | None:
        """A persisted agent setting."""
        row = await self._fetchrow("SELECT value FROM settings WHERE name = $1", name)
        return None if row is None else str(row[0])

    async def set_setting(self, name: str, value: str) -> None:
        """Persist an agent setting.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        async def record(conn: Connection) -> None:
            await conn.execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                name,
                value,
            )

        await self._transaction(record)

    async def agent_key(self, name: str, generate: Callable[[], SigningKey]) -> SigningKey:
        """The agent's private key ``name``, made by ``generate`` and stored if the
        database holds none yet. Processes starting together get the same key:
        the first INSERT wins, the others read what it stored.

        Raises:
            StoreUnavailable: the database cannot be read or written.
            StoreError: the stored key is not a private JWK.
        """
        candidate = generate()

        async def keep_first(conn: Connection) -> str:
            await conn.execute(
                "INSERT INTO agent_keys (name, jwk, created_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (name) DO NOTHING",
                name,
                orjson.dumps(candidate.to_private_jwk()).decode(),
                format_timestamp(datetime.now(UTC)),
            )
            stored = await conn.fetchval("SELECT jwk FROM agent_keys WHERE name = $1", name)
            return str(stored)

        text = await self._transaction(keep_first)
        try:
            return SigningKey.from_private_jwk(orjson.loads(text))
        except (ValueError, InvalidKeyError) as error:
            raise StoreError(
                f"the key {name!r} in the database is not a private JWK ({str(error)[:120]})"
            ) from None

    # -- applying a unit of work --

    async def _apply_unit(self, conn: Connection, unit: UnitOfWork) -> None:
        """Write ``unit`` on ``conn``, inside its transaction.

        Raises:
            InboundConflict: its inbound message is stored already.
            asyncpg.PostgresError: a rule of the schema was broken, or worse.
        """
        record = unit.relationship
        relationship = int(
            await conn.fetchval(
                "INSERT INTO relationships (peer_id, core, thread, reply_inbox, deal_seen)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (peer_id) DO UPDATE SET"
                " core = excluded.core, thread = excluded.thread,"
                " reply_inbox = excluded.reply_inbox, deal_seen = excluded.deal_seen"
                " RETURNING pk",
                unit.peer,
                orjson.dumps(record.core.to_json(), option=orjson.OPT_SORT_KEYS).decode(),
                record.thread,
                record.reply_inbox,
                record.deal_seen,
            )
        )
        if unit.inbound is not None:
            # spec §9.3: the store is the replay guard of record: unique (id,
            # relationship, direction), which for an inbound message is (sender,
            # id), across every process. A copy another process is committing
            # right now is waited for, then conflicts; nothing of this unit stays.
            pk = await conn.fetchval(
                _INSERT_INBOUND, *_message_values(relationship, unit.inbound, unit.receipt)
            )
            if pk is None:
                stored = await conn.fetchrow(
                    "SELECT digest, receipt FROM messages WHERE message_id = $1"
                    " AND relationship = $2 AND direction = 'in'",
                    unit.inbound.message_id,
                    relationship,
                )
                assert stored is not None
                raise InboundConflict(
                    unit.inbound.sender,
                    unit.inbound.message_id,
                    str(stored[0]),
                    None if stored[1] is None else bytes(stored[1]),
                )
        for effect in unit.effects:
            await self._apply_effect(conn, relationship, effect)
        for write in unit.writes:
            await self.apply_domain(conn, write)
        if unit.cancel_deliveries:
            await conn.execute(
                "UPDATE outbox SET status = 'cancelled' WHERE relationship = $1"
                " AND status IN ('pending', 'mailbox')",
                relationship,
            )
        # spec §7.3: the first relationship to use a thread owns it.
        threads = {outbound.message.thread for outbound in unit.outbound}
        if unit.inbound is not None:
            threads.add(unit.inbound.thread)
        if threads:
            await conn.execute(
                "INSERT INTO threads (thread, relationship)"
                " SELECT thread, $2 FROM unnest($1::text[]) AS thread ORDER BY thread"
                " ON CONFLICT (thread) DO NOTHING",
                sorted(threads),
                relationship,
            )
        for outbound in unit.outbound:
            await conn.execute(
                _INSERT_OUTBOUND,
                *_message_values(relationship, outbound.message, None),
                outbound.deliver_to,
                unit.deliver_at,
                DeliveryStatus.PENDING.value
                if outbound.deliver_to
                else DeliveryStatus.MAILBOX.value,
            )

    async def apply_domain(self, conn: Connection, write: DomainWrite) -> None:
        """Apply one of the agent's own writes (inside the unit's transaction, after
        its relationship's row is written). Subclasses handle their own writes.

        Raises:
            TypeError: an agent write this store does not know (a defect).
        """
        raise TypeError(f"{type(self).__name__} does not know {type(write).__name__}")

    @staticmethod
    async def _apply_effect(conn: Connection, relationship: int, effect: Effect) -> None:
        """One ledger effect as rows (as :class:`~vrm_agent.sqlite.SqliteProtocolStore`
        does; the contract test holds both to :class:`~vrm_protocol.ledger.MemoryLedger`).

        Raises:
            TypeError: an effect this store does not know (the library grew one).
        """
        if isinstance(effect, OfferOpened):
            offer = effect.record
            await conn.execute(
                f"INSERT INTO ledger_offers (relationship, {_OFFER_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                " ON CONFLICT (relationship, id) DO UPDATE SET"
                " sender = excluded.sender, basis = excluded.basis,"
                " valid_until = excluded.valid_until, status = excluded.status,"
                " digest = excluded.digest, supersedes = excluded.supersedes,"
                " topic = excluded.topic, requires_approval = excluded.requires_approval",
                relationship,
                offer.id,
                offer.sender.value,
                offer.basis,
                format_timestamp(offer.valid_until),
                offer.status.value,
                offer.digest,
                offer.supersedes,
                offer.topic,
                offer.requires_approval,
            )
        elif isinstance(effect, OfferStatusChanged):
            await conn.execute(
                "UPDATE ledger_offers SET status = $1 WHERE relationship = $2 AND id = $3",
                effect.status.value,
                relationship,
                effect.offer_id,
            )
        elif isinstance(effect, OpenOffersLapsed):
            # Every offer live at `at` but the one excepted; those past their
            # validUntil stay expired (spec §7.4).
            await conn.execute(
                "UPDATE ledger_offers SET status = 'lapsed' WHERE relationship = $1"
                " AND status = 'open' AND valid_until >= $2 AND id <> $3",
                relationship,
                _ceil_timestamp(effect.at),
                effect.except_offer or "",
            )
        elif isinstance(effect, RequestOpened):
            request = effect.record
            await conn.execute(
                f"INSERT INTO ledger_requests (relationship, {_REQUEST_COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (relationship, id) DO UPDATE SET"
                " type = excluded.type, sender = excluded.sender, status = excluded.status",
                relationship,
                request.id,
                request.type.value,
                request.sender.value,
                request.status.value,
            )
        elif isinstance(effect, RequestClosed):
            await conn.execute(
                "UPDATE ledger_requests SET status = 'closed' WHERE relationship = $1 AND id = $2",
                relationship,
                effect.request_id,
            )
        elif isinstance(effect, ExitCompleted):
            # spec §7.4, §7.5: the exit closes every open offer and voids every
            # request; the records stay, so a later reference is refused for what it is.
            await conn.execute(
                "UPDATE ledger_offers SET status = 'lapsed' WHERE relationship = $1"
                " AND status = 'open'",
                relationship,
            )
            await conn.execute(
                "UPDATE ledger_requests SET status = 'void' WHERE relationship = $1", relationship
            )
        elif isinstance(effect, CORE_ONLY_EFFECTS):
            pass  # the core holds what they change; the answer itself is a stored message
        else:
            raise TypeError(f"a ledger effect this store does not know: {type(effect).__name__}")


async def _record_outcome(conn: Connection, outcome: DeliveryOutcome) -> None:
    """One delivery outcome on its outbox entry (its claim ends)."""
    if outcome.delivered_at is not None:
        await conn.execute(
            "UPDATE outbox SET status = 'delivered', delivered_at = $1,"
            " attempts = attempts + 1, claimed_until = NULL WHERE id = $2",
            outcome.delivered_at,
            outcome.entry_id,
        )
        return
    status = DeliveryStatus.FAILED if outcome.final else DeliveryStatus.PENDING
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + $1, next_attempt = $2,"
        " last_error = $3, status = $4, claimed_until = NULL WHERE id = $5",
        int(outcome.attempted),
        outcome.next_attempt,
        (outcome.error or "")[:500],
        status.value,
        outcome.entry_id,
    )


def _relationship(row: Record) -> RelationshipRecord:
    return RelationshipRecord(
        peer=str(row["peer_id"]),
        core=RelationshipCore.from_json(orjson.loads(row["core"])),
        thread=row["thread"],
        reply_inbox=row["reply_inbox"],
        deal_seen=bool(row["deal_seen"]),
        delivery_failures=int(row["delivery_failures"]),
    )


def relationships_of(rows: Iterable[Record]) -> dict[str, RelationshipRecord]:
    """Relationship rows (the columns :meth:`PostgresProtocolStore.relationship`
    reads, ``peer_id`` among them) by peer, in the rows' order."""
    return {str(row["peer_id"]): _relationship(row) for row in rows}
