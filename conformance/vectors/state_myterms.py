"""State vectors of her own terms and programmes (spec §6.70 on): the canonical
bodies of their messages, with the moves each needs first, and the refusal of
every guard rule. Used by :mod:`conformance.vectors.generate_state`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vrm_protocol.myterms import roster
from vrm_protocol.vocabulary import MessageType, Role

if TYPE_CHECKING:
    from conformance.vectors.generate_state import Case, _Play

__all__ = ["canonical", "guard_cases"]

M = MessageType
B, V = Role.BUYER, Role.VENDOR
_MISSING = "urn:uuid:00000000-0000-4000-8000-00000000a9e1"
_DETAILS: dict[str, Any] = {"items": [{"item": "contact.phone", "value": "+44 7700 900123"}]}
_REF = {"id": _MISSING, "digest": "sha-256:" + "A" * 43}


def _agreement() -> dict[str, str]:
    first = next(iter(roster().values()))
    return {"id": first.id, "version": first.version, "digest": first.digest}


def _open_proffer(play: _Play) -> str:
    """A proffer of hers awaiting its answer (made first when none is)."""
    found = play.latest(M.TERMS_PROFFER, open_only=True)
    if found is not None:
        return found
    return play.step(B, M.TERMS_PROFFER, {"agreement": _agreement()})


def canonical(play: _Play, message_type: MessageType, sender: Role) -> dict[str, Any] | None:
    """A body of ``message_type`` that passes every guard where it has a row
    (taking the moves it answers first), or ``None`` for another type."""
    from conformance.vectors.generate_state import _BIND

    if message_type is M.TERMS_PROFFER:
        return {"agreement": _agreement()}
    if message_type is M.PROGRAMME_ENROLMENT:
        return {"programme": "road-warrior"}
    if message_type is M.DETAILS_UPDATE:
        return dict(_DETAILS)
    if message_type is M.DETAILS_RECEIPT:
        update = play.latest(M.DETAILS_UPDATE, open_only=True)
        if update is None:
            update = play.step(B, M.DETAILS_UPDATE, dict(_DETAILS))
        return {"update": {"id": update, "digest": _BIND}, "held": ["contact.phone"]}
    if message_type is M.TERMS_AGREEMENT:
        return {
            "proffer": {"id": _open_proffer(play), "digest": _BIND},
            "agreement": _agreement(),
            "decision": "agree",
        }
    return None


def guard_cases() -> dict[str, tuple[str, str, Case]]:
    """name -> (description, requirement, case), as ``_guard_cases`` has them."""
    from conformance.vectors.generate_state import WRONG_DIGEST, S, _case, _set

    def enrolled(digest: str) -> Callable[[_Play, dict[str, Any]], None]:
        def change(play: _Play, payload: dict[str, Any]) -> None:
            enrolment = play.step(B, M.PROGRAMME_ENROLMENT, {"programme": "road-warrior"})
            payload["body"]["programme"] = {
                "code": "road-warrior",
                "enrolment": {"id": enrolment, "digest": digest or play.digests[enrolment]},
            }

        return change

    return {
        "proffer-off-the-roster": (
            "A terms proffer naming a roster agreement with another digest.",
            "VRM-MYT-001",
            _case(S.ENQUIRY, B, M.TERMS_PROFFER, _set("/body/agreement/digest", WRONG_DIGEST)),
        ),
        "terms-agreement-answers-nothing": (
            "A terms agreement naming no proffer of hers.",
            "VRM-MYT-002",
            _case(S.NEGOTIATION, V, M.TERMS_AGREEMENT, _set("/body/proffer/id", _MISSING)),
        ),
        "terms-agreement-other-digest": (
            "A terms agreement naming her proffer with another digest.",
            "VRM-MYT-002",
            _case(S.SERVICING, V, M.TERMS_AGREEMENT, _set("/body/proffer/digest", WRONG_DIGEST)),
        ),
        "programme-terms-answer-nothing": (
            "A party's terms for a programme naming no enrolment of hers.",
            "VRM-MYT-005",
            _case(
                S.DEVELOPMENT,
                V,
                M.TERMS_ASSERTION,
                _set("/body/programme", {"code": "road-warrior", "enrolment": _REF}),
            ),
        ),
        "programme-terms-other-digest": (
            "A party's terms for a programme naming her enrolment with another digest.",
            "VRM-MYT-005",
            _case(S.SERVICING, V, M.TERMS_ASSERTION, enrolled(WRONG_DIGEST)),
        ),
        "details-receipt-answers-nothing": (
            "A details receipt naming no update of hers.",
            "VRM-MYT-008",
            _case(S.WELCOME, V, M.DETAILS_RECEIPT, _set("/body/update/id", _MISSING)),
        ),
        "details-receipt-other-digest": (
            "A details receipt naming her update with another digest.",
            "VRM-MYT-008",
            _case(S.SERVICING, V, M.DETAILS_RECEIPT, _set("/body/update/digest", WRONG_DIGEST)),
        ),
    }
