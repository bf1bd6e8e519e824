"""service-notice: reminders, recalls, updates, programme offers (spec §6.9; steps 6, 7)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import RequestOpened, RequestRecord
from vrm_protocol.message_types._guards import check_reengagement
from vrm_protocol.message_types._unit import (
    GuardRule,
    MessageTypeSpec,
    Move,
    Refusal,
    TransitionRow,
)
from vrm_protocol.models import ServiceNoticeMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = ["KIND_CATEGORIES", "SAFETY_CATEGORIES", "SAFETY_KIND", "SPEC"]

_S = RelationshipState
_V = Role.VENDOR
_T = MessageType.SERVICE_NOTICE

#: States in which only safety notices may be sent: the deal is not in service yet.
_SAFETY_ONLY_STATES = frozenset({_S.TRANSACTION, _S.WELCOME})
#: What a safety notice is: a recall, in the category safety or recall (spec §6.9).
SAFETY_KIND = "safety-recall"
SAFETY_CATEGORIES = frozenset({"safety", "recall"})
#: The notification categories each kind of notice may be sent in (spec §6.9): a
#: notice is what it says it is, so that her preferences for a category bind.
KIND_CATEGORIES: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "maintenance-reminder": frozenset({"maintenance"}),
        "safety-recall": SAFETY_CATEGORIES,
        "software-update": frozenset({"technical", "safety"}),
        "programme-offer": frozenset({"new-products", "events", "promotions"}),
        "warranty-extension": frozenset({"warranty"}),
        "other": frozenset(
            {"maintenance", "technical", "warranty", "promotions", "new-products", "events"}
        ),
    }
)


def _guard(move: Move[ServiceNoticeMessage]) -> RelationshipState:
    row, body = move.row, move.message.body
    allowed = KIND_CATEGORIES.get(body.kind, frozenset())
    if body.category not in allowed:
        # spec §6.9 (VRM-MSG-038): a promotion labelled technical would pass the
        # preferences of someone who allowed only technical notices.
        raise Refusal(
            ErrorCode.MISLABELLED_NOTICE,
            f"a {body.kind} notice is not of category {body.category} "
            f"(it may be {', '.join(sorted(allowed))})",
            "/body/category",
        )
    if row.state in _SAFETY_ONLY_STATES and (
        body.kind != SAFETY_KIND or body.category not in SAFETY_CATEGORIES
    ):
        # spec §6.9 (VRM-STATE-014): before service begins, only a safety recall.
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"in {row.state.value} a vendor sends only a safety-recall notice of category "
            f"safety or recall, not {body.kind} ({body.category})",
            "/body/kind",
        )
    if row.state is _S.EXITED:
        check_reengagement(move.draft, body.category, "a service notice")
    record = RequestRecord(move.message.id, _T, move.sender, digest=move.digest)
    move.draft.emit(RequestOpened(record))
    move.draft.update_request(record)
    # A programme offer is news of a programme, not a move: she joins by her
    # own request (spec §6.72, programme-enrolment), so no notice moves the
    # relationship to DEVELOPMENT.
    return row.target


SPEC = MessageTypeSpec(
    type=_T,
    model=ServiceNoticeMessage,
    section="6.9",
    steps=(LifecycleStep.SERVICING, LifecycleStep.DEVELOPMENT),
    summary="A reminder, recall, update or programme offer, in a category she allowed.",
    rows=(
        TransitionRow(_S.TRANSACTION, _V, _T, _S.TRANSACTION,
            "A safety recall cannot wait for the deal to be confirmed (kind safety-recall only)."),
        TransitionRow(_S.WELCOME, _V, _T, _S.WELCOME,
            "A safety recall cannot wait for the terms of service (kind safety-recall only)."),
        TransitionRow(_S.SERVICING, _V, _T, _S.SERVICING,
            "Reminders, recalls and updates are servicing (step 6); a programme offer is news "
            "of a programme: she joins one by her own request (programme-enrolment)."),
        TransitionRow(_S.DEVELOPMENT, _V, _T, _S.DEVELOPMENT,
            "Service continues during development."),
        TransitionRow(_S.PROBLEM, _V, _T, _S.PROBLEM,
            "Safety notices cannot wait for a problem to be resolved."),
        TransitionRow(_S.EXITED, _V, _T, _S.EXITED,
            "Only notices whose category her re-engagement preferences allow, before their end."),
    ),
    guard=_guard,
    rules=(
        GuardRule(ErrorCode.MISLABELLED_NOTICE,
            "its category is not one its kind may be sent in (§6.9)",
            "VRM-MSG-038"),
        GuardRule(ErrorCode.ILLEGAL_TRANSITION,
            "in TRANSACTION or WELCOME, a notice other than a safety-recall of category "
            "safety or recall",
            "VRM-STATE-014"),
        GuardRule(ErrorCode.REENGAGEMENT_NOT_PERMITTED,
            "after the exit, a category her re-engagement preferences do not allow",
            "VRM-STATE-009"),
    ),
    guard_codes=(ErrorCode.MISLABELLED_NOTICE, ErrorCode.REENGAGEMENT_NOT_PERMITTED),
)  # fmt: skip
