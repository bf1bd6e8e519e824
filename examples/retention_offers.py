"""Retention without surveillance: the vendor's retention view (seed 004) on the protocol.

Dave bought his car through his own agent. The carmaker's dealer wants him
back: new-model information, a test drive, an extended warranty when the
original one ends, promotions. In the CRM world the vendor decides all of that
from what it has gathered about Dave. Here Dave decided first, in his
terms-response: which notification categories he allows. The dealer's agent
checks that consent record before it sends anything, and Dave's agent (and the
state machine both sides run) refuses what falls outside it.

Everything runs in memory with the library alone: real keys, real signatures,
the full receiving pipeline, and a ``Relationship`` on each side that must
agree on the state after every message. Run it:

    python examples/retention_offers.py
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from vrm_protocol.canonical import canonical_json
from vrm_protocol.codec import (
    Received,
    build_message,
    decode,
    encode,
    message_digest,
    timestamp,
)
from vrm_protocol.errors import ProtocolError
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver
from vrm_protocol.state_machine import Relationship
from vrm_protocol.vocabulary import Role

DEALER_ID = "https://dealer.example"
TERMS = {
    "id": "dealer-terms-of-sharing",
    "version": "2.1",
    "url": "https://dealer.example/terms/2.1",
    "digest": "sha-256:" + "Q" * 43,
}


def gbp(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


@dataclass
class Party:
    """One side: its identifier, key, and its view of the relationship."""

    identifier: str
    key: SigningKey
    relationship: Relationship
    thread: str | None = None
    received: list[Received] = field(default_factory=list)


class Conversation:
    """Dave's agent and the dealer's agent, passing signed messages in memory."""

    def __init__(self) -> None:
        # Dave is a pairwise pseudonym: a key made for this dealer only.
        dave = PairwiseIdentity.generate()
        dealer_key = SigningKey.generate("EdDSA")
        self.dealer_keys = KeySet()
        self.dealer_keys.add(dealer_key.public())
        self.dave = Party(
            dave.identifier, dave.signing_key, Relationship(Role.BUYER, dave.identifier, DEALER_ID)
        )
        self.dealer = Party(
            DEALER_ID, dealer_key, Relationship(Role.VENDOR, DEALER_ID, dave.identifier)
        )
        self.now = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)

    def send(self, sender: Party, message_type: str, body: Mapping[str, Any]) -> Received:
        """Sign, step the sender's state, verify at the receiver, step its state.

        Raises:
            LocalProtocolError: the sender's own state machine refuses the message.
            RemoteProtocolError: the receiver refuses it.
        """
        receiver = self.dealer if sender is self.dave else self.dave
        payload = build_message(
            message_type,
            body,
            sender=sender.identifier,
            to=[receiver.identifier],
            now=self.now,
            thread=sender.thread,
        )
        token = encode(payload, sender.key)
        # The sender steps its own state first: an illegal message never leaves
        # (and a refused step changes nothing on either side).
        sender.relationship.send(payload, now=self.now, digest=message_digest(token))
        received = decode(
            token,
            resolve_key=key_resolver(self.dealer_keys),
            receiver=receiver.identifier,
            now=self.now,
        )
        receiver.relationship.receive(received.message, now=self.now, digest=received.digest)
        assert sender.relationship.state == receiver.relationship.state
        sender.thread = receiver.thread = payload["thread"]
        receiver.received.append(received)
        print(f"  {message_type:<22} -> {receiver.relationship.state.value}")
        self.now += timedelta(hours=1)
        return received


def welcome(talk: Conversation) -> set[str]:
    """Steps 2-5 in brief: RFP, binding offer, acceptance, deal, terms. Returns Dave's
    allowed notification categories: the consent record the dealer must honour."""
    print("Dave buys the car and is welcomed:")
    talk.send(
        talk.dave,
        "personal-rfp",
        {
            "requirements": {
                "item": {"category": "vehicles.cars", "description": "Compact SUV, hybrid"},
                "quantity": 1,
            },
            "budget": {"max": gbp("34000")},
            "responseBy": timestamp(talk.now + timedelta(days=3)),
        },
    )
    offer = talk.send(
        talk.dealer,
        "offer",
        {
            "basis": "binding",
            "validUntil": timestamp(talk.now + timedelta(days=7)),
            "items": [
                {
                    "sku": "SUV-H-27",
                    "description": "Compact hybrid SUV",
                    "quantity": 1,
                    "unitPrice": gbp("32500"),
                }
            ],
            "price": {"subtotal": gbp("32500"), "total": gbp("32500")},
            "terms": TERMS,
        },
    )
    acceptance = talk.send(
        talk.dave,
        "offer-acceptance",
        {
            "offer": {"id": offer.payload["id"], "digest": offer.digest},
            "identity": {"name": "Dave Example", "email": "dave@example.org"},
        },
    )
    talk.send(
        talk.dealer,
        "deal-confirmation",
        {
            "deal": {
                "id": "DEAL-7",
                "offer": {"id": offer.payload["id"], "digest": offer.digest},
                "acceptance": acceptance.payload["id"],
                "total": gbp("32500"),
            }
        },
    )
    assertion = talk.send(
        talk.dealer,
        "terms-assertion",
        {
            "terms": TERMS,
            "party": {"id": DEALER_ID, "name": "Dealer Example", "role": "vendor"},
            "requests": [
                {
                    "item": "contact.email",
                    "purposes": ["servicing", "marketing"],
                    "retention": {"period": "P3Y"},
                    "required": True,
                },
                {
                    "item": "vehicle.usage",
                    "purposes": ["marketing"],
                    "retention": {"period": "P1Y"},
                    "required": False,
                },
            ],
            "commitments": {
                "willDo": ["contact Dave only in the categories he allows"],
                "willNotDo": ["sell or rent personal data"],
            },
            "notificationCategories": ["safety", "warranty", "new-products", "promotions"],
            "validUntil": timestamp(talk.now + timedelta(days=30)),
        },
    )
    # Dave shares his e-mail for servicing only, refuses driving-behaviour
    # profiling, and allows safety, warranty and new-product notices: no promotions.
    allowed = ["safety", "warranty", "new-products"]
    talk.send(
        talk.dave,
        "terms-response",
        {
            "assertion": {"id": assertion.payload["id"], "digest": assertion.digest},
            "decision": "accept-in-part",
            "accepted": [{"item": "contact.email", "purposes": ["servicing"]}],
            "refused": [{"item": "vehicle.usage", "reason": "no profiling of how I drive"}],
            "notificationPreferences": {"allowed": allowed},
            "data": [{"item": "contact.email", "value": "dave@example.org"}],
        },
    )
    return set(allowed)


def retention(talk: Conversation, allowed: set[str]) -> None:
    """The dealer's retention touchpoints (seed 004), each within Dave's consent."""
    print("\nThe dealer's retention touchpoints, filtered by Dave's consent:")
    touchpoints = [
        (
            "new-products",
            "other",
            "The new plug-in hybrid SUV: book a test drive",
            [{"code": "test-drive", "description": "Test drive at the Camden showroom"}],
        ),
        ("promotions", "other", "Winter accessories: 20% off this week", []),
    ]
    for category, kind, summary, proposals in touchpoints:
        if category not in allowed:
            # The vendor's own agent checks the consent record before sending.
            print(f"  not sent: {category!r} is not in Dave's notification preferences")
            continue
        body: dict[str, Any] = {"kind": kind, "category": category, "summary": summary}
        if proposals:
            body["proposals"] = proposals
        notice = talk.send(talk.dealer, "service-notice", body)
        talk.send(
            talk.dave,
            "service-response",
            {
                "notice": {"id": notice.payload["id"], "digest": notice.digest},
                "decision": "accept",
                "accepted": ["test-drive"],
            },
        )
    # Ending product: the warranty runs out, the dealer offers an extension.
    # A development offer carries a topic; Dave accepts it like any other offer.
    extension = talk.send(
        talk.dealer,
        "offer",
        {
            "basis": "binding",
            "topic": "warranty",
            "validUntil": timestamp(talk.now + timedelta(days=14)),
            "items": [
                {
                    "sku": "WARRANTY-EXT-2Y",
                    "description": "Two more years of warranty",
                    "quantity": 1,
                    "unitPrice": gbp("540"),
                }
            ],
            "price": {"subtotal": gbp("540"), "total": gbp("540")},
            "terms": TERMS,
        },
    )
    extension_ref = {"id": extension.payload["id"], "digest": extension.digest}
    accepted = talk.send(talk.dave, "offer-acceptance", {"offer": extension_ref})
    talk.send(
        talk.dealer,
        "deal-confirmation",
        {
            "deal": {
                "id": "DEAL-7-W",
                "offer": extension_ref,
                "acceptance": accepted.payload["id"],
                "total": gbp("540"),
            }
        },
    )


def exit_and_win_back(talk: Conversation) -> None:
    """Dave leaves, allowing only safety notices; a win-back offer is refused."""
    print("\nDave exits; afterwards only safety notices may reach him:")
    notice = talk.send(
        talk.dave,
        "exit-notice",
        {
            "reason": "circumstances-changed",
            "effectiveAt": timestamp(talk.now),
            "export": {"requested": True, "mediaType": "application/json"},
            "deletion": {"requested": True},
            "reengagement": {"allowed": True, "topics": ["safety", "recall"]},
        },
    )
    # What his notice asked for, and only that (spec §6.14): the export and the receipt.
    held = {"contact.email": "dave@example.org"}
    talk.send(
        talk.dealer,
        "exit-acknowledgement",
        {
            "notice": {"id": notice.payload["id"], "digest": notice.digest},
            "export": {
                "mediaType": "application/json",
                "data": held,
                "digest": message_digest(canonical_json(held)),
            },
            "deletionReceipt": {
                "relationship": talk.dave.identifier,
                "deleted": ["contact.email"],
                "deletedAt": timestamp(talk.now),
            },
        },
    )
    try:
        talk.send(
            talk.dealer,
            "offer",
            {
                "basis": "binding",
                "topic": "new-products",
                "validUntil": timestamp(talk.now + timedelta(days=14)),
                "items": [
                    {
                        "sku": "SUV-PHEV-28",
                        "description": "Come back: the new SUV",
                        "quantity": 1,
                        "unitPrice": gbp("36000"),
                    }
                ],
                "price": {"subtotal": gbp("36000"), "total": gbp("36000")},
                "terms": TERMS,
            },
        )
    except ProtocolError as refusal:
        print(f"  win-back offer refused before it left: {refusal.code.value} ({refusal.detail})")
    else:
        raise SystemExit("a win-back offer outside Dave's re-engagement preferences was sent")
    talk.send(
        talk.dealer,
        "service-notice",
        {
            "kind": "safety-recall",
            "category": "safety",
            "summary": "Recall: brake-line inspection for 2027 compact SUVs",
        },
    )


def main() -> None:
    """Run the retention scenario; exit non-zero if any step misbehaves."""
    talk = Conversation()
    allowed = welcome(talk)
    retention(talk, allowed)
    exit_and_win_back(talk)
    print(f"\nFinal state on both sides: {talk.dave.relationship.state.value}")


if __name__ == "__main__":
    main()
