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


def canonical(play: _Play, message_type: MessageType, sender: Role) -> dict[str, Any] | None:
    """A body of ``message_type`` that passes every guard in the states after the
    deal (taking the moves it answers first), or ``None`` for another type."""
    from conformance.vectors.generate_state import _BIND, _stamp

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
    return None


def guard_cases() -> dict[str, tuple[str, str, Case]]:
    """name -> (description, requirement, case), as ``_guard_cases`` has them."""
    from conformance.vectors.generate_state import WRONG_DIGEST, S, _case, _set, _then

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
    }
