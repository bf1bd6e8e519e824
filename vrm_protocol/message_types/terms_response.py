"""terms-response: her answer to terms of sharing, the consent record (spec §6.8; step 5)."""

from __future__ import annotations

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery, RequestAnswered
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._unit import GuardRule, MessageTypeSpec, Move, TransitionRow
from vrm_protocol.models import TermsResponseMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_B = Role.BUYER
_T = MessageType.TERMS_RESPONSE


def _query(message: TermsResponseMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery(requests=frozenset({message.body.assertion.id}))


def _guard(move: Move[TermsResponseMessage]) -> RelationshipState:
    assertion = move.message.body.assertion
    request = answered(
        move, assertion.id, "/body/assertion/id", MessageType.TERMS_ASSERTION, assertion.digest
    )
    move.draft.emit(RequestAnswered(request.id, move.message.id, _T))
    return move.row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=TermsResponseMessage,
    section="6.8",
    steps=(LifecycleStep.WELCOME,),
    summary="She accepts, accepts in part or refuses the terms, and chooses her notices.",
    rows=(
        TransitionRow(_S.NEGOTIATION, _B, _T, _S.NEGOTIATION,
            "Answering those terms does not decide the deal."),
        TransitionRow(_S.TRANSACTION, _B, _T, _S.TRANSACTION,
            "Terms shown during negotiation may be answered after the acceptance."),
        TransitionRow(_S.WELCOME, _B, _T, _S.SERVICING,
            "Her answer fixes what is shared and which notices she wants: service begins."),
        TransitionRow(_S.SERVICING, _B, _T, _S.SERVICING,
            "Answering revised terms keeps the service going."),
        TransitionRow(_S.DEVELOPMENT, _B, _T, _S.DEVELOPMENT,
            "Answering programme terms keeps the relationship in development."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "assertion names no terms assertion of the other party, or one the exit voided",
            "VRM-STATE-020"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "assertion carries another digest than the assertion's",
            "VRM-SIG-027"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
