"""Canonical bodies of printed material by post (spec §6.60, §6.61), for the
state-machine journeys of ``test_state_machine_support``: each passes every
guard, taking first the request a dispatch answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrm_protocol.vocabulary import MessageType, Role

if TYPE_CHECKING:
    from test_state_machine_support import Journey

M = MessageType
MISSING = "urn:uuid:00000000-0000-4000-8000-0000000011ac"
REQUEST = {
    "materials": [{"code": "brochure"}],
    "address": {"lines": ["1 Example Street"], "postcode": "NW3 1AA", "country": "GB"},
    "consent": {"purpose": "delivery", "retention": "until-sent"},
}


def materials_body(journey: Journey, message_type: MessageType) -> dict[str, Any] | None:
    """A body of ``message_type`` passing every guard, or ``None`` for another type."""
    from test_state_machine_support import ANY_DIGEST, stamp

    if message_type is M.MATERIAL_REQUEST:
        return dict(REQUEST)
    if message_type is M.MATERIAL_DISPATCH:
        request = journey.latest_request(M.MATERIAL_REQUEST, open_only=True)
        if request is None:
            journey.step(Role.BUYER, M.MATERIAL_REQUEST, dict(REQUEST))
            request = journey.latest_request(M.MATERIAL_REQUEST, open_only=True)
        return {
            "request": {"id": request or MISSING, "digest": ANY_DIGEST},
            "materials": ["brochure"],
            "sentAt": stamp(journey.now),
            "addressDeleted": True,
        }
    return None
