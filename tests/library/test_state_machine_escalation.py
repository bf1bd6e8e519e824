"""Problems that escalate (spec §6.12, §6.32): her open request goes to a named
higher level with a deadline; the vendor's resolutions name the escalation;
the last resolution returns to where the problem arose (VRM-CONV-005..007).

Each message runs through both sides and the store-like side at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from test_state_machine_support import (
    ANY_DIGEST,
    Journey,
    Outcome,
    escalation_body,
    must,
    new_id,
    reach,
    support_request_body,
    support_resolution_body,
)

from vrm_protocol.errors import ErrorCode
from vrm_protocol.state_machine import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

S = RelationshipState
M = MessageType
B = Role.BUYER
V = Role.VENDOR


def _problem(before: RelationshipState = S.SERVICING) -> tuple[Journey, str]:
    """A journey in PROBLEM with one open request of hers, answered in progress."""
    j = reach(before)
    request = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    must(j.deliver(B, request), S.PROBLEM)
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(request["id"], "in-progress")),
         S.PROBLEM)  # fmt: skip
    return j, str(request["id"])


def _answer(request: str, escalation: str, status: str) -> dict[str, Any]:
    body = support_resolution_body(request, status)
    body["escalation"] = {"id": escalation, "digest": ANY_DIGEST}
    return body


def _escalate(j: Journey, request: str) -> str:
    escalation = j.compose(B, M.SUPPORT_ESCALATION, escalation_body(request, j.now))
    must(j.deliver(B, escalation), S.PROBLEM)
    return str(escalation["id"])


@pytest.mark.parametrize("before", [S.WELCOME, S.SERVICING, S.DEVELOPMENT])
def test_an_escalated_problem_resolved_returns_to_where_it_arose(
    before: RelationshipState,
) -> None:
    j, request = _problem(before)
    escalation = _escalate(j, request)
    assert j.buyer.requests[escalation].open
    must(j.step(V, M.SUPPORT_RESOLUTION, _answer(request, escalation, "escalated")), S.PROBLEM)
    assert j.buyer.requests[escalation].open, "escalated: the higher level still owes its answer"
    must(j.step(V, M.SUPPORT_RESOLUTION, _answer(request, escalation, "resolved")), before)
    assert not j.buyer.requests[escalation].open
    assert not j.buyer.requests[request].open


def test_a_rejection_at_one_level_can_be_escalated_further() -> None:
    j, request = _problem()
    first = _escalate(j, request)
    must(j.step(V, M.SUPPORT_RESOLUTION, _answer(request, first, "rejected")), S.PROBLEM)
    assert not j.buyer.requests[first].open
    assert j.buyer.requests[request].open, "a rejection leaves her request open"
    # Answered finally: that escalation takes no more answers.
    again = j.step(V, M.SUPPORT_RESOLUTION, _answer(request, first, "resolved"))
    assert again == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    second = _escalate(j, request)
    must(j.step(V, M.SUPPORT_RESOLUTION, _answer(request, second, "resolved")), S.SERVICING)


def test_only_her_open_request_can_be_escalated() -> None:
    j, request = _problem()
    nothing = j.step(B, M.SUPPORT_ESCALATION, escalation_body(new_id(), j.now))
    assert nothing == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    wrong = escalation_body(request, j.now)
    wrong["request"] = {"id": request, "digest": "sha-256:" + "A" * 43}
    assert j.step(B, M.SUPPORT_ESCALATION, wrong) == Outcome(None, ErrorCode.REFERENCE_MISMATCH)
    # A resolved request is not escalated.
    second = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    must(j.deliver(B, second), S.PROBLEM)
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(second["id"])), S.PROBLEM)
    closed = j.step(B, M.SUPPORT_ESCALATION, escalation_body(str(second["id"]), j.now))
    assert closed == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    # The vendor does not escalate: no row.
    assert j.step(V, M.SUPPORT_ESCALATION, escalation_body(request, j.now)).state is None


def test_a_deadline_must_be_after_the_escalation() -> None:
    j, request = _problem()
    late = j.step(B, M.SUPPORT_ESCALATION, escalation_body(request, j.now, deadline=timedelta(0)))
    assert late == Outcome(None, ErrorCode.SCHEMA_INVALID)


def test_a_resolution_names_an_escalation_of_hers() -> None:
    j, request = _problem()
    unknown = j.step(V, M.SUPPORT_RESOLUTION, _answer(request, new_id(), "escalated"))
    assert unknown == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    escalation = _escalate(j, request)
    wrong = _answer(request, escalation, "escalated")
    wrong["escalation"]["digest"] = "sha-256:" + "A" * 43
    refused = j.step(V, M.SUPPORT_RESOLUTION, wrong)
    assert refused == Outcome(None, ErrorCode.REFERENCE_MISMATCH)


@pytest.mark.parametrize("state", [S.WELCOME, S.SERVICING, S.NEGOTIATION, S.EXITED])
def test_no_escalation_outside_a_problem(state: RelationshipState) -> None:
    j = reach(state)
    outcome = j.step(B, M.SUPPORT_ESCALATION, escalation_body(new_id(), j.now))
    assert outcome.state is None
