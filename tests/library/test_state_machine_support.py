"""Builders for the state-machine tests: minimal message payloads that follow
the message catalogue, and a :class:`Journey` that runs the buyer's and the
vendor's :class:`Relationship` side by side on the same messages.

No dependency on the models or schema modules: the payloads are plain dicts.
This module holds no tests of its own; the other ``test_state_machine*``
modules import it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from deal_transaction_bodies import transaction_body
from living_bodies import living_body
from materials_bodies import materials_body
from myterms_bodies import myterms_body

from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.ledger import LedgerFacts, MemoryLedger, RelationshipCore
from vrm_protocol.models import parse_message_dict
from vrm_protocol.state_machine import (
    TRANSITIONS,
    Direction,
    OfferStatus,
    Relationship,
    RelationshipState,
    decide,
    ledger_query,
)
from vrm_protocol.vocabulary import MessageType, Role

S = RelationshipState
M = MessageType

SALLY = "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6InNhbGx5LWRlYWxlciJ9"
DEALER = "http://127.0.0.1:8401"
STRANGER = "http://127.0.0.1:8499"
T0 = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)

#: Topics and categories Sally's canonical exit allows the vendor to write about.
ALLOWED_TOPICS = ("maintenance", "recall", "new-products")


def stamp(moment: datetime) -> str:
    """RFC 3339 UTC, whole seconds, with Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A fresh message id."""
    return f"urn:uuid:{uuid.uuid4()}"


def fake_digest(payload: dict[str, Any]) -> str:
    """A stand-in for the digest of a signed token: unique per payload."""
    raw = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).digest()
    return "sha-256:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


#: The digest a body helper writes in a ``messageRef`` it cannot know: the
#: journey replaces it with the digest of the message named (spec §8.5), so
#: that only a test that writes another digest on purpose sends a wrong one.
ANY_DIGEST = "sha-256:" + "0" * 43


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


def terms_ref() -> dict[str, str]:
    return {
        "id": "dealer-terms",
        "version": "1.0",
        "url": "https://dealer.example/terms/1.0",
        "digest": "sha-256:" + "A" * 43,
    }


# -- bodies (message catalogue) ----------------------------------------------------------------


def rfi_body(now: datetime, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "intent": {
            "category": "vehicles.cars",
            "summary": "Child-friendly hybrid with a good sound system",
            "features": [{"name": "isofix", "importance": "must"}],
            "quantity": 1,
        },
        "budget": {"min": money("20000"), "max": money("32000")},
        "priorities": ["child-friendly", "low-emissions"],
        "context": {
            "location": {"country": "GB", "postcodeArea": "SW1"},
            "needBy": (now + timedelta(days=60)).date().isoformat(),
            "situation": "lease ends in March",
        },
        "financing": {"wanted": True, "maxTermMonths": 48},
        "responseBy": stamp(now + timedelta(hours=1)),
    }
    if history:
        body["history"] = history
    return body


def rfp_body(now: datetime, *, approval_required: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requirements": {
            "item": {"category": "vehicles.cars", "description": "Hybrid hatchback"},
            "features": [{"name": "isofix", "importance": "must"}],
            "options": ["premium-sound-system"],
            "quantity": 1,
        },
        "budget": {"max": money("32000")},
        "financing": {"wanted": True, "maxTermMonths": 48},
        "delivery": {
            "location": {"country": "GB"},
            "wantedBy": (now + timedelta(days=45)).date().isoformat(),
            "method": "home-delivery",
        },
        "recipientCount": 4,
        "responseBy": stamp(now + timedelta(hours=1)),
    }
    if approval_required:
        body["conditions"] = [{"kind": "approval-required", "description": "my husband co-decides"}]
    return body


def offer_body(
    now: datetime,
    *,
    basis: str = "binding",
    total: str = "28500",
    valid_for: timedelta = timedelta(days=7),
    supersedes: str | None = None,
    topic: str | None = None,
    approval_required: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "basis": basis,
        "validUntil": stamp(now + valid_for),
        "items": [
            {"sku": "PRIUS", "description": "Prius", "quantity": 1, "unitPrice": money(total)}
        ],
        "price": {"subtotal": money(total), "total": money(total)},
        "terms": terms_ref(),
    }
    if supersedes is not None:
        # Bound by digest (spec §6.3); the journey fills in the digest of the offer named.
        body["supersedes"] = {"id": supersedes, "digest": ANY_DIGEST}
    if topic is not None:
        body["topic"] = topic
    if approval_required:
        body["conditions"] = [
            {"kind": "approval-required", "description": "co-decision-maker approves"}
        ]
    return body


def acceptance_body(
    offer_id: str, digest: str, *, approvals: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "offer": {"id": offer_id, "digest": digest},
        "identity": {"name": "Sally Example", "email": "sally@example.org"},
        "payment": {"method": "finance"},
    }
    if approvals is not None:
        body["approvals"] = approvals
    return body


APPROVAL = {"kind": "approval", "issuer": "did:jwk:husband", "token": "e30.e30.sig"}


def decline_body(offer_ids: list[str]) -> dict[str, Any]:
    return {"offers": offer_ids, "reason": "price"}


def deal_body(offer_id: str, digest: str, acceptance_id: str, now: datetime) -> dict[str, Any]:
    return {
        "deal": {
            "id": "deal-1",
            "offer": {"id": offer_id, "digest": digest},
            "acceptance": acceptance_id,
            "total": money("28500"),
        },
        "delivery": {"scheduledFor": stamp(now + timedelta(days=30)), "method": "home-delivery"},
    }


def terms_assertion_body(party: str, now: datetime, role: str = "vendor") -> dict[str, Any]:
    return {
        "terms": terms_ref(),
        "party": {"id": party, "name": "Party", "role": role},
        "requests": [
            {
                "item": "contact.email",
                "purposes": ["servicing"],
                "retention": {"period": "P2Y"},
                "required": False,
            }
        ],
        "commitments": {"willDo": ["service"], "willNotDo": ["sell data"]},
        "validUntil": stamp(now + timedelta(days=30)),
    }


def terms_response_body(assertion_id: str) -> dict[str, Any]:
    return {
        "assertion": {"id": assertion_id, "digest": ANY_DIGEST},
        "decision": "accept",
        "accepted": [{"item": "contact.email", "purposes": ["servicing"]}],
        "notificationPreferences": {"allowed": ["safety", "technical"]},
    }


def service_notice_body(
    kind: str = "maintenance-reminder", category: str = "maintenance"
) -> dict[str, Any]:
    return {"kind": kind, "category": category, "summary": f"{kind} ({category})"}


def service_response_body(notice_id: str, decision: str = "accept") -> dict[str, Any]:
    return {"notice": {"id": notice_id, "digest": ANY_DIGEST}, "decision": decision}


def support_request_body() -> dict[str, Any]:
    return {
        "subject": "Infotainment reboots",
        "description": "Every few minutes",
        "severity": "normal",
    }


def support_resolution_body(request_id: str, status: str = "resolved") -> dict[str, Any]:
    return {
        "request": {"id": request_id, "digest": ANY_DIGEST},
        "status": status,
        "resolution": "Firmware updated",
    }


def exit_notice_body(
    now: datetime,
    *,
    reason: str = "need-changed",
    allowed: bool = True,
    topics: tuple[str, ...] | None = ALLOWED_TOPICS,
    until: datetime | None = None,
    channel: str | None = "vendor-may-contact",
) -> dict[str, Any]:
    reengagement: dict[str, Any] = {"allowed": allowed}
    if topics is not None:
        reengagement["topics"] = list(topics)
    if until is not None:
        reengagement["until"] = stamp(until)
    if channel is not None:
        reengagement["channel"] = channel
    return {
        "reason": reason,
        "effectiveAt": stamp(now),
        "export": {"requested": True, "mediaType": "application/json"},
        "deletion": {"requested": True},
        "reengagement": reengagement,
    }


def exit_ack_body(notice_id: str, relationship: str, now: datetime) -> dict[str, Any]:
    return {
        "notice": {"id": notice_id, "digest": ANY_DIGEST},
        "export": {"mediaType": "application/json", "data": {}, "digest": "sha-256:" + "F" * 43},
        "deletionReceipt": {"relationship": relationship, "deleted": [], "deletedAt": stamp(now)},
    }


def deal_refusal_body(
    offer_id: str, offer_digest: str, acceptance_id: str, reason: str = "item-unavailable"
) -> dict[str, Any]:
    return {
        "offer": {"id": offer_id, "digest": offer_digest},
        "acceptance": {"id": acceptance_id, "digest": ANY_DIGEST},
        "reason": reason,
    }


def escalation_body(
    request_id: str, now: datetime, *, deadline: timedelta = timedelta(days=14)
) -> dict[str, Any]:
    """Her escalation of ``request_id`` to customer relations (spec §6.32)."""
    ref = {"id": request_id, "digest": ANY_DIGEST}
    return {
        "request": ref,
        "to": {"level": "customer-relations", "name": "Customer relations"},
        "deadline": stamp(now + deadline),
        "history": [ref],
    }


def problem_report_body() -> dict[str, Any]:
    return {"code": "schema-invalid", "title": "Schema invalid", "detail": "test"}


def access_grant_body(grantee: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "grantee": grantee,
        "items": ["travel.dates"],
        "purposes": ["programme-membership"],
        "until": stamp(now + timedelta(days=30)),
        "endpoint": "https://agent.sally.example/vrm/read/Jd8x2PqLw0s7RkT4nVb9Cg",
        "key": "k" * 43,
    }


def access_revocation_body(grant: str) -> dict[str, Any]:
    return {"grant": grant, "reason": "the trip is over"}


def consent_change_body(item: str = "contact.phone") -> dict[str, Any]:
    return {"changes": [{"item": item, "action": "withdraw"}]}


def consent_receipt_body(change: str, digest: str = ANY_DIGEST) -> dict[str, Any]:
    return {
        "change": {"id": change, "digest": digest},
        "applied": [{"item": "contact.phone", "purposes": [], "deleted": True}],
        "retained": [],
    }


def receipt_body(regarding: str, now: datetime) -> dict[str, Any]:
    return {
        "regarding": {"id": regarding, "digest": "sha-256:" + "G" * 43},
        "status": "accepted",
        "receivedAt": stamp(now),
    }


# -- the journey ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one message did to both sides."""

    state: RelationshipState | None
    code: ErrorCode | None


class StoreLikeSide:
    """One side decided as an agent decides: :func:`decide` sees only the records
    the message type's :func:`ledger_query` asks for, as a store would load them.

    A unit whose query forgets a record its guard reads fails here (LookupError)
    or reaches another verdict than the in-memory :class:`Relationship`.
    """

    def __init__(self, our_role: Role, our_id: str, peer_id: str) -> None:
        self.our_role, self.our_id, self.peer_id = our_role, our_id, peer_id
        self.core = RelationshipCore()
        self.ledger = MemoryLedger()

    def process(
        self, direction: Direction, payload: dict[str, Any], now: datetime, digest: str | None
    ) -> Outcome:
        try:
            message = parse_message_dict(payload)
        except ProtocolError as error:
            return Outcome(None, error.code)
        sender = self.our_role if direction is Direction.SENT else self.our_role.peer
        query = ledger_query(message, sender=sender)
        offers = [
            r
            for r in self.ledger.offers.values()
            if r.id in query.offers or (r.sender is query.open_offers_of and r.live_at(now))
        ]
        requests = [
            r
            for r in self.ledger.requests.values()
            if r.id in query.requests or (r.type is query.open_requests_of and r.open)
        ]
        try:
            transition = decide(
                self.core,
                message,
                our_role=self.our_role,
                our_id=self.our_id,
                peer_id=self.peer_id,
                direction=direction,
                facts=LedgerFacts.of(query, offers, requests),
                now=now,
                digest=digest,
            )
        except ProtocolError as error:
            return Outcome(None, error.code)
        self.ledger.apply(transition.effects)
        self.core = transition.core
        return Outcome(transition.state, None)


@dataclass
class Journey:
    """Sally's relationship with one counterparty, run on both sides at once."""

    counterparty: str = DEALER
    now: datetime = T0
    buyer: Relationship = field(init=False)
    vendor: Relationship = field(init=False)
    store_like: StoreLikeSide = field(init=False)
    digests: dict[str, str] = field(default_factory=dict)
    thread: str | None = None

    def __post_init__(self) -> None:
        self.buyer = Relationship(Role.BUYER, SALLY, self.counterparty)
        self.vendor = Relationship(Role.VENDOR, self.counterparty, SALLY)
        self.store_like = StoreLikeSide(Role.BUYER, SALLY, self.counterparty)

    def side(self, role: Role) -> Relationship:
        return self.buyer if role is Role.BUYER else self.vendor

    def compose(
        self,
        sender: Role,
        message_type: MessageType,
        body: dict[str, Any],
        *,
        parent: str | None = None,
        sender_id: str | None = None,
        to: list[str] | None = None,
    ) -> dict[str, Any]:
        """A payload from ``sender`` in the journey's thread (an RFI/RFP may start one)."""
        message_id = new_id()
        if self.thread is None or message_type in {M.PERSONAL_RFI}:
            self.thread = message_id
        own = SALLY if sender is Role.BUYER else self.counterparty
        other = self.counterparty if sender is Role.BUYER else SALLY
        payload: dict[str, Any] = {
            "vrm": "1.0",
            "type": message_type.value,
            "id": message_id,
            "thread": self.thread,
            "from": sender_id or own,
            "to": to or [other],
            "created": stamp(self.now),
            "expires": stamp(self.now + timedelta(days=1)),
            "body": body,
        }
        if parent is not None:
            payload["parent"] = parent
        payload["body"] = self.bind(payload["body"])
        self.digests[message_id] = fake_digest(payload)
        return payload

    def bind(self, value: Any) -> Any:
        """``value`` with every ``{id, digest: ANY_DIGEST}`` naming a message of the
        journey given that message's digest."""
        if isinstance(value, dict):
            bound = {key: self.bind(member) for key, member in value.items()}
            if bound.get("digest") == ANY_DIGEST and bound.get("id") in self.digests:
                bound["digest"] = self.digests[bound["id"]]
            return bound
        if isinstance(value, list):
            return [self.bind(member) for member in value]
        return value

    def deliver(self, sender: Role, payload: dict[str, Any]) -> Outcome:
        """Send on the sender's side, receive on the other; both must agree.

        Returns the common outcome. On refusal, both sides must be unchanged
        and must have raised the role-correct exception with the same code.
        """
        digest = self.digests.get(payload["id"])
        sending, receiving = self.side(sender), self.side(sender.peer)
        before = (sending.snapshot(), receiving.snapshot())
        outcomes: list[Outcome] = []
        try:
            transition = sending.send(payload, now=self.now, digest=digest)
            outcomes.append(Outcome(transition.state, None))
        except LocalProtocolError as error:
            # Only LocalProtocolError is caught here: a RemoteProtocolError from
            # send() would escape and fail the test (role-correct errors).
            outcomes.append(Outcome(None, error.code))
        try:
            transition = receiving.receive(payload, now=self.now, digest=digest)
            outcomes.append(Outcome(transition.state, None))
        except RemoteProtocolError as error:
            outcomes.append(Outcome(None, error.code))
        assert outcomes[0] == outcomes[1], f"the two sides disagree: {outcomes}"
        direction = Direction.SENT if sender is Role.BUYER else Direction.RECEIVED
        store_like = self.store_like.process(direction, payload, self.now, digest)
        assert store_like == outcomes[0], f"deciding from queried facts differs: {store_like}"
        assert self.store_like.core == self.buyer.core
        assert self.store_like.ledger.offers == dict(self.buyer.offers)
        assert self.store_like.ledger.requests == dict(self.buyer.requests)
        if outcomes[0].code is not None:
            assert (sending.snapshot(), receiving.snapshot()) == before, "a refusal changed state"
        else:
            assert sending.state is receiving.state
            assert ledger_view(sending) == ledger_view(receiving)
        return outcomes[0]

    def step(
        self, sender: Role, message_type: MessageType, body: dict[str, Any], **kw: Any
    ) -> Outcome:
        """Compose and deliver in one go."""
        return self.deliver(sender, self.compose(sender, message_type, body, **kw))

    @property
    def state(self) -> RelationshipState:
        assert self.buyer.state is self.vendor.state
        return self.buyer.state

    # -- what the ledger offers the canonical messages -------------------------------------------

    def live_vendor_offers(self) -> list[str]:
        return [r.id for r in self.buyer.live_offers(self.now) if r.sender is Role.VENDOR]

    def latest_request(self, message_type: MessageType, *, open_only: bool = False) -> str | None:
        found = [
            r.id
            for r in self.buyer.requests.values()
            if r.type is message_type and (r.open or not open_only)
        ]
        return found[-1] if found else None


def ledger_view(relationship: Relationship) -> dict[str, Any]:
    """The side-independent part of a relationship (both sides must agree on it)."""
    snapshot = relationship.snapshot()
    return {key: snapshot[key] for key in ("core", "offers", "requests")} | {
        "history": [(h.type, h.id, h.from_state, h.to_state) for h in relationship.history]
    }


def canonical_body(journey: Journey, message_type: MessageType, sender: Role) -> dict[str, Any]:
    """A body for ``message_type`` from ``sender`` that passes every guard whenever
    the journey's state has a row for it (so the row's target is reached)."""
    now = journey.now
    missing = new_id()
    live = journey.live_vendor_offers()
    if message_type is M.PERSONAL_RFI:
        return rfi_body(now)
    if message_type is M.PERSONAL_RFP:
        return rfp_body(now)
    if message_type is M.OFFER:
        if sender is Role.BUYER:
            return offer_body(now, basis="counter", supersedes=live[-1] if live else missing)
        return offer_body(now, topic="new-products")
    if message_type is M.OFFER_ACCEPTANCE:
        target = live[-1] if live else missing
        return acceptance_body(target, journey.digests.get(target, fake_digest({})))
    if message_type is M.OFFER_DECLINE:
        return decline_body(live or [missing])
    if message_type is M.DEAL_CONFIRMATION:
        accepted = journey.buyer.accepted_offer or missing
        acceptance = journey.buyer.core.acceptance or missing
        return deal_body(accepted, journey.digests.get(accepted, fake_digest({})), acceptance, now)
    if message_type is M.TERMS_ASSERTION:
        return terms_assertion_body(journey.counterparty, now)
    if message_type is M.TERMS_RESPONSE:
        return terms_response_body(journey.latest_request(M.TERMS_ASSERTION) or missing)
    if message_type is M.SERVICE_NOTICE:
        if journey.state in {S.TRANSACTION, S.WELCOME}:
            return service_notice_body("safety-recall", "recall")  # the only kind allowed there
        return service_notice_body()
    if message_type is M.SERVICE_RESPONSE:
        return service_response_body(journey.latest_request(M.SERVICE_NOTICE) or missing)
    if message_type is M.SUPPORT_REQUEST:
        return support_request_body()
    if message_type is M.SUPPORT_RESOLUTION:
        request = journey.latest_request(M.SUPPORT_REQUEST, open_only=True)
        return support_resolution_body(request or missing)
    if message_type is M.EXIT_NOTICE:
        reason = "need-changed" if sender is Role.BUYER else "vendor-leaving-market"
        return exit_notice_body(now, reason=reason)
    if message_type is M.EXIT_ACKNOWLEDGEMENT:
        exit_record = journey.buyer.exit_record
        notice = exit_record.notice_id if exit_record is not None else missing
        return exit_ack_body(notice, SALLY, now)
    if message_type is M.DEAL_REFUSAL:
        accepted = journey.buyer.accepted_offer or missing
        acceptance = journey.buyer.core.acceptance or missing
        return deal_refusal_body(
            accepted, journey.digests.get(accepted, fake_digest({})), acceptance
        )
    if message_type is M.PROBLEM_REPORT:
        return problem_report_body()
    carried = transaction_body(journey, message_type, missing)
    if carried is not None:
        return carried
    if message_type is M.QUESTION:
        return {"topic": "trim", "text": "Which trim do you mean?"}
    if message_type is M.ANSWER:
        # The latest open question of the other party (check_cell asks one first).
        questions = [
            r.id
            for r in journey.buyer.requests.values()
            if r.type is M.QUESTION and r.open and r.sender is sender.peer
        ]
        question = questions[-1] if questions else missing
        return {"question": {"id": question, "digest": ANY_DIGEST}, "text": "Three years."}
    if message_type is M.SUPPORT_ESCALATION:
        # Her latest open support request (in PROBLEM there is one).
        request = [
            r.id
            for r in journey.buyer.requests.values()
            if r.type is M.SUPPORT_REQUEST and r.open and r.sender is sender
        ]
        return escalation_body(request[-1] if request else missing, now)
    if message_type is M.ACCESS_GRANT:
        return access_grant_body(journey.counterparty, now)
    if message_type is M.ACCESS_REVOCATION:
        return access_revocation_body(missing)
    if message_type is M.CONSENT_CHANGE:
        return consent_change_body()
    if message_type is M.CONSENT_RECEIPT:
        change = journey.latest_request(M.CONSENT_CHANGE, open_only=True)
        engaged = {S.NEGOTIATION, S.TRANSACTION, S.WELCOME, S.SERVICING, S.DEVELOPMENT, S.PROBLEM}
        if change is None and sender is Role.VENDOR and journey.state in engaged:
            # The receipt answers her change: she makes one first (a side exchange).
            journey.step(Role.BUYER, M.CONSENT_CHANGE, consent_change_body())
            change = journey.latest_request(M.CONSENT_CHANGE, open_only=True)
        return consent_receipt_body(change or missing)
    living = living_body(journey, message_type)
    if living is not None:
        return living
    own = myterms_body(journey, message_type, missing)
    if own is not None:
        return own
    materials = materials_body(journey, message_type)
    if materials is not None:
        return materials
    assert message_type is M.RECEIPT
    return receipt_body(missing, now)  # a receipt of a message this side never saw


def must(outcome: Outcome, state: RelationshipState) -> None:
    assert outcome == Outcome(state, None), f"expected {state}, got {outcome}"


def reach(state: RelationshipState, *, exit_by: Role = Role.BUYER) -> Journey:
    """A journey brought to ``state`` by legal moves, with something in the
    ledger for every reply the state allows (an offer to accept, terms to
    answer, a notice to respond to, a request to resolve, an exit to acknowledge)."""
    journey = Journey()
    if state is S.SEARCH:
        return journey
    must(journey.step(Role.BUYER, M.PERSONAL_RFI, rfi_body(journey.now)), S.ENQUIRY)
    if state is S.ENQUIRY:
        return journey
    must(journey.step(Role.VENDOR, M.OFFER, offer_body(journey.now)), S.NEGOTIATION)
    if state is S.CLOSED:
        must(
            journey.step(Role.BUYER, M.OFFER_DECLINE, decline_body(journey.live_vendor_offers())),
            S.CLOSED,
        )
        return journey
    terms = terms_assertion_body(DEALER, journey.now)
    must(journey.step(Role.VENDOR, M.TERMS_ASSERTION, terms), S.NEGOTIATION)
    if state is S.NEGOTIATION:
        return journey
    offer_id = journey.live_vendor_offers()[-1]
    accept = acceptance_body(offer_id, journey.digests[offer_id])
    must(journey.step(Role.BUYER, M.OFFER_ACCEPTANCE, accept), S.TRANSACTION)
    acceptance_id = journey.buyer.history[-1].id
    # A safety recall, so that a service-response has something to answer from here on.
    recall = service_notice_body("safety-recall", "recall")
    must(journey.step(Role.VENDOR, M.SERVICE_NOTICE, recall), S.TRANSACTION)
    if state is S.TRANSACTION:
        return journey
    deal = deal_body(offer_id, journey.digests[offer_id], acceptance_id, journey.now)
    must(journey.step(Role.VENDOR, M.DEAL_CONFIRMATION, deal), S.WELCOME)
    must(
        journey.step(Role.VENDOR, M.TERMS_ASSERTION, terms_assertion_body(DEALER, journey.now)),
        S.WELCOME,
    )
    if state is S.WELCOME:
        return journey
    assertion = journey.latest_request(M.TERMS_ASSERTION)
    assert assertion is not None
    must(journey.step(Role.BUYER, M.TERMS_RESPONSE, terms_response_body(assertion)), S.SERVICING)
    must(journey.step(Role.VENDOR, M.SERVICE_NOTICE, service_notice_body()), S.SERVICING)
    if state is S.SERVICING:
        return journey
    if state is S.DEVELOPMENT:
        # A programme offer is news; she joins by her own request (spec §6.72).
        programme = service_notice_body("programme-offer", "new-products")
        must(journey.step(Role.VENDOR, M.SERVICE_NOTICE, programme), S.SERVICING)
        enrolment = {"programme": "road-warrior"}
        must(journey.step(Role.BUYER, M.PROGRAMME_ENROLMENT, enrolment), S.DEVELOPMENT)
        must(
            journey.step(Role.VENDOR, M.OFFER, offer_body(journey.now, topic="warranty")),
            S.DEVELOPMENT,
        )
        return journey
    if state is S.PROBLEM:
        must(journey.step(Role.BUYER, M.SUPPORT_REQUEST, support_request_body()), S.PROBLEM)
        return journey
    reason = "need-changed" if exit_by is Role.BUYER else "vendor-leaving-market"
    must(
        journey.step(exit_by, M.EXIT_NOTICE, exit_notice_body(journey.now, reason=reason)),
        S.EXITING,
    )
    if state is S.EXITING:
        return journey
    exit_record = journey.buyer.exit_record
    assert exit_record is not None
    ack = exit_ack_body(exit_record.notice_id, SALLY, journey.now)
    must(journey.step(exit_by.peer, M.EXIT_ACKNOWLEDGEMENT, ack), S.EXITED)
    assert state is S.EXITED
    if exit_by is Role.BUYER:
        # A permitted notice, so that a service-response has something to answer.
        must(journey.step(Role.VENDOR, M.SERVICE_NOTICE, service_notice_body()), S.EXITED)
    return journey


#: Codes a message without a row may be refused with.
NO_ROW_CODES = frozenset(
    {
        ErrorCode.ILLEGAL_TRANSITION,
        ErrorCode.RELATIONSHIP_EXITED,
        ErrorCode.REENGAGEMENT_NOT_PERMITTED,
    }
)


def check_cell(state: RelationshipState, sender: Role, message_type: MessageType) -> None:
    """The table property for one (state, sender role, type) cell, on both sides."""
    # An acknowledgement comes from the party that did not give notice.
    journey = reach(state, exit_by=sender.peer if state is S.EXITING else Role.BUYER)
    assert journey.state is state
    # The body first: it may take the moves it answers first (an inspection, its handover).
    body = canonical_body(journey, message_type, sender)
    if message_type is M.ANSWER and (state, sender.peer, M.QUESTION) in TRANSITIONS:
        # An answer needs a question of the other party: asked first where one may be.
        asked = journey.compose(sender.peer, M.QUESTION, {"text": "What warranty?"})
        must(journey.deliver(sender.peer, asked), state)
    body = canonical_body(journey, message_type, sender)  # may make a move first (a receipt's)
    history_before = len(journey.buyer.history)
    payload = journey.compose(sender, message_type, body)
    outcome = journey.deliver(sender, payload)
    key = (state, sender, message_type)
    if message_type in {M.PROBLEM_REPORT, M.RECEIPT}:
        assert outcome == Outcome(state, None)
    elif key in TRANSITIONS:
        assert outcome == Outcome(TRANSITIONS[key], None), (key, outcome)
    else:
        assert outcome.state is None, (key, outcome)
        assert outcome.code in NO_ROW_CODES, (key, outcome)
        after_exit_notice = state in {S.EXITING, S.EXITED}
        assert (outcome.code is ErrorCode.RELATIONSHIP_EXITED) == after_exit_notice
        assert journey.state is state
        assert len(journey.buyer.history) == history_before
        return
    assert len(journey.buyer.history) == history_before + 1


def statuses(relationship: Relationship) -> dict[str, OfferStatus]:
    return {offer_id: record.status for offer_id, record in relationship.offers.items()}
