"""State vectors of printed material by post (spec §6.60, §6.61): the canonical
bodies of its messages, with the request a dispatch answers taken first, and
the refusal of every guard rule. Used by :mod:`conformance.vectors.generate_state`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrm_protocol.vocabulary import MessageType, Role

if TYPE_CHECKING:
    from conformance.vectors.generate_state import Case, _Play

__all__ = ["canonical", "guard_cases"]

M = MessageType
B, V = Role.BUYER, Role.VENDOR
_MISSING = "urn:uuid:00000000-0000-4000-8000-0000000011fd"
_REQUEST = {
    "materials": [{"code": "brochure", "product": "Toyota Prius"}],
    "address": {"lines": ["1 Example Street"], "postcode": "NW3 1AA", "country": "GB"},
    "consent": {"purpose": "delivery", "retention": "until-sent"},
}


def canonical(play: _Play, message_type: MessageType, sender: Role) -> dict[str, Any] | None:
    """A body of ``message_type`` that passes every guard (taking the request it
    answers first), or ``None`` for another type."""
    from conformance.vectors.generate_state import _BIND, _stamp

    if message_type is M.MATERIAL_REQUEST:
        return dict(_REQUEST)
    if message_type is M.MATERIAL_DISPATCH:
        found = play.latest(M.MATERIAL_REQUEST, open_only=True)
        request = found if found is not None else play.step(B, M.MATERIAL_REQUEST, dict(_REQUEST))
        return {
            "request": {"id": request, "digest": _BIND},
            "materials": ["brochure"],
            "sentAt": _stamp(play.now),
            "addressDeleted": True,
        }
    return None


def guard_cases() -> dict[str, tuple[str, str, Case]]:
    """name -> (description, requirement, case), as ``_guard_cases`` has them."""
    from conformance.vectors.generate_state import WRONG_DIGEST, S, _case, _set

    return {
        "material-dispatch-answers-nothing": (
            "A material dispatch naming no material request of hers.",
            "VRM-MAT-002",
            _case(S.ENQUIRY, V, M.MATERIAL_DISPATCH, _set("/body/request/id", _MISSING)),
        ),
        "material-dispatch-other-digest": (
            "A material dispatch naming her request with another digest.",
            "VRM-MAT-002",
            _case(
                S.NEGOTIATION, V, M.MATERIAL_DISPATCH, _set("/body/request/digest", WRONG_DIGEST)
            ),
        ),
    }
