"""What the vendor offers and confirms for appointments (spec §6.40-§6.42): its strategies.

Strategies, so that the suite's self-tests can start the vendor confirming a
slot other than the one she booked (:mod:`reference_vendor.faults`) without a
branch in the production code. In production the vendor's calendar offers a
few slots in the days ahead and confirms exactly the slot she booked
(VRM-LIV-004).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.models import AppointmentSlot, Location

__all__ = [
    "AS_BOOKED",
    "CALENDAR",
    "AsBooked",
    "Calendar",
    "Confirming",
    "OtherSlot",
    "SlotPlan",
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
