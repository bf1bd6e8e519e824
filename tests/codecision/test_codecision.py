"""A co-decision-maker with his own agent (spec §10.2, §11.11): her agent asks
his agent for the approval of one offer; he approves or refuses from his agent;
his agent signs with his own key and posts the answer to her reply inbox; the
dealer verifies the approval her acceptance carries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reference_buyer.scenario import sally_rfi_body, sally_rfp_body
from vrm_protocol.approval_requests import (
    APPROVALS_PATH,
    issue_approval,
    issue_approval_request,
    verify_approval_request,
)
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.keys import PairwiseIdentity
from vrm_protocol.models import OfferAcceptanceMessage
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

from .conftest import Household

WITHIN = 10.0


async def _offer_needing_approval(home: Household) -> tuple[str, str]:
    """RFI, enrolment with his agent, RFP naming him; the dealer's binding offer
    (its id) and the identifier he approves under."""
    sally = home.sally
    await sally.buying.send_rfis([home.dealer], sally_rfi_body(sally.clock.now()))
    await sally.wait_for(lambda e: e.type is MessageType.OFFER, within=WITHIN)
    approver = await sally.codecision.enrol(home.dealer, home.husband_url)
    assert approver.startswith("did:jwk:")
    sent, _ = await sally.buying.send_rfp(
        [home.dealer], sally_rfp_body(sally.clock.now()), approver={home.dealer: approver}
    )
    rfp_id = sent[home.dealer].message.message_id
    entry = await sally.wait_for(
        lambda e: e.type is MessageType.OFFER and e.parent == rfp_id, within=WITHIN
    )
    view = await sally.store.offer_view(entry.message_id)
    assert view is not None
    parties = [c.party for c in view.body.conditions or () if c.kind == "approval-required"]
    assert parties == [approver], "the dealer makes his approval a condition (spec §10.2)"
    return entry.message_id, approver


async def _driver(home: Household, base: str, path: str, body: object) -> tuple[int, dict]:
    async with home.http.post(base + TEST_DRIVER_PREFIX + path, json=body) as answer:
        return answer.status, await answer.json(content_type=None)


async def test_he_approves_from_his_own_agent_and_the_dealer_takes_the_acceptance(
    household: Household,
) -> None:
    home = household
    offer_id, approver = await _offer_needing_approval(home)
    sally = home.sally
    with pytest.raises(LocalProtocolError) as missing:
        await sally.buying.accept(offer_id)
    assert missing.value.code is ErrorCode.APPROVAL_MISSING

    # Her agent asks his (through its test driver, as she would from her app).
    status, asked = await _driver(
        home, home.sally_url, "/approval-request", {"offer": offer_id, "agent": home.husband_url}
    )
    assert status == 200, asked
    request = asked["request"]
    # He sees it in his agent, with a summary and the offer's digest, and approves.
    status, listed = await _driver(home, home.husband_url, "/approvals", {})
    assert status == 200
    [pending] = listed["received"]
    assert pending["request"] == request
    assert pending["status"] == "pending"
    assert pending["vendor"] == home.dealer
    assert "GBP" in pending["summary"]
    offer_view = await sally.store.offer_view(offer_id)
    assert offer_view is not None
    assert pending["offer"]["digest"] == offer_view.entry.ref().digest
    status, decided = await _driver(
        home, home.husband_url, "/approve", {"request": request, "decision": "approve"}
    )
    assert status == 200, decided
    [row] = await sally.codecision.asked()
    assert row["status"] == "approved"

    # The acceptance carries his approval (the driver takes it from her store).
    seq = (await sally.store.history())[-1].seq
    status, accepted = await _driver(home, home.sally_url, "/accept", {"offer": offer_id})
    assert status == 200, accepted
    await sally.wait_for(
        lambda e: e.seq > seq and e.type is MessageType.DEAL_CONFIRMATION, within=WITHIN
    )
    entry = await sally.store.entry(accepted["sent"])
    assert entry is not None
    acceptance = entry.model()
    assert isinstance(acceptance, OfferAcceptanceMessage)
    [approval] = acceptance.body.approvals or ()
    assert approval.issuer == approver
    verified = verify_attestation(
        approval.model_dump(mode="json"),
        trusted_issuers={approver: None},
        subject=acceptance.from_,
        audience=home.dealer,
        now=sally.clock.now(),
        kind="approval",
    )
    assert verified.claims["approves"]["offer"] == pending["offer"]
    # Her agent never held his key: his identifier is no pseudonym of hers, and
    # his agent holds it for her relationship with the dealer only.
    assert await sally.pseudonyms.by_identifier(approver) is None
    assert await home.husband.pseudonyms.by_identifier(approver) is not None


async def test_he_refuses_and_she_cannot_accept(household: Household) -> None:
    home = household
    offer_id, _ = await _offer_needing_approval(home)
    status, asked = await _driver(
        home, home.sally_url, "/approval-request", {"offer": offer_id, "agent": home.husband_url}
    )
    assert status == 200
    status, _ = await _driver(
        home,
        home.husband_url,
        "/approve",
        {"request": asked["request"], "decision": "refuse", "reason": "too dear"},
    )
    assert status == 200
    [row] = await home.sally.codecision.asked()
    assert row["status"] == "refused"
    assert row["answer"] == {"reason": "too dear"}
    assert await home.sally.codecision.approvals_for(offer_id) == []
    with pytest.raises(LocalProtocolError) as missing:
        await home.sally.buying.accept(offer_id)
    assert missing.value.code is ErrorCode.APPROVAL_MISSING
    # A decision is made once.
    status, again = await _driver(
        home, home.husband_url, "/approve", {"request": asked["request"], "decision": "approve"}
    )
    assert status >= 400
    assert again["code"] == ErrorCode.NOT_FOUND.value


async def test_her_reply_inbox_takes_only_his_approval_of_that_offer(
    household: Household,
) -> None:
    home = household
    offer_id, approver = await _offer_needing_approval(home)
    jti = await home.sally.codecision.ask(
        {"id": offer_id, "digest": "sha-256:" + "A" * 43},
        vendor=home.dealer,
        agent=home.husband_url,
        summary="the wrong digest",
    )
    [row] = await home.sally.codecision.asked(jti)
    pseudonym = row["data"]["requester"]
    stranger = PairwiseIdentity.generate()
    request = verify_approval_request(
        issue_approval_request(
            key=(await home.sally.pseudonyms.ensure(home.dealer)).identity.signing_key,
            requester=pseudonym,
            agent=home.husband_url,
            vendor=home.dealer,
            now=home.sally.clock.now(),
            reply_to="http://127.0.0.1:1/x",
            offer=row["data"]["offer"],
            summary="x",
        )[1],
        agent=home.husband_url,
        now=home.sally.clock.now(),
    )
    forged = issue_approval(
        request, key=stranger.signing_key, approver=stranger.identifier, now=home.sally.clock.now()
    )
    reply_url = await _reply_url(home, jti)
    async with home.http.post(
        reply_url, data=forged["token"], headers={"Content-Type": MESSAGE_MEDIA_TYPE}
    ) as answer:
        assert answer.status == 422
        assert (await answer.json())["code"] == ErrorCode.ATTESTATION_INVALID.value
    # His own agent approves what it was asked: a digest that is not the offer's.
    await home.husband.codecision.decide(
        (await home.husband.codecision.pending())[0]["request"], approve=True
    )
    approvals = await home.sally.codecision.approvals_for(offer_id)
    assert approvals
    # Her agent checks it against the offer's bytes before it carries it.
    with pytest.raises(LocalProtocolError) as invalid:
        await home.sally.buying.accept(offer_id, approvals=approvals)
    assert invalid.value.code is ErrorCode.ATTESTATION_INVALID
    assert approvals[0]["issuer"] == approver


async def _reply_url(home: Household, jti: str) -> str:
    rows = await home.sally.store.approval_requests(side="asked", jti=jti)
    token_rows = await home.husband.store.approval_requests(side="received", jti=jti)
    request = verify_approval_request(
        str(token_rows[0]["data"]["token"]).encode(),
        agent=home.husband_url,
        now=home.husband.clock.now(),
    )
    assert rows
    assert request.reply_to is not None
    return request.reply_to


async def test_his_agent_refuses_a_request_for_another_agent_or_a_stale_one(
    household: Household,
) -> None:
    home = household
    her = PairwiseIdentity.generate()
    now = home.sally.clock.now()
    offer = {"id": "urn:uuid:00000000-0000-4000-8000-000000000000", "digest": "sha-256:" + "A" * 43}
    for agent, at in (
        ("https://someone-else.example", now),
        (home.husband_url, now - timedelta(days=3)),
    ):
        _, token = issue_approval_request(
            key=her.signing_key,
            requester=her.identifier,
            agent=agent,
            vendor=home.dealer,
            now=at,
            reply_to=home.sally_url + "/vrm/approvals/replies/x",
            offer=offer,
            summary="a car",
        )
        async with home.http.post(
            home.husband_url + APPROVALS_PATH,
            data=token,
            headers={"Content-Type": MESSAGE_MEDIA_TYPE},
        ) as answer:
            assert answer.status == 400
            assert (await answer.json())["code"] == ErrorCode.INVALID_REQUEST.value
    # Signed by a key that is not the requester's: refused too.
    other = PairwiseIdentity.generate()
    _, token = issue_approval_request(
        key=other.signing_key,
        requester=her.identifier,
        agent=home.husband_url,
        vendor=home.dealer,
        now=now,
        reply_to=home.sally_url + "/vrm/approvals/replies/x",
        offer=offer,
        summary="a car",
    )
    with pytest.raises(RemoteProtocolError):
        verify_approval_request(token, agent=home.husband_url, now=now)
    assert await home.husband.codecision.pending() == []


async def test_he_lists_and_approves_from_the_command_line(household: Household) -> None:
    import asyncio

    from click.testing import CliRunner

    from reference_buyer.cli import buyer

    home = household
    offer_id, approver = await _offer_needing_approval(home)
    jti = await home.sally.codecision.ask(
        {"id": offer_id, "digest": (await _digest(home, offer_id))},
        vendor=home.dealer,
        agent=home.husband_url,
        summary="Toyota Prius: GBP 19000",
    )
    data_dir = str(home.husband.config.data_dir)
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, buyer, ["approvals", "--data-dir", data_dir])
    assert listed.exit_code == 0, listed.output
    assert jti in listed.output
    assert "Toyota Prius" in listed.output
    approved = await asyncio.to_thread(
        runner.invoke,
        buyer,
        ["approve", "--data-dir", data_dir, "--allow-delivery-to", "127.0.0.1", jti],
    )
    assert approved.exit_code == 0, approved.output
    [approval] = await home.sally.codecision.approvals_for(offer_id)
    assert approval["issuer"] == approver


async def _digest(home: Household, offer_id: str) -> str:
    view = await home.sally.store.offer_view(offer_id)
    assert view is not None
    return view.entry.ref().digest
