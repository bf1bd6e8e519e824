"""Message bodies the suite sends (spec §6), built for Sally's car purchase.

Every builder returns a fresh dict, so a check may alter one member to make
it invalid without touching the others. ``tests/conformance`` validates each
builder's output against the normative schemas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from conformance.peers.messages import timestamp
from vrm_protocol.message_types.service_notice import KIND_CATEGORIES

__all__ = [
    "deal_confirmation_body",
    "exit_acknowledgement_body",
    "exit_notice_body",
    "money",
    "offer_acceptance_body",
    "offer_body",
    "offer_decline_body",
    "personal_rfi_body",
    "personal_rfp_body",
    "service_notice_body",
    "support_request_body",
    "terms_assertion_body",
    "terms_reference",
    "terms_response_body",
]

CURRENCY = "GBP"


def money(amount: str, currency: str = CURRENCY) -> dict[str, str]:
    """A ``money`` value: a decimal string, never a float."""
    return {"amount": amount, "currency": currency}


def _location() -> dict[str, str]:
    # Coarse on purpose: an RFI/RFP never carries a full address (spec §6.1).
    return {"country": "GB", "postcodeArea": "SW1"}


def terms_reference() -> dict[str, str]:
    """The terms of sharing the suite's vendors present (a stable test document)."""
    return {
        "id": "conformance-test-terms",
        "version": "1.0",
        "url": "https://vrm-protocol.example/terms/conformance-test-terms/1.0",
        "digest": "sha-256:" + "A" * 43,
    }


def personal_rfi_body(
    now: datetime,
    *,
    budget_min: str = "20000",
    budget_max: str = "32000",
    response_in: timedelta = timedelta(hours=1),
    attestations: Sequence[Mapping[str, Any]] = (),
    history: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """A pseudonymous intentcast for a child-friendly, low-emission family car."""
    body: dict[str, Any] = {
        "intent": {
            "category": "vehicles.cars",
            "summary": "Child-friendly, low-emission family car with a good sound system",
            "features": [
                {"name": "isofix", "importance": "must"},
                {"name": "hybrid", "importance": "should"},
                {"name": "premium-sound-system", "importance": "nice"},
            ],
            "quantity": 1,
        },
        "budget": {"min": money(budget_min), "max": money(budget_max)},
        "priorities": ["child-friendly", "low-emissions", "sound-system"],
        "context": {
            "location": _location(),
            "needBy": (now + timedelta(days=60)).date().isoformat(),
            "situation": "current lease ends in March",
        },
        "financing": {"wanted": True, "maxTermMonths": 48},
        "responseBy": timestamp(now + response_in),
    }
    if attestations:
        body["attestations"] = [dict(attestation) for attestation in attestations]
    if history:
        body["history"] = [dict(reference) for reference in history]
    return body


def personal_rfp_body(
    now: datetime,
    *,
    budget_min: str = "20000",
    budget_max: str = "32000",
    response_in: timedelta = timedelta(hours=1),
    recipient_count: int = 3,
    trade_in: bool = False,
    conditions: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A personal RFP for a specific model, delivered home.

    ``trade_in`` adds Sally's old car, to be handed over with the delivery of
    the new one (never before: seed 001); ``conditions`` are the buyer's
    (e.g. a co-decision-maker's approval).
    """
    body: dict[str, Any] = {
        "requirements": {
            "item": {
                "category": "vehicles.cars",
                "description": "Hybrid family hatchback",
                "make": "Toyota",
                "model": "Prius",
                "year": now.year,
            },
            "features": [{"name": "isofix", "importance": "must"}],
            "options": ["premium-sound-system"],
            "quantity": 1,
        },
        "budget": {"min": money(budget_min), "max": money(budget_max)},
        "financing": {"wanted": True, "maxTermMonths": 48},
        "delivery": {
            "location": _location(),
            "wantedBy": (now + timedelta(days=45)).date().isoformat(),
            "method": "home-delivery",
        },
        "recipientCount": recipient_count,
        "responseBy": timestamp(now + response_in),
    }
    if trade_in:
        body["tradeIn"] = {
            "item": {
                "description": "2019 family hatchback, one owner",
                "make": "Volkswagen",
                "model": "Golf",
                "year": 2019,
                "mileage": 48000,
            },
            "handover": "with-delivery",
            "papersHandover": "with-delivery",
        }
    if conditions:
        body["conditions"] = [dict(condition) for condition in conditions]
    return body


def offer_body(
    now: datetime,
    *,
    basis: str = "indicative",
    total: str = "28500",
    valid_for: timedelta = timedelta(days=7),
    supersedes: Mapping[str, str] | None = None,
    topic: str | None = None,
) -> dict[str, Any]:
    """An offer (from a vendor, or a buyer's counter-offer with ``basis='counter'``);
    ``supersedes`` is the ``messageRef`` of the offer it replaces (spec §6.3)."""
    body: dict[str, Any] = {
        "basis": basis,
        "validUntil": timestamp(now + valid_for),
        "items": [
            {
                "sku": "PRIUS-HB-2024",
                "description": "Toyota Prius hybrid hatchback",
                "quantity": 1,
                "unitPrice": money(total),
            }
        ],
        "price": {"subtotal": money(total), "total": money(total)},
        "terms": terms_reference(),
    }
    if supersedes is not None:
        body["supersedes"] = dict(supersedes)
    if topic is not None:
        body["topic"] = topic
    return body


def counter_offer_body(
    vendor_offer: Mapping[str, Any],
    vendor_offer_ref: Mapping[str, str],
    *,
    now: datetime,
    total: str,
) -> dict[str, Any]:
    """A buyer's counter-offer: the vendor's offer at a lower price, superseding it
    (named by its ``messageRef``, spec §6.3)."""
    body = {
        name: value
        for name, value in vendor_offer.items()
        if name in {"items", "delivery", "conditions", "terms", "tradeIn"}
    }
    items = [dict(item) for item in body.get("items", [])]
    if items:
        items[0] = {**items[0], "unitPrice": money(total, _currency(vendor_offer))}
        items = items[:1]
    body.update(
        {
            "basis": "counter",
            "supersedes": dict(vendor_offer_ref),
            "validUntil": timestamp(now + timedelta(days=2)),
            "items": items,
            "price": {
                "subtotal": money(total, _currency(vendor_offer)),
                "total": money(total, _currency(vendor_offer)),
            },
        }
    )
    return body


def _currency(offer: Mapping[str, Any]) -> str:
    try:
        return str(offer["price"]["total"]["currency"])
    except (KeyError, TypeError):
        return CURRENCY


def offer_acceptance_body(offer_ref: Mapping[str, str]) -> dict[str, Any]:
    """Accept exactly the offer whose bytes ``offer_ref`` digests; identity disclosed now."""
    return {
        "offer": dict(offer_ref),
        "identity": {"name": "Sally Example", "email": "sally@example.org"},
        "payment": {"method": "bank-transfer"},
    }


def offer_decline_body(offer_ids: Sequence[str], reason: str = "price") -> dict[str, Any]:
    """Decline offers."""
    return {"offers": list(offer_ids), "reason": reason}


def terms_response_body(
    assertion_ref: Mapping[str, str],
    *,
    accepted: Sequence[Mapping[str, Any]],
    refused: Sequence[str] = (),
    data: Sequence[Mapping[str, Any]] = (),
    notifications: Sequence[str] = ("safety", "recall"),
) -> dict[str, Any]:
    """The individual's answer to a terms assertion (the consent record)."""
    decision = "accept" if not refused else "accept-in-part" if accepted else "refuse"
    body: dict[str, Any] = {
        "assertion": dict(assertion_ref),
        "decision": decision,
        "accepted": [dict(item) for item in accepted],
        "notificationPreferences": {"allowed": list(notifications)},
    }
    if refused:
        body["refused"] = [{"item": item, "reason": "not needed"} for item in refused]
    if data:
        body["data"] = [dict(item) for item in data]
    return body


def exit_notice_body(
    now: datetime,
    *,
    reengagement_allowed: bool = False,
    topics: Sequence[str] = (),
    export: bool = True,
    deletion: bool = True,
) -> dict[str, Any]:
    """Leave the relationship: export everything, delete everything."""
    reengagement: dict[str, Any] = {"allowed": reengagement_allowed}
    if topics:
        reengagement["topics"] = list(topics)
    if reengagement_allowed:
        reengagement["channel"] = "intentcast-only"
    return {
        "reason": "need-changed",
        "effectiveAt": timestamp(now),
        "export": {"requested": export, "mediaType": "application/json"},
        "deletion": {"requested": deletion},
        "reengagement": reengagement,
    }


def support_request_body() -> dict[str, Any]:
    """A problem report about the product (step 8)."""
    return {
        "subject": "Infotainment reboots",
        "description": "The sound system restarts every few minutes while driving.",
        "severity": "normal",
    }


# -- bodies the suite sends when it plays vendors ---------------------------------------------


def deal_confirmation_body(
    *,
    offer_ref: Mapping[str, str],
    acceptance_id: str,
    total: Mapping[str, str],
    now: datetime,
) -> dict[str, Any]:
    """Confirm the deal that the acceptance closed."""
    return {
        "deal": {
            "id": "deal-" + acceptance_id.rsplit(":", 1)[-1][:12],
            "offer": dict(offer_ref),
            "acceptance": acceptance_id,
            "total": dict(total),
        },
        "delivery": {
            "scheduledFor": timestamp(now + timedelta(days=30)),
            "method": "home-delivery",
        },
    }


def terms_assertion_body(
    *,
    party_id: str,
    party_name: str,
    now: datetime,
    categories: Sequence[str],
    terms: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The vendor's terms of sharing: what it asks, why, for how long.

    ``terms`` is the reference to the document asserted (a vendor of the suite
    publishes it on its own origin, spec §6.8); by default a stable test one.
    """
    return {
        "terms": dict(terms) if terms is not None else terms_reference(),
        "party": {"id": party_id, "name": party_name, "role": "vendor"},
        "requests": [
            {
                "item": category,
                "purposes": ["servicing"],
                "retention": {"period": "P2Y"},
                "required": False,
            }
            for category in categories
        ],
        "commitments": {
            "willDo": ["use the data only for the purposes listed"],
            "willNotDo": ["sell or rent personal data", "share it with unlisted recipients"],
        },
        "validUntil": timestamp(now + timedelta(days=30)),
    }


def service_notice_body(
    *, category: str = "maintenance", data_requests: bool = False
) -> dict[str, Any]:
    """A maintenance reminder (step 6), proposing the annual service and new tyres,
    of a kind that may be sent in ``category`` (spec §6.9: a notice is what it says).

    ``data_requests`` adds a scoped request for travel dates (step 7: a
    manufacturer programme), which the individual may grant or decline.
    """
    kind = next(
        (kind for kind, allowed in KIND_CATEGORIES.items() if category in allowed),
        "maintenance-reminder",
    )
    body: dict[str, Any] = {
        "kind": "maintenance-reminder" if category == "maintenance" else kind,
        "category": category,
        "summary": "Annual service due next month",
        "proposals": [
            {"code": "scheduled-maintenance", "description": "The annual service"},
            {
                "code": "tyre-replacement",
                "description": "Four new tyres",
                "price": money("480"),
            },
        ],
    }
    if data_requests:
        body["dataRequests"] = [
            {
                "item": "travel.dates",
                "purposes": ["programme-membership"],
                "retention": {"period": "P1Y"},
                "scope": "road trips in the next 12 months",
            }
        ]
    return body


def exit_acknowledgement_body(
    *,
    notice_ref: Mapping[str, str],
    relationship: str,
    now: datetime,
    held: Mapping[str, Any],
) -> dict[str, Any]:
    """Acknowledge an exit: export what was held, receipt for its deletion."""
    from conformance.forge import canonical_json
    from conformance.peers.messages import digest

    return {
        "notice": dict(notice_ref),
        "export": {
            "mediaType": "application/json",
            "data": dict(held),
            "digest": digest(canonical_json(dict(held))),
        },
        "deletionReceipt": {
            "relationship": relationship,
            "deleted": sorted(held),
            "deletedAt": timestamp(now),
        },
    }
