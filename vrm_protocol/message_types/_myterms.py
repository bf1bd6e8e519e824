"""Ledger checks the individual's own terms share (spec §6.70, §6.71).

Her terms are a side exchange: she may proffer them as soon as a
relationship exists (from her first RFI) and in every state after it until
she leaves; the party answers in the same states. Neither moves the
relationship: agreeing to her terms is not a deal.
"""

from __future__ import annotations

from typing import TypeVar

from vrm_protocol.errors import ErrorCode
from vrm_protocol.message_types._unit import Move, Refusal, TransitionRow
from vrm_protocol.models import AgreementRef, BaseMessage
from vrm_protocol.myterms import Agreement, agreement
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

__all__ = ["ENGAGED", "check_roster", "engaged_rows"]

M = TypeVar("M", bound=BaseMessage)

_S = RelationshipState
#: The states in which a relationship exists and she has not left it: from her
#: first RFI (ENQUIRY) or RFP (NEGOTIATION) to her exit.
ENGAGED = (
    _S.ENQUIRY,
    _S.NEGOTIATION,
    _S.TRANSACTION,
    _S.WELCOME,
    _S.SERVICING,
    _S.DEVELOPMENT,
    _S.PROBLEM,
)


def engaged_rows(sender: Role, message: MessageType, why: str) -> tuple[TransitionRow, ...]:
    """A side exchange (no transition) in every state of :data:`ENGAGED`."""
    return tuple(TransitionRow(state, sender, message, state, why) for state in ENGAGED)


def check_roster(move: Move[M], named: AgreementRef, path: str) -> Agreement:
    """``named`` is an agreement of the roster, by the digest of its text (spec
    §6.70, VRM-MYT-001).

    Raises:
        Refusal: REFERENCE_MISMATCH.
    """
    found = agreement(named.id, named.version)
    if found is None:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"{move.message.type} names {named.id} {named.version}, which the roster does not hold",
            path + "/id",
        )
    if found.digest != named.digest:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"{move.message.type} names {named.id} {named.version} with a digest other than "
            "that of the roster's text",
            path + "/digest",
        )
    return found
