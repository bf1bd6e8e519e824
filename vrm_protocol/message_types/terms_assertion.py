"""terms-assertion: a party's terms of sharing (spec §6.7; step 5)."""

from __future__ import annotations

from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._unit import MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import TermsAssertionMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_V = Role.VENDOR
_T = MessageType.TERMS_ASSERTION


def _guard(move: Move[TermsAssertionMessage]) -> RelationshipState:
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=TermsAssertionMessage,
    section="6.7",
    steps=(LifecycleStep.WELCOME,),
    summary="The terms under which a party asks for her data: items, purposes, retention.",
    rows=(
        TransitionRow(_S.ENQUIRY, _V, _T, _S.WELCOME,
            "A party answering an RFI with terms, not an offer (a third party), welcomes her: "
            "no sale."),
        TransitionRow(_S.NEGOTIATION, _V, _T, _S.NEGOTIATION,
            "Terms of sharing may be shown while the deal is negotiated (transparency of terms)."),
        TransitionRow(_S.WELCOME, _V, _T, _S.WELCOME,
            "The welcome is where the vendor presents (or revises) its terms of sharing."),
        TransitionRow(_S.SERVICING, _V, _T, _S.SERVICING,
            "Revised terms of sharing are presented in service."),
        TransitionRow(_S.DEVELOPMENT, _V, _T, _S.DEVELOPMENT,
            "A programme may come with terms of its own."),
    ),
    guard=_guard,
)  # fmt: skip
