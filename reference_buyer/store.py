"""The individual's personal data store: everything the buyer agent knows and did.

The store is the individual's memory of every relationship (seed 003: "the
individual keeps the history"): the profile and volunteered information,
research notes, credentials, one pairwise identity per counterparty, every
message sent and received as the exact signed bytes, the offers, deals,
relationship states, the consent records (terms accepted or refused, with
reasons), a log of what was shared with whom under which terms, and the
exits with the deletion receipts and how they checked out.

:class:`PersonalDataStore` is the interface the agent depends on;
:class:`SqliteStore` implements it on SQLite in WAL mode with
``synchronous=FULL``, so a message acknowledged with a receipt is on disk
(spec §11.3).  Private keys are never in the database: each lives in its own
file under ``<data-dir>/keys/``, created with mode 0600.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from vrm_protocol.keys import PairwiseIdentity, SigningKey

__all__ = [
    "ConsentRecord",
    "DealRecord",
    "ExitRecord",
    "IdentityRecord",
    "OfferRecord",
    "PersonalDataStore",
    "RelationshipRecord",
    "SharingRecord",
    "SqliteStore",
    "StoredMessage",
    "private_directory",
    "write_private",
]


def private_directory(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700 whatever the umask; an existing
    directory loses every permission of others and gains none (spec D10: a
    directory its owner made read-only stays so, and is refused).

    Raises:
        OSError: it cannot be created, its mode set, or it is read-only
            (``PermissionError``).
    """
    created = not path.exists()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700 if created else stat.S_IMODE(path.stat().st_mode) & 0o700)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "the data directory is read-only", str(path))


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` atomically and 0600 from its first byte (spec D10): a temporary
    file in the same directory, fsync, rename over ``path``, fsync the directory.

    Raises:
        OSError: the file cannot be written.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _ts(moment: datetime) -> str:
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """A pairwise pseudonym (spec §3.1): used with exactly one counterparty."""

    counterparty: str
    identity: PairwiseIdentity
    created: str

    @property
    def identifier(self) -> str:
        """The ``did:jwk`` identifier the counterparty knows us by."""
        return self.identity.identifier

    @property
    def key(self) -> SigningKey:
        """The pseudonym's signing key (``kid`` = identifier + ``#0``)."""
        return self.identity.signing_key


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message in or out, as the exact bytes that crossed the wire.

    ``verified`` is true for inbound messages that passed the whole receiving
    pipeline and for everything the agent signed itself; a paper answer typed
    in by the individual is stored with ``channel='paper'``, no token and
    ``verified`` false.
    """

    seq: int
    direction: str
    channel: str
    message_id: str
    type: str
    sender: str
    recipients: tuple[str, ...]
    thread: str
    parent: str | None
    counterparty: str
    token: bytes | None
    digest: str | None
    verified: bool
    payload: Mapping[str, Any]
    stored_at: str
    receipt: bytes | None
    delivery: str


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """An offer received (or a counter-offer sent) and where it stands."""

    offer_id: str
    counterparty: str
    thread: str
    digest: str | None
    basis: str
    status: str
    verified: bool
    body: Mapping[str, Any]
    received_at: str
    direction: str


@dataclass(frozen=True, slots=True)
class DealRecord:
    """A confirmed deal."""

    deal_id: str
    counterparty: str
    offer_id: str
    acceptance_id: str
    body: Mapping[str, Any]
    confirmed_at: str


@dataclass(frozen=True, slots=True)
class RelationshipRecord:
    """The relationship with one counterparty: pseudonym, state, machine snapshot."""

    counterparty: str
    identifier: str
    state: str
    snapshot: Mapping[str, Any]
    updated: str


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """The individual's answer to a terms assertion, item by item, with reasons."""

    counterparty: str
    assertion_id: str
    assertion_digest: str
    response_id: str
    decision: str
    accepted: Sequence[Mapping[str, Any]]
    refused: Sequence[Mapping[str, Any]]
    notifications: Sequence[str]
    decided_at: str


@dataclass(frozen=True, slots=True)
class SharingRecord:
    """One data category disclosed to a counterparty, in which message, under which terms."""

    counterparty: str
    identifier: str
    category: str
    message_id: str
    terms: str | None
    purposes: Sequence[str]
    shared_at: str


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """An exit: the notice sent and how the acknowledgement's deletion receipt checked out."""

    counterparty: str
    notice_id: str
    notice_digest: str
    reengagement: Mapping[str, Any]
    sent_at: str
    ack_id: str | None
    deletion_receipt: Mapping[str, Any] | None
    receipt_verified: bool | None
    problems: Sequence[str]


class PersonalDataStore(Protocol):
    """What the buyer agent needs from a personal data store."""

    data_dir: Path

    def transaction(self) -> AbstractContextManager[None]:
        """Group writes: all of them are committed durably, or none."""
        ...

    def close(self) -> None:
        """Release the database."""

    # profile, notes, credentials
    def set_profile(self, key: str, value: Any) -> None:
        """Set one item of the profile / volunteered information."""

    def profile(self) -> dict[str, Any]:
        """The whole profile."""
        ...

    def add_note(self, text: str, *, source: str, now: datetime) -> None:
        """Keep a research note."""

    def notes(self) -> list[dict[str, Any]]:
        """Every research note, oldest first."""
        ...

    def add_credential(
        self, *, kind: str, issuer: str, subject: str, token: str, now: datetime
    ) -> None:
        """Keep an attestation the individual holds."""

    def credentials(
        self, *, kind: str | None = None, subject: str | None = None
    ) -> list[dict[str, Any]]:
        """Attestations held, optionally of one kind / about one pseudonym."""
        ...

    # identities and keys
    def create_identity(
        self, counterparty: str, identity: PairwiseIdentity, *, now: datetime
    ) -> IdentityRecord:
        """Keep a new pairwise identity; its private key goes to a 0600 file."""
        ...

    def identity_for(self, counterparty: str) -> IdentityRecord | None:
        """The pseudonym used with ``counterparty``, if any."""
        ...

    def identity_by_identifier(self, identifier: str) -> IdentityRecord | None:
        """The identity record of one of our pseudonyms."""
        ...

    def identities(self) -> list[IdentityRecord]:
        """Every pseudonym."""
        ...

    def reply_tag(self, identifier: str) -> str:
        """The random path segment of the reply address of pseudonym ``identifier``
        (spec §12: unguessable, one per relationship); made on first use."""
        ...

    def identity_by_reply_tag(self, tag: str) -> IdentityRecord | None:
        """The pseudonym whose reply address ends in ``tag``, if any."""
        ...

    def mailbox_cursor(self, counterparty: str) -> int:
        """Where the next poll of ``counterparty``'s mailbox starts (0: the beginning)."""
        ...

    def set_mailbox_cursor(self, counterparty: str, cursor: int) -> None:
        """Remember where the next poll of ``counterparty``'s mailbox starts."""

    def save_counterparty(
        self, party_id: str, discovery: Mapping[str, Any], jwks: Mapping[str, Any], *, now: datetime
    ) -> None:
        """Remember a counterparty's discovery document and published keys."""

    def counterparty(self, party_id: str) -> dict[str, Any] | None:
        """A counterparty's discovery document and JWKS (``discovery``, ``jwks``, ``fetched``)."""
        ...

    def counterparties(self) -> list[str]:
        """Every counterparty the individual has contacted."""
        ...

    # messages
    def record_message(
        self,
        *,
        direction: str,
        channel: str,
        payload: Mapping[str, Any],
        counterparty: str,
        token: bytes | None,
        digest: str | None,
        verified: bool,
        now: datetime,
        receipt: bytes | None = None,
        delivery: str = "stored",
    ) -> StoredMessage:
        """Keep one message (see :meth:`SqliteStore.record_message`)."""
        ...

    def seen(self, sender: str, message_id: str) -> str | None:
        """The digest of inbound message (sender, id), if any (``ReplayGuard``, spec §9.3)."""
        ...

    def remember(self, sender: str, message_id: str, expires: datetime, digest: str) -> None:
        """``ReplayGuard``: remember a message (a store does it by storing it)."""

    def inbound(self, sender: str, message_id: str) -> StoredMessage | None:
        """The inbound message ``sender`` sent under ``message_id`` (replay guard, spec §9.3)."""
        ...

    def inbound_by_digest(self, digest: str) -> StoredMessage | None:
        """The inbound message with exactly these bytes, if received before."""
        ...

    def message(self, message_id: str) -> StoredMessage | None:
        """A message by id (ours, or received)."""
        ...

    def messages(
        self, *, counterparty: str | None = None, thread: str | None = None, type: str | None = None
    ) -> list[StoredMessage]:
        """Messages in the order they were stored."""
        ...

    def has_thread(self, counterparty: str, thread: str) -> bool:
        """Whether ``thread`` is a thread of the relationship with ``counterparty``."""
        ...

    def set_delivery(self, message_id: str, delivery: str, receipt: bytes | None) -> None:
        """Record how an outbound message was delivered and the receipt it got."""

    def threads(self, counterparty: str | None = None) -> list[dict[str, Any]]:
        """Conversation threads: id, counterparty, first type, message count, last activity."""
        ...

    # offers, deals, relationships
    def save_offer(self, record: OfferRecord) -> None:
        """Keep an offer."""

    def set_offer_status(self, offer_id: str, status: str) -> None:
        """Move an offer to ``open``/``superseded``/``accepted``/``declined``."""

    def offer(self, offer_id: str) -> OfferRecord | None:
        """One offer."""
        ...

    def offers(
        self,
        *,
        counterparty: str | None = None,
        status: str | None = None,
        direction: str | None = "in",
    ) -> list[OfferRecord]:
        """Offers, oldest first."""
        ...

    def save_deal(self, record: DealRecord) -> None:
        """Keep a confirmed deal."""

    def deals(self) -> list[DealRecord]:
        """Every deal."""
        ...

    def save_relationship(self, record: RelationshipRecord) -> None:
        """Keep the relationship's state and state-machine snapshot."""

    def relationship(self, counterparty: str) -> RelationshipRecord | None:
        """The relationship with one counterparty."""
        ...

    def relationships(self) -> list[RelationshipRecord]:
        """Every relationship."""
        ...

    # consent, sharing, exits
    def record_consent(self, record: ConsentRecord) -> None:
        """Keep the individual's answer to a terms assertion."""

    def consents(self, counterparty: str | None = None) -> list[ConsentRecord]:
        """Consent records, oldest first."""
        ...

    def log_sharing(self, records: Sequence[SharingRecord]) -> None:
        """Log disclosures."""

    def shared_with(self, counterparty: str) -> list[SharingRecord]:
        """Everything disclosed to ``counterparty``."""
        ...

    def record_exit(self, record: ExitRecord) -> None:
        """Keep an exit notice sent."""

    def record_exit_acknowledgement(
        self,
        notice_id: str,
        *,
        ack_id: str,
        deletion_receipt: Mapping[str, Any],
        verified: bool,
        problems: Sequence[str],
    ) -> None:
        """Keep the acknowledgement of an exit and the result of checking its receipt."""

    def exits(self, counterparty: str | None = None) -> list[ExitRecord]:
        """Exits, oldest first."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS profile (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL, source TEXT NOT NULL,
  text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, issuer TEXT NOT NULL,
  subject TEXT NOT NULL, token TEXT NOT NULL, stored_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (
  counterparty TEXT PRIMARY KEY, identifier TEXT NOT NULL UNIQUE, key_file TEXT NOT NULL,
  created TEXT NOT NULL);
-- The random path segment of each pseudonym's reply address (spec §12).
CREATE TABLE IF NOT EXISTS reply_paths (identifier TEXT PRIMARY KEY, tag TEXT NOT NULL UNIQUE);
-- Where the next poll of each counterparty's mailbox starts (spec §11.4, D5).
CREATE TABLE IF NOT EXISTS mailbox_cursors (
  counterparty TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counterparties (
  party_id TEXT PRIMARY KEY, discovery TEXT NOT NULL, jwks TEXT NOT NULL, fetched TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, direction TEXT NOT NULL, channel TEXT NOT NULL,
  message_id TEXT NOT NULL, type TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL,
  thread TEXT NOT NULL, parent TEXT, counterparty TEXT NOT NULL, token BLOB, digest TEXT,
  verified INTEGER NOT NULL, payload TEXT NOT NULL, stored_at TEXT NOT NULL, receipt BLOB,
  delivery TEXT NOT NULL);
-- The durable replay guard (spec §9.3): one inbound message per (sender, id), ever.
CREATE UNIQUE INDEX IF NOT EXISTS inbound_once ON messages (sender, message_id)
  WHERE direction = 'in';
CREATE INDEX IF NOT EXISTS messages_digest ON messages (digest);
CREATE INDEX IF NOT EXISTS messages_counterparty ON messages (counterparty, seq);
CREATE INDEX IF NOT EXISTS messages_thread ON messages (counterparty, thread);
CREATE INDEX IF NOT EXISTS messages_id ON messages (message_id);
CREATE TABLE IF NOT EXISTS offers (
  offer_id TEXT PRIMARY KEY, counterparty TEXT NOT NULL, thread TEXT NOT NULL, digest TEXT,
  basis TEXT NOT NULL, status TEXT NOT NULL, verified INTEGER NOT NULL, body TEXT NOT NULL,
  received_at TEXT NOT NULL, direction TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deals (
  deal_id TEXT PRIMARY KEY, counterparty TEXT NOT NULL, offer_id TEXT NOT NULL,
  acceptance_id TEXT NOT NULL, body TEXT NOT NULL, confirmed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS relationships (
  counterparty TEXT PRIMARY KEY, identifier TEXT NOT NULL, state TEXT NOT NULL,
  snapshot TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS consents (
  id INTEGER PRIMARY KEY AUTOINCREMENT, counterparty TEXT NOT NULL, assertion_id TEXT NOT NULL,
  assertion_digest TEXT NOT NULL, response_id TEXT NOT NULL, decision TEXT NOT NULL,
  accepted TEXT NOT NULL, refused TEXT NOT NULL, notifications TEXT NOT NULL,
  decided_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sharing_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT, counterparty TEXT NOT NULL, identifier TEXT NOT NULL,
  category TEXT NOT NULL, message_id TEXT NOT NULL, terms TEXT, purposes TEXT NOT NULL,
  shared_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exits (
  notice_id TEXT PRIMARY KEY, counterparty TEXT NOT NULL, notice_digest TEXT NOT NULL,
  reengagement TEXT NOT NULL, sent_at TEXT NOT NULL, ack_id TEXT, deletion_receipt TEXT,
  receipt_verified INTEGER, problems TEXT NOT NULL);
"""


class SqliteStore:
    """The personal data store on SQLite (one file, ``<data-dir>/buyer.sqlite3``)."""

    def __init__(self, data_dir: Path) -> None:
        """Open (creating if needed) the store in ``data_dir``.

        Raises:
            OSError: the directory cannot be created.
            sqlite3.Error: the database cannot be opened.
        """
        self.data_dir = data_dir
        # Spec D10: her store is hers alone, whatever the umask: the directories
        # 0700, every file 0600, the mode set explicitly rather than left to umask.
        private_directory(data_dir)
        self._keys_dir = data_dir / "keys"
        private_directory(self._keys_dir)
        self.path = data_dir / "buyer.sqlite3"
        # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm
        # files the database file's permissions.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a receipt is only given for what survives a power cut (spec §11.3).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one durable commit; nested uses join the outer one.

        Raises:
            sqlite3.Error: the commit failed (nothing was written).
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.transaction():
            return self._db.execute(sql, params)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params))

    # -- profile, notes, credentials ------------------------------------------------------------

    def set_profile(self, key: str, value: Any) -> None:
        """Set one profile item (volunteered personal information)."""
        self._write(
            "INSERT INTO profile (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, _dumps(value)),
        )

    def profile(self) -> dict[str, Any]:
        """The whole profile."""
        return {row["key"]: json.loads(row["value"]) for row in self._rows("SELECT * FROM profile")}

    def add_note(self, text: str, *, source: str, now: datetime) -> None:
        """Keep a research note."""
        self._write(
            "INSERT INTO notes (created, source, text) VALUES (?, ?, ?)", (_ts(now), source, text)
        )

    def notes(self) -> list[dict[str, Any]]:
        """Research notes, oldest first."""
        return [dict(row) for row in self._rows("SELECT * FROM notes ORDER BY id")]

    def add_credential(
        self, *, kind: str, issuer: str, subject: str, token: str, now: datetime
    ) -> None:
        """Keep an attestation (its compact token)."""
        self._write(
            "INSERT INTO credentials (kind, issuer, subject, token, stored_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (kind, issuer, subject, token, _ts(now)),
        )

    def credentials(
        self, *, kind: str | None = None, subject: str | None = None
    ) -> list[dict[str, Any]]:
        """Attestations held."""
        rows = self._rows("SELECT * FROM credentials ORDER BY id")
        return [
            dict(row)
            for row in rows
            if (kind is None or row["kind"] == kind)
            and (subject is None or row["subject"] == subject)
        ]

    # -- identities and keys ---------------------------------------------------------------------

    def _write_key_file(self, stem: str, key: SigningKey) -> Path:
        path = self._keys_dir / f"{stem}.jwk"
        # 0600 from the first byte, and atomic: a crash never leaves a torn key.
        write_private(path, json.dumps(key.to_private_jwk()).encode("utf-8"))
        return path

    def create_identity(
        self, counterparty: str, identity: PairwiseIdentity, *, now: datetime
    ) -> IdentityRecord:
        """Keep a pairwise identity for ``counterparty``.

        Raises:
            sqlite3.IntegrityError: the counterparty already has one.
        """
        stem = hashlib.sha256(identity.identifier.encode()).hexdigest()[:32]
        path = self._write_key_file(stem, identity.signing_key)
        self._write(
            "INSERT INTO identities (counterparty, identifier, key_file, created) VALUES (?,?,?,?)",
            (counterparty, identity.identifier, path.name, _ts(now)),
        )
        return IdentityRecord(counterparty, identity, _ts(now))

    def _identity(self, row: sqlite3.Row) -> IdentityRecord:
        jwk = json.loads((self._keys_dir / row["key_file"]).read_text("utf-8"))
        return IdentityRecord(
            row["counterparty"], PairwiseIdentity.from_private_jwk(jwk), row["created"]
        )

    def identity_for(self, counterparty: str) -> IdentityRecord | None:
        """The pseudonym used with ``counterparty``."""
        rows = self._rows("SELECT * FROM identities WHERE counterparty = ?", (counterparty,))
        return self._identity(rows[0]) if rows else None

    def identity_by_identifier(self, identifier: str) -> IdentityRecord | None:
        """One of our pseudonyms by its identifier."""
        rows = self._rows("SELECT * FROM identities WHERE identifier = ?", (identifier,))
        return self._identity(rows[0]) if rows else None

    def identities(self) -> list[IdentityRecord]:
        """Every pseudonym."""
        return [self._identity(row) for row in self._rows("SELECT * FROM identities")]

    def reply_tag(self, identifier: str) -> str:
        """The random reply-address segment of ``identifier``: 192 bits from the
        OS's CSPRNG, never derived from the pseudonym (spec §12)."""
        with self.transaction():
            rows = self._rows("SELECT tag FROM reply_paths WHERE identifier = ?", (identifier,))
            if rows:
                return str(rows[0]["tag"])
            tag = secrets.token_urlsafe(24)
            self._db.execute(
                "INSERT INTO reply_paths (identifier, tag) VALUES (?, ?)", (identifier, tag)
            )
            return tag

    def identity_by_reply_tag(self, tag: str) -> IdentityRecord | None:
        """The pseudonym whose reply address ends in ``tag``."""
        rows = self._rows("SELECT identifier FROM reply_paths WHERE tag = ?", (tag,))
        return self.identity_by_identifier(str(rows[0]["identifier"])) if rows else None

    def mailbox_cursor(self, counterparty: str) -> int:
        """Where the next poll of ``counterparty``'s mailbox starts."""
        rows = self._rows(
            "SELECT next FROM mailbox_cursors WHERE counterparty = ?", (counterparty,)
        )
        return int(rows[0]["next"]) if rows else 0

    def set_mailbox_cursor(self, counterparty: str, cursor: int) -> None:
        """Remember where the next poll of ``counterparty``'s mailbox starts."""
        self._write(
            "INSERT INTO mailbox_cursors (counterparty, next) VALUES (?, ?) "
            "ON CONFLICT (counterparty) DO UPDATE SET next = excluded.next",
            (counterparty, cursor),
        )

    def save_counterparty(
        self,
        party_id: str,
        discovery: Mapping[str, Any],
        jwks: Mapping[str, Any],
        *,
        now: datetime,
    ) -> None:
        """Remember a counterparty's discovery document and JWKS."""
        self._write(
            "INSERT INTO counterparties (party_id, discovery, jwks, fetched) VALUES (?,?,?,?) "
            "ON CONFLICT (party_id) DO UPDATE SET discovery = excluded.discovery, "
            "jwks = excluded.jwks, fetched = excluded.fetched",
            (party_id, _dumps(discovery), _dumps(jwks), _ts(now)),
        )

    def counterparty(self, party_id: str) -> dict[str, Any] | None:
        """A counterparty's discovery document and keys."""
        rows = self._rows("SELECT * FROM counterparties WHERE party_id = ?", (party_id,))
        if not rows:
            return None
        return {
            "discovery": json.loads(rows[0]["discovery"]),
            "jwks": json.loads(rows[0]["jwks"]),
            "fetched": rows[0]["fetched"],
        }

    def counterparties(self) -> list[str]:
        """Every counterparty contacted."""
        return [row["party_id"] for row in self._rows("SELECT party_id FROM counterparties")]

    # -- messages --------------------------------------------------------------------------------

    def record_message(
        self,
        *,
        direction: str,
        channel: str,
        payload: Mapping[str, Any],
        counterparty: str,
        token: bytes | None,
        digest: str | None,
        verified: bool,
        now: datetime,
        receipt: bytes | None = None,
        delivery: str = "stored",
    ) -> StoredMessage:
        """Keep one message.

        Raises:
            sqlite3.IntegrityError: an inbound message with this (sender, id) is
                already stored (the durable replay guard).
        """
        recipients = payload.get("to") or []
        cursor = self._write(
            "INSERT INTO messages (direction, channel, message_id, type, sender, recipients, "
            "thread, parent, counterparty, token, digest, verified, payload, stored_at, receipt, "
            "delivery) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                direction,
                channel,
                str(payload.get("id")),
                str(payload.get("type")),
                str(payload.get("from")),
                _dumps(list(recipients)),
                str(payload.get("thread") or payload.get("id")),
                payload.get("parent"),
                counterparty,
                token,
                digest,
                int(verified),
                _dumps(dict(payload)),
                _ts(now),
                receipt,
                delivery,
            ),
        )
        stored = self._message_rows("WHERE seq = ?", (cursor.lastrowid,))
        return stored[0]

    def _message_rows(self, where: str, params: Sequence[Any]) -> list[StoredMessage]:
        return [
            StoredMessage(
                seq=row["seq"],
                direction=row["direction"],
                channel=row["channel"],
                message_id=row["message_id"],
                type=row["type"],
                sender=row["sender"],
                recipients=tuple(json.loads(row["recipients"])),
                thread=row["thread"],
                parent=row["parent"],
                counterparty=row["counterparty"],
                token=row["token"],
                digest=row["digest"],
                verified=bool(row["verified"]),
                payload=json.loads(row["payload"]),
                stored_at=row["stored_at"],
                receipt=row["receipt"],
                delivery=row["delivery"],
            )
            # ``where`` is built from fixed column names only; values are parameters.
            for row in self._rows(f"SELECT * FROM messages {where} ORDER BY seq", params)  # noqa: S608
        ]

    def inbound(self, sender: str, message_id: str) -> StoredMessage | None:
        """The inbound message ``sender`` sent under ``message_id``."""
        rows = self._message_rows(
            "WHERE direction = 'in' AND sender = ? AND message_id = ?", (sender, message_id)
        )
        return rows[0] if rows else None

    def seen(self, sender: str, message_id: str) -> str | None:
        """The digest of the inbound message (sender, id), if any (``ReplayGuard``, spec §9.3)."""
        rows = self._rows(
            "SELECT digest FROM messages WHERE direction = 'in' AND sender = ? AND message_id = ?",
            (sender, message_id),
        )
        return str(rows[0]["digest"]) if rows else None

    def remember(self, sender: str, message_id: str, expires: datetime, digest: str) -> None:
        """Nothing to do: the stored message row *is* the memory, written in the
        same commit as the message (so a crash cannot remember an unstored id)."""

    def inbound_by_digest(self, digest: str) -> StoredMessage | None:
        """The inbound message with exactly these bytes."""
        rows = self._message_rows("WHERE direction = 'in' AND digest = ?", (digest,))
        return rows[0] if rows else None

    def message(self, message_id: str) -> StoredMessage | None:
        """A message by id (the first stored under it)."""
        rows = self._message_rows("WHERE message_id = ?", (message_id,))
        return rows[0] if rows else None

    def messages(
        self,
        *,
        counterparty: str | None = None,
        thread: str | None = None,
        type: str | None = None,
    ) -> list[StoredMessage]:
        """Messages in the order stored, optionally filtered."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("counterparty", counterparty), ("thread", thread), ("type", type)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._message_rows(where, params)

    def has_thread(self, counterparty: str, thread: str) -> bool:
        """Whether ``thread`` is a thread of the relationship with ``counterparty``."""
        rows = self._rows(
            "SELECT 1 FROM messages WHERE counterparty = ? AND thread = ? LIMIT 1",
            (counterparty, thread),
        )
        return bool(rows)

    def threads(self, counterparty: str | None = None) -> list[dict[str, Any]]:
        """Conversation threads (spec §5.2), oldest first: each thread's id, its
        counterparty, the type of the message that started it, how many
        messages it holds and when the last one was stored."""
        rows = self._rows(
            "SELECT thread, counterparty, COUNT(*) AS messages, MAX(stored_at) AS last, "
            "(SELECT type FROM messages AS first WHERE first.thread = m.thread "
            " ORDER BY seq LIMIT 1) AS started_by "
            "FROM messages AS m GROUP BY thread, counterparty ORDER BY MIN(seq)"
        )
        return [
            dict(row) for row in rows if counterparty is None or row["counterparty"] == counterparty
        ]

    def set_delivery(self, message_id: str, delivery: str, receipt: bytes | None) -> None:
        """Record the delivery outcome of an outbound message."""
        self._write(
            "UPDATE messages SET delivery = ?, receipt = COALESCE(?, receipt) "
            "WHERE direction = 'out' AND message_id = ?",
            (delivery, receipt, message_id),
        )

    # -- offers, deals, relationships ------------------------------------------------------------

    def save_offer(self, record: OfferRecord) -> None:
        """Keep an offer (replacing a record under the same id)."""
        self._write(
            "INSERT OR REPLACE INTO offers (offer_id, counterparty, thread, digest, basis, status, "
            "verified, body, received_at, direction) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                record.offer_id,
                record.counterparty,
                record.thread,
                record.digest,
                record.basis,
                record.status,
                int(record.verified),
                _dumps(dict(record.body)),
                record.received_at,
                record.direction,
            ),
        )

    def set_offer_status(self, offer_id: str, status: str) -> None:
        """Move an offer to another status."""
        self._write("UPDATE offers SET status = ? WHERE offer_id = ?", (status, offer_id))

    def _offer(self, row: sqlite3.Row) -> OfferRecord:
        return OfferRecord(
            row["offer_id"],
            row["counterparty"],
            row["thread"],
            row["digest"],
            row["basis"],
            row["status"],
            bool(row["verified"]),
            json.loads(row["body"]),
            row["received_at"],
            row["direction"],
        )

    def offer(self, offer_id: str) -> OfferRecord | None:
        """One offer."""
        rows = self._rows("SELECT * FROM offers WHERE offer_id = ?", (offer_id,))
        return self._offer(rows[0]) if rows else None

    def offers(
        self,
        *,
        counterparty: str | None = None,
        status: str | None = None,
        direction: str | None = "in",
    ) -> list[OfferRecord]:
        """Offers, oldest first."""
        return [
            self._offer(row)
            for row in self._rows("SELECT * FROM offers ORDER BY rowid")
            if (counterparty is None or row["counterparty"] == counterparty)
            and (status is None or row["status"] == status)
            and (direction is None or row["direction"] == direction)
        ]

    def save_deal(self, record: DealRecord) -> None:
        """Keep a deal."""
        self._write(
            "INSERT OR REPLACE INTO deals (deal_id, counterparty, offer_id, acceptance_id, body, "
            "confirmed_at) VALUES (?,?,?,?,?,?)",
            (
                record.deal_id,
                record.counterparty,
                record.offer_id,
                record.acceptance_id,
                _dumps(dict(record.body)),
                record.confirmed_at,
            ),
        )

    def deals(self) -> list[DealRecord]:
        """Every deal."""
        return [
            DealRecord(
                row["deal_id"],
                row["counterparty"],
                row["offer_id"],
                row["acceptance_id"],
                json.loads(row["body"]),
                row["confirmed_at"],
            )
            for row in self._rows("SELECT * FROM deals ORDER BY rowid")
        ]

    def save_relationship(self, record: RelationshipRecord) -> None:
        """Keep a relationship's state."""
        self._write(
            "INSERT OR REPLACE INTO relationships (counterparty, identifier, state, snapshot, "
            "updated) VALUES (?,?,?,?,?)",
            (
                record.counterparty,
                record.identifier,
                record.state,
                _dumps(dict(record.snapshot)),
                record.updated,
            ),
        )

    def _relationship(self, row: sqlite3.Row) -> RelationshipRecord:
        return RelationshipRecord(
            row["counterparty"],
            row["identifier"],
            row["state"],
            json.loads(row["snapshot"]),
            row["updated"],
        )

    def relationship(self, counterparty: str) -> RelationshipRecord | None:
        """The relationship with ``counterparty``."""
        rows = self._rows("SELECT * FROM relationships WHERE counterparty = ?", (counterparty,))
        return self._relationship(rows[0]) if rows else None

    def relationships(self) -> list[RelationshipRecord]:
        """Every relationship."""
        return [self._relationship(row) for row in self._rows("SELECT * FROM relationships")]

    # -- consent, sharing, exits -----------------------------------------------------------------

    def record_consent(self, record: ConsentRecord) -> None:
        """Keep a consent record."""
        self._write(
            "INSERT INTO consents (counterparty, assertion_id, assertion_digest, response_id, "
            "decision, accepted, refused, notifications, decided_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                record.counterparty,
                record.assertion_id,
                record.assertion_digest,
                record.response_id,
                record.decision,
                _dumps(list(record.accepted)),
                _dumps(list(record.refused)),
                _dumps(list(record.notifications)),
                record.decided_at,
            ),
        )

    def consents(self, counterparty: str | None = None) -> list[ConsentRecord]:
        """Consent records, oldest first."""
        return [
            ConsentRecord(
                row["counterparty"],
                row["assertion_id"],
                row["assertion_digest"],
                row["response_id"],
                row["decision"],
                json.loads(row["accepted"]),
                json.loads(row["refused"]),
                json.loads(row["notifications"]),
                row["decided_at"],
            )
            for row in self._rows("SELECT * FROM consents ORDER BY id")
            if counterparty is None or row["counterparty"] == counterparty
        ]

    def log_sharing(self, records: Sequence[SharingRecord]) -> None:
        """Log disclosures (all in one commit)."""
        with self.transaction():
            for record in records:
                self._db.execute(
                    "INSERT INTO sharing_log (counterparty, identifier, category, message_id, "
                    "terms, purposes, shared_at) VALUES (?,?,?,?,?,?,?)",
                    (
                        record.counterparty,
                        record.identifier,
                        record.category,
                        record.message_id,
                        record.terms,
                        _dumps(list(record.purposes)),
                        record.shared_at,
                    ),
                )

    def shared_with(self, counterparty: str) -> list[SharingRecord]:
        """Everything disclosed to ``counterparty``."""
        return [
            SharingRecord(
                row["counterparty"],
                row["identifier"],
                row["category"],
                row["message_id"],
                row["terms"],
                json.loads(row["purposes"]),
                row["shared_at"],
            )
            for row in self._rows(
                "SELECT * FROM sharing_log WHERE counterparty = ? ORDER BY id", (counterparty,)
            )
        ]

    def record_exit(self, record: ExitRecord) -> None:
        """Keep an exit notice sent."""
        self._write(
            "INSERT INTO exits (notice_id, counterparty, notice_digest, reengagement, sent_at, "
            "problems) VALUES (?,?,?,?,?,?)",
            (
                record.notice_id,
                record.counterparty,
                record.notice_digest,
                _dumps(dict(record.reengagement)),
                record.sent_at,
                _dumps(list(record.problems)),
            ),
        )

    def record_exit_acknowledgement(
        self,
        notice_id: str,
        *,
        ack_id: str,
        deletion_receipt: Mapping[str, Any],
        verified: bool,
        problems: Sequence[str],
    ) -> None:
        """Keep the acknowledgement and the check of its deletion receipt."""
        self._write(
            "UPDATE exits SET ack_id = ?, deletion_receipt = ?, receipt_verified = ?, "
            "problems = ? WHERE notice_id = ?",
            (
                ack_id,
                _dumps(dict(deletion_receipt)),
                int(verified),
                _dumps(list(problems)),
                notice_id,
            ),
        )

    def exits(self, counterparty: str | None = None) -> list[ExitRecord]:
        """Exits, oldest first."""
        return [
            ExitRecord(
                row["counterparty"],
                row["notice_id"],
                row["notice_digest"],
                json.loads(row["reengagement"]),
                row["sent_at"],
                row["ack_id"],
                json.loads(row["deletion_receipt"]) if row["deletion_receipt"] else None,
                None if row["receipt_verified"] is None else bool(row["receipt_verified"]),
                json.loads(row["problems"]),
            )
            for row in self._rows("SELECT * FROM exits ORDER BY rowid")
            if counterparty is None or row["counterparty"] == counterparty
        ]
