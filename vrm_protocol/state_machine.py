"""The relationship state machine (spec §7): states, the transition table, guards.

One :class:`Relationship` is one individual's relationship with one
counterparty (a vendor, or a third party, which takes the vendor role), seen
from one side.  It is sans-IO in the manner of h11: the caller hands it every
message it is about to send (:meth:`Relationship.send`) and every message that
passed the receiving pipeline (:meth:`Relationship.receive`), with the time
``now``; the machine answers with the new state or raises.

Design (after h11's ``_state.py``):

* **Transitions are data.**  :data:`TRANSITION_ROWS` is a literal table of
  ``(state, sender role, message type) -> state`` rows, each with a one-line
  reason; :data:`TRANSITIONS` is the same table as a mapping.  The
  specification's table and diagram are generated from it, so the prose and
  the code cannot drift.  A few rows name an ``otherwise`` state that the
  message body or the offers ledger selects (a decline that leaves live offers
  open keeps the negotiation going); the guards are the only code that
  chooses it.
* **Guards** check what the table cannot: that the sender is a participant
  (spec §7.3), the offers ledger (spec §7.4), re-engagement preferences
  (spec §7.5).  Each refusal has its own :class:`~vrm_protocol.errors.ErrorCode`.
* **Failure is not sticky and is atomic.**  Unlike h11, whose connection
  enters an ``ERROR`` state, a refused message here changes nothing: the
  relationship's state, ledger and history are exactly as before, and the
  next legal message is processed normally.  A relationship lives for years;
  one bad message from a peer must not end it.
* **Role-correct errors.**  :meth:`Relationship.send` raises
  :class:`~vrm_protocol.errors.LocalProtocolError` (we were about to break
  the protocol), :meth:`Relationship.receive` raises
  :class:`~vrm_protocol.errors.RemoteProtocolError` (the peer broke it); both
  carry the code and its HTTP status.

``problem-report`` and ``receipt`` are not moves in the relationship: they
are allowed in every state, make no transition and bypass the table (only
the participant guard applies to them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, NamedTuple, Protocol, TypeAlias, runtime_checkable

from vrm_protocol.errors import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

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
    "Message",
    "MessageEvent",
    "OfferRecord",
    "OfferStatus",
    "Relationship",
    "RelationshipState",
    "RequestRecord",
    "StateDescription",
    "SupportsModelDump",
    "TransitionRow",
    "allowed_inputs",
]

# ---------------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------------


class RelationshipState(StrEnum):
    """The states of one relationship (spec §7.1).

    Each member's docstring (``RelationshipState.SEARCH.__doc__``) says how the
    relationship enters and leaves it and which of the ten lifecycle steps it
    carries; :data:`STATE_DESCRIPTIONS` holds the same facts as data.
    """

    SEARCH = "search"
    ENQUIRY = "enquiry"
    NEGOTIATION = "negotiation"
    TRANSACTION = "transaction"
    WELCOME = "welcome"
    SERVICING = "servicing"
    DEVELOPMENT = "development"
    PROBLEM = "problem"
    EXITING = "exiting"
    EXITED = "exited"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StateDescription:
    """What the specification says about one state."""

    steps: tuple[LifecycleStep, ...]
    summary: str
    entry: str
    exit: str

    def docstring(self) -> str:
        """The member docstring built from this description."""
        steps = ", ".join(step.value for step in self.steps)
        return (
            f"{self.summary}\n\nLifecycle step(s): {steps}.\nEntry: {self.entry}\nExit: {self.exit}"
        )


_S = RelationshipState
_L = LifecycleStep

#: Every state with its lifecycle steps, entry and exit (spec §7.1, §4).
STATE_DESCRIPTIONS: Final[Mapping[RelationshipState, StateDescription]] = MappingProxyType(
    {
        _S.SEARCH: StateDescription(
            (_L.SEARCH,),
            "No message yet. Step 1 (Search / Target) is the individual's own research, "
            "kept in her personal data store; it has no message of its own until she "
            "sends an intentcast.",
            "the initial state of every relationship.",
            "the individual's personal-rfi (to ENQUIRY) or personal-rfp (to NEGOTIATION).",
        ),
        _S.ENQUIRY: StateDescription(
            (_L.SEARCH, _L.ENGAGE),
            "The individual has sent a pseudonymous personal RFI (the search's intentcast); "
            "the vendor's enquiry management answers it (step 2, Find / Engage).",
            "a personal-rfi from SEARCH, CLOSED or EXITED (re-engagement).",
            "a vendor offer or an RFP (to NEGOTIATION), a terms assertion in answer "
            "(to WELCOME), or the individual's exit-notice.",
        ),
        _S.NEGOTIATION: StateDescription(
            (_L.ENGAGE, _L.NEGOTIATE),
            "Offers and counter-offers on the table; the personal RFP and its answers "
            "(steps 2 and 3).",
            "a personal-rfp, or a vendor offer in ENQUIRY.",
            "an acceptance (to TRANSACTION), a decline of every live offer (to CLOSED), "
            "or an exit-notice.",
        ),
        _S.TRANSACTION: StateDescription(
            (_L.TRANSACT,),
            "The individual has accepted a binding offer, disclosing her identity; the "
            "vendor has yet to confirm the deal (step 4).",
            "an offer-acceptance in NEGOTIATION or DEVELOPMENT.",
            "the vendor's deal-confirmation (to WELCOME), or an exit-notice.",
        ),
        _S.WELCOME: StateDescription(
            (_L.WELCOME,),
            "The deal is confirmed; delivery and set-up, and the vendor presents its terms "
            "of sharing (step 5).",
            "a deal-confirmation, or a terms-assertion answering an RFI (a third party).",
            "the individual's terms-response (to SERVICING), a support-request (to PROBLEM), "
            "or an exit-notice.",
        ),
        _S.SERVICING: StateDescription(
            (_L.SERVICING,),
            "Ordinary service under the accepted terms: reminders, recalls, updates and the "
            "individual's answers (step 6).",
            "a terms-response in WELCOME, or a resolved support request.",
            "a development offer or programme notice (to DEVELOPMENT), a support-request "
            "(to PROBLEM), or an exit-notice.",
        ),
        _S.DEVELOPMENT: StateDescription(
            (_L.DEVELOPMENT,),
            "Servicing plus development: retention and programme offers, scoped data grants "
            "(step 7).",
            "a vendor offer with a topic, or a programme-offer service notice, in SERVICING.",
            "an acceptance of a development offer (to TRANSACTION), a support-request "
            "(to PROBLEM), or an exit-notice.",
        ),
        _S.PROBLEM: StateDescription(
            (_L.PROBLEMS,),
            "At least one support request is unresolved (step 8).",
            "a support-request in WELCOME, SERVICING or DEVELOPMENT.",
            "a support-resolution that resolves the last open request (to SERVICING), or an "
            "exit-notice.",
        ),
        _S.EXITING: StateDescription(
            (_L.EXIT,),
            "An exit notice is waiting for the other party's acknowledgement, which carries "
            "the export and the deletion receipt (step 9).",
            "an exit-notice from the individual, or from a vendor leaving the market.",
            "the other party's exit-acknowledgement (to EXITED).",
        ),
        _S.EXITED: StateDescription(
            (_L.EXIT, _L.REENGAGEMENT),
            "The relationship has ended; its offers are void. Step 10 (Re-engagement) has "
            "no state of its own: it is the individual's new RFI or RFP from here, with the "
            "history kept. The vendor may write only as the exit's re-engagement "
            "preferences allow.",
            "an exit-acknowledgement in EXITING.",
            "the individual's personal-rfi (to ENQUIRY) or personal-rfp (to NEGOTIATION).",
        ),
        _S.CLOSED: StateDescription(
            (_L.NEGOTIATE,),
            "A negotiation that ended without a deal: the individual declined every live offer.",
            "an offer-decline in NEGOTIATION that leaves no live vendor offer.",
            "a new personal-rfi or personal-rfp from the individual, or her exit-notice.",
        ),
    }
)

for _state, _description in STATE_DESCRIPTIONS.items():
    # Per-member docstrings, so ``help(RelationshipState.WELCOME)`` explains the state.
    _state.__doc__ = _description.docstring()
del _state, _description

#: Which states carry each lifecycle step (derived from :data:`STATE_DESCRIPTIONS`).
STEP_STATES: Final[Mapping[LifecycleStep, tuple[RelationshipState, ...]]] = MappingProxyType(
    {
        step: tuple(state for state, d in STATE_DESCRIPTIONS.items() if step in d.steps)
        for step in LifecycleStep
    }
)

# ---------------------------------------------------------------------------------------------
# The transition table
# ---------------------------------------------------------------------------------------------

_M = MessageType
_B = Role.BUYER
_V = Role.VENDOR

#: Message types that are not moves in a relationship: allowed in every state,
#: no transition (spec §7.2). Only the participant guard applies.
ALWAYS_ALLOWED: Final[frozenset[MessageType]] = frozenset({_M.PROBLEM_REPORT, _M.RECEIPT})

_OFFER_CODES = (
    ErrorCode.UNKNOWN_OFFER,
    ErrorCode.OFFER_EXPIRED,
    ErrorCode.OFFER_SUPERSEDED,
    ErrorCode.OFFER_CLOSED,
)

#: The codes, beyond ``not-a-participant`` and ``illegal-transition``, that the
#: guards of a message type may raise (spec §7.3-§7.5). For the generated spec.
GUARD_CODES: Final[Mapping[MessageType, tuple[ErrorCode, ...]]] = MappingProxyType(
    {
        _M.OFFER: (*_OFFER_CODES, ErrorCode.REENGAGEMENT_NOT_PERMITTED),
        _M.OFFER_ACCEPTANCE: (*_OFFER_CODES, ErrorCode.APPROVAL_MISSING),
        _M.OFFER_DECLINE: (ErrorCode.UNKNOWN_OFFER, ErrorCode.OFFER_CLOSED),
        _M.SERVICE_NOTICE: (ErrorCode.REENGAGEMENT_NOT_PERMITTED,),
    }
)


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One row of the transition table.

    ``sender`` is the role of the message's sender; a third party takes the
    vendor role. ``otherwise`` is the state the guards choose instead of
    ``target`` when ``otherwise_when`` holds.
    """

    state: RelationshipState
    sender: Role
    message: MessageType
    target: RelationshipState
    why: str
    otherwise: RelationshipState | None = None
    otherwise_when: str = ""

    @property
    def key(self) -> tuple[RelationshipState, Role, MessageType]:
        """The table key ``(state, sender role, message type)``."""
        return (self.state, self.sender, self.message)

    @property
    def guards(self) -> tuple[ErrorCode, ...]:
        """Error codes this row's guards may raise (besides ``illegal-transition``)."""
        return GUARD_CODES.get(self.message, ())


_R = TransitionRow

# States from which either party may give notice of exit (spec §7.5).
_ENGAGED = (_S.NEGOTIATION, _S.TRANSACTION, _S.WELCOME, _S.SERVICING, _S.DEVELOPMENT, _S.PROBLEM)

#: The transition table (spec §7.2), one row per (state, sender role, message type).
TRANSITION_ROWS: Final[tuple[TransitionRow, ...]] = (
    # -- SEARCH: only the individual starts a relationship --------------------------------------
    _R(_S.SEARCH, _B, _M.PERSONAL_RFI, _S.ENQUIRY,
       "The individual starts with a pseudonymous intentcast; vendors never write first."),
    _R(_S.SEARCH, _B, _M.PERSONAL_RFP, _S.NEGOTIATION,
       "An RFP may be the first message: she already knows what she wants (seed 000 step 3)."),
    # -- ENQUIRY ------------------------------------------------------------------------------
    _R(_S.ENQUIRY, _B, _M.PERSONAL_RFI, _S.ENQUIRY,
       "A refined or further enquiry keeps the conversation at the enquiry stage."),
    _R(_S.ENQUIRY, _B, _M.PERSONAL_RFP, _S.NEGOTIATION,
       "The RFP turns the enquiry into a request for proposals."),
    _R(_S.ENQUIRY, _V, _M.OFFER, _S.NEGOTIATION,
       "The vendor answers the RFI with an offer (usually indicative): negotiation begins."),
    _R(_S.ENQUIRY, _V, _M.TERMS_ASSERTION, _S.WELCOME,
       "A party answering an RFI with terms, not an offer (a third party), welcomes her: no sale."),
    _R(_S.ENQUIRY, _B, _M.EXIT_NOTICE, _S.EXITING,
       "The enquiry's context is personal data too; exiting has it deleted."),
    # -- NEGOTIATION --------------------------------------------------------------------------
    _R(_S.NEGOTIATION, _B, _M.PERSONAL_RFI, _S.NEGOTIATION,
       "A question during negotiation does not end it."),
    _R(_S.NEGOTIATION, _B, _M.PERSONAL_RFP, _S.NEGOTIATION,
       "A revised RFP (e.g. after indicative offers) continues the negotiation."),
    _R(_S.NEGOTIATION, _V, _M.OFFER, _S.NEGOTIATION,
       "New offers, revisions and answers to counter-offers are the substance of negotiation."),
    _R(_S.NEGOTIATION, _B, _M.OFFER, _S.NEGOTIATION,
       "The individual counters (basis counter) an open offer, naming it in supersedes."),
    _R(_S.NEGOTIATION, _B, _M.OFFER_ACCEPTANCE, _S.TRANSACTION,
       "Accepting a live binding offer commits her and discloses her identity (step 4)."),
    _R(_S.NEGOTIATION, _B, _M.OFFER_DECLINE, _S.CLOSED,
       "Declining every live offer ends the negotiation without a deal.",
       _S.NEGOTIATION, "live offers from the vendor remain after the decline"),
    _R(_S.NEGOTIATION, _V, _M.TERMS_ASSERTION, _S.NEGOTIATION,
       "Terms of sharing may be shown while the deal is negotiated (transparency of terms)."),
    _R(_S.NEGOTIATION, _B, _M.TERMS_RESPONSE, _S.NEGOTIATION,
       "Answering those terms does not decide the deal."),
    # -- TRANSACTION --------------------------------------------------------------------------
    _R(_S.TRANSACTION, _V, _M.DEAL_CONFIRMATION, _S.WELCOME,
       "The vendor confirms exactly the accepted offer; delivery and set-up follow (step 5)."),
    _R(_S.TRANSACTION, _B, _M.TERMS_RESPONSE, _S.TRANSACTION,
       "Terms shown during negotiation may be answered after the acceptance."),
    # -- WELCOME ------------------------------------------------------------------------------
    _R(_S.WELCOME, _V, _M.TERMS_ASSERTION, _S.WELCOME,
       "The welcome is where the vendor presents (or revises) its terms of sharing."),
    _R(_S.WELCOME, _B, _M.TERMS_RESPONSE, _S.SERVICING,
       "Her answer fixes what is shared and which notices she wants: service begins."),
    _R(_S.WELCOME, _B, _M.SUPPORT_REQUEST, _S.PROBLEM,
       "Delivery itself can go wrong (seed 001: the trade-in handover)."),
    # -- SERVICING ----------------------------------------------------------------------------
    _R(_S.SERVICING, _V, _M.SERVICE_NOTICE, _S.SERVICING,
       "Reminders, recalls and updates are servicing (step 6); a programme offer is development.",
       _S.DEVELOPMENT, "the notice's kind is programme-offer"),
    _R(_S.SERVICING, _B, _M.SERVICE_RESPONSE, _S.SERVICING,
       "Her answer to a notice (e.g. only the scheduled maintenance) keeps the service going."),
    _R(_S.SERVICING, _V, _M.OFFER, _S.DEVELOPMENT,
       "An offer during service is a development (retention) offer and names its topic."),
    _R(_S.SERVICING, _V, _M.TERMS_ASSERTION, _S.SERVICING,
       "Revised terms of sharing are presented in service."),
    _R(_S.SERVICING, _B, _M.TERMS_RESPONSE, _S.SERVICING,
       "Answering revised terms keeps the service going."),
    _R(_S.SERVICING, _B, _M.SUPPORT_REQUEST, _S.PROBLEM,
       "A problem beyond routine service is managed as such (step 8)."),
    # -- DEVELOPMENT --------------------------------------------------------------------------
    _R(_S.DEVELOPMENT, _V, _M.SERVICE_NOTICE, _S.DEVELOPMENT,
       "Service continues during development."),
    _R(_S.DEVELOPMENT, _B, _M.SERVICE_RESPONSE, _S.DEVELOPMENT,
       "E.g. joining a programme by granting scoped access to travel dates (seed 000 step 7)."),
    _R(_S.DEVELOPMENT, _V, _M.OFFER, _S.DEVELOPMENT,
       "Further development offers, each naming its topic."),
    _R(_S.DEVELOPMENT, _B, _M.OFFER, _S.DEVELOPMENT,
       "She may counter a development offer as she would any offer."),
    _R(_S.DEVELOPMENT, _B, _M.OFFER_ACCEPTANCE, _S.TRANSACTION,
       "Accepting a development offer is a new deal."),
    _R(_S.DEVELOPMENT, _B, _M.OFFER_DECLINE, _S.DEVELOPMENT,
       "Declining a development offer leaves the relationship as it was."),
    _R(_S.DEVELOPMENT, _V, _M.TERMS_ASSERTION, _S.DEVELOPMENT,
       "A programme may come with terms of its own."),
    _R(_S.DEVELOPMENT, _B, _M.TERMS_RESPONSE, _S.DEVELOPMENT,
       "Answering programme terms keeps the relationship in development."),
    _R(_S.DEVELOPMENT, _B, _M.SUPPORT_REQUEST, _S.PROBLEM,
       "A problem is managed as such whatever else is going on (step 8)."),
    # -- PROBLEM ------------------------------------------------------------------------------
    _R(_S.PROBLEM, _V, _M.SUPPORT_RESOLUTION, _S.SERVICING,
       "Resolving the last open request returns the relationship to service.",
       _S.PROBLEM, "the status is not resolved, or other requests are still open"),
    _R(_S.PROBLEM, _B, _M.SUPPORT_REQUEST, _S.PROBLEM,
       "A further problem while one is open stays in problem management."),
    _R(_S.PROBLEM, _V, _M.SERVICE_NOTICE, _S.PROBLEM,
       "Safety notices cannot wait for a problem to be resolved."),
    _R(_S.PROBLEM, _B, _M.SERVICE_RESPONSE, _S.PROBLEM,
       "She may answer such a notice meanwhile."),
    # -- exits from every engaged state (step 9) ------------------------------------------------
    *(
        _R(state, _B, _M.EXIT_NOTICE, _S.EXITING,
           "The individual may leave at any time; the notice says why and asks for export.")
        for state in _ENGAGED
    ),
    *(
        _R(state, _V, _M.EXIT_NOTICE, _S.EXITING,
           "A vendor may exit only because it leaves the market (reason vendor-leaving-market).")
        for state in _ENGAGED
    ),
    _R(_S.EXITING, _V, _M.EXIT_ACKNOWLEDGEMENT, _S.EXITED,
       "The vendor acknowledges her exit with the export and the deletion receipt."),
    _R(_S.EXITING, _B, _M.EXIT_ACKNOWLEDGEMENT, _S.EXITED,
       "She acknowledges a vendor's exit (the vendor leaves the market)."),
    # -- CLOSED -------------------------------------------------------------------------------
    _R(_S.CLOSED, _B, _M.PERSONAL_RFI, _S.ENQUIRY,
       "She may enquire again after declining; the closed offers stay closed."),
    _R(_S.CLOSED, _B, _M.PERSONAL_RFP, _S.NEGOTIATION,
       "She may ask for new proposals after declining."),
    _R(_S.CLOSED, _B, _M.EXIT_NOTICE, _S.EXITING,
       "The RFP's context is personal data; exiting has it deleted."),
    # -- EXITED: re-engagement (step 10) ---------------------------------------------------------
    _R(_S.EXITED, _B, _M.PERSONAL_RFI, _S.ENQUIRY,
       "Re-engagement is hers to start, keeping the history (step 10)."),
    _R(_S.EXITED, _B, _M.PERSONAL_RFP, _S.NEGOTIATION,
       "She may re-engage directly with an RFP."),
    _R(_S.EXITED, _V, _M.SERVICE_NOTICE, _S.EXITED,
       "Only notices whose category her re-engagement preferences allow, before their end."),
    _R(_S.EXITED, _V, _M.OFFER, _S.EXITED,
       "A win-back offer only on a topic her preferences allow (seed 003 step 10)."),
    _R(_S.EXITED, _B, _M.SERVICE_RESPONSE, _S.EXITED,
       "She may answer a permitted notice without re-engaging."),
)  # fmt: skip

#: The transition table as a mapping: ``(state, sender role, type) -> state``.
TRANSITIONS: Final[Mapping[tuple[RelationshipState, Role, MessageType], RelationshipState]] = (
    MappingProxyType({row.key: row.target for row in TRANSITION_ROWS})
)
_ROWS_BY_KEY: Final[Mapping[tuple[RelationshipState, Role, MessageType], TransitionRow]] = (
    MappingProxyType({row.key: row for row in TRANSITION_ROWS})
)

# The table is a function: no key appears twice, and no row mentions a bypass type.
assert len(TRANSITIONS) == len(TRANSITION_ROWS), "duplicate row in TRANSITION_ROWS"
assert not {row.message for row in TRANSITION_ROWS} & ALWAYS_ALLOWED


def allowed_inputs(state: RelationshipState, role: Role) -> frozenset[MessageType]:
    """The message types a party in ``role`` may send in ``state``.

    Includes :data:`ALWAYS_ALLOWED` (problem reports and receipts). A type in
    the answer may still be refused by a guard (e.g. an expired offer).
    Never raises.
    """
    moves = {message for (s, r, message) in TRANSITIONS if s is state and r is role}
    return frozenset(moves) | ALWAYS_ALLOWED


del _R

# ---------------------------------------------------------------------------------------------
# Messages as the machine sees them
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class SupportsModelDump(Protocol):
    """Anything that dumps itself to a JSON-mode payload (pydantic models)."""

    def model_dump(self, *, mode: str, by_alias: bool, exclude_none: bool) -> dict[str, Any]:
        """Return the message payload as JSON-compatible data."""
        ...


def _freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


class _Refusal(Exception):
    """A guard's refusal; turned into Local/RemoteProtocolError by direction."""

    def __init__(self, code: ErrorCode, detail: str, path: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.path = path


def _parse_time(value: object, path: str) -> datetime:
    if not isinstance(value, str):
        raise _Refusal(ErrorCode.SCHEMA_INVALID, f"{path} must be an RFC 3339 timestamp", path)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Refusal(
            ErrorCode.SCHEMA_INVALID, f"{path} is not an RFC 3339 timestamp: {value!r}", path
        ) from None
    if moment.tzinfo is None:
        raise _Refusal(ErrorCode.SCHEMA_INVALID, f"{path} has no UTC offset", path)
    return moment


def _format_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A message as the state machine sees it: envelope members and a read-only body.

    ``digest`` is the message digest of the compact token (spec §8.5) when the
    caller knows it; an acceptance's ``messageRef`` is then checked against it.
    """

    type: MessageType
    id: str
    thread: str
    sender: str
    to: tuple[str, ...]
    body: Mapping[str, Any] = field(hash=False)
    created: datetime
    expires: datetime
    parent: str | None = None
    digest: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, digest: str | None = None) -> MessageEvent:
        """Build an event from a message payload (the envelope as a JSON object).

        Raises:
            RemoteProtocolError: ``unknown-message-type`` for a type outside
                :class:`MessageType`; ``schema-invalid`` when a member the
                machine needs is missing or malformed (the schema stage should
                have caught it).
        """
        try:
            return cls._from_payload(payload, digest)
        except _Refusal as refusal:
            raise RemoteProtocolError(refusal.code, refusal.detail, path=refusal.path) from None

    @classmethod
    def _from_payload(cls, payload: Mapping[str, Any], digest: str | None) -> MessageEvent:
        raw_type = payload.get("type")
        try:
            message_type = MessageType(raw_type if isinstance(raw_type, str) else "")
        except ValueError:
            raise _Refusal(
                ErrorCode.UNKNOWN_MESSAGE_TYPE, f"unknown message type {raw_type!r}", "/type"
            ) from None

        def text(name: str) -> str:
            value = payload.get(name)
            if not isinstance(value, str) or not value:
                raise _Refusal(ErrorCode.SCHEMA_INVALID, f"/{name} must be a string", f"/{name}")
            return value

        audience = payload.get("to")
        if (
            not isinstance(audience, Sequence)
            or isinstance(audience, str)
            or not audience
            or not all(isinstance(party, str) for party in audience)
        ):
            raise _Refusal(ErrorCode.SCHEMA_INVALID, "/to must be a list of party ids", "/to")
        body = payload.get("body")
        if not isinstance(body, Mapping):
            raise _Refusal(ErrorCode.SCHEMA_INVALID, "/body must be an object", "/body")
        parent = payload.get("parent")
        return cls(
            type=message_type,
            id=text("id"),
            thread=text("thread"),
            sender=text("from"),
            to=tuple(audience),
            body=_freeze(body),
            created=_parse_time(payload.get("created"), "/created"),
            expires=_parse_time(payload.get("expires"), "/expires"),
            parent=parent if isinstance(parent, str) else None,
            digest=digest,
        )


#: What :meth:`Relationship.send` and :meth:`Relationship.receive` accept.
Message: TypeAlias = MessageEvent | Mapping[str, Any] | SupportsModelDump

# ---------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------


class OfferStatus(StrEnum):
    """Where an offer stands (spec §7.4)."""

    OPEN = "open"
    SUPERSEDED = "superseded"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    #: Another offer was accepted, or the negotiation closed or the relationship
    #: was exited: the offer can no longer be accepted (``offer-closed``).
    LAPSED = "lapsed"


_CLOSED_STATUSES = frozenset({OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.LAPSED})


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """One offer in the ledger."""

    id: str
    sender: Role
    basis: str
    valid_until: datetime
    status: OfferStatus = OfferStatus.OPEN
    digest: str | None = None
    supersedes: str | None = None
    topic: str | None = None
    requires_approval: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for snapshots."""
        return {
            "id": self.id,
            "sender": self.sender.value,
            "basis": self.basis,
            "validUntil": _format_time(self.valid_until),
            "status": self.status.value,
            "digest": self.digest,
            "supersedes": self.supersedes,
            "topic": self.topic,
            "requiresApproval": self.requires_approval,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OfferRecord:
        """Inverse of :meth:`to_json`. Raises KeyError/ValueError when malformed."""
        return cls(
            id=str(data["id"]),
            sender=Role(data["sender"]),
            basis=str(data["basis"]),
            valid_until=_restore_time(data["validUntil"]),
            status=OfferStatus(data["status"]),
            digest=_optional_str(data.get("digest")),
            supersedes=_optional_str(data.get("supersedes")),
            topic=_optional_str(data.get("topic")),
            requires_approval=bool(data.get("requiresApproval", False)),
        )


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A message that a later message answers: a terms assertion, a service
    notice, a support request. ``open`` matters for support requests only."""

    id: str
    type: MessageType
    sender: Role
    open: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for snapshots."""
        return {
            "id": self.id,
            "type": self.type.value,
            "sender": self.sender.value,
            "open": self.open,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestRecord:
        """Inverse of :meth:`to_json`. Raises KeyError/ValueError when malformed."""
        return cls(
            str(data["id"]), MessageType(data["type"]), Role(data["sender"]), bool(data["open"])
        )


@dataclass(frozen=True, slots=True)
class ExitRecord:
    """The exit notice in force, with the individual's re-engagement preferences."""

    notice_id: str
    sender: Role
    reason: str
    reengagement_allowed: bool = False
    topics: tuple[str, ...] | None = None
    until: datetime | None = None
    channel: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for snapshots."""
        return {
            "noticeId": self.notice_id,
            "sender": self.sender.value,
            "reason": self.reason,
            "reengagementAllowed": self.reengagement_allowed,
            "topics": list(self.topics) if self.topics is not None else None,
            "until": _format_time(self.until) if self.until is not None else None,
            "channel": self.channel,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExitRecord:
        """Inverse of :meth:`to_json`. Raises KeyError/ValueError when malformed."""
        topics = data.get("topics")
        until = data.get("until")
        return cls(
            notice_id=str(data["noticeId"]),
            sender=Role(data["sender"]),
            reason=str(data["reason"]),
            reengagement_allowed=bool(data["reengagementAllowed"]),
            topics=tuple(str(t) for t in topics) if topics is not None else None,
            until=_restore_time(until) if until is not None else None,
            channel=_optional_str(data.get("channel")),
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
            return f"re-engagement was allowed only until {_format_time(self.until)}"
        if self.topics is not None and subject not in self.topics:
            return f"topic {subject!r} is not among the allowed topics {list(self.topics)}"
        return None


def _restore_time(value: object) -> datetime:
    try:
        return _parse_time(value, "snapshot")
    except _Refusal as refusal:
        raise ValueError(refusal.detail) from None


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Direction(StrEnum):
    """Whether a message in the history was sent or received by our side."""

    SENT = "sent"
    RECEIVED = "received"


class HistoryEntry(NamedTuple):
    """One processed message: kept across exits and re-engagements (spec §7.5)."""

    direction: Direction
    type: MessageType
    id: str
    from_state: RelationshipState
    to_state: RelationshipState


@dataclass(slots=True)
class _Book:
    """The mutable part of a relationship, copied before every transition so
    that a refusal leaves the original untouched (atomicity)."""

    offers: dict[str, OfferRecord] = field(default_factory=dict)
    requests: dict[str, RequestRecord] = field(default_factory=dict)
    exit: ExitRecord | None = None
    accepted_offer: str | None = None

    def copy(self) -> _Book:
        # Records are frozen, so copying the dicts is a full copy.
        return _Book(dict(self.offers), dict(self.requests), self.exit, self.accepted_offer)


# ---------------------------------------------------------------------------------------------
# Body access for guards
# ---------------------------------------------------------------------------------------------


def _member(body: Mapping[str, Any], *names: str) -> Any:
    value: Any = body
    for name in names:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _required_text(body: Mapping[str, Any], *names: str) -> str:
    value = _member(body, *names)
    path = "/body/" + "/".join(names)
    if not isinstance(value, str) or not value:
        raise _Refusal(ErrorCode.SCHEMA_INVALID, f"{path} is required", path)
    return value


def _optional_text(body: Mapping[str, Any], *names: str) -> str | None:
    value = _member(body, *names)
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------------------------------------
# Guards: one per message type that needs one. Each works on a draft book and
# returns the target state (the row's, or its ``otherwise``).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Move:
    event: MessageEvent
    sender: Role
    row: TransitionRow
    now: datetime


def _offer_for_reference(
    book: _Book, offer_id: str, path: str, *, from_role: Role | None
) -> OfferRecord:
    """The open, live offer ``offer_id`` refers to (spec §7.4), or a refusal."""
    record = book.offers.get(offer_id)
    if record is None or (from_role is not None and record.sender is not from_role):
        whose = f" from the {from_role.value}" if from_role is not None else ""
        raise _Refusal(ErrorCode.UNKNOWN_OFFER, f"no offer{whose} has id {offer_id}", path)
    if record.status in _CLOSED_STATUSES:
        raise _Refusal(ErrorCode.OFFER_CLOSED, f"offer {offer_id} is {record.status.value}", path)
    if record.status is OfferStatus.SUPERSEDED:
        raise _Refusal(ErrorCode.OFFER_SUPERSEDED, f"offer {offer_id} was superseded", path)
    if record.status is OfferStatus.EXPIRED:
        raise _Refusal(
            ErrorCode.OFFER_EXPIRED,
            f"offer {offer_id} expired at {_format_time(record.valid_until)}",
            path,
        )
    return record


def _lapse_open_offers(book: _Book, *, except_id: str | None = None) -> None:
    for offer_id, record in list(book.offers.items()):
        if record.status is OfferStatus.OPEN and offer_id != except_id:
            book.offers[offer_id] = replace(record, status=OfferStatus.LAPSED)


def _check_reengagement(book: _Book, subject: str | None, what: str, now: datetime) -> None:
    reason = "no exit record" if book.exit is None else book.exit.permits(subject, now)
    if reason is not None:
        raise _Refusal(ErrorCode.REENGAGEMENT_NOT_PERMITTED, f"{what} after the exit: {reason}")


def _guard_intentcast(book: _Book, move: _Move) -> RelationshipState:
    # Re-engagement (spec §7.5): the exit's preferences no longer apply once
    # she has started again; the history is kept by the relationship.
    if move.row.state is RelationshipState.EXITED:
        book.exit = None
    return move.row.target


def _guard_offer(book: _Book, move: _Move) -> RelationshipState:
    event, body = move.event, move.event.body
    basis = _required_text(body, "basis")
    if basis not in {"indicative", "binding", "counter"}:
        raise _Refusal(ErrorCode.SCHEMA_INVALID, f"unknown basis {basis!r}", "/body/basis")
    supersedes = _optional_text(body, "supersedes")
    topic = _optional_text(body, "topic")
    # spec §6.3: only the individual counters; a counter always names what it counters.
    if move.sender is Role.BUYER:
        if basis != "counter":
            raise _Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                "the individual's offer is a counter-offer (basis counter)",
                "/body/basis",
            )
        if supersedes is None:
            raise _Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                "a counter-offer names the offer it counters in supersedes",
                "/body/supersedes",
            )
    elif basis == "counter":
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "basis counter is the individual's; a vendor revises with a new offer that supersedes",
            "/body/basis",
        )
    state = move.row.state
    if move.sender is Role.VENDOR and state in {
        RelationshipState.SERVICING,
        RelationshipState.DEVELOPMENT,
        RelationshipState.EXITED,
    }:
        if topic is None:
            raise _Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                f"an offer in {state.value} is a development offer and names its topic",
                "/body/topic",
            )
        if state is RelationshipState.EXITED:
            _check_reengagement(book, topic, "an offer", move.now)
    if event.id in book.offers:
        raise _Refusal(ErrorCode.ILLEGAL_TRANSITION, f"offer {event.id} is already known", "/id")
    if supersedes is not None:
        old = _offer_for_reference(book, supersedes, "/body/supersedes", from_role=None)
        book.offers[supersedes] = replace(old, status=OfferStatus.SUPERSEDED)
    conditions = _member(body, "conditions")
    requires_approval = isinstance(conditions, Sequence) and any(
        isinstance(c, Mapping) and c.get("kind") == "approval-required" for c in conditions
    )
    valid_until = _parse_time(_member(body, "validUntil"), "/body/validUntil")
    book.offers[event.id] = OfferRecord(
        id=event.id,
        sender=move.sender,
        basis=basis,
        valid_until=valid_until,
        status=OfferStatus.OPEN if valid_until >= move.now else OfferStatus.EXPIRED,
        digest=event.digest,
        supersedes=supersedes,
        topic=topic,
        requires_approval=requires_approval,
    )
    return move.row.target


def _guard_acceptance(book: _Book, move: _Move) -> RelationshipState:
    body = move.event.body
    offer_id = _required_text(body, "offer", "id")
    record = _offer_for_reference(book, offer_id, "/body/offer/id", from_role=move.sender.peer)
    digest = _optional_text(body, "offer", "digest")
    if record.digest is not None and digest is not None and digest != record.digest:
        # The individual would bind bytes other than those of the offer (spec §8.5).
        raise _Refusal(
            ErrorCode.OFFER_CLOSED,
            f"the digest does not match offer {offer_id} as sent",
            "/body/offer/digest",
        )
    if record.basis == "indicative":
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"offer {offer_id} is indicative: it is answered by an RFP, not accepted",
            "/body/offer/id",
        )
    approvals = _member(body, "approvals")
    if record.requires_approval and not (
        isinstance(approvals, Sequence) and not isinstance(approvals, str) and approvals
    ):
        # spec §6.4, §10.2: verifying the approval token is the agent's job.
        raise _Refusal(
            ErrorCode.APPROVAL_MISSING,
            f"offer {offer_id} requires a co-decision-maker's approval",
            "/body/approvals",
        )
    book.offers[offer_id] = replace(record, status=OfferStatus.ACCEPTED)
    # One deal per negotiation: every other open offer lapses.
    _lapse_open_offers(book, except_id=offer_id)
    book.accepted_offer = offer_id
    return move.row.target


def _guard_decline(book: _Book, move: _Move) -> RelationshipState:
    offers = _member(move.event.body, "offers")
    if not isinstance(offers, Sequence) or isinstance(offers, str) or not offers:
        raise _Refusal(ErrorCode.SCHEMA_INVALID, "/body/offers is required", "/body/offers")
    peer = move.sender.peer
    for index, offer_id in enumerate(offers):
        path = f"/body/offers/{index}"
        record = book.offers.get(offer_id) if isinstance(offer_id, str) else None
        if record is None or record.sender is not peer:
            raise _Refusal(
                ErrorCode.UNKNOWN_OFFER, f"no offer from the {peer.value}: {offer_id}", path
            )
        if record.status in _CLOSED_STATUSES:
            raise _Refusal(
                ErrorCode.OFFER_CLOSED, f"offer {offer_id} is {record.status.value}", path
            )
        # Declining a superseded or expired offer asks nothing of anyone: allowed.
        if record.status is OfferStatus.OPEN or record.status is OfferStatus.EXPIRED:
            book.offers[offer_id] = replace(record, status=OfferStatus.DECLINED)
    row = move.row
    if row.otherwise is not None:
        live = [
            r for r in book.offers.values() if r.sender is peer and r.status is OfferStatus.OPEN
        ]
        if live:
            return row.otherwise
        _lapse_open_offers(book)
    return row.target


def _guard_deal(book: _Book, move: _Move) -> RelationshipState:
    offer_id = _required_text(move.event.body, "deal", "offer", "id")
    if offer_id != book.accepted_offer:
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"the deal confirms offer {offer_id}, but the accepted offer is {book.accepted_offer}",
            "/body/deal/offer/id",
        )
    return move.row.target


def _record_request(book: _Book, move: _Move) -> None:
    book.requests[move.event.id] = RequestRecord(move.event.id, move.event.type, move.sender)


def _answered(book: _Book, move: _Move, member: str, kind: MessageType) -> RequestRecord:
    """The earlier message a reply answers (by ``body.<member>.id``), or a refusal."""
    answered_id = _required_text(move.event.body, member, "id")
    record = book.requests.get(answered_id)
    if record is None or record.type is not kind or record.sender is not move.sender.peer:
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"{move.event.type.value} answers no {kind.value} of this relationship: {answered_id}",
            f"/body/{member}/id",
        )
    return record


def _guard_terms_assertion(book: _Book, move: _Move) -> RelationshipState:
    _record_request(book, move)
    return move.row.target


def _guard_terms_response(book: _Book, move: _Move) -> RelationshipState:
    _answered(book, move, "assertion", MessageType.TERMS_ASSERTION)
    return move.row.target


def _guard_service_notice(book: _Book, move: _Move) -> RelationshipState:
    row, body = move.row, move.event.body
    if row.state is RelationshipState.EXITED:
        category = _optional_text(body, "category")
        _check_reengagement(book, category, "a service notice", move.now)
    _record_request(book, move)
    if row.otherwise is not None and _optional_text(body, "kind") == "programme-offer":
        return row.otherwise
    return row.target


def _guard_service_response(book: _Book, move: _Move) -> RelationshipState:
    _answered(book, move, "notice", MessageType.SERVICE_NOTICE)
    return move.row.target


def _guard_support_request(book: _Book, move: _Move) -> RelationshipState:
    _record_request(book, move)
    return move.row.target


def _guard_support_resolution(book: _Book, move: _Move) -> RelationshipState:
    request = _answered(book, move, "request", MessageType.SUPPORT_REQUEST)
    if not request.open:
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"support request {request.id} is already resolved",
            "/body/request/id",
        )
    if _required_text(move.event.body, "status") == "resolved":
        book.requests[request.id] = replace(request, open=False)
    still_open = any(
        r.open for r in book.requests.values() if r.type is MessageType.SUPPORT_REQUEST
    )
    row = move.row
    if still_open and row.otherwise is not None:
        return row.otherwise
    return row.target


def _guard_exit_notice(book: _Book, move: _Move) -> RelationshipState:
    body = move.event.body
    reason = _required_text(body, "reason")
    if move.sender is Role.VENDOR and reason != "vendor-leaving-market":
        # spec §7.5: the relationship is the individual's to end; a vendor only
        # exits when it leaves the market.
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "a vendor exits only with reason vendor-leaving-market",
            "/body/reason",
        )
    preferences = _member(body, "reengagement")
    preferences = preferences if isinstance(preferences, Mapping) else {}
    topics = preferences.get("topics")
    until = preferences.get("until")
    book.exit = ExitRecord(
        notice_id=move.event.id,
        sender=move.sender,
        reason=reason,
        reengagement_allowed=preferences.get("allowed") is True,
        topics=(
            tuple(str(t) for t in topics)
            if isinstance(topics, Sequence) and not isinstance(topics, str)
            else None
        ),
        until=_parse_time(until, "/body/reengagement/until") if until is not None else None,
        channel=_optional_str(preferences.get("channel")),
    )
    return move.row.target


def _guard_exit_acknowledgement(book: _Book, move: _Move) -> RelationshipState:
    notice_id = _required_text(move.event.body, "notice", "id")
    exit_record = book.exit
    if exit_record is None or exit_record.sender is move.sender:
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            "only the other party acknowledges an exit notice",
            "/from",
        )
    if notice_id != exit_record.notice_id:
        raise _Refusal(
            ErrorCode.ILLEGAL_TRANSITION,
            f"the acknowledgement names {notice_id}, not the exit notice {exit_record.notice_id}",
            "/body/notice/id",
        )
    # The exit voids every offer and open request; the history alone is kept,
    # and a re-engagement starts from an empty ledger (spec §7.5).
    book.offers.clear()
    book.requests.clear()
    book.accepted_offer = None
    return move.row.target


_GUARDS: Final[Mapping[MessageType, Callable[[_Book, _Move], RelationshipState]]] = (
    MappingProxyType(
        {
            MessageType.PERSONAL_RFI: _guard_intentcast,
            MessageType.PERSONAL_RFP: _guard_intentcast,
            MessageType.OFFER: _guard_offer,
            MessageType.OFFER_ACCEPTANCE: _guard_acceptance,
            MessageType.OFFER_DECLINE: _guard_decline,
            MessageType.DEAL_CONFIRMATION: _guard_deal,
            MessageType.TERMS_ASSERTION: _guard_terms_assertion,
            MessageType.TERMS_RESPONSE: _guard_terms_response,
            MessageType.SERVICE_NOTICE: _guard_service_notice,
            MessageType.SERVICE_RESPONSE: _guard_service_response,
            MessageType.SUPPORT_REQUEST: _guard_support_request,
            MessageType.SUPPORT_RESOLUTION: _guard_support_resolution,
            MessageType.EXIT_NOTICE: _guard_exit_notice,
            MessageType.EXIT_ACKNOWLEDGEMENT: _guard_exit_acknowledgement,
        }
    )
)
assert set(_GUARDS) == {row.message for row in TRANSITION_ROWS}, "every table type has a guard"


def _diagnose_closed_offer(book: _Book, event: MessageEvent, sender: Role) -> None:
    """Name the precise fault of an acceptance that no row allows.

    A second acceptance of an offer (the state has moved on to TRANSACTION)
    is refused as ``offer-closed`` rather than ``illegal-transition``: the
    offer's status, not the state, is what the sender got wrong (spec §7.4).
    """
    if event.type is not MessageType.OFFER_ACCEPTANCE:
        return
    offer_id = _optional_text(event.body, "offer", "id")
    record = book.offers.get(offer_id) if offer_id is not None else None
    if record is None or record.sender is not sender.peer:
        return
    if record.status in _CLOSED_STATUSES:
        raise _Refusal(
            ErrorCode.OFFER_CLOSED, f"offer {offer_id} is {record.status.value}", "/body/offer/id"
        )
    if record.status is OfferStatus.SUPERSEDED:
        raise _Refusal(
            ErrorCode.OFFER_SUPERSEDED, f"offer {offer_id} was superseded", "/body/offer/id"
        )


def _expire_offers(book: _Book, now: datetime) -> None:
    """Mark open offers past their validUntil as expired (spec §7.4)."""
    for offer_id, record in list(book.offers.items()):
        if record.status is OfferStatus.OPEN and now > record.valid_until:
            book.offers[offer_id] = replace(record, status=OfferStatus.EXPIRED)


# ---------------------------------------------------------------------------------------------
# The relationship
# ---------------------------------------------------------------------------------------------

SNAPSHOT_FORMAT: Final = "vrm-relationship/1"


class Relationship:
    """One individual's relationship with one counterparty, from one side (spec §7).

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
        self._state = RelationshipState.SEARCH
        self._book = _Book()
        self._history: list[HistoryEntry] = []

    def __repr__(self) -> str:
        return (
            f"Relationship(our_role={self.our_role.value!r}, our_id={self.our_id!r}, "
            f"peer_id={self.peer_id!r}, state={self._state.value!r})"
        )

    # -- read-only views -------------------------------------------------------------------------

    @property
    def state(self) -> RelationshipState:
        """The current state."""
        return self._state

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        """Every message processed, oldest first; kept across exits."""
        return tuple(self._history)

    @property
    def offers(self) -> Mapping[str, OfferRecord]:
        """The offers ledger: offer id -> record (read-only view)."""
        return MappingProxyType(self._book.offers)

    @property
    def requests(self) -> Mapping[str, RequestRecord]:
        """Terms assertions, service notices and support requests awaiting or given answers."""
        return MappingProxyType(self._book.requests)

    @property
    def exit_record(self) -> ExitRecord | None:
        """The exit notice in force (EXITING, EXITED), with re-engagement preferences."""
        return self._book.exit

    @property
    def accepted_offer(self) -> str | None:
        """The id of the offer accepted in the current transaction, if any."""
        return self._book.accepted_offer

    def live_offers(self, now: datetime) -> tuple[OfferRecord, ...]:
        """Open offers not past their ``validUntil`` at ``now``. Never raises."""
        return tuple(
            record
            for record in self._book.offers.values()
            if record.status is OfferStatus.OPEN and now <= record.valid_until
        )

    def allowed_inputs(self, role: Role) -> frozenset[MessageType]:
        """The message types ``role`` may send in the current state (see :func:`allowed_inputs`)."""
        return allowed_inputs(self._state, role)

    # -- transitions -----------------------------------------------------------------------------

    def send(
        self, message: Message, *, now: datetime, digest: str | None = None
    ) -> RelationshipState:
        """Check and apply a message our side is about to send; return the new state.

        ``digest`` is the message digest of the signed token, when known: it is
        recorded for offers so that an acceptance binding other bytes is refused.

        Raises:
            LocalProtocolError: the message would break the protocol
                (``not-a-participant``, ``illegal-transition``,
                ``relationship-exited``, ``reengagement-not-permitted``,
                ``unknown-offer``, ``offer-expired``, ``offer-superseded``,
                ``offer-closed``, ``approval-missing``, ``schema-invalid``,
                ``unknown-message-type``). Nothing changed.
            ValueError: ``now`` is naive.
            TypeError: ``message`` is none of the accepted forms.
        """
        return self._process(Direction.SENT, message, now, digest, LocalProtocolError)

    def receive(
        self, message: Message, *, now: datetime, digest: str | None = None
    ) -> RelationshipState:
        """Check and apply a message received from the peer; return the new state.

        Raises:
            RemoteProtocolError: the peer broke the protocol (the codes listed
                under :meth:`send`). Nothing changed.
            ValueError: ``now`` is naive.
            TypeError: ``message`` is none of the accepted forms.
        """
        return self._process(Direction.RECEIVED, message, now, digest, RemoteProtocolError)

    def _process(
        self,
        direction: Direction,
        message: Message,
        now: datetime,
        digest: str | None,
        error: type[ProtocolError],
    ) -> RelationshipState:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        try:
            event = _coerce(message, digest)
            target, book = self._decide(direction, event, now)
        except _Refusal as refusal:
            raise error(refusal.code, refusal.detail, path=refusal.path) from None
        # Commit: nothing above touched self, so a refusal changed nothing.
        before = self._state
        self._book = book
        self._state = target
        self._history.append(HistoryEntry(direction, event.type, event.id, before, target))
        return target

    def _decide(
        self, direction: Direction, event: MessageEvent, now: datetime
    ) -> tuple[RelationshipState, _Book]:
        """The target state and the new book, computed on a copy (never on self)."""
        sender_role = self.our_role if direction is Direction.SENT else self.our_role.peer
        sender_id, receiver_id = (
            (self.our_id, self.peer_id)
            if direction is Direction.SENT
            else (self.peer_id, self.our_id)
        )
        # spec §7.3: the sender must be a party to this relationship, writing to the other.
        if event.sender != sender_id:
            raise _Refusal(
                ErrorCode.NOT_A_PARTICIPANT,
                f"{event.sender} is not the {sender_role.value} of this relationship",
                "/from",
            )
        if receiver_id not in event.to:
            raise _Refusal(
                ErrorCode.NOT_A_PARTICIPANT,
                f"the message is not addressed to {receiver_id}",
                "/to",
            )
        if event.type in ALWAYS_ALLOWED:
            return self._state, self._book
        row = _ROWS_BY_KEY.get((self._state, sender_role, event.type))
        if row is None:
            if self._state is RelationshipState.EXITED:
                raise _Refusal(
                    ErrorCode.RELATIONSHIP_EXITED,
                    f"the relationship was exited; a {sender_role.value} may not send "
                    f"{event.type.value} (only the individual re-engages)",
                )
            _diagnose_closed_offer(self._book, event, sender_role)
            raise _Refusal(
                ErrorCode.ILLEGAL_TRANSITION,
                f"a {sender_role.value} may not send {event.type.value} in state "
                f"{self._state.value}",
                "/type",
            )
        book = self._book.copy()
        _expire_offers(book, now)
        target: RelationshipState = _GUARDS[event.type](book, _Move(event, sender_role, row, now))
        return target, book

    # -- persistence -----------------------------------------------------------------------------

    def copy(self) -> Relationship:
        """An independent copy (e.g. to try a message without committing)."""
        return Relationship.restore(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        """The whole relationship as JSON-safe data, for an agent's durable store."""
        book = self._book
        return {
            "format": SNAPSHOT_FORMAT,
            "ourRole": self.our_role.value,
            "ourId": self.our_id,
            "peerId": self.peer_id,
            "state": self._state.value,
            "offers": [record.to_json() for record in book.offers.values()],
            "requests": [record.to_json() for record in book.requests.values()],
            "exit": book.exit.to_json() if book.exit is not None else None,
            "acceptedOffer": book.accepted_offer,
            "history": [
                {
                    "direction": entry.direction.value,
                    "type": entry.type.value,
                    "id": entry.id,
                    "from": entry.from_state.value,
                    "to": entry.to_state.value,
                }
                for entry in self._history
            ],
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
            relationship._state = RelationshipState(data["state"])
            offers = [OfferRecord.from_json(item) for item in data["offers"]]
            requests = [RequestRecord.from_json(item) for item in data["requests"]]
            exit_data = data.get("exit")
            relationship._book = _Book(
                offers={record.id: record for record in offers},
                requests={record.id: record for record in requests},
                exit=ExitRecord.from_json(exit_data) if exit_data is not None else None,
                accepted_offer=_optional_str(data.get("acceptedOffer")),
            )
            relationship._history = [
                HistoryEntry(
                    Direction(item["direction"]),
                    MessageType(item["type"]),
                    str(item["id"]),
                    RelationshipState(item["from"]),
                    RelationshipState(item["to"]),
                )
                for item in data["history"]
            ]
        except (KeyError, TypeError, ValueError) as failure:
            raise ValueError(f"malformed relationship snapshot: {failure}") from None
        return relationship


def _coerce(message: Message, digest: str | None) -> MessageEvent:
    """Turn any accepted message form into a :class:`MessageEvent`.

    Raises:
        _Refusal: the payload lacks what the machine needs.
        TypeError: ``message`` is none of the accepted forms.
    """
    if isinstance(message, MessageEvent):
        if digest is not None and message.digest is None:
            return replace(message, digest=digest)
        return message
    if isinstance(message, Mapping):
        payload: Mapping[str, Any] = message
    elif isinstance(message, SupportsModelDump):
        payload = message.model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        raise TypeError(f"cannot read a message from {type(message).__name__}")
    return MessageEvent._from_payload(payload, digest)
