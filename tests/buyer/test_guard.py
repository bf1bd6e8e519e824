"""The buyer agent guards the individual, not only parses correctly (issue 9).

Each test plays hostile or careless vendors (real keys, real HTTP on
127.0.0.1) against the real buyer agent and its store, and checks that what
the protocol promises her holds: nothing identifying before a deal, no notice
outside her preferences, no message from another relationship, every binding
checked, no signature made for anyone else, no oracle on her pseudonyms.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reference_buyer.scenario import sally_rfi_body, sally_rfp_body
from vrm_protocol.attestations import issue_attestation
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import build_message, encode
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.keys import PairwiseIdentity
from vrm_protocol.vocabulary import MessageType

from .conftest import InTestVendor, RunningBuyer, VendorFactory, offer_body, ts

IDENTIFYING = {"identity.name", "contact.email", "contact.postal-address", "location.home-area"}


def _terms_body(
    vendor: InTestVendor,
    items: list[str],
    *,
    reference: dict[str, str] | None = None,
    categories: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "terms": reference if reference is not None else vendor.terms_ref(),
        "party": {"id": vendor.id, "name": vendor.name, "role": "vendor"},
        "requests": [
            {
                "item": item,
                "purposes": ["servicing"],
                "retention": {"period": "P2Y"},
                "required": False,
            }
            for item in items
        ],
        "commitments": {"willDo": ["use it as listed"], "willNotDo": ["sell personal data"]},
        "notificationCategories": categories or ["safety", "technical", "promotions"],
        "validUntil": ts(datetime.now(UTC) + timedelta(days=30)),
    }


async def _rfi(buyer: RunningBuyer, *vendors: InTestVendor) -> list[dict[str, Any]]:
    await buyer.agent.buying.send_rfis(
        [v.id for v in vendors], sally_rfi_body(buyer.agent.clock.now())
    )
    return [v.last("personal-rfi")[1] for v in vendors]


async def _offer(
    buyer: RunningBuyer, vendor: InTestVendor, answering: dict[str, Any], **extra: Any
) -> tuple[dict[str, Any], bytes]:
    payload, token = vendor.reply(
        answering, MessageType.OFFER, offer_body(datetime.now(UTC), basis="binding", **extra)
    )
    status, answer, _ = await buyer.post(token)
    assert status == 202, answer
    return payload, token


async def _deal(buyer: RunningBuyer, vendor: InTestVendor) -> dict[str, Any]:
    """RFI, binding offer, acceptance, deal confirmation: the relationship in welcome."""
    (rfi,) = await _rfi(buyer, vendor)
    offer, offer_token = await _offer(buyer, vendor, rfi)
    await buyer.agent.buying.accept(offer["id"])
    _, acceptance = vendor.last("offer-acceptance")
    _, token = vendor.reply(
        acceptance,
        MessageType.DEAL_CONFIRMATION,
        _deal_body(vendor.ref(offer_token, offer), acceptance["id"], offer),
    )
    status, answer, _ = await buyer.post(token)
    assert status == 202, answer
    return rfi


def _deal_body(
    offer_ref: dict[str, str], acceptance_id: str, offer: dict[str, Any]
) -> dict[str, Any]:
    return {
        "deal": {
            "id": "deal-1",
            "offer": offer_ref,
            "acceptance": acceptance_id,
            "total": offer["body"]["price"]["total"],
        },
        "delivery": {
            "scheduledFor": ts(datetime.now(UTC) + timedelta(days=30)),
            "method": "home-delivery",
        },
    }


async def _terms(
    buyer: RunningBuyer, vendor: InTestVendor, answering: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    assertion, token = vendor.reply(answering, MessageType.TERMS_ASSERTION, body)
    status, answer, _ = await buyer.post(token)
    assert status == 202, answer
    return assertion


# -- identity before the deal --------------------------------------------------------------------


async def test_terms_during_negotiation_get_nothing_identifying(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Nosy Motors")
    (rfi,) = await _rfi(buyer, vendor)
    await _offer(buyer, vendor, rfi)
    assertion = await _terms(
        buyer, vendor, rfi, _terms_body(vendor, [*sorted(IDENTIFYING), "vehicle.model"])
    )
    await buyer.agent.owning.answer_terms(assertion["id"])
    _, response = vendor.last("terms-response")
    shared = {item["item"] for item in response["body"].get("data", [])}
    accepted = {item["item"] for item in response["body"].get("accepted", [])}
    assert not shared & IDENTIFYING, shared
    assert not accepted & IDENTIFYING, accepted
    refused = {item["item"] for item in response["body"].get("refused", [])}
    assert refused >= IDENTIFYING
    assert not {r.category for r in await buyer.store.shared_with(vendor.id)} & IDENTIFYING
    # Nothing personal in any message this vendor received before an acceptance.
    everything = json.dumps([payload for _, payload in vendor.received])
    for secret in ("Sally Example", "sally@example.org", "Example Street", "NW3 1AA"):
        assert secret not in everything


async def test_after_the_deal_the_same_terms_may_receive_contact_details(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    rfi = await _deal(buyer, vendor)
    assertion = await _terms(buyer, vendor, rfi, _terms_body(vendor, ["contact.email"]))
    await buyer.agent.owning.answer_terms(assertion["id"])
    _, response = vendor.last("terms-response")
    assert [item["item"] for item in response["body"]["data"]] == ["contact.email"]


# -- notices and her notification preferences ------------------------------------------------


async def _welcomed(buyer: RunningBuyer, vendor: InTestVendor) -> dict[str, Any]:
    """A deal and her answer to the vendor's terms (notifications: safety, technical)."""
    rfi = await _deal(buyer, vendor)
    assertion = await _terms(buyer, vendor, rfi, _terms_body(vendor, ["contact.email"]))
    await buyer.agent.owning.answer_terms(assertion["id"])
    _, response = vendor.last("terms-response")
    assert response["body"]["notificationPreferences"] == {"allowed": ["safety", "technical"]}
    return rfi


def _notice(
    category: str, *, data: bool = True, terms: dict[str, str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "other",
        "category": category,
        "summary": "Our summer promotion",
    }
    if data:
        body["dataRequests"] = [
            {
                "item": "contact.phone",
                "purposes": ["servicing"],
                "retention": {"period": "P1M"},
            },
            {
                "item": "travel.dates",
                "purposes": ["programme-membership"],
                "retention": {"period": "P1Y"},
            },
        ]
    if terms is not None:
        body["terms"] = terms
    return body


async def test_a_notice_outside_her_preferences_is_refused_and_never_answered(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Pushy Motors")
    rfi = await _welcomed(buyer, vendor)
    notice, token = vendor.reply(rfi, MessageType.SERVICE_NOTICE, _notice("promotions"))
    status, answer, content_type = await buyer.post(token)
    assert status == 403, answer
    assert content_type == "application/problem+json"
    assert json.loads(answer)["code"] == ErrorCode.NOT_ACCEPTED_BY_TERMS.value
    assert await buyer.store.message(vendor.id, notice["id"]) is None
    assert await buyer.store.entry(notice["id"]) is None
    with pytest.raises(LocalProtocolError):
        await buyer.agent.owning.answer_service_notice(notice["id"])


async def test_a_notice_answer_carries_only_data_she_agreed_to_share_with_that_party(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Careful Motors")
    rfi = await _welcomed(buyer, vendor)
    # Allowed category, but the data asked for is covered by no terms she accepted
    # with this vendor (her terms response accepted contact.email for servicing only).
    notice, token = vendor.reply(rfi, MessageType.SERVICE_NOTICE, _notice("technical"))
    status, _, _ = await buyer.post(token)
    assert status == 202
    await buyer.agent.owning.answer_service_notice(notice["id"])
    _, response = vendor.last("service-response")
    assert "data" not in response["body"], response["body"]
    declined = {item["item"] for item in response["body"].get("declined", [])}
    assert declined == {"contact.phone", "travel.dates"}


# -- participation by thread and parent ------------------------------------------------------


@pytest.mark.parametrize("where", ["other-thread", "unknown-thread", "other-parent"])
async def test_a_message_of_another_relationship_is_not_a_participant(
    where: str, buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    owner, writer = await start_vendor("Owner Motors"), await start_vendor("Writer Motors")
    rfi_owner, rfi_writer = await _rfi(buyer, owner, writer)
    fields: dict[str, Any] = {
        "other-thread": {"thread": rfi_owner["thread"], "parent": rfi_owner["id"]},
        "unknown-thread": {"thread": "urn:uuid:00000000-0000-4000-8000-000000000001"},
        "other-parent": {"thread": rfi_writer["thread"], "parent": rfi_owner["id"]},
    }[where]
    # The writer writes to its own pseudonym (a relationship she has), but the
    # thread or the parent belongs to another relationship or to none.
    payload = build_message(
        MessageType.OFFER,
        offer_body(datetime.now(UTC)),
        sender=writer.id,
        to=[rfi_writer["from"]],
        now=datetime.now(UTC),
        **fields,
    )
    status, answer, _ = await buyer.post(encode(payload, writer.key))
    assert status == 403, answer
    assert json.loads(answer)["code"] == ErrorCode.NOT_A_PARTICIPANT.value
    assert await buyer.store.message(writer.id, payload["id"]) is None
    assert await buyer.store.entry(payload["id"]) is None
    # The same offer in the writer's own thread is taken.
    _, token = writer.reply(rfi_writer, MessageType.OFFER, offer_body(datetime.now(UTC)))
    assert (await buyer.post(token))[0] == 202


# -- bindings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("wrong", ["offer-digest", "acceptance"])
async def test_a_deal_confirmation_must_bind_her_offer_and_acceptance(
    wrong: str, buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    (rfi,) = await _rfi(buyer, vendor)
    offer, offer_token = await _offer(buyer, vendor, rfi)
    await buyer.agent.buying.accept(offer["id"])
    _, acceptance = vendor.last("offer-acceptance")
    reference = vendor.ref(offer_token, offer)
    acceptance_id = acceptance["id"]
    if wrong == "offer-digest":
        reference = {**reference, "digest": message_digest(b"another offer")}
    else:
        acceptance_id = "urn:uuid:00000000-0000-4000-8000-000000000002"
    _, token = vendor.reply(
        acceptance, MessageType.DEAL_CONFIRMATION, _deal_body(reference, acceptance_id, offer)
    )
    status, answer, _ = await buyer.post(token)
    assert status == 409, answer
    assert json.loads(answer)["code"] == ErrorCode.REFERENCE_MISMATCH.value
    assert await buyer.store.deals() == []
    _, token = vendor.reply(
        acceptance,
        MessageType.DEAL_CONFIRMATION,
        _deal_body(vendor.ref(offer_token, offer), acceptance["id"], offer),
    )
    assert (await buyer.post(token))[0] == 202
    assert [deal.offer_id for deal in await buyer.store.deals()] == [offer["id"]]


@pytest.mark.parametrize("unmatched", ["wrong-digest", "not-served", "other-origin"])
async def test_terms_whose_document_she_cannot_match_get_a_problem_report_and_no_data(
    unmatched: str, buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor, elsewhere = await start_vendor("Dealer"), await start_vendor("Elsewhere")
    rfi = await _deal(buyer, vendor)
    reference = vendor.terms_ref("What we really do with your data.\n")
    if unmatched == "wrong-digest":
        reference["digest"] = message_digest(b"the terms we showed you")
    elif unmatched == "not-served":
        reference["url"] = reference["url"].replace("test-dealer-terms", "no-such-terms")
    else:
        # The same bytes, but published by someone else than the asserting party.
        reference = {**elsewhere.terms_ref("What we really do with your data.\n")}
    assertion = await _terms(
        buyer, vendor, rfi, _terms_body(vendor, ["contact.email"], reference=reference)
    )
    await buyer.agent.owning.answer_terms(assertion["id"])
    assert not [p for _, p in vendor.received if p["type"] == "terms-response"]
    _, problem = vendor.last("problem-report")
    assert problem["body"]["code"] == ErrorCode.REFERENCE_MISMATCH.value
    assert problem["body"]["regarding"]["id"] == assertion["id"]
    assert problem["parent"] == assertion["id"]
    # No consent recorded, nothing logged as shared under these terms.
    assert await buyer.store.consents(vendor.id) == []
    assert not [
        r for r in await buyer.store.shared_with(vendor.id) if r.message_id == problem["id"]
    ]
    if unmatched == "other-origin":
        # The document is fetched from the asserting party's own origin, or not at all.
        assert not [r for r in elsewhere.requests if r.startswith("GET /vrm/terms")]


# -- her agent never signs for anyone else ---------------------------------------------------


async def test_an_offer_needing_an_approval_she_cannot_get_is_not_accepted(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    partner = PairwiseIdentity.generate()  # the co-decision-maker: his key, not hers
    (rfi,) = await _rfi(buyer, vendor)
    keys_dir = buyer.agent.config.data_dir / "keys"
    keys_before = sorted(p.name for p in keys_dir.iterdir())
    offer, _ = await _offer(buyer, vendor, rfi, approval_party=partner.identifier)
    with pytest.raises(LocalProtocolError) as refused:
        await buyer.agent.buying.accept(offer["id"])
    assert refused.value.code is ErrorCode.APPROVAL_MISSING
    assert "never signs" in refused.value.detail
    assert not [p for _, p in vendor.received if p["type"] == "offer-acceptance"]
    # No key was made for anyone: the keys are her pseudonyms' only.
    keys = sorted(p.name for p in keys_dir.iterdir())
    assert keys == keys_before
    assert len(keys) == len(await buyer.store.pseudonyms())


async def test_an_approval_the_co_decision_maker_signed_himself_is_carried(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendor = await start_vendor("Dealer")
    partner = PairwiseIdentity.generate()
    agent = buyer.agent
    await _rfi(buyer, vendor)
    await agent.buying.send_rfp(
        [vendor.id], sally_rfp_body(agent.clock.now()), approver=partner.identifier
    )
    _, rfp = vendor.last("personal-rfp")
    assert rfp["body"]["conditions"][-1]["party"] == partner.identifier
    offer, offer_token = await _offer(buyer, vendor, rfp, approval_party=partner.identifier)
    approval = issue_attestation(
        kind="approval",
        subject=rfp["from"],
        audience=[vendor.id],
        claims={
            "approves": {"offer": vendor.ref(offer_token, offer), "summary": "Yes"},
            "relation": "co-decision-maker",
        },
        issuer_key=partner.signing_key,
        issuer_id=partner.identifier,
        now=datetime.now(UTC),
    )
    await agent.buying.accept(offer["id"], approvals=[approval])
    _, acceptance = vendor.last("offer-acceptance")
    assert acceptance["body"]["approvals"] == [approval]


# -- linkable pseudonyms ---------------------------------------------------------------------


async def test_the_inbox_answers_alike_for_any_pseudonym_not_in_a_relationship_with_the_sender(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    owner, prober = await start_vendor("Owner"), await start_vendor("Prober")
    rfi_owner, _ = await _rfi(buyer, owner, prober)
    answers = []
    for pseudonym in (rfi_owner["from"], PairwiseIdentity.generate().identifier):
        payload = build_message(
            MessageType.OFFER,
            offer_body(datetime.now(UTC)),
            sender=prober.id,
            to=[pseudonym],
            now=datetime.now(UTC),
        )
        status, answer, content_type = await buyer.post(encode(payload, prober.key))
        answers.append((status, content_type, json.loads(answer)["code"]))
    assert answers[0] == answers[1], answers
    assert answers[0][0] >= 400


async def test_reply_addresses_are_random_per_relationship_and_route_only_their_own(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    first, second = await start_vendor("A"), await start_vendor("B")
    rfi_a, rfi_b = await _rfi(buyer, first, second)
    inbox_a, inbox_b = rfi_a["replyTo"]["inbox"], rfi_b["replyTo"]["inbox"]
    assert inbox_a != inbox_b
    assert "?" not in inbox_a
    tag_a = inbox_a.rsplit("/", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", tag_a), tag_a
    import hashlib

    for identifier in (rfi_a["from"], rfi_b["from"]):
        derived = hashlib.sha256(identifier.encode()).hexdigest()
        assert derived[:16] not in inbox_a + inbox_b
    # Each address takes its own relationship's messages...
    _, token = first.reply(rfi_a, MessageType.OFFER, offer_body(datetime.now(UTC)))
    status, _, _ = await buyer.post_to(inbox_a, token)
    assert status == 202
    # ...and answers a message for another relationship as it answers any stranger.
    _, token_b = second.reply(rfi_b, MessageType.OFFER, offer_body(datetime.now(UTC)))
    status, answer, _ = await buyer.post_to(inbox_a, token_b)
    assert status == 421, answer
    assert json.loads(answer)["code"] == ErrorCode.WRONG_AUDIENCE.value
    assert (await buyer.post_to(inbox_b, token_b))[0] == 202


async def test_copies_and_declines_are_decorrelated(
    buyer: RunningBuyer, start_vendor: VendorFactory
) -> None:
    vendors = [await start_vendor(name) for name in ("A", "B", "C", "D")]
    rfis = await _rfi(buyer, *vendors)
    assert len({rfi["created"] for rfi in rfis}) == len(rfis)
    assert len({rfi["id"] for rfi in rfis}) == len(rfis)
    offers = [(await _offer(buyer, v, rfi))[0] for v, rfi in zip(vendors, rfis, strict=True)]
    await buyer.agent.buying.accept(offers[0]["id"])
    declines = [v.last("offer-decline")[1] for v in vendors[1:]]
    assert len({d["created"] for d in declines}) == len(declines)
