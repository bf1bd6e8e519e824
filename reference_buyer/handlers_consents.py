"""Her agent takes the receipt of her consent change (spec §6.21) and checks it
against her sharing log (:func:`reference_buyer.consents.verify_consent_receipt`).
Importing this module registers the handler on :data:`reference_buyer.handlers.HANDLERS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference_buyer.consents import verify_consent_receipt
from reference_buyer.handlers import HANDLERS, journal
from reference_buyer.store import ConsentReceiptChecked
from vrm_agent.inbox import Inbound
from vrm_agent.unit import UnitOfWork
from vrm_protocol.models import ConsentChangeMessage, ConsentReceiptMessage, MessageRef, to_payload
from vrm_protocol.state_machine import Direction

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__: list[str] = []


@HANDLERS.on(ConsentReceiptMessage)
async def on_consent_receipt(
    buyer: BuyerAgent, inbound: Inbound[ConsentReceiptMessage], work: UnitOfWork
) -> None:
    """The receipt of her change: what the party says it did, checked against what
    she changed and what she shared with it. The state machine checked that it
    answers a change of hers, by its digest."""
    body = inbound.message.body
    journal(inbound, work)
    entry = await buyer.store.entry(body.change.id, direction=Direction.SENT)
    sent = entry.model() if entry is not None else None
    if entry is None or entry.digest is None or not isinstance(sent, ConsentChangeMessage):
        return  # nothing of hers to check it against (the state machine took it)
    check = verify_consent_receipt(
        body,
        change=sent.body,
        change_ref=MessageRef(id=entry.message_id, digest=entry.digest),
        shared_categories=[r.category for r in await buyer.store.shared_with(inbound.peer)],
    )
    work.write(
        ConsentReceiptChecked(
            change_id=entry.message_id,
            receipt_id=inbound.id,
            receipt=to_payload(body),
            verified=check.verified,
            problems=check.problems,
        )
    )
