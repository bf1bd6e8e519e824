"""Her own terms (spec §6.70, §6.71) between the real agents, and the suite's
checks against the reference agents, clean and with the faults they catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference_buyer.handlers_myterms import my_terms, proffer
from reference_buyer.scenario import sally_rfi_body
from tests.myterms.conftest import verdict
from tests.transaction.conftest import REPLY_SECONDS, PairFactory
from vrm_agent.unit import outgoing
from vrm_protocol.errors import LocalProtocolError
from vrm_protocol.models import AgreementRef, TermsAgreementMessage, TermsProfferBody
from vrm_protocol.myterms import roster
from vrm_protocol.vocabulary import MessageType


async def _engaged(pair: object) -> None:
    buyer, dealer = pair.buyer, pair.dealer  # type: ignore[attr-defined]
    await buyer.buying.send_rfis([dealer], sally_rfi_body(buyer.clock.now()))
    await buyer.wait_for(
        lambda e: e.type is MessageType.OFFER and e.peer == dealer, within=REPLY_SECONDS
    )


async def _answer(pair: object, proffer_id: str) -> TermsAgreementMessage:
    entry = await pair.buyer.wait_for(  # type: ignore[attr-defined]
        lambda e: e.type is MessageType.TERMS_AGREEMENT and e.parent == proffer_id,
        within=REPLY_SECONDS,
    )
    message = entry.model()
    assert isinstance(message, TermsAgreementMessage)
    return message


async def test_the_dealer_agrees_to_what_it_lists_and_declines_the_rest(
    pairs: PairFactory,
) -> None:
    pair = await pairs()
    await _engaged(pair)
    async with pair.http.get(pair.dealer + "/.well-known/vrm") as answer:
        listed = [a["id"] for a in (await answer.json())["agreements"]]
    assert listed == ["myterms-sd-bb"]

    agreed = await proffer(pair.buyer, pair.dealer, "myterms-sd-bb")
    declined = await proffer(pair.buyer, pair.dealer, "myterms-notices-only")

    yes = await _answer(pair, agreed.message.message_id)
    no = await _answer(pair, declined.message.message_id)
    assert (yes.body.decision, no.body.decision) == ("agree", "decline")
    assert yes.body.proffer.digest == agreed.message.digest
    assert yes.body.agreement.id == "myterms-sd-bb"
    records = {r.agreement: r.decision for r in await my_terms(pair.buyer, pair.dealer)}
    assert records == {"myterms-sd-bb": "agree", "myterms-notices-only": "decline"}


async def test_a_proffer_off_the_roster_is_refused_before_it_is_sent(pairs: PairFactory) -> None:
    pair = await pairs()
    await _engaged(pair)
    known = next(iter(roster().values()))
    body = TermsProfferBody(
        agreement=AgreementRef(id=known.id, version=known.version, digest="sha-256:" + "A" * 43)
    )
    with pytest.raises(LocalProtocolError) as refused:
        await pair.buyer.sender.send(pair.dealer, outgoing(body, thread=None, parent=None))
    assert refused.value.code.value == "reference-mismatch"


async def test_the_faulty_dealer_declines_what_it_lists(pairs: PairFactory) -> None:
    pair = await pairs(vendor_faults=("decline-listed-agreement",))
    await _engaged(pair)
    sent = await proffer(pair.buyer, pair.dealer, "myterms-sd-bb")
    assert (await _answer(pair, sent.message.message_id)).body.decision == "decline"


@pytest.mark.parametrize(
    ("role", "fault", "expected"),
    [
        ("vendor", None, "pass"),
        ("vendor", "decline-listed-agreement", "fail"),
        ("buyer", None, "pass"),
        ("buyer", "take-any-terms-agreement", "fail"),
    ],
)
def test_the_suite_judges_her_terms(
    role: str, fault: str | None, expected: str, tmp_path: Path
) -> None:
    check_id = "MYT-VEN-AGREEMENT" if role == "vendor" else "MYT-BUY-PROFFER"
    found, result = verdict(role, check_id, tmp_path, ["--fault", fault] if fault else [])
    assert found == expected, {
        k: v for k, v in result.items() if k in ("reason", "expectations", "log")
    }
