"""The state machine as spec §7 settles it (issue 13): a deal the vendor cannot
honour, safety notices before service begins, a problem that returns to where
it arose, a vendor leaving the market at any stage, one state per relationship,
and the one code for every message after an exit notice."""

from __future__ import annotations

import pytest
from test_state_machine_support import (
    SALLY,
    Journey,
    Outcome,
    acceptance_body,
    deal_body,
    deal_refusal_body,
    decline_body,
    exit_ack_body,
    exit_notice_body,
    must,
    new_id,
    offer_body,
    reach,
    rfi_body,
    rfp_body,
    service_notice_body,
    service_response_body,
    support_request_body,
    support_resolution_body,
    terms_response_body,
)

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.state_machine import OfferStatus, RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

S = RelationshipState
M = MessageType
B = Role.BUYER
V = Role.VENDOR
E = ErrorCode


def refused(outcome: Outcome, code: ErrorCode) -> None:
    assert outcome == Outcome(None, code), outcome


def _accepted(j: Journey) -> tuple[str, str]:
    """The accepted offer and its acceptance's id, in a journey in TRANSACTION."""
    offer, acceptance = j.buyer.accepted_offer, j.buyer.core.acceptance
    assert offer is not None
    assert acceptance is not None
    return offer, acceptance


# -- deal-refusal (spec §6.17) ------------------------------------------------------------------


def test_a_refused_deal_returns_to_negotiation_and_the_offer_lapses() -> None:
    j = reach(S.TRANSACTION)
    offer, acceptance = _accepted(j)
    body = deal_refusal_body(offer, j.digests[offer], acceptance)
    must(j.step(V, M.DEAL_REFUSAL, body), S.NEGOTIATION)
    assert j.buyer.offers[offer].status is OfferStatus.LAPSED
    assert j.buyer.accepted_offer is None
    assert j.buyer.core.acceptance is None
    assert j.buyer.core.resume_state is None
    # The refused offer cannot be accepted again; a new offer can.
    refused(j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(offer, j.digests[offer])), E.OFFER_CLOSED)
    fresh = j.compose(V, M.OFFER, offer_body(j.now, total="29900"))
    must(j.deliver(V, fresh), S.NEGOTIATION)
    must(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(fresh["id"], j.digests[fresh["id"]])),
        S.TRANSACTION,
    )


def test_a_refused_development_deal_returns_to_development() -> None:
    j = reach(S.SERVICING)
    warranty = j.compose(V, M.OFFER, offer_body(j.now, topic="warranty"))
    must(j.deliver(V, warranty), S.DEVELOPMENT)
    must(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(warranty["id"], j.digests[warranty["id"]])),
        S.TRANSACTION,
    )
    assert j.buyer.core.resume_state is S.DEVELOPMENT
    offer, acceptance = _accepted(j)
    must(j.step(V, M.DEAL_REFUSAL, deal_refusal_body(offer, j.digests[offer], acceptance)),
         S.DEVELOPMENT)  # fmt: skip


@pytest.mark.parametrize("wrong", ["offer-id", "offer-digest", "acceptance-id"])
def test_a_refusal_names_the_deal_under_way(wrong: str) -> None:
    j = reach(S.TRANSACTION)
    offer, acceptance = _accepted(j)
    digest = j.digests[offer]
    if wrong == "offer-id":
        offer = new_id()
    elif wrong == "offer-digest":
        digest = "sha-256:" + "Q" * 43
    else:
        acceptance = new_id()
    refused(j.step(V, M.DEAL_REFUSAL, deal_refusal_body(offer, digest, acceptance)),
            E.REFERENCE_MISMATCH)  # fmt: skip


def test_only_the_vendor_refuses_and_only_before_confirming() -> None:
    j = reach(S.TRANSACTION)
    offer, acceptance = _accepted(j)
    body = deal_refusal_body(offer, j.digests[offer], acceptance)
    refused(j.step(B, M.DEAL_REFUSAL, body), E.ILLEGAL_TRANSITION)
    must(j.step(V, M.DEAL_CONFIRMATION, deal_body(offer, j.digests[offer], acceptance, j.now)),
         S.WELCOME)  # fmt: skip
    refused(j.step(V, M.DEAL_REFUSAL, body), E.ILLEGAL_TRANSITION)
    assert j.buyer.core.resume_state is None


@pytest.mark.parametrize("wrong", ["offer-digest", "acceptance-id"])
def test_a_confirmation_names_the_deal_under_way(wrong: str) -> None:
    j = reach(S.TRANSACTION)
    offer, acceptance = _accepted(j)
    digest = j.digests[offer]
    if wrong == "offer-digest":
        digest = "sha-256:" + "Q" * 43
    else:
        acceptance = new_id()
    refused(j.step(V, M.DEAL_CONFIRMATION, deal_body(offer, digest, acceptance, j.now)),
            E.REFERENCE_MISMATCH)  # fmt: skip


# -- safety notices before service (spec §6.9) ---------------------------------------------------


@pytest.mark.parametrize("state", [S.TRANSACTION, S.WELCOME])
def test_only_safety_recalls_before_service(state: RelationshipState) -> None:
    j = reach(state)
    for kind, category in [
        ("maintenance-reminder", "maintenance"),
        ("other", "promotions"),
        ("software-update", "safety"),
    ]:
        refused(j.step(V, M.SERVICE_NOTICE, service_notice_body(kind, category)),
                E.ILLEGAL_TRANSITION)  # fmt: skip
    for category in ("safety", "recall"):
        notice = j.compose(V, M.SERVICE_NOTICE, service_notice_body("safety-recall", category))
        must(j.deliver(V, notice), state)
        must(j.step(B, M.SERVICE_RESPONSE, service_response_body(notice["id"])), state)


# -- a problem returns to where it arose (spec §7.1) ---------------------------------------------


@pytest.mark.parametrize("before", [S.WELCOME, S.SERVICING, S.DEVELOPMENT])
def test_the_last_resolution_returns_to_the_state_before_the_problem(
    before: RelationshipState,
) -> None:
    j = reach(before)
    first = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    second = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    must(j.deliver(B, first), S.PROBLEM)
    must(j.deliver(B, second), S.PROBLEM)
    assert j.buyer.core.resume_state is before
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(first["id"])), S.PROBLEM)
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(second["id"])), before)
    assert j.buyer.core.resume_state is None


def test_a_welcome_interrupted_by_a_problem_still_takes_her_terms_response() -> None:
    j = reach(S.WELCOME)
    request = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    must(j.deliver(B, request), S.PROBLEM)
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(request["id"])), S.WELCOME)
    assertion = j.latest_request(M.TERMS_ASSERTION)
    assert assertion is not None
    must(j.step(B, M.TERMS_RESPONSE, terms_response_body(assertion)), S.SERVICING)


def test_a_core_without_a_resume_state_resolves_to_servicing() -> None:
    """A core written before resume states existed (format 1) still decides."""
    j = reach(S.PROBLEM)
    legacy = j.buyer.core.to_json() | {"format": "vrm-relationship-core/1"}
    del legacy["resumeState"], legacy["acceptance"]
    core = RelationshipCore.from_json(legacy)
    assert core.resume_state is None
    assert core.state is S.PROBLEM
    for side in (j.buyer, j.vendor):
        side._core = core
    j.store_like.core = core
    request = j.latest_request(M.SUPPORT_REQUEST, open_only=True)
    assert request is not None
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(request)), S.SERVICING)


def test_the_core_round_trips_with_its_new_members() -> None:
    j = reach(S.TRANSACTION)
    core = j.buyer.core
    assert core.acceptance is not None
    assert core.resume_state is S.NEGOTIATION
    assert RelationshipCore.from_json(core.to_json()) == core
    with pytest.raises(ValueError):
        RelationshipCore.from_json(core.to_json() | {"resumeState": "limbo"})


# -- a vendor leaving the market (spec §7.5) -----------------------------------------------------


@pytest.mark.parametrize("state", [S.ENQUIRY, S.CLOSED])
def test_a_vendor_leaving_the_market_gives_notice_at_any_stage(state: RelationshipState) -> None:
    j = reach(state)
    refused(j.step(V, M.EXIT_NOTICE, exit_notice_body(j.now, reason="other")), E.ILLEGAL_TRANSITION)
    notice = j.compose(V, M.EXIT_NOTICE, exit_notice_body(j.now, reason="vendor-leaving-market"))
    must(j.deliver(V, notice), S.EXITING)
    must(j.step(B, M.EXIT_ACKNOWLEDGEMENT, exit_ack_body(notice["id"], SALLY, j.now)), S.EXITED)


# -- after an exit notice: one code (spec §7.5, VRM-STATE-007) -----------------------------------


def test_every_message_no_row_allows_after_an_exit_notice_is_relationship_exited() -> None:
    j = reach(S.EXITING)
    refused(j.step(V, M.OFFER, offer_body(j.now)), E.RELATIONSHIP_EXITED)
    refused(j.step(V, M.SERVICE_NOTICE, service_notice_body()), E.RELATIONSHIP_EXITED)
    refused(j.step(B, M.PERSONAL_RFI, rfi_body(j.now)), E.RELATIONSHIP_EXITED)
    refused(j.step(B, M.SUPPORT_REQUEST, support_request_body()), E.RELATIONSHIP_EXITED)


# -- one state per relationship (spec §7.1) ------------------------------------------------------


def test_one_state_for_all_of_a_relationships_threads() -> None:
    """A second thread (a new RFP while the first negotiation is open) moves the
    same state, and a message in the first thread is judged against it."""
    j = reach(S.ENQUIRY)
    first_thread = j.thread
    first = j.compose(V, M.OFFER, offer_body(j.now), parent=first_thread)
    must(j.deliver(V, first), S.NEGOTIATION)
    rfp = j.compose(B, M.PERSONAL_RFP, rfp_body(j.now))
    j.thread = rfp["id"]
    rfp["thread"] = rfp["id"]
    must(j.deliver(B, rfp), S.NEGOTIATION)
    j.thread = first_thread
    accept = acceptance_body(first["id"], j.digests[first["id"]])
    must(j.step(B, M.OFFER_ACCEPTANCE, accept), S.TRANSACTION)
    # The other thread is in the same, one, state: no RFP-thread offer may be declined now.
    j.thread = rfp["id"]
    refused(j.step(B, M.OFFER_DECLINE, decline_body([first["id"]])), E.ILLEGAL_TRANSITION)
    refused(j.step(B, M.PERSONAL_RFP, rfp_body(j.now)), E.ILLEGAL_TRANSITION)


# -- one code per fault (spec §8.6) --------------------------------------------------------------


def test_an_indicative_offer_accepted_is_offer_not_binding() -> None:
    j = reach(S.ENQUIRY)
    indicative = j.compose(V, M.OFFER, offer_body(j.now, basis="indicative"))
    must(j.deliver(V, indicative), S.NEGOTIATION)
    accept = acceptance_body(indicative["id"], j.digests[indicative["id"]])
    refused(j.step(B, M.OFFER_ACCEPTANCE, accept), E.OFFER_NOT_BINDING)


WRONG_DIGEST = "sha-256:" + "Z" * 43


def test_a_reply_naming_a_request_by_another_digest_is_a_mismatch() -> None:
    j = reach(S.WELCOME)
    assertion = j.latest_request(M.TERMS_ASSERTION)
    assert assertion is not None
    body = terms_response_body(assertion) | {"assertion": {"id": assertion, "digest": WRONG_DIGEST}}
    refused(j.step(B, M.TERMS_RESPONSE, body), E.REFERENCE_MISMATCH)
    j = reach(S.SERVICING)
    notice = j.latest_request(M.SERVICE_NOTICE)
    assert notice is not None
    body = service_response_body(notice) | {"notice": {"id": notice, "digest": WRONG_DIGEST}}
    refused(j.step(B, M.SERVICE_RESPONSE, body), E.REFERENCE_MISMATCH)
    j = reach(S.PROBLEM)
    request = j.latest_request(M.SUPPORT_REQUEST)
    assert request is not None
    body = support_resolution_body(request) | {"request": {"id": request, "digest": WRONG_DIGEST}}
    refused(j.step(V, M.SUPPORT_RESOLUTION, body), E.REFERENCE_MISMATCH)
    j = reach(S.EXITING)
    exit_record = j.buyer.exit_record
    assert exit_record is not None
    body = exit_ack_body(exit_record.notice_id, SALLY, j.now)
    body["notice"]["digest"] = WRONG_DIGEST
    refused(j.step(V, M.EXIT_ACKNOWLEDGEMENT, body), E.REFERENCE_MISMATCH)


@pytest.mark.parametrize("missing", ["export", "deletionReceipt"])
def test_an_acknowledgement_without_what_her_exit_asked_for_is_incomplete(missing: str) -> None:
    j = reach(S.EXITING)  # her notice asks for export and deletion
    exit_record = j.buyer.exit_record
    assert exit_record is not None
    body = exit_ack_body(exit_record.notice_id, SALLY, j.now)
    del body[missing]
    refused(j.step(V, M.EXIT_ACKNOWLEDGEMENT, body), E.EXIT_INCOMPLETE)


def test_an_acknowledgement_carries_only_what_was_asked_for() -> None:
    j = reach(S.SERVICING)
    notice = exit_notice_body(j.now)
    notice["export"] = {"requested": False}
    notice["deletion"] = {"requested": False}
    sent = j.compose(B, M.EXIT_NOTICE, notice)
    must(j.deliver(B, sent), S.EXITING)
    body = exit_ack_body(sent["id"], SALLY, j.now)
    del body["export"], body["deletionReceipt"]
    must(j.step(V, M.EXIT_ACKNOWLEDGEMENT, body), S.EXITED)


def test_after_the_exit_her_preferences_are_judged_before_the_offer_rules() -> None:
    """A topic-less offer after an exit whose preferences name topics is not
    permitted; the missing topic is not the first fault (spec §8.6)."""
    j = reach(S.EXITED)
    body = offer_body(j.now)
    refused(j.step(V, M.OFFER, body), E.REENGAGEMENT_NOT_PERMITTED)


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        ("programme-offer", "technical"),
        ("maintenance-reminder", "safety"),
        ("other", "recall"),
        ("warranty-extension", "promotions"),
    ],
)
def test_a_notice_is_what_it_says(kind: str, category: str) -> None:
    """spec §6.9 (VRM-MSG-038): the kind fixes the categories; in every state."""
    for state in (S.SERVICING, S.WELCOME):
        j = reach(state)
        refused(j.step(V, M.SERVICE_NOTICE, service_notice_body(kind, category)),
                E.MISLABELLED_NOTICE)  # fmt: skip
