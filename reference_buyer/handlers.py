"""One handler per message type her agent takes (spec §6).

Each handler runs after the runtime's pipeline has verified the message,
judged its replay and participation, and the state machine has decided it
(:mod:`vrm_agent.inbox`): it reads the typed model, applies her guards, and
adds her own writes to the unit of work (a journal line for every message; a
deal; how an exit's acknowledgement checked out). A guard refuses the message
with a :class:`~vrm_protocol.errors.RemoteProtocolError`, and then nothing of
it is stored. The ledger (offers opened and superseded, requests opened and
answered, the exit) is the state machine's effects, never re-implemented here.

Her agent answers nothing on its own: what she sends, she decides
(:class:`~reference_buyer.agent.BuyerAgent`).

:data:`HANDLERS` is checked at start-up against
:func:`vrm_protocol.message_types.accepted_by` for the buyer role: a type her
agent must take without a handler stops it from starting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from reference_buyer.exits import verify_exit_acknowledgement
from reference_buyer.store import Channel, DealRecord, ExitAcknowledged, Journal
from vrm_agent.inbox import Inbound
from vrm_agent.registry import HandlerRegistry
from vrm_agent.unit import UnitOfWork
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.ledger import LedgerQuery
from vrm_protocol.models import (
    DealConfirmationMessage,
    DealRefusalMessage,
    ExitAcknowledgementMessage,
    ExitNoticeMessage,
    MessageRef,
    OfferAcceptanceMessage,
    OfferMessage,
    ProblemReportMessage,
    ServiceNoticeMessage,
    to_payload,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = ["HANDLERS", "journal"]

#: Her agent's handlers, by message model.
HANDLERS: Final[HandlerRegistry[BuyerAgent]] = HandlerRegistry()


def _journal(inbound: Inbound[Any], work: UnitOfWork) -> None:
    """Her journal line for the message: how it came, and that it was received."""
    message = inbound.message
    work.write(
        Journal(
            peer=inbound.peer,
            sender=inbound.peer,
            message_id=message.id,
            type=MessageType(message.type),
            direction=Direction.RECEIVED,
            channel=Channel.MAILBOX if inbound.via == "mailbox" else Channel.INBOX,
            status="received",
            thread=message.thread,
            parent=message.parent,
            at=format_timestamp(inbound.now),
        )
    )


#: Her journal line for a message taken (for the handlers of other modules).
journal = _journal


async def _filed(buyer: BuyerAgent, inbound: Inbound[Any], work: UnitOfWork) -> None:
    """Kept for her to read and act on: an offer, terms, a resolution, a report."""
    _journal(inbound, work)


for _model in (
    OfferMessage,
    # A vendor that cannot honour her acceptance: the state machine lapsed the
    # offer and took the relationship back to negotiation (spec §6.17).
    DealRefusalMessage,
    # TermsAssertionMessage: handlers_myterms (a programme's terms name her enrolment).
    ProblemReportMessage,
    # A vendor leaving the market: reference_buyer.handlers_retention.
):
    HANDLERS.on(_model)(_filed)


@HANDLERS.on(DealConfirmationMessage)
async def on_deal(
    buyer: BuyerAgent, inbound: Inbound[DealConfirmationMessage], work: UnitOfWork
) -> None:
    """The deal she made: it must bind the offer's bytes she accepted and her
    acceptance (spec §6.6, VRM-BUY-009); the state machine checked the offer's id."""
    body = inbound.message.body
    before = inbound.before
    accepted_id = before.core.accepted_offer if before is not None else None
    accepted = None
    acceptances: list[str] = []
    if accepted_id is not None:
        facts = await buyer.store.ledger_facts(
            inbound.peer, LedgerQuery(offers=frozenset({accepted_id})), inbound.now
        )
        accepted = facts.offers.get(accepted_id)
        for entry in await buyer.store.history(
            peer=inbound.peer, type=MessageType.OFFER_ACCEPTANCE, include_refused=False
        ):
            sent = entry.model() if entry.direction is Direction.SENT else None
            if isinstance(sent, OfferAcceptanceMessage) and sent.body.offer.id == accepted_id:
                acceptances.append(sent.id)
    buyer.strategies.deals.check(body, accepted, acceptances)
    _journal(inbound, work)
    work.write(
        DealRecord(
            deal_id=body.deal.id,
            peer=inbound.peer,
            offer_id=body.deal.offer.id,
            acceptance_id=body.deal.acceptance,
            confirmation_id=inbound.id,
            at=format_timestamp(inbound.now),
        )
    )


@HANDLERS.on(ServiceNoticeMessage)
async def on_notice(
    buyer: BuyerAgent, inbound: Inbound[ServiceNoticeMessage], work: UnitOfWork
) -> None:
    """A notice is taken only in a category she allowed that party (spec §6.9,
    VRM-BUY-007). After an exit the state machine judged it by her re-engagement
    preferences instead."""
    before = inbound.before
    if before is None or before.core.state is not RelationshipState.EXITED:
        allowed = await buyer.owning.notifications_allowed(inbound.peer)
        buyer.strategies.notices.check(inbound.message.body.category, allowed)
    _journal(inbound, work)


@HANDLERS.on(ExitAcknowledgementMessage)
async def on_exit_acknowledgement(
    buyer: BuyerAgent, inbound: Inbound[ExitAcknowledgementMessage], work: UnitOfWork
) -> None:
    """Her exit acknowledged: the deletion receipt and the export are checked
    against everything she shared with that party (spec §6.14)."""
    body = inbound.message.body
    notice = await buyer.store.entry(body.notice.id, direction=Direction.SENT)
    if notice is None or notice.peer != inbound.peer or notice.type is not MessageType.EXIT_NOTICE:
        _journal(inbound, work)
        return  # the state machine took it as her exit's end; there is nothing to check against
    sent = notice.model()
    requested = isinstance(sent, ExitNoticeMessage) and sent.body.export.requested
    deletion = isinstance(sent, ExitNoticeMessage) and sent.body.deletion.requested
    digest = notice.digest
    assert digest is not None  # a message she signed
    check = verify_exit_acknowledgement(
        body,
        notice=MessageRef(id=notice.message_id, digest=digest),
        export_requested=requested,
        deletion_requested=deletion,
        our_id=inbound.us.party_id,
        shared_categories=[r.category for r in await buyer.store.shared_with(inbound.peer)],
    )
    # VRM-BUY-014: a receipt that does not account for every item she shared is
    # refused with exit-incomplete (nothing of it is applied).
    buyer.strategies.exits.check(check)
    _journal(inbound, work)
    work.write(
        ExitAcknowledged(
            notice_id=notice.message_id,
            ack_id=inbound.id,
            deletion_receipt=(
                to_payload(body.deletion_receipt) if body.deletion_receipt is not None else None
            ),
            verified=check.verified,
            problems=check.problems,
        )
    )
