"""The reference vendor through the lifecycle, over HTTP, with a real store and keys."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from tests.vendor.conftest import VENDOR_ID, Buyer, Issuer
from vrm_protocol.attestations import issue_attestation
from vrm_protocol.canonical import message_digest
from vrm_protocol.keys import PairwiseIdentity, SigningKey

Client = TestClient[web.Request, web.Application]


async def _problem(status_body: tuple[int, bytes, str]) -> dict[str, Any]:
    import json

    status, body, content_type = status_body
    assert content_type == "application/problem+json", (status, body)
    document = json.loads(body)
    assert document["status"] == status
    return dict(document)


async def _state(vendor: Client) -> dict[str, Any]:
    response = await vendor.get("/vrm/test-driver/state")
    assert response.status == 200
    return dict(await response.json())


async def _rfi(buyer: Buyer, **options: Any) -> tuple[dict[str, Any], Any]:
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now(), **options))
    status, _, _ = await buyer.send(rfi)
    assert status == 202
    return rfi, await buyer.expect("offer")


async def _deal(buyer: Buyer) -> tuple[dict[str, Any], Any, Any]:
    rfi, offer = await _rfi(buyer)
    acceptance = buyer.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(offer.ref()),
        thread=rfi["id"],
        parent=offer.id,
    )
    status, _, _ = await buyer.send(acceptance)
    assert status == 202
    deal = await buyer.expect("deal-confirmation")
    terms = await buyer.expect("terms-assertion")
    return rfi, deal, terms


async def _welcome(buyer: Buyer, *, accept_all_but_last: bool = True) -> tuple[Any, list[str]]:
    rfi, _, terms = await _deal(buyer)
    requests = terms.body["requests"]
    accepted = requests[:-1] if accept_all_but_last else requests
    response = buyer.compose(
        "terms-response",
        bodies.terms_response_body(
            terms.ref(),
            accepted=[
                {"item": r["item"], "purposes": r["purposes"], "retention": r["retention"]}
                for r in accepted
            ],
            refused=[r["item"] for r in requests[len(accepted) :]],
            data=[{"item": r["item"], "value": f"value of {r['item']}"} for r in accepted],
        ),
        thread=terms.payload["thread"],
        parent=terms.id,
    )
    status, body, _ = await buyer.send(response)
    assert status == 202, body
    return rfi, [r["item"] for r in accepted]


# -- search, engage, negotiate ---------------------------------------------------------------


async def test_rfi_is_answered_by_one_offer_within_budget_in_its_thread(
    new_buyer: Callable[[], Buyer],
) -> None:
    buyer = new_buyer()
    rfi, offer = await _rfi(buyer, budget_max="32000")
    assert offer.payload["thread"] == rfi["id"]
    assert offer.payload["parent"] == rfi["id"]
    assert offer.payload["from"] == VENDOR_ID
    assert offer.payload["to"] == [buyer.id]
    assert Decimal(offer.body["price"]["total"]["amount"]) <= Decimal("32000")
    assert offer.body["inResponseTo"]["id"] == rfi["id"]
    assert offer.body["items"][0]["sku"].startswith("PRIUS")  # isofix + hybrid: a family car
    assert await buyer.poll() == []  # exactly one offer


async def test_a_dealer_quoting_indicatively_wants_an_rfp_before_a_deal(
    aiohttp_client: Any, make_config: Callable[..., Any]
) -> None:
    from reference_vendor.app import create_app

    buyer = Buyer(await aiohttp_client(create_app(make_config("dealer-postal"))))
    rfi, offer = await _rfi(buyer)
    assert offer.body["basis"] == "indicative"
    acceptance = buyer.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(offer.ref()),
        thread=rfi["id"],
        parent=offer.id,
    )
    # spec §7.2: an indicative offer is answered by an RFP, not accepted.
    # Its own code since issue 13 (spec §7.4, VRM-STATE-018).
    assert (await _problem(await buyer.send(acceptance)))["code"] == "offer-not-binding"
    rfp = buyer.compose(
        "personal-rfp", bodies.personal_rfp_body(buyer.now()), thread=rfi["id"], parent=offer.id
    )
    assert (await buyer.send(rfp))[0] == 202
    assert (await buyer.expect("offer")).body["basis"] == "binding"


async def test_rfi_outside_the_budget_gets_no_offer(new_buyer: Callable[[], Buyer]) -> None:
    buyer = new_buyer()
    rfi = buyer.compose(
        "personal-rfi",
        bodies.personal_rfi_body(buyer.now(), budget_min="5000", budget_max="9000"),
    )
    status, _, _ = await buyer.send(rfi)
    assert status == 202
    assert await buyer.poll() == []


async def test_rfp_with_trusted_attestation_gets_binding_offer_with_financing(
    new_buyer: Callable[[], Buyer], issuer: Issuer
) -> None:
    buyer = new_buyer()
    body = bodies.personal_rfp_body(buyer.now())
    body["attestations"] = [issuer.ability_to_pay(buyer.id, buyer.now(), "40000")]
    body["tradeIn"] = {
        "item": {"description": "2019 hatchback", "make": "Mazda", "year": 2019, "mileage": 40000},
        "handover": "before-delivery",
    }
    rfp = buyer.compose("personal-rfp", body)
    status, _, _ = await buyer.send(rfp)
    assert status == 202
    offer = await buyer.expect("offer")
    assert offer.body["basis"] == "binding"
    assert [o["code"] for o in offer.body["options"]] == ["premium-sound-system"]
    assert offer.body["financing"], "a trusted attestation covering the amount unlocks financing"
    assert all(plan["apr"].replace(".", "").isdigit() for plan in offer.body["financing"])
    # Seed 001: the trade-in changes hands with the delivery, whatever was asked.
    assert offer.body["tradeIn"]["handover"] == "with-delivery"
    assert {"kind": "concurrent-exchange"}.items() <= offer.body["conditions"][0].items()
    price = offer.body["price"]
    assert Decimal(price["total"]["amount"]) == Decimal(price["subtotal"]["amount"]) - Decimal(
        price["tradeInAllowance"]["amount"]
    ) - Decimal(price.get("discount", {"amount": "0"})["amount"])


async def test_rfp_without_attestation_gets_no_attestation_bound_financing(
    new_buyer: Callable[[], Buyer],
) -> None:
    buyer = new_buyer()
    status, _, _ = await buyer.send(
        buyer.compose("personal-rfp", bodies.personal_rfp_body(buyer.now()))
    )
    assert status == 202
    offer = await buyer.expect("offer")
    assert "financing" not in offer.body


async def test_untrusted_issuer_is_refused_and_changes_nothing(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    stranger = Issuer("https://unknown-lender.test", SigningKey.generate("ES256"))
    rfi = buyer.compose(
        "personal-rfi",
        bodies.personal_rfi_body(
            buyer.now(), attestations=[stranger.ability_to_pay(buyer.id, buyer.now(), "40000")]
        ),
    )
    before = await _state(vendor)
    problem = await _problem(await buyer.send(rfi))
    assert problem["code"] == "untrusted-issuer"
    assert await _state(vendor) == before
    legal = buyer.compose(
        "personal-rfi", bodies.personal_rfi_body(buyer.now()), message_id=rfi["id"]
    )
    status, _, _ = await buyer.send(legal)
    assert status == 202, "the rejected message's id was not consumed"


async def test_counter_offer_is_answered_above_the_floor_and_supersedes(
    new_buyer: Callable[[], Buyer],
) -> None:
    buyer = new_buyer()
    rfp = buyer.compose("personal-rfp", bodies.personal_rfp_body(buyer.now()))
    assert (await buyer.send(rfp))[0] == 202
    offer = await buyer.expect("offer")
    subtotal = Decimal(offer.body["price"]["subtotal"]["amount"])
    previous_total = Decimal(offer.body["price"]["total"]["amount"])
    for _round_number in range(1, 5):
        counter = buyer.compose(
            "offer",
            bodies.counter_offer_body(offer.body, offer.ref(), now=buyer.now(), total="1000"),
            thread=rfp["id"],
            parent=offer.id,
        )
        counter_token = buyer.sign(counter)
        assert (await buyer.post(counter_token))[0] == 202
        answer = await buyer.expect("offer")
        # spec §6.3: bound to the exact bytes of her counter-offer as received.
        assert answer.body["supersedes"] == {
            "id": counter["id"],
            "digest": message_digest(counter_token),
        }
        total = Decimal(answer.body["price"]["total"]["amount"])
        assert total >= subtotal * Decimal("0.92"), "never below the floor"
        assert total <= previous_total
        previous_total, offer = total, answer
    assert any("final offer" in c["description"] for c in offer.body["conditions"])


# -- transact: acceptances ------------------------------------------------------------------


async def _accept(buyer: Buyer, thread: str, ref: dict[str, str], **kw: Any) -> Any:
    acceptance = buyer.compose(
        "offer-acceptance", bodies.offer_acceptance_body(ref), thread=thread, **kw
    )
    return acceptance, await buyer.send(acceptance)


async def test_acceptance_confirms_exactly_the_offer_and_presents_terms(
    new_buyer: Callable[[], Buyer],
) -> None:
    buyer = new_buyer()
    rfi, offer = await _rfi(buyer)
    acceptance, (status, _, _) = await _accept(buyer, rfi["id"], offer.ref(), parent=offer.id)
    assert status == 202
    deal = await buyer.expect("deal-confirmation")
    assert deal.body["deal"]["offer"] == offer.ref()
    assert deal.body["deal"]["acceptance"] == acceptance["id"]
    assert deal.body["deal"]["total"] == offer.body["price"]["total"]
    assert deal.payload["parent"] == acceptance["id"]
    terms = await buyer.expect("terms-assertion")
    assert terms.body["party"]["id"] == VENDOR_ID
    assert terms.body["commitments"]["willNotDo"]
    assert all(r["purposes"] and r["retention"]["period"] for r in terms.body["requests"])


async def test_acceptance_errors_have_their_codes_and_change_nothing(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, offer = await _rfi(buyer)
    before = await _state(vendor)
    ghost = {"id": "urn:uuid:00000000-0000-4000-8000-000000000000", "digest": offer.ref()["digest"]}
    acceptance, reply = await _accept(buyer, rfi["id"], ghost, parent=offer.id)
    assert (await _problem(reply))["code"] == "unknown-offer"
    wrong = {"id": offer.id, "digest": "sha-256:" + "B" * 43}
    _, reply = await _accept(buyer, rfi["id"], wrong, parent=offer.id)
    assert (await _problem(reply))["code"] == "reference-mismatch"
    intruder = new_buyer()
    _, reply = await _accept(intruder, rfi["id"], offer.ref(), parent=offer.id)
    assert (await _problem(reply))["code"] == "not-a-participant"
    assert await _state(vendor) == before
    # The rejected id was not consumed, and the offer is still open.
    _, (status, _, _) = await _accept(
        buyer, rfi["id"], offer.ref(), parent=offer.id, message_id=acceptance["id"]
    )
    assert status == 202
    _, reply = await _accept(buyer, rfi["id"], offer.ref(), parent=offer.id)
    assert (await _problem(reply))["code"] == "offer-closed"


async def test_expired_and_superseded_offers_cannot_be_accepted(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfp = buyer.compose("personal-rfp", bodies.personal_rfp_body(buyer.now()))
    assert (await buyer.send(rfp))[0] == 202
    offer = await buyer.expect("offer")
    counter = buyer.compose(
        "offer",
        bodies.counter_offer_body(offer.body, offer.ref(), now=buyer.now(), total="27000"),
        thread=rfp["id"],
        parent=offer.id,
    )
    assert (await buyer.send(counter))[0] == 202
    answer = await buyer.expect("offer")
    before = await _state(vendor)
    _, reply = await _accept(buyer, rfp["id"], offer.ref(), parent=offer.id)
    assert (await _problem(reply))["code"] == "offer-superseded"
    assert await _state(vendor) == before
    response = await vendor.post("/vrm/test-driver/clock", json={"offsetSeconds": 8 * 86400})
    assert response.status == 200
    before = await _state(vendor)
    _, reply = await _accept(buyer, rfp["id"], answer.ref(), parent=answer.id)
    assert (await _problem(reply))["code"] == "offer-expired"
    assert await _state(vendor) == before


async def test_approval_required_by_a_co_decision_maker(
    new_buyer: Callable[[], Buyer],
) -> None:
    buyer = new_buyer()
    husband = PairwiseIdentity.generate()
    body = bodies.personal_rfp_body(buyer.now())
    body["conditions"] = [
        {
            "kind": "approval-required",
            "description": "My husband approves the deal",
            "party": husband.identifier,
        }
    ]
    rfp = buyer.compose("personal-rfp", body)
    assert (await buyer.send(rfp))[0] == 202
    offer = await buyer.expect("offer")
    assert any(c["kind"] == "approval-required" for c in offer.body["conditions"])
    _, reply = await _accept(buyer, rfp["id"], offer.ref(), parent=offer.id)
    assert (await _problem(reply))["code"] == "approval-missing"
    approval = issue_attestation(
        kind="approval",
        subject=buyer.id,
        audience=[VENDOR_ID],
        claims={"approves": {"offer": offer.ref(), "summary": "Yes, the Prius with the sound"}},
        issuer_key=husband.signing_key,
        issuer_id=husband.identifier,
        now=buyer.now(),
    )
    acceptance = buyer.compose(
        "offer-acceptance",
        {**bodies.offer_acceptance_body(offer.ref()), "approvals": [approval]},
        thread=rfp["id"],
        parent=offer.id,
    )
    assert (await buyer.send(acceptance))[0] == 202
    assert (await buyer.expect("deal-confirmation")).body["deal"]["offer"] == offer.ref()


# -- welcome, servicing, retention --------------------------------------------------------------


async def test_vendor_holds_exactly_the_accepted_data(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    _, accepted = await _welcome(buyer)
    entry = (await _state(vendor))["relationships"][buyer.id]
    assert set(entry["data"]) == set(accepted)


async def test_data_outside_the_accepted_terms_is_refused(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    _, _, terms = await _deal(buyer)
    response = buyer.compose(
        "terms-response",
        bodies.terms_response_body(
            terms.ref(),
            accepted=[],
            refused=[r["item"] for r in terms.body["requests"]],
            data=[{"item": "org.example.unrequested", "value": "secret"}],
        ),
        thread=terms.payload["thread"],
        parent=terms.id,
    )
    before = await _state(vendor)
    assert (await _problem(await buyer.send(response)))["code"] == "not-accepted-by-terms"
    assert await _state(vendor) == before


async def test_retention_sweep_deletes_observably_after_a_clock_shift(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    _, accepted = await _welcome(buyer)
    assert (await _state(vendor))["relationships"][buyer.id]["data"]
    response = await vendor.post("/vrm/test-driver/clock", json={"offsetSeconds": 4 * 366 * 86400})
    assert response.status == 200
    state = await _state(vendor)
    assert state["relationships"][buyer.id]["data"] == {}
    deleted = {d["item"] for d in state["deletions"] if d["peer"] == buyer.id}
    assert deleted == set(accepted)
    assert {d["reason"] for d in state["deletions"]} == {"retention-expired"}


async def test_notices_only_in_allowed_categories(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, _ = await _welcome(buyer)  # the suite's response allows "safety" only
    refused = await vendor.post(
        "/vrm/test-driver/service-notice",
        json={"peer": buyer.id, "kind": "programme-offer", "programme": "new-model"},
    )
    assert (refused.status, refused.content_type) == (409, "application/problem+json")
    assert (await refused.json())["sent"] is False
    sent = await vendor.post(
        "/vrm/test-driver/service-notice",
        json={"peer": buyer.id, "kind": "safety-recall", "category": "safety"},
    )
    assert sent.status == 200, await sent.text()
    notice = await buyer.expect("service-notice")
    assert notice.body["category"] == "safety"
    assert notice.payload["thread"] == rfi["id"], "vendors write in the individual's threads"
    state = await _state(vendor)
    assert [(s["peer"], s["category"]) for s in state["suppressedNotices"]] == [
        (buyer.id, "new-products")
    ]


async def test_support_request_is_resolved(new_buyer: Callable[[], Buyer]) -> None:
    buyer = new_buyer()
    rfi, _ = await _welcome(buyer)
    request = buyer.compose("support-request", bodies.support_request_body(), thread=rfi["id"])
    assert (await buyer.send(request))[0] == 202
    resolution = await buyer.expect("support-resolution")
    assert resolution.body["request"]["id"] == request["id"]
    assert resolution.body["status"] == "resolved"


# -- exit and re-engagement ---------------------------------------------------------------------


async def test_exit_exports_deletes_and_then_refuses(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, accepted = await _welcome(buyer)
    notice = buyer.compose("exit-notice", bodies.exit_notice_body(buyer.now()), thread=rfi["id"])
    status, _, _ = await buyer.send(notice)
    assert status == 202
    ack = await buyer.expect("exit-acknowledgement")
    assert ack.body["notice"]["id"] == notice["id"]
    assert set(accepted) <= set(ack.body["export"]["data"])
    from reference_vendor.handlers import export_digest

    assert ack.body["export"]["digest"] == export_digest(ack.body["export"]["data"])
    receipt = ack.body["deletionReceipt"]
    assert receipt["relationship"] == buyer.id
    assert set(accepted) <= set(receipt["deleted"])
    # The deal's records keep the identity disclosed at acceptance, on a stated basis.
    retained = {item["item"]: item["basis"] for item in receipt["retained"]}
    assert set(retained) == {"transaction.records", "identity.name", "contact.email"}
    assert all(basis.startswith("legal-obligation") for basis in retained.values())
    state = await _state(vendor)
    assert state["relationships"][buyer.id]["data"] == {}
    assert state["relationships"][buyer.id]["exited"] is True
    later = buyer.compose("support-request", bodies.support_request_body(), thread=rfi["id"])
    refused = await _problem(await buyer.send(later))
    assert (refused["status"], refused["code"]) == (410, "relationship-exited")
    notice_after = await vendor.post(
        "/vrm/test-driver/service-notice",
        json={"peer": buyer.id, "kind": "safety-recall", "category": "safety"},
    )
    assert notice_after.status == 409, "reengagement.allowed is false: the vendor stays silent"
    assert await buyer.poll() == []


async def test_reengagement_by_the_individual_starts_again(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, _ = await _welcome(buyer)
    notice = buyer.compose(
        "exit-notice",
        bodies.exit_notice_body(buyer.now(), reengagement_allowed=True, topics=["safety"]),
        thread=rfi["id"],
    )
    assert (await buyer.send(notice))[0] == 202
    await buyer.expect("exit-acknowledgement")
    history = [{"id": rfi["id"], "digest": "sha-256:" + "C" * 43}]
    again = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now(), history=history))
    assert (await buyer.send(again))[0] == 202
    offer = await buyer.expect("offer")
    assert offer.payload["thread"] == again["id"]
    entry = (await _state(vendor))["relationships"][buyer.id]
    assert entry["exited"] is False
    assert entry["engagements"] == 2


async def test_reengagement_preferences_govern_vendor_contact_after_exit(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, _ = await _welcome(buyer)
    body = bodies.exit_notice_body(buyer.now(), reengagement_allowed=True, topics=["safety"])
    body["reengagement"]["channel"] = "vendor-may-contact"
    notice = buyer.compose("exit-notice", body, thread=rfi["id"])
    assert (await buyer.send(notice))[0] == 202
    await buyer.expect("exit-acknowledgement")
    allowed = await vendor.post(
        "/vrm/test-driver/service-notice",
        json={"peer": buyer.id, "kind": "safety-recall", "category": "safety"},
    )
    assert allowed.status == 200, await allowed.text()
    refused = await vendor.post(
        "/vrm/test-driver/service-notice",
        json={"peer": buyer.id, "kind": "programme-offer", "programme": "new-model"},
    )
    assert refused.status == 409
    assert [r.type for r in await buyer.poll()] == ["service-notice"]


# -- a third party: the sound-system maker (seed 000, steps 5 and 7) ---------------------------


async def test_third_party_answers_with_terms_and_runs_a_scoped_programme(
    aiohttp_client: Any, make_config: Callable[..., Any]
) -> None:
    from reference_vendor.app import create_app

    vendor = await aiohttp_client(
        create_app(make_config("road-warrior", operator_token="let-me-in"))
    )
    buyer = Buyer(vendor)
    body = bodies.personal_rfi_body(buyer.now())
    body["intent"]["category"] = "vehicles.audio"
    rfi = buyer.compose("personal-rfi", body)
    assert (await buyer.send(rfi))[0] == 202
    terms = await buyer.expect("terms-assertion")
    assert terms.body["party"]["role"] == "third-party"
    assert [r.type for r in await buyer.poll()] == [], "a third party makes no offer"
    requests = terms.body["requests"]
    response = buyer.compose(
        "terms-response",
        {
            **bodies.terms_response_body(
                terms.ref(),
                accepted=[{"item": r["item"], "purposes": r["purposes"]} for r in requests],
                data=[{"item": "vehicle.model", "value": "Toyota Prius Active 2026"}],
            ),
            "notificationPreferences": {"allowed": ["safety", "events"]},
        },
        thread=rfi["id"],
        parent=terms.id,
    )
    assert (await buyer.send(response))[0] == 202
    unauthorised = await vendor.post(
        "/vrm/operator/service-notice", json={"buyer": buyer.id, "programme": "road-warrior"}
    )
    assert unauthorised.status == 401
    sent = await vendor.post(
        "/vrm/operator/service-notice",
        json={"buyer": buyer.id, "programme": "road-warrior"},
        headers={"Authorization": "Bearer let-me-in"},
    )
    assert sent.status == 200, await sent.text()
    notice = await buyer.expect("service-notice")
    assert notice.body["kind"] == "programme-offer"
    (request,) = notice.body["dataRequests"]
    assert (request["item"], request["scope"]) == (
        "travel.dates",
        "road trips only, next 12 months",
    )
    answer = buyer.compose(
        "service-response",
        {
            "notice": notice.ref(),
            "decision": "accept",
            "accepted": ["travel.dates"],
            "data": [{"item": "travel.dates", "value": "2027-04-02/2027-04-09"}],
        },
        thread=notice.payload["thread"],
        parent=notice.id,
    )
    assert (await buyer.send(answer))[0] == 202
    held = (await _state(vendor))["relationships"][buyer.id]["data"]
    assert set(held) == {"vehicle.model", "travel.dates"}
    assert held["travel.dates"]["purposes"] == ["programme-membership"]
