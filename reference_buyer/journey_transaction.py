"""The demo's delivery, handover, invoice and payment (seed 000 steps 4-5, seed 001).

After the welcome the dealer announces the delivery and records the handover:
the new car to Sally and her old car to the dealer, at once. Her agent
inspects the record against the offer she accepted and accepts it; the
dealer invoices the offer as agreed, and her credit-union loan, the financing
she lined up before she asked for offers, pays it; the dealer receipts it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from reference_buyer.agent import BuyerAgent
from reference_buyer.handlers_transaction import inspect, pay
from vrm_protocol.models import HandoverRecordMessage, InvoiceMessage, PaymentNoticeMessage
from vrm_protocol.vocabulary import MessageType

__all__ = ["deliver_and_pay"]

#: The dealer's test driver: ``(path, instruction) -> answer``.
Driver = Callable[[str, dict[str, Any]], Awaitable[Any]]


class TransactionFailed(Exception):
    """The delivery or the payment did not go as the protocol says it must."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise TransactionFailed(what)


async def deliver_and_pay(
    agent: BuyerAgent, dealer: str, pseudonym: str, driver: Driver, *, within: float
) -> str:
    """Delivery with the trade-in, her inspection, the invoice and its payment; a
    line for the step's summary.

    Raises:
        TransactionFailed: a message did not come, or was not what the deal says.
        LocalProtocolError, RemoteProtocolError: a move was refused.
    """
    delivered = await driver("/handover", {"buyer": pseudonym})
    _, handover_id = delivered["sent"]
    entry = await agent.wait_for(lambda e: e.message_id == handover_id, within=within)
    record = entry.model()
    assert isinstance(record, HandoverRecordMessage)
    moves = {(item.kind, item.direction) for item in record.body.items}
    _expect(
        {("new-vehicle", "to-buyer"), ("trade-in", "to-vendor")} <= moves,
        "the new car and the old one change hands together (seed 001)",
    )
    inspection = await inspect(agent, handover_id)
    _expect(inspection.decision == "accept", f"she accepts the handover: {inspection.reasons}")
    invoiced = await driver("/invoice", {"buyer": pseudonym})
    [invoice_id] = invoiced["sent"]
    entry = await agent.wait_for(lambda e: e.message_id == invoice_id, within=within)
    invoice = entry.model()
    assert isinstance(invoice, InvoiceMessage)
    payment = (await pay(agent, invoice_id)).model
    assert isinstance(payment, PaymentNoticeMessage)
    financing = payment.body.financing
    _expect(
        payment.body.method == "finance" and financing is not None,
        "her credit-union loan pays the invoice, as she chose at acceptance",
    )
    assert financing is not None
    await agent.wait_for(
        lambda e: e.type is MessageType.PAYMENT_RECEIPT and e.peer == dealer, within=within
    )
    total = invoice.body.total
    lender = financing.provider or "her lender"
    loan = f"plan {financing.plan} of {lender}" if financing.plan else f"her loan from {lender}"
    return (
        f"delivered: new car to her, trade-in to the dealer, inspected and accepted; invoice "
        f"{invoice.body.id} for {total.currency} {total.amount} paid by {loan}, receipted"
    )
