"""Canonical bodies of the messages of her own terms and programmes (spec
§6.70-§6.73), for the state-machine journeys of ``test_state_machine_support``:
each passes every guard in the states that allow it, taking first the move it
answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrm_protocol.message_types._myterms import ENGAGED
from vrm_protocol.message_types.details_update import HOLDING
from vrm_protocol.myterms import roster
from vrm_protocol.vocabulary import MessageType as M
from vrm_protocol.vocabulary import Role

if TYPE_CHECKING:
    from test_state_machine_support import Journey


def _details() -> dict[str, Any]:
    return {"items": [{"item": "contact.phone", "value": "+44 7700 900123"}]}


def _agreement() -> dict[str, str]:
    first = next(iter(roster().values()))
    return {"id": first.id, "version": first.version, "digest": first.digest}


def myterms_body(journey: Journey, message_type: M, missing: str) -> dict[str, Any] | None:
    """The canonical body of ``message_type``, or ``None`` for another type."""
    from test_state_machine_support import ANY_DIGEST

    if message_type is M.TERMS_PROFFER:
        return {"agreement": _agreement()}
    if message_type is M.PROGRAMME_ENROLMENT:
        return {"programme": "road-warrior"}
    if message_type is M.DETAILS_UPDATE:
        return _details()
    if message_type is M.DETAILS_RECEIPT:
        update = journey.latest_request(M.DETAILS_UPDATE, open_only=True)
        if update is None and journey.state in HOLDING:
            journey.step(Role.BUYER, M.DETAILS_UPDATE, _details())
            update = journey.latest_request(M.DETAILS_UPDATE, open_only=True)
        return {
            "update": {"id": update or missing, "digest": ANY_DIGEST},
            "held": ["contact.phone"],
        }
    if message_type is M.TERMS_AGREEMENT:
        proffer = journey.latest_request(M.TERMS_PROFFER, open_only=True)
        if proffer is None and journey.state in ENGAGED:
            journey.step(Role.BUYER, M.TERMS_PROFFER, {"agreement": _agreement()})
            proffer = journey.latest_request(M.TERMS_PROFFER, open_only=True)
        return {
            "proffer": {"id": proffer or missing, "digest": ANY_DIGEST},
            "agreement": _agreement(),
            "decision": "agree",
        }
    return None
