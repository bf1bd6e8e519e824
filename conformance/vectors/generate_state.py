"""Generate the state-stage test vectors: ``conformance/vectors/state/*.json``
(spec §7, §8.6 stage 14, §14.2).

Run ``python -m conformance.vectors.generate_state`` from the repository root.
The output is deterministic (fixed keys, ids, instants and stand-in digests);
``tests/library/test_state_vectors.py`` fails when the committed files differ
from what this script makes.

Each vector is "ledger + message -> expected": the receiving party's ledger
(its relationship core, and the offer and request records the relationship
holds), one message it receives from the other party (a payload that passed
every earlier stage), the instant it is judged at and the message's digest;
and what the receiver concludes: the state the relationship moves to, or the
code of the refusal (the ledger unchanged). The vectors are made by playing a
relationship on both sides with :class:`vrm_protocol.state_machine.Relationship`
up to the state a vector needs, then taking the receiver's snapshot.

There is one vector for every row of the transition table (the move and its
next state), one for every guard rule of every message type (spec §8.6's
table), and one for each check of the state stage's first steps (participants,
messages that are not moves, a message no row allows, re-engagement).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vrm_protocol.canonical import canonical_json
from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import SigningKey, did_jwk_identifier
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.state_machine import TRANSITION_ROWS, Relationship, RelationshipState
from vrm_protocol.vocabulary import PROTOCOL_VERSION, MessageType, Role

__all__ = ["STATE_DIR", "build_vectors", "main", "write_vectors"]

STATE_DIR: Final = Path(__file__).resolve().parent / "state"

S = RelationshipState
M = MessageType
B = Role.BUYER
V = Role.VENDOR

VENDOR_ID: Final = "https://dealer.example"
OTHER_VENDOR: Final = "https://other-dealer.example"
T0: Final = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pseudonym(label: str) -> str:
    """A pseudonym of a key derived from a public label (the vectors sign nothing)."""
    seed = hashlib.sha256(b"vrm-protocol state vector key:" + label.encode()).digest()
    public = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    key = SigningKey.from_private_jwk(
        {"kty": "OKP", "crv": "Ed25519", "x": _b64(public), "d": _b64(seed)}
    )
    return did_jwk_identifier(key.public())


BUYER_ID: Final = _pseudonym("buyer")
STRANGER_ID: Final = _pseudonym("stranger")


def _stamp(moment: datetime) -> str:
    return format_timestamp(moment)


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


def _digest_of(payload: Mapping[str, Any]) -> str:
    """A stand-in for the digest of the signed token (the vectors carry no tokens):
    unique per payload, in the digest's syntax."""
    return "sha-256:" + _b64(hashlib.sha256(canonical_json(dict(payload))).digest())


#: A digest no message of a vector has.
WRONG_DIGEST: Final = "sha-256:" + "Z" * 43
#: What body builders write where the digest of the named message belongs.
_BIND: Final = "sha-256:" + "0" * 43


@dataclass
class _Play:
    """One relationship played on both sides, with deterministic ids and digests."""

    label: str
    now: datetime = T0
    counter: int = 0
    thread: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    buyer: Relationship = field(init=False)
    vendor: Relationship = field(init=False)

    def __post_init__(self) -> None:
        self.buyer = Relationship(B, BUYER_ID, VENDOR_ID)
        self.vendor = Relationship(V, VENDOR_ID, BUYER_ID)

    def new_id(self) -> str:
        self.counter += 1
        raw = hashlib.sha256(f"{self.label}/{self.counter}".encode()).hexdigest()
        return f"urn:uuid:{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-8{raw[17:20]}-{raw[20:32]}"

    def side(self, role: Role) -> Relationship:
        return self.buyer if role is B else self.vendor

    def bind(self, value: Any) -> Any:
        if isinstance(value, dict):
            bound = {key: self.bind(member) for key, member in value.items()}
            if bound.get("digest") == _BIND and bound.get("id") in self.digests:
                bound["digest"] = self.digests[bound["id"]]
            return bound
        if isinstance(value, list):
            return [self.bind(member) for member in value]
        return value

    def compose(
        self, sender: Role, message_type: MessageType, body: dict[str, Any]
    ) -> dict[str, Any]:
        message_id = self.new_id()
        if self.thread is None or message_type is M.PERSONAL_RFI:
            self.thread = message_id
        payload: dict[str, Any] = {
            "vrm": PROTOCOL_VERSION,
            "type": message_type.value,
            "id": message_id,
            "thread": self.thread,
            "from": BUYER_ID if sender is B else VENDOR_ID,
            "to": [VENDOR_ID if sender is B else BUYER_ID],
            "created": _stamp(self.now),
            "expires": _stamp(self.now + timedelta(days=1)),
            "body": self.bind(body),
        }
        self.digests[message_id] = _digest_of(payload)
        return payload

    def deliver(self, sender: Role, payload: dict[str, Any]) -> None:
        digest = self.digests[payload["id"]]
        self.side(sender).send(payload, now=self.now, digest=digest)
        self.side(sender.peer).receive(payload, now=self.now, digest=digest)

    def step(self, sender: Role, message_type: MessageType, body: dict[str, Any]) -> str:
        payload = self.compose(sender, message_type, body)
        self.deliver(sender, payload)
        return str(payload["id"])

    def latest(self, message_type: MessageType, *, open_only: bool = False) -> str | None:
        found = [
            r.id
            for r in self.buyer.requests.values()
            if r.type is message_type and (r.open or not open_only)
        ]
        return found[-1] if found else None

    def live_vendor_offers(self) -> list[str]:
        return [r.id for r in self.buyer.live_offers(self.now) if r.sender is V]


# -- bodies -----------------------------------------------------------------------------------


def _terms_ref() -> dict[str, str]:
    return {
        "id": "dealer-terms",
        "version": "1.0",
        "url": f"{VENDOR_ID}/vrm/terms/dealer-terms/1.0",
        "digest": "sha-256:" + "T" * 43,
    }


def _rfi(now: datetime) -> dict[str, Any]:
    return {
        "intent": {"category": "vehicles.cars", "summary": "A family hybrid"},
        "budget": {"max": _money("32000")},
        "responseBy": _stamp(now + timedelta(days=2)),
    }


def _rfp(now: datetime) -> dict[str, Any]:
    return {
        "requirements": {"item": {"category": "vehicles.cars", "description": "Hybrid"}},
        "budget": {"max": _money("32000")},
        "responseBy": _stamp(now + timedelta(days=2)),
    }


def _offer(
    now: datetime,
    *,
    basis: str = "binding",
    supersedes: str | None = None,
    topic: str | None = None,
    approval: bool = False,
    attested_plan: bool = False,
    valid_for: timedelta = timedelta(days=7),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "basis": basis,
        "validUntil": _stamp(now + valid_for),
        "items": [
            {"sku": "PRIUS", "description": "Prius", "quantity": 1, "unitPrice": _money("28500")}
        ],
        "price": {"subtotal": _money("28500"), "total": _money("28500")},
        "terms": _terms_ref(),
    }
    if supersedes is not None:
        body["supersedes"] = {"id": supersedes, "digest": _BIND}
    if topic is not None:
        body["topic"] = topic
    if approval:
        body["conditions"] = [{"kind": "approval-required", "description": "Her partner approves"}]
    if attested_plan:
        body["financing"] = [
            {
                "plan": "hp-48",
                "apr": "4.9",
                "termMonths": 48,
                "monthlyPayment": _money("600"),
                "totalPayable": _money("28800"),
                "requiresAttestation": True,
            }
        ]
    return body


def _acceptance(offer: str, *, digest: str = _BIND, plan: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"offer": {"id": offer, "digest": digest}}
    if plan is not None:
        body["payment"] = {"method": "finance", "financingPlan": plan}
    return body


def _terms_assertion(now: datetime) -> dict[str, Any]:
    return {
        "terms": _terms_ref(),
        "party": {"id": VENDOR_ID, "name": "Dealer", "role": "vendor"},
        "requests": [
            {
                "item": "contact.email",
                "purposes": ["servicing"],
                "retention": {"period": "P2Y"},
                "required": False,
            }
        ],
        "commitments": {"willDo": ["service"], "willNotDo": ["sell data"]},
        "validUntil": _stamp(now + timedelta(days=30)),
    }


def _notice(kind: str = "maintenance-reminder", category: str = "maintenance") -> dict[str, Any]:
    return {"kind": kind, "category": category, "summary": f"{kind} ({category})"}


def _exit_notice(now: datetime, reason: str = "need-changed", **preferences: Any) -> dict[str, Any]:
    reengagement = {"allowed": True, "topics": ["maintenance", "recall"]} | preferences
    return {
        "reason": reason,
        "effectiveAt": _stamp(now),
        "export": {"requested": True, "mediaType": "application/json"},
        "deletion": {"requested": True},
        "reengagement": reengagement,
    }


def _exit_ack(notice: str, now: datetime, digest: str = _BIND) -> dict[str, Any]:
    return {
        "notice": {"id": notice, "digest": digest},
        "export": {"mediaType": "application/json", "data": {}, "digest": "sha-256:" + "E" * 43},
        "deletionReceipt": {"relationship": BUYER_ID, "deleted": [], "deletedAt": _stamp(now)},
    }


# -- reaching a state -------------------------------------------------------------------------


def _reach(state: RelationshipState, label: str, *, exit_by: Role = B) -> _Play:
    """A relationship brought to ``state`` by legal moves, with something in the
    ledger for every reply the state allows."""
    play = _Play(label)
    if state is S.SEARCH:
        return play
    play.step(B, M.PERSONAL_RFI, _rfi(play.now))
    if state is S.ENQUIRY:
        return play
    play.step(V, M.OFFER, _offer(play.now))
    if state is S.CLOSED:
        play.step(B, M.OFFER_DECLINE, {"offers": play.live_vendor_offers(), "reason": "price"})
        return play
    play.step(V, M.TERMS_ASSERTION, _terms_assertion(play.now))
    if state is S.NEGOTIATION:
        return play
    offer = play.live_vendor_offers()[-1]
    acceptance = play.step(B, M.OFFER_ACCEPTANCE, _acceptance(offer))
    play.step(V, M.SERVICE_NOTICE, _notice("safety-recall", "recall"))
    if state is S.TRANSACTION:
        return play
    deal = {
        "deal": {
            "id": "deal-1",
            "offer": {"id": offer, "digest": _BIND},
            "acceptance": acceptance,
            "total": _money("28500"),
        }
    }
    play.step(V, M.DEAL_CONFIRMATION, deal)
    play.step(V, M.TERMS_ASSERTION, _terms_assertion(play.now))
    if state is S.WELCOME:
        return play
    assertion = play.latest(M.TERMS_ASSERTION)
    response = {
        "assertion": {"id": assertion, "digest": _BIND},
        "decision": "accept",
        "accepted": [{"item": "contact.email", "purposes": ["servicing"]}],
        "notificationPreferences": {"allowed": ["safety", "maintenance"]},
    }
    play.step(B, M.TERMS_RESPONSE, response)
    play.step(V, M.SERVICE_NOTICE, _notice())
    if state is S.SERVICING:
        return play
    if state is S.DEVELOPMENT:
        play.step(V, M.OFFER, _offer(play.now, topic="warranty"))
        return play
    if state is S.PROBLEM:
        play.step(B, M.SUPPORT_REQUEST, _support_request())
        return play
    reason = "need-changed" if exit_by is B else "vendor-leaving-market"
    play.step(exit_by, M.EXIT_NOTICE, _exit_notice(play.now, reason))
    if state is S.EXITING:
        return play
    exit_record = play.buyer.exit_record
    assert exit_record is not None
    play.step(exit_by.peer, M.EXIT_ACKNOWLEDGEMENT, _exit_ack(exit_record.notice_id, play.now))
    if exit_by is B:
        play.step(V, M.SERVICE_NOTICE, _notice())
    return play


def _support_request() -> dict[str, Any]:
    return {"subject": "Infotainment reboots", "description": "Often", "severity": "normal"}


#: The states in which her consent change (and its receipt) is a side exchange.
ENGAGED_STATES: Final = frozenset(
    {S.NEGOTIATION, S.TRANSACTION, S.WELCOME, S.SERVICING, S.DEVELOPMENT, S.PROBLEM}
)


def _canonical(play: _Play, message_type: MessageType, sender: Role) -> dict[str, Any]:
    """A body that passes every guard where the state has a row for it."""
    from conformance.vectors import state_living, state_materials, state_myterms, state_transaction

    carried = state_transaction.canonical(play, message_type, sender)
    if carried is not None:
        return carried
    living = state_living.canonical(play, message_type, sender)
    if living is not None:
        return living
    own = state_myterms.canonical(play, message_type, sender)
    if own is not None:
        return own
    materials = state_materials.canonical(play, message_type, sender)
    if materials is not None:
        return materials
    now, state = play.now, play.buyer.state
    live = play.live_vendor_offers()
    missing = "urn:uuid:00000000-0000-4000-8000-000000000000"
    if message_type is M.PERSONAL_RFI:
        return _rfi(now)
    if message_type is M.PERSONAL_RFP:
        return _rfp(now)
    if message_type is M.OFFER:
        if sender is B:
            return _offer(now, basis="counter", supersedes=live[-1] if live else missing)
        return _offer(now, topic="maintenance")
    if message_type is M.OFFER_ACCEPTANCE:
        return _acceptance(live[-1] if live else missing)
    if message_type is M.OFFER_DECLINE:
        return {"offers": live or [missing], "reason": "price"}
    if message_type is M.DEAL_CONFIRMATION:
        return {
            "deal": {
                "id": "deal-1",
                "offer": {"id": play.buyer.accepted_offer or missing, "digest": _BIND},
                "acceptance": play.buyer.core.acceptance or missing,
                "total": _money("28500"),
            }
        }
    if message_type is M.DEAL_REFUSAL:
        return {
            "offer": {"id": play.buyer.accepted_offer or missing, "digest": _BIND},
            "acceptance": {"id": play.buyer.core.acceptance or missing, "digest": _BIND},
            "reason": "item-unavailable",
        }
    if message_type is M.TERMS_ASSERTION:
        return _terms_assertion(now)
    if message_type is M.TERMS_RESPONSE:
        return {
            "assertion": {"id": play.latest(M.TERMS_ASSERTION) or missing, "digest": _BIND},
            "decision": "refuse",
            "accepted": [],
            "notificationPreferences": {"allowed": ["safety"]},
        }
    if message_type is M.SERVICE_NOTICE:
        if state in {S.TRANSACTION, S.WELCOME}:
            return _notice("safety-recall", "recall")
        return _notice()
    if message_type is M.SERVICE_RESPONSE:
        notice = play.latest(M.SERVICE_NOTICE) or missing
        return {"notice": {"id": notice, "digest": _BIND}, "decision": "decline"}
    if message_type is M.SUPPORT_REQUEST:
        return _support_request()
    if message_type is M.SUPPORT_RESOLUTION:
        request = play.latest(M.SUPPORT_REQUEST, open_only=True) or missing
        return {
            "request": {"id": request, "digest": _BIND},
            "status": "resolved",
            "resolution": "Fixed",
        }
    if message_type is M.EXIT_NOTICE:
        return _exit_notice(now, "need-changed" if sender is B else "vendor-leaving-market")
    if message_type is M.EXIT_ACKNOWLEDGEMENT:
        exit_record = play.buyer.exit_record
        return _exit_ack(exit_record.notice_id if exit_record else missing, now)
    if message_type is M.PROBLEM_REPORT:
        return {"code": "schema-invalid", "title": "Schema invalid", "detail": "x"}
    if message_type is M.SUPPORT_ESCALATION:
        request = play.latest(M.SUPPORT_REQUEST, open_only=True) or missing
        ref = {"id": request, "digest": _BIND}
        return {
            "request": ref,
            "to": {"level": "customer-relations", "name": "Customer relations"},
            "deadline": _stamp(now + timedelta(days=14)),
            "history": [ref],
        }
    if message_type is M.QUESTION:
        return {"topic": "trim", "text": "Which trim do you mean?"}
    if message_type is M.ANSWER:
        question = play.latest(M.QUESTION, open_only=True) or missing
        return {"question": {"id": question, "digest": _BIND}, "text": "The entry trim."}
    if message_type is M.ACCESS_GRANT:
        return {
            "id": "urn:uuid:00000000-0000-4000-8000-00000000000a",
            "grantee": VENDOR_ID,
            "items": ["travel.dates"],
            "purposes": ["programme-membership"],
            "until": _stamp(now + timedelta(days=30)),
            "endpoint": "https://agent.sally.example/vrm/read/Jd8x2PqLw0s7RkT4nVb9Cg",
            "key": "k" * 43,
        }
    if message_type is M.ACCESS_REVOCATION:
        return {"grant": "urn:uuid:00000000-0000-4000-8000-00000000000a"}
    if message_type is M.CONSENT_CHANGE:
        return {"changes": [{"item": "contact.email", "action": "withdraw"}]}
    if message_type is M.CONSENT_RECEIPT:
        change = play.latest(M.CONSENT_CHANGE, open_only=True)
        if change is None and sender is V and state in ENGAGED_STATES:
            # The receipt answers her change: she makes one first (a side exchange).
            change = play.step(
                B, M.CONSENT_CHANGE, {"changes": [{"item": "contact.email", "action": "withdraw"}]}
            )
        change = change or missing
        return {
            "change": {"id": change, "digest": _BIND},
            "applied": [{"item": "contact.email", "purposes": [], "deleted": True}],
            "retained": [],
        }
    return {
        "regarding": {"id": missing, "digest": "sha-256:" + "G" * 43},
        "status": "accepted",
        "receivedAt": _stamp(now),
    }


# -- vectors ----------------------------------------------------------------------------------


def _vector(
    name: str,
    description: str,
    requirement: str,
    play: _Play,
    sender: Role,
    payload: dict[str, Any],
    *,
    digest: str | None = None,
) -> dict[str, Any]:
    """The vector of ``payload`` received by ``sender``'s peer, judged by the library."""
    receiver = play.side(sender.peer)
    snapshot = receiver.snapshot()
    message_digest = digest or play.digests[payload["id"]]
    expected: dict[str, Any]
    try:
        transition = receiver.copy().receive(payload, now=play.now, digest=message_digest)
    except ProtocolError as error:
        expected = {"valid": False, "error": error.code.value}
    else:
        expected = {"valid": True, "state": transition.state.value}
    return {
        "id": f"state-{name}",
        "description": description,
        "requirement": requirement,
        "receiver": {
            "role": snapshot["ourRole"],
            "id": snapshot["ourId"],
            "peer": snapshot["peerId"],
        },
        "ledger": {
            "core": snapshot["core"],
            "offers": snapshot["offers"],
            "requests": snapshot["requests"],
        },
        "now": _stamp(play.now),
        "message": payload,
        "digest": message_digest,
        "expected": expected,
    }


def _row_vectors() -> dict[str, dict[str, Any]]:
    vectors: dict[str, dict[str, Any]] = {}
    for row in TRANSITION_ROWS:
        exit_by = row.sender.peer if row.state is S.EXITING else B
        name = f"row-{row.state.value}-{row.sender.value}-{row.message.value}"
        play = _reach(row.state, name, exit_by=exit_by)
        if row.message is M.ANSWER:
            # An answer answers a question of the other party (spec §6.31): asked first.
            play.step(row.sender.peer, M.QUESTION, _canonical(play, M.QUESTION, row.sender.peer))
        payload = play.compose(row.sender, row.message, _canonical(play, row.message, row.sender))
        vector = _vector(
            name,
            f"In {row.state.value.upper()}, a {row.message.value} from the {row.sender.value}: "
            f"{row.why}",
            "VRM-STATE-001",
            play,
            row.sender,
            payload,
        )
        if vector["expected"] != {"valid": True, "state": row.target.value}:
            raise AssertionError(f"{name}: the canonical move does not reach its row's target")
        vectors[f"{name}.json"] = vector
    return vectors


Case = Callable[[str], tuple[_Play, Role, dict[str, Any]]]


def _case(
    state: RelationshipState,
    sender: Role,
    message_type: MessageType,
    change: Callable[[_Play, dict[str, Any]], None] | None = None,
    *,
    exit_by: Role = B,
) -> Case:
    def build(name: str) -> tuple[_Play, Role, dict[str, Any]]:
        play = _reach(state, name, exit_by=exit_by)
        body = _canonical(play, message_type, sender)
        payload = play.compose(sender, message_type, body)
        if change is not None:
            change(play, payload)
            play.digests[payload["id"]] = _digest_of(payload)
        return play, sender, payload

    return build


def _answer_case(change: Callable[[_Play, dict[str, Any]], None]) -> Case:
    """Her answer in NEGOTIATION after the vendor asked a question, then ``change``d."""

    def build(name: str) -> tuple[_Play, Role, dict[str, Any]]:
        play = _reach(S.NEGOTIATION, name)
        play.step(V, M.QUESTION, _canonical(play, M.QUESTION, V))
        payload = play.compose(B, M.ANSWER, _canonical(play, M.ANSWER, B))
        change(play, payload)
        play.digests[payload["id"]] = _digest_of(payload)
        return play, B, payload

    return build


def _deadline_at_created(play: _Play, payload: dict[str, Any]) -> None:
    payload["body"]["deadline"] = payload["created"]


def _set(path: str, value: Any) -> Callable[[_Play, dict[str, Any]], None]:
    def change(play: _Play, payload: dict[str, Any]) -> None:
        node = payload
        *parents, last = path.strip("/").split("/")
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _drop(path: str) -> Callable[[_Play, dict[str, Any]], None]:
    def change(play: _Play, payload: dict[str, Any]) -> None:
        node = payload
        *parents, last = path.strip("/").split("/")
        for part in parents:
            node = node[part]
        del node[last]

    return change


def _then(
    *changes: Callable[[_Play, dict[str, Any]], None],
) -> Callable[[_Play, dict[str, Any]], None]:
    def change(play: _Play, payload: dict[str, Any]) -> None:
        for each in changes:
            each(play, payload)

    return change


def _acceptance_of(
    offer_body: Callable[[_Play], dict[str, Any]], change: Callable[..., None] | None = None
) -> Case:
    def build(name: str) -> tuple[_Play, Role, dict[str, Any]]:
        play = _reach(S.ENQUIRY, name)
        offer = play.step(V, M.OFFER, offer_body(play))
        payload = play.compose(B, M.OFFER_ACCEPTANCE, _acceptance(offer))
        if change is not None:
            change(play, payload)
            play.digests[payload["id"]] = _digest_of(payload)
        return play, B, payload

    return build


def _after_offers(
    steps: Callable[[_Play, str], None],
    build_body: Callable[[_Play, str], dict[str, Any]],
    sender: Role,
    message_type: MessageType,
) -> Case:
    def build(name: str) -> tuple[_Play, Role, dict[str, Any]]:
        play = _reach(S.ENQUIRY, name)
        first = play.step(V, M.OFFER, _offer(play.now))
        steps(play, first)
        payload = play.compose(sender, message_type, build_body(play, first))
        return play, sender, payload

    return build


def _answer_change_wrongly(play: _Play, payload: dict[str, Any]) -> None:
    """Her consent change first; the receipt then names it with another digest."""
    change = play.step(
        B, M.CONSENT_CHANGE, {"changes": [{"item": "contact.email", "action": "withdraw"}]}
    )
    payload["body"]["change"] = {"id": change, "digest": WRONG_DIGEST}


def _guard_cases() -> dict[str, tuple[str, str, Case]]:
    """name -> (description, requirement, case): the state stage, check by check."""
    missing = "urn:uuid:00000000-0000-4000-8000-00000000abcd"
    later = timedelta(days=30)

    def supersede(play: _Play, first: str) -> None:
        play.step(V, M.OFFER, _offer(play.now, supersedes=first))

    def decline(play: _Play, first: str) -> None:
        play.step(V, M.OFFER, _offer(play.now))
        play.step(B, M.OFFER_DECLINE, {"offers": [first], "reason": "price"})

    def accept_first(play: _Play, first: str) -> None:
        play.step(B, M.OFFER_ACCEPTANCE, _acceptance(first))

    def wait(play: _Play, first: str) -> None:
        play.now += later

    def nothing(play: _Play, first: str) -> None:
        return None

    def accept(play: _Play, first: str) -> dict[str, Any]:
        return _acceptance(first)

    return {
        # participants and the table (§8.6 stage 14, steps 1-3)
        "participant-from": (
            "A message whose from is not the relationship's other party.",
            "VRM-STATE-003",
            _case(S.NEGOTIATION, V, M.OFFER, _set("/from", OTHER_VENDOR)),
        ),
        "not-a-move-problem-report": (
            "A problem report changes nothing, in any state.",
            "VRM-MSG-028",
            _case(S.WELCOME, B, M.PROBLEM_REPORT),
        ),
        "no-row": (
            "A move the table does not allow: a vendor's offer in WELCOME.",
            "VRM-STATE-001",
            _case(S.WELCOME, V, M.OFFER),
        ),
        "vendor-first": (
            "A vendor's message in SEARCH: a vendor never starts a relationship.",
            "VRM-STATE-011",
            _case(S.SEARCH, V, M.OFFER),
        ),
        "after-exit-notice": (
            "After an exit notice, a message no row allows.",
            "VRM-STATE-007",
            _case(S.EXITING, B, M.SUPPORT_REQUEST),
        ),
        "after-exit": (
            "After the exit, a message no row allows.",
            "VRM-STATE-007",
            _case(S.EXITED, V, M.TERMS_ASSERTION),
        ),
        "second-acceptance": (
            "A second acceptance of the accepted offer, in TRANSACTION.",
            "VRM-STATE-006",
            _after_offers(accept_first, accept, B, M.OFFER_ACCEPTANCE),
        ),
        "reengagement-topic": (
            "After the exit, a vendor's notice in a category her preferences do not allow.",
            "VRM-STATE-009",
            _case(
                S.EXITED,
                V,
                M.SERVICE_NOTICE,
                _then(_set("/body/kind", "other"), _set("/body/category", "promotions")),
            ),
        ),
        "reengagement-offer-without-topic": (
            "After the exit, a topic-less offer: her preferences are judged first.",
            "VRM-STATE-009",
            _case(S.EXITED, V, M.OFFER, _drop("/body/topic")),
        ),
        # offer
        "offer-buyer-not-counter": (
            "The individual's offer with basis binding.",
            "VRM-STATE-021",
            _case(S.NEGOTIATION, B, M.OFFER, _set("/body/basis", "binding")),
        ),
        "offer-counter-names-nothing": (
            "A counter-offer without supersedes.",
            "VRM-STATE-021",
            _case(S.NEGOTIATION, B, M.OFFER, _drop("/body/supersedes")),
        ),
        "offer-vendor-counter": (
            "A vendor's offer with basis counter.",
            "VRM-STATE-021",
            _case(S.NEGOTIATION, V, M.OFFER, _set("/body/basis", "counter")),
        ),
        "offer-valid-until-not-an-instant": (
            "An offer whose validUntil is 31 February.",
            "VRM-FRESH-012",
            _case(S.NEGOTIATION, V, M.OFFER, _set("/body/validUntil", "2027-02-31T10:00:00Z")),
        ),
        "offer-development-without-topic": (
            "A vendor's offer in SERVICING without a topic.",
            "VRM-MSG-037",
            _case(S.SERVICING, V, M.OFFER, _drop("/body/topic")),
        ),
        "offer-supersedes-unknown": (
            "An offer superseding an offer the relationship never saw.",
            "VRM-MSG-006",
            _case(
                S.NEGOTIATION,
                V,
                M.OFFER,
                _set("/body/supersedes", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "offer-supersedes-superseded": (
            "An offer superseding an offer already superseded.",
            "VRM-MSG-006",
            _after_offers(supersede, lambda p, first: _offer(p.now, supersedes=first), V, M.OFFER),
        ),
        "offer-supersedes-closed": (
            "An offer superseding a declined offer.",
            "VRM-MSG-006",
            _after_offers(decline, lambda p, first: _offer(p.now, supersedes=first), V, M.OFFER),
        ),
        "offer-supersedes-expired": (
            "An offer superseding an offer past its validUntil.",
            "VRM-MSG-006",
            _after_offers(wait, lambda p, first: _offer(p.now, supersedes=first), V, M.OFFER),
        ),
        "offer-supersedes-wrong-digest": (
            "An offer superseding an offer named with another digest.",
            "VRM-SIG-027",
            _after_offers(
                nothing,
                lambda p, first: (
                    _offer(p.now) | {"supersedes": {"id": first, "digest": WRONG_DIGEST}}
                ),
                V,
                M.OFFER,
            ),
        ),
        # offer-acceptance
        "acceptance-unknown-offer": (
            "An acceptance of an offer the vendor never made.",
            "VRM-STATE-004",
            _case(
                S.NEGOTIATION,
                B,
                M.OFFER_ACCEPTANCE,
                _set("/body/offer", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "acceptance-closed-offer": (
            "An acceptance of a declined offer.",
            "VRM-STATE-006",
            _after_offers(decline, accept, B, M.OFFER_ACCEPTANCE),
        ),
        "acceptance-superseded-offer": (
            "An acceptance of a superseded offer.",
            "VRM-MSG-006",
            _after_offers(supersede, accept, B, M.OFFER_ACCEPTANCE),
        ),
        "acceptance-expired-offer": (
            "An acceptance after the offer's validUntil.",
            "VRM-STATE-005",
            _after_offers(wait, accept, B, M.OFFER_ACCEPTANCE),
        ),
        "acceptance-wrong-digest": (
            "An acceptance naming the offer with another digest.",
            "VRM-MSG-010",
            _after_offers(
                nothing,
                lambda p, first: _acceptance(first, digest=WRONG_DIGEST),
                B,
                M.OFFER_ACCEPTANCE,
            ),
        ),
        "acceptance-indicative": (
            "An acceptance of an indicative offer.",
            "VRM-STATE-018",
            _acceptance_of(lambda p: _offer(p.now, basis="indicative")),
        ),
        "acceptance-approval-missing": (
            "An acceptance of an offer requiring approval, without one.",
            "VRM-MSG-011",
            _acceptance_of(lambda p: _offer(p.now, approval=True)),
        ),
        "acceptance-attestation-missing": (
            "An acceptance choosing a plan that requires an attestation, without one.",
            "VRM-ATT-010",
            _acceptance_of(
                lambda p: _offer(p.now, attested_plan=True),
                _set("/body/payment", {"method": "finance", "financingPlan": "hp-48"}),
            ),
        ),
        # offer-decline
        "decline-unknown-offer": (
            "A decline naming an offer the vendor never made.",
            "VRM-STATE-019",
            _case(S.NEGOTIATION, B, M.OFFER_DECLINE, _set("/body/offers", [missing])),
        ),
        "decline-closed-offer": (
            "A decline naming an offer already declined.",
            "VRM-STATE-019",
            _after_offers(
                decline, lambda p, first: {"offers": [first], "reason": "price"}, B, M.OFFER_DECLINE
            ),
        ),
        # deal-confirmation and deal-refusal
        "confirmation-wrong-offer": (
            "A deal confirmation naming an offer that is not the accepted one.",
            "VRM-MSG-032",
            _case(
                S.TRANSACTION,
                V,
                M.DEAL_CONFIRMATION,
                _set("/body/deal/offer", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "confirmation-wrong-acceptance": (
            "A deal confirmation naming another acceptance.",
            "VRM-MSG-032",
            _case(S.TRANSACTION, V, M.DEAL_CONFIRMATION, _set("/body/deal/acceptance", missing)),
        ),
        "refusal-wrong-digest": (
            "A deal refusal naming the accepted offer with another digest.",
            "VRM-MSG-032",
            _case(S.TRANSACTION, V, M.DEAL_REFUSAL, _set("/body/offer/digest", WRONG_DIGEST)),
        ),
        # replies
        "terms-response-answers-nothing": (
            "A terms response naming no assertion of the vendor.",
            "VRM-STATE-020",
            _case(
                S.WELCOME,
                B,
                M.TERMS_RESPONSE,
                _set("/body/assertion", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "terms-response-wrong-digest": (
            "A terms response naming the assertion with another digest.",
            "VRM-SIG-027",
            _case(S.WELCOME, B, M.TERMS_RESPONSE, _set("/body/assertion/digest", WRONG_DIGEST)),
        ),
        "escalation-of-nothing": (
            "A support escalation naming no open support request of hers.",
            "VRM-CONV-005",
            _case(
                S.PROBLEM,
                B,
                M.SUPPORT_ESCALATION,
                _set("/body/request", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "escalation-wrong-digest": (
            "A support escalation naming her request with another digest.",
            "VRM-CONV-005",
            _case(S.PROBLEM, B, M.SUPPORT_ESCALATION, _set("/body/request/digest", WRONG_DIGEST)),
        ),
        "escalation-deadline-not-after-created": (
            "A support escalation whose deadline is its created.",
            "VRM-CONV-006",
            _case(S.PROBLEM, B, M.SUPPORT_ESCALATION, _deadline_at_created),
        ),
        "answer-answers-nothing": (
            "An answer naming no question of the vendor.",
            "VRM-CONV-002",
            _answer_case(_set("/body/question", {"id": missing, "digest": WRONG_DIGEST})),
        ),
        "answer-wrong-digest": (
            "An answer naming the vendor's question with another digest.",
            "VRM-CONV-002",
            _answer_case(_set("/body/question/digest", WRONG_DIGEST)),
        ),
        "service-response-answers-nothing": (
            "A service response naming no notice of the vendor.",
            "VRM-STATE-020",
            _case(
                S.SERVICING,
                B,
                M.SERVICE_RESPONSE,
                _set("/body/notice", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "service-response-wrong-digest": (
            "A service response naming the notice with another digest.",
            "VRM-SIG-027",
            _case(S.SERVICING, B, M.SERVICE_RESPONSE, _set("/body/notice/digest", WRONG_DIGEST)),
        ),
        "resolution-answers-nothing": (
            "A resolution naming no open support request.",
            "VRM-STATE-020",
            _case(
                S.PROBLEM,
                V,
                M.SUPPORT_RESOLUTION,
                _set("/body/request", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "resolution-wrong-digest": (
            "A resolution naming the request with another digest.",
            "VRM-SIG-027",
            _case(S.PROBLEM, V, M.SUPPORT_RESOLUTION, _set("/body/request/digest", WRONG_DIGEST)),
        ),
        # service-notice
        "notice-mislabelled": (
            "A programme offer labelled technical: not what it says it is.",
            "VRM-MSG-038",
            _case(
                S.SERVICING,
                V,
                M.SERVICE_NOTICE,
                _then(_set("/body/kind", "programme-offer"), _set("/body/category", "technical")),
            ),
        ),
        "notice-not-safety-before-service": (
            "A maintenance reminder in WELCOME: only safety recalls there.",
            "VRM-STATE-014",
            _case(
                S.WELCOME,
                V,
                M.SERVICE_NOTICE,
                _then(
                    _set("/body/kind", "maintenance-reminder"),
                    _set("/body/category", "maintenance"),
                ),
            ),
        ),
        # exits
        "exit-vendor-other-reason": (
            "A vendor's exit notice with a reason other than vendor-leaving-market.",
            "VRM-STATE-015",
            _case(S.SERVICING, V, M.EXIT_NOTICE, _set("/body/reason", "other")),
        ),
        "exit-until-not-an-instant": (
            "An exit notice whose reengagement.until is 31 February.",
            "VRM-FRESH-012",
            _case(
                S.SERVICING,
                B,
                M.EXIT_NOTICE,
                _set("/body/reengagement/until", "2027-02-31T10:00:00Z"),
            ),
        ),
        # access grants
        "grant-to-another-party": (
            "An access grant whose grantee is not the party it is sent to.",
            "VRM-GRANT-001",
            _case(
                S.SERVICING,
                B,
                M.ACCESS_GRANT,
                _set("/body/grantee", "https://another-dealer.example"),
            ),
        ),
        "grant-until-not-an-instant": (
            "An access grant whose until is 31 February.",
            "VRM-FRESH-012",
            _case(S.SERVICING, B, M.ACCESS_GRANT, _set("/body/until", "2027-02-31T10:00:00Z")),
        ),
        # consent changes
        "consent-change-narrow-without-purposes": (
            "A consent change that narrows an item without naming the purposes that remain.",
            "VRM-GRANT-008",
            _case(
                S.SERVICING,
                B,
                M.CONSENT_CHANGE,
                _set("/body/changes", [{"item": "contact.email", "action": "narrow"}]),
            ),
        ),
        "consent-receipt-answers-nothing": (
            "A consent receipt naming no consent change of the individual.",
            "VRM-STATE-020",
            _case(
                S.SERVICING,
                V,
                M.CONSENT_RECEIPT,
                _set("/body/change", {"id": missing, "digest": WRONG_DIGEST}),
            ),
        ),
        "consent-receipt-wrong-digest": (
            "A consent receipt naming her consent change with another digest.",
            "VRM-SIG-027",
            _case(S.SERVICING, V, M.CONSENT_RECEIPT, _answer_change_wrongly),
        ),
        "ack-by-the-notifier": (
            "The party that gave notice acknowledges it.",
            "VRM-STATE-020",
            _case(S.EXITING, B, M.EXIT_ACKNOWLEDGEMENT),
        ),
        "ack-wrong-digest": (
            "An acknowledgement naming the notice with another digest.",
            "VRM-SIG-027",
            _case(S.EXITING, V, M.EXIT_ACKNOWLEDGEMENT, _set("/body/notice/digest", WRONG_DIGEST)),
        ),
        "ack-without-export": (
            "An acknowledgement without the export her notice asked for.",
            "VRM-MSG-034",
            _case(S.EXITING, V, M.EXIT_ACKNOWLEDGEMENT, _drop("/body/export")),
        ),
        "ack-without-deletion-receipt": (
            "An acknowledgement without the deletion receipt her notice asked for.",
            "VRM-MSG-034",
            _case(S.EXITING, V, M.EXIT_ACKNOWLEDGEMENT, _drop("/body/deletionReceipt")),
        ),
        "ack-export-both-forms": (
            "An export with both data and url.",
            "VRM-MSG-035",
            _case(
                S.EXITING,
                V,
                M.EXIT_ACKNOWLEDGEMENT,
                _then(
                    _set("/body/export/url", f"{VENDOR_ID}/vrm/exports/x"),
                    _set("/body/export/size", 2),
                ),
            ),
        ),
    }


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every state vector by file name. Raises AssertionError if the library
    disagrees with what a row or a guard rule says (a defect to fix first)."""
    from conformance.vectors import state_living, state_materials, state_myterms, state_transaction

    vectors = _row_vectors()
    ruled = {(spec.type, rule.code) for spec in MESSAGE_TYPES.values() for rule in spec.rules}
    covered: set[tuple[MessageType, ErrorCode]] = set()
    cases = {
        **_guard_cases(),
        **state_transaction.guard_cases(),
        **state_living.guard_cases(),
        **state_myterms.guard_cases(),
        **state_materials.guard_cases(),
    }
    for name, (description, requirement, case) in cases.items():
        play, sender, payload = case(name)
        vector = _vector(name, description, requirement, play, sender, payload)
        if vector["expected"].get("valid") is not False and name != "not-a-move-problem-report":
            raise AssertionError(f"{name}: expected a refusal, the library accepted it")
        code = vector["expected"].get("error")
        if code is not None:
            covered.add((MessageType(payload["type"]), ErrorCode(code)))
        vectors[f"{name}.json"] = vector
    missing = sorted(f"{t.value}/{c.value}" for t, c in ruled - covered)
    if missing:
        raise AssertionError(f"guard rules without a vector: {missing}")
    return vectors


def _render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_vectors(directory: Path = STATE_DIR) -> list[Path]:
    """Write every vector into ``directory`` (stale files removed); return the paths."""
    vectors = build_vectors()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        if stale.name not in vectors:
            stale.unlink()
    written = []
    for name, vector in sorted(vectors.items()):
        path = directory / name
        path.write_text(_render(vector), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: write the vectors (default ``conformance/vectors/state``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=STATE_DIR, help="output directory")
    arguments = parser.parse_args(argv)
    for path in write_vectors(arguments.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
