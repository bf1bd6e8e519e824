"""What a relationship produced, exported; and a vendor leaving the market (seed 003 step 9).

:func:`relationship_export` is the export of everything the vendor holds for a
relationship: the data items with their purposes and retention, what retention
already deleted, the consents, the deals, the offers, and the history the
relationship produced (spec §6.14): the vendor's signed messages of record
(deal confirmations, invoices, receipts, support resolutions, service notices)
as compact JWS she can verify and keep. Her exit's acknowledgement carries it,
and so does the exit notice of a vendor leaving the market.

:func:`leave_market` is the operator's decision to leave: every relationship
not already ended gets an exit notice with reason ``vendor-leaving-market``
(spec §6.13, §7.5) that carries her export and the receipt of the deletion the
vendor carries out in the same unit of work (VRM-RET-003); her agent checks
both against her sharing log and acknowledges (VRM-RET-004).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from reference_vendor.store import (
    ConsentRow,
    DataRow,
    DealRow,
    DeletionRow,
    EraseData,
    VendorStore,
)
from vrm_agent.store import RelationshipRecord
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import (
    DeletionReceipt,
    DeletionRequest,
    ExitNoticeBody,
    ExportRequest,
    ReengagementPreferences,
    RetainedItem,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = [
    "DEAL_RECORD_BASIS",
    "DEAL_RECORD_RETENTION",
    "DELETING",
    "HISTORY_TYPES",
    "LEFT_MARKET_SETTING",
    "Departure",
    "Leaving",
    "LeavingRule",
    "RelationshipExport",
    "deletion_receipt",
    "leave_market",
    "relationship_export",
]

#: How long the records of a contract are kept after an exit (UK: six years).
DEAL_RECORD_RETENTION: Final = dt.timedelta(days=6 * 365)
#: The legal basis on which they are kept.
DEAL_RECORD_BASIS: Final = "legal-obligation: sales and tax records are kept for six years"
#: The vendor's own messages that are records of the relationship, exported as
#: the signed tokens she can verify with its keys (spec §6.14).
HISTORY_TYPES: Final = frozenset(
    {
        MessageType.DEAL_CONFIRMATION,
        MessageType.HANDOVER_RECORD,
        MessageType.INVOICE,
        MessageType.PAYMENT_RECEIPT,
        MessageType.SERVICE_NOTICE,
        MessageType.SUPPORT_RESOLUTION,
        MessageType.TERMS_ASSERTION,
    }
)
#: Settings key: when the vendor left the market (it makes no offer after).
LEFT_MARKET_SETTING: Final = "left-market-at"
#: States in which a relationship has already ended or is ending.
_ENDED: Final = frozenset({RelationshipState.EXITING, RelationshipState.EXITED})


class Leaving(Protocol):
    """Whether leaving the market deletes what its receipt says (a fault may not)."""

    @property
    def deletes(self) -> bool:
        """Whether the deletion is carried out."""
        ...


@dataclass(frozen=True, slots=True)
class LeavingRule:
    """Leaving as the receipt says: :attr:`deletes`."""

    deletes: bool = True


DELETING: Final = LeavingRule()


@dataclass(frozen=True, slots=True)
class RelationshipExport:
    """Everything held for a relationship, as exported, with what it was made of."""

    data: dict[str, Any]
    digest: str
    held: tuple[DataRow, ...]
    consents: tuple[ConsentRow, ...]
    deals: tuple[DealRow, ...]
    earlier: tuple[DeletionRow, ...]


@dataclass(frozen=True, slots=True)
class Departure:
    """One relationship the vendor left: its exit notice, or why none was sent."""

    peer: str
    sent: bool
    message_id: str | None = None
    reason: str | None = None


async def _history(store: VendorStore, peer: str) -> list[dict[str, Any]]:
    """The vendor's messages of record in the relationship, oldest first."""
    return [
        {"type": stored.type.value, "id": stored.message_id, "token": stored.token.decode()}
        for stored in await store.messages_of(peer)
        if stored.direction is Direction.SENT and stored.type in HISTORY_TYPES
    ]


async def relationship_export(store: VendorStore, peer: str) -> RelationshipExport:
    """The export of everything held for ``peer`` (spec §6.14), with the vendor's
    signed messages of record.

    Raises:
        StoreUnavailable: the store cannot be read.
    """
    held = tuple(await store.data_for(peer))
    consents = tuple(await store.consents_for(peer))
    deals = tuple(await store.deals_for(peer))
    offers = await store.offers(peer)
    earlier = tuple(await store.deletions_for(peer))
    data: dict[str, Any] = {
        item.item: {
            "value": item.value,
            "purposes": list(item.purposes),
            "retainUntil": item.retain_until,
            "collectedAt": item.created_at,
        }
        for item in held
    }
    for past in earlier:
        # Deleted before the exit (retention ended): the export says so.
        data.setdefault(past.item, {"deletedAt": past.deleted_at, "reason": past.reason})
    for deal in deals:
        # What she disclosed at acceptance is held in the deal's record.
        for category in deal.categories:
            data.setdefault(category, {"heldIn": f"deal {deal.id}"})
    data["consents"] = [
        {"item": c.item, "purposes": list(c.purposes), "retention": c.retention} for c in consents
    ]
    data["deals"] = [
        {
            "id": d.id,
            "offer": d.offer_id,
            "total": {"amount": d.total_amount, "currency": d.currency},
            "identity": dict(d.identity),
        }
        for d in deals
    ]
    data["offers"] = [
        {"id": o.id, "basis": o.basis, "status": o.status.value, "madeBy": o.sender.value}
        for o in offers
    ]
    data["history"] = await _history(store, peer)
    return RelationshipExport(
        data, message_digest(canonical_json(data)), held, consents, deals, earlier
    )


def deletion_receipt(
    export: RelationshipExport,
    peer: str,
    work: UnitOfWork,
    now: dt.datetime,
    *,
    categories: frozenset[str] = frozenset(),
) -> DeletionReceipt:
    """Delete what is held for ``peer`` in ``work`` (only ``categories`` when given) and
    say so: the records of a contract are kept on a legal basis, named category by
    category (spec §6.14)."""
    stamp = format_timestamp(now)
    targets = [d for d in export.held if not categories or d.item in categories]
    deleted = {d.item for d in targets} | {c.item for c in export.consents}
    work.write(*(DeletionRow(peer, data.item, "exit", stamp) for data in targets))
    work.write(EraseData(peer))
    # What was deleted earlier, when its retention ended, is deleted too.
    deleted |= {d.item for d in export.earlier}
    retained: tuple[RetainedItem, ...] = ()
    if export.deals:
        until = (now + DEAL_RECORD_RETENTION).date().isoformat()
        kept = {"transaction.records"} | {c for d in export.deals for c in d.categories}
        retained = tuple(
            RetainedItem(item=item, basis=DEAL_RECORD_BASIS, until=until) for item in sorted(kept)
        )
    return DeletionReceipt(
        relationship=peer,
        deleted=tuple(sorted(deleted)),
        deleted_at=stamp,
        **present(retained=retained or None),
    )


async def leave_market(
    vendor: VendorAgent, *, explanation: str | None = None, only: str | None = None
) -> list[Departure]:
    """Leave the market: an exit notice to every relationship not already ending
    (``only`` that one, for a test), carrying her export and the receipt of the
    deletion done with it (spec §6.13, VRM-RET-003). A relationship whose state
    forbids the notice keeps its data, and says why.

    Raises:
        StoreUnavailable: the store cannot be read or written.
    """
    if only is None:
        # Out of the market: no new offers either (spec §7.5).
        await vendor.store.set_setting(LEFT_MARKET_SETTING, format_timestamp(vendor.clock.now()))
    summary = await vendor.store.summary()
    departures: list[Departure] = []
    for peer, relationship in sorted(summary.get("relationships", {}).items()):
        if RelationshipState(relationship["state"]) in _ENDED or only not in (None, peer):
            continue
        export = await relationship_export(vendor.store, peer)

        async def compose(
            record: RelationshipRecord,
            work: UnitOfWork,
            peer: str = peer,
            export: RelationshipExport = export,
        ) -> None:
            now = vendor.clock.now()
            receipt = deletion_receipt(export, peer, work, now)
            if not vendor.strategies.leaving.deletes:
                work.writes[:] = [
                    w for w in work.writes if not isinstance(w, DeletionRow | EraseData)
                ]
            body = ExitNoticeBody(
                reason="vendor-leaving-market",
                effective_at=format_timestamp(now),
                export=ExportRequest(
                    requested=True,
                    media_type="application/json",
                    data=export.data,
                    digest=export.digest,
                ),
                deletion=DeletionRequest(requested=True),
                deletion_receipt=receipt,
                reengagement=ReengagementPreferences(allowed=False),
                **present(explanation=explanation),
            )
            # Nothing queued earlier reaches her after the notice (spec §7.5).
            work.cancel_deliveries = True
            work.reply(body, thread=record.thread, parent=None)

        def finish(work: UnitOfWork) -> None:
            if not work.outbound:
                # Not sent: nothing is deleted either.
                work.writes.clear()
                work.cancel_deliveries = False

        try:
            work = await vendor.pipeline.act(peer, compose, finish=finish)
        except LookupError as error:
            departures.append(Departure(peer, False, reason=str(error)))
            continue
        if work.outbound:
            departures.append(Departure(peer, True, work.outbound[0].message.message_id))
        else:
            departures.append(
                Departure(peer, False, reason="the relationship's state forbids the notice")
            )
    vendor.outbox.wake()
    return departures
