"""The individual's personal data store: the protocol records, and what is hers alone.

The store is her memory of every relationship (seed 003: "the individual
keeps the history"). It keeps, on the runtime's SQLite base
(:class:`~vrm_agent.sqlite.SqliteProtocolStore`: group commit on a writer
thread, migrations, private files):

* the protocol records every agent keeps (:mod:`vrm_agent.store`): every
  message sent and received as the exact signed bytes, the receipts she gave,
  the threads, each relationship's core, the ledger (offers, requests) as the
  state machine's effects left it;
* her own: the profile and notes she volunteers, credentials, one pairwise
  pseudonym per counterparty (the private key in a file of its own, never in
  the database), what each counterparty published about itself, her
  *journal* (every message in the order it was sent or received, with the
  channel it took, its delivery and the receipt she got; the letters she
  printed, the paper answers she typed in, and the attempts a peer refused),
  the consents she gave (terms accepted or refused item by item, with
  reasons), a log of what she shared with whom under which terms, deals, and
  exits with their deletion receipts and how they checked out.

:class:`BuyerStore` is the interface the agent depends on: typed async
methods only. Her writes caused by a message are
:class:`~vrm_agent.unit.DomainWrite` s of that message's unit of work, so
they commit with it, all or nothing (spec §11.3). Nothing here is rewritten
as a relationship ages: the history is the messages and the journal, one row
each.

:class:`SqliteBuyerStore` implements it (schema component ``reference_buyer``).
Her reads run on the store's reader threads and every write on its writer
thread, so no transaction and no fsync ever runs on the event loop (the
runtime's own one-row reads for each inbound message are the exception it
documents: a thread hop costs more than such a read).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from vrm_agent.sqlite import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_MAX_BATCH,
    Schema,
    SqliteProtocolStore,
    dumps,
)
from vrm_agent.store import ProtocolStore, StoreError
from vrm_agent.unit import DomainWrite
from vrm_protocol.canonical import b64url_decode, message_digest
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.ledger import OfferRecord, OfferStatus, RelationshipCore
from vrm_protocol.models import Message, MessageRef, OfferBody, parse_message_dict
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "BUYER_SCHEMA",
    "STORE_FILE",
    "AccessGrantRecord",
    "AccessRevoked",
    "BreachRecord",
    "BuyerStore",
    "Channel",
    "ConsentRecord",
    "Counterparty",
    "CredentialRecord",
    "DealRecord",
    "DetailReceipted",
    "DetailUpdate",
    "Entry",
    "ExitAcknowledged",
    "ExitRecord",
    "Grant",
    "GrantRead",
    "Journal",
    "OfferView",
    "PseudonymRecord",
    "Relationship",
    "SharingRecord",
    "SqliteBuyerStore",
    "Withheld",
]

#: Her store inside the data directory.
STORE_FILE: Final = "buyer.sqlite3"


class Channel:
    """How a message travelled (the journal's ``channel``)."""

    #: POSTed to her inbox, or to one of its per-relationship reply addresses.
    INBOX: Final = "inbox"
    #: Collected from the counterparty's mailbox (spec §11.4).
    MAILBOX: Final = "mailbox"
    #: She POSTed it to the counterparty's inbox.
    HTTP: Final = "http"
    #: She printed it as a letter (a vendor not online).
    LETTER: Final = "letter"
    #: A paper answer she typed in: unsigned.
    PAPER: Final = "paper"


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PseudonymRecord:
    """A pairwise pseudonym (spec §3.1), used with exactly one counterparty.

    The private key is in ``keys/<key_file>``; ``reply_tag`` is the random last
    segment of the reply address of this relationship (spec §12).
    """

    peer: str
    identifier: str
    key_file: str
    reply_tag: str
    created: str


@dataclass(frozen=True, slots=True)
class Counterparty:
    """What a counterparty published about itself, as last fetched (spec §11.1, §11.2)."""

    party: str
    discovery: Mapping[str, Any]
    jwks: Mapping[str, Any]
    fetched_at: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of her history (see the module docstring).

    ``receipt`` is the peer's receipt for what she sent, or the one she gave
    for what she received. ``token`` is ``None`` only for a paper answer,
    whose typed-in body is ``paper``.
    """

    seq: int
    peer: str
    sender: str
    message_id: str
    type: MessageType
    direction: Direction
    channel: str
    status: str
    thread: str
    parent: str | None
    token: bytes | None
    receipt: bytes | None
    at: str
    paper: OfferBody | None = None

    @property
    def digest(self) -> str | None:
        """The message digest of the exact token (``None`` on paper)."""
        return message_digest(self.token) if self.token is not None else None

    @property
    def verified(self) -> bool:
        """Signed bytes she verified (received) or signed herself (sent)."""
        return self.token is not None

    @property
    def refused(self) -> bool:
        """An attempt the peer refused: not part of the relationship."""
        return self.status.startswith("refused")

    def ref(self) -> MessageRef:
        """A ``messageRef`` binding a reply to exactly these bytes (spec §5.2, §8.5).

        Raises:
            LocalProtocolError: UNKNOWN_OFFER for a paper answer: there are no
                signed bytes to refer to.
        """
        digest = self.digest
        if digest is None:
            raise LocalProtocolError(
                ErrorCode.UNKNOWN_OFFER,
                f"{self.message_id} arrived on paper: there are no signed bytes to refer to",
            )
        return MessageRef(id=self.message_id, digest=digest)

    def model(self) -> Message:
        """The message as its model, read back from the stored token (her own
        evidence: verified when received, or signed by her).

        Raises:
            LocalProtocolError: UNKNOWN_OFFER for a paper answer (no message);
                SCHEMA_INVALID for a token that is not a message (a store that
                was tampered with).
        """
        if self.token is None:
            raise LocalProtocolError(
                ErrorCode.UNKNOWN_OFFER, f"{self.message_id} is a paper answer, not a message"
            )
        try:
            payload = orjson.loads(b64url_decode(self.token.split(b".")[1]))
            return parse_message_dict(payload)
        except (IndexError, ValueError) as error:
            raise LocalProtocolError(
                ErrorCode.SCHEMA_INVALID, f"stored message {self.message_id} is unreadable"
            ) from error


@dataclass(frozen=True, slots=True)
class OfferView:
    """An offer she holds: its ledger record (where it stands) and its terms.

    ``record`` is ``None`` for a paper answer (never in the ledger: it cannot
    be accepted electronically); ``entry`` is the journal line it came with.
    """

    entry: Entry
    body: OfferBody
    record: OfferRecord | None

    @property
    def id(self) -> str:
        """The offer's id (its message id)."""
        return self.entry.message_id

    @property
    def peer(self) -> str:
        """Who made it (or to whom she made it)."""
        return self.entry.peer

    @property
    def status(self) -> str:
        """``open`` and the ledger's other statuses (a paper answer stays open)."""
        return self.record.status.value if self.record is not None else "open"

    @property
    def basis(self) -> str:
        """``indicative``, ``binding`` or ``counter``."""
        return self.body.basis

    @property
    def verified(self) -> bool:
        """Signed (not typed in from paper)."""
        return self.entry.verified


@dataclass(frozen=True, slots=True)
class Relationship:
    """One relationship: the counterparty, her pseudonym there, the core."""

    peer: str
    identifier: str
    core: RelationshipCore


@dataclass(frozen=True, slots=True)
class Grant:
    """One item she accepted to share, for these purposes."""

    item: str
    purposes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Withheld:
    """One item she refused to share, and why."""

    item: str
    reason: str


@dataclass(frozen=True, slots=True)
class CredentialRecord(DomainWrite):
    """An attestation she carried in a message (its compact token), kept with it."""

    kind: str
    issuer: str
    subject: str
    token: str
    at: str


@dataclass(frozen=True, slots=True)
class SharingRecord(DomainWrite):
    """One category of her data disclosed to one party in one message."""

    peer: str
    identifier: str
    category: str
    message_id: str
    terms: str | None
    purposes: tuple[str, ...]
    at: str


@dataclass(frozen=True, slots=True)
class ConsentRecord(DomainWrite):
    """Her answer to a terms assertion, item by item, with reasons (kept only if
    the terms response reached the party)."""

    peer: str
    assertion_id: str
    assertion_digest: str
    response_id: str
    decision: str
    accepted: tuple[Grant, ...]
    refused: tuple[Withheld, ...]
    notifications: tuple[str, ...]
    at: str


@dataclass(frozen=True, slots=True)
class DealRecord(DomainWrite):
    """A confirmed deal: the offer, her acceptance, the confirmation."""

    deal_id: str
    peer: str
    offer_id: str
    acceptance_id: str
    confirmation_id: str
    at: str


@dataclass(frozen=True, slots=True)
class BreachRecord(DomainWrite):
    """A breach of her terms she recorded: a message she refused as not what it
    says it is (spec §6.9), and the problem report she sent about it."""

    peer: str
    message_id: str
    digest: str
    code: str
    detail: str
    report_id: str | None
    at: str


@dataclass(frozen=True, slots=True)
class DetailUpdate(DomainWrite):
    """A change of one of her details sent to a party (spec §6.73); ``receipt_id``
    is set when the party's receipt says it holds the new value."""

    peer: str
    update_id: str
    item: str
    at: str
    receipt_id: str | None = None
    receipted_at: str | None = None


@dataclass(frozen=True, slots=True)
class DetailReceipted(DomainWrite):
    """The party's receipt of her change: it holds the new value of ``items``."""

    update_id: str
    receipt_id: str
    items: tuple[str, ...]
    at: str


@dataclass(frozen=True, slots=True)
class ExitRecord(DomainWrite):
    """An exit she gave notice of, and how its acknowledgement checked out
    (``receipt_verified`` ``None`` while it is awaited)."""

    peer: str
    notice_id: str
    notice_digest: str
    preferences: Mapping[str, Any]
    at: str
    ack_id: str | None = None
    deletion_receipt: Mapping[str, Any] | None = None
    receipt_verified: bool | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExitAcknowledged(DomainWrite):
    """The acknowledgement of her exit notice, and how it checked out."""

    notice_id: str
    ack_id: str
    deletion_receipt: Mapping[str, Any] | None
    verified: bool
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Journal(DomainWrite):
    """A journal line for a message of the unit (inbound or sent)."""

    peer: str
    sender: str
    message_id: str
    type: MessageType
    direction: Direction
    channel: str
    status: str
    thread: str
    parent: str | None
    at: str
    receipt: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class AccessGrantRecord(DomainWrite):
    """An access grant she gave (spec §6.18): committed with the grant message,
    and only if the grantee took it. ``tag`` is the random last segment of its
    read endpoint; ``revoked_at`` is set by :class:`AccessRevoked`."""

    grant_id: str
    peer: str
    identifier: str
    message_id: str
    items: tuple[str, ...]
    purposes: tuple[str, ...]
    until: str
    endpoint: str
    tag: str
    key: str
    at: str
    revoked_at: str | None = None
    #: Her revocation message, once the grantee took it.
    revocation_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccessRevoked(DomainWrite):
    """Her revocation of a grant (spec §6.19), committed with the revocation message."""

    grant_id: str
    message_id: str
    at: str


@dataclass(frozen=True, slots=True)
class GrantRead:
    """One read under a grant, answered or refused (spec §11.9): her log of who read what."""

    grant_id: str
    at: str
    outcome: str
    jti: str | None
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConsentChangeRecord(DomainWrite):
    """A consent change she made (spec §6.20), committed with the message; the
    receipt and how it checked out come later (``receipt_verified`` ``None``
    while it is awaited)."""

    change_id: str
    peer: str
    changes: tuple[Mapping[str, Any], ...]
    at: str
    receipt_id: str | None = None
    receipt: Mapping[str, Any] | None = None
    receipt_verified: bool | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsentReceiptChecked(DomainWrite):
    """The receipt of her consent change, and how it checked out against her
    sharing log (spec §6.21)."""

    change_id: str
    receipt_id: str
    receipt: Mapping[str, Any]
    verified: bool
    problems: tuple[str, ...]


# -- the interface ---------------------------------------------------------------------------------


class BuyerStore(ProtocolStore, Protocol):
    """Her store (see the module docstring). Every method may raise
    :class:`~vrm_agent.store.StoreUnavailable` (nothing applied)."""

    # -- what she volunteers --

    async def set_profile(self, category: str, value: Any) -> None:
        """Set one item of her profile (volunteered personal data, by category)."""
        ...

    async def profile(self) -> dict[str, Any]:
        """Her whole profile."""
        ...

    async def add_note(self, text: str, *, source: str, at: str) -> None:
        """Keep a research note."""
        ...

    async def notes(self) -> list[dict[str, str]]:
        """Her notes, oldest first."""
        ...

    async def add_credential(
        self, *, kind: str, issuer: str, subject: str, token: str, at: str
    ) -> None:
        """Keep an attestation (its compact token)."""
        ...

    async def credentials(self, *, subject: str | None = None) -> list[dict[str, str]]:
        """Attestations held (for one pseudonym)."""
        ...

    # -- pseudonyms and counterparties --

    async def add_pseudonym(self, record: PseudonymRecord) -> None:
        """Keep a new pseudonym (its key file is already written).

        Raises:
            ConstraintViolation: the counterparty already has one.
        """
        ...

    async def pseudonym_for(self, peer: str) -> PseudonymRecord | None:
        """The pseudonym she uses with ``peer``."""
        ...

    async def pseudonym_by_identifier(self, identifier: str) -> PseudonymRecord | None:
        """One of her pseudonyms, by its identifier."""
        ...

    async def pseudonym_by_tag(self, tag: str) -> PseudonymRecord | None:
        """The pseudonym whose reply address ends in ``tag``."""
        ...

    async def pseudonyms(self) -> list[PseudonymRecord]:
        """Every pseudonym, oldest first."""
        ...

    async def mailbox_cursor(self, peer: str) -> int:
        """Where the next poll of ``peer``'s mailbox starts."""
        ...

    async def set_mailbox_cursor(self, peer: str, cursor: int) -> None:
        """Remember where the next poll of ``peer``'s mailbox starts."""
        ...

    async def save_counterparty(self, record: Counterparty) -> None:
        """Keep what a counterparty published (replacing what was kept)."""
        ...

    async def counterparty(self, party: str) -> Counterparty | None:
        """What ``party`` published, as last fetched."""
        ...

    async def counterparties(self) -> list[Counterparty]:
        """Every counterparty she contacted."""
        ...

    # -- relationships and history --

    async def relationships(self) -> list[Relationship]:
        """Every relationship, oldest pseudonym first."""
        ...

    async def history(
        self,
        *,
        peer: str | None = None,
        type: MessageType | None = None,
        after: int = 0,
        include_refused: bool = True,
    ) -> list[Entry]:
        """Her journal, in order (with ``peer``, of ``type``, after ``seq``)."""
        ...

    async def entry(self, message_id: str, *, direction: Direction | None = None) -> Entry | None:
        """The journal line of a message by its id (the latest, if ids repeat)."""
        ...

    async def record_refusal(self, entry: Journal, token: bytes) -> None:
        """Keep an attempt the peer refused (its token, and the refusal as status)."""
        ...

    async def enter_paper_offer(self, entry: Journal, body: OfferBody) -> Entry:
        """Keep an offer that came by post, as she typed it in (unsigned)."""
        ...

    async def offer_views(self, *, peer: str | None = None) -> list[OfferView]:
        """Every offer she received or made (paper answers too), in journal order."""
        ...

    async def offer_view(self, offer_id: str) -> OfferView | None:
        """One offer by its id."""
        ...

    # -- consents, sharing, deals, exits --

    async def consents(self, peer: str | None = None) -> list[ConsentRecord]:
        """Her answers to terms, oldest first."""
        ...

    async def shared_with(self, peer: str) -> list[SharingRecord]:
        """What she disclosed to ``peer``, oldest first."""
        ...

    async def deals(self) -> list[DealRecord]:
        """Every confirmed deal, oldest first."""
        ...

    async def exits(self, peer: str | None = None) -> list[ExitRecord]:
        """Her exits, oldest first."""
        ...

    async def access_grant(
        self, *, grant_id: str | None = None, tag: str | None = None
    ) -> AccessGrantRecord | None:
        """The grant of that id, or of that read endpoint tag."""
        ...

    async def access_grants(self, peer: str | None = None) -> list[AccessGrantRecord]:
        """The grants she gave, oldest first."""
        ...

    async def revoke_grant(self, grant_id: str, at: str) -> None:
        """Revoke a grant at once, before the grantee is told (spec §6.19)."""
        ...

    async def log_read(self, read: GrantRead) -> bool:
        """Log one read; ``False`` (and nothing logged) when ``read`` is answered
        with a ``jti`` already taken under its grant (a replay, spec §11.9)."""
        ...

    async def grant_reads(self, grant_id: str) -> list[GrantRead]:
        """Every read logged under a grant, oldest first."""
        ...

    async def consent_changes(self, peer: str | None = None) -> list[ConsentChangeRecord]:
        """Her consent changes and their receipts, oldest first."""
        ...

    async def breaches(self, peer: str | None = None) -> list[BreachRecord]:
        """The breaches of her terms she recorded, oldest first."""
        ...

    async def detail_updates(self, item: str | None = None) -> list[DetailUpdate]:
        """The changes of her details she sent (of ``item``), oldest first."""
        ...


# -- SQLite ----------------------------------------------------------------------------------------

#: Her own tables (component ``reference_buyer``).
BUYER_SCHEMA: Final = Schema(
    "reference_buyer",
    (
        """
        CREATE TABLE profile (category TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE notes (
            pk INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            source TEXT NOT NULL,
            text TEXT NOT NULL
        );
        CREATE TABLE credentials (
            pk INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            token TEXT NOT NULL,
            stored_at TEXT NOT NULL
        );
        CREATE INDEX credentials_subject ON credentials (subject);
        CREATE TABLE pseudonyms (
            pk INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL UNIQUE,
            identifier TEXT NOT NULL UNIQUE,
            key_file TEXT NOT NULL UNIQUE,
            reply_tag TEXT NOT NULL UNIQUE,
            mailbox_cursor INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL
        );
        CREATE TABLE counterparties (
            party_id TEXT PRIMARY KEY,
            discovery TEXT NOT NULL,
            jwks TEXT NOT NULL,
            fetched_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE journal (
            seq INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL,
            sender TEXT NOT NULL,
            message_id TEXT NOT NULL,
            type TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            channel TEXT NOT NULL,
            status TEXT NOT NULL,
            thread TEXT NOT NULL,
            parent TEXT,
            at TEXT NOT NULL,
            receipt BLOB,
            token BLOB,
            paper TEXT,
            UNIQUE (message_id, sender)
        );
        CREATE INDEX journal_peer ON journal (peer_id, seq);
        CREATE TABLE consents (
            pk INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL,
            assertion_id TEXT NOT NULL,
            assertion_digest TEXT NOT NULL,
            response_id TEXT NOT NULL,
            decision TEXT NOT NULL,
            accepted TEXT NOT NULL,
            refused TEXT NOT NULL,
            notifications TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX consents_peer ON consents (peer_id, pk);
        CREATE TABLE sharing_log (
            pk INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL,
            identifier TEXT NOT NULL,
            category TEXT NOT NULL,
            message_id TEXT NOT NULL,
            terms TEXT,
            purposes TEXT NOT NULL,
            shared_at TEXT NOT NULL
        );
        CREATE INDEX sharing_log_peer ON sharing_log (peer_id, pk);
        CREATE TABLE deals (
            pk INTEGER PRIMARY KEY,
            deal_id TEXT NOT NULL,
            peer_id TEXT NOT NULL,
            offer_id TEXT NOT NULL,
            acceptance_id TEXT NOT NULL,
            confirmation_id TEXT NOT NULL,
            confirmed_at TEXT NOT NULL,
            UNIQUE (peer_id, deal_id)
        );
        CREATE TABLE exits (
            pk INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL,
            notice_id TEXT NOT NULL UNIQUE,
            notice_digest TEXT NOT NULL,
            preferences TEXT NOT NULL,
            created TEXT NOT NULL,
            ack_id TEXT,
            deletion_receipt TEXT,
            receipt_verified INTEGER,
            problems TEXT NOT NULL DEFAULT '[]'
        )
        """,
        # 2: access grants and the log of reads under them (spec §6.18, §11.9).
        """
        CREATE TABLE access_grants (
            pk INTEGER PRIMARY KEY,
            grant_id TEXT NOT NULL UNIQUE,
            peer_id TEXT NOT NULL,
            identifier TEXT NOT NULL,
            message_id TEXT NOT NULL,
            items TEXT NOT NULL,
            purposes TEXT NOT NULL,
            until TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            tag TEXT NOT NULL UNIQUE,
            key TEXT NOT NULL,
            created TEXT NOT NULL,
            revoked_at TEXT,
            revocation_id TEXT
        );
        CREATE INDEX access_grants_peer ON access_grants (peer_id, pk);
        CREATE TABLE grant_reads (
            pk INTEGER PRIMARY KEY,
            grant_id TEXT NOT NULL,
            at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            jti TEXT,
            items TEXT NOT NULL
        );
        CREATE INDEX grant_reads_grant ON grant_reads (grant_id, pk);
        -- A proof is taken once (spec §11.9): the jti of every answered read is unique.
        CREATE UNIQUE INDEX grant_reads_jti ON grant_reads (grant_id, jti)
            WHERE outcome = 'answered'
        """,
        # 3: her consent changes and their receipts (spec §6.20, §6.21).
        """
        CREATE TABLE consent_changes (
            pk INTEGER PRIMARY KEY,
            change_id TEXT NOT NULL UNIQUE,
            peer_id TEXT NOT NULL,
            changes TEXT NOT NULL,
            created TEXT NOT NULL,
            receipt_id TEXT,
            receipt TEXT,
            receipt_verified INTEGER,
            problems TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX consent_changes_peer ON consent_changes (peer_id, pk)
        """,
        # 4: approvals asked of a co-decision-maker's agent, and asked of this one
        # (spec §10.2): :mod:`reference_buyer.codecision`.
        """
        CREATE TABLE approval_requests (
            jti TEXT PRIMARY KEY,
            side TEXT NOT NULL CHECK (side IN ('asked', 'received')),
            reply_tag TEXT UNIQUE,
            status TEXT NOT NULL,
            data TEXT NOT NULL,
            answer TEXT,
            created TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        # 5: control after sharing (spec §6.9, §6.73): breaches of her terms she
        # recorded, and the changes of her details sent, by party and item.
        """
        CREATE TABLE breaches (
            pk INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            digest TEXT NOT NULL,
            code TEXT NOT NULL,
            detail TEXT NOT NULL,
            report_id TEXT,
            at TEXT NOT NULL
        );
        CREATE TABLE detail_updates (
            pk INTEGER PRIMARY KEY,
            peer_id TEXT NOT NULL,
            update_id TEXT NOT NULL,
            item TEXT NOT NULL,
            at TEXT NOT NULL,
            receipt_id TEXT,
            receipted_at TEXT,
            UNIQUE (update_id, item)
        )
        """,
    ),
)

_DIRECTIONS: Final = {Direction.RECEIVED: "in", Direction.SENT: "out"}
_DIRECTION_OF: Final = {"in": Direction.RECEIVED, "out": Direction.SENT}
_CREDENTIALS: Final = "SELECT kind, issuer, subject, token, stored_at FROM credentials"
_CREDENTIAL_COLUMNS: Final = ("kind", "issuer", "subject", "token", "stored_at")
_PSEUDONYM_BY: Final = {
    "peer": "SELECT * FROM pseudonyms WHERE peer_id = ?",
    "identifier": "SELECT * FROM pseudonyms WHERE identifier = ?",
    "tag": "SELECT * FROM pseudonyms WHERE reply_tag = ?",
}

#: The journal joined with the runtime's messages (the token, and the receipt
#: she gave for what she received).
_ENTRY_SELECT: Final = (
    "SELECT j.seq, j.peer_id, j.sender, j.message_id, j.type, j.direction, j.channel,"
    " j.status, j.thread, j.parent, j.at, j.paper,"
    " COALESCE(m.token, j.token) AS token, COALESCE(j.receipt, m.receipt) AS receipt"
    " FROM journal j"
    " LEFT JOIN messages m ON m.message_id = j.message_id AND m.sender = j.sender"
    " AND m.direction = j.direction"
)
#: The same, with the ledger's record of an offer.
_OFFER_SELECT: Final = (
    _ENTRY_SELECT.replace(
        " FROM journal j",
        ", o.id AS o_id, o.sender AS o_sender, o.basis AS o_basis,"
        " o.valid_until AS o_valid_until, o.status AS o_status, o.digest AS o_digest,"
        " o.supersedes AS o_supersedes, o.topic AS o_topic,"
        " o.requires_approval AS o_requires_approval FROM journal j",
    )
    + " LEFT JOIN relationships r ON r.peer_id = j.peer_id"
    + " LEFT JOIN ledger_offers o ON o.relationship = r.pk AND o.id = j.message_id"
    + " WHERE j.type = 'offer' AND j.status NOT LIKE 'refused%'"
)


def _entry(row: sqlite3.Row) -> Entry:
    paper = row["paper"]
    return Entry(
        seq=int(row["seq"]),
        peer=row["peer_id"],
        sender=row["sender"],
        message_id=row["message_id"],
        type=MessageType(row["type"]),
        direction=_DIRECTION_OF[row["direction"]],
        channel=row["channel"],
        status=row["status"],
        thread=row["thread"],
        parent=row["parent"],
        token=bytes(row["token"]) if row["token"] is not None else None,
        receipt=bytes(row["receipt"]) if row["receipt"] is not None else None,
        at=row["at"],
        paper=OfferBody.model_validate(orjson.loads(paper)) if paper is not None else None,
    )


def _offer_record(row: sqlite3.Row) -> OfferRecord | None:
    if row["o_id"] is None:
        return None
    return OfferRecord(
        id=row["o_id"],
        sender=Role(row["o_sender"]),
        basis=row["o_basis"],
        valid_until=parse_timestamp(row["o_valid_until"]),
        status=OfferStatus(row["o_status"]),
        digest=row["o_digest"],
        supersedes=row["o_supersedes"],
        topic=row["o_topic"],
        requires_approval=bool(row["o_requires_approval"]),
    )


def _offer_view(row: sqlite3.Row) -> OfferView | None:
    entry = _entry(row)
    if entry.paper is not None:
        return OfferView(entry, entry.paper, None)
    body = getattr(entry.model(), "body", None)
    if not isinstance(body, OfferBody):
        return None
    return OfferView(entry, body, _offer_record(row))


def _pseudonym(row: sqlite3.Row) -> PseudonymRecord:
    return PseudonymRecord(
        row["peer_id"], row["identifier"], row["key_file"], row["reply_tag"], row["created"]
    )


def _counterparty(row: sqlite3.Row) -> Counterparty:
    return Counterparty(
        row["party_id"],
        orjson.loads(row["discovery"]),
        orjson.loads(row["jwks"]),
        row["fetched_at"],
    )


def _consent(row: sqlite3.Row) -> ConsentRecord:
    return ConsentRecord(
        peer=row["peer_id"],
        assertion_id=row["assertion_id"],
        assertion_digest=row["assertion_digest"],
        response_id=row["response_id"],
        decision=row["decision"],
        accepted=tuple(
            Grant(str(item["item"]), tuple(item["purposes"]))
            for item in orjson.loads(row["accepted"])
        ),
        refused=tuple(
            Withheld(str(item["item"]), str(item["reason"]))
            for item in orjson.loads(row["refused"])
        ),
        notifications=tuple(orjson.loads(row["notifications"])),
        at=row["created"],
    )


def _exit(row: sqlite3.Row) -> ExitRecord:
    verified = row["receipt_verified"]
    receipt = row["deletion_receipt"]
    return ExitRecord(
        peer=row["peer_id"],
        notice_id=row["notice_id"],
        notice_digest=row["notice_digest"],
        preferences=orjson.loads(row["preferences"]),
        at=row["created"],
        ack_id=row["ack_id"],
        deletion_receipt=orjson.loads(receipt) if receipt is not None else None,
        receipt_verified=None if verified is None else bool(verified),
        problems=tuple(orjson.loads(row["problems"])),
    )


def _access_grant(row: sqlite3.Row) -> AccessGrantRecord:
    return AccessGrantRecord(
        grant_id=row["grant_id"],
        peer=row["peer_id"],
        identifier=row["identifier"],
        message_id=row["message_id"],
        items=tuple(orjson.loads(row["items"])),
        purposes=tuple(orjson.loads(row["purposes"])),
        until=row["until"],
        endpoint=row["endpoint"],
        tag=row["tag"],
        key=row["key"],
        at=row["created"],
        revoked_at=row["revoked_at"],
        revocation_id=row["revocation_id"],
    )


class SqliteBuyerStore(SqliteProtocolStore):
    """Her store on SQLite: :class:`BuyerStore` (see the module docstring).

    Args:
        path: the database file (created, with its schema, on first use).
        max_batch, busy_timeout: as :class:`~vrm_agent.sqlite.SqliteDatabase`.

    Raises:
        StoreError: the file cannot be opened or migrated, or was written by an
            earlier or later version of the buyer.
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
            (BUYER_SCHEMA,),
            max_batch=max_batch,
            busy_timeout=busy_timeout,
            name="buyer-store",
        )

    def _before_migrations(self, conn: sqlite3.Connection) -> None:
        tables = {
            str(row[0])
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "identities" in tables and "schema_version" not in tables:
            # The store of the buyer before the runtime (a relationship snapshot
            # per row, the history as payloads in one table).
            raise StoreError(
                f"{self.path} was written by an earlier version of the reference buyer, "
                "which this version cannot read; keep it with that version, or start "
                "this one with a new --data-dir"
            )

    # -- what she volunteers --

    async def set_profile(self, category: str, value: Any) -> None:
        """Set one item of her profile.

        Raises:
            StoreUnavailable: it cannot be written now.
        """
        text = dumps(value)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO profile (category, value) VALUES (?, ?)"
                " ON CONFLICT (category) DO UPDATE SET value = excluded.value",
                (category, text),
            )

        await self._write(write)

    async def profile(self) -> dict[str, Any]:
        """Her whole profile."""
        rows = await self._scan(lambda: self._read("SELECT category, value FROM profile"))
        return {row["category"]: orjson.loads(row["value"]) for row in rows}

    async def add_note(self, text: str, *, source: str, at: str) -> None:
        """Keep a research note.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO notes (created, source, text) VALUES (?, ?, ?)", (at, source, text)
            )

        await self._write(write)

    async def notes(self) -> list[dict[str, str]]:
        """Her notes, oldest first."""
        rows = await self._scan(
            lambda: self._read("SELECT created, source, text FROM notes ORDER BY pk")
        )
        return [{"created": r["created"], "source": r["source"], "text": r["text"]} for r in rows]

    async def add_credential(
        self, *, kind: str, issuer: str, subject: str, token: str, at: str
    ) -> None:
        """Keep an attestation.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO credentials (kind, issuer, subject, token, stored_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, issuer, subject, token, at),
            )

        await self._write(write)

    async def credentials(self, *, subject: str | None = None) -> list[dict[str, str]]:
        """Attestations held (for one pseudonym), oldest first."""
        rows = await self._scan(
            lambda: (
                self._read(_CREDENTIALS + " ORDER BY pk")
                if subject is None
                else self._read(_CREDENTIALS + " WHERE subject = ? ORDER BY pk", (subject,))
            )
        )
        return [{name: str(row[name]) for name in _CREDENTIAL_COLUMNS} for row in rows]

    # -- approvals of a co-decision-maker (spec §10.2) --

    async def add_approval_request(
        self, *, jti: str, side: str, reply_tag: str | None, data: Mapping[str, Any], at: str
    ) -> bool:
        """Keep an approval request asked or received; ``False`` if it is kept already.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO approval_requests"
                " (jti, side, reply_tag, status, data, created) VALUES (?, ?, ?, 'pending', ?, ?)",
                (jti, side, reply_tag, dumps(dict(data)), at),
            )
            return cursor.rowcount == 1

        return await self._write(write)

    async def approval_requests(
        self, *, side: str, jti: str | None = None, reply_tag: str | None = None
    ) -> list[dict[str, Any]]:
        """Approval requests of one side (one by ``jti`` or ``reply_tag``), oldest first:
        ``{jti, status, data, answer, created}``."""
        query = "SELECT * FROM approval_requests WHERE side = ?"
        params: list[str] = [side]
        if jti is not None:
            query, params = query + " AND jti = ?", [*params, jti]
        if reply_tag is not None:
            query, params = query + " AND reply_tag = ?", [*params, reply_tag]
        rows = await self._scan(lambda: self._read(query + " ORDER BY created, jti", params))
        return [
            {
                "jti": row["jti"],
                "status": row["status"],
                "data": orjson.loads(row["data"]),
                "answer": orjson.loads(row["answer"]) if row["answer"] is not None else None,
                "created": row["created"],
            }
            for row in rows
        ]

    async def answer_approval_request(
        self, jti: str, *, status: str, answer: Mapping[str, Any]
    ) -> bool:
        """Record the answer to a pending request; ``False`` if it was answered already.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE approval_requests SET status = ?, answer = ?"
                " WHERE jti = ? AND status = 'pending'",
                (status, dumps(dict(answer)), jti),
            )
            return cursor.rowcount == 1

        return await self._write(write)

    async def update_approval_request_data(self, jti: str, data: Mapping[str, Any]) -> None:
        """Replace what is kept of a request (e.g. the approver once he named himself).

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE approval_requests SET data = ? WHERE jti = ?", (dumps(dict(data)), jti)
            )

        await self._write(write)

    # -- pseudonyms and counterparties --

    async def add_pseudonym(self, record: PseudonymRecord) -> None:
        """Keep a new pseudonym.

        Raises:
            ConstraintViolation: the counterparty already has one.
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO pseudonyms (peer_id, identifier, key_file, reply_tag, created)"
                " VALUES (?, ?, ?, ?, ?)",
                (record.peer, record.identifier, record.key_file, record.reply_tag, record.created),
            )

        await self._write(write)

    async def _pseudonym_where(self, key: str, value: str) -> PseudonymRecord | None:
        rows = await self._scan(lambda: self._read(_PSEUDONYM_BY[key], (value,)))
        return _pseudonym(rows[0]) if rows else None

    async def pseudonym_for(self, peer: str) -> PseudonymRecord | None:
        """The pseudonym she uses with ``peer``."""
        return await self._pseudonym_where("peer", peer)

    async def pseudonym_by_identifier(self, identifier: str) -> PseudonymRecord | None:
        """One of her pseudonyms, by its identifier."""
        return await self._pseudonym_where("identifier", identifier)

    async def pseudonym_by_tag(self, tag: str) -> PseudonymRecord | None:
        """The pseudonym whose reply address ends in ``tag``."""
        return await self._pseudonym_where("tag", tag)

    async def pseudonyms(self) -> list[PseudonymRecord]:
        """Every pseudonym, oldest first."""
        rows = await self._scan(lambda: self._read("SELECT * FROM pseudonyms ORDER BY pk"))
        return [_pseudonym(row) for row in rows]

    async def mailbox_cursor(self, peer: str) -> int:
        """Where the next poll of ``peer``'s mailbox starts."""
        rows = await self._scan(
            lambda: self._read("SELECT mailbox_cursor FROM pseudonyms WHERE peer_id = ?", (peer,))
        )
        return int(rows[0][0]) if rows else 0

    async def set_mailbox_cursor(self, peer: str, cursor: int) -> None:
        """Remember where the next poll of ``peer``'s mailbox starts.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE pseudonyms SET mailbox_cursor = ? WHERE peer_id = ?", (cursor, peer)
            )

        await self._write(write)

    async def save_counterparty(self, record: Counterparty) -> None:
        """Keep what a counterparty published.

        Raises:
            StoreUnavailable: it cannot be written now.
        """
        values = (record.party, dumps(record.discovery), dumps(record.jwks), record.fetched_at)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO counterparties (party_id, discovery, jwks, fetched_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (party_id) DO UPDATE SET"
                " discovery = excluded.discovery, jwks = excluded.jwks,"
                " fetched_at = excluded.fetched_at",
                values,
            )

        await self._write(write)

    async def counterparty(self, party: str) -> Counterparty | None:
        """What ``party`` published, as last fetched."""
        rows = await self._scan(
            lambda: self._read("SELECT * FROM counterparties WHERE party_id = ?", (party,))
        )
        return _counterparty(rows[0]) if rows else None

    async def counterparties(self) -> list[Counterparty]:
        """Every counterparty she contacted."""
        rows = await self._scan(
            lambda: self._read("SELECT * FROM counterparties ORDER BY party_id")
        )
        return [_counterparty(row) for row in rows]

    # -- relationships and history --

    async def relationships(self) -> list[Relationship]:
        """Every relationship, oldest pseudonym first."""
        rows = await self._scan(
            lambda: self._read(
                "SELECT p.peer_id, p.identifier, r.core FROM pseudonyms p"
                " JOIN relationships r ON r.peer_id = p.peer_id ORDER BY p.pk"
            )
        )
        return [
            Relationship(
                row["peer_id"],
                row["identifier"],
                RelationshipCore.from_json(orjson.loads(row["core"])),
            )
            for row in rows
        ]

    async def history(
        self,
        *,
        peer: str | None = None,
        type: MessageType | None = None,
        after: int = 0,
        include_refused: bool = True,
    ) -> list[Entry]:
        """Her journal, in order (with ``peer``, of ``type``, after ``seq``)."""
        clauses: list[str] = ["j.seq > ?"]
        params: list[object] = [after]
        if peer is not None:
            clauses.append("j.peer_id = ?")
            params.append(peer)
        if type is not None:
            clauses.append("j.type = ?")
            params.append(type.value)
        if not include_refused:
            clauses.append("j.status NOT LIKE 'refused%'")
        sql = f"{_ENTRY_SELECT} WHERE {' AND '.join(clauses)} ORDER BY j.seq"
        rows = await self._scan(lambda: self._read(sql, params))
        return [_entry(row) for row in rows]

    async def entry(self, message_id: str, *, direction: Direction | None = None) -> Entry | None:
        """The journal line of a message by its id (the latest, if ids repeat)."""
        if direction is None:
            sql = f"{_ENTRY_SELECT} WHERE j.message_id = ? ORDER BY j.seq DESC LIMIT 1"
            params: tuple[str, ...] = (message_id,)
        else:
            sql = (
                f"{_ENTRY_SELECT} WHERE j.message_id = ? AND j.direction = ?"
                " ORDER BY j.seq DESC LIMIT 1"
            )
            params = (message_id, _DIRECTIONS[direction])
        rows = await self._scan(lambda: self._read(sql, params))
        return _entry(rows[0]) if rows else None

    async def record_refusal(self, entry: Journal, token: bytes) -> None:
        """Keep an attempt the peer refused.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> None:
            self._journal(conn, entry, token=token)

        await self._write(write)

    async def enter_paper_offer(self, entry: Journal, body: OfferBody) -> Entry:
        """Keep an offer that came by post, as she typed it in.

        Raises:
            StoreUnavailable: it cannot be written now.
        """
        paper = orjson.dumps(body.model_dump(mode="json", by_alias=True, exclude_none=True))

        def write(conn: sqlite3.Connection) -> int:
            return self._journal(conn, entry, paper=paper.decode())

        seq = await self._write(write)
        rows = await self._scan(lambda: self._read(f"{_ENTRY_SELECT} WHERE j.seq = ?", (seq,)))
        return _entry(rows[0])

    async def offer_views(self, *, peer: str | None = None) -> list[OfferView]:
        """Every offer she received or made (paper answers too), in journal order."""
        rows = await self._scan(
            lambda: (
                self._read(_OFFER_SELECT + " ORDER BY j.seq")
                if peer is None
                else self._read(_OFFER_SELECT + " AND j.peer_id = ? ORDER BY j.seq", (peer,))
            )
        )
        return [view for row in rows if (view := _offer_view(row)) is not None]

    async def offer_view(self, offer_id: str) -> OfferView | None:
        """One offer by its id (the latest journal line of that id)."""
        rows = await self._scan(
            lambda: self._read(
                _OFFER_SELECT + " AND j.message_id = ? ORDER BY j.seq DESC LIMIT 1", (offer_id,)
            )
        )
        return _offer_view(rows[0]) if rows else None

    # -- consents, sharing, deals, exits --

    async def consents(self, peer: str | None = None) -> list[ConsentRecord]:
        """Her answers to terms, oldest first."""
        rows = await self._scan(
            lambda: (
                self._read("SELECT * FROM consents ORDER BY pk")
                if peer is None
                else self._read("SELECT * FROM consents WHERE peer_id = ? ORDER BY pk", (peer,))
            )
        )
        return [_consent(row) for row in rows]

    async def shared_with(self, peer: str) -> list[SharingRecord]:
        """What she disclosed to ``peer``, oldest first."""
        rows = await self._scan(
            lambda: self._read("SELECT * FROM sharing_log WHERE peer_id = ? ORDER BY pk", (peer,))
        )
        return [
            SharingRecord(
                row["peer_id"],
                row["identifier"],
                row["category"],
                row["message_id"],
                row["terms"],
                tuple(orjson.loads(row["purposes"])),
                row["shared_at"],
            )
            for row in rows
        ]

    async def deals(self) -> list[DealRecord]:
        """Every confirmed deal, oldest first."""
        rows = await self._scan(lambda: self._read("SELECT * FROM deals ORDER BY pk"))
        return [
            DealRecord(
                row["deal_id"],
                row["peer_id"],
                row["offer_id"],
                row["acceptance_id"],
                row["confirmation_id"],
                row["confirmed_at"],
            )
            for row in rows
        ]

    async def exits(self, peer: str | None = None) -> list[ExitRecord]:
        """Her exits, oldest first."""
        rows = await self._scan(
            lambda: (
                self._read("SELECT * FROM exits ORDER BY pk")
                if peer is None
                else self._read("SELECT * FROM exits WHERE peer_id = ? ORDER BY pk", (peer,))
            )
        )
        return [_exit(row) for row in rows]

    # -- access grants (spec §6.18, §11.9) --

    async def access_grant(
        self, *, grant_id: str | None = None, tag: str | None = None
    ) -> AccessGrantRecord | None:
        """The grant of that id, or of that read endpoint tag."""
        rows = (
            self._read("SELECT * FROM access_grants WHERE grant_id = ?", (grant_id,))
            if grant_id is not None
            else self._read("SELECT * FROM access_grants WHERE tag = ?", (tag,))
        )
        return _access_grant(rows[0]) if rows else None

    async def access_grants(self, peer: str | None = None) -> list[AccessGrantRecord]:
        """The grants she gave, oldest first."""
        rows = await self._scan(
            lambda: (
                self._read("SELECT * FROM access_grants ORDER BY pk")
                if peer is None
                else self._read(
                    "SELECT * FROM access_grants WHERE peer_id = ? ORDER BY pk", (peer,)
                )
            )
        )
        return [_access_grant(row) for row in rows]

    async def revoke_grant(self, grant_id: str, at: str) -> None:
        """Revoke a grant at once, before the grantee is told (spec §6.19): her
        read endpoint refuses it from now on, whether or not the grantee takes
        the revocation.

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE access_grants SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
                (at, grant_id),
            )

        await self._write(write)

    async def log_read(self, read: GrantRead) -> bool:
        """Log one read; ``False`` (nothing logged) for an answered read whose
        ``jti`` was taken before under its grant (spec §11.9).

        Raises:
            StoreUnavailable: it cannot be written now.
        """

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT INTO grant_reads (grant_id, at, outcome, jti, items)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (read.grant_id, read.at, read.outcome, read.jti, dumps(list(read.items))),
            )
            return cursor.rowcount == 1

        return bool(await self._write(write))

    async def grant_reads(self, grant_id: str) -> list[GrantRead]:
        """Every read logged under a grant, oldest first."""
        rows = await self._scan(
            lambda: self._read(
                "SELECT * FROM grant_reads WHERE grant_id = ? ORDER BY pk", (grant_id,)
            )
        )
        return [
            GrantRead(
                row["grant_id"],
                row["at"],
                row["outcome"],
                row["jti"],
                tuple(orjson.loads(row["items"])),
            )
            for row in rows
        ]

    async def consent_changes(self, peer: str | None = None) -> list[ConsentChangeRecord]:
        """Her consent changes and their receipts, oldest first."""
        rows = await self._scan(
            lambda: (
                self._read("SELECT * FROM consent_changes ORDER BY pk")
                if peer is None
                else self._read(
                    "SELECT * FROM consent_changes WHERE peer_id = ? ORDER BY pk", (peer,)
                )
            )
        )
        return [
            ConsentChangeRecord(
                change_id=row["change_id"],
                peer=row["peer_id"],
                changes=tuple(orjson.loads(row["changes"])),
                at=row["created"],
                receipt_id=row["receipt_id"],
                receipt=orjson.loads(row["receipt"]) if row["receipt"] is not None else None,
                receipt_verified=(
                    bool(row["receipt_verified"]) if row["receipt_verified"] is not None else None
                ),
                problems=tuple(orjson.loads(row["problems"])),
            )
            for row in rows
        ]

    async def breaches(self, peer: str | None = None) -> list[BreachRecord]:
        """The breaches of her terms she recorded, oldest first."""
        rows = await self._scan(
            lambda: (
                self._read("SELECT * FROM breaches ORDER BY pk")
                if peer is None
                else self._read("SELECT * FROM breaches WHERE peer_id = ? ORDER BY pk", (peer,))
            )
        )
        return [
            BreachRecord(
                peer=row["peer_id"],
                message_id=row["message_id"],
                digest=row["digest"],
                code=row["code"],
                detail=row["detail"],
                report_id=row["report_id"],
                at=row["at"],
            )
            for row in rows
        ]

    async def detail_updates(self, item: str | None = None) -> list[DetailUpdate]:
        """The changes of her details she sent (of ``item``), oldest first."""
        rows = await self._scan(
            lambda: (
                self._read("SELECT * FROM detail_updates ORDER BY pk")
                if item is None
                else self._read("SELECT * FROM detail_updates WHERE item = ? ORDER BY pk", (item,))
            )
        )
        return [
            DetailUpdate(
                peer=row["peer_id"],
                update_id=row["update_id"],
                item=row["item"],
                at=row["at"],
                receipt_id=row["receipt_id"],
                receipted_at=row["receipted_at"],
            )
            for row in rows
        ]

    # -- her writes (on the writer thread, inside the unit's savepoint) --

    @staticmethod
    def _journal(
        conn: sqlite3.Connection,
        entry: Journal,
        *,
        token: bytes | None = None,
        paper: str | None = None,
    ) -> int:
        cursor = conn.execute(
            "INSERT INTO journal (peer_id, sender, message_id, type, direction, channel, status,"
            " thread, parent, at, receipt, token, paper)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.peer,
                entry.sender,
                entry.message_id,
                entry.type.value,
                _DIRECTIONS[entry.direction],
                entry.channel,
                entry.status,
                entry.thread,
                entry.parent,
                entry.at,
                entry.receipt,
                token,
                paper,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def apply_domain(self, conn: sqlite3.Connection, write: DomainWrite) -> None:
        """Apply one of her writes.

        Raises:
            TypeError: a write her store does not know.
        """
        if isinstance(write, Journal):
            self._journal(conn, write)
        elif isinstance(write, CredentialRecord):
            conn.execute(
                "INSERT INTO credentials (kind, issuer, subject, token, stored_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (write.kind, write.issuer, write.subject, write.token, write.at),
            )
        elif isinstance(write, SharingRecord):
            conn.execute(
                "INSERT INTO sharing_log (peer_id, identifier, category, message_id, terms,"
                " purposes, shared_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    write.peer,
                    write.identifier,
                    write.category,
                    write.message_id,
                    write.terms,
                    dumps(list(write.purposes)),
                    write.at,
                ),
            )
        elif isinstance(write, ConsentRecord):
            conn.execute(
                "INSERT INTO consents (peer_id, assertion_id, assertion_digest, response_id,"
                " decision, accepted, refused, notifications, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    write.peer,
                    write.assertion_id,
                    write.assertion_digest,
                    write.response_id,
                    write.decision,
                    dumps([{"item": g.item, "purposes": list(g.purposes)} for g in write.accepted]),
                    dumps([{"item": w.item, "reason": w.reason} for w in write.refused]),
                    dumps(list(write.notifications)),
                    write.at,
                ),
            )
        elif isinstance(write, DealRecord):
            conn.execute(
                "INSERT INTO deals (deal_id, peer_id, offer_id, acceptance_id, confirmation_id,"
                " confirmed_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    write.deal_id,
                    write.peer,
                    write.offer_id,
                    write.acceptance_id,
                    write.confirmation_id,
                    write.at,
                ),
            )
        elif isinstance(write, ExitRecord):
            conn.execute(
                "INSERT INTO exits (peer_id, notice_id, notice_digest, preferences, created,"
                " ack_id, deletion_receipt, receipt_verified, problems)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    write.peer,
                    write.notice_id,
                    write.notice_digest,
                    dumps(dict(write.preferences)),
                    write.at,
                    write.ack_id,
                    (
                        dumps(dict(write.deletion_receipt))
                        if write.deletion_receipt is not None
                        else None
                    ),
                    None if write.receipt_verified is None else int(write.receipt_verified),
                    dumps(list(write.problems)),
                ),
            )
        elif isinstance(write, ExitAcknowledged):
            conn.execute(
                "UPDATE exits SET ack_id = ?, deletion_receipt = ?, receipt_verified = ?,"
                " problems = ? WHERE notice_id = ?",
                (
                    write.ack_id,
                    (
                        dumps(dict(write.deletion_receipt))
                        if write.deletion_receipt is not None
                        else None
                    ),
                    int(write.verified),
                    dumps(list(write.problems)),
                    write.notice_id,
                ),
            )
        elif isinstance(write, AccessGrantRecord):
            conn.execute(
                "INSERT INTO access_grants (grant_id, peer_id, identifier, message_id, items,"
                " purposes, until, endpoint, tag, key, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    write.grant_id,
                    write.peer,
                    write.identifier,
                    write.message_id,
                    dumps(list(write.items)),
                    dumps(list(write.purposes)),
                    write.until,
                    write.endpoint,
                    write.tag,
                    write.key,
                    write.at,
                ),
            )
        elif isinstance(write, ConsentChangeRecord):
            conn.execute(
                "INSERT INTO consent_changes (change_id, peer_id, changes, created)"
                " VALUES (?, ?, ?, ?)",
                (write.change_id, write.peer, dumps([dict(c) for c in write.changes]), write.at),
            )
        elif isinstance(write, ConsentReceiptChecked):
            conn.execute(
                "UPDATE consent_changes SET receipt_id = ?, receipt = ?, receipt_verified = ?,"
                " problems = ? WHERE change_id = ?",
                (
                    write.receipt_id,
                    dumps(dict(write.receipt)),
                    int(write.verified),
                    dumps(list(write.problems)),
                    write.change_id,
                ),
            )
        elif isinstance(write, AccessRevoked):
            conn.execute(
                "UPDATE access_grants SET revoked_at = COALESCE(revoked_at, ?),"
                " revocation_id = ? WHERE grant_id = ?",
                (write.at, write.message_id, write.grant_id),
            )
        elif isinstance(write, BreachRecord):
            conn.execute(
                "INSERT INTO breaches (peer_id, message_id, digest, code, detail, report_id, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    write.peer,
                    write.message_id,
                    write.digest,
                    write.code,
                    write.detail,
                    write.report_id,
                    write.at,
                ),
            )
        elif isinstance(write, DetailUpdate):
            conn.execute(
                "INSERT OR IGNORE INTO detail_updates (peer_id, update_id, item, at)"
                " VALUES (?, ?, ?, ?)",
                (write.peer, write.update_id, write.item, write.at),
            )
        elif isinstance(write, DetailReceipted):
            conn.executemany(
                "UPDATE detail_updates SET receipt_id = ?, receipted_at = ?"
                " WHERE update_id = ? AND item = ?",
                [(write.receipt_id, write.at, write.update_id, item) for item in write.items],
            )
        else:
            super().apply_domain(conn, write)
