"""Questions and answers (spec §6.30, §6.31): either party asks, the other
answers once, and the relationship never moves (VRM-CONV-001..003).

Each message runs through both sides and the store-like side at once
(:class:`Journey`), so the guard, its ledger query and the in-memory machine
must agree on every verdict.
"""

from __future__ import annotations

import pytest
from test_state_machine_support import (
    ANY_DIGEST,
    Journey,
    Outcome,
    must,
    new_id,
    reach,
)

from vrm_protocol.errors import ErrorCode
from vrm_protocol.message_types.question import CONVERSATION_STATES
from vrm_protocol.state_machine import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

S = RelationshipState
M = MessageType
B = Role.BUYER
V = Role.VENDOR


def _question(topic: str = "trim") -> dict[str, object]:
    return {"topic": topic, "text": "Which trim do you mean?"}


def _answer(question_id: str, digest: str = ANY_DIGEST) -> dict[str, object]:
    return {"question": {"id": question_id, "digest": digest}, "text": "The entry trim."}


def _ask(j: Journey, asker: Role) -> str:
    question = j.compose(asker, M.QUESTION, _question())
    before = j.buyer.state
    must(j.deliver(asker, question), before)
    return str(question["id"])


@pytest.mark.parametrize("state", CONVERSATION_STATES)
@pytest.mark.parametrize("asker", [B, V])
def test_a_question_and_its_answer_leave_the_state_as_it_was(
    state: RelationshipState, asker: Role
) -> None:
    j = reach(state)
    question = _ask(j, asker)
    assert j.buyer.requests[question].open
    must(j.step(asker.peer, M.ANSWER, _answer(question), parent=question), state)
    assert not j.buyer.requests[question].open


@pytest.mark.parametrize("state", [S.SEARCH, S.EXITING, S.EXITED, S.CLOSED])
def test_no_question_outside_a_conversation(state: RelationshipState) -> None:
    j = reach(state)
    outcome = j.step(V, M.QUESTION, _question())
    assert outcome.state is None
    assert outcome.code in (ErrorCode.ILLEGAL_TRANSITION, ErrorCode.RELATIONSHIP_EXITED)


def test_an_answer_names_a_question_of_the_other_party() -> None:
    j = reach(S.NEGOTIATION)
    # No such question.
    assert j.step(B, M.ANSWER, _answer(new_id())) == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    # Her own question: she cannot answer it herself.
    own = _ask(j, B)
    assert j.step(B, M.ANSWER, _answer(own)) == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


def test_an_answer_is_given_once() -> None:
    j = reach(S.NEGOTIATION)
    question = _ask(j, V)
    must(j.step(B, M.ANSWER, _answer(question)), S.NEGOTIATION)
    assert j.step(B, M.ANSWER, _answer(question)) == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


def test_an_answer_binds_the_question_as_sent() -> None:
    j = reach(S.ENQUIRY)
    question = _ask(j, V)
    other = "sha-256:" + "A" * 43
    wrong = j.step(B, M.ANSWER, _answer(question, other))
    assert wrong == Outcome(None, ErrorCode.REFERENCE_MISMATCH)
    must(j.step(B, M.ANSWER, _answer(question)), S.ENQUIRY)


def test_a_question_does_not_disturb_the_negotiation() -> None:
    j = reach(S.NEGOTIATION)
    offers = dict(j.buyer.offers)
    question = _ask(j, B)
    must(j.step(V, M.ANSWER, _answer(question), parent=question), S.NEGOTIATION)
    assert dict(j.buyer.offers) == offers
