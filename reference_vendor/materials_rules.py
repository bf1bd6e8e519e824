"""Printed material by post (spec §6.60, §6.61; seed 000 step 2, seed 004): the
vendor's strategy for the address she gives.

The address of a material request is hers for one purpose (`delivery`) until
the material is sent (VRM-MAT-004): the reference vendor posts at once, in the
unit of work that takes the request, and never writes the address down. A
strategy, so that the suite's self-tests can start the vendor keeping it
(:mod:`reference_vendor.faults`) without a branch in the production code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

from reference_vendor.store import DataRow
from vrm_agent.unit import UnitOfWork
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import MaterialDispatchBody, MaterialRequestBody, MessageRef, to_payload

__all__ = [
    "FORGETS",
    "POSTAL_ADDRESS",
    "AddressKeeping",
    "Forgets",
    "KeepsAddress",
    "dispatch_body",
]

#: The data category of the address (spec §16.8).
POSTAL_ADDRESS: Final = "contact.postal-address"


class AddressKeeping(Protocol):
    """What becomes of her address once the material is posted."""

    def after_posting(
        self, peer: str, request_id: str, body: MaterialRequestBody, work: UnitOfWork, now: datetime
    ) -> None:
        """Record (or not) the address in the unit of work that posted the material."""
        ...


@dataclass(frozen=True, slots=True)
class Forgets:
    """Production: the address is used to post and written nowhere (VRM-MAT-004)."""

    def after_posting(
        self, peer: str, request_id: str, body: MaterialRequestBody, work: UnitOfWork, now: datetime
    ) -> None:
        return None


@dataclass(frozen=True, slots=True)
class KeepsAddress:
    """A fault: the address is kept a year after posting, the dispatch still says deleted."""

    def after_posting(
        self, peer: str, request_id: str, body: MaterialRequestBody, work: UnitOfWork, now: datetime
    ) -> None:
        stamp = format_timestamp(now)
        until = format_timestamp(now + timedelta(days=365))
        work.write(
            DataRow(
                peer,
                POSTAL_ADDRESS,
                to_payload(body.address),
                ("delivery",),
                until,
                request_id,
                stamp,
            )
        )


FORGETS: Final[AddressKeeping] = Forgets()


def dispatch_body(
    request: MessageRef, body: MaterialRequestBody, now: datetime
) -> MaterialDispatchBody:
    """The dispatch of everything she asked for, posted ``now``, the address deleted."""
    return MaterialDispatchBody.model_validate(
        {
            "request": request,
            "materials": [item.code for item in body.materials],
            "sentAt": format_timestamp(now),
            "addressDeleted": True,
        }
    )
