"""The guards of living with the product (spec §6.40 on): the appointment
exchange (proposed, booked, confirmed, cancelled). Each move is decided on
both sides and from queried facts (the journey of ``test_state_machine_support``)."""

from __future__ import annotations

import pytest
from living_bodies import (
    addon_offer_body,
    addon_response_body,
    booking_body,
    confirmation_body,
    open_step,
    proposal_body,
    service_record_body,
)
from test_state_machine_support import ANY_DIGEST, Outcome, reach

from vrm_protocol.errors import ErrorCode
from vrm_protocol.ledger import RequestStatus
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType, Role

M = MessageType
S = RelationshipState
V, B = Role.VENDOR, Role.BUYER
MISSING = "urn:uuid:00000000-0000-4000-8000-0000000011aa"
WRONG = "sha-256:" + "Z" * 43


@pytest.mark.parametrize("state", [S.ENQUIRY, S.NEGOTIATION, S.SERVICING, S.DEVELOPMENT, S.PROBLEM])
def test_an_appointment_is_proposed_booked_confirmed_and_cancelled_in_place(
    state: RelationshipState,
) -> None:
    journey = reach(state)
    assert journey.step(V, M.APPOINTMENT_PROPOSAL, proposal_body(journey, slots=2)) == Outcome(
        state, None
    )
    proposal = journey.latest_request(M.APPOINTMENT_PROPOSAL, open_only=True)
    assert proposal is not None
    assert journey.step(B, M.APPOINTMENT_BOOKING, booking_body(proposal)) == Outcome(state, None)
    # A proposal is booked once.
    assert journey.buyer.requests[proposal].status is RequestStatus.CLOSED
    again = journey.step(B, M.APPOINTMENT_BOOKING, booking_body(proposal, "slot-1"))
    assert again == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    booking = journey.latest_request(M.APPOINTMENT_BOOKING, open_only=True)
    assert booking is not None
    confirmed = journey.step(V, M.APPOINTMENT_CONFIRMATION, confirmation_body(journey, booking))
    assert confirmed == Outcome(state, None)
    appointment = journey.latest_request(M.APPOINTMENT_CONFIRMATION, open_only=True)
    assert appointment is not None
    cancel = {"appointment": {"id": appointment, "digest": ANY_DIGEST}, "reason": "Ill"}
    assert journey.step(B, M.APPOINTMENT_CANCELLATION, cancel) == Outcome(state, None)
    # Cancelled once: a second cancellation names nothing that awaits.
    assert journey.step(V, M.APPOINTMENT_CANCELLATION, cancel) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )


@pytest.mark.parametrize("state", [S.TRANSACTION, S.WELCOME, S.EXITED])
def test_no_appointment_where_the_state_has_no_row(state: RelationshipState) -> None:
    journey = reach(state)
    outcome = journey.step(V, M.APPOINTMENT_PROPOSAL, proposal_body(journey))
    assert outcome.state is None
    assert outcome.code in {ErrorCode.ILLEGAL_TRANSITION, ErrorCode.RELATIONSHIP_EXITED}


def test_a_booking_names_an_open_proposal_of_the_vendor_by_its_digest() -> None:
    journey = reach(S.SERVICING)
    missing = journey.step(B, M.APPOINTMENT_BOOKING, booking_body(MISSING))
    assert missing == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    proposal = open_step(journey, M.APPOINTMENT_PROPOSAL)
    body = booking_body(proposal)
    body["proposal"]["digest"] = WRONG
    assert journey.step(B, M.APPOINTMENT_BOOKING, body) == Outcome(
        None, ErrorCode.REFERENCE_MISMATCH
    )
    # She cannot confirm her own booking, nor the vendor book its own proposal.
    assert journey.step(V, M.APPOINTMENT_BOOKING, booking_body(proposal)) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )


def test_a_confirmation_answers_an_open_booking_and_a_booking_may_be_cancelled() -> None:
    journey = reach(S.SERVICING)
    booking = open_step(journey, M.APPOINTMENT_BOOKING)
    wrong = confirmation_body(journey, booking)
    wrong["booking"]["digest"] = WRONG
    assert journey.step(V, M.APPOINTMENT_CONFIRMATION, wrong) == Outcome(
        None, ErrorCode.REFERENCE_MISMATCH
    )
    cancel = {"appointment": {"id": booking, "digest": ANY_DIGEST}, "reason": "Changed plans"}
    assert journey.step(V, M.APPOINTMENT_CANCELLATION, cancel) == Outcome(S.SERVICING, None)
    # A cancelled booking is confirmed no more.
    late = journey.step(V, M.APPOINTMENT_CONFIRMATION, confirmation_body(journey, booking))
    assert late == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


def test_a_cancellation_names_an_appointment_not_a_proposal() -> None:
    journey = reach(S.NEGOTIATION)
    proposal = open_step(journey, M.APPOINTMENT_PROPOSAL)
    cancel = {"appointment": {"id": proposal, "digest": ANY_DIGEST}, "reason": "No"}
    assert journey.step(B, M.APPOINTMENT_CANCELLATION, cancel) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )


@pytest.mark.parametrize("state", [S.SERVICING, S.DEVELOPMENT, S.PROBLEM])
def test_a_service_record_closes_the_appointment_it_names(state: RelationshipState) -> None:
    journey = reach(state)
    appointment = open_step(journey, M.APPOINTMENT_CONFIRMATION)
    body = service_record_body(journey, appointment)
    assert journey.step(V, M.SERVICE_RECORD, body) == Outcome(state, None)
    assert journey.buyer.requests[appointment].status is RequestStatus.CLOSED
    # Done: a second record of the same appointment, or its cancellation, names nothing open.
    assert journey.step(V, M.SERVICE_RECORD, body) == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    cancel = {"appointment": {"id": appointment, "digest": ANY_DIGEST}, "reason": "Late"}
    assert journey.step(B, M.APPOINTMENT_CANCELLATION, cancel) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )
    # A record without an appointment (work done on the road) is a side exchange too.
    assert journey.step(V, M.SERVICE_RECORD, service_record_body(journey, None)) == Outcome(
        state, None
    )


def test_a_service_record_names_a_confirmation_of_the_vendor() -> None:
    journey = reach(S.SERVICING)
    booking = open_step(journey, M.APPOINTMENT_BOOKING)
    # Her booking is not a confirmed appointment.
    outcome = journey.step(V, M.SERVICE_RECORD, service_record_body(journey, booking))
    assert outcome == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)
    assert journey.step(B, M.SERVICE_RECORD, service_record_body(journey, None)).state is None


@pytest.mark.parametrize("state", [S.ENQUIRY, S.WELCOME, S.TRANSACTION])
def test_no_service_record_before_servicing(state: RelationshipState) -> None:
    journey = reach(state)
    outcome = journey.step(V, M.SERVICE_RECORD, service_record_body(journey, None))
    assert outcome == Outcome(None, ErrorCode.ILLEGAL_TRANSITION)


@pytest.mark.parametrize("state", [S.TRANSACTION, S.WELCOME, S.SERVICING, S.PROBLEM])
def test_extras_are_proposed_and_answered_once_in_place(state: RelationshipState) -> None:
    journey = reach(state)
    assert journey.step(V, M.ADDON_OFFER, addon_offer_body(journey)) == Outcome(state, None)
    offer = journey.latest_request(M.ADDON_OFFER, open_only=True)
    assert offer is not None
    both = addon_response_body(offer, ("floor-mats",), ("floor-mats", "paint-protection"))
    assert journey.step(B, M.ADDON_RESPONSE, both) == Outcome(None, ErrorCode.SCHEMA_INVALID)
    assert journey.step(B, M.ADDON_RESPONSE, addon_response_body(offer)) == Outcome(state, None)
    assert journey.step(B, M.ADDON_RESPONSE, addon_response_body(offer)) == Outcome(
        None, ErrorCode.ILLEGAL_TRANSITION
    )


@pytest.mark.parametrize("state", [S.NEGOTIATION, S.EXITED])
def test_no_extras_without_a_deal(state: RelationshipState) -> None:
    journey = reach(state)
    assert journey.step(V, M.ADDON_OFFER, addon_offer_body(journey)).state is None


def test_an_addon_offer_binds_the_accepted_offer_and_codes_once() -> None:
    journey = reach(S.WELCOME)
    body = addon_offer_body(journey)
    body["deal"]["offer"]["digest"] = WRONG
    assert journey.step(V, M.ADDON_OFFER, body) == Outcome(None, ErrorCode.REFERENCE_MISMATCH)
    body = addon_offer_body(journey)
    body["addons"][1]["code"] = "floor-mats"
    assert journey.step(V, M.ADDON_OFFER, body) == Outcome(None, ErrorCode.SCHEMA_INVALID)
