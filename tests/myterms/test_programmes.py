"""Programmes joined by her request (spec §6.72) between the real agents, a
programme offer that moves nothing, and the suite's checks against the
reference agents, clean and with the fault they catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_buyer.handlers_myterms import enrol, listed_programmes
from tests.myterms.conftest import verdict
from tests.transaction.conftest import REPLY_SECONDS, Pair, PairFactory
from vrm_protocol.errors import LocalProtocolError
from vrm_protocol.models import TermsAssertionMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType


async def _in_service(pair: Pair) -> None:
    """The deal, then the dealer's terms answered: the relationship is in service."""
    await pair.deal()
    assertion = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.TERMS_ASSERTION and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    await pair.buyer.owning.answer_terms(
        assertion.message_id, notifications=("safety", "maintenance", "new-products")
    )
    assert (await pair.buyer.core(pair.dealer)).state is RelationshipState.SERVICING


async def test_she_joins_a_listed_programme_and_development_begins(pairs: PairFactory) -> None:
    pair = await pairs()
    await _in_service(pair)
    assert "new-model" in await listed_programmes(pair.buyer, pair.dealer)

    sent = await enrol(pair.buyer, pair.dealer, "new-model")

    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.TERMS_ASSERTION and e.parent == sent.message.message_id,
        within=REPLY_SECONDS,
    )
    terms = entry.model()
    assert isinstance(terms, TermsAssertionMessage)
    assert terms.body.programme is not None
    assert terms.body.programme.code == "new-model"
    assert terms.body.programme.enrolment.digest == sent.message.digest
    assert (await pair.buyer.core(pair.dealer)).state is RelationshipState.DEVELOPMENT


async def test_a_programme_it_does_not_list_is_not_asked_for(pairs: PairFactory) -> None:
    pair = await pairs()
    await _in_service(pair)
    with pytest.raises(LocalProtocolError) as refused:
        await enrol(pair.buyer, pair.dealer, "road-warrior")
    assert refused.value.code.value == "reference-mismatch"
    assert (await pair.buyer.core(pair.dealer)).state is RelationshipState.SERVICING


async def test_a_programme_offer_notice_moves_nothing(pairs: PairFactory) -> None:
    pair = await pairs()
    await _in_service(pair)
    status, answer = await pair.driver(
        "/service-notice",
        {"peer": await pair.pseudonym(), "kind": "programme-offer", "programme": "new-model"},
    )
    assert status == 200, answer
    await pair.buyer.wait_for(
        lambda e: e.type is MessageType.SERVICE_NOTICE and e.peer == pair.dealer,
        within=REPLY_SECONDS,
    )
    assert (await pair.buyer.core(pair.dealer)).state is RelationshipState.SERVICING


@pytest.mark.parametrize(
    ("role", "fault", "expected"),
    [
        ("vendor", None, "pass"),
        ("vendor", "unbound-programme-terms", "fail"),
        ("buyer", None, "pass"),
    ],
)
def test_the_suite_judges_enrolments(
    role: str, fault: str | None, expected: str, tmp_path: Path
) -> None:
    check_id = "PRG-VEN-ENROLMENT" if role == "vendor" else "PRG-BUY-ENROLMENT"
    found, result = verdict(role, check_id, tmp_path, ["--fault", fault] if fault else [])
    shown = ("reason", "expectations", "log")
    assert found == expected, {k: v for k, v in result.items() if k in shown}
