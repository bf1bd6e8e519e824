"""Her guards for living with the product (spec §6.40 on): strategies.

Strategies, so that the suite's self-tests can start her agent with a guard
weakened (:mod:`reference_buyer.faults`) without a branch in production code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Protocol

from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.models import (
    Addon,
    AppointmentConfirmationBody,
    AppointmentSlot,
    OfferBody,
    ServiceRecordBody,
)

__all__ = [
    "AS_SHE_BOOKED",
    "DECLINED_WORK",
    "EXTRA_LIMIT",
    "UP_TO_A_LIMIT",
    "AddonChoice",
    "AnySlot",
    "AsSheBooked",
    "ConfirmationRule",
    "DeclinedWork",
    "NoFlags",
    "UpToALimit",
    "WorkRule",
]


class ConfirmationRule(Protocol):
    """Which appointment confirmations she takes (spec §6.42, VRM-LIV-005)."""

    def check(self, confirmation: AppointmentConfirmationBody, booked: AppointmentSlot) -> None:
        """Refuse ``confirmation`` when it is not ``booked``, the slot she booked.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        ...


class AsSheBooked:
    """The slot she booked: its id, start, end and place, as proposed."""

    def check(self, confirmation: AppointmentConfirmationBody, booked: AppointmentSlot) -> None:
        """Refuse another slot, another time or another place.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        said = (confirmation.slot, confirmation.start, confirmation.end, confirmation.place)
        if said != (booked.id, booked.start, booked.end, booked.place):
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                f"the confirmation says {confirmation.slot} from {confirmation.start} to "
                f"{confirmation.end}; she booked {booked.id} from {booked.start} to {booked.end}",
                path="/body/slot",
            )


class AnySlot:
    """Fault only: takes any confirmation of her booking."""

    def check(self, confirmation: AppointmentConfirmationBody, booked: AppointmentSlot) -> None:
        """Nothing is refused."""
        return None


AS_SHE_BOOKED: Final = AsSheBooked()


# -- service records (spec §6.44) -----------------------------------------------------------------


class WorkRule(Protocol):
    """Which work of a service record her agent flags (spec §6.44, VRM-LIV-009)."""

    def flags(self, record: ServiceRecordBody, declined: set[str]) -> list[str]:
        """The work codes of ``record`` to flag, given the codes she ``declined``."""
        ...


class DeclinedWork:
    """Work she declined in her answer to the vendor's notice."""

    def flags(self, record: ServiceRecordBody, declined: set[str]) -> list[str]:
        """The codes of the work listed that she declined."""
        return [work.code for work in record.work if work.code in declined]


class NoFlags:
    """Fault only: flags nothing."""

    def flags(self, record: ServiceRecordBody, declined: set[str]) -> list[str]:
        """Nothing."""
        return []


DECLINED_WORK: Final = DeclinedWork()


# -- add-ons at the transaction (spec §6.45, §6.46) --------------------------------------------

#: The most she pays for an extra her agent takes without asking her (seed 000
#: step 4: the floor mats, not the paint protection).
EXTRA_LIMIT: Final = Decimal("150")


class AddonChoice(Protocol):
    """Which extras she takes when she names none herself."""

    def accepts(self, addon: Addon) -> bool:
        """Whether she takes ``addon``."""
        ...


class UpToALimit:
    """Extras up to :data:`EXTRA_LIMIT` each (in any currency: a standing order of hers)."""

    def accepts(self, addon: Addon) -> bool:
        """``addon`` costs at most the limit."""
        return Decimal(addon.price.amount) <= EXTRA_LIMIT


UP_TO_A_LIMIT: Final = UpToALimit()


# -- offers that put her at risk (seed 001) -----------------------------------------------------


class OfferWarnings(Protocol):
    """What her agent flags in an offer, before she accepts anything."""

    def warnings(self, offer: OfferBody) -> list[str]:
        """Her agent's warnings about ``offer``, none when it raises none."""
        ...


class TradeInFirst:
    """An offer that takes her old car, or its papers, before it delivers the new
    one (seed 001: the dealer then holds both cars and all the risk is hers)."""

    def warnings(self, offer: OfferBody) -> list[str]:
        """A warning per part of the trade-in handed over before delivery."""
        trade_in = offer.trade_in
        if trade_in is None:
            return []
        found = []
        if trade_in.handover == "before-delivery":
            found.append("the old car is handed over before the new one is delivered")
        if trade_in.papers_handover == "before-delivery":
            found.append("the old car's papers are handed over before the new one is delivered")
        return found


class NoWarnings:
    """Fault only: flags nothing."""

    def warnings(self, offer: OfferBody) -> list[str]:
        """Nothing."""
        return []


TRADE_IN_FIRST: Final = TradeInFirst()
