"""The guards of the transaction carried through (spec §6.22-§6.24): delivery,
the handover with the trade-in (seed 001: both or neither), her inspection.
Each move is decided on both sides and from queried facts (the journey of
``test_state_machine_support``)."""

from __future__ import annotations

from typing import Any

import pytest
from deal_transaction_bodies import (
    delivered,
    handover_body,
    invoice_body,
    open_invoice,
    payment_body,
    transaction_body,
)
from test_state_machine_support import Journey, Outcome, reach

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import RequestStatus
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

M = MessageType
S = RelationshipState
V, B = Role.VENDOR, Role.BUYER
MISSING = "urn:uuid:00000000-0000-4000-8000-0000000000aa"
NEW_CAR = {"kind": "new-vehicle", "description": "Prius", "direction": "to-buyer"}
OLD_CAR = {"kind": "trade-in", "description": "Auris", "direction": "to-vendor"}
PAPERS = {"kind": "papers", "description": "V5C", "direction": "to-buyer"}


def _body(journey: Journey, message_type: MessageType) -> dict[str, Any]:
    body = transaction_body(journey, message_type, MISSING)
    assert body is not None
    return body


def _handover(journey: Journey, **kw: Any) -> Outcome:
    return journey.step(V, M.HANDOVER_RECORD, handover_body(journey, MISSING, **kw))


@pytest.mark.parametrize("state", [S.WELCOME, S.SERVICING, S.DEVELOPMENT, S.PROBLEM])
def test_delivery_handover_and_inspection_are_side_exchanges(state: RelationshipState) -> None:
    journey = reach(state)
    assert journey.step(V, M.DELIVERY_NOTICE, _body(journey, M.DELIVERY_NOTICE)) == Outcome(
        state, None
    )
    assert _handover(journey, trade_in=True, items=[NEW_CAR, OLD_CAR]) == Outcome(state, None)
    handover = journey.latest_request(M.HANDOVER_RECORD, open_only=True)
    assert handover is not None
    inspection = journey.step(B, M.INSPECTION_RESULT, _body(journey, M.INSPECTION_RESULT))
    assert inspection == Outcome(state, None)
    # The handover is inspected; the accepted inspection is what an invoice needs.
    assert journey.buyer.requests[handover].status is RequestStatus.CLOSED
    assert journey.latest_request(M.INSPECTION_RESULT, open_only=True) is not None


@pytest.mark.parametrize("state", [S.NEGOTIATION, S.TRANSACTION, S.EXITED])
def test_no_delivery_before_the_deal_or_after_the_exit(state: RelationshipState) -> None:
    journey = reach(state)
    outcome = journey.step(V, M.DELIVERY_NOTICE, _body(journey, M.DELIVERY_NOTICE))
    assert outcome.state is None
    assert outcome.code in {ErrorCode.ILLEGAL_TRANSITION, ErrorCode.RELATIONSHIP_EXITED}


@pytest.mark.parametrize(
    ("items", "why"),
    [
        ([NEW_CAR, PAPERS], "the new car to her, the trade-in not taken"),
        ([OLD_CAR], "the trade-in taken, the new car not delivered"),
    ],
)
def test_a_one_sided_handover_is_refused(items: list[Any], why: str) -> None:
    journey = reach(S.SERVICING)
    assert _handover(journey, trade_in=True, items=items) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    ), why


@pytest.mark.parametrize(
    ("trade_in", "items"),
    [
        (True, [NEW_CAR, OLD_CAR, PAPERS]),
        (True, [PAPERS]),  # neither car: only papers changed hands
        (False, [NEW_CAR, PAPERS]),
    ],
)
def test_both_or_neither_is_taken(trade_in: bool, items: list[Any]) -> None:
    journey = reach(S.WELCOME)
    assert _handover(journey, trade_in=trade_in, items=items) == Outcome(S.WELCOME, None)


def test_a_trade_in_the_deal_does_not_have_is_refused() -> None:
    journey = reach(S.WELCOME)
    outcome = _handover(journey, trade_in=False, items=[NEW_CAR, OLD_CAR])
    assert outcome == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("offer", "digest"), "sha-256:" + "Z" * 43),
        (("offer", "id"), MISSING),
        (("acceptance", "id"), MISSING),
    ],
)
def test_the_handover_is_bound_to_the_deal(path: tuple[str, str], value: str) -> None:
    journey = reach(S.SERVICING)
    body = handover_body(journey, MISSING)
    body["deal"][path[0]][path[1]] = value
    outcome = journey.step(V, M.HANDOVER_RECORD, body)
    assert outcome == Outcome(None, ErrorCode.REFERENCE_MISMATCH)


def test_the_delivery_notice_names_the_accepted_offer() -> None:
    journey = reach(S.WELCOME)
    body = _body(journey, M.DELIVERY_NOTICE)
    body["deal"]["offer"]["digest"] = "sha-256:" + "Z" * 43
    outcome = journey.step(V, M.DELIVERY_NOTICE, body)
    assert outcome == Outcome(None, ErrorCode.REFERENCE_MISMATCH)


def test_a_refusal_says_why_and_closes_the_handover() -> None:
    journey = reach(S.SERVICING)
    body = _body(journey, M.INSPECTION_RESULT)
    handover = body["handover"]["id"]
    refused = {**body, "decision": "refuse"}
    assert journey.step(B, M.INSPECTION_RESULT, refused) == Outcome(None, ErrorCode.SCHEMA_INVALID)
    reasons = [{"code": "trade-in-not-taken", "text": "The Auris is not listed."}]
    assert journey.step(B, M.INSPECTION_RESULT, {**refused, "reasons": reasons}) == Outcome(
        S.SERVICING, None
    )
    assert journey.buyer.requests[handover].status is RequestStatus.CLOSED
    # Refused: the deal is not delivered.
    assert journey.latest_request(M.INSPECTION_RESULT) is None
    # A handover is inspected once.
    again = journey.step(B, M.INSPECTION_RESULT, {**body, "decision": "accept"})
    assert again == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


def test_an_inspection_answers_the_vendor_s_record_by_its_digest() -> None:
    journey = reach(S.WELCOME)
    body = _body(journey, M.INSPECTION_RESULT)
    wrong = {**body, "handover": {**body["handover"], "digest": "sha-256:" + "Z" * 43}}
    assert journey.step(B, M.INSPECTION_RESULT, wrong) == Outcome(
        None, ErrorCode.REFERENCE_MISMATCH
    )
    nothing = {**body, "handover": {"id": MISSING, "digest": "sha-256:" + "Z" * 43}}
    assert journey.step(B, M.INSPECTION_RESULT, nothing) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )


# -- invoice and payment (spec §6.25-§6.28) ------------------------------------------------------


def test_no_invoice_before_she_accepted_a_handover() -> None:
    journey = reach(S.SERVICING)
    assert journey.step(V, M.INVOICE, invoice_body(journey, MISSING)) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )
    # A refused handover is not a delivery either.
    _handover(journey)
    handover = journey.latest_request(M.HANDOVER_RECORD, open_only=True)
    refusal = {
        "handover": {"id": handover, "digest": "sha-256:" + "0" * 43},
        "decision": "refuse",
        "reasons": [{"code": "damaged", "text": "A dent in the door."}],
    }
    assert journey.step(B, M.INSPECTION_RESULT, refusal) == Outcome(S.SERVICING, None)
    assert journey.step(V, M.INVOICE, invoice_body(journey, MISSING)) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )
    delivered(journey, MISSING)
    assert journey.step(V, M.INVOICE, invoice_body(journey, MISSING)) == Outcome(S.SERVICING, None)


def test_the_total_is_the_sum_of_the_lines() -> None:
    journey = reach(S.WELCOME)
    delivered(journey, MISSING)
    outcome = journey.step(V, M.INVOICE, invoice_body(journey, MISSING, total="28000"))
    assert outcome == Outcome(None, ErrorCode.SCHEMA_INVALID)


def test_an_adjustment_supersedes_the_queried_invoice_which_can_no_longer_be_paid() -> None:
    journey = reach(S.SERVICING)
    first = open_invoice(journey, MISSING)
    query = _body(journey, M.INVOICE_QUERY)
    assert journey.step(B, M.INVOICE_QUERY, query) == Outcome(S.SERVICING, None)
    adjusted = {
        **invoice_body(journey, MISSING),
        "id": "INV-1-A",
        "supersedes": {"id": first, "digest": "sha-256:" + "0" * 43},
    }
    assert journey.step(V, M.INVOICE, adjusted) == Outcome(S.SERVICING, None)
    assert journey.buyer.requests[first].status is RequestStatus.CLOSED
    assert journey.step(B, M.PAYMENT_NOTICE, payment_body(journey, first)) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )
    # Superseding it again is refused too: it no longer awaits payment.
    assert journey.step(V, M.INVOICE, adjusted) == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


def test_paid_once_receipted_once() -> None:
    journey = reach(S.DEVELOPMENT)
    invoice = open_invoice(journey, MISSING)
    finance_only = {**payment_body(journey, invoice)}
    del finance_only["financing"]
    assert journey.step(B, M.PAYMENT_NOTICE, finance_only) == Outcome(
        None, ErrorCode.SCHEMA_INVALID
    )
    assert journey.step(B, M.PAYMENT_NOTICE, payment_body(journey, invoice)) == Outcome(
        S.DEVELOPMENT, None
    )
    assert journey.step(B, M.PAYMENT_NOTICE, payment_body(journey, invoice)) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )
    receipt = _body(journey, M.PAYMENT_RECEIPT)
    assert journey.step(V, M.PAYMENT_RECEIPT, receipt) == Outcome(S.DEVELOPMENT, None)
    assert journey.step(V, M.PAYMENT_RECEIPT, receipt) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )


def test_a_payment_names_the_invoice_by_its_digest() -> None:
    journey = reach(S.WELCOME)
    invoice = open_invoice(journey, MISSING)
    body = payment_body(journey, invoice)
    body["invoice"] = {"id": invoice, "digest": "sha-256:" + "Z" * 43}
    assert journey.step(B, M.PAYMENT_NOTICE, body) == Outcome(None, ErrorCode.REFERENCE_MISMATCH)


def test_finance_names_its_plan_or_its_lender() -> None:
    journey = reach(S.SERVICING)
    invoice = open_invoice(journey, MISSING)
    nameless = {**payment_body(journey, invoice), "financing": {}}
    assert journey.step(B, M.PAYMENT_NOTICE, nameless) == Outcome(None, ErrorCode.SCHEMA_INVALID)
    lender_only = {
        **payment_body(journey, invoice),
        "financing": {"provider": "https://credit-union.example"},
    }
    assert journey.step(B, M.PAYMENT_NOTICE, lender_only) == Outcome(S.SERVICING, None)
