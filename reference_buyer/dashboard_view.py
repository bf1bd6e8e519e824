"""What her dashboard shows, read from her store through its typed methods.

One :class:`DashboardView` per page load: her relationships and where each
stands, the offers she holds side by side, what she shared with whom under
which terms and for how long, the access grants she gave (and which she may
still revoke), her consent changes and how their receipts checked out, her
exits and their deletion receipts, and the notices she refused. Pure reading:
nothing here writes to her store or sends anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from reference_buyer.agent import BuyerAgent
from reference_buyer.store import AccessGrantRecord, BuyerStore, Entry
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.models import (
    ConsentReceiptBody,
    DeletionReceipt,
    ProblemReportMessage,
    ServiceNoticeMessage,
    ServiceResponseMessage,
    TermsAssertionMessage,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

__all__ = [
    "ConsentChangeRow",
    "DashboardView",
    "ExitRow",
    "GrantRow",
    "NoticeRow",
    "OfferRow",
    "RelationshipRow",
    "SharedRow",
    "build_view",
]


@dataclass(frozen=True, slots=True)
class RelationshipRow:
    """One relationship: the party, her pseudonym there, its state."""

    peer: str
    identifier: str
    state: str
    messages: int


@dataclass(frozen=True, slots=True)
class OfferRow:
    """One offer she holds, with its cost as her ranking made it up."""

    offer_id: str
    peer: str
    basis: str
    status: str
    valid_until: str
    items: tuple[str, ...]
    currency: str
    total_cost: str
    net_price: str | None
    finance_cost: str | None
    rank: int | None
    signed: bool


@dataclass(frozen=True, slots=True)
class SharedRow:
    """One item she disclosed to one party: under which terms, for what, how long."""

    peer: str
    item: str
    terms: str
    purposes: tuple[str, ...]
    at: str
    kept_for: str


@dataclass(frozen=True, slots=True)
class GrantRow:
    """One access grant she gave, and whether she can still revoke it."""

    grant_id: str
    peer: str
    items: tuple[str, ...]
    purposes: tuple[str, ...]
    until: str
    status: str
    reads: int
    revocable: bool


@dataclass(frozen=True, slots=True)
class ConsentChangeRow:
    """One consent change, and how its receipt checked out."""

    change_id: str
    peer: str
    at: str
    changes: tuple[str, ...]
    receipt_id: str | None
    outcome: str
    applied: tuple[str, ...]
    retained: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExitRow:
    """One exit, and how its deletion receipt checked out."""

    peer: str
    notice_id: str
    at: str
    ack_id: str | None
    outcome: str
    deleted: tuple[str, ...]
    retained: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """A notice she refused (declined, or answered with a problem report)."""

    peer: str
    notice_id: str
    kind: str
    category: str
    summary: str
    answer: str


@dataclass(frozen=True, slots=True)
class DashboardView:
    """Everything one page of her dashboard shows."""

    relationships: tuple[RelationshipRow, ...]
    offers: tuple[OfferRow, ...]
    shared: tuple[SharedRow, ...]
    grants: tuple[GrantRow, ...]
    consent_changes: tuple[ConsentChangeRow, ...]
    exits: tuple[ExitRow, ...]
    notices_refused: tuple[NoticeRow, ...]


async def build_view(agent: BuyerAgent) -> DashboardView:
    """Read her dashboard from her store, now.

    Raises:
        StoreUnavailable: her store cannot be read now.
    """
    store = agent.store
    now = agent.clock.now()
    relationships = await store.relationships()
    rows = [
        RelationshipRow(
            r.peer, r.identifier, r.core.state.value, len(await store.history(peer=r.peer))
        )
        for r in relationships
    ]
    return DashboardView(
        relationships=tuple(rows),
        offers=await _offers(agent),
        shared=await _shared(store, [r.peer for r in relationships]),
        grants=await _grants(store, now),
        consent_changes=await _consent_changes(store),
        exits=await _exits(store),
        notices_refused=await _notices_refused(store),
    )


async def _offers(agent: BuyerAgent) -> tuple[OfferRow, ...]:
    ranked = {row.offer_id: row for row in await agent.ranked_offers()}
    rows = []
    for view in await agent.store.offer_views():
        if view.entry.direction is not Direction.RECEIVED:
            continue
        cost = ranked.get(view.id)
        rows.append(
            OfferRow(
                offer_id=view.id,
                peer=view.peer,
                basis=view.basis,
                status=view.status,
                valid_until=view.body.valid_until,
                items=tuple(item.description for item in view.body.items),
                currency=cost.currency if cost is not None else view.body.price.total.currency,
                total_cost=str(cost.total_cost)
                if cost is not None
                else str(view.body.price.total.amount),
                net_price=str(cost.net_price) if cost is not None else None,
                finance_cost=str(cost.finance_cost) if cost is not None else None,
                rank=cost.rank if cost is not None else None,
                signed=view.verified,
            )
        )
    # Side by side: the ranked (open) offers first, cheapest first, then the rest.
    rows.sort(key=lambda row: (row.rank is None, row.rank or 0))
    return tuple(rows)


async def _retention(store: BuyerStore, assertion_id: str) -> Mapping[str, str]:
    """Item -> how long the party said it keeps it, from the terms assertion she answered."""
    entry = await store.entry(assertion_id, direction=Direction.RECEIVED)
    if entry is None or entry.token is None:
        return {}
    try:
        message = entry.model()
    except ProtocolError:
        return {}
    if not isinstance(message, TermsAssertionMessage):
        return {}
    kept = {}
    for request in message.body.requests:
        retention = request.retention
        kept[request.item] = retention.period + (f" ({retention.basis})" if retention.basis else "")
    return kept


async def _shared(store: BuyerStore, peers: Sequence[str]) -> tuple[SharedRow, ...]:
    rows = []
    for peer in peers:
        kept: dict[str, str] = {}
        for consent in await store.consents(peer):
            kept.update(await _retention(store, consent.assertion_id))
        for record in await store.shared_with(peer):
            rows.append(
                SharedRow(
                    peer=peer,
                    item=record.category,
                    terms=record.terms or "none named",
                    purposes=record.purposes,
                    at=record.at,
                    kept_for=kept.get(record.category, "not said"),
                )
            )
    return tuple(rows)


def _grant_status(record: AccessGrantRecord, now: datetime) -> str:
    if record.revoked_at is not None:
        told = "the grantee was told" if record.revocation_id else "the grantee not told yet"
        return f"revoked {record.revoked_at} ({told})"
    if now >= parse_timestamp(record.until):
        return "expired"
    return "in force"


async def _grants(store: BuyerStore, now: datetime) -> tuple[GrantRow, ...]:
    rows = []
    for record in await store.access_grants():
        status = _grant_status(record, now)
        rows.append(
            GrantRow(
                grant_id=record.grant_id,
                peer=record.peer,
                items=record.items,
                purposes=record.purposes,
                until=record.until,
                status=status,
                reads=len(await store.grant_reads(record.grant_id)),
                revocable=status == "in force",
            )
        )
    return tuple(rows)


def _change_line(change: Mapping[str, Any]) -> str:
    purposes = change.get("purposes") or ()
    line = f"{change.get('action', '?')} {change.get('item', '?')}"
    return line + (f": {', '.join(str(p) for p in purposes)}" if purposes else "")


def _outcome(verified: bool | None, awaited: str) -> str:
    return {None: awaited, True: "checked: it accounts for everything", False: "NOT verified"}[
        verified
    ]


async def _consent_changes(store: BuyerStore) -> tuple[ConsentChangeRow, ...]:
    rows = []
    for record in await store.consent_changes():
        applied: tuple[str, ...] = ()
        retained: tuple[str, ...] = ()
        if record.receipt is not None:
            try:
                receipt = ConsentReceiptBody.model_validate(record.receipt)
            except ValidationError:
                receipt = None
            if receipt is not None:
                applied = tuple(
                    f"{a.item}: {', '.join(a.purposes) or 'no purpose'}"
                    + (" (deleted)" if a.deleted else "")
                    for a in receipt.applied
                )
                retained = tuple(f"{r.item}: {r.basis} until {r.until}" for r in receipt.retained)
        rows.append(
            ConsentChangeRow(
                change_id=record.change_id,
                peer=record.peer,
                at=record.at,
                changes=tuple(_change_line(change) for change in record.changes),
                receipt_id=record.receipt_id,
                outcome=_outcome(record.receipt_verified, "receipt awaited"),
                applied=applied,
                retained=retained,
                problems=record.problems,
            )
        )
    return tuple(rows)


async def _exits(store: BuyerStore) -> tuple[ExitRow, ...]:
    rows = []
    for record in await store.exits():
        deleted: tuple[str, ...] = ()
        retained: tuple[str, ...] = ()
        if record.deletion_receipt is not None:
            try:
                receipt = DeletionReceipt.model_validate(record.deletion_receipt)
            except ValidationError:
                receipt = None
            if receipt is not None:
                deleted = tuple(receipt.deleted)
                retained = tuple(
                    f"{r.item}: {r.basis}" + (f" until {r.until}" if r.until else "")
                    for r in receipt.retained or ()
                )
        rows.append(
            ExitRow(
                peer=record.peer,
                notice_id=record.notice_id,
                at=record.at,
                ack_id=record.ack_id,
                outcome=_outcome(record.receipt_verified, "acknowledgement awaited"),
                deleted=deleted,
                retained=retained,
                problems=record.problems,
            )
        )
    return tuple(rows)


def _model(entry: Entry) -> Any:
    try:
        return entry.model()
    except ProtocolError:
        return None


async def _notices_refused(store: BuyerStore) -> tuple[NoticeRow, ...]:
    """Notices she declined, or answered with a problem report (her own signed answers)."""
    answers: dict[str, str] = {}
    for entry in await store.history(type=MessageType.SERVICE_RESPONSE, include_refused=False):
        message = _model(entry)
        if (
            entry.direction is Direction.SENT
            and isinstance(message, ServiceResponseMessage)
            and message.body.decision == "decline"
        ):
            reasons = "; ".join(d.reason for d in message.body.declined or ())
            answers[message.body.notice.id] = "declined" + (f": {reasons}" if reasons else "")
    for entry in await store.history(type=MessageType.PROBLEM_REPORT, include_refused=False):
        message = _model(entry)
        if (
            entry.direction is Direction.SENT
            and isinstance(message, ProblemReportMessage)
            and message.body.regarding is not None
        ):
            answers[message.body.regarding.id] = f"refused: {message.body.code}"
    rows = []
    for entry in await store.history(type=MessageType.SERVICE_NOTICE, include_refused=False):
        message = _model(entry)
        if (
            entry.direction is Direction.RECEIVED
            and isinstance(message, ServiceNoticeMessage)
            and entry.message_id in answers
        ):
            rows.append(
                NoticeRow(
                    peer=entry.peer,
                    notice_id=entry.message_id,
                    kind=message.body.kind,
                    category=message.body.category,
                    summary=message.body.summary,
                    answer=answers[entry.message_id],
                )
            )
    return tuple(rows)
