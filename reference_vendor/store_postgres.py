"""The vendor's CRM store on PostgreSQL: several vendor processes, one database.

:class:`PostgresVendorStore` is :class:`~reference_vendor.store.VendorStore` on
the runtime's PostgreSQL base (:mod:`vrm_agent.postgres`): the same tables as
:class:`~reference_vendor.store.SqliteVendorStore` (component
``reference_vendor``), the same writes and reads, judged by the same contract
test. What several processes add (the runtime's docstring says the rest):

* the vendor's writes are part of the unit of work of the message that causes
  them, committed in the transaction that holds the relationship's lock;
* the retention sweep runs in one process at a time (an advisory lock), and
  holds the lock of every relationship whose data it deletes, so it is never
  interleaved with a message of one of them (an exit that lists what is held);
* the vendor's signing key is a row of the database (``agent_keys``), made once
  by whichever process starts first (see :meth:`PostgresVendorStore.signing_key`).

This module imports asyncpg: the vendor imports it only when it is given a
``postgresql://`` store (the ``postgresql`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

import orjson

from reference_vendor.store import (
    GRANT_INSERT,
    GRANT_REVOKE,
    GRANTS_TABLE,
    VENDOR_SCHEMA,
    ConsentPurposes,
    ConsentRow,
    DataRow,
    DealIdentityUpdated,
    DealRow,
    DeletionRow,
    EraseData,
    ExitRow,
    ForgetItem,
    GrantRevokedRow,
    GrantRow,
    NotificationsChosen,
    OfferTerms,
    Preferences,
    Reengagement,
    SuppressedRow,
    _offer_total,
    _reengagement,
    grant_row,
    grant_values,
    struck,
)
from vrm_agent.postgres import (
    PROTOCOL_SCHEMA,
    Connection,
    PgSchema,
    PostgresProtocolStore,
    Record,
    lock_id,
    relationship_key,
    relationships_of,
)
from vrm_agent.unit import DomainWrite
from vrm_protocol.keys import SigningKey

__all__ = ["SIGNING_KEY", "VENDOR_PG_SCHEMA", "PostgresVendorStore"]

#: The name of the vendor's signing key in the database.
SIGNING_KEY: Final = "vendor-signing-key"

#: The vendor's own tables (component ``reference_vendor``), as
#: :data:`reference_vendor.store.VENDOR_SCHEMA`, with PostgreSQL's types.
VENDOR_PG_SCHEMA: Final = PgSchema(
    VENDOR_SCHEMA.component,
    (
        """
        CREATE TABLE offer_terms (
            relationship BIGINT NOT NULL,
            offer_id TEXT COLLATE "C" NOT NULL,
            round INTEGER NOT NULL,
            total_amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            PRIMARY KEY (relationship, offer_id),
            FOREIGN KEY (relationship, offer_id) REFERENCES ledger_offers (relationship, id)
        );
        CREATE TABLE deals (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT COLLATE "C" NOT NULL UNIQUE,
            relationship BIGINT NOT NULL,
            offer_id TEXT COLLATE "C" NOT NULL,
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
            relationship BIGINT PRIMARY KEY REFERENCES relationships (pk),
            notifications_allowed TEXT,
            engagements INTEGER NOT NULL
        );
        CREATE TABLE consents (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            item TEXT COLLATE "C" NOT NULL,
            purposes TEXT NOT NULL,
            retention TEXT NOT NULL,
            retain_until TEXT COLLATE "C" NOT NULL,
            source_message TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX consents_relationship ON consents (relationship);
        CREATE INDEX consents_retention ON consents (retain_until);
        CREATE TABLE data_held (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            item TEXT COLLATE "C" NOT NULL,
            value TEXT NOT NULL,
            purposes TEXT NOT NULL,
            retain_until TEXT COLLATE "C" NOT NULL,
            source_message TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (relationship, item)
        );
        CREATE INDEX data_held_retention ON data_held (retain_until);
        CREATE TABLE deletions (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            item TEXT NOT NULL,
            reason TEXT NOT NULL,
            deleted_at TEXT NOT NULL
        );
        CREATE INDEX deletions_relationship ON deletions (relationship);
        CREATE TABLE exits (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            notice_id TEXT NOT NULL,
            notice_digest TEXT NOT NULL,
            export_digest TEXT,
            deletion_receipt TEXT NOT NULL,
            acknowledgement_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE suppressed_notices (
            pk BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            relationship BIGINT NOT NULL REFERENCES relationships (pk),
            kind TEXT NOT NULL,
            category TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        )
        """,
        GRANTS_TABLE,
    ),
)

#: Rows of a table with their relationship's peer: ``FROM {table} x JOIN relationships r``.
_WITH_PEER: Final = "JOIN relationships r ON r.pk = x.relationship"
#: The key of the relationship of the peer in parameter ``$1`` (``$2``).
_R1: Final = relationship_key(1)
_R2: Final = relationship_key(2)


def _numbered(sql: str) -> str:
    """``sql`` with each ``$`` placeholder numbered in order (``$1``, ``$2``, ...)."""
    pieces = sql.split("$")
    return pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], start=1))


def _dumps(value: Any) -> str:
    """Compact JSON with sorted members, as the SQLite store writes it."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _deletion(row: Record) -> DeletionRow:
    return DeletionRow(row["peer_id"], row["item"], row["reason"], row["deleted_at"])


def _deal(row: Record) -> DealRow:
    return DealRow(
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


def _consent(row: Record) -> ConsentRow:
    return ConsentRow(
        row["peer_id"],
        row["item"],
        tuple(orjson.loads(row["purposes"])),
        row["retention"],
        row["retain_until"],
        row["source_message"],
        row["created_at"],
    )


def _data(row: Record) -> DataRow:
    return DataRow(
        row["peer_id"],
        row["item"],
        orjson.loads(row["value"]),
        tuple(orjson.loads(row["purposes"])),
        row["retain_until"],
        row["source_message"],
        row["created_at"],
    )


def _preferences(row: Record | None) -> Preferences:
    if row is None:
        return Preferences()
    allowed = row["notifications_allowed"]
    return Preferences(
        None if allowed is None else tuple(orjson.loads(allowed)), int(row["engagements"])
    )


def _grouped(rows: Sequence[Record]) -> dict[str, list[Record]]:
    grouped: dict[str, list[Record]] = {}
    for row in rows:
        grouped.setdefault(str(row["peer_id"]), []).append(row)
    return grouped


class PostgresVendorStore(PostgresProtocolStore):
    """:class:`~reference_vendor.store.VendorStore` on PostgreSQL (see the module
    docstring). Made by :meth:`open` (``await PostgresVendorStore.open(url)``)."""

    SCHEMAS: ClassVar[tuple[PgSchema, ...]] = (PROTOCOL_SCHEMA, VENDOR_PG_SCHEMA)

    async def signing_key(self) -> SigningKey:
        """The vendor's signing key, made and stored by the first process to ask.

        The key is a row of the database rather than a file because the
        processes of one vendor may run on several machines that share only the
        database; a directory shared over a network filesystem gives no
        dependable exclusive create or lock, whereas ``INSERT ... ON CONFLICT DO
        NOTHING`` makes it exactly once. Whoever can read the database can sign
        as the vendor: its credentials are guarded as the key is. The ``kid`` is
        the key's RFC 7638 thumbprint (spec §8.4), the same in every process.

        Raises:
            StoreUnavailable: the database cannot be read or written.
            StoreError: the stored key is not a private JWK.
        """
        key = await self.agent_key(SIGNING_KEY, lambda: SigningKey.generate("EdDSA"))
        return key.with_kid(key.thumbprint())

    # -- the vendor's reads --

    async def offer_terms(self, peer: str, offer_id: str) -> OfferTerms | None:
        """The round and total of an offer of the relationship."""
        row = await self._fetchrow(
            f"SELECT round, total_amount, currency FROM offer_terms WHERE relationship = {_R1}"
            " AND offer_id = $2",
            peer,
            offer_id,
        )
        if row is None:
            return None
        return OfferTerms(peer, offer_id, int(row[0]), str(row[1]), str(row[2]))

    async def preferences(self, peer: str) -> Preferences:
        """The individual's choices (the defaults before any)."""
        return _preferences(
            await self._fetchrow(
                "SELECT notifications_allowed, engagements FROM preferences"
                f" WHERE relationship = {_R1}",
                peer,
            )
        )

    async def deals_for(self, peer: str) -> list[DealRow]:
        """Every deal with ``peer``, oldest first."""
        rows = await self._fetch(
            f"SELECT x.*, r.peer_id FROM deals x {_WITH_PEER} WHERE r.peer_id = $1 ORDER BY x.pk",
            peer,
        )
        return [_deal(row) for row in rows]

    async def consents_for(self, peer: str) -> list[ConsentRow]:
        """The consents in force for ``peer``, oldest first."""
        rows = await self._fetch(
            f"SELECT x.*, r.peer_id FROM consents x {_WITH_PEER} WHERE r.peer_id = $1"
            " ORDER BY x.pk",
            peer,
        )
        return [_consent(row) for row in rows]

    async def data_for(self, peer: str) -> list[DataRow]:
        """The personal data held about ``peer``, by item."""
        rows = await self._fetch(
            f"SELECT x.*, r.peer_id FROM data_held x {_WITH_PEER} WHERE r.peer_id = $1"
            " ORDER BY x.item",
            peer,
        )
        return [_data(row) for row in rows]

    async def deletions_for(self, peer: str) -> list[DeletionRow]:
        """Every deletion recorded for ``peer``, oldest first."""
        rows = await self._fetch(
            f"SELECT x.*, r.peer_id FROM deletions x {_WITH_PEER} WHERE r.peer_id = $1"
            " ORDER BY x.pk",
            peer,
        )
        return [_deletion(row) for row in rows]

    async def next_retention_deadline(self) -> str | None:
        """The earliest end of retention of anything held, if anything is held."""
        row = await self._fetchrow(
            "SELECT LEAST((SELECT MIN(retain_until) FROM data_held),"
            " (SELECT MIN(retain_until) FROM consents))"
        )
        value = None if row is None else row[0]
        return None if value is None else str(value)

    # -- the vendor's writes --

    async def sweep_retention(self, now: str) -> list[DeletionRow]:
        """Delete data held and consents whose retention ended at or before ``now``
        (spec §12: data is kept no longer than the accepted retention), recording
        one deletion event per data item, in one transaction: in one process at a
        time, holding the lock of each relationship it deletes from.

        Raises:
            StoreUnavailable: it cannot be written now (nothing deleted).
        """
        async with self.job_lock("retention-sweep") as conn:
            peers = [
                str(row[0])
                for row in await conn.fetch(
                    f"SELECT r.peer_id FROM data_held x {_WITH_PEER} WHERE x.retain_until <= $1"
                    f" UNION SELECT r.peer_id FROM consents x {_WITH_PEER}"
                    " WHERE x.retain_until <= $1",
                    now,
                )
            ]
            if not peers:
                return []
            # The relationships' own locks, as a message of theirs takes them, in
            # ascending order (a unit of work holds no row of these before its lock).
            for key in sorted({lock_id("p " + peer) for peer in peers}):
                await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
            rows = await conn.fetch(
                "DELETE FROM data_held x USING relationships r WHERE r.pk = x.relationship"
                " AND x.retain_until <= $1 AND r.peer_id = ANY($2::text[])"
                " RETURNING x.pk, r.peer_id, x.item",
                now,
                peers,
            )
            deleted = [
                DeletionRow(row["peer_id"], row["item"], "retention-expired", now)
                for row in sorted(rows, key=lambda row: int(row["pk"]))
            ]
            for deletion in deleted:
                await self.apply_domain(conn, deletion)
            await conn.execute(
                "DELETE FROM consents x USING relationships r WHERE r.pk = x.relationship"
                " AND x.retain_until <= $1 AND r.peer_id = ANY($2::text[])",
                now,
                peers,
            )
            return deleted

    async def grant(self, grant_id: str) -> GrantRow | None:
        """The access grant ``grant_id`` it holds, if any."""
        row = await self._fetchrow("SELECT * FROM access_grants WHERE grant_id = $1", grant_id)
        return grant_row(row) if row is not None else None

    async def apply_domain(self, conn: Connection, write: DomainWrite) -> None:
        """Apply one of the vendor's writes (inside the unit's transaction).

        Raises:
            TypeError: a write the vendor's store does not know.
        """
        if isinstance(write, OfferTerms):
            await conn.execute(
                "INSERT INTO offer_terms (relationship, offer_id, round, total_amount, currency)"
                f" VALUES ({_R1}, $2, $3, $4, $5) ON CONFLICT (relationship, offer_id)"
                " DO UPDATE SET"
                " round = excluded.round, total_amount = excluded.total_amount,"
                " currency = excluded.currency",
                write.peer,
                write.offer_id,
                write.round,
                write.total_amount,
                write.currency,
            )
        elif isinstance(write, DealIdentityUpdated):
            await conn.execute(
                "UPDATE deals SET identity = $1 WHERE id = $2",
                _dumps(write.identity),
                write.deal_id,
            )
        elif isinstance(write, DealRow):
            await conn.execute(
                "INSERT INTO deals (id, relationship, offer_id, acceptance_id, total_amount,"
                " currency, identity, categories, created_at)"
                f" VALUES ($1, {_R2}, $3, $4, $5, $6, $7, $8, $9)",
                write.id,
                write.peer,
                write.offer_id,
                write.acceptance_id,
                write.total_amount,
                write.currency,
                _dumps(write.identity),
                _dumps(list(write.categories)),
                write.created_at,
            )
        elif isinstance(write, ConsentRow):
            await conn.execute(
                "INSERT INTO consents (relationship, item, purposes, retention, retain_until,"
                f" source_message, created_at) VALUES ({_R1}, $2, $3, $4, $5, $6, $7)",
                write.peer,
                write.item,
                _dumps(list(write.purposes)),
                write.retention,
                write.retain_until,
                write.source_message,
                write.created_at,
            )
        elif isinstance(write, DataRow):
            await conn.execute(
                "INSERT INTO data_held (relationship, item, value, purposes, retain_until,"
                f" source_message, created_at) VALUES ({_R1}, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (relationship, item) DO UPDATE SET value = excluded.value,"
                " purposes = excluded.purposes, retain_until = excluded.retain_until,"
                " source_message = excluded.source_message, created_at = excluded.created_at",
                write.peer,
                write.item,
                _dumps(write.value),
                _dumps(list(write.purposes)),
                write.retain_until,
                write.source_message,
                write.created_at,
            )
        elif isinstance(write, EraseData):
            # Spec §6.14: deletion happens in the same transaction as the
            # acknowledgement that receipts it.
            await conn.execute(f"DELETE FROM data_held WHERE relationship = {_R1}", write.peer)
            await conn.execute(f"DELETE FROM consents WHERE relationship = {_R1}", write.peer)
        elif isinstance(write, DeletionRow):
            await conn.execute(
                "INSERT INTO deletions (relationship, item, reason, deleted_at)"
                f" VALUES ({_R1}, $2, $3, $4)",
                write.peer,
                write.item,
                write.reason,
                write.deleted_at,
            )
        elif isinstance(write, ExitRow):
            await conn.execute(
                "INSERT INTO exits (relationship, notice_id, notice_digest, export_digest,"
                " deletion_receipt, acknowledgement_id, created_at)"
                f" VALUES ({_R1}, $2, $3, $4, $5, $6, $7)",
                write.peer,
                write.notice_id,
                write.notice_digest,
                write.export_digest,
                _dumps(write.deletion_receipt),
                write.acknowledgement_id,
                write.created_at,
            )
        elif isinstance(write, SuppressedRow):
            await conn.execute(
                "INSERT INTO suppressed_notices (relationship, kind, category, reason,"
                f" created_at) VALUES ({_R1}, $2, $3, $4, $5)",
                write.peer,
                write.kind,
                write.category,
                write.reason,
                write.created_at,
            )
        elif isinstance(write, NotificationsChosen):
            await conn.execute(
                "INSERT INTO preferences (relationship, notifications_allowed, engagements)"
                f" VALUES ({_R1}, $2, 1) ON CONFLICT (relationship) DO UPDATE SET"
                " notifications_allowed = excluded.notifications_allowed",
                write.peer,
                _dumps(list(write.allowed)),
            )
        elif isinstance(write, Reengagement):
            await conn.execute(
                "INSERT INTO preferences (relationship, notifications_allowed, engagements)"
                f" VALUES ({_R1}, NULL, 2) ON CONFLICT (relationship) DO UPDATE SET"
                " notifications_allowed = NULL, engagements = preferences.engagements + 1",
                write.peer,
            )
        elif isinstance(write, ForgetItem):
            for table in ("data_held", "consents"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE relationship = {_R1} AND item = $2",
                    write.peer,
                    write.item,
                )
            deals = await conn.fetch(
                f"SELECT pk, identity, categories FROM deals WHERE relationship = {_R1}",
                write.peer,
            )
            for deal in deals:
                identity, categories = struck(write, deal["identity"], deal["categories"])
                await conn.execute(
                    "UPDATE deals SET identity = $1, categories = $2 WHERE pk = $3",
                    identity,
                    categories,
                    deal["pk"],
                )
        elif isinstance(write, ConsentPurposes):
            for table in ("data_held", "consents"):
                await conn.execute(
                    f"UPDATE {table} SET purposes = $3,"
                    " retain_until = COALESCE(LEAST(retain_until, $4), retain_until)"
                    f" WHERE relationship = {_R1} AND item = $2",
                    write.peer,
                    write.item,
                    _dumps(list(write.purposes)),
                    write.retain_until,
                )
        elif isinstance(write, GrantRow):
            await conn.execute(_numbered(GRANT_INSERT), *grant_values(write))
        elif isinstance(write, GrantRevokedRow):
            await conn.execute(
                _numbered(GRANT_REVOKE), write.revoked_at, write.grant_id, write.peer
            )
        else:
            await super().apply_domain(conn, write)

    # -- the test driver's summary --

    async def summary(self) -> dict[str, Any]:
        """A deterministic summary for the test driver's ``GET /state`` (spec §14.3),
        the same document the SQLite store gives for the same records.

        It holds no wall-clock readings and no delivery progress. Its reads are
        one repeatable-read transaction, so it never mixes states before and
        after a commit of any process.

        Raises:
            StoreUnavailable: the database cannot be read.
        """

        return await self.snapshot(_summary)


async def _summary(conn: Connection) -> dict[str, Any]:
    """The summary, from one snapshot, with a handful of queries (not a few per
    relationship): the suite reads it after almost every message."""
    relationships_rows = await conn.fetch(
        "SELECT peer_id, core, thread, reply_inbox, deal_seen, delivery_failures"
        " FROM relationships ORDER BY peer_id"
    )
    records = relationships_of(relationships_rows)
    preferences = {
        str(row["peer_id"]): _preferences(row)
        for row in await conn.fetch(f"SELECT x.*, r.peer_id FROM preferences x {_WITH_PEER}")
    }
    data = _grouped(
        await conn.fetch(f"SELECT x.*, r.peer_id FROM data_held x {_WITH_PEER} ORDER BY x.item")
    )
    consents = _grouped(
        await conn.fetch(f"SELECT x.*, r.peer_id FROM consents x {_WITH_PEER} ORDER BY x.pk")
    )
    # Her counter-offers' totals are in her stored messages (the vendor keeps terms
    # for its own offers only), read as the SQLite store reads them.
    offers = _grouped(
        await conn.fetch(
            "SELECT r.peer_id, o.id, o.basis, o.sender, o.status, o.valid_until, o.supersedes,"
            " t.total_amount, t.currency, m.token FROM ledger_offers o"
            " JOIN relationships r ON r.pk = o.relationship"
            " LEFT JOIN offer_terms t ON t.relationship = o.relationship AND t.offer_id = o.id"
            " LEFT JOIN messages m ON m.relationship = o.relationship AND m.message_id = o.id"
            " AND m.direction = 'in' ORDER BY o.pk"
        )
    )
    deals = _grouped(
        await conn.fetch(f"SELECT x.*, r.peer_id FROM deals x {_WITH_PEER} ORDER BY x.pk")
    )
    counts = {
        str(row[0]): int(row[1])
        for row in await conn.fetch(
            "SELECT r.peer_id, COUNT(*) FROM messages m JOIN relationships r"
            " ON r.pk = m.relationship GROUP BY r.peer_id"
        )
    }
    relationships: dict[str, Any] = {}
    for peer, record in records.items():
        exit_record = record.core.exit
        chosen = preferences.get(peer, Preferences())
        relationships[peer] = {
            "peer": peer,
            "state": record.core.state.value,
            "exited": exit_record is not None,
            "engagements": chosen.engagements,
            "reengagement": _reengagement(exit_record.to_json())
            if exit_record is not None
            else None,
            "notificationsAllowed": None
            if chosen.notifications_allowed is None
            else list(chosen.notifications_allowed),
            "data": {
                held.item: {
                    "value": held.value,
                    "purposes": list(held.purposes),
                    "retainUntil": held.retain_until,
                }
                for held in map(_data, data.get(peer, ()))
            },
            "consents": [
                {
                    "item": consent.item,
                    "purposes": list(consent.purposes),
                    "retainUntil": consent.retain_until,
                }
                for consent in map(_consent, consents.get(peer, ()))
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
                for offer in offers.get(peer, ())
            ],
            "deals": [
                {
                    "id": deal.id,
                    "offer": deal.offer_id,
                    "total": {"amount": deal.total_amount, "currency": deal.currency},
                }
                for deal in map(_deal, deals.get(peer, ()))
            ],
            "messages": counts.get(peer, 0),
        }
    deletions = [
        {
            "peer": row["peer_id"],
            "item": row["item"],
            "reason": row["reason"],
            "deletedAt": row["deleted_at"],
        }
        for row in await conn.fetch(
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
        for row in await conn.fetch(
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
        for row in await conn.fetch(
            f"SELECT x.*, r.peer_id FROM exits x {_WITH_PEER} ORDER BY x.pk"
        )
    ]
    return {
        "relationships": relationships,
        "deletions": deletions,
        "suppressedNotices": suppressed,
        "exits": exits,
    }
