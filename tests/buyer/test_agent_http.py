"""The buyer agent against small in-test vendors over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reference_buyer.scenario import sally_rfi_body, sally_rfp_body
from vrm_protocol.attestations import issue_attestation, verify_attestation
from vrm_protocol.codec import decode, encode
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.keys import PairwiseIdentity, key_resolver
from vrm_protocol.vocabulary import MessageType

from .conftest import RunningBuyer, VendorFactory, offer_body


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for member in value.values():
            yield from _strings(member)
    elif isinstance(value, list):
        for member in value:
            yield from _strings(member)


async def test_rfis_to_two_vendors_share_no_key_id_thread_or_identifier(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    first, second = await start_vendor("A"), await start_vendor("B")
    now = buyer.agent.clock.now()
    await buyer.agent.buying.send_rfis([first.id, second.id], sally_rfi_body(now))
    (token_a, rfi_a), (token_b, rfi_b) = first.last("personal-rfi"), second.last("personal-rfi")

    assert rfi_a["from"].startswith("did:jwk:")
    assert rfi_b["from"].startswith("did:jwk:")
    assert rfi_a["to"] == [first.id]
    assert rfi_b["to"] == [second.id]
    assert rfi_a["thread"] == rfi_a["id"]
    assert rfi_b["thread"] == rfi_b["id"]
    header_a = json.loads(_b64(token_a.split(b".")[0]))
    header_b = json.loads(_b64(token_b.split(b".")[0]))
    assert header_a["kid"] != header_b["kid"]
    # Identifiers (ids, threads, pseudonyms, keys) appear in one vendor's material only.
    identifiers_a = {s for s in _strings(rfi_a) if s.startswith(("did:jwk:", "urn:uuid:"))}
    identifiers_b = {s for s in _strings(rfi_b) if s.startswith(("did:jwk:", "urn:uuid:"))}
    assert identifiers_a
    assert identifiers_b
    assert not identifiers_a & identifiers_b
    assert "." not in rfi_a["created"]
    # Even the reply addresses differ (same agent, one address per relationship).
    assert rfi_a["replyTo"]["inbox"] != rfi_b["replyTo"]["inbox"]
    assert rfi_a["replyTo"]["inbox"].startswith(buyer.inbox + "/")
    # Nothing identifying is disclosed in an intentcast (spec §12).
    everything = json.dumps(rfi_a) + json.dumps(rfi_b)
    for secret in ("Sally", "sally@example.org", "SX19 ABC", "Example Street"):
        assert secret not in everything


def _b64(segment: bytes) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


async def test_offer_is_receipted_resend_gets_original_and_replay_is_refused(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("A")
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    payload, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))

    status, receipt, content_type = await buyer.post(token)
    assert status == 202
    assert content_type == "application/vrm+jws"
    verified = decode(
        receipt, resolve_key=key_resolver(None), receiver=vendor.id, now=datetime.now(UTC)
    )
    assert verified.payload["from"] == rfi["from"]
    assert verified.payload["body"]["regarding"] == vendor.ref(token, payload)

    again_status, again_receipt, _ = await buyer.post(token)
    assert again_status == 200
    assert again_receipt == receipt

    changed = {**payload, "extensions": {"org.example.replayed": True}}
    replay_status, problem, problem_type = await buyer.post(encode(changed, vendor.key))
    assert replay_status == 409
    assert problem_type == "application/problem+json"
    assert json.loads(problem)["code"] == ErrorCode.REPLAY.value
    assert await buyer.store.offer_view(payload["id"]) is not None


async def test_a_vendor_writing_to_another_vendors_pseudonym_is_answered_as_for_a_stranger(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    owner, stranger = await start_vendor("A"), await start_vendor("B")
    await buyer.agent.buying.send_rfis(
        [owner.id, stranger.id], sally_rfi_body(buyer.agent.clock.now())
    )
    _, rfi = owner.last("personal-rfi")
    _, token = stranger.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    status, problem, _ = await buyer.post(token)
    # As for a pseudonym that is nobody's (spec §12: no oracle on her pseudonyms).
    assert status == 421
    assert json.loads(problem)["code"] == ErrorCode.WRONG_AUDIENCE.value


async def test_unsolicited_sender_is_refused_as_unknown_key(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    owner = await start_vendor("A")
    await buyer.agent.buying.send_rfis([owner.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = owner.last("personal-rfi")
    stranger = await start_vendor("Unsolicited")
    _, token = stranger.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    status, problem, _ = await buyer.post(token)
    assert status == 401
    assert json.loads(problem)["code"] == ErrorCode.UNKNOWN_KEY.value


async def test_inbox_refuses_wrong_media_type_before_reading(buyer: RunningBuyer) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.post(buyer.inbox, data=b"x.y.z", headers={"Content-Type": "text/plain"}) as reply,
    ):
        assert reply.status == 415
        assert (await reply.json())["code"] == ErrorCode.UNSUPPORTED_MEDIA_TYPE.value


async def test_negotiation_and_acceptance_with_co_decision_makers_approval(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor, other = await start_vendor("A"), await start_vendor("B")
    agent = buyer.agent
    await agent.buying.send_rfis([vendor.id, other.id], sally_rfi_body(agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    indicative, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    assert (await buyer.post(token))[0] == 202
    _, other_rfi = other.last("personal-rfi")
    other_offer, other_token = other.reply(
        other_rfi, MessageType.OFFER, offer_body(datetime.now(UTC), basis="binding")
    )
    assert (await buyer.post(other_token))[0] == 202

    # Her partner, the co-decision-maker, holds his own key (never her agent).
    partner = PairwiseIdentity.generate()
    await agent.buying.send_rfp(
        [vendor.id], sally_rfp_body(agent.clock.now()), approver=partner.identifier
    )
    _, rfp = vendor.last("personal-rfp")
    assert rfp["thread"] == rfi["thread"]
    assert rfp["body"]["inResponseTo"] == [vendor.ref(token, indicative)]
    approver = rfp["body"]["conditions"][0]["party"]
    assert approver == partner.identifier
    assert approver != rfp["from"]

    binding, binding_token = vendor.reply(
        rfp,
        MessageType.OFFER,
        offer_body(
            datetime.now(UTC),
            basis="binding",
            total="29000",
            allowance="4000",
            supersedes=vendor.ref(token, indicative),
            approval_party=approver,
        ),
    )
    assert (await buyer.post(binding_token))[0] == 202
    with pytest.raises(LocalProtocolError) as superseded:
        await agent.buying.accept(indicative["id"])
    assert superseded.value.code is ErrorCode.OFFER_SUPERSEDED

    await agent.buying.counter(binding["id"], "24000")
    counter_token, counter = vendor.last("offer")
    assert counter["body"]["basis"] == "counter"
    assert counter["body"]["supersedes"] == vendor.ref(binding_token, binding)
    assert counter["body"]["price"]["total"]["amount"] == "24000"
    improved, improved_token = vendor.reply(
        counter,
        MessageType.OFFER,
        offer_body(
            datetime.now(UTC),
            basis="binding",
            total="28500",
            allowance="4000",
            supersedes=vendor.ref(counter_token, counter),
            approval_party=approver,
        ),
    )
    assert (await buyer.post(improved_token))[0] == 202

    # He approves exactly the improved offer, with his own key.
    his_approval = issue_attestation(
        kind="approval",
        subject=rfp["from"],
        audience=[vendor.id],
        claims={
            "approves": {"offer": vendor.ref(improved_token, improved), "summary": "Agreed"},
            "relation": "co-decision-maker",
        },
        issuer_key=partner.signing_key,
        issuer_id=partner.identifier,
        now=datetime.now(UTC),
    )
    await agent.buying.accept(improved["id"], approvals=[his_approval])
    _, acceptance = vendor.last("offer-acceptance")
    assert acceptance["body"]["offer"] == vendor.ref(improved_token, improved)
    assert acceptance["body"]["identity"]["name"] == "Sally Example"
    assert acceptance["body"]["tradeIn"]["item"]["registration"] == "SX19 ABC"
    approval = verify_attestation(
        acceptance["body"]["approvals"][0],
        trusted_issuers={approver: None},
        subject=acceptance["from"],
        audience=vendor.id,
        now=datetime.now(UTC),
        kind="approval",
    )
    assert approval.claims["approves"]["offer"] == vendor.ref(improved_token, improved)
    # Having accepted, she declines the other dealer's live offer (spec §6.5).
    _, declined = other.last("offer-decline")
    assert declined["body"] == {"offers": [other_offer["id"]], "reason": "other-offer-accepted"}
    assert declined["from"] == other_rfi["from"]
    shared = {r.category for r in await buyer.store.shared_with(vendor.id)}
    assert shared == {
        "identity.name",
        "contact.email",
        "contact.phone",
        "contact.postal-address",
        "vehicle.registration",
    }


async def test_expired_offer_cannot_be_accepted_through_the_test_driver(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    import aiohttp

    vendor = await start_vendor("A")
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, token = vendor.reply(
        rfi,
        MessageType.OFFER,
        offer_body(datetime.now(UTC), basis="binding", valid_for=timedelta(seconds=60)),
    )
    assert (await buyer.post(token))[0] == 202
    driver = buyer.url("/vrm/test-driver")
    async with aiohttp.ClientSession() as session:
        async with session.post(driver + "/clock", json={"offsetSeconds": 120}) as reply:
            assert reply.status == 200
        async with session.post(
            driver + "/accept", json={"vendor": vendor.id, "offer": offer["id"]}
        ) as reply:
            assert reply.status == 409
            assert (await reply.json())["code"] == ErrorCode.OFFER_EXPIRED.value
    assert not [p for _, p in vendor.received if p["type"] == "offer-acceptance"]


async def test_without_an_inbox_replies_are_collected_from_the_mailbox(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    first, second = await start_vendor("A"), await start_vendor("B")
    buyer.agent.inbox_url = None
    await buyer.agent.buying.send_rfis(
        [first.id, second.id], sally_rfi_body(buyer.agent.clock.now())
    )
    _, rfi = first.last("personal-rfi")
    assert "replyTo" not in rfi
    offer, token = first.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    first.mailbox[rfi["from"]] = [token]

    collected = await buyer.agent.poll_mailbox(first.id)
    assert [inbound.message_id for inbound in collected] == [offer["id"]]
    assert await buyer.store.offer_view(offer["id"]) is not None
    entry = await buyer.store.entry(offer["id"])
    assert entry is not None
    assert entry.channel == "mailbox"
    # Each mailbox is polled under the pseudonym of that relationship only.
    await buyer.agent.poll_mailbox(second.id)
    _, rfi_b = second.last("personal-rfi")
    assert first.pollers == [rfi["from"]]
    assert second.pollers == [rfi_b["from"]]
    # The cursor moves on: nothing is collected twice.
    assert await buyer.agent.poll_mailbox(first.id) == []


async def test_reengagement_after_exit_cites_the_kept_history(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("A")
    agent = buyer.agent
    await agent.buying.send_rfis([vendor.id], sally_rfi_body(agent.clock.now()))
    rfi_token, rfi = vendor.last("personal-rfi")
    _offer, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    assert (await buyer.post(token))[0] == 202
    await agent.owning.exit(vendor.id)
    notice_token, notice = vendor.last("exit-notice")
    assert notice["body"]["deletion"] == {"requested": True}
    ack_body = {
        "notice": vendor.ref(notice_token, notice),
        "export": {
            "mediaType": "application/json",
            "data": {},
            "digest": message_digest_of_canonical({}),
        },
        "deletionReceipt": {
            "relationship": notice["from"],
            "deleted": [],
            "deletedAt": notice["created"],
        },
    }
    ack, ack_token = vendor.reply(notice, MessageType.EXIT_ACKNOWLEDGEMENT, ack_body)
    assert (await buyer.post(ack_token))[0] == 202
    exit_record = (await buyer.store.exits(vendor.id))[0]
    assert exit_record.receipt_verified is True
    # A win-back offer outside her preferences is refused.
    _late, late_token = vendor.reply(
        rfi, MessageType.OFFER, offer_body(datetime.now(UTC), topic="promotions")
    )
    status, problem, _ = await buyer.post(late_token)
    assert status == 403
    assert json.loads(problem)["code"] == ErrorCode.REENGAGEMENT_NOT_PERMITTED.value

    await agent.buying.send_rfis([vendor.id], sally_rfi_body(agent.clock.now()))
    _, again = vendor.last("personal-rfi")
    assert again["from"] == rfi["from"]
    assert again["thread"] != rfi["thread"]
    assert vendor.ref(rfi_token, rfi) in again["body"]["history"]
    assert vendor.ref(ack_token, ack) in again["body"]["history"]


def message_digest_of_canonical(value: Any) -> str:
    from vrm_protocol.canonical import canonical_json, message_digest

    return message_digest(canonical_json(value))


def _terms_body(now: datetime, party: str, terms: dict[str, str]) -> dict[str, Any]:
    def request(item: str, purposes: list[str], period: str) -> dict[str, Any]:
        return {
            "item": item,
            "purposes": purposes,
            "retention": {"period": period},
            "required": False,
        }

    return {
        "terms": terms,
        "party": {"id": party, "name": "Dealer", "role": "vendor"},
        "requests": [
            request("contact.email", ["servicing", "marketing"], "P2Y"),
            request("contact.phone", ["servicing"], "P1Y"),
            request("vehicle.vin", ["safety-recall"], "P3Y"),
        ],
        "commitments": {"willDo": ["use it as listed"], "willNotDo": ["sell personal data"]},
        "notificationCategories": ["safety", "technical", "promotions"],
        "validUntil": ts(now + timedelta(days=30)),
    }


def ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_terms_are_answered_in_part_with_data_only_for_what_is_accepted(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("A")
    agent = buyer.agent
    await agent.buying.send_rfis([vendor.id], sally_rfi_body(agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, offer_token = vendor.reply(
        rfi, MessageType.OFFER, offer_body(datetime.now(UTC), basis="binding")
    )
    assert (await buyer.post(offer_token))[0] == 202
    # After she accepted the offer: before, nothing identifying would be shared.
    await agent.buying.accept(offer["id"])
    _, acceptance = vendor.last("offer-acceptance")
    _, deal_token = vendor.reply(
        acceptance,
        MessageType.DEAL_CONFIRMATION,
        {
            "deal": {
                "id": "deal-1",
                "offer": vendor.ref(offer_token, offer),
                "acceptance": acceptance["id"],
                "total": offer["body"]["price"]["total"],
            },
            "delivery": {
                "scheduledFor": ts(datetime.now(UTC) + timedelta(days=30)),
                "method": "home-delivery",
            },
        },
    )
    assert (await buyer.post(deal_token))[0] == 202
    assertion, token = vendor.reply(
        rfi,
        MessageType.TERMS_ASSERTION,
        _terms_body(datetime.now(UTC), vendor.id, vendor.terms_ref()),
    )
    assert (await buyer.post(token))[0] == 202

    await agent.owning.answer_terms(assertion["id"])
    _, response = vendor.last("terms-response")
    body = response["body"]
    assert body["assertion"] == vendor.ref(token, assertion)
    assert body["decision"] == "accept-in-part"
    assert {a["item"]: a["purposes"] for a in body["accepted"]} == {
        "contact.email": ["servicing"],
        "vehicle.vin": ["safety-recall"],
    }
    assert body["refused"] == [{"item": "contact.phone", "reason": "retention P1Y exceeds P6M"}]
    assert {d["item"] for d in body["data"]} == {"contact.email", "vehicle.vin"}
    assert body["notificationPreferences"] == {"allowed": ["safety", "technical"]}
    consent = (await buyer.store.consents(vendor.id))[0]
    assert consent.decision == "accept-in-part"
    assert consent.response_id == response["id"]
    assert {
        r.category
        for r in await buyer.store.shared_with(vendor.id)
        if r.message_id == response["id"]
    } == {"contact.email", "vehicle.vin"}


async def test_a_rejected_message_leaves_the_driver_state_unchanged(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    import aiohttp

    vendor = await start_vendor("A")
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    payload, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    state_url = buyer.url("/vrm/test-driver/state")
    async with aiohttp.ClientSession() as session:
        async with session.get(state_url) as reply:
            before = await reply.json()
        tampered = token[:-4] + (b"AAAA" if not token.endswith(b"AAAA") else b"BBBB")
        status, problem, _ = await buyer.post(tampered)
        assert status == 401
        assert json.loads(problem)["code"] == ErrorCode.BAD_SIGNATURE.value
        async with session.get(state_url) as reply:
            assert await reply.json() == before
        # The legal message under the same id is then accepted as new.
        assert (await buyer.post(token))[0] == 202
        async with session.get(state_url) as reply:
            after = await reply.json()
    relationship = after["relationships"][rfi["from"]]
    assert relationship["peer"] == vendor.id
    assert relationship["offers"] == {payload["id"]: "open"}


async def test_the_background_poller_collects_what_waits_in_mailboxes(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    import asyncio
    import contextlib

    vendor = await start_vendor("A")
    buyer.agent.inbox_url = None
    await buyer.agent.buying.send_rfis([vendor.id], sally_rfi_body(buyer.agent.clock.now()))
    _, rfi = vendor.last("personal-rfi")
    offer, token = vendor.reply(rfi, MessageType.OFFER, offer_body(datetime.now(UTC)))
    poller = asyncio.create_task(buyer.agent.poll_forever(interval=0.05))
    try:
        vendor.mailbox[rfi["from"]] = [token]
        arrived = await buyer.agent.wait_for(
            lambda message: message.message_id == offer["id"], within=10
        )
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
    assert arrived.channel == "mailbox"
    assert arrived.verified


async def test_absurdly_nested_payload_is_refused_by_the_limits_not_a_crash(
    buyer: RunningBuyer,
) -> None:
    import base64

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(b'{"alg":"EdDSA","kid":"k","typ":"vrm+jws"}')
    payload = b64(b"[" * 20000 + b"]" * 20000)  # 53 kB encoded: under the size limit
    status, problem, _ = await buyer.post(header + b"." + payload + b"." + b64(b"x" * 64))
    assert status == 400
    assert json.loads(problem)["code"] == ErrorCode.NESTING_TOO_DEEP.value


async def test_a_refused_message_rolls_the_relationship_back(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    from vrm_protocol.errors import RemoteProtocolError

    vendor = await start_vendor("A")
    agent = buyer.agent
    await agent.buying.send_rfis([vendor.id], sally_rfi_body(agent.clock.now()))
    assert (await agent.core(vendor.id)).state.value == "enquiry"
    vendor.refuse_next = ErrorCode.UNTRUSTED_ISSUER
    with pytest.raises(RemoteProtocolError) as refused:
        await agent.buying.send_rfp([vendor.id], sally_rfp_body(agent.clock.now()))
    assert refused.value.code is ErrorCode.UNTRUSTED_ISSUER
    assert (await agent.core(vendor.id)).state.value == "enquiry"
    rfp = (await buyer.store.history(peer=vendor.id, type=MessageType.PERSONAL_RFP))[-1]
    assert rfp.status == "refused:untrusted-issuer"
    # Kept as what she tried, never as part of the relationship.
    assert rfp.refused
    assert await buyer.store.message(rfp.sender, rfp.message_id) is None
    # The next attempt goes through and moves the relationship on.
    await agent.buying.send_rfp([vendor.id], sally_rfp_body(agent.clock.now()))
    assert (await agent.core(vendor.id)).state.value == "negotiation"
