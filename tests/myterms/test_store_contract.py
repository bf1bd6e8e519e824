"""The vendor's store holds her new details in the deal's record (spec §6.73):
the identity she disclosed at acceptance takes the new value, on SQLite and on
PostgreSQL alike (the contract's ``store`` fixture runs both)."""

from __future__ import annotations

from reference_vendor.store import DealIdentityUpdated, DealRow, OfferTerms, VendorStore
from tests.vendor.test_store_contract import (
    PEER,
    STAMP,
    _digest,
    _message,
    _offer,
    _unit,
    opener,
    store,
)
from vrm_protocol.ledger import OfferOpened
from vrm_protocol.state_machine import RelationshipState

__all__ = ["opener", "store"]


async def test_her_new_details_replace_those_of_the_deal(store: VendorStore) -> None:
    await store.commit(
        _unit(
            inbound=_message("urn:uuid:1"),
            effects=[OfferOpened(_offer("urn:uuid:o"))],
            writes=[OfferTerms(PEER, "urn:uuid:o", 2, "28500", "GBP")],
        )
    )
    identity = {"name": "Sally", "phone": "+44 20 7946 0000"}
    await store.commit(
        _unit(
            state=RelationshipState.TRANSACTION,
            inbound=_message("urn:uuid:2", digest=_digest("B"), thread="urn:uuid:1"),
            writes=[
                DealRow(
                    "deal-1", PEER, "urn:uuid:o", "urn:uuid:2", "28500", "GBP", identity, STAMP,
                    ("contact.phone", "identity.name"),
                )
            ],
        )
    )  # fmt: skip
    moved = {"name": "Sally", "phone": "+44 7700 900123"}
    await store.commit(
        _unit(
            state=RelationshipState.TRANSACTION,
            inbound=_message("urn:uuid:3", digest=_digest("C"), thread="urn:uuid:1"),
            writes=[DealIdentityUpdated("deal-1", moved)],
        )
    )
    [deal] = await store.deals_for(PEER)
    assert dict(deal.identity) == moved
    assert deal.categories == ("contact.phone", "identity.name")
