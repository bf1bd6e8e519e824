"""What the vendor hands over at delivery (spec §6.22, §6.23): its strategies.

A strategy, so that the suite's self-tests can start the vendor recording a
one-sided handover (:mod:`reference_vendor.faults`) without a branch in the
production code. In production the new item and its papers go to the
individual and, when the accepted offer took a trade-in, the trade-in and its
papers go to the vendor in the same handover (seed 001, VRM-TRX-003).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol

from vrm_protocol.models import OfferBody

__all__ = ["BOTH_WAYS", "BothWays", "Handover", "HandoverPlan", "ItemChange", "OneSided"]


@dataclass(frozen=True, slots=True)
class ItemChange:
    """One thing that changes hands."""

    kind: Literal["new-vehicle", "trade-in", "papers"]
    description: str
    direction: Literal["to-buyer", "to-vendor"]


@dataclass(frozen=True, slots=True)
class HandoverPlan:
    """What a handover lists, and whether it says the deal has a trade-in."""

    trade_in: bool
    items: tuple[ItemChange, ...]


class Handover(Protocol):
    """What changes hands at the delivery of a deal."""

    def plan(self, offer: OfferBody, trade_in_described: str | None) -> HandoverPlan:
        """The handover of the deal whose accepted offer is ``offer``;
        ``trade_in_described`` is the trade-in as her acceptance registered it."""
        ...


def _delivered(offer: OfferBody) -> list[ItemChange]:
    changes = [ItemChange("new-vehicle", item.description, "to-buyer") for item in offer.items]
    changes.append(
        ItemChange("papers", "Registration certificate, keys and service book", "to-buyer")
    )
    return changes


class BothWays:
    """The new item to her and, with a trade-in, the trade-in to the vendor, at once."""

    def plan(self, offer: OfferBody, trade_in_described: str | None) -> HandoverPlan:
        """Both directions when the accepted offer has a trade-in (VRM-TRX-003)."""
        changes = _delivered(offer)
        if offer.trade_in is None:
            return HandoverPlan(False, tuple(changes))
        old = trade_in_described or offer.trade_in.item.description
        changes.append(ItemChange("trade-in", old, "to-vendor"))
        changes.append(
            ItemChange("papers", f"Registration certificate and keys of {old}", "to-vendor")
        )
        return HandoverPlan(True, tuple(changes))


class OneSided:
    """Fault only: delivers the new item and says nothing of the trade-in."""

    def plan(self, offer: OfferBody, trade_in_described: str | None) -> HandoverPlan:
        """The new item alone, as if the deal had no trade-in."""
        return HandoverPlan(False, tuple(_delivered(offer)))


BOTH_WAYS: Final = BothWays()
