"""What one message type is: the pieces every message-type module declares.

A message type is one unit (ARCHITECTURE.md): its schema file and model
(found by its name), its transition rows, the guard that checks the ledger,
the ledger records it reads, its spec section, lifecycle steps and summary.
Each module of :mod:`vrm_protocol.message_types` defines one
:class:`MessageTypeSpec`; the package collects them into the registry that
everything else derives from (the state machine's table, the discovery
document's accepts/sends, the spec's message sections, the suite's peers).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import (
    Effect,
    LedgerFacts,
    LedgerQuery,
    OfferRecord,
    RelationshipCore,
    RequestRecord,
)
from vrm_protocol.models import BaseMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

__all__ = [
    "Draft",
    "Guard",
    "GuardRule",
    "MessageTypeSpec",
    "Move",
    "QueryFor",
    "Refusal",
    "TransitionRow",
]

M = TypeVar("M", bound=BaseMessage)


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One row of the transition table (spec §7.2).

    ``sender`` is the role of the message's sender; a third party takes the
    vendor role. ``otherwise`` is the state the guard chooses instead of
    ``target`` when ``otherwise_when`` holds. ``resumes`` (when not empty)
    says the move ends a detour: it returns to the state the relationship's
    core recorded before the detour (:attr:`RelationshipCore.resume_state`),
    one of ``resumes``; ``target`` is where it goes when no state was
    recorded (a core written before resume states existed).
    """

    state: RelationshipState
    sender: Role
    message: MessageType
    target: RelationshipState
    why: str
    otherwise: RelationshipState | None = None
    otherwise_when: str = ""
    resumes: tuple[RelationshipState, ...] = ()

    @property
    def targets(self) -> tuple[RelationshipState, ...]:
        """Every state the move may lead to (for the diagram and the tables)."""
        found = [self.target, *self.resumes]
        if self.otherwise is not None:
            found.append(self.otherwise)
        return tuple(dict.fromkeys(found))

    @property
    def key(self) -> tuple[RelationshipState, Role, MessageType]:
        """The table key ``(state, sender role, message type)``."""
        return (self.state, self.sender, self.message)


@dataclass(frozen=True, slots=True)
class GuardRule:
    """One refusal a message type's guard makes: the code, when, and the
    requirement it enforces (spec §7.4, §8.6). The spec's guard table and the
    state-stage vectors are generated from these."""

    code: ErrorCode
    when: str
    requirement: str


class Refusal(Exception):
    """A guard's refusal; the machine raises it as a Local- or RemoteProtocolError."""

    def __init__(self, code: ErrorCode, detail: str, path: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.path = path


class Draft:
    """A transition in progress: the core, the facts, and the effects so far.

    Guards read records through :meth:`offer` and :meth:`request`, which see
    the effects already emitted, and record changes with :meth:`emit`. The
    machine commits nothing unless the guard returns; a refusal leaves
    nothing behind (spec §7: a refused message changes nothing).
    """

    __slots__ = ("_offers", "_requests", "core", "effects", "facts", "now")

    def __init__(self, core: RelationshipCore, facts: LedgerFacts, now: datetime) -> None:
        self.core = core
        self.facts = facts
        self.now = now
        self.effects: list[Effect] = []
        self._offers: dict[str, OfferRecord] = {}
        self._requests: dict[str, RequestRecord] = {}

    def emit(self, effect: Effect, *, offer: OfferRecord | None = None) -> None:
        """Record ``effect``; ``offer`` (or a request record) is the record as it now stands."""
        self.effects.append(effect)
        if offer is not None:
            self._offers[offer.id] = offer

    def update_request(self, record: RequestRecord) -> None:
        """Make ``record`` the request as it now stands (for later reads)."""
        self._requests[record.id] = record

    def offer(self, offer_id: str) -> OfferRecord | None:
        """The offer ``offer_id`` as it stands, or ``None`` when the ledger has none.

        Raises:
            LookupError: the message type's query did not ask for it (a defect
                of the message-type unit, not of the message).
        """
        if offer_id in self._offers:
            return self._offers[offer_id]
        record = self.facts.offers.get(offer_id)
        if record is None and not self._asked_offer(offer_id):
            raise LookupError(f"the ledger query did not ask for offer {offer_id}")
        return record

    def open_offers(self, sender: Role) -> list[OfferRecord]:
        """Every offer of ``sender`` still live at ``now``, as it stands.

        Raises:
            LookupError: the message type's query did not ask for them.
        """
        if self.facts.query.open_offers_of is not sender and not self._complete:
            raise LookupError(f"the ledger query did not ask for the open offers of {sender}")
        merged = {**self.facts.offers, **self._offers}
        return [r for r in merged.values() if r.sender is sender and r.live_at(self.now)]

    def request(self, request_id: str) -> RequestRecord | None:
        """The request ``request_id`` as it stands, or ``None``.

        Raises:
            LookupError: the message type's query did not ask for it.
        """
        if request_id in self._requests:
            return self._requests[request_id]
        record = self.facts.requests.get(request_id)
        if record is None and request_id not in self.facts.query.requests and not self._complete:
            raise LookupError(f"the ledger query did not ask for request {request_id}")
        return record

    def open_requests(self, kind: MessageType) -> list[RequestRecord]:
        """Every open request of type ``kind``, as it stands.

        Raises:
            LookupError: the message type's query did not ask for them.
        """
        if self.facts.query.open_requests_of is not kind and not self._complete:
            raise LookupError(f"the ledger query did not ask for the open {kind} requests")
        merged = {**self.facts.requests, **self._requests}
        return [r for r in merged.values() if r.type is kind and r.open]

    @property
    def _complete(self) -> bool:
        return self.facts.complete

    def _asked_offer(self, offer_id: str) -> bool:
        query = self.facts.query
        return self._complete or offer_id in query.offers or query.open_offers_of is not None


@dataclass(frozen=True, slots=True)
class Move(Generic[M]):
    """One message about to change a relationship, as its guard sees it."""

    message: M
    sender: Role
    row: TransitionRow
    draft: Draft
    digest: str | None

    @property
    def now(self) -> datetime:
        """The time of the transition."""
        return self.draft.now


#: A guard: checks the ledger, emits effects on the draft, returns the target state.
#: Raises :class:`Refusal`.
Guard = Callable[[Move[M]], RelationshipState]
#: The ledger records a message needs, given the role of its sender.
QueryFor = Callable[[M, Role], LedgerQuery]


def _no_query(message: BaseMessage, sender: Role) -> LedgerQuery:
    return LedgerQuery()


@dataclass(frozen=True, slots=True)
class MessageTypeSpec(Generic[M]):
    """Everything the protocol says of one message type.

    Attributes:
        type: the wire value.
        model: the generated model of the whole message.
        section: its section of the specification (``"6.3"``).
        steps: the lifecycle steps it serves (spec §4).
        summary: one line, for tables and the discovery document.
        rows: its transition rows (spec §7.2); empty when ``always_allowed``.
        guard: the ledger checks and effects of a move; ``None`` only when
            ``always_allowed``.
        guard_codes: the codes the guard may raise besides
            ``not-a-participant`` and ``illegal-transition`` (spec §7.4).
        rules: every refusal the guard makes, in the order it checks them,
            each with its code, condition and requirement (spec §8.6).
        query: the ledger records a message of this type needs.
        always_allowed: not a move (problem reports, receipts): allowed in
            every state, no transition, only the participant check applies.
        sale: part of selling (RFP, offers, acceptance, deal): a party that
            sells nothing (a third party presenting terms) neither takes nor
            sends it.
        in_response: carried in the HTTP answer to the message it concerns,
            never POSTed to an inbox (receipts, spec §11.3).
    """

    type: MessageType
    model: builtins.type[M]
    section: str
    steps: tuple[LifecycleStep, ...]
    summary: str
    rows: tuple[TransitionRow, ...] = ()
    guard: Guard[M] | None = None
    guard_codes: tuple[ErrorCode, ...] = ()
    rules: tuple[GuardRule, ...] = ()
    query: QueryFor[M] = field(default=_no_query)
    always_allowed: bool = False
    sale: bool = False
    in_response: bool = False

    def __post_init__(self) -> None:
        # A unit is consistent by construction: every row is about this type,
        # and exactly the always-allowed types have no rows and no guard.
        assert all(row.message is self.type for row in self.rows), self.type
        assert self.always_allowed == (not self.rows), self.type
        assert self.always_allowed == (self.guard is None), self.type
        # The rules name every code the guard declares, and no other but the
        # two every guard may raise (illegal-transition, schema-invalid).
        ruled = {rule.code for rule in self.rules}
        assert set(self.guard_codes) <= ruled, (self.type, set(self.guard_codes) - ruled)
        general = {ErrorCode.ILLEGAL_TRANSITION, ErrorCode.SCHEMA_INVALID}
        assert ruled <= set(self.guard_codes) | general, (self.type, ruled)

    @property
    def schema_file(self) -> str:
        """The file of its schema in ``schemas/``."""
        return f"{self.type.value}.schema.json"

    @property
    def senders(self) -> frozenset[Role]:
        """The roles that may send it (from its rows; both for always-allowed types)."""
        if self.always_allowed:
            return frozenset(Role)
        return frozenset(row.sender for row in self.rows)


def rows_by_key(
    specs: Mapping[MessageType, MessageTypeSpec[BaseMessage]],
) -> dict[tuple[RelationshipState, Role, MessageType], TransitionRow]:
    """Every row of every unit by its key.

    Raises:
        ValueError: two rows share a key (the table would not be a function).
    """
    table: dict[tuple[RelationshipState, Role, MessageType], TransitionRow] = {}
    for spec in specs.values():
        for row in spec.rows:
            if row.key in table:
                raise ValueError(f"duplicate transition row {row.key}")
            table[row.key] = row
    return table
