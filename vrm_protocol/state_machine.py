"""The relationship state machine (spec §7): the transition table and the decision.

Design (after h11's ``_state.py``):

* **Transitions are data.** Each message-type unit
  (:mod:`vrm_protocol.message_types`) declares its rows
  ``(state, sender role, message type) -> state``, each with a one-line
  reason; :data:`TRANSITION_ROWS` is all of them in state order, and
  :data:`TRANSITIONS` the same table as a mapping. The specification's table
  and diagram are generated from it, so the prose and the code cannot drift.
* **A transition returns effects.** :func:`decide` takes the relationship's
  :class:`~vrm_protocol.ledger.RelationshipCore`, the ledger facts the
  message needs (:func:`ledger_query` says which) and the typed message, and
  returns a :class:`Transition`: the new state and the
  :class:`~vrm_protocol.ledger.Effect` s (offer opened, offer accepted,
  request answered, exit recorded, ...). The caller applies them to its own
  store; nothing here owns the ledger. Cost per message is constant in the
  relationship's age: the core is a few values, and the facts are the records
  the message names.
* **Guards** (one per message type) check what the table cannot: the offers
  ledger (spec §7.4), re-engagement preferences (spec §7.5), what a reply
  answers. The participant check (spec §7.3) is common to all. Each refusal
  has its own :class:`~vrm_protocol.errors.ErrorCode`.
* **Failure is not sticky and is atomic.** A refused message changes nothing,
  and the next legal message is processed normally: a relationship lives for
  years, and one bad message from a peer must not end it.
* **Role-correct errors.** Deciding a message our side is about to send
  raises :class:`~vrm_protocol.errors.LocalProtocolError`; one the peer sent,
  :class:`~vrm_protocol.errors.RemoteProtocolError`.

:class:`Relationship` wraps all of this in memory (core, ledger, history) for
library users, examples and tests; an agent calls :func:`decide` with facts
from its store.

``problem-report`` and ``receipt`` are not moves in the relationship: they
are allowed in every state, make no transition and bypass the table (only
the participant check applies to them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeAlias

from vrm_protocol.errors import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from vrm_protocol.ledger import (
    Effect,
    ExitRecord,
    LedgerFacts,
    LedgerQuery,
    MemoryLedger,
    OfferRecord,
    OfferStatus,
    RelationshipCore,
    RequestRecord,
    RequestStatus,
    apply_to_core,
)
from vrm_protocol.message_types import MESSAGE_TYPES, Draft, Move, Refusal, TransitionRow
from vrm_protocol.message_types._guards import closed_offer_refusal
from vrm_protocol.models import Message, OfferAcceptanceMessage, parse_message_dict
from vrm_protocol.states import (
    STATE_DESCRIPTIONS,
    STEP_STATES,
    RelationshipState,
    StateDescription,
)
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "ALWAYS_ALLOWED",
    "GUARD_CODES",
    "SNAPSHOT_FORMAT",
    "STATE_DESCRIPTIONS",
    "STEP_STATES",
    "TRANSITIONS",
    "TRANSITION_ROWS",
    "Direction",
    "ExitRecord",
    "HistoryEntry",
    "MessageInput",
    "OfferRecord",
    "OfferStatus",
    "Relationship",
    "RelationshipCore",
    "RelationshipState",
    "RequestRecord",
    "RequestStatus",
    "StateDescription",
    "Transition",
    "TransitionRow",
    "allowed_inputs",
    "decide",
    "ledger_query",
]

# ---------------------------------------------------------------------------------------------
# The transition table, assembled from the message-type units
# ---------------------------------------------------------------------------------------------

#: Message types that are not moves in a relationship: allowed in every state,
#: no transition (spec §7.2). Only the participant check applies.
ALWAYS_ALLOWED: Final[frozenset[MessageType]] = frozenset(
    spec.type for spec in MESSAGE_TYPES.values() if spec.always_allowed
)

_STATE_ORDER: Final = {state: index for index, state in enumerate(RelationshipState)}
_TYPE_ORDER: Final = {message_type: index for index, message_type in enumerate(MESSAGE_TYPES)}

#: The transition table (spec §7.2), one row per (state, sender role, message
#: type), in the order of the states, then of the message types' sections.
TRANSITION_ROWS: Final[tuple[TransitionRow, ...]] = tuple(
    sorted(
        (row for spec in MESSAGE_TYPES.values() for row in spec.rows),
        key=lambda row: (_STATE_ORDER[row.state], _TYPE_ORDER[row.message], row.sender.value),
    )
)

#: The transition table as a mapping: ``(state, sender role, type) -> state``.
TRANSITIONS: Final[Mapping[tuple[RelationshipState, Role, MessageType], RelationshipState]] = (
    MappingProxyType({row.key: row.target for row in TRANSITION_ROWS})
)
_ROWS_BY_KEY: Final[Mapping[tuple[RelationshipState, Role, MessageType], TransitionRow]] = (
    MappingProxyType({row.key: row for row in TRANSITION_ROWS})
)

#: The codes, beyond ``not-a-participant`` and ``illegal-transition``, that the
#: guards of a message type may raise (spec §7.3-§7.5). For the generated spec.
GUARD_CODES: Final[Mapping[MessageType, tuple[ErrorCode, ...]]] = MappingProxyType(
    {spec.type: spec.guard_codes for spec in MESSAGE_TYPES.values() if spec.guard_codes}
)


def allowed_inputs(state: RelationshipState, role: Role) -> frozenset[MessageType]:
    """The message types a party in ``role`` may send in ``state``.

    Includes :data:`ALWAYS_ALLOWED` (problem reports and receipts). A type in
    the answer may still be refused by a guard (e.g. an expired offer).
    Never raises.
    """
    moves = {message for (s, r, message) in TRANSITIONS if s is state and r is role}
    return frozenset(moves) | ALWAYS_ALLOWED


# ---------------------------------------------------------------------------------------------
# Deciding one message
# ---------------------------------------------------------------------------------------------


class Direction(StrEnum):
    """Whether our side sent the message or received it."""

    SENT = "sent"
    RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class Transition:
    """What one message did to a relationship.

    Attributes:
        message_type, message_id: the message.
        direction: sent or received by our side.
        before: the state before.
        state: the state after (``before`` for a type that is not a move).
        core: the relationship's core after the message (store it).
        effects: the ledger changes, in order (apply them to the store).
        row: the row that allowed the move; ``None`` for problem reports and receipts.
    """

    message_type: MessageType
    message_id: str
    direction: Direction
    before: RelationshipState
    state: RelationshipState
    core: RelationshipCore
    effects: tuple[Effect, ...]
    row: TransitionRow | None


#: What :meth:`Relationship.send` and :meth:`Relationship.receive` take: a
#: message model, or a payload (a JSON object with wire names) to parse into one.
MessageInput: TypeAlias = Message | Mapping[str, Any]


def ledger_query(message: Message, *, sender: Role) -> LedgerQuery:
    """The ledger records :func:`decide` needs for ``message`` sent by ``sender``.

    Never raises.
    """
    spec = MESSAGE_TYPES[MessageType(message.type)]
    return spec.query(message, sender)


def decide(
    core: RelationshipCore,
    message: Message,
    *,
    our_role: Role,
    our_id: str,
    peer_id: str,
    direction: Direction,
    facts: LedgerFacts,
    now: datetime,
    digest: str | None = None,
) -> Transition:
    """Decide one message of a relationship (spec §7).

    ``facts`` are the ledger records :func:`ledger_query` names, as the
    store holds them; ``digest`` is the message digest of the signed token
    when known (recorded for offers, so that an acceptance binding other
    bytes is refused).

    Raises:
        LocalProtocolError: (``direction`` SENT) the message would break the
            protocol; RemoteProtocolError: (RECEIVED) the peer broke it. The
            code is ``not-a-participant``, ``illegal-transition``,
            ``relationship-exited`` or a guard's code (:data:`GUARD_CODES`).
            Nothing was changed either way.
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    error = LocalProtocolError if direction is Direction.SENT else RemoteProtocolError
    try:
        return _decide(core, message, our_role, our_id, peer_id, direction, facts, now, digest)
    except Refusal as refusal:
        raise error(refusal.code, refusal.detail, path=refusal.path) from None


def _decide(
    core: RelationshipCore,
    message: Message,
    our_role: Role,
    our_id: str,
    peer_id: str,
    direction: Direction,
    facts: LedgerFacts,
    now: datetime,
    digest: str | None,
) -> Transition:
    message_type = MessageType(message.type)
    sender_role = our_role if direction is Direction.SENT else our_role.peer
    sender_id, receiver_id = (our_id, peer_id) if direction is Direction.SENT else (peer_id, our_id)
    # spec §7.3: the sender must be a party to this relationship, writing to the other.
    if message.from_ != sender_id:
        raise Refusal(
            ErrorCode.NOT_A_PARTICIPANT,
            f"{message.from_} is not the {sender_role.value} of this relationship",
            "/from",
        )
    if receiver_id not in message.to:
        raise Refusal(
            ErrorCode.NOT_A_PARTICIPANT, f"the message is not addressed to {receiver_id}", "/to"
        )
    state = core.state
    if message_type in ALWAYS_ALLOWED:
        return Transition(message_type, message.id, direction, state, state, core, (), None)
    row = _ROWS_BY_KEY.get((state, sender_role, message_type))
    draft = Draft(core, facts, now)
    if row is None:
        if state in _AFTER_EXIT_NOTICE:
            # spec §7.5 (VRM-STATE-007): after an exit notice, a message no row
            # allows is refused as such, whoever sends it.
            raise Refusal(
                ErrorCode.RELATIONSHIP_EXITED,
                f"the relationship is {state.value}; a {sender_role.value} may not send "
                f"{message_type.value} (only the exit's acknowledgement, the individual's "
                "re-engagement and what her preferences allow)",
            )
        _diagnose_closed_offer(draft, message, sender_role)
        raise Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"a {sender_role.value} may not send {message_type.value} in state {state.value}",
            "/type",
        )
    guard = MESSAGE_TYPES[message_type].guard
    assert guard is not None  # only always-allowed types have none (checked at import)
    target = guard(Move(message, sender_role, row, draft, digest))
    effects = tuple(draft.effects)
    return Transition(
        message_type,
        message.id,
        direction,
        state,
        target,
        apply_to_core(core, target, effects),
        effects,
        row,
    )


#: States after an exit notice: a message that no row allows is ``relationship-exited``.
_AFTER_EXIT_NOTICE: Final = frozenset({RelationshipState.EXITING, RelationshipState.EXITED})


def _diagnose_closed_offer(draft: Draft, message: Message, sender: Role) -> None:
    """Name the precise fault of an acceptance that no row allows.

    A second acceptance of an offer (the state has moved on to TRANSACTION)
    is refused as ``offer-closed`` rather than ``illegal-transition``: the
    offer's status, not the state, is what the sender got wrong (spec §7.4).
    """
    if not isinstance(message, OfferAcceptanceMessage):
        return
    record = draft.offer(message.body.offer.id)
    if record is None or record.sender is not sender.peer:
        return
    refusal = closed_offer_refusal(record, draft.now, "/body/offer/id")
    if refusal is not None and refusal.code in {ErrorCode.OFFER_CLOSED, ErrorCode.OFFER_SUPERSEDED}:
        raise refusal


# ---------------------------------------------------------------------------------------------
# A relationship in memory
# ---------------------------------------------------------------------------------------------

#: Version tag of :meth:`Relationship.snapshot`.
SNAPSHOT_FORMAT: Final = "vrm-relationship/2"


class HistoryEntry(NamedTuple):
    """One processed message, as :class:`Relationship` remembers it."""

    direction: Direction
    type: MessageType
    id: str
    from_state: RelationshipState
    to_state: RelationshipState


class Relationship:
    """One individual's relationship with one counterparty, from one side, in memory.

    ``our_role`` is the role of the side that owns this object; ``our_id`` and
    ``peer_id`` are the two party identifiers (the individual's pairwise
    ``did:jwk`` pseudonym and the counterparty's URL). Pass every message
    *before* sending it to :meth:`send`, and every message that passed the
    receiving pipeline to :meth:`receive`. The caller owns the clock and
    passes ``now`` (timezone-aware).
    """

    def __init__(self, our_role: Role, our_id: str, peer_id: str) -> None:
        self.our_role: Final = Role(our_role)
        self.our_id: Final = our_id
        self.peer_id: Final = peer_id
        self._core = RelationshipCore()
        self._ledger = MemoryLedger()
        self._history: list[HistoryEntry] = []

    def __repr__(self) -> str:
        return (
            f"Relationship(our_role={self.our_role.value!r}, our_id={self.our_id!r}, "
            f"peer_id={self.peer_id!r}, state={self.state.value!r})"
        )

    # -- read-only views -------------------------------------------------------------------------

    @property
    def state(self) -> RelationshipState:
        """The current state."""
        return self._core.state

    @property
    def core(self) -> RelationshipCore:
        """State, exit in force and accepted offer."""
        return self._core

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        """Every message processed by this object, oldest first (not persisted: an
        agent's history is its stored messages)."""
        return tuple(self._history)

    @property
    def offers(self) -> Mapping[str, OfferRecord]:
        """The offers ledger: offer id -> record as stored (read-only view)."""
        return MappingProxyType(self._ledger.offers)

    @property
    def requests(self) -> Mapping[str, RequestRecord]:
        """Terms assertions, service notices and support requests, by id."""
        return MappingProxyType(self._ledger.requests)

    @property
    def exit_record(self) -> ExitRecord | None:
        """The exit notice in force (EXITING, EXITED), with re-engagement preferences."""
        return self._core.exit

    @property
    def accepted_offer(self) -> str | None:
        """The id of the offer accepted in the current transaction, if any."""
        return self._core.accepted_offer

    def offer_status(self, offer_id: str, now: datetime) -> OfferStatus | None:
        """The status of an offer at ``now`` (``expired`` once past its ``validUntil``)."""
        record = self._ledger.offers.get(offer_id)
        return record.status_at(now) if record is not None else None

    def live_offers(self, now: datetime) -> tuple[OfferRecord, ...]:
        """Open offers not past their ``validUntil`` at ``now``. Never raises."""
        return tuple(record for record in self._ledger.offers.values() if record.live_at(now))

    def allowed_inputs(self, role: Role) -> frozenset[MessageType]:
        """The message types ``role`` may send in the current state (see :func:`allowed_inputs`)."""
        return allowed_inputs(self.state, role)

    # -- transitions -----------------------------------------------------------------------------

    def send(
        self, message: MessageInput, *, now: datetime, digest: str | None = None
    ) -> Transition:
        """Check and apply a message our side is about to send.

        Raises:
            LocalProtocolError: the message would break the protocol (the codes
                of :func:`decide`; ``schema-invalid`` etc. for a payload that
                does not parse). Nothing changed.
            ValueError: ``now`` is naive.
        """
        return self._process(Direction.SENT, message, now, digest)

    def receive(
        self, message: MessageInput, *, now: datetime, digest: str | None = None
    ) -> Transition:
        """Check and apply a message received from the peer.

        Raises:
            RemoteProtocolError: the peer broke the protocol (the codes of
                :func:`decide`). Nothing changed.
            ValueError: ``now`` is naive.
        """
        return self._process(Direction.RECEIVED, message, now, digest)

    def _process(
        self, direction: Direction, message: MessageInput, now: datetime, digest: str | None
    ) -> Transition:
        model = _model_of(message, direction)
        transition = decide(
            self._core,
            model,
            our_role=self.our_role,
            our_id=self.our_id,
            peer_id=self.peer_id,
            direction=direction,
            facts=self._ledger.facts(LedgerQuery()),
            now=now,
            digest=digest,
        )
        self._ledger.apply(transition.effects)
        self._core = transition.core
        self._history.append(
            HistoryEntry(
                direction, transition.message_type, model.id, transition.before, transition.state
            )
        )
        return transition

    # -- persistence -----------------------------------------------------------------------------

    def copy(self) -> Relationship:
        """An independent copy (e.g. to try a message without committing)."""
        twin = Relationship(self.our_role, self.our_id, self.peer_id)
        twin._core = self._core
        twin._ledger = self._ledger.copy()
        twin._history = list(self._history)
        return twin

    def snapshot(self) -> dict[str, Any]:
        """Core and ledger as JSON-safe data (the history is not kept)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "ourRole": self.our_role.value,
            "ourId": self.our_id,
            "peerId": self.peer_id,
            "core": self._core.to_json(),
            "offers": [record.to_json() for record in self._ledger.offers.values()],
            "requests": [record.to_json() for record in self._ledger.requests.values()],
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> Relationship:
        """Rebuild a relationship from :meth:`snapshot` output.

        Raises:
            ValueError: ``data`` is not a snapshot this version understands.
        """
        if not isinstance(data, Mapping) or data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a {SNAPSHOT_FORMAT} snapshot")
        try:
            relationship = cls(Role(data["ourRole"]), str(data["ourId"]), str(data["peerId"]))
            relationship._core = RelationshipCore.from_json(data["core"])
            relationship._ledger = MemoryLedger(
                [OfferRecord.from_json(item) for item in data["offers"]],
                [RequestRecord.from_json(item) for item in data["requests"]],
            )
        except (KeyError, TypeError, ValueError) as failure:
            raise ValueError(f"malformed relationship snapshot: {failure}") from None
        return relationship


def _model_of(message: MessageInput, direction: Direction) -> Message:
    """The message model of any accepted input.

    Raises:
        LocalProtocolError, RemoteProtocolError: (by ``direction``) a payload
            that is not a valid message.
        TypeError: ``message`` is neither a model nor a mapping.
    """
    if isinstance(message, Mapping):
        try:
            return parse_message_dict(message)
        except ProtocolError as failure:
            if direction is Direction.SENT:
                raise LocalProtocolError(
                    failure.code, failure.detail, path=failure.path, extra=failure.extra
                ) from None
            raise
    if not hasattr(message, "type") or not hasattr(message, "body"):
        raise TypeError(f"cannot read a message from {type(message).__name__}")
    return message
