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


def delivered(journey: Journey, missing: str) -> None:
    """She accepted a handover of the deal (recorded and inspected first when not)."""
    from test_state_machine_support import ANY_DIGEST

    if journey.latest_request(M.INSPECTION_RESULT, open_only=True) is not None:
        return
    handover = journey.latest_request(M.HANDOVER_RECORD, open_only=True)
    if handover is None:
        journey.step(Role.VENDOR, M.HANDOVER_RECORD, handover_body(journey, missing))
        handover = journey.latest_request(M.HANDOVER_RECORD, open_only=True)
    body = {"handover": {"id": handover or missing, "digest": ANY_DIGEST}, "decision": "accept"}
    journey.step(Role.BUYER, M.INSPECTION_RESULT, body)


def invoice_body(journey: Journey, missing: str, *, total: str = "28500") -> dict[str, Any]:
    """An invoice of the journey's deal: one line, the offer's total."""
    from test_state_machine_support import stamp

    offer, _ = deal_refs(journey, missing)
    return {
        "id": "INV-1",
        "deal": {"id": "deal-1", "offer": offer},
        "lines": [{"code": "vehicle", "description": "Prius", "amount": _money("28500")}],
        "total": _money(total),
        "due": stamp(journey.now + timedelta(days=14)),
    }


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


def open_invoice(journey: Journey, missing: str) -> str:
    """An invoice awaiting payment (the deal delivered and invoiced first when none is)."""
    found = journey.latest_request(M.INVOICE, open_only=True)
    if found is None:
        delivered(journey, missing)
        journey.step(Role.VENDOR, M.INVOICE, invoice_body(journey, missing))
        found = journey.latest_request(M.INVOICE, open_only=True)
    return found or missing


def payment_body(journey: Journey, invoice: str) -> dict[str, Any]:
    """Her payment of ``invoice`` with the credit union's loan."""
    from test_state_machine_support import ANY_DIGEST

    return {
        "invoice": {"id": invoice, "digest": ANY_DIGEST},
        "method": "finance",
        "financing": {"plan": "hp-48", "provider": "https://credit-union.example"},
        "amount": _money("28500"),
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
    if message_type is M.INVOICE:
        delivered(journey, missing)
        return invoice_body(journey, missing)
    if message_type is M.INVOICE_QUERY:
        invoice = open_invoice(journey, missing)
        return {
            "invoice": {"id": invoice, "digest": ANY_DIGEST},
            "lines": ["vehicle"],
            "reason": "Not the offer's price",
        }
    if message_type is M.PAYMENT_NOTICE:
        return payment_body(journey, open_invoice(journey, missing))
    if message_type is M.PAYMENT_RECEIPT:
        payment = journey.latest_request(M.PAYMENT_NOTICE, open_only=True)
        if payment is None:
            invoice = open_invoice(journey, missing)
            journey.step(Role.BUYER, M.PAYMENT_NOTICE, payment_body(journey, invoice))
            payment = journey.latest_request(M.PAYMENT_NOTICE, open_only=True)
        return {
            "payment": {"id": payment or missing, "digest": ANY_DIGEST},
            "amount": _money("28500"),
            "receivedAt": stamp(journey.now),
        }
    return None
