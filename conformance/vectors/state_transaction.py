"""State vectors of the transaction carried through (spec §6.22 on): the
canonical bodies of its messages, with the moves each needs first, and the
refusal of every guard rule. Used by :mod:`conformance.vectors.generate_state`.
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
_MISSING = "urn:uuid:00000000-0000-4000-8000-00000000dea1"


def _deal_refs(play: _Play) -> tuple[dict[str, str], dict[str, str]]:
    from conformance.vectors.generate_state import _BIND

    offer = {"id": play.buyer.accepted_offer or _MISSING, "digest": _BIND}
    acceptance = {"id": play.buyer.core.acceptance or _MISSING, "digest": _BIND}
    return offer, acceptance


def _handover(play: _Play) -> dict[str, Any]:
    from conformance.vectors.generate_state import _stamp

    offer, acceptance = _deal_refs(play)
    return {
        "deal": {"id": "deal-1", "offer": offer, "acceptance": acceptance, "tradeIn": False},
        "at": _stamp(play.now),
        "items": [{"kind": "new-vehicle", "description": "Prius", "direction": "to-buyer"}],
    }


def _open_handover(play: _Play) -> str:
    """A handover record awaiting her inspection (recorded first when none is)."""
    found = play.latest(M.HANDOVER_RECORD, open_only=True)
    return found if found is not None else play.step(V, M.HANDOVER_RECORD, _handover(play))


def _delivered(play: _Play) -> None:
    """She accepted a handover of the deal (inspected first when she has not)."""
    from conformance.vectors.generate_state import _BIND

    if play.latest(M.INSPECTION_RESULT, open_only=True) is None:
        handover = _open_handover(play)
        body = {"handover": {"id": handover, "digest": _BIND}, "decision": "accept"}
        play.step(B, M.INSPECTION_RESULT, body)


def _invoice(play: _Play) -> dict[str, Any]:
    from conformance.vectors.generate_state import _money, _stamp

    offer, _ = _deal_refs(play)
    return {
        "id": "INV-1",
        "deal": {"id": "deal-1", "offer": offer},
        "lines": [{"code": "vehicle", "description": "Prius", "amount": _money("28500")}],
        "total": _money("28500"),
        "due": _stamp(play.now + timedelta(days=14)),
    }


def _open_invoice(play: _Play) -> str:
    """An invoice awaiting payment (the deal delivered and invoiced first when none is)."""
    found = play.latest(M.INVOICE, open_only=True)
    if found is not None:
        return found
    _delivered(play)
    return play.step(V, M.INVOICE, _invoice(play))


def _open_payment(play: _Play) -> str:
    """A payment of hers awaiting its receipt (made first when none is)."""
    from conformance.vectors.generate_state import _BIND, _money

    found = play.latest(M.PAYMENT_NOTICE, open_only=True)
    if found is not None:
        return found
    invoice = _open_invoice(play)
    body = {
        "invoice": {"id": invoice, "digest": _BIND},
        "method": "bank-transfer",
        "amount": _money("28500"),
    }
    return play.step(B, M.PAYMENT_NOTICE, body)


def canonical(play: _Play, message_type: MessageType, sender: Role) -> dict[str, Any] | None:
    """A body of ``message_type`` that passes every guard in the states after the
    deal (taking the moves it answers first), or ``None`` for another type."""
    from conformance.vectors.generate_state import _BIND, _money, _stamp

    if message_type is M.DELIVERY_NOTICE:
        offer, _ = _deal_refs(play)
        return {
            "deal": {"id": "deal-1", "offer": offer},
            "scheduledFor": _stamp(play.now + timedelta(days=7)),
            "place": {"country": "GB", "postcodeArea": "W1"},
            "items": [{"kind": "new-vehicle", "description": "Prius", "direction": "to-buyer"}],
        }
    if message_type is M.HANDOVER_RECORD:
        return _handover(play)
    if message_type is M.INSPECTION_RESULT:
        return {"handover": {"id": _open_handover(play), "digest": _BIND}, "decision": "accept"}
    if message_type is M.INVOICE:
        _delivered(play)
        return _invoice(play)
    if message_type is M.INVOICE_QUERY:
        invoice = _open_invoice(play)
        return {
            "invoice": {"id": invoice, "digest": _BIND},
            "lines": ["vehicle"],
            "reason": "Not the offer's price",
        }
    if message_type is M.PAYMENT_NOTICE:
        invoice = _open_invoice(play)
        return {
            "invoice": {"id": invoice, "digest": _BIND},
            "method": "finance",
            "financing": {"plan": "hp-48", "provider": "https://credit-union.example"},
            "amount": _money("28500"),
        }
    if message_type is M.PAYMENT_RECEIPT:
        payment = _open_payment(play)
        return {
            "payment": {"id": payment, "digest": _BIND},
            "amount": _money("28500"),
            "receivedAt": _stamp(play.now),
        }
    return None


def guard_cases() -> dict[str, tuple[str, str, Case]]:
    """name -> (description, requirement, case), as ``_guard_cases`` has them."""
    from conformance.vectors.generate_state import (
        WRONG_DIGEST,
        S,
        _case,
        _drop,
        _money,
        _set,
        _then,
    )

    return {
        "delivery-other-offer": (
            "A delivery notice naming the accepted offer with another digest.",
            "VRM-TRX-001",
            _case(S.WELCOME, V, M.DELIVERY_NOTICE, _set("/body/deal/offer/digest", WRONG_DIGEST)),
        ),
        "handover-other-acceptance": (
            "A handover record naming another acceptance.",
            "VRM-TRX-001",
            _case(S.SERVICING, V, M.HANDOVER_RECORD, _set("/body/deal/acceptance/id", _MISSING)),
        ),
        "handover-one-sided": (
            "A handover record of a deal with a trade-in: the new car to her, no trade-in taken.",
            "VRM-TRX-002",
            _case(S.SERVICING, V, M.HANDOVER_RECORD, _set("/body/deal/tradeIn", True)),
        ),
        "handover-trade-in-without-deal": (
            "A handover record of a deal without a trade-in that takes one.",
            "VRM-TRX-002",
            _case(
                S.WELCOME,
                V,
                M.HANDOVER_RECORD,
                _set(
                    "/body/items",
                    [{"kind": "trade-in", "description": "Auris", "direction": "to-vendor"}],
                ),
            ),
        ),
        "inspection-answers-nothing": (
            "An inspection result naming no handover record of the vendor.",
            "VRM-TRX-004",
            _case(S.SERVICING, B, M.INSPECTION_RESULT, _set("/body/handover/id", _MISSING)),
        ),
        "inspection-other-digest": (
            "An inspection result naming the handover record with another digest.",
            "VRM-TRX-004",
            _case(S.SERVICING, B, M.INSPECTION_RESULT, _set("/body/handover/digest", WRONG_DIGEST)),
        ),
        "inspection-refusal-without-reasons": (
            "An inspection result that refuses without reasons.",
            "VRM-TRX-004",
            _case(
                S.WELCOME,
                B,
                M.INSPECTION_RESULT,
                _then(_set("/body/decision", "refuse")),
            ),
        ),
        "invoice-other-offer": (
            "An invoice naming the accepted offer with another digest.",
            "VRM-TRX-001",
            _case(S.SERVICING, V, M.INVOICE, _set("/body/deal/offer/digest", WRONG_DIGEST)),
        ),
        "invoice-before-delivery": (
            "An invoice of a deal whose handover she has not accepted.",
            "VRM-TRX-006",
            _undelivered_invoice,
        ),
        "invoice-total-not-the-lines": (
            "An invoice whose total is not the sum of its lines.",
            "VRM-TRX-007",
            _case(S.SERVICING, V, M.INVOICE, _set("/body/total", _money("27000"))),
        ),
        "invoice-supersedes-nothing": (
            "An invoice superseding no invoice of the vendor.",
            "VRM-TRX-007",
            _case(
                S.SERVICING,
                V,
                M.INVOICE,
                _set("/body/supersedes", {"id": _MISSING, "digest": WRONG_DIGEST}),
            ),
        ),
        "invoice-query-answers-nothing": (
            "An invoice query naming no invoice of the vendor.",
            "VRM-TRX-008",
            _case(S.SERVICING, B, M.INVOICE_QUERY, _set("/body/invoice/id", _MISSING)),
        ),
        "invoice-query-other-digest": (
            "An invoice query naming the invoice with another digest.",
            "VRM-TRX-008",
            _case(S.WELCOME, B, M.INVOICE_QUERY, _set("/body/invoice/digest", WRONG_DIGEST)),
        ),
        "payment-answers-nothing": (
            "A payment naming no invoice of the vendor.",
            "VRM-TRX-008",
            _case(S.SERVICING, B, M.PAYMENT_NOTICE, _set("/body/invoice/id", _MISSING)),
        ),
        "payment-other-digest": (
            "A payment naming the invoice with another digest.",
            "VRM-TRX-008",
            _case(S.SERVICING, B, M.PAYMENT_NOTICE, _set("/body/invoice/digest", WRONG_DIGEST)),
        ),
        "payment-finance-without-financing": (
            "A payment by finance that names no financing.",
            "VRM-TRX-008",
            _case(S.SERVICING, B, M.PAYMENT_NOTICE, _drop("/body/financing")),
        ),
        "receipt-answers-nothing": (
            "A payment receipt naming no payment of hers.",
            "VRM-TRX-010",
            _case(S.SERVICING, V, M.PAYMENT_RECEIPT, _set("/body/payment/id", _MISSING)),
        ),
        "receipt-other-digest": (
            "A payment receipt naming her payment with another digest.",
            "VRM-TRX-010",
            _case(S.SERVICING, V, M.PAYMENT_RECEIPT, _set("/body/payment/digest", WRONG_DIGEST)),
        ),
    }


def _undelivered_invoice(name: str) -> tuple[_Play, Role, dict[str, Any]]:
    """An invoice in SERVICING before any handover was accepted."""
    from conformance.vectors.generate_state import S, _reach

    play = _reach(S.SERVICING, name)
    payload = play.compose(V, M.INVOICE, _invoice(play))
    return play, V, payload
