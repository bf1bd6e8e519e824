"""Ledger checks the messages of the transaction carried through share (spec §6.22-§6.28).

Delivery, handover, inspection, invoice and payment all happen after the
deal: each names the deal it belongs to, and the deal is the one the core
holds (the accepted offer, by the digest of its bytes as sent, and its
acceptance). They are side exchanges in the states that follow the deal
confirmation: a delivery may come before or after the terms of sharing are
answered, and an invoice may be queried while a problem is open.
"""

from __future__ import annotations

from typing import TypeVar

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.message_types._guards import check_digest
from vrm_protocol.message_types._unit import Move, Refusal, TransitionRow
from vrm_protocol.models import BaseMessage, MessageRef
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "AFTER_THE_DEAL",
    "check_acceptance",
    "check_accepted_offer",
    "offer_query",
    "side_rows",
]

M = TypeVar("M", bound=BaseMessage)

_S = RelationshipState
#: The states after a deal confirmation in which the transaction is carried
#: through: before and after the terms of sharing, during development, and
#: while a problem (a refused handover, a queried invoice) is open.
AFTER_THE_DEAL = (_S.WELCOME, _S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)


def side_rows(sender: Role, message: MessageType, why: str) -> tuple[TransitionRow, ...]:
    """A side exchange (no transition) in every state of :data:`AFTER_THE_DEAL`."""
    return tuple(TransitionRow(state, sender, message, state, why) for state in AFTER_THE_DEAL)


def offer_query(offer: MessageRef) -> LedgerQuery:
    """The ledger records a message bound to the accepted offer needs."""
    return LedgerQuery(offers=frozenset({offer.id}))


def check_accepted_offer(move: Move[M], offer: MessageRef, path: str) -> None:
    """``offer`` is the offer accepted in the current deal, by the digest of its
    bytes as sent (spec §6.22, VRM-TRX-001).

    Raises:
        Refusal: REFERENCE_MISMATCH.
    """
    core, draft = move.draft.core, move.draft
    if core.accepted_offer is None or offer.id != core.accepted_offer:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"{move.message.type} names offer {offer.id}, but the accepted offer is "
            f"{core.accepted_offer}",
            path + "/id",
        )
    record = draft.offer(offer.id)
    if record is not None:
        check_digest(record.digest, offer.digest, f"offer {offer.id}", path + "/id")


def check_acceptance(move: Move[M], acceptance: MessageRef, path: str) -> None:
    """``acceptance`` is the acceptance of the current deal (spec §6.23). The
    core keeps its id; its digest is judged by the agents, which hold the
    acceptance (VRM-TRX-003).

    Raises:
        Refusal: REFERENCE_MISMATCH.
    """
    held = move.draft.core.acceptance
    if held is not None and acceptance.id != held:
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH,
            f"{move.message.type} names acceptance {acceptance.id}, not {held}",
            path + "/id",
        )
