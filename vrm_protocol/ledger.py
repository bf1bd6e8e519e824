"""The relationship ledger (spec §7.4, §7.5): its records, the facts a
transition reads, and the effects a transition returns.

The state machine is sans-IO and does not own the ledger: the agent's store
does. A transition is computed from three inputs, and returns one output:

* the :class:`RelationshipCore` — the few values every transition may need
  (state, the exit in force, the accepted offer), constant in size whatever
  the relationship's age;
* the :class:`LedgerFacts` the message needs — the records it names (an
  offer by id, a request by id) and, for the few types that ask, the open
  offers of one side or the open requests of one type. A message type says
  what it needs through its :class:`LedgerQuery`;
* the message itself (a typed model) and ``now``;

and the output is a tuple of :class:`Effect` s: offer opened, offer status
changed, request opened, exit recorded, ... An agent applies the effects to
its own store (one row each); :class:`MemoryLedger` applies them in memory
for library users. Neither re-implements a transition (in the manner of h11,
which returns events rather than mutating its caller's state).

Offers expire lazily: a record is ``open`` until something closes it, and it
is *live* only while ``now <= valid_until`` (:meth:`OfferRecord.status_at`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "CORE_FORMAT",
    "CORE_ONLY_EFFECTS",
    "DealAccepted",
    "DealRefused",
    "Effect",
    "ExitCompleted",
    "ExitNoticed",
    "ExitRecord",
    "LedgerFacts",
    "LedgerQuery",
    "MemoryLedger",
    "OfferOpened",
    "OfferRecord",
    "OfferStatus",
    "OfferStatusChanged",
    "OpenOffersLapsed",
    "Reengaged",
    "RelationshipCore",
    "RequestAnswered",
    "RequestClosed",
    "RequestOpened",
    "RequestRecord",
    "RequestStatus",
    "ResumeStateSet",
    "apply_to_core",
]


class OfferStatus(StrEnum):
    """Where an offer stands (spec §7.4)."""

    OPEN = "open"
    SUPERSEDED = "superseded"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    #: Open, but past its ``validUntil`` (derived: never stored by the machine).
    EXPIRED = "expired"
    #: Another offer was accepted, or the negotiation closed, or the relationship
    #: was exited: the offer can no longer be accepted (``offer-closed``).
    LAPSED = "lapsed"


#: Statuses under which a reference to the offer is refused with ``offer-closed``.
CLOSED_STATUSES: Final = frozenset({OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.LAPSED})


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """One offer in the ledger (spec §7.4)."""

    id: str
    sender: Role
    basis: str
    valid_until: datetime
    status: OfferStatus = OfferStatus.OPEN
    digest: str | None = None
    supersedes: str | None = None
    topic: str | None = None
    requires_approval: bool = False
    #: The financing plans that need an ability-to-pay attestation (spec §6.4, §10.1).
    attested_plans: tuple[str, ...] = ()

    def status_at(self, now: datetime) -> OfferStatus:
        """The status at ``now``: an open offer past its ``validUntil`` is expired."""
        if self.status is OfferStatus.OPEN and now > self.valid_until:
            return OfferStatus.EXPIRED
        return self.status

    def live_at(self, now: datetime) -> bool:
        """Open and not past its ``validUntil``: it may be accepted, countered or superseded."""
        return self.status_at(now) is OfferStatus.OPEN

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (for stores and snapshots)."""
        return {
            "id": self.id,
            "sender": self.sender.value,
            "basis": self.basis,
            "validUntil": format_timestamp(self.valid_until),
            "status": self.status.value,
            "digest": self.digest,
            "supersedes": self.supersedes,
            "topic": self.topic,
            "requiresApproval": self.requires_approval,
            "attestedPlans": list(self.attested_plans),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OfferRecord:
        """Inverse of :meth:`to_json`.

        Raises:
            KeyError, ValueError, TypeError: ``data`` is not a record this version wrote.
        """
        return cls(
            id=str(data["id"]),
            sender=Role(data["sender"]),
            basis=str(data["basis"]),
            valid_until=parse_timestamp(str(data["validUntil"])),
            status=OfferStatus(data["status"]),
            digest=_optional_str(data.get("digest")),
            supersedes=_optional_str(data.get("supersedes")),
            topic=_optional_str(data.get("topic")),
            requires_approval=bool(data.get("requiresApproval", False)),
            attested_plans=tuple(str(plan) for plan in data.get("attestedPlans") or ()),
        )


class RequestStatus(StrEnum):
    """Where a request stands: terms assertions and service notices stay open once
    answered (an answer does not use them up); a resolution closes a support
    request; an exit voids every request (spec §7.5)."""

    OPEN = "open"
    CLOSED = "closed"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A message that a later message answers: a terms assertion, a service
    notice, a support request."""

    id: str
    type: MessageType
    sender: Role
    status: RequestStatus = RequestStatus.OPEN
    #: The message digest of the request as sent (spec §8.5), when known: an
    #: answer whose ``messageRef`` carries another digest is ``reference-mismatch``.
    digest: str | None = None

    @property
    def open(self) -> bool:
        """Whether the request still awaits (or may still take) an answer."""
        return self.status is RequestStatus.OPEN

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (for stores and snapshots)."""
        return {
            "id": self.id,
            "type": self.type.value,
            "sender": self.sender.value,
            "status": self.status.value,
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestRecord:
        """Inverse of :meth:`to_json`.

        Raises:
            KeyError, ValueError, TypeError: ``data`` is not a record this version wrote.
        """
        return cls(
            str(data["id"]),
            MessageType(data["type"]),
            Role(data["sender"]),
            RequestStatus(data["status"]),
            _optional_str(data.get("digest")),
        )


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """The exit notice in force, with the individual's re-engagement preferences (spec §7.5)."""

    notice_id: str
    sender: Role
    reason: str
    reengagement_allowed: bool = False
    topics: tuple[str, ...] | None = None
    until: datetime | None = None
    channel: str | None = None
    #: What the notice asked for (spec §6.14): the acknowledgement must carry it.
    export_requested: bool = False
    deletion_requested: bool = False
    #: The notice's message digest (spec §8.5), when known.
    notice_digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (for stores and snapshots)."""
        return {
            "noticeId": self.notice_id,
            "sender": self.sender.value,
            "reason": self.reason,
            "reengagementAllowed": self.reengagement_allowed,
            "topics": list(self.topics) if self.topics is not None else None,
            "until": format_timestamp(self.until) if self.until is not None else None,
            "channel": self.channel,
            "exportRequested": self.export_requested,
            "deletionRequested": self.deletion_requested,
            "noticeDigest": self.notice_digest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExitRecord:
        """Inverse of :meth:`to_json`.

        Raises:
            KeyError, ValueError, TypeError: ``data`` is not a record this version wrote.
        """
        topics = data.get("topics")
        until = data.get("until")
        return cls(
            notice_id=str(data["noticeId"]),
            sender=Role(data["sender"]),
            reason=str(data["reason"]),
            reengagement_allowed=bool(data["reengagementAllowed"]),
            topics=tuple(str(t) for t in topics) if topics is not None else None,
            until=parse_timestamp(str(until)) if until is not None else None,
            channel=_optional_str(data.get("channel")),
            export_requested=bool(data.get("exportRequested", False)),
            deletion_requested=bool(data.get("deletionRequested", False)),
            notice_digest=_optional_str(data.get("noticeDigest")),
        )

    def permits(self, subject: str | None, now: datetime) -> str | None:
        """Why vendor contact about ``subject`` is not permitted, or ``None`` (spec §7.5)."""
        if self.sender is not Role.BUYER:
            return "the exit was the vendor's; the individual set no re-engagement preferences"
        if not self.reengagement_allowed:
            return "the individual's exit does not allow re-engagement"
        if self.channel == "intentcast-only":
            return "the individual re-engages only through her own intentcasts"
        if self.until is not None and now > self.until:
            return f"re-engagement was allowed only until {format_timestamp(self.until)}"
        if self.topics is not None and subject not in self.topics:
            return f"topic {subject!r} is not among the allowed topics {list(self.topics)}"
        return None


#: Version tag of :meth:`RelationshipCore.to_json`. Version 1 (without the
#: acceptance and the resume state) is still read.
CORE_FORMAT: Final = "vrm-relationship-core/2"
_CORE_FORMATS: Final = frozenset({"vrm-relationship-core/1", CORE_FORMAT})


@dataclass(frozen=True, slots=True)
class RelationshipCore:
    """What every transition may read, whatever the message: constant in size.

    A relationship has exactly one core, whatever the number of its threads
    (spec §7.1): every message of the relationship, in any thread, is decided
    against it. An agent persists it per relationship (a few hundred bytes,
    rewritten on each transition); the offers and requests live in rows of
    their own, and the history in the stored messages.

    Attributes:
        state: the relationship's one state.
        exit: the exit notice in force, with the re-engagement preferences.
        accepted_offer: the offer accepted in the current transaction.
        acceptance: the id of the acceptance of ``accepted_offer``.
        resume_state: where a detour returns to: the state before the
            acceptance while a deal awaits its confirmation (a refusal goes
            back there), or the state before the first open support request
            while in PROBLEM (the last resolution goes back there).
    """

    state: RelationshipState = RelationshipState.SEARCH
    exit: ExitRecord | None = None
    accepted_offer: str | None = None
    acceptance: str | None = None
    resume_state: RelationshipState | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form, for an agent's store."""
        return {
            "format": CORE_FORMAT,
            "state": self.state.value,
            "exit": self.exit.to_json() if self.exit is not None else None,
            "acceptedOffer": self.accepted_offer,
            "acceptance": self.acceptance,
            "resumeState": self.resume_state.value if self.resume_state is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RelationshipCore:
        """Inverse of :meth:`to_json` (also reads the version 1 format).

        Raises:
            ValueError: ``data`` is not a core this version wrote.
        """
        if not isinstance(data, Mapping) or data.get("format") not in _CORE_FORMATS:
            raise ValueError(f"not a {CORE_FORMAT} record")
        try:
            exit_data = data.get("exit")
            resume = data.get("resumeState")
            return cls(
                state=RelationshipState(data["state"]),
                exit=ExitRecord.from_json(exit_data) if exit_data is not None else None,
                accepted_offer=_optional_str(data.get("acceptedOffer")),
                acceptance=_optional_str(data.get("acceptance")),
                resume_state=RelationshipState(resume) if resume is not None else None,
            )
        except (KeyError, TypeError, ValueError) as failure:
            raise ValueError(f"malformed relationship core: {failure}") from None


# -- what a transition reads ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerQuery:
    """The ledger records one message needs (declared by its message type).

    Attributes:
        offers: offer ids the message names (looked up whatever their status).
        requests: request ids the message names.
        open_offers_of: also every *open* offer made by this role.
        open_requests_of: also every open request of this type.
    """

    offers: frozenset[str] = frozenset()
    requests: frozenset[str] = frozenset()
    open_offers_of: Role | None = None
    open_requests_of: MessageType | None = None

    @property
    def empty(self) -> bool:
        """Whether the message needs nothing beyond the core."""
        return not (self.offers or self.requests or self.open_offers_of or self.open_requests_of)


@dataclass(frozen=True, slots=True)
class LedgerFacts:
    """The records a store found for a :class:`LedgerQuery`.

    A store may return more than asked (an in-memory ledger returns all it
    has, and says so with ``complete``); it must return at least every asked
    record that exists, and every open record of the asked kind.
    """

    offers: Mapping[str, OfferRecord] = field(default_factory=lambda: MappingProxyType({}))
    requests: Mapping[str, RequestRecord] = field(default_factory=lambda: MappingProxyType({}))
    query: LedgerQuery = field(default_factory=LedgerQuery)
    #: Every record of the relationship is here, asked or not.
    complete: bool = False

    @classmethod
    def of(
        cls,
        query: LedgerQuery,
        offers: Iterable[OfferRecord] = (),
        requests: Iterable[RequestRecord] = (),
    ) -> LedgerFacts:
        """Facts from found records."""
        return cls(
            MappingProxyType({record.id: record for record in offers}),
            MappingProxyType({record.id: record for record in requests}),
            query,
        )


# -- what a transition does ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effect:
    """Base of every effect a transition returns."""


@dataclass(frozen=True, slots=True)
class OfferOpened(Effect):
    """A new offer entered the ledger (possibly already expired)."""

    record: OfferRecord


@dataclass(frozen=True, slots=True)
class OfferStatusChanged(Effect):
    """An offer was superseded, accepted or declined."""

    offer_id: str
    status: OfferStatus


@dataclass(frozen=True, slots=True)
class OpenOffersLapsed(Effect):
    """Every offer live at ``at`` (but ``except_offer``) lapsed: one deal per
    negotiation, or the negotiation closed (spec §7.4). Offers already past
    their ``validUntil`` stay expired."""

    at: datetime
    except_offer: str | None = None


@dataclass(frozen=True, slots=True)
class DealAccepted(Effect):
    """The individual accepted ``offer_id`` (by the message ``acceptance_id``):
    the transaction is under way."""

    offer_id: str
    acceptance_id: str | None = None


@dataclass(frozen=True, slots=True)
class DealRefused(Effect):
    """The vendor refused the deal on ``offer_id`` (spec §6.17): no offer is
    accepted any more (the offer itself lapses by an :class:`OfferStatusChanged`)."""

    offer_id: str


@dataclass(frozen=True, slots=True)
class ResumeStateSet(Effect):
    """The state a detour returns to (``None``: no detour under way): set at an
    acceptance and at the first support request, cleared when the deal is
    confirmed or refused and when the last support request is resolved."""

    state: RelationshipState | None


@dataclass(frozen=True, slots=True)
class RequestOpened(Effect):
    """A terms assertion, service notice or support request now awaits an answer."""

    record: RequestRecord


@dataclass(frozen=True, slots=True)
class RequestAnswered(Effect):
    """``answer_id`` answered the request ``request_id`` (terms, notice, support)."""

    request_id: str
    answer_id: str
    answer_type: MessageType


@dataclass(frozen=True, slots=True)
class RequestClosed(Effect):
    """A support request was resolved, or a consent change receipted (status ``closed``)."""

    request_id: str


@dataclass(frozen=True, slots=True)
class ExitNoticed(Effect):
    """An exit notice is in force (EXITING), with the re-engagement preferences."""

    record: ExitRecord


@dataclass(frozen=True, slots=True)
class ExitCompleted(Effect):
    """The exit was acknowledged: every open offer lapses and every request is void
    (spec §7.4, §7.5)."""

    notice_id: str


@dataclass(frozen=True, slots=True)
class Reengaged(Effect):
    """The individual re-engaged after an exit: its preferences no longer apply."""


#: Effects whose whole change is to the core (:func:`apply_to_core`): a store
#: that keeps the core as one value writes no other row for them.
CORE_ONLY_EFFECTS: Final[tuple[type[Effect], ...]] = (
    RequestAnswered,
    DealAccepted,
    DealRefused,
    ResumeStateSet,
    ExitNoticed,
    Reengaged,
)


def apply_to_core(
    core: RelationshipCore, target: RelationshipState, effects: Iterable[Effect]
) -> RelationshipCore:
    """The core after a transition to ``target`` with ``effects``. Never raises."""
    exit_record, accepted, acceptance = core.exit, core.accepted_offer, core.acceptance
    resume = core.resume_state
    for effect in effects:
        if isinstance(effect, DealAccepted):
            accepted, acceptance = effect.offer_id, effect.acceptance_id
        elif isinstance(effect, DealRefused):
            accepted, acceptance = None, None
        elif isinstance(effect, ResumeStateSet):
            resume = effect.state
        elif isinstance(effect, ExitNoticed):
            exit_record = effect.record
        elif isinstance(effect, ExitCompleted):
            accepted, acceptance, resume = None, None, None
        elif isinstance(effect, Reengaged):
            exit_record = None
    return RelationshipCore(target, exit_record, accepted, acceptance, resume)


class MemoryLedger:
    """The whole ledger in memory: offers and requests by id, effects applied in place.

    For library users and tests; an agent keeps the same records in its store.
    """

    __slots__ = ("offers", "requests")

    def __init__(
        self, offers: Iterable[OfferRecord] = (), requests: Iterable[RequestRecord] = ()
    ) -> None:
        self.offers: dict[str, OfferRecord] = {record.id: record for record in offers}
        self.requests: dict[str, RequestRecord] = {record.id: record for record in requests}

    def facts(self, query: LedgerQuery) -> LedgerFacts:
        """Everything held (a superset of what ``query`` asks). Never raises."""
        return LedgerFacts(
            MappingProxyType(dict(self.offers)),
            MappingProxyType(dict(self.requests)),
            query,
            complete=True,
        )

    def apply(self, effects: Iterable[Effect]) -> None:
        """Apply a transition's effects. Never raises."""
        for effect in effects:
            if isinstance(effect, OfferOpened):
                self.offers[effect.record.id] = effect.record
            elif isinstance(effect, OfferStatusChanged):
                record = self.offers.get(effect.offer_id)
                if record is not None:
                    self.offers[record.id] = replace(record, status=effect.status)
            elif isinstance(effect, OpenOffersLapsed):
                for record in list(self.offers.values()):
                    if record.live_at(effect.at) and record.id != effect.except_offer:
                        self.offers[record.id] = replace(record, status=OfferStatus.LAPSED)
            elif isinstance(effect, RequestOpened):
                self.requests[effect.record.id] = effect.record
            elif isinstance(effect, RequestClosed):
                request = self.requests.get(effect.request_id)
                if request is not None:
                    self.requests[request.id] = replace(request, status=RequestStatus.CLOSED)
            elif isinstance(effect, ExitCompleted):
                # spec §7.4, §7.5: an offer is open until the relationship is
                # exited; the exit voids every request too. The records stay,
                # so a later reference is refused for what it is.
                for record in list(self.offers.values()):
                    if record.status is OfferStatus.OPEN:
                        self.offers[record.id] = replace(record, status=OfferStatus.LAPSED)
                for request in list(self.requests.values()):
                    self.requests[request.id] = replace(request, status=RequestStatus.VOID)

    def copy(self) -> MemoryLedger:
        """An independent copy (records are frozen)."""
        return MemoryLedger(self.offers.values(), self.requests.values())


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
