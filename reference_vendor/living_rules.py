"""What the vendor offers and confirms for appointments (spec §6.40-§6.42): its strategies.

Strategies, so that the suite's self-tests can start the vendor confirming a
slot other than the one she booked (:mod:`reference_vendor.faults`) without a
branch in the production code. In production the vendor's calendar offers a
few slots in the days ahead and confirms exactly the slot she booked
(VRM-LIV-004).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Protocol

from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.models import AppointmentSlot, Location, ProposedWork, ServiceResponseBody

__all__ = [
    "ACCEPTED_ONLY",
    "AS_ANSWERED",
    "AS_BOOKED",
    "CALENDAR",
    "EXTRAS",
    "AcceptedOnly",
    "AddonInvoicing",
    "AsAnswered",
    "AsBooked",
    "Calendar",
    "Confirming",
    "EveryExtra",
    "EveryProposal",
    "Extra",
    "OtherSlot",
    "Servicing",
    "SlotPlan",
    "Work",
]

#: Where appointments take place, coarsely (spec §6.40: never a street address).
SITE: Final = Location(country="GB")


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """The slots a proposal offers, and how long they are held."""

    slots: tuple[AppointmentSlot, ...]
    respond_by: datetime


class Calendar:
    """The vendor's calendar: two slots a day, on the three days starting a week
    from ``now`` (a service takes a morning or an afternoon, a test drive an hour)."""

    def slots(self, kind: str, now: datetime) -> SlotPlan:
        """The slots offered for an appointment of ``kind``, from ``now``."""
        length = timedelta(minutes=45) if kind == "test-drive" else timedelta(hours=3)
        day = (now + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
        slots = []
        for offset in range(3):
            for hour in (9, 14):
                start = day + timedelta(days=offset, hours=hour)
                slots.append(
                    AppointmentSlot(
                        id=f"{start:%a-%d-%H%M}".lower(),
                        start=format_timestamp(start),
                        end=format_timestamp(start + length),
                        place=SITE,
                    )
                )
        return SlotPlan(tuple(slots), now + timedelta(days=5))


class Confirming(Protocol):
    """Which slot the vendor confirms for a booking."""

    def confirm(self, booked: AppointmentSlot) -> AppointmentSlot:
        """The slot confirmed when she booked ``booked``."""
        ...


class AsBooked:
    """The slot she booked, as proposed (VRM-LIV-004)."""

    def confirm(self, booked: AppointmentSlot) -> AppointmentSlot:
        """``booked`` unchanged."""
        return booked


class OtherSlot:
    """Fault only: confirms the booked slot's id at another time (a day later)."""

    def confirm(self, booked: AppointmentSlot) -> AppointmentSlot:
        """``booked`` moved a day later."""
        day = timedelta(days=1)
        return booked.model_copy(
            update={
                "start": format_timestamp(parse_timestamp(booked.start) + day),
                "end": format_timestamp(parse_timestamp(booked.end) + day),
            }
        )


CALENDAR: Final = Calendar()
AS_BOOKED: Final = AsBooked()


# -- service records (spec §6.44) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Work:
    """One piece of work done: its code, what it was, and what it cost."""

    code: str
    description: str
    price: Decimal


class Servicing(Protocol):
    """What the vendor does, and records, of the work a notice proposed."""

    def work(self, proposals: Sequence[ProposedWork], answer: ServiceResponseBody) -> list[Work]:
        """The work done, given the notice's ``proposals`` and her ``answer``."""
        ...


#: What a proposal without a price costs (labour and consumables of a service).
STANDARD_CHARGE: Final = Decimal("189.00")


def _work(proposal: ProposedWork) -> Work:
    price = Decimal(proposal.price.amount) if proposal.price is not None else STANDARD_CHARGE
    return Work(proposal.code, proposal.description, price)


class AsAnswered:
    """The proposals she accepted, none she declined (VRM-LIV-008)."""

    def work(self, proposals: Sequence[ProposedWork], answer: ServiceResponseBody) -> list[Work]:
        """The accepted proposals (all of them when she accepted the notice whole)."""
        if answer.decision == "decline":
            return []
        declined = {d.item for d in answer.declined or ()}
        accepted = set(answer.accepted or ())
        return [
            _work(p)
            for p in proposals
            if p.code not in declined and (answer.decision == "accept" or p.code in accepted)
        ]


class EveryProposal:
    """Fault only: records every proposal as done, the declined ones too."""

    def work(self, proposals: Sequence[ProposedWork], answer: ServiceResponseBody) -> list[Work]:
        """All of ``proposals``."""
        return [_work(p) for p in proposals]


AS_ANSWERED: Final = AsAnswered()


# -- add-ons at the transaction (spec §6.45, §6.46) --------------------------------------------


@dataclass(frozen=True, slots=True)
class Extra:
    """An extra the vendor proposes at the transaction: its code, what, its price."""

    code: str
    description: str
    price: Decimal


#: The extras the dealer proposes with a car.
EXTRAS: Final = (
    Extra("floor-mats", "Rubber floor mats, set of four", Decimal("95.00")),
    Extra("paint-protection", "Ceramic paint protection, five years", Decimal("495.00")),
)


class AddonInvoicing(Protocol):
    """Which extras of an add-on offer the invoice charges."""

    def charged(self, proposed: Sequence[Extra], accepted: set[str]) -> list[Extra]:
        """The extras charged, of ``proposed``, given the codes she ``accepted``."""
        ...


class AcceptedOnly:
    """The extras she accepted, none she declined (VRM-LIV-013)."""

    def charged(self, proposed: Sequence[Extra], accepted: set[str]) -> list[Extra]:
        """The accepted ones."""
        return [extra for extra in proposed if extra.code in accepted]


class EveryExtra:
    """Fault only: charges every extra proposed, the declined ones too."""

    def charged(self, proposed: Sequence[Extra], accepted: set[str]) -> list[Extra]:
        """All of ``proposed``."""
        return list(proposed)


ACCEPTED_ONLY: Final = AcceptedOnly()
