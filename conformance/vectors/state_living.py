"""State vectors of living with the product (spec §6.40 on): the canonical
bodies of its messages, with the moves each needs first, and the refusal of
every guard rule. Used by :mod:`conformance.vectors.generate_state`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from vrm_protocol.vocabulary import MessageType, Role

if TYPE_CHECKING:
    from conformance.vectors.generate_state import Case, _Play

__all__ = ["canonical", "guard_cases"]

M = MessageType
B, V = Role.BUYER, Role.VENDOR
_MISSING = "urn:uuid:00000000-0000-4000-8000-0000000011fe"
_MATS = {
    "code": "floor-mats",
    "description": "Floor mats",
    "price": {"amount": "95.00", "currency": "GBP"},
}
_SITE = {"country": "GB", "postcodeArea": "W1"}


def _proposal(play: _Play) -> dict[str, Any]:
    from conformance.vectors.generate_state import _stamp

    start = play.now + timedelta(days=7)
    return {
        "kind": "service",
        "slots": [
            {
                "id": "mon-0900",
                "start": _stamp(start),
                "end": _stamp(start + timedelta(hours=3)),
                "place": _SITE,
            }
        ],
        "respondBy": _stamp(play.now + timedelta(days=5)),
    }


def _open(play: _Play, kind: MessageType) -> str:
    """An open ``kind`` of the appointment exchange (its earlier steps taken first)."""
    from conformance.vectors.generate_state import _BIND

    found = play.latest(kind, open_only=True)
    if found is not None:
        return found
    if kind is M.APPOINTMENT_PROPOSAL:
        return play.step(V, kind, _proposal(play))
    if kind is M.APPOINTMENT_BOOKING:
        proposal = _open(play, M.APPOINTMENT_PROPOSAL)
        body = {"proposal": {"id": proposal, "digest": _BIND}, "slot": "mon-0900"}
        return play.step(B, kind, body)
    booking = _open(play, M.APPOINTMENT_BOOKING)
    return play.step(V, kind, _confirmation(play, booking))


def _confirmation(play: _Play, booking: str) -> dict[str, Any]:
    from conformance.vectors.generate_state import _BIND

    slot = _proposal(play)["slots"][0]
    return {
        "booking": {"id": booking, "digest": _BIND},
        "slot": slot["id"],
        "start": slot["start"],
        "end": slot["end"],
        "place": slot["place"],
    }


def canonical(play: _Play, message_type: MessageType, sender: Role) -> dict[str, Any] | None:
    """A body of ``message_type`` that passes every guard (taking the moves it
    answers first), or ``None`` for another type."""
    from conformance.vectors.generate_state import _BIND

    if message_type is M.APPOINTMENT_PROPOSAL:
        return _proposal(play)
    if message_type is M.APPOINTMENT_BOOKING:
        proposal = _open(play, M.APPOINTMENT_PROPOSAL)
        return {"proposal": {"id": proposal, "digest": _BIND}, "slot": "mon-0900"}
    if message_type is M.APPOINTMENT_CONFIRMATION:
        return _confirmation(play, _open(play, M.APPOINTMENT_BOOKING))
    if message_type is M.APPOINTMENT_CANCELLATION:
        confirmed = _open(play, M.APPOINTMENT_CONFIRMATION)
        return {"appointment": {"id": confirmed, "digest": _BIND}, "reason": "Ill"}
    if message_type is M.ADDON_OFFER:
        return _addon_offer(play)
    if message_type is M.ADDON_RESPONSE:
        found = play.latest(M.ADDON_OFFER, open_only=True)
        offer = found if found is not None else play.step(V, M.ADDON_OFFER, _addon_offer(play))
        return {
            "addonOffer": {"id": offer, "digest": _BIND},
            "accepted": ["floor-mats"],
            "declined": ["paint-protection"],
        }
    if message_type is M.SERVICE_RECORD:
        confirmed = _open(play, M.APPOINTMENT_CONFIRMATION)
        return _service_record(play, confirmed)
    return None


def _addon_offer(play: _Play) -> dict[str, Any]:
    from conformance.vectors.generate_state import _money, _stamp
    from conformance.vectors.state_transaction import _deal_refs

    offer, _ = _deal_refs(play)
    return {
        "deal": {"id": "deal-1", "offer": offer},
        "addons": [
            {"code": "floor-mats", "description": "Floor mats", "price": _money("95.00")},
            {"code": "paint-protection", "description": "Paint", "price": _money("495.00")},
        ],
        "validUntil": _stamp(play.now + timedelta(days=7)),
    }


def _service_record(play: _Play, appointment: str) -> dict[str, Any]:
    from conformance.vectors.generate_state import _BIND, _money, _stamp

    return {
        "appointment": {"id": appointment, "digest": _BIND},
        "work": [{"code": "scheduled-maintenance", "description": "Annual service"}],
        "parts": [{"description": "Oil filter", "quantity": 1}],
        "cost": _money("189.00"),
        "mileage": 12480,
        "completedAt": _stamp(play.now),
    }


def guard_cases() -> dict[str, tuple[str, str, Case]]:
    """name -> (description, requirement, case), as ``_guard_cases`` has them."""
    from conformance.vectors.generate_state import WRONG_DIGEST, S, _case, _set

    return {
        "addon-offer-other-offer": (
            "An add-on offer naming the accepted offer with another digest.",
            "VRM-LIV-010",
            _case(S.WELCOME, V, M.ADDON_OFFER, _set("/body/deal/offer/digest", WRONG_DIGEST)),
        ),
        "addon-offer-code-twice": (
            "An add-on offer proposing one code twice.",
            "VRM-LIV-010",
            _case(S.TRANSACTION, V, M.ADDON_OFFER, _set("/body/addons", [_MATS, _MATS])),
        ),
        "addon-response-answers-nothing": (
            "An add-on response naming no add-on offer of the vendor.",
            "VRM-LIV-011",
            _case(S.SERVICING, B, M.ADDON_RESPONSE, _set("/body/addonOffer/id", _MISSING)),
        ),
        "addon-response-other-digest": (
            "An add-on response naming the add-on offer with another digest.",
            "VRM-LIV-011",
            _case(S.WELCOME, B, M.ADDON_RESPONSE, _set("/body/addonOffer/digest", WRONG_DIGEST)),
        ),
        "addon-response-accepted-and-declined": (
            "An add-on response accepting and declining one code.",
            "VRM-LIV-011",
            _case(S.TRANSACTION, B, M.ADDON_RESPONSE, _set("/body/declined", ["floor-mats"])),
        ),
        "service-record-appointment-nothing": (
            "A service record naming no confirmed appointment of the vendor.",
            "VRM-LIV-007",
            _case(S.SERVICING, V, M.SERVICE_RECORD, _set("/body/appointment/id", _MISSING)),
        ),
        "service-record-other-digest": (
            "A service record naming the confirmed appointment with another digest.",
            "VRM-LIV-007",
            _case(
                S.DEVELOPMENT, V, M.SERVICE_RECORD, _set("/body/appointment/digest", WRONG_DIGEST)
            ),
        ),
        "service-record-completed-not-an-instant": (
            "A service record completed at a time that does not exist.",
            "VRM-LIV-007",
            _case(
                S.PROBLEM, V, M.SERVICE_RECORD, _set("/body/completedAt", "2029-02-30T10:00:00Z")
            ),
        ),
        "booking-answers-nothing": (
            "An appointment booking naming no proposal of the vendor.",
            "VRM-LIV-001",
            _case(S.SERVICING, B, M.APPOINTMENT_BOOKING, _set("/body/proposal/id", _MISSING)),
        ),
        "booking-other-digest": (
            "An appointment booking naming the proposal with another digest.",
            "VRM-LIV-001",
            _case(S.ENQUIRY, B, M.APPOINTMENT_BOOKING, _set("/body/proposal/digest", WRONG_DIGEST)),
        ),
        "confirmation-answers-nothing": (
            "An appointment confirmation naming no booking of hers.",
            "VRM-LIV-003",
            _case(S.SERVICING, V, M.APPOINTMENT_CONFIRMATION, _set("/body/booking/id", _MISSING)),
        ),
        "confirmation-other-digest": (
            "An appointment confirmation naming her booking with another digest.",
            "VRM-LIV-003",
            _case(
                S.PROBLEM,
                V,
                M.APPOINTMENT_CONFIRMATION,
                _set("/body/booking/digest", WRONG_DIGEST),
            ),
        ),
        "cancellation-names-nothing": (
            "An appointment cancellation naming no booked or confirmed appointment.",
            "VRM-LIV-006",
            _case(
                S.SERVICING, B, M.APPOINTMENT_CANCELLATION, _set("/body/appointment/id", _MISSING)
            ),
        ),
        "cancellation-other-digest": (
            "An appointment cancellation naming the appointment with another digest.",
            "VRM-LIV-006",
            _case(
                S.NEGOTIATION,
                V,
                M.APPOINTMENT_CANCELLATION,
                _set("/body/appointment/digest", WRONG_DIGEST),
            ),
        ),
    }
