"""The relationship state machine (spec §7): Sally's whole journey on both
sides, every guard's error code, atomicity, snapshots, and the table checked
cell by cell (every state x sender role x message type)."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
from test_state_machine_support import (
    APPROVAL,
    DEALER,
    SALLY,
    STRANGER,
    T0,
    Journey,
    Outcome,
    acceptance_body,
    check_cell,
    deal_body,
    decline_body,
    exit_ack_body,
    exit_notice_body,
    ledger_view,
    must,
    new_id,
    offer_body,
    problem_report_body,
    reach,
    receipt_body,
    rfi_body,
    rfp_body,
    service_notice_body,
    service_response_body,
    statuses,
    support_request_body,
    support_resolution_body,
    terms_assertion_body,
    terms_response_body,
)

from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.models import parse_message_dict
from vrm_protocol.state_machine import (
    ALWAYS_ALLOWED,
    STATE_DESCRIPTIONS,
    STEP_STATES,
    TRANSITION_ROWS,
    TRANSITIONS,
    Direction,
    OfferStatus,
    Relationship,
    RelationshipState,
    RequestStatus,
    allowed_inputs,
)
from vrm_protocol.vocabulary import LifecycleStep, MessageType, Role

S = RelationshipState
M = MessageType
B = Role.BUYER
V = Role.VENDOR
E = ErrorCode


def refused(outcome: Outcome, code: ErrorCode) -> None:
    assert outcome == Outcome(None, code), outcome


# -- the table as data --------------------------------------------------------------------------


def test_every_state_is_described_with_its_lifecycle_steps() -> None:
    assert set(STATE_DESCRIPTIONS) == set(RelationshipState)
    for state, description in STATE_DESCRIPTIONS.items():
        assert description.steps, state
        assert state.__doc__ == description.docstring()
        assert "Entry:" in (state.__doc__ or "")
    # Every one of the ten steps is carried by at least one state.
    assert all(STEP_STATES[step] for step in LifecycleStep)
    assert STEP_STATES[LifecycleStep.REENGAGEMENT] == (S.EXITED,)


def test_rows_are_unique_explained_and_reachable() -> None:
    assert len({row.key for row in TRANSITION_ROWS}) == len(TRANSITION_ROWS)
    for row in TRANSITION_ROWS:
        assert row.why.strip(), row
        assert TRANSITIONS[row.key] is row.target
        assert (row.otherwise is None) == (row.otherwise_when == "")
    assert not {row.message for row in TRANSITION_ROWS} & ALWAYS_ALLOWED
    # Every state but SEARCH is the target of some row; every state but EXITED has a way out.
    targets = {row.target for row in TRANSITION_ROWS} | {
        row.otherwise for row in TRANSITION_ROWS if row.otherwise
    }
    assert targets == set(RelationshipState) - {S.SEARCH}
    for state in RelationshipState:
        assert any(row.state is state and row.target is not state for row in TRANSITION_ROWS)


def test_allowed_inputs_follow_the_table() -> None:
    assert allowed_inputs(S.SEARCH, B) == {M.PERSONAL_RFI, M.PERSONAL_RFP} | ALWAYS_ALLOWED
    assert allowed_inputs(S.SEARCH, V) == ALWAYS_ALLOWED
    assert M.OFFER_ACCEPTANCE in allowed_inputs(S.NEGOTIATION, B)
    assert M.OFFER_ACCEPTANCE not in allowed_inputs(S.NEGOTIATION, V)
    assert allowed_inputs(S.EXITED, V) == {M.SERVICE_NOTICE, M.OFFER} | ALWAYS_ALLOWED
    assert Relationship(B, SALLY, DEALER).allowed_inputs(B) == allowed_inputs(S.SEARCH, B)


# -- Sally's journey --------------------------------------------------------------------------


def test_sallys_whole_journey_on_both_sides() -> None:
    """Seed 000, the ten steps: both agents process the same messages and agree throughout."""
    j = Journey()
    # 1-2 Search / Engage: a pseudonymous RFI; the dealer answers with an indicative offer.
    rfi = j.compose(B, M.PERSONAL_RFI, rfi_body(j.now))
    must(j.deliver(B, rfi), S.ENQUIRY)
    indicative = j.compose(V, M.OFFER, offer_body(j.now, basis="indicative", total="30000"))
    must(j.deliver(V, indicative), S.NEGOTIATION)
    # 3 Negotiate: an indicative offer is answered by an RFP, not accepted.
    refused(
        j.step(
            B, M.OFFER_ACCEPTANCE, acceptance_body(indicative["id"], j.digests[indicative["id"]])
        ),
        E.OFFER_NOT_BINDING,
    )
    must(j.step(B, M.PERSONAL_RFP, rfp_body(j.now, approval_required=True)), S.NEGOTIATION)
    binding = j.compose(
        V,
        M.OFFER,
        offer_body(j.now, total="29000", supersedes=indicative["id"], approval_required=True),
    )
    must(j.deliver(V, binding), S.NEGOTIATION)
    counter = j.compose(
        B, M.OFFER, offer_body(j.now, basis="counter", total="27500", supersedes=binding["id"])
    )
    must(j.deliver(B, counter), S.NEGOTIATION)
    final = j.compose(
        V,
        M.OFFER,
        offer_body(j.now, total="28000", supersedes=counter["id"], approval_required=True),
    )
    must(j.deliver(V, final), S.NEGOTIATION)
    assert statuses(j.buyer) == {
        indicative["id"]: OfferStatus.SUPERSEDED,
        binding["id"]: OfferStatus.SUPERSEDED,
        counter["id"]: OfferStatus.SUPERSEDED,
        final["id"]: OfferStatus.OPEN,
    }
    # 4 Transact: her husband's approval travels with the acceptance.
    j.now += timedelta(hours=2)
    acceptance = j.compose(
        B,
        M.OFFER_ACCEPTANCE,
        acceptance_body(final["id"], j.digests[final["id"]], approvals=[APPROVAL]),
    )
    must(j.deliver(B, acceptance), S.TRANSACTION)
    assert j.buyer.accepted_offer == final["id"]
    deal = deal_body(final["id"], j.digests[final["id"]], acceptance["id"], j.now)
    must(j.step(V, M.DEAL_CONFIRMATION, deal), S.WELCOME)
    # 5 Welcome: the dealer's terms; she accepts and chooses her notifications.
    terms = j.compose(V, M.TERMS_ASSERTION, terms_assertion_body(DEALER, j.now))
    must(j.deliver(V, terms), S.WELCOME)
    must(j.step(B, M.TERMS_RESPONSE, terms_response_body(terms["id"])), S.SERVICING)
    # 6 Servicing: a reminder; she declines the tyre replacement.
    notice = j.compose(V, M.SERVICE_NOTICE, service_notice_body())
    must(j.deliver(V, notice), S.SERVICING)
    must(
        j.step(B, M.SERVICE_RESPONSE, service_response_body(notice["id"], "accept-in-part")),
        S.SERVICING,
    )
    # 7 Development: the manufacturer's programme. A programme offer is news and
    # moves nothing; she joins by her own request (spec §6.72), then grants
    # scoped access to travel dates.
    programme = j.compose(
        V, M.SERVICE_NOTICE, service_notice_body("programme-offer", "new-products")
    )
    must(j.deliver(V, programme), S.SERVICING)
    must(j.step(B, M.PROGRAMME_ENROLMENT, {"programme": "road-warrior"}), S.DEVELOPMENT)
    must(j.step(B, M.SERVICE_RESPONSE, service_response_body(programme["id"])), S.DEVELOPMENT)
    # 8 Problems: the infotainment reboots; resolved.
    request = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    must(j.deliver(B, request), S.PROBLEM)
    must(
        j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(request["id"], "in-progress")),
        S.PROBLEM,
    )
    # The problem arose in development; resolving it returns there (spec §7.1).
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(request["id"])), S.DEVELOPMENT)
    # 9 Exit: export and deletion; only safety recalls may reach her for a year.
    until = j.now + timedelta(days=365)
    exit_notice = j.compose(
        B, M.EXIT_NOTICE, exit_notice_body(j.now, topics=("recall",), until=until)
    )
    must(j.deliver(B, exit_notice), S.EXITING)
    must(
        j.step(V, M.EXIT_ACKNOWLEDGEMENT, exit_ack_body(exit_notice["id"], SALLY, j.now)), S.EXITED
    )
    # The exit closes every offer and voids every request; the records stay, so a
    # late reference is refused for what it is (spec §7.4, §7.5).
    for side in (j.buyer, j.vendor):
        assert side.live_offers(j.now) == ()
        assert OfferStatus.OPEN not in set(statuses(side).values())
        assert {r.status for r in side.requests.values()} == {RequestStatus.VOID}
    must(j.step(V, M.SERVICE_NOTICE, service_notice_body("safety-recall", "recall")), S.EXITED)
    refused(
        j.step(V, M.SERVICE_NOTICE, service_notice_body("other", "promotions")),
        E.REENGAGEMENT_NOT_PERMITTED,
    )
    refused(
        j.step(V, M.OFFER, offer_body(j.now, topic="new-products")), E.REENGAGEMENT_NOT_PERMITTED
    )
    refused(j.step(B, M.SUPPORT_REQUEST, support_request_body()), E.RELATIONSHIP_EXITED)
    refused(
        j.step(V, M.TERMS_ASSERTION, terms_assertion_body(DEALER, j.now)), E.RELATIONSHIP_EXITED
    )
    j.now = until + timedelta(days=1)
    refused(
        j.step(V, M.SERVICE_NOTICE, service_notice_body("safety-recall", "recall")),
        E.REENGAGEMENT_NOT_PERMITTED,
    )
    # 10 Re-engagement: her new RFI shows the history she kept; the relationship keeps its own.
    kept = len(j.buyer.history)
    history = [{"id": rfi["id"], "digest": j.digests[rfi["id"]]}]
    must(j.step(B, M.PERSONAL_RFI, rfi_body(j.now, history=history)), S.ENQUIRY)
    assert j.buyer.exit_record is None
    assert len(j.buyer.history) == kept + 1
    assert j.buyer.history[0].id == rfi["id"]
    must(j.step(V, M.OFFER, offer_body(j.now)), S.NEGOTIATION)
    # Both sides recorded the same journey, from opposite directions.
    assert ledger_view(j.buyer) == ledger_view(j.vendor)
    assert [h.direction for h in j.buyer.history[:2]] == [Direction.SENT, Direction.RECEIVED]
    assert [h.direction for h in j.vendor.history[:2]] == [Direction.RECEIVED, Direction.SENT]
    path = [h.to_state for h in j.buyer.history]
    for state in RelationshipState:
        if state not in {S.SEARCH, S.CLOSED}:
            assert state in path, state


def test_a_third_party_answers_an_rfi_with_terms() -> None:
    """The sound-system maker (vendor role) has no sale: RFI, terms, response, service."""
    j = Journey(counterparty="http://127.0.0.1:8402")
    must(j.step(B, M.PERSONAL_RFI, rfi_body(j.now)), S.ENQUIRY)
    terms = j.compose(
        V, M.TERMS_ASSERTION, terms_assertion_body(j.counterparty, j.now, "third-party")
    )
    must(j.deliver(V, terms), S.WELCOME)
    must(j.step(B, M.TERMS_RESPONSE, terms_response_body(terms["id"])), S.SERVICING)
    must(
        j.step(V, M.SERVICE_NOTICE, service_notice_body("software-update", "technical")),
        S.SERVICING,
    )


def test_an_rfp_may_be_the_first_message() -> None:
    j = Journey()
    must(j.step(B, M.PERSONAL_RFP, rfp_body(j.now)), S.NEGOTIATION)
    must(j.step(V, M.OFFER, offer_body(j.now)), S.NEGOTIATION)


def test_vendors_never_write_first() -> None:
    j = Journey()
    refused(j.step(V, M.OFFER, offer_body(j.now)), E.ILLEGAL_TRANSITION)
    refused(j.step(V, M.TERMS_ASSERTION, terms_assertion_body(DEALER, j.now)), E.ILLEGAL_TRANSITION)
    assert j.state is S.SEARCH
    assert j.buyer.history == ()


def test_decline_closes_only_when_no_live_offer_remains() -> None:
    j = reach(S.ENQUIRY)
    first = j.compose(V, M.OFFER, offer_body(j.now, total="31000"))
    second = j.compose(V, M.OFFER, offer_body(j.now, total="30500"))
    must(j.deliver(V, first), S.NEGOTIATION)
    must(j.deliver(V, second), S.NEGOTIATION)
    must(j.step(B, M.OFFER_DECLINE, decline_body([first["id"]])), S.NEGOTIATION)
    must(j.step(B, M.OFFER_DECLINE, decline_body([second["id"]])), S.CLOSED)
    assert set(statuses(j.buyer).values()) == {OfferStatus.DECLINED}
    # A closed negotiation can be reopened by her, not by the vendor.
    refused(j.step(V, M.OFFER, offer_body(j.now)), E.ILLEGAL_TRANSITION)
    must(j.step(B, M.PERSONAL_RFP, rfp_body(j.now)), S.NEGOTIATION)


def test_expired_offers_do_not_keep_a_negotiation_open() -> None:
    j = reach(S.ENQUIRY)
    short = j.compose(V, M.OFFER, offer_body(j.now, valid_for=timedelta(minutes=5)))
    lasting = j.compose(V, M.OFFER, offer_body(j.now))
    must(j.deliver(V, short), S.NEGOTIATION)
    must(j.deliver(V, lasting), S.NEGOTIATION)
    j.now += timedelta(hours=1)
    must(j.step(B, M.OFFER_DECLINE, decline_body([lasting["id"]])), S.CLOSED)
    assert j.buyer.offer_status(short["id"], j.now) is OfferStatus.EXPIRED


def test_support_requests_all_resolved_before_servicing_resumes() -> None:
    j = reach(S.SERVICING)
    first = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    second = j.compose(B, M.SUPPORT_REQUEST, support_request_body())
    must(j.deliver(B, first), S.PROBLEM)
    must(j.deliver(B, second), S.PROBLEM)
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(first["id"])), S.PROBLEM)
    refused(
        j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(first["id"])), E.ILLEGAL_TRANSITION
    )
    must(
        j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(second["id"], "rejected")),
        S.PROBLEM,
    )
    must(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(second["id"])), S.SERVICING)


def test_development_offer_accepted_is_a_new_deal() -> None:
    j = reach(S.SERVICING)
    refused(j.step(V, M.OFFER, offer_body(j.now)), E.ILLEGAL_TRANSITION)  # no topic
    warranty = j.compose(V, M.OFFER, offer_body(j.now, topic="warranty"))
    must(j.deliver(V, warranty), S.DEVELOPMENT)
    accept = acceptance_body(warranty["id"], j.digests[warranty["id"]])
    must(j.step(B, M.OFFER_ACCEPTANCE, accept), S.TRANSACTION)
    assert j.buyer.accepted_offer == warranty["id"]


def test_vendor_exit_only_when_leaving_the_market() -> None:
    j = reach(S.SERVICING)
    refused(j.step(V, M.EXIT_NOTICE, exit_notice_body(j.now, reason="other")), E.ILLEGAL_TRANSITION)
    notice = j.compose(V, M.EXIT_NOTICE, exit_notice_body(j.now, reason="vendor-leaving-market"))
    must(j.deliver(V, notice), S.EXITING)
    # The vendor cannot acknowledge its own notice; she does.
    refused(
        j.step(V, M.EXIT_ACKNOWLEDGEMENT, exit_ack_body(notice["id"], SALLY, j.now)),
        E.ILLEGAL_TRANSITION,
    )
    must(j.step(B, M.EXIT_ACKNOWLEDGEMENT, exit_ack_body(notice["id"], SALLY, j.now)), S.EXITED)
    # Her preferences were never given: the vendor may not write again.
    refused(j.step(V, M.SERVICE_NOTICE, service_notice_body()), E.REENGAGEMENT_NOT_PERMITTED)


@pytest.mark.parametrize(
    ("preferences", "category"),
    [
        ({"allowed": False}, "maintenance"),
        ({"channel": "intentcast-only"}, "maintenance"),
        ({"topics": ("recall",)}, "maintenance"),
    ],
)
def test_reengagement_preferences_bind_the_vendor(
    preferences: dict[str, Any], category: str
) -> None:
    j = reach(S.SERVICING)
    notice = j.compose(B, M.EXIT_NOTICE, exit_notice_body(j.now, **preferences))
    must(j.deliver(B, notice), S.EXITING)
    must(j.step(V, M.EXIT_ACKNOWLEDGEMENT, exit_ack_body(notice["id"], SALLY, j.now)), S.EXITED)
    refused(
        j.step(V, M.SERVICE_NOTICE, service_notice_body(category=category)),
        E.REENGAGEMENT_NOT_PERMITTED,
    )


def test_reengagement_allowed_without_topics_allows_any_topic() -> None:
    j = reach(S.SERVICING)
    notice = j.compose(B, M.EXIT_NOTICE, exit_notice_body(j.now, topics=None))
    must(j.deliver(B, notice), S.EXITING)
    must(j.step(V, M.EXIT_ACKNOWLEDGEMENT, exit_ack_body(notice["id"], SALLY, j.now)), S.EXITED)
    winback = j.compose(V, M.OFFER, offer_body(j.now, topic="new-products"))
    must(j.deliver(V, winback), S.EXITED)
    # Her RFP re-engages; the win-back offer made after the exit is hers to accept.
    must(j.step(B, M.PERSONAL_RFP, rfp_body(j.now)), S.NEGOTIATION)
    must(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(winback["id"], j.digests[winback["id"]])),
        S.TRANSACTION,
    )


# -- every guard ----------------------------------------------------------------------------


def test_not_a_participant() -> None:
    j = reach(S.ENQUIRY)
    stranger = j.compose(V, M.OFFER, offer_body(j.now), sender_id=STRANGER)
    refused(j.deliver(V, stranger), E.NOT_A_PARTICIPANT)
    misaddressed = j.compose(V, M.OFFER, offer_body(j.now), to=[STRANGER])
    refused(j.deliver(V, misaddressed), E.NOT_A_PARTICIPANT)
    report = j.compose(V, M.PROBLEM_REPORT, problem_report_body(), sender_id=STRANGER)
    refused(j.deliver(V, report), E.NOT_A_PARTICIPANT)
    # Our own side writing as someone else is a local error.
    with pytest.raises(LocalProtocolError) as raised:
        j.buyer.send(j.compose(B, M.PERSONAL_RFI, rfi_body(j.now), sender_id=STRANGER), now=j.now)
    assert raised.value.code is E.NOT_A_PARTICIPANT
    assert raised.value.http_status == 403
    assert raised.value.path == "/from"
    # A message addressed to several parties including the receiver is fine.
    must(j.step(V, M.OFFER, offer_body(j.now), to=[SALLY, STRANGER]), S.NEGOTIATION)


def _negotiating(**offer: Any) -> tuple[Journey, dict[str, Any]]:
    j = reach(S.ENQUIRY)
    payload = j.compose(V, M.OFFER, offer_body(j.now, **offer))
    must(j.deliver(V, payload), S.NEGOTIATION)
    return j, payload


def test_unknown_offer() -> None:
    j, offer = _negotiating()
    refused(
        j.step(
            B,
            M.OFFER_ACCEPTANCE,
            acceptance_body(
                "urn:uuid:00000000-0000-4000-8000-000000000000", j.digests[offer["id"]]
            ),
        ),
        E.UNKNOWN_OFFER,
    )
    refused(
        j.step(B, M.OFFER_DECLINE, decline_body(["urn:uuid:00000000-0000-4000-8000-000000000000"])),
        E.UNKNOWN_OFFER,
    )
    refused(
        j.step(
            B,
            M.OFFER,
            offer_body(
                j.now, basis="counter", supersedes="urn:uuid:00000000-0000-4000-8000-000000000000"
            ),
        ),
        E.UNKNOWN_OFFER,
    )
    # She cannot accept her own counter-offer: only the other side's offers are hers to accept.
    counter = j.compose(B, M.OFFER, offer_body(j.now, basis="counter", supersedes=offer["id"]))
    must(j.deliver(B, counter), S.NEGOTIATION)
    refused(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(counter["id"], j.digests[counter["id"]])),
        E.UNKNOWN_OFFER,
    )


def test_offer_expired_strictly_after_valid_until() -> None:
    j, offer = _negotiating(valid_for=timedelta(hours=1))
    accept = acceptance_body(offer["id"], j.digests[offer["id"]])
    j.now = T0 + timedelta(hours=1, seconds=1)
    refused(j.step(B, M.OFFER_ACCEPTANCE, accept), E.OFFER_EXPIRED)
    assert j.buyer.offers[offer["id"]].status is OfferStatus.OPEN  # the refusal changed nothing
    j.now = T0 + timedelta(hours=1)  # valid until and including validUntil
    must(j.step(B, M.OFFER_ACCEPTANCE, accept), S.TRANSACTION)


def test_offer_superseded() -> None:
    j, old = _negotiating()
    new = j.compose(V, M.OFFER, offer_body(j.now, total="28000", supersedes=old["id"]))
    must(j.deliver(V, new), S.NEGOTIATION)
    refused(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(old["id"], j.digests[old["id"]])),
        E.OFFER_SUPERSEDED,
    )
    refused(j.step(V, M.OFFER, offer_body(j.now, supersedes=old["id"])), E.OFFER_SUPERSEDED)


def test_offer_closed_after_acceptance_or_decline_and_a_wrong_digest_is_a_mismatch() -> None:
    j, offer = _negotiating()
    wrong = acceptance_body(offer["id"], "sha-256:" + "B" * 43)
    refused(j.step(B, M.OFFER_ACCEPTANCE, wrong), E.REFERENCE_MISMATCH)
    accept = acceptance_body(offer["id"], j.digests[offer["id"]])
    must(j.step(B, M.OFFER_ACCEPTANCE, accept), S.TRANSACTION)
    # A second acceptance names the offer's status, not just the state.
    refused(j.step(B, M.OFFER_ACCEPTANCE, accept), E.OFFER_CLOSED)
    j2, declined = _negotiating()
    spare = j2.compose(V, M.OFFER, offer_body(j2.now))
    must(j2.deliver(V, spare), S.NEGOTIATION)
    must(j2.step(B, M.OFFER_DECLINE, decline_body([declined["id"]])), S.NEGOTIATION)
    refused(
        j2.step(B, M.OFFER_ACCEPTANCE, acceptance_body(declined["id"], j2.digests[declined["id"]])),
        E.OFFER_CLOSED,
    )
    refused(j2.step(B, M.OFFER_DECLINE, decline_body([declined["id"]])), E.OFFER_CLOSED)


def test_other_offers_lapse_when_one_is_accepted() -> None:
    j, first = _negotiating()
    second = j.compose(V, M.OFFER, offer_body(j.now, total="29500"))
    must(j.deliver(V, second), S.NEGOTIATION)
    must(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(first["id"], j.digests[first["id"]])),
        S.TRANSACTION,
    )
    assert j.buyer.offers[second["id"]].status is OfferStatus.LAPSED


def test_indicative_offers_are_not_accepted() -> None:
    j, offer = _negotiating(basis="indicative")
    with pytest.raises(RemoteProtocolError) as raised:
        j.vendor.receive(
            j.compose(B, M.OFFER_ACCEPTANCE, acceptance_body(offer["id"], j.digests[offer["id"]])),
            now=j.now,
        )
    assert raised.value.code is E.OFFER_NOT_BINDING  # its own code (spec §7.4, VRM-STATE-018)
    assert "indicative" in raised.value.detail
    assert raised.value.http_status == 409


def test_approval_missing() -> None:
    j, offer = _negotiating(approval_required=True)
    refused(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(offer["id"], j.digests[offer["id"]])),
        E.APPROVAL_MISSING,
    )
    refused(
        j.step(
            B,
            M.OFFER_ACCEPTANCE,
            acceptance_body(offer["id"], j.digests[offer["id"]], approvals=[]),
        ),
        E.APPROVAL_MISSING,
    )
    must(
        j.step(
            B,
            M.OFFER_ACCEPTANCE,
            acceptance_body(offer["id"], j.digests[offer["id"]], approvals=[APPROVAL]),
        ),
        S.TRANSACTION,
    )


@pytest.mark.parametrize(
    ("sender", "body_changes", "code"),
    [
        (B, {"basis": "binding"}, E.ILLEGAL_TRANSITION),  # her offers are counters
        (B, {"basis": "counter"}, E.ILLEGAL_TRANSITION),  # ... that name what they counter
        (V, {"basis": "counter"}, E.ILLEGAL_TRANSITION),  # the vendor's are not counters
        (V, {"basis": "firm"}, E.SCHEMA_INVALID),
        (V, {"validUntil": "next week"}, E.SCHEMA_INVALID),
    ],
)
def test_offer_basis_rules(sender: Role, body_changes: dict[str, Any], code: ErrorCode) -> None:
    j, _ = _negotiating()
    body = offer_body(j.now) | body_changes
    refused(j.step(sender, M.OFFER, body), code)


def test_duplicate_offer_id_is_refused() -> None:
    j, offer = _negotiating()
    again = dict(offer, body=offer_body(j.now))
    refused(j.deliver(V, again), E.ILLEGAL_TRANSITION)


def test_replies_must_answer_something_of_this_relationship() -> None:
    j = reach(S.WELCOME)
    missing = "urn:uuid:00000000-0000-4000-8000-000000000001"
    refused(j.step(B, M.TERMS_RESPONSE, terms_response_body(missing)), E.ILLEGAL_TRANSITION)
    j = reach(S.SERVICING)
    refused(j.step(B, M.SERVICE_RESPONSE, service_response_body(missing)), E.ILLEGAL_TRANSITION)
    j = reach(S.PROBLEM)
    refused(j.step(V, M.SUPPORT_RESOLUTION, support_resolution_body(missing)), E.ILLEGAL_TRANSITION)
    j = reach(S.EXITING)
    refused(
        j.step(V, M.EXIT_ACKNOWLEDGEMENT, exit_ack_body(missing, SALLY, j.now)),
        E.ILLEGAL_TRANSITION,
    )
    j = reach(S.TRANSACTION)
    # A confirmation names the deal under way; naming anything else is a mismatch (VRM-BUY-009).
    refused(
        j.step(V, M.DEAL_CONFIRMATION, deal_body(missing, "sha-256:" + "A" * 43, missing, j.now)),
        E.REFERENCE_MISMATCH,
    )


def test_problem_reports_and_receipts_change_nothing_in_any_state() -> None:
    for state in (S.SEARCH, S.NEGOTIATION, S.EXITED, S.CLOSED):
        j = reach(state)
        before = ledger_view(j.buyer)
        must(j.step(V, M.RECEIPT, receipt_body(new_id(), j.now)), state)
        must(j.step(B, M.PROBLEM_REPORT, problem_report_body()), state)
        after = ledger_view(j.buyer)
        assert [entry[0] for entry in after["history"][-2:]] == [M.RECEIPT, M.PROBLEM_REPORT]
        assert [entry[2:] for entry in after["history"][-2:]] == [(state, state)] * 2
        assert {k: v for k, v in after.items() if k != "history"} == {
            k: v for k, v in before.items() if k != "history"
        }


# -- atomicity and non-sticky failure --------------------------------------------------------


def test_refusals_are_atomic_and_not_sticky() -> None:
    """A refused message leaves state, ledger and history exactly as they were,
    even when the guard had already changed its draft (supersession) before
    refusing; the next legal message is processed normally."""
    j, offer = _negotiating()
    snapshot = j.buyer.snapshot()
    # The counter's supersession is applied to the draft, then its validUntil is refused.
    bad_counter = offer_body(j.now, basis="counter", supersedes=offer["id"]) | {
        "validUntil": "soon"
    }
    with pytest.raises(LocalProtocolError) as raised:
        j.buyer.send(j.compose(B, M.OFFER, bad_counter), now=j.now)
    assert raised.value.code is E.SCHEMA_INVALID
    assert j.buyer.snapshot() == snapshot
    assert j.buyer.offers[offer["id"]].status is OfferStatus.OPEN
    # A declined-then-refused multi-offer decline: the first id was fine, the second unknown.
    with pytest.raises(RemoteProtocolError):
        j.vendor.receive(
            j.compose(B, M.OFFER_DECLINE, decline_body([offer["id"], "urn:uuid:nope"])), now=j.now
        )
    assert j.vendor.offers[offer["id"]].status is OfferStatus.OPEN
    # Expiry sweeps run on the draft too: a refused late message does not expire anything.
    j.now += timedelta(days=30)
    with pytest.raises(LocalProtocolError):
        j.buyer.send(j.compose(B, M.DEAL_CONFIRMATION, {}), now=j.now)
    assert j.buyer.snapshot() == snapshot
    # Not sticky: a legal message is still processed.
    j.now = T0
    must(
        j.step(B, M.OFFER_ACCEPTANCE, acceptance_body(offer["id"], j.digests[offer["id"]])),
        S.TRANSACTION,
    )


# -- inputs, snapshots ------------------------------------------------------------------------


def test_accepts_payloads_and_message_models() -> None:
    j = Journey()
    payload = j.compose(B, M.PERSONAL_RFI, rfi_body(j.now))
    sent = Relationship(B, SALLY, DEALER).send(payload, now=j.now, digest="sha-256:x")
    assert (sent.before, sent.state, sent.direction) == (S.SEARCH, S.ENQUIRY, Direction.SENT)
    assert Relationship(V, DEALER, SALLY).receive(payload, now=j.now).state is S.ENQUIRY
    model = parse_message_dict(payload)
    assert Relationship(V, DEALER, SALLY).receive(model, now=j.now).state is S.ENQUIRY
    with pytest.raises(TypeError):
        Relationship(V, DEALER, SALLY).receive(42, now=j.now)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        Relationship(V, DEALER, SALLY).receive(payload, now=j.now.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"type": "offer-ish"}, E.UNKNOWN_MESSAGE_TYPE),
        ({"to": []}, E.SCHEMA_INVALID),
        ({"from": None}, E.SCHEMA_INVALID),
        ({"created": "yesterday"}, E.SCHEMA_INVALID),
        ({"body": []}, E.SCHEMA_INVALID),
    ],
)
def test_malformed_payloads_raise_role_correct_errors(
    change: dict[str, Any], code: ErrorCode
) -> None:
    j = Journey()
    payload = j.compose(B, M.PERSONAL_RFI, rfi_body(j.now)) | change
    with pytest.raises(RemoteProtocolError) as remote:
        Relationship(V, DEALER, SALLY).receive(payload, now=j.now)
    assert remote.value.code is code
    with pytest.raises(LocalProtocolError) as local:
        Relationship(B, SALLY, DEALER).send(payload, now=j.now)
    assert local.value.code is code


@pytest.mark.parametrize("state", list(RelationshipState))
def test_snapshot_restores_exactly_and_is_json(state: RelationshipState) -> None:
    j = reach(state)
    for side in (j.buyer, j.vendor):
        snapshot = side.snapshot()
        restored = Relationship.restore(json.loads(json.dumps(snapshot)))
        assert restored.snapshot() == snapshot
        assert restored.state is side.state
        assert restored.history == ()  # an agent's history is its stored messages
        assert restored.offers == side.offers
        assert restored.exit_record == side.exit_record
    # The restored relationship carries on exactly as the original would.
    copy = j.buyer.copy()
    payload = j.compose(B, M.PERSONAL_RFI, rfi_body(j.now))
    outcomes = []
    for side in (j.buyer, copy):
        try:
            outcomes.append(side.send(payload, now=j.now))
        except LocalProtocolError as error:
            outcomes.append(error.code)  # type: ignore[arg-type]
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(
    "snapshot",
    [
        {},
        {"format": "other"},
        {"format": "vrm-relationship/1"},
        {
            "format": "vrm-relationship/1",
            "ourRole": "buyer",
            "ourId": "a",
            "peerId": "b",
            "state": "nowhere",
            "offers": [],
            "requests": [],
            "history": [],
        },
    ],
)
def test_restore_refuses_malformed_snapshots(snapshot: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="snapshot"):
        Relationship.restore(snapshot)


# -- the table, cell by cell --------------------------------------------------------------------

CELLS = list(itertools.product(RelationshipState, Role, MessageType))


@pytest.mark.parametrize(
    ("state", "sender", "message_type"),
    CELLS,
    ids=[f"{s.value}-{r.value}-{t.value}" for s, r, t in CELLS],
)
def test_every_cell_of_the_table(
    state: RelationshipState, sender: Role, message_type: MessageType
) -> None:
    """Either the table has a row and both sides land in its state, or both
    refuse with illegal-transition / relationship-exited /
    reengagement-not-permitted and nothing changes."""
    check_cell(state, sender, message_type)
