"""Sally's car purchase (seed 000) as message bodies and a personal profile.

The test driver's defaults, the CLI's defaults and ``vrm demo`` all use these,
so the reference buyer speaks about one concrete, realistic purchase: a
child-friendly, low-emission car with a good sound system, bought in London
with a credit-union loan and the old car traded in at delivery (seed 001).
Every message body is a typed model (validated when built); the profile is a
fresh dict of her volunteered data by category.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from vrm_protocol.models import PersonalRfiBody, PersonalRfpBody

__all__ = [
    "CURRENCY",
    "audio_rfi_body",
    "counter_total",
    "reengagement_rfi_body",
    "sally_profile",
    "sally_rfi_body",
    "sally_rfp_body",
]

CURRENCY = "GBP"


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": CURRENCY}


def _ts(moment: datetime) -> str:
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _location() -> dict[str, str]:
    # Coarse on purpose (spec §12): a postcode area, never an address.
    return {"country": "GB", "postcodeArea": "NW3", "region": "London"}


def _trade_in() -> dict[str, Any]:
    # Seed 001: the old car is handed over when the new one arrives, not days before.
    return {
        "item": {
            "description": "Two-seat sports car, full service history",
            "make": "Mazda",
            "model": "MX-5",
            "year": 2019,
            "mileage": 31000,
        },
        "handover": "with-delivery",
        "papersHandover": "with-delivery",
    }


def sally_profile() -> dict[str, Any]:
    """The individual's volunteered information, keyed by data category."""
    return {
        "identity.name": "Sally Example",
        "contact.email": "sally@example.org",
        "contact.phone": "+44 20 7946 0000",
        "contact.postal-address": {
            "lines": ["1 Example Street"],
            "postcode": "NW3 1AA",
            "country": "GB",
        },
        "vehicle.registration": "SX19 ABC",
        "vehicle.model": "Toyota Prius 1.8 Hybrid Excel",
        "vehicle.vin": "JTDKB20U093000000",
        "location.home-area": "NW3",
        "travel.dates": "2027-04-10/2027-04-17 (Cornwall), 2027-08-02/2027-08-09 (Highlands)",
        # Seed 000 step 4: the paperwork of the deal, kept in her store and shared
        # from it under the dealer's terms (purpose `legal-obligation`), never retyped.
        # A data value is a string (schemas/common.schema.json `dataValue`).
        "vehicle.registration-keeper": (
            "Sally Example, 1 Example Street, London NW3 1AA, GB (V5C 1234 5678 901)"
        ),
        "insurance.policy": (
            "Example Mutual Insurance, policy EMI-2027-0042137, comprehensive, "
            "2027-03-01/2028-02-29"
        ),
    }


def sally_rfi_body(now: datetime) -> PersonalRfiBody:
    """Step 1: the pseudonymous intentcast (nothing identifying, spec §6.1)."""
    return PersonalRfiBody.model_validate(
        {
            "intent": {
                "category": "vehicles.cars",
                "summary": "Child-friendly, low-emission family car with a good sound system",
                "features": [
                    {"name": "isofix", "importance": "must"},
                    {"name": "hybrid", "importance": "should"},
                    {
                        "name": "premium-sound-system",
                        "importance": "should",
                        "detail": "MP3 capable; my partner drives a lot on his own",
                    },
                ],
                "quantity": 1,
            },
            "budget": {"min": _money("22000"), "max": _money("30000")},
            "priorities": ["child-friendly", "low-emissions", "sound-system"],
            "context": {
                "location": _location(),
                "needBy": (now + timedelta(days=60)).date().isoformat(),
                "situation": "current lease ends; a child is on the way",
            },
            "financing": {"wanted": True, "maxTermMonths": 48},
            "tradeIn": _trade_in(),
            "responseBy": _ts(now + timedelta(hours=1)),
        }
    )


def sally_rfp_body(now: datetime) -> PersonalRfpBody:
    """Step 2: the personal RFP for the short-listed model (spec §6.2)."""
    return PersonalRfpBody.model_validate(
        {
            "requirements": {
                "item": {
                    "category": "vehicles.cars",
                    "description": "Hybrid family hatchback, upgraded sound system",
                    "make": "Toyota",
                    "model": "Prius",
                    "year": now.year,
                },
                "features": [
                    {"name": "isofix", "importance": "must"},
                    {"name": "hybrid", "importance": "must"},
                    {"name": "mp3", "importance": "should"},
                ],
                # The upgraded sound system her partner wants comes as a factory option.
                "options": ["premium-sound-system"],
                "quantity": 1,
            },
            "budget": {"min": _money("22000"), "max": _money("30000")},
            "financing": {"wanted": True, "maxTermMonths": 48},
            "delivery": {
                "location": _location(),
                "wantedBy": (now + timedelta(days=45)).date().isoformat(),
                "method": "home-delivery",
            },
            "tradeIn": _trade_in(),
            "responseBy": _ts(now + timedelta(hours=1)),
        }
    )


def audio_rfi_body(now: datetime) -> PersonalRfiBody:
    """Step 5: an enquiry to the sound-system maker, to set up its services."""
    return PersonalRfiBody.model_validate(
        {
            "intent": {
                "category": "vehicles.audio",
                "summary": "Activate the premium sound system of my new car and its updates",
                "features": [{"name": "mp3-playback", "importance": "must"}],
                "quantity": 1,
            },
            "budget": {"max": _money("0")},
            "context": {"location": _location(), "situation": "new car delivered"},
            "responseBy": _ts(now + timedelta(hours=1)),
        }
    )


def reengagement_rfi_body(now: datetime) -> PersonalRfiBody:
    """Step 10: back to the dealer years later, history in hand."""
    return PersonalRfiBody.model_validate(
        {
            "intent": {
                "category": "vehicles.cars",
                "summary": "Replacing my car: same dealer, larger family car, hybrid or electric",
                "features": [
                    {"name": "isofix", "importance": "must"},
                    {"name": "seven-seats", "importance": "should"},
                ],
                "quantity": 1,
            },
            "budget": {"min": _money("28000"), "max": _money("38000")},
            "context": {"location": _location(), "situation": "the family has grown"},
            "financing": {"wanted": False},
            "responseBy": _ts(now + timedelta(hours=1)),
        }
    )


def counter_total(total: str, *, percent: int = 4) -> str:
    """A counter-offer ``percent`` below ``total`` (whole pounds)."""
    amount = int(float(total) * (100 - percent) / 100)
    return str(amount)
