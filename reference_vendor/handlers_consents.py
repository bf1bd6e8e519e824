"""Her consent changes, applied, and the signed receipt of what was done (spec §6.20, §6.21).

A withdrawal stops every purpose of the item and deletes it, unless the
deal's legal basis needs it (the sales record: who bought, where it goes,
what was traded in), in which case only the deal's record keeps it, until the
date the receipt states; identity disclosed at acceptance is no exception
(VRM-GRANT-010). A narrowing keeps only the purposes she names; a widening
adds only purposes the vendor's terms of sharing ask for the item
(VRM-GRANT-011). The receipt accounts for every item she changed
(VRM-GRANT-009). Importing this module registers its handler on
:data:`reference_vendor.handlers.HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from reference_vendor.catalogue import parse_duration
from reference_vendor.handlers import (
    ACCEPTANCE_CATEGORIES,
    DEAL_RECORD_BASIS,
    DEAL_RECORD_RETENTION,
    HANDLERS,
)
from reference_vendor.store import ConsentPurposes, DeletionRow, ForgetItem
from vrm_agent.inbox import Inbound
from vrm_agent.unit import UnitOfWork
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import (
    AppliedChange,
    ConsentChangeMessage,
    ConsentReceiptBody,
    RetainedConsentItem,
)

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = ["DEAL_RECORD_NEEDS", "WITHDRAWN"]

#: What the deal's record needs kept on its legal basis (sales and tax records):
#: who bought, where the car went, what was traded in. A telephone number or an
#: e-mail address is not among them.
DEAL_RECORD_NEEDS: Final = frozenset(
    {"identity.name", "contact.postal-address", "vehicle.registration"}
)
#: The reason of a deletion her withdrawal caused (the deletions log, the exit's receipt).
WITHDRAWN: Final = "consent-withdrawn"
#: Data category -> the identity member of an acceptance that discloses it.
_MEMBER_OF: Final[Mapping[str, str]] = {
    category: member for member, category in ACCEPTANCE_CATEGORIES.items()
}


@HANDLERS.on(ConsentChangeMessage)
async def on_consent_change(
    vendor: VendorAgent, inbound: Inbound[ConsentChangeMessage], work: UnitOfWork
) -> None:
    """Apply her consent change and answer with the receipt (see the module docstring)."""
    peer, now = inbound.peer, inbound.now
    stamp = format_timestamp(now)
    store = vendor.store
    consented: dict[str, tuple[str, ...]] = {}
    for consent in await store.consents_for(peer):
        consented[consent.item] = tuple(
            dict.fromkeys([*consented.get(consent.item, ()), *consent.purposes])
        )
    held = {data.item for data in await store.data_for(peer)}
    in_deals = {category for deal in await store.deals_for(peer) for category in deal.categories}
    asked = {request.item: request.purposes for request in vendor.catalogue.data_requests}
    until = (now + DEAL_RECORD_RETENTION).date().isoformat()
    applied: list[AppliedChange] = []
    retained: list[RetainedConsentItem] = []
    for change in inbound.message.body.changes:
        item = change.item
        if change.action == "withdraw":
            if item in in_deals and item in DEAL_RECORD_NEEDS:
                # Every purpose stops; the deal's record keeps it on its legal basis.
                work.write(ForgetItem(peer, item))
                applied.append(AppliedChange(item=item, purposes=(), deleted=False))
                retained.append(
                    RetainedConsentItem(item=item, basis=DEAL_RECORD_BASIS, until=until)
                )
                continue
            member = _MEMBER_OF.get(item) if item in in_deals else None
            work.write(ForgetItem(peer, item, member))
            if item in held or item in in_deals or item in consented:
                work.write(DeletionRow(peer, item, WITHDRAWN, stamp))
            applied.append(AppliedChange(item=item, purposes=(), deleted=True))
            continue
        current = consented.get(item, ())
        named = tuple(change.purposes or ())
        if change.action == "narrow":
            purposes = tuple(p for p in current if p in named)
        else:
            # Widening adds only what the terms of sharing ask for the item (VRM-GRANT-011).
            purposes = tuple(
                dict.fromkeys([*current, *(p for p in named if p in asked.get(item, ()))])
            )
        retention = change.retention
        # Her change may shorten how long it is kept, never lengthen it (spec §6.20).
        shortened = (
            format_timestamp(now + parse_duration(retention.period))
            if retention is not None
            else None
        )
        if item in consented:
            work.write(ConsentPurposes(peer, item, purposes, shortened))
        else:
            purposes = ()  # nothing held under consent: nothing to narrow or widen
        applied.append(AppliedChange(item=item, purposes=purposes, deleted=False))
    inbound.answer(
        work,
        ConsentReceiptBody(change=inbound.ref(), applied=tuple(applied), retained=tuple(retained)),
    )
