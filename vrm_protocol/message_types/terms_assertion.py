"""terms-assertion: a party's terms of sharing (spec §6.7; step 5)."""

from __future__ import annotations

from dataclasses import replace

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    LedgerQuery,
    RequestAnswered,
    RequestClosed,
    RequestOpened,
    RequestRecord,
    RequestStatus,
)
from vrm_protocol.message_types._guards import answered
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import TermsAssertionMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["SPEC"]

_S = RelationshipState
_V = Role.VENDOR
_T = MessageType.TERMS_ASSERTION


def _query(message: TermsAssertionMessage, sender: Role) -> LedgerQuery:
    programme = message.body.programme
    if programme is None:
        return LedgerQuery()
    return LedgerQuery(requests=frozenset({programme.enrolment.id}))


def _guard(move: Move[TermsAssertionMessage]) -> RelationshipState:
    programme = move.message.body.programme
    if programme is not None:
        # spec §6.72 (VRM-MYT-005): a programme's terms answer her enrolment, by
        # its digest, once, and only in development.
        enrolment = answered(
            move,
            programme.enrolment.id,
            "/body/programme/enrolment/id",
            MessageType.PROGRAMME_ENROLMENT,
            programme.enrolment.digest,
        )
        if not enrolment.open or move.row.state is not _S.DEVELOPMENT:
            raise Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                f"enrolment {enrolment.id} awaits no programme terms",
                "/body/programme/enrolment/id",
            )
        move.draft.emit(RequestAnswered(enrolment.id, move.message.id, _T))
        move.draft.emit(RequestClosed(enrolment.id))
        move.draft.update_request(replace(enrolment, status=RequestStatus.CLOSED))
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
    rules=(
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "programme names no enrolment of hers awaiting the programme's terms",
            "VRM-MYT-005"),
        GuardRule(ErrorCode.REFERENCE_MISMATCH,
            "programme names her enrolment with another digest",
            "VRM-MYT-005"),
    ),
    guard_codes=(ErrorCode.REFERENCE_MISMATCH,),
    query=_query,
)  # fmt: skip
