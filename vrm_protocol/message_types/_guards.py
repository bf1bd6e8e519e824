"""Ledger checks that several message types share (spec §7.3-§7.5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.ledger import (
    CLOSED_STATUSES,
    OfferRecord,
    OfferStatus,
    OfferStatusChanged,
    RequestRecord,
)
from vrm_protocol.message_types._unit import Draft, Move, Refusal
from vrm_protocol.models import BaseMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "OFFER_CODES",
    "answered",
    "check_digest",
    "check_reengagement",
    "live_offer",
    "parse_time",
    "resumed",
    "set_offer_status",
]

M = TypeVar("M", bound=BaseMessage)

#: The codes a reference to an offer may be refused with (spec §7.4).
OFFER_CODES = (
    ErrorCode.UNKNOWN_OFFER,
    ErrorCode.OFFER_EXPIRED,
    ErrorCode.OFFER_SUPERSEDED,
    ErrorCode.OFFER_CLOSED,
)


def parse_time(value: str, path: str) -> datetime:
    """A timestamp the schema stage accepted, as an aware datetime.

    Raises:
        Refusal: SCHEMA_INVALID, when it is not a real instant.
    """
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, ProtocolError):
        raise Refusal(
            ErrorCode.SCHEMA_INVALID, f"{path} is not an instant: {value!r}", path
        ) from None


def closed_offer_refusal(record: OfferRecord, now: datetime, path: str) -> Refusal | None:
    """Why ``record`` can no longer be acted on, or ``None`` when it is live (spec §7.4)."""
    status = record.status_at(now)
    if status in CLOSED_STATUSES:
        return Refusal(ErrorCode.OFFER_CLOSED, f"offer {record.id} is {status.value}", path)
    if status is OfferStatus.SUPERSEDED:
        return Refusal(ErrorCode.OFFER_SUPERSEDED, f"offer {record.id} was superseded", path)
    if status is OfferStatus.EXPIRED:
        return Refusal(
            ErrorCode.OFFER_EXPIRED,
            f"offer {record.id} expired at {format_timestamp(record.valid_until)}",
            path,
        )
    return None


def live_offer(draft: Draft, offer_id: str, path: str, *, from_role: Role | None) -> OfferRecord:
    """The live offer ``offer_id`` refers to (made by ``from_role`` when given).

    Raises:
        Refusal: UNKNOWN_OFFER, OFFER_CLOSED, OFFER_SUPERSEDED or OFFER_EXPIRED.
    """
    record = draft.offer(offer_id)
    if record is None or (from_role is not None and record.sender is not from_role):
        whose = f" from the {from_role.value}" if from_role is not None else ""
        raise Refusal(ErrorCode.UNKNOWN_OFFER, f"no offer{whose} has id {offer_id}", path)
    refusal = closed_offer_refusal(record, draft.now, path)
    if refusal is not None:
        raise refusal
    return record


def set_offer_status(draft: Draft, record: OfferRecord, status: OfferStatus) -> None:
    """Emit the status change of ``record``."""
    draft.emit(OfferStatusChanged(record.id, status), offer=replace(record, status=status))


def check_reengagement(draft: Draft, subject: str | None, what: str) -> None:
    """A vendor's contact after an exit must be one her preferences allow (spec §7.5).

    Raises:
        Refusal: REENGAGEMENT_NOT_PERMITTED.
    """
    exit_record = draft.core.exit
    reason = "no exit record" if exit_record is None else exit_record.permits(subject, draft.now)
    if reason is not None:
        raise Refusal(ErrorCode.REENGAGEMENT_NOT_PERMITTED, f"{what} after the exit: {reason}")


def answered(
    move: Move[M], request_id: str, path: str, kind: MessageType, digest: str | None = None
) -> RequestRecord:
    """The request of type ``kind`` from the other party that a reply answers,
    named by ``request_id`` and (in a ``messageRef``) ``digest``.

    Raises:
        Refusal: ILLEGAL_TRANSITION, when the relationship holds no such request
            (or the exit voided it); REFERENCE_MISMATCH, when it holds it with
            another digest (spec §8.5, VRM-SIG-027).
    """
    record = move.draft.request(request_id)
    if (
        record is None
        or record.type is not kind
        or record.sender is not move.sender.peer
        or record.status.value == "void"
    ):
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"{move.message.type} answers no {kind.value} of this relationship: {request_id}",
            path,
        )
    check_digest(record.digest, digest, f"{kind.value} {request_id}", path)
    return record


def check_digest(held: str | None, named: str | None, what: str, path: str) -> None:
    """A ``messageRef`` must carry the digest of the message it names, as the
    receiver holds it (spec §8.5, VRM-SIG-027); unknown digests are not judged.

    Raises:
        Refusal: REFERENCE_MISMATCH.
    """
    if held is not None and named is not None and held != named:
        digest_path = path.removesuffix("/id") + "/digest" if path.endswith("/id") else path
        raise Refusal(
            ErrorCode.REFERENCE_MISMATCH, f"the digest does not match {what} as sent", digest_path
        )


def resumed(move: Move[M]) -> RelationshipState:
    """The state a move that ends a detour returns to (spec §7.1): the one the
    core recorded before the detour, or the row's ``target`` when it recorded
    none (or one the row does not return to)."""
    recorded = move.draft.core.resume_state
    if recorded is not None and recorded in move.row.resumes:
        return recorded
    return move.row.target
