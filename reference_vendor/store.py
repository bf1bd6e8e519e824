"""The vendor's CRM store: the protocol records every agent keeps, and the vendor's own.

:class:`VendorStore` is the interface the vendor depends on: the runtime's
:class:`~vrm_agent.store.ProtocolStore` (messages, receipts, threads, the
relationship's core, the ledger, the outbox and mailbox) and the vendor's
domain: what it keeps of each offer beyond the ledger (the negotiation round,
the total), deals with the identity disclosed at acceptance, consents and the
data held under them, deletions, exits, the notices it held back, and each
individual's notification preferences. Typed async methods only, and nothing
that names a database, so that a PostgreSQL implementation can stand behind
the same interface and the same contract test
(``tests/vendor/test_store_contract.py``).

The vendor's writes are :class:`~vrm_agent.unit.DomainWrite` s added to the
unit of work of the message that causes them, so they commit with it, all or
nothing (spec §11.3). The history is the stored messages; nothing here is
rewritten as a relationship ages.

:class:`SqliteVendorStore` implements it on the runtime's SQLite base (group
commit, migrations: component ``reference_vendor``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from vrm_agent.sqlite import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_MAX_BATCH,
    RELATIONSHIP,
    Schema,
    SqliteProtocolStore,
    dumps,
)
from vrm_agent.store import ProtocolStore, StoreError
from vrm_agent.unit import DomainWrite
from vrm_protocol.canonical import b64url_decode
from vrm_protocol.models import OfferMessage, parse_message_dict

__all__ = [
    "VENDOR_SCHEMA",
    "ConsentPurposes",
    "ConsentRow",
    "DataRow",
    "DataValue",
    "DealIdentityUpdated",
    "DealRow",
    "DeletionRow",
    "EraseData",
    "ExitRow",
    "ForgetItem",
    "GrantRevokedRow",
    "GrantRow",
    "NotificationsChosen",
    "OfferTerms",
    "Preferences",
    "Reengagement",
    "SqliteVendorStore",
    "SuppressedRow",
    "VendorStore",
]

#: A data item's value: a string, or a structured value (a postal address).
DataValue = str | Mapping[str, Any]


# -- the vendor's writes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferTerms(DomainWrite):
    """What the vendor keeps of its own offer beyond the ledger: the negotiation
    round (0 for an answer to an RFI or RFP) and the total. (The terms of her
    counter-offers are in her stored messages.)"""

    peer: str
    offer_id: str
    round: int
    total_amount: str
    currency: str


@dataclass(frozen=True, slots=True)
class DealRow(DomainWrite):
    """A deal. The identity the buyer disclosed at acceptance is kept here, with
    the data categories it holds (what a deletion receipt names as retained)."""

    id: str
    peer: str
    offer_id: str
    acceptance_id: str
    total_amount: str
    currency: str
    identity: Mapping[str, Any]
    created_at: str
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsentRow(DomainWrite):
    """One accepted data request of a terms response (or service response)."""

    peer: str
    item: str
    purposes: tuple[str, ...]
    retention: str
    retain_until: str
    source_message: str
    created_at: str


@dataclass(frozen=True, slots=True)
class DataRow(DomainWrite):
    """One item of personal data held, with the purposes and deadline it is held under."""

    peer: str
    item: str
    value: DataValue
    purposes: tuple[str, ...]
    retain_until: str
    source_message: str
    created_at: str


@dataclass(frozen=True, slots=True)
class DealIdentityUpdated(DomainWrite):
    """Her new details replace those of the identity a deal holds (spec §6.73)."""

    deal_id: str
    identity: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EraseData(DomainWrite):
    """Delete every data item and consent held about ``peer`` (an exit)."""

    peer: str


@dataclass(frozen=True, slots=True)
class DeletionRow(DomainWrite):
    """A deletion event: what was deleted, why (``retention-expired``, ``exit``), when."""

    peer: str
    item: str
    reason: str
    deleted_at: str


@dataclass(frozen=True, slots=True)
class ExitRow(DomainWrite):
    """An exit: the notice, the export digest and the deletion receipt sent."""

    peer: str
    notice_id: str
    notice_digest: str
    export_digest: str | None
    deletion_receipt: Mapping[str, Any]
    acknowledgement_id: str
    created_at: str


@dataclass(frozen=True, slots=True)
class SuppressedRow(DomainWrite):
    """A notice the vendor wanted to send but the individual's preferences forbid."""

    peer: str
    kind: str
    category: str
    reason: str
    created_at: str


@dataclass(frozen=True, slots=True)
class NotificationsChosen(DomainWrite):
    """The notification categories the individual allows (her latest terms response)."""

    peer: str
    allowed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Reengagement(DomainWrite):
    """She re-engaged after an exit: one more engagement, her earlier choices void."""

    peer: str


@dataclass(frozen=True, slots=True)
class Preferences:
    """What the individual chose: notification categories (``None`` before she
    answered any terms), and how many times she engaged."""

    notifications_allowed: tuple[str, ...] | None = None
    engagements: int = 1


# -- the interface ---------------------------------------------------------------------------------


class VendorStore(ProtocolStore, Protocol):
    """The vendor's store (see the module docstring). Every method may raise
    :class:`~vrm_agent.store.StoreUnavailable`."""

    async def offer_terms(self, peer: str, offer_id: str) -> OfferTerms | None:
        """The round and total of an offer of the relationship."""
        ...

    async def preferences(self, peer: str) -> Preferences:
        """The individual's choices (the defaults before any)."""
        ...

    async def deals_for(self, peer: str) -> list[DealRow]:
        """Every deal with ``peer``, oldest first."""
        ...

    async def consents_for(self, peer: str) -> list[ConsentRow]:
        """The consents in force, oldest first."""
        ...

    async def data_for(self, peer: str) -> list[DataRow]:
        """The personal data held about ``peer``, by item."""
        ...

    async def deletions_for(self, peer: str) -> list[DeletionRow]:
        """Every deletion recorded for ``peer``, oldest first."""
        ...

    async def sweep_retention(self, now: str) -> list[DeletionRow]:
        """Delete data and consents whose retention ended at or before ``now`` (spec
        §12), recording one deletion per data item, in one unit of work."""
        ...

    async def next_retention_deadline(self) -> str | None:
        """The earliest end of retention of anything held, if anything is held."""
        ...

    async def grant(self, grant_id: str) -> GrantRow | None:
        """The access grant ``grant_id`` it holds, if any."""
        ...

    async def summary(self) -> dict[str, Any]:
        """A deterministic JSON summary of relationships, offers, data and deletions
        (the test driver's ``GET /state``), read at one committed state."""
        ...


@dataclass(frozen=True, slots=True)
class ForgetItem(DomainWrite):
    """She withdrew her consent to ``item`` (spec §6.21): its data held and its
    consents are deleted and, when ``identity_member`` is set, that member of the
    identity her acceptance disclosed is struck from every deal's record (what
    the deal's legal basis does not need)."""

    peer: str
    item: str
    identity_member: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentPurposes(DomainWrite):
    """The purposes the vendor now holds ``item`` for, after her consent change."""

    peer: str
    item: str
    purposes: tuple[str, ...]
    #: A new, earlier end of its retention, when her change shortened it.
    retain_until: str | None = None


@dataclass(frozen=True, slots=True)
class GrantRow(DomainWrite):
    """An access grant it holds (spec §6.18): what it may read, where, with which
    key, until when; ``revoked_at`` once she revoked it (spec §6.19)."""

    grant_id: str
    peer: str
    message_id: str
    items: tuple[str, ...]
    purposes: tuple[str, ...]
    until: str
    endpoint: str
    key: str
    created_at: str
    revoked_at: str | None = None


@dataclass(frozen=True, slots=True)
class GrantRevokedRow(DomainWrite):
    """She revoked a grant (or her agent answered a read ``grant-revoked``): no
    read under it again (spec §6.19, VRM-GRANT-003)."""

    grant_id: str
    peer: str
    revoked_at: str


# -- SQLite ----------------------------------------------------------------------------------------

#: Migration 2 of the vendor's tables, the same on SQLite and PostgreSQL.
GRANTS_TABLE: Final = """
        CREATE TABLE access_grants (
            grant_id TEXT PRIMARY KEY,
            peer_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            items TEXT NOT NULL,
            purposes TEXT NOT NULL,
            until TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            key TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        );
        CREATE INDEX access_grants_peer ON access_grants (peer_id)
        """

#: The vendor's own tables (component ``reference_vendor``).
VENDOR_SCHEMA: Final = Schema(
    "reference_vendor",
    (
        """
        CREATE TABLE offer_terms (
            relationship INTEGER NOT NULL,
            offer_id TEXT NOT NULL,
            round INTEGER NOT NULL,
            total_amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            PRIMARY KEY (relationship, offer_id),
            FOREIGN KEY (relationship, offer_id) REFERENCES ledger_offers (relationship, id)
        ) WITHOUT ROWID;
        CREATE TABLE deals (
            pk INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            relationship INTEGER NOT NULL,
            offer_id TEXT NOT NULL,
            acceptance_id TEXT NOT NULL,
            total_amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            identity TEXT NOT NULL,
            categories TEXT NOT NULL,
            created_at TEXT NOT NULL,
            FOREIGN KEY (relationship, offer_id) REFERENCES ledger_offers (relationship, id)
        );
        CREATE INDEX deals_relationship ON deals (relationship);
        CREATE TABLE preferences (
            relationship INTEGER PRIMARY KEY REFERENCES relationships (pk),
            notifications_allowed TEXT,
            engagements INTEGER NOT NULL
        );
        CREATE TABLE consents (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            item TEXT NOT NULL,
            purposes TEXT NOT NULL,
            retention TEXT NOT NULL,
            retain_until TEXT NOT NULL,
            source_message TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX consents_relationship ON consents (relationship);
        CREATE INDEX consents_retention ON consents (retain_until);
        CREATE TABLE data_held (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            item TEXT NOT NULL,
            value TEXT NOT NULL,
            purposes TEXT NOT NULL,
            retain_until TEXT NOT NULL,
            source_message TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (relationship, item)
        );
        CREATE INDEX data_held_retention ON data_held (retain_until);
        CREATE TABLE deletions (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            item TEXT NOT NULL,
            reason TEXT NOT NULL,
            deleted_at TEXT NOT NULL
        );
        CREATE INDEX deletions_relationship ON deletions (relationship);
        CREATE TABLE exits (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            notice_id TEXT NOT NULL,
            notice_digest TEXT NOT NULL,
            export_digest TEXT,
            deletion_receipt TEXT NOT NULL,
            acknowledgement_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE suppressed_notices (
            pk INTEGER PRIMARY KEY,
            relationship INTEGER NOT NULL REFERENCES relationships (pk),
            kind TEXT NOT NULL,
            category TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        # 2: access grants it holds (spec §6.18, §6.19).
        GRANTS_TABLE,
    ),
)

#: Rows of a table with their relationship's peer: ``FROM {table} x JOIN relationships r``.
_WITH_PEER: Final = "JOIN relationships r ON r.pk = x.relationship"


def _deletion(row: sqlite3.Row) -> DeletionRow:
    return DeletionRow(row["peer_id"], row["item"], row["reason"], row["deleted_at"])


class SqliteVendorStore(SqliteProtocolStore):
    """:class:`VendorStore` on SQLite (see the module docstring).

    Args:
        path: the database file (created, with its schema, on first use).
        max_batch: the most units of work committed in one transaction.
        busy_timeout: seconds to wait for a lock another connection holds.

    Raises:
        StoreError: the file cannot be opened or migrated, or was written by
            another version of the vendor.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        super().__init__(
            path,
            (VENDOR_SCHEMA,),
            max_batch=max_batch,
            busy_timeout=busy_timeout,
            name="vendor-store",
        )

    def _before_migrations(self, conn: sqlite3.Connection) -> None:
        legacy = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if legacy is not None:
            # The store of the vendor before the runtime (a relationship snapshot
            # per row, offers with bodies): its records do not map one to one.
            raise StoreError(
                f"{self.path} was written by an earlier version of the reference vendor, "
                "which this version cannot read; keep serving it with that version, or "
                "start this one with a new --data-dir"
            )

    # -- the vendor's reads --

    async def offer_terms(self, peer: str, offer_id: str) -> OfferTerms | None:
        """The round and total of an offer of the relationship."""
        rows = self._read(
            "SELECT round, total_amount, currency FROM offer_terms"
            f" WHERE relationship = {RELATIONSHIP} AND offer_id = ?",
            (peer, offer_id),
        )
        if not rows:
            return None
        row = rows[0]
        return OfferTerms(peer, offer_id, int(row[0]), str(row[1]), str(row[2]))

    async def preferences(self, peer: str) -> Preferences:
        """The individual's choices (the defaults before any)."""
        return self._preferences(peer)

    def _preferences(self, peer: str) -> Preferences:
        rows = self._read(
            "SELECT notifications_allowed, engagements FROM preferences"
            f" WHERE relationship = {RELATIONSHIP}",
            (peer,),
        )
        if not rows:
            return Preferences()
        allowed = rows[0][0]
        return Preferences(
            None if allowed is None else tuple(orjson.loads(allowed)), int(rows[0][1])
        )

    async def deals_for(self, peer: str) -> list[DealRow]:
        """Every deal with ``peer``, oldest first."""
        return self._deals(peer)

    def _deals(self, peer: str) -> list[DealRow]:
        rows = self._read(
            f"SELECT x.*, r.peer_id FROM deals x {_WITH_PEER} WHERE r.peer_id = ? ORDER BY x.pk",
            (peer,),
        )
        return [
            DealRow(
                row["id"],
                row["peer_id"],
                row["offer_id"],
                row["acceptance_id"],
                row["total_amount"],
                row["currency"],
                orjson.loads(row["identity"]),
                row["created_at"],
                tuple(orjson.loads(row["categories"])),
            )
            for row in rows
        ]

    async def consents_for(self, peer: str) -> list[ConsentRow]:
        """The consents in force for ``peer``, oldest first."""
        return self._consents(peer)

    def _consents(self, peer: str) -> list[ConsentRow]:
        rows = self._read(
            f"SELECT x.*, r.peer_id FROM consents x {_WITH_PEER} WHERE r.peer_id = ? ORDER BY x.pk",
            (peer,),
        )
        return [
            ConsentRow(
                row["peer_id"],
                row["item"],
                tuple(orjson.loads(row["purposes"])),
                row["retention"],
                row["retain_until"],
                row["source_message"],
                row["created_at"],
            )
            for row in rows
        ]

    async def data_for(self, peer: str) -> list[DataRow]:
        """The personal data held about ``peer``, by item."""
        return self._data(peer)

    def _data(self, peer: str) -> list[DataRow]:
        rows = self._read(
            f"SELECT x.*, r.peer_id FROM data_held x {_WITH_PEER} WHERE r.peer_id = ?"
            " ORDER BY x.item",
            (peer,),
        )
        return [
            DataRow(
                row["peer_id"],
                row["item"],
                orjson.loads(row["value"]),
                tuple(orjson.loads(row["purposes"])),
                row["retain_until"],
                row["source_message"],
                row["created_at"],
            )
            for row in rows
        ]

    async def deletions_for(self, peer: str) -> list[DeletionRow]:
        """Every deletion recorded for ``peer``, oldest first."""
        rows = self._read(
            f"SELECT x.*, r.peer_id FROM deletions x {_WITH_PEER} WHERE r.peer_id = ?"
            " ORDER BY x.pk",
            (peer,),
        )
        return [_deletion(row) for row in rows]

    async def next_retention_deadline(self) -> str | None:
        """The earliest end of retention of anything held, if anything is held."""
        rows = self._read(
            "SELECT MIN(t) FROM (SELECT MIN(retain_until) AS t FROM data_held"
            " UNION ALL SELECT MIN(retain_until) AS t FROM consents) AS deadlines"
        )
        value = rows[0][0] if rows else None
        return None if value is None else str(value)

    # -- the vendor's writes --

    async def sweep_retention(self, now: str) -> list[DeletionRow]:
        """Delete data held and consents whose retention ended at or before ``now``
        (spec §12: data is kept no longer than the accepted retention), recording
        one deletion event per data item, in one unit of work.

        Raises:
            StoreUnavailable: it cannot be written now (nothing deleted).
        """

        def sweep(conn: sqlite3.Connection) -> list[DeletionRow]:
            deleted: list[DeletionRow] = []
            rows = conn.execute(
                f"SELECT r.peer_id, x.item FROM data_held x {_WITH_PEER}"
                " WHERE x.retain_until <= ? ORDER BY x.pk",
                (now,),
            ).fetchall()
            for row in rows:
                deletion = DeletionRow(row["peer_id"], row["item"], "retention-expired", now)
                self.apply_domain(conn, deletion)
                deleted.append(deletion)
            conn.execute("DELETE FROM data_held WHERE retain_until <= ?", (now,))
            conn.execute("DELETE FROM consents WHERE retain_until <= ?", (now,))
            return deleted

        return await self._write(sweep)

    async def grant(self, grant_id: str) -> GrantRow | None:
        """The access grant ``grant_id`` it holds, if any."""
        rows = self._read("SELECT * FROM access_grants WHERE grant_id = ?", (grant_id,))
        return grant_row(rows[0]) if rows else None

    def apply_domain(self, conn: sqlite3.Connection, write: DomainWrite) -> None:
        """Apply one of the vendor's writes (on the writer thread, in the unit's savepoint).

        Raises:
            TypeError: a write the vendor's store does not know.
        """
        if isinstance(write, OfferTerms):
            conn.execute(
                "INSERT INTO offer_terms (relationship, offer_id, round, total_amount, currency)"
                f" VALUES ({RELATIONSHIP}, ?, ?, ?, ?) ON CONFLICT (relationship, offer_id)"
                " DO UPDATE SET"
                " round = excluded.round, total_amount = excluded.total_amount,"
                " currency = excluded.currency",
                (write.peer, write.offer_id, write.round, write.total_amount, write.currency),
            )
        elif isinstance(write, DealIdentityUpdated):
            conn.execute(
                "UPDATE deals SET identity = ? WHERE id = ?",
                (dumps(write.identity), write.deal_id),
            )
        elif isinstance(write, DealRow):
            conn.execute(
                "INSERT INTO deals (id, relationship, offer_id, acceptance_id, total_amount,"
                " currency, identity, categories, created_at)"
                f" VALUES (?, {RELATIONSHIP}, ?, ?, ?, ?, ?, ?, ?)",
                (
                    write.id,
                    write.peer,
                    write.offer_id,
                    write.acceptance_id,
                    write.total_amount,
                    write.currency,
                    dumps(write.identity),
                    dumps(list(write.categories)),
                    write.created_at,
                ),
            )
        elif isinstance(write, ConsentRow):
            conn.execute(
                "INSERT INTO consents (relationship, item, purposes, retention, retain_until,"
                f" source_message, created_at) VALUES ({RELATIONSHIP}, ?, ?, ?, ?, ?, ?)",
                (
                    write.peer,
                    write.item,
                    dumps(list(write.purposes)),
                    write.retention,
                    write.retain_until,
                    write.source_message,
                    write.created_at,
                ),
            )
        elif isinstance(write, DataRow):
            conn.execute(
                "INSERT INTO data_held (relationship, item, value, purposes, retain_until,"
                f" source_message, created_at) VALUES ({RELATIONSHIP}, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (relationship, item) DO UPDATE SET value = excluded.value,"
                " purposes = excluded.purposes, retain_until = excluded.retain_until,"
                " source_message = excluded.source_message, created_at = excluded.created_at",
                (
                    write.peer,
                    write.item,
                    dumps(write.value),
                    dumps(list(write.purposes)),
                    write.retain_until,
                    write.source_message,
                    write.created_at,
                ),
            )
        elif isinstance(write, EraseData):
            # Spec §6.14: deletion happens in the same transaction as the
            # acknowledgement that receipts it.
            conn.execute(
                f"DELETE FROM data_held WHERE relationship = {RELATIONSHIP}", (write.peer,)
            )
            conn.execute(f"DELETE FROM consents WHERE relationship = {RELATIONSHIP}", (write.peer,))
        elif isinstance(write, DeletionRow):
            conn.execute(
                "INSERT INTO deletions (relationship, item, reason, deleted_at)"
                f" VALUES ({RELATIONSHIP}, ?, ?, ?)",
                (write.peer, write.item, write.reason, write.deleted_at),
            )
        elif isinstance(write, ExitRow):
            conn.execute(
                "INSERT INTO exits (relationship, notice_id, notice_digest, export_digest,"
                " deletion_receipt, acknowledgement_id, created_at)"
                f" VALUES ({RELATIONSHIP}, ?, ?, ?, ?, ?, ?)",
                (
                    write.peer,
                    write.notice_id,
                    write.notice_digest,
                    write.export_digest,
                    dumps(write.deletion_receipt),
                    write.acknowledgement_id,
                    write.created_at,
                ),
            )
        elif isinstance(write, SuppressedRow):
            conn.execute(
                "INSERT INTO suppressed_notices (relationship, kind, category, reason,"
                f" created_at) VALUES ({RELATIONSHIP}, ?, ?, ?, ?)",
                (write.peer, write.kind, write.category, write.reason, write.created_at),
            )
        elif isinstance(write, NotificationsChosen):
            conn.execute(
                "INSERT INTO preferences (relationship, notifications_allowed, engagements)"
                f" VALUES ({RELATIONSHIP}, ?, 1) ON CONFLICT (relationship) DO UPDATE SET"
                " notifications_allowed = excluded.notifications_allowed",
                (write.peer, dumps(list(write.allowed))),
            )
        elif isinstance(write, Reengagement):
            conn.execute(
                "INSERT INTO preferences (relationship, notifications_allowed, engagements)"
                f" VALUES ({RELATIONSHIP}, NULL, 2) ON CONFLICT (relationship) DO UPDATE SET"
                " notifications_allowed = NULL, engagements = preferences.engagements + 1",
                (write.peer,),
            )
        elif isinstance(write, ForgetItem):
            for table in ("data_held", "consents"):
                conn.execute(
                    f"DELETE FROM {table} WHERE relationship = {RELATIONSHIP} AND item = ?",
                    (write.peer, write.item),
                )
            deals = conn.execute(
                f"SELECT pk, identity, categories FROM deals WHERE relationship = {RELATIONSHIP}",
                (write.peer,),
            ).fetchall()
            for pk, identity, categories in deals:
                conn.execute(
                    "UPDATE deals SET identity = ?, categories = ? WHERE pk = ?",
                    (*struck(write, identity, categories), pk),
                )
        elif isinstance(write, ConsentPurposes):
            for table in ("data_held", "consents"):
                conn.execute(
                    f"UPDATE {table} SET purposes = ?,"
                    " retain_until = COALESCE(MIN(retain_until, ?), retain_until)"
                    f" WHERE relationship = {RELATIONSHIP} AND item = ?",
                    (dumps(list(write.purposes)), write.retain_until, write.peer, write.item),
                )
        elif isinstance(write, GrantRow):
            conn.execute(GRANT_INSERT.replace("$", "?"), grant_values(write))
        elif isinstance(write, GrantRevokedRow):
            conn.execute(
                GRANT_REVOKE.replace("$", "?"), (write.revoked_at, write.grant_id, write.peer)
            )
        else:
            super().apply_domain(conn, write)

    # -- the test driver's summary --

    async def summary(self) -> dict[str, Any]:
        """A deterministic summary for the test driver's ``GET /state`` (spec §14.3).

        It holds no wall-clock readings and no delivery progress, so it changes
        only when a message is processed or data is deleted: the suite compares
        it before and after a rejected message. It is read in one read
        transaction, so it never mixes states before and after a commit.
        """
        return await self._scan(self._summary_now)

    def _summary_now(self) -> dict[str, Any]:
        with self._snapshot():
            return self._summary()

    def _summary(self) -> dict[str, Any]:
        relationships: dict[str, Any] = {}
        for row in self._read("SELECT peer_id FROM relationships ORDER BY peer_id"):
            peer = str(row[0])
            record = self._relationship(peer)
            assert record is not None
            exit_record = record.core.exit
            preferences = self._preferences(peer)
            relationships[peer] = {
                "peer": peer,
                "state": record.core.state.value,
                "exited": exit_record is not None,
                "engagements": preferences.engagements,
                "reengagement": _reengagement(exit_record.to_json())
                if exit_record is not None
                else None,
                "notificationsAllowed": None
                if preferences.notifications_allowed is None
                else list(preferences.notifications_allowed),
                "data": {
                    data.item: {
                        "value": data.value,
                        "purposes": list(data.purposes),
                        "retainUntil": data.retain_until,
                    }
                    for data in self._data(peer)
                },
                "consents": [
                    {
                        "item": consent.item,
                        "purposes": list(consent.purposes),
                        "retainUntil": consent.retain_until,
                    }
                    for consent in self._consents(peer)
                ],
                "offers": [
                    {
                        "id": offer["id"],
                        "basis": offer["basis"],
                        "madeBy": offer["sender"],
                        "status": offer["status"],
                        "total": {"amount": offer["total_amount"], "currency": offer["currency"]}
                        if offer["total_amount"] is not None
                        else _offer_total(offer["token"]),
                        "validUntil": offer["valid_until"],
                        "supersedes": offer["supersedes"],
                    }
                    for offer in self._read(
                        "SELECT o.id, o.basis, o.sender, o.status, o.valid_until, o.supersedes,"
                        " t.total_amount, t.currency, m.token FROM ledger_offers o"
                        " LEFT JOIN offer_terms t"
                        " ON t.relationship = o.relationship AND t.offer_id = o.id"
                        " LEFT JOIN messages m ON m.relationship = o.relationship"
                        " AND m.message_id = o.id AND m.direction = 'in'"
                        f" WHERE o.relationship = {RELATIONSHIP} ORDER BY o.pk",
                        (peer,),
                    )
                ],
                "deals": [
                    {
                        "id": deal.id,
                        "offer": deal.offer_id,
                        "total": {"amount": deal.total_amount, "currency": deal.currency},
                    }
                    for deal in self._deals(peer)
                ],
                "messages": int(
                    self._read(
                        f"SELECT COUNT(*) FROM messages WHERE relationship = {RELATIONSHIP}",
                        (peer,),
                    )[0][0]
                ),
            }
        deletions = [
            {
                "peer": row["peer_id"],
                "item": row["item"],
                "reason": row["reason"],
                "deletedAt": row["deleted_at"],
            }
            for row in self._read(
                f"SELECT x.*, r.peer_id FROM deletions x {_WITH_PEER} ORDER BY x.pk"
            )
        ]
        suppressed = [
            {
                "peer": row["peer_id"],
                "kind": row["kind"],
                "category": row["category"],
                "reason": row["reason"],
            }
            for row in self._read(
                f"SELECT x.*, r.peer_id FROM suppressed_notices x {_WITH_PEER} ORDER BY x.pk"
            )
        ]
        exits = [
            {
                "peer": row["peer_id"],
                "notice": row["notice_id"],
                "acknowledgement": row["acknowledgement_id"],
                "exportDigest": row["export_digest"],
            }
            for row in self._read(f"SELECT x.*, r.peer_id FROM exits x {_WITH_PEER} ORDER BY x.pk")
        ]
        return {
            "relationships": relationships,
            "deletions": deletions,
            "suppressedNotices": suppressed,
            "exits": exits,
        }


def _offer_total(token: bytes | None) -> dict[str, str] | None:
    """The total of the offer a stored token carries (her counter-offers)."""
    if token is None:
        return None
    message = parse_message_dict(orjson.loads(b64url_decode(bytes(token).split(b".")[1])))
    if not isinstance(message, OfferMessage):
        return None
    total = message.body.price.total
    return {"amount": total.amount, "currency": total.currency}


def _reengagement(exit_json: Mapping[str, Any]) -> dict[str, Any]:
    """The re-engagement preferences of an exit in force, as her notice stated them."""
    preferences: dict[str, Any] = {"allowed": exit_json["reengagementAllowed"]}
    for name in ("topics", "until", "channel"):
        if exit_json.get(name) is not None:
            preferences[name] = exit_json[name]
    return preferences


#: The statements of the grants table; ``$`` is each store's placeholder
#: (SQLite ``?``; PostgreSQL numbers them).
GRANT_INSERT: Final = (
    "INSERT INTO access_grants (grant_id, peer_id, message_id, items, purposes, until,"
    " endpoint, key, created_at) VALUES ($, $, $, $, $, $, $, $, $)"
    " ON CONFLICT (grant_id) DO NOTHING"
)
GRANT_REVOKE: Final = (
    "UPDATE access_grants SET revoked_at = $ WHERE grant_id = $ AND peer_id = $"
    " AND revoked_at IS NULL"
)


def grant_values(write: GrantRow) -> tuple[str, ...]:
    """The values of :data:`GRANT_INSERT` for ``write``."""
    return (
        write.grant_id,
        write.peer,
        write.message_id,
        dumps(list(write.items)),
        dumps(list(write.purposes)),
        write.until,
        write.endpoint,
        write.key,
        write.created_at,
    )


def grant_row(row: Any) -> GrantRow:
    """A row of ``access_grants`` (a ``sqlite3.Row`` or an asyncpg record) as a
    :class:`GrantRow`."""
    return GrantRow(
        grant_id=row["grant_id"],
        peer=row["peer_id"],
        message_id=row["message_id"],
        items=tuple(orjson.loads(row["items"])),
        purposes=tuple(orjson.loads(row["purposes"])),
        until=row["until"],
        endpoint=row["endpoint"],
        key=row["key"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def struck(write: ForgetItem, identity: str, categories: str) -> tuple[str, str]:
    """A deal's ``identity`` and ``categories`` columns without what ``write`` forgets."""
    members = orjson.loads(identity)
    if write.identity_member is not None:
        members.pop(write.identity_member, None)
    kept = [category for category in orjson.loads(categories) if category != write.item]
    return dumps(members), dumps(kept)
