"""Consent changes in the library: the rows and guards of consent-change and
consent-receipt (spec §6.20, §6.21)."""

from __future__ import annotations

from typing import Any

import pytest
from test_state_machine_support import (
    Outcome,
    consent_change_body,
    consent_receipt_body,
    must,
    reach,
)

from vrm_protocol.errors import ErrorCode
from vrm_protocol.state_machine import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

S = RelationshipState
M = MessageType
B = Role.BUYER
V = Role.VENDOR
E = ErrorCode

ENGAGED = (S.NEGOTIATION, S.TRANSACTION, S.WELCOME, S.SERVICING, S.DEVELOPMENT, S.PROBLEM)


@pytest.mark.parametrize("state", ENGAGED)
def test_a_change_and_its_receipt_are_side_exchanges_of_every_engaged_state(
    state: RelationshipState,
) -> None:
    j = reach(state)
    change = j.compose(B, M.CONSENT_CHANGE, consent_change_body())
    must(j.deliver(B, change), state)
    assert j.buyer.requests[change["id"]].open
    must(
        j.step(V, M.CONSENT_RECEIPT, consent_receipt_body(change["id"], j.digests[change["id"]])),
        state,
    )
    assert not j.buyer.requests[change["id"]].open


@pytest.mark.parametrize(
    "changes",
    [
        [{"item": "contact.email", "action": "narrow"}],
        [{"item": "contact.email", "action": "widen"}],
        [{"item": "contact.email", "action": "withdraw", "purposes": ["servicing"]}],
        [
            {"item": "contact.email", "action": "withdraw"},
            {"item": "contact.email", "action": "narrow", "purposes": ["servicing"]},
        ],
    ],
)
def test_a_malformed_change_is_schema_invalid(changes: list[dict[str, Any]]) -> None:
    # VRM-GRANT-008
    j = reach(S.SERVICING)
    assert j.step(B, M.CONSENT_CHANGE, {"changes": changes}) == Outcome(None, E.SCHEMA_INVALID)


def test_a_receipt_answers_her_change_by_its_digest_and_only_once() -> None:
    j = reach(S.SERVICING)
    change = j.compose(B, M.CONSENT_CHANGE, consent_change_body())
    must(j.deliver(B, change), S.SERVICING)
    wrong = consent_receipt_body(change["id"], "sha-256:" + "W" * 43)
    assert j.step(V, M.CONSENT_RECEIPT, wrong) == Outcome(None, E.REFERENCE_MISMATCH)
    right = consent_receipt_body(change["id"], j.digests[change["id"]])
    must(j.step(V, M.CONSENT_RECEIPT, right), S.SERVICING)
    again = consent_receipt_body(change["id"], j.digests[change["id"]])
    assert j.step(V, M.CONSENT_RECEIPT, again) == Outcome(None, E.ILLEGAL_TRANSITION)


def test_no_receipt_without_a_change_and_no_change_from_the_vendor() -> None:
    j = reach(S.SERVICING)
    stray = consent_receipt_body("urn:uuid:00000000-0000-4000-8000-000000000001")
    assert j.step(V, M.CONSENT_RECEIPT, stray) == Outcome(None, E.ILLEGAL_TRANSITION)
    assert j.step(V, M.CONSENT_CHANGE, consent_change_body()) == Outcome(None, E.ILLEGAL_TRANSITION)
