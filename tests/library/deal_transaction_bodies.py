"""Canonical bodies of the transaction carried through (spec §6.22 on), for the
state-machine journeys of ``test_state_machine_support``: each passes every
guard in the states after the deal, taking first the moves it answers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from vrm_protocol.vocabulary import MessageType, Role

if TYPE_CHECKING:
    from test_state_machine_support import Journey

M = MessageType


def deal_refs(journey: Journey, missing: str) -> tuple[dict[str, str], dict[str, str]]:
    """The accepted offer and its acceptance, as references bound to their bytes."""
    from test_state_machine_support import ANY_DIGEST

    offer = {"id": journey.buyer.accepted_offer or missing, "digest": ANY_DIGEST}
    acceptance = {"id": journey.buyer.core.acceptance or missing, "digest": ANY_DIGEST}
    return offer, acceptance


def handover_body(
    journey: Journey, missing: str, *, trade_in: bool = False, items: list[Any] | None = None
) -> dict[str, Any]:
    """A handover record of the journey's deal (the new car only, by default)."""
    from test_state_machine_support import stamp

    offer, acceptance = deal_refs(journey, missing)
    return {
        "deal": {"id": "deal-1", "offer": offer, "acceptance": acceptance, "tradeIn": trade_in},
        "at": stamp(journey.now),
        "items": items
        or [{"kind": "new-vehicle", "description": "Prius", "direction": "to-buyer"}],
    }


def transaction_body(
    journey: Journey, message_type: MessageType, missing: str
) -> dict[str, Any] | None:
    """The canonical body of ``message_type``, or ``None`` for another type."""
    from test_state_machine_support import ANY_DIGEST, stamp

    if message_type is M.DELIVERY_NOTICE:
        offer, _ = deal_refs(journey, missing)
        return {
            "deal": {"id": "deal-1", "offer": offer},
            "scheduledFor": stamp(journey.now + timedelta(days=7)),
            "place": {"country": "GB", "postcodeArea": "W1"},
            "items": [{"kind": "new-vehicle", "description": "Prius", "direction": "to-buyer"}],
        }
    if message_type is M.HANDOVER_RECORD:
        return handover_body(journey, missing)
    if message_type is M.INSPECTION_RESULT:
        handover = journey.latest_request(M.HANDOVER_RECORD, open_only=True)
        if handover is None:
            journey.step(Role.VENDOR, M.HANDOVER_RECORD, handover_body(journey, missing))
            handover = journey.latest_request(M.HANDOVER_RECORD, open_only=True)
        return {"handover": {"id": handover or missing, "digest": ANY_DIGEST}, "decision": "accept"}
    return None
