"""terms-agreement: the party agrees to her proffered terms or declines them (spec §6.71)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    LedgerQuery,
    RequestAnswered,
    RequestClosed,
    RequestStatus,
)
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._myterms import check_roster, engaged_rows
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, Refusal
from vrm_protocol.models import TermsAgreementMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_T = MessageType.TERMS_AGREEMENT


def _query(message: TermsAgreementMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.proffer.id}))


def _guard(move: Move[TermsAgreementMessage]) -> RelationshipState:
    body, draft = move.message.body, move.draft
    # spec §6.71 (VRM-MYT-002): her proffer, by its digest, answered once.
    proffer = answered(
        move, body.proffer.id, "/body/proffer/id", MessageType.TERMS_PROFFER, body.proffer.digest
    )
    if not proffer.open:
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"proffer {proffer.id} is already answered",
            "/body/proffer/id",
        )
    check_roster(move, body.agreement, "/body/agreement")
    draft.emit(RequestAnswered(proffer.id, move.message.id, _T))
    draft.emit(RequestClosed(proffer.id))
    draft.update_request(replace(proffer, status=RequestStatus.CLOSED))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=TermsAgreementMessage,
    section="6.71",
    steps=(LifecycleStep.ENGAGE, LifecycleStep.WELCOME),
    summary="The party agrees to her proffered terms or declines them, bound to the proffer.",
    rows=engaged_rows(Role.VENDOR, _T, "A proffer is answered in the state it was made in."),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "proffer names no proffer of hers awaiting an answer",
            "VRM-MYT-002"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "proffer names her proffer with another digest, or agreement is not in the roster",
            "VRM-MYT-002"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
