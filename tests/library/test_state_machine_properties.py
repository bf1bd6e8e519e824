"""Property tests of the relationship state machine (spec §7).

* Every (state x sender role x message type) cell, drawn by Hypothesis:
  either the table has a row and both sides land in its state, or both refuse
  with a no-row code and nothing changes.
* Random sequences of messages (well-formed, stale, wrong, out of order)
  never corrupt the offers ledger, and the buyer's and vendor's machines
  always agree.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_state_machine_support import (
    APPROVAL,
    SALLY,
    Journey,
    acceptance_body,
    canonical_body,
    check_cell,
    decline_body,
    exit_ack_body,
    exit_notice_body,
    fake_digest,
    new_id,
    offer_body,
    reach,
    statuses,
)

from vrm_protocol.state_machine import (
    ALWAYS_ALLOWED,
    OfferStatus,
    Relationship,
    RelationshipState,
    allowed_inputs,
)
from vrm_protocol.vocabulary import MessageType, Role

CELLS = list(itertools.product(RelationshipState, Role, MessageType))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CELLS))
def test_any_cell_lands_in_the_table_or_changes_nothing(
    cell: tuple[RelationshipState, Role, MessageType],
) -> None:
    check_cell(*cell)


#: Status changes a stored offer may make; every other status is final (expiry is
#: derived from ``validUntil``, never stored).
_STATUS_MOVES: dict[OfferStatus, frozenset[OfferStatus]] = {
    OfferStatus.OPEN: frozenset(OfferStatus),
    # A deal the vendor refuses (spec §6.17): the accepted offer lapses.
    OfferStatus.ACCEPTED: frozenset({OfferStatus.ACCEPTED, OfferStatus.LAPSED}),
}


class RelationshipLedger(RuleBasedStateMachine):
    """Both sides of one relationship under a random stream of messages."""

    def __init__(self) -> None:
        super().__init__()
        self.journey = Journey()
        self.previous: dict[str, OfferStatus] = {}
        self.applied = 0

    @initialize(start=st.sampled_from(RelationshipState))
    def start_somewhere(self, start: RelationshipState) -> None:
        """Begin in any state, reached by legal moves (so every state gets stirred)."""
        self.journey = reach(start)
        self.applied = len(self.journey.buyer.history)
        self.previous = statuses(self.journey.buyer)

    def _deliver(self, sender: Role, message_type: MessageType, body: dict[str, Any]) -> None:
        # Journey.deliver asserts that both sides agree, that refusals are
        # role-correct and that a refusal changes neither side.
        outcome = self.journey.step(sender, message_type, body)
        event(f"{message_type.value}: {outcome.code or 'applied'}")
        if outcome.code is None:
            self.applied += 1

    def _canonical(self, message_type: MessageType, sender: Role) -> dict[str, Any]:
        # A canonical body may take first the moves it answers (a booking needs
        # a proposal): those count as applied too.
        before = len(self.journey.buyer.history)
        body = canonical_body(self.journey, message_type, sender)
        self.applied += len(self.journey.buyer.history) - before
        return body

    @rule(data=st.data(), sender=st.sampled_from(Role))
    def legal_move(self, data: st.DataObject, sender: Role) -> None:
        """A move the table allows in the current state (guards may still refuse)."""
        moves = sorted(allowed_inputs(self.journey.state, sender) - ALWAYS_ALLOWED)
        if moves:
            message_type = data.draw(st.sampled_from(moves), label="move")
            self._deliver(sender, message_type, self._canonical(message_type, sender))

    def _known_or_fresh(self, data: st.DataObject) -> str:
        known = list(self.journey.buyer.offers)  # insertion order: ids are random uuids
        return data.draw(st.sampled_from([*known, new_id()]), label="offer id")

    @rule(sender=st.sampled_from(Role), message_type=st.sampled_from(MessageType))
    def canonical_message(self, sender: Role, message_type: MessageType) -> None:
        self._deliver(sender, message_type, self._canonical(message_type, sender))

    def _canonical(self, message_type: MessageType, sender: Role) -> dict[str, Any]:
        # A canonical body may first make the move it answers (a proffer before
        # its answer, a handover before an invoice): those moves were applied too.
        before = len(self.journey.buyer.history)
        body = canonical_body(self.journey, message_type, sender)
        self.applied += len(self.journey.buyer.history) - before
        return body

    @rule(
        data=st.data(),
        basis=st.sampled_from(["indicative", "binding", "counter"]),
        minutes=st.integers(min_value=-60, max_value=60 * 24 * 3),
        topic=st.sampled_from([None, "new-products", "promotions"]),
        approval=st.booleans(),
        supersede=st.booleans(),
        sender=st.sampled_from(Role),
    )
    def any_offer(
        self,
        data: st.DataObject,
        basis: str,
        minutes: int,
        topic: str | None,
        approval: bool,
        supersede: bool,
        sender: Role,
    ) -> None:
        body = offer_body(
            self.journey.now,
            basis=basis,
            valid_for=timedelta(minutes=minutes),
            supersedes=self._known_or_fresh(data) if supersede else None,
            topic=topic,
            approval_required=approval,
        )
        self._deliver(sender, MessageType.OFFER, body)

    @rule(data=st.data(), right_digest=st.booleans(), approvals=st.booleans())
    def any_acceptance(self, data: st.DataObject, right_digest: bool, approvals: bool) -> None:
        offer_id = self._known_or_fresh(data)
        digest = self.journey.digests.get(offer_id, "") if right_digest else fake_digest({})
        body = acceptance_body(offer_id, digest, approvals=[APPROVAL] if approvals else None)
        self._deliver(Role.BUYER, MessageType.OFFER_ACCEPTANCE, body)

    @rule(data=st.data())
    def any_decline(self, data: st.DataObject) -> None:
        count = data.draw(st.integers(min_value=1, max_value=3), label="how many")
        ids = [self._known_or_fresh(data) for _ in range(count)]
        self._deliver(Role.BUYER, MessageType.OFFER_DECLINE, decline_body(ids))

    @rule(sender=st.sampled_from(Role), allowed=st.booleans())
    def exit_and_acknowledge(self, sender: Role, allowed: bool) -> None:
        reason = "need-changed" if sender is Role.BUYER else "vendor-leaving-market"
        notice = exit_notice_body(self.journey.now, reason=reason, allowed=allowed)
        self._deliver(sender, MessageType.EXIT_NOTICE, notice)
        exit_record = self.journey.buyer.exit_record
        if exit_record is not None:
            ack = exit_ack_body(exit_record.notice_id, SALLY, self.journey.now)
            self._deliver(sender.peer, MessageType.EXIT_ACKNOWLEDGEMENT, ack)

    @rule(minutes=st.integers(min_value=0, max_value=60 * 24 * 10))
    def time_passes(self, minutes: int) -> None:
        self.journey.now += timedelta(minutes=minutes)

    @rule()
    def snapshot_round_trip(self) -> None:
        for side in (self.journey.buyer, self.journey.vendor):
            restored = Relationship.restore(side.snapshot())
            assert restored.snapshot() == side.snapshot()

    @invariant()
    def ledger_is_consistent(self) -> None:
        buyer = self.journey.buyer
        offers = buyer.offers
        current = statuses(buyer)
        # History counts exactly the messages that were applied.
        assert len(buyer.history) == self.applied
        # The accepted offer, if any, is in the ledger as accepted; a transaction has one.
        if buyer.accepted_offer is not None:
            assert offers[buyer.accepted_offer].status is OfferStatus.ACCEPTED
        if buyer.state is RelationshipState.TRANSACTION:
            assert buyer.accepted_offer is not None
        # At most one offer is accepted per ledger generation... unless a development
        # deal followed; in every case accepted offers were made by the vendor.
        for record in offers.values():
            if record.status is OfferStatus.ACCEPTED:
                assert record.sender is Role.VENDOR
                assert record.basis != "indicative"
            if record.sender is Role.BUYER:
                assert record.basis == "counter"
                assert record.supersedes is not None
        # Every superseded offer is named by a later offer's supersedes.
        named = {record.supersedes for record in offers.values()}
        for offer_id, status in current.items():
            if status is OfferStatus.SUPERSEDED:
                assert offer_id in named
        # Offers never vanish (an exit closes them, the records stay), and
        # statuses only move forward.
        assert set(self.previous) <= set(current)
        for offer_id, before in self.previous.items():
            allowed = _STATUS_MOVES.get(before, frozenset({before}))
            assert current[offer_id] in allowed, (offer_id, before, current[offer_id])
        self.previous = current


RelationshipLedger.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None
)
TestRelationshipLedger = RelationshipLedger.TestCase
