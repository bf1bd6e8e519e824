"""terms-proffer: she proffers her own terms, from the MyTerms roster (spec §6.70)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._myterms import check_roster, engaged_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move
from vrm_protocol.models import TermsProfferMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.TERMS_PROFFER


def _guard(move: Move[TermsProfferMessage]) -> RelationshipState:
    # spec §6.70 (VRM-MYT-001): an agreement of the roster, by its text's digest.
    check_roster(move, move.message.body.agreement, "/body/agreement")
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=TermsProfferMessage,
    section="6.70",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.WELCOME),
    summary="She proffers her own terms: an agreement of the MyTerms roster, by its digest.",
    rows=engaged_rows(Role.BUYER, _T,
        "Her terms are her first move and stay hers: proffered from her first RFI on, "
        "in every state until she leaves."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "agreement is not in the roster, or names it with another digest",
            "VRM-MYT-001"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
)  # fmt: skip
