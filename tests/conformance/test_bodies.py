"""Every message the suite builds is valid under the normative schemas.

A negative check only proves something when the *legal* message it starts
from is legal: an RFI the schema refuses would make every "the target rejects
X" check pass for the wrong reason. So each builder's output is validated
here with the library's schema registry (the same validator the suite judges
the target's messages with), including formats.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from conformance.peers import bodies
from conformance.peers.identity import new_pairwise
from conformance.peers.issuer import TestIssuer
from conformance.peers.messages import envelope
from conformance.protocol import schema_errors

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
VENDOR = "http://127.0.0.1:8000"
BUYER, _ = new_pairwise()
REF = {"id": "urn:uuid:5f0c6a55-3f5c-4d40-9a7b-6e1c9b8f2a10", "digest": "sha-256:" + "A" * 43}


def _attestation() -> dict[str, Any]:
    issuer = TestIssuer.ephemeral("https://credit-union.vrm-protocol.example")
    return issuer.attest(
        kind="ability-to-pay",
        subject=BUYER,
        audience=[VENDOR],
        now=NOW,
        claims={"range": {"max": bodies.money("30000")}},
    )


def _offer() -> dict[str, Any]:
    return bodies.offer_body(NOW, supersedes=REF, topic="safety")


CASES: dict[str, tuple[str, Any]] = {
    "rfi": (
        "personal-rfi",
        lambda: bodies.personal_rfi_body(NOW, attestations=[_attestation()], history=[REF]),
    ),
    "rfp": ("personal-rfp", lambda: bodies.personal_rfp_body(NOW)),
    "rfp-with-trade-in-and-approval": (
        "personal-rfp",
        lambda: bodies.personal_rfp_body(
            NOW,
            trade_in=True,
            conditions=[
                {
                    "kind": "approval-required",
                    "description": "My partner approves the purchase",
                    "party": new_pairwise()[0],
                }
            ],
        ),
    ),
    "offer": ("offer", _offer),
    "counter-offer": (
        "offer",
        lambda: bodies.counter_offer_body(_offer(), REF, now=NOW, total="27000"),
    ),
    "acceptance": ("offer-acceptance", lambda: bodies.offer_acceptance_body(REF)),
    "decline": ("offer-decline", lambda: bodies.offer_decline_body([REF["id"]])),
    "terms-response": (
        "terms-response",
        lambda: bodies.terms_response_body(
            REF,
            accepted=[
                {"item": "contact.email", "purposes": ["servicing"], "retention": {"period": "P2Y"}}
            ],
            refused=["vehicle.vin"],
            data=[{"item": "contact.email", "value": "sally@example.org"}],
        ),
    ),
    "exit-notice": (
        "exit-notice",
        lambda: bodies.exit_notice_body(NOW, reengagement_allowed=True, topics=("safety",)),
    ),
    "support-request": ("support-request", bodies.support_request_body),
    "deal-confirmation": (
        "deal-confirmation",
        lambda: bodies.deal_confirmation_body(
            offer_ref=REF, acceptance_id=REF["id"], total=bodies.money("28500"), now=NOW
        ),
    ),
    "terms-assertion": (
        "terms-assertion",
        lambda: bodies.terms_assertion_body(
            party_id=VENDOR, party_name="Conformance Motors", now=NOW, categories=["contact.email"]
        ),
    ),
    "service-notice": ("service-notice", bodies.service_notice_body),
    "service-notice-with-data-requests": (
        "service-notice",
        lambda: bodies.service_notice_body(category="safety", data_requests=True),
    ),
    "exit-acknowledgement": (
        "exit-acknowledgement",
        lambda: bodies.exit_acknowledgement_body(
            notice_ref=REF, relationship=BUYER, now=NOW, held={"contact.email": "x@example.org"}
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_builder_output_is_schema_valid(name: str) -> None:
    message_type, build = CASES[name]
    payload = envelope(
        message_type,
        build(),
        sender=BUYER,
        to=[VENDOR],
        now=NOW,
        reply_inbox=VENDOR + "/vrm/inbox",
    )
    assert schema_errors(payload) is None


def test_a_broken_body_is_reported() -> None:
    # The validator the builders are judged by does refuse things.
    body = bodies.personal_rfi_body(NOW)
    del body["budget"]
    payload = envelope("personal-rfi", body, sender=BUYER, to=[VENDOR], now=NOW)
    fault = schema_errors(payload)
    assert fault is not None
    assert fault.startswith("schema-invalid")


def test_attestation_claims_are_schema_valid() -> None:
    from vrm_protocol.schema_registry import default_registry

    token = _attestation()["token"]
    segment = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert claims["sub"] == BUYER
    default_registry().validate(claims, "attestation.schema.json")
