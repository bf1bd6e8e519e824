"""Canonical bodies of living with the product (spec §6.40 on), for the
state-machine journeys of ``test_state_machine_support``: each passes every
guard, taking first the moves it answers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from vrm_protocol.vocabulary import MessageType, Role

if TYPE_CHECKING:
    from test_state_machine_support import Journey

M = MessageType
MISSING = "urn:uuid:00000000-0000-4000-8000-0000000011ab"
SITE = {"country": "GB", "postcodeArea": "W1"}


def proposal_body(journey: Journey, *, slots: int = 1) -> dict[str, Any]:
    """Slots for a service, a week ahead, three hours each, a day apart."""
    from test_state_machine_support import stamp

    first = journey.now + timedelta(days=7)
    return {
        "kind": "service",
        "slots": [
            {
                "id": f"slot-{n}",
                "start": stamp(first + timedelta(days=n)),
                "end": stamp(first + timedelta(days=n, hours=3)),
                "place": SITE,
            }
            for n in range(slots)
        ],
        "respondBy": stamp(journey.now + timedelta(days=5)),
    }


def open_step(journey: Journey, kind: MessageType, missing: str = MISSING) -> str:
    """An open ``kind`` of the appointment exchange (earlier steps taken first;
    ``missing`` when the state allows none)."""
    found = journey.latest_request(kind, open_only=True)
    if found is not None:
        return found
    if kind is M.APPOINTMENT_PROPOSAL:
        journey.step(Role.VENDOR, kind, proposal_body(journey))
    elif kind is M.APPOINTMENT_BOOKING:
        journey.step(Role.BUYER, kind, booking_body(open_step(journey, M.APPOINTMENT_PROPOSAL)))
    else:
        journey.step(
            Role.VENDOR, kind, confirmation_body(journey, open_step(journey, M.APPOINTMENT_BOOKING))
        )
    return journey.latest_request(kind, open_only=True) or missing


def booking_body(proposal: str, slot: str = "slot-0") -> dict[str, Any]:
    """Her booking of ``slot`` of ``proposal``."""
    from test_state_machine_support import ANY_DIGEST

    return {"proposal": {"id": proposal, "digest": ANY_DIGEST}, "slot": slot}


def confirmation_body(journey: Journey, booking: str) -> dict[str, Any]:
    """The confirmation of ``booking``: the first slot as proposed."""
    from test_state_machine_support import ANY_DIGEST

    slot = proposal_body(journey)["slots"][0]
    return {
        "booking": {"id": booking, "digest": ANY_DIGEST},
        "slot": slot["id"],
        "start": slot["start"],
        "end": slot["end"],
        "place": slot["place"],
    }


def living_body(journey: Journey, message_type: MessageType) -> dict[str, Any] | None:
    """A body of ``message_type`` passing every guard, or ``None`` for another type."""
    from test_state_machine_support import ANY_DIGEST

    if message_type is M.APPOINTMENT_PROPOSAL:
        return proposal_body(journey)
    if message_type is M.APPOINTMENT_BOOKING:
        return booking_body(open_step(journey, M.APPOINTMENT_PROPOSAL))
    if message_type is M.APPOINTMENT_CONFIRMATION:
        return confirmation_body(journey, open_step(journey, M.APPOINTMENT_BOOKING))
    if message_type is M.APPOINTMENT_CANCELLATION:
        confirmed = open_step(journey, M.APPOINTMENT_CONFIRMATION)
        return {"appointment": {"id": confirmed, "digest": ANY_DIGEST}, "reason": "Ill"}
    if message_type is M.ADDON_OFFER:
        return addon_offer_body(journey)
    if message_type is M.ADDON_RESPONSE:
        offer = journey.latest_request(M.ADDON_OFFER, open_only=True)
        if offer is None:
            journey.step(Role.VENDOR, M.ADDON_OFFER, addon_offer_body(journey))
            offer = journey.latest_request(M.ADDON_OFFER, open_only=True)
        return addon_response_body(offer or MISSING)
    if message_type is M.SERVICE_RECORD:
        return service_record_body(journey, open_step(journey, M.APPOINTMENT_CONFIRMATION))
    return None


def service_record_body(journey: Journey, appointment: str | None) -> dict[str, Any]:
    """The record of the annual service done at ``appointment`` (none: without one)."""
    from test_state_machine_support import ANY_DIGEST, stamp

    body: dict[str, Any] = {
        "work": [{"code": "scheduled-maintenance", "description": "Annual service"}],
        "cost": {"amount": "189.00", "currency": "GBP"},
        "mileage": 12480,
        "completedAt": stamp(journey.now),
    }
    if appointment is not None:
        body["appointment"] = {"id": appointment, "digest": ANY_DIGEST}
    return body


def addon_offer_body(journey: Journey) -> dict[str, Any]:
    """Floor mats and a paint protection for the journey's deal."""
    from deal_transaction_bodies import deal_refs
    from test_state_machine_support import stamp

    offer, _ = deal_refs(journey, MISSING)
    return {
        "deal": {"id": "deal-1", "offer": offer},
        "addons": [
            {"code": "floor-mats", "description": "Mats", "price": GBP("95.00")},
            {"code": "paint-protection", "description": "Paint", "price": GBP("495.00")},
        ],
        "validUntil": stamp(journey.now + timedelta(days=7)),
    }


def addon_response_body(
    offer: str, accepted: tuple[str, ...] = ("floor-mats",),
    declined: tuple[str, ...] = ("paint-protection",),
) -> dict[str, Any]:  # fmt: skip
    """Her answer to ``offer``: the mats, not the paint protection."""
    from test_state_machine_support import ANY_DIGEST

    return {
        "addonOffer": {"id": offer, "digest": ANY_DIGEST},
        "accepted": list(accepted),
        "declined": list(declined),
    }


def GBP(amount: str) -> dict[str, str]:
    """``amount`` pounds."""
    return {"amount": amount, "currency": "GBP"}
