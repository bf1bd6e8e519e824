"""The postal path: a letter rendered from the same signed RFP; paper answers unsigned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reference_buyer.letters import PostalRecipient, render_letter
from reference_buyer.scenario import sally_rfp_body
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import build_message, decode
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.keys import PairwiseIdentity, key_resolver
from vrm_protocol.models import PersonalRfpMessage, to_payload

from .conftest import RunningBuyer, VendorFactory, offer_body

POSTAL = PostalRecipient(
    "https://hampstead-motors.example",
    "Hampstead Motors <Ltd>",
    ("12 High Street", "London NW3 1QE"),
)


async def test_letter_is_the_same_signed_rfp_the_online_vendor_gets(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    online = await start_vendor("Online")
    agent = buyer.agent
    sent, letters = await agent.buying.send_rfp(
        [online.id], sally_rfp_body(agent.clock.now()), postal=[POSTAL]
    )
    letter = letters[POSTAL.party_id]
    stored = await buyer.store.entry(letter.message_id)
    assert stored is not None
    assert stored.channel == "letter"
    assert stored.status == "printed"
    assert stored.token is not None
    assert letter.digest == stored.digest == message_digest(stored.token)
    # The printed token is the signed message itself: it verifies, for that vendor.
    assert stored.token.decode() in letter.text
    verified = decode(
        stored.token,
        resolve_key=key_resolver(None),
        receiver=POSTAL.party_id,
        now=datetime.now(UTC),
    )
    assert verified.message == stored.model()
    # The letter shows the request's substance and its reference.
    for expected in (
        letter.message_id,
        letter.digest,
        "Prius",
        "GBP 30000",
        "with-delivery",
        "Hampstead Motors",
    ):
        assert expected in letter.text
    assert "Hampstead Motors &lt;Ltd&gt;" in letter.html
    assert (agent.config.letters / "hampstead-motors--ltd.txt").read_text() == letter.text
    # Same request body for both recipients, each under its own pseudonym.
    _, online_rfp = online.last("personal-rfp")
    printed = to_payload(stored.model())
    assert online_rfp["body"]["requirements"] == printed["body"]["requirements"]
    assert online_rfp["body"]["recipientCount"] == printed["body"]["recipientCount"] == 2
    assert online_rfp["from"] != printed["from"]
    assert sent[online.id].message.digest != letter.digest


async def test_paper_answer_is_stored_unsigned_ranked_and_not_accepted_electronically(
    buyer: RunningBuyer,
) -> None:
    agent = buyer.agent
    _, letters = await agent.buying.send_rfp([], sally_rfp_body(agent.clock.now()), postal=[POSTAL])
    letter_id = letters[POSTAL.party_id].message_id
    body = offer_body(datetime.now(UTC), basis="binding", total="27900")
    stored = await agent.buying.enter_paper_answer(POSTAL.party_id, body, in_reply_to=letter_id)
    assert stored.channel == "paper"
    assert not stored.verified
    assert stored.token is None
    assert stored.parent == letter_id
    offer = await buyer.store.offer_view(stored.message_id)
    assert offer is not None
    assert not offer.verified
    assert offer.record is None  # never in the ledger
    assert [r.offer_id for r in await agent.ranked_offers()] == [stored.message_id]
    with pytest.raises(LocalProtocolError) as refused:
        await agent.buying.accept(stored.message_id)
    assert refused.value.code is ErrorCode.UNKNOWN_OFFER


async def test_paper_answer_must_answer_a_letter_and_be_a_valid_offer(
    buyer: RunningBuyer,
) -> None:
    agent = buyer.agent
    _, letters = await agent.buying.send_rfp([], sally_rfp_body(agent.clock.now()), postal=[POSTAL])
    letter_id = letters[POSTAL.party_id].message_id
    with pytest.raises(LocalProtocolError) as unknown:
        await agent.buying.enter_paper_answer(
            POSTAL.party_id,
            offer_body(datetime.now(UTC)),
            in_reply_to="urn:uuid:00000000-0000-4000-8000-000000000000",
        )
    assert unknown.value.code is ErrorCode.UNKNOWN_OFFER
    invalid = offer_body(datetime.now(UTC))
    invalid["price"]["total"]["amount"] = 27900  # a float-like number, not a decimal string
    with pytest.raises(LocalProtocolError) as schema:
        await agent.buying.enter_paper_answer(POSTAL.party_id, invalid, in_reply_to=letter_id)
    assert schema.value.code is ErrorCode.SCHEMA_INVALID
    assert schema.value.path == "/body/price/total/amount"


def test_render_letter_refuses_an_rfp_to_another_vendor() -> None:
    # Only a personal RFP goes by post: the type says so (render_letter takes a
    # PersonalRfpMessage); one addressed to another vendor is refused.
    now = datetime.now(UTC)
    message = PersonalRfpMessage.model_validate(
        build_message(
            "personal-rfp",
            to_payload(sally_rfp_body(now)),
            sender=PairwiseIdentity.generate().identifier,
            to=["https://other.example"],
            now=now,
        )
    )
    with pytest.raises(ValueError, match="not addressed"):
        render_letter(
            message,
            b"a.b.c",
            recipient=POSTAL,
            reply_address=(),
            date=(now + timedelta(0)).date().isoformat(),
        )
