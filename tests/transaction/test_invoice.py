"""The invoice of a delivered deal and its payment by her credit-union loan,
between the two reference agents over HTTP (spec §6.25-§6.28; seed 000)."""

from __future__ import annotations

import pytest

from reference_buyer.handlers_transaction import inspect, pay, query_invoice
from vrm_protocol.errors import LocalProtocolError
from vrm_protocol.models import (
    HandoverRecordMessage,
    InvoiceMessage,
    OfferAcceptanceMessage,
    OfferMessage,
    PaymentNoticeMessage,
    PaymentReceiptMessage,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

from .conftest import CREDIT_UNION, REPLY_SECONDS, Pair, PairFactory


async def _delivered(pair: Pair) -> None:
    status, answer = await pair.driver("/handover", {"buyer": await pair.pseudonym()})
    assert status == 200, answer
    handover_id = answer["sent"][1]
    entry = await pair.buyer.wait_for(lambda e: e.message_id == handover_id, within=REPLY_SECONDS)
    assert isinstance(entry.model(), HandoverRecordMessage)
    assert (await inspect(pair.buyer, handover_id)).decision == "accept"


async def _invoiced(pair: Pair) -> InvoiceMessage:
    status, answer = await pair.driver("/invoice", {"buyer": await pair.pseudonym()})
    assert status == 200, answer
    [invoice_id] = answer["sent"]
    entry = await pair.buyer.wait_for(lambda e: e.message_id == invoice_id, within=REPLY_SECONDS)
    invoice = entry.model()
    assert isinstance(invoice, InvoiceMessage)
    return invoice


async def _offer(pair: Pair, offer_id: str) -> OfferMessage:
    view = await pair.buyer.store.offer_view(offer_id)
    assert view is not None
    message = view.entry.model()
    assert isinstance(message, OfferMessage)
    return message


async def test_the_invoice_is_the_offer_and_her_loan_pays_it(pairs: PairFactory) -> None:
    pair = await pairs()
    offer_id = await pair.deal(finance=True)
    await _delivered(pair)
    invoice = await _invoiced(pair)
    offer = await _offer(pair, offer_id)
    assert invoice.body.total == offer.body.price.total
    assert invoice.body.differences is None
    assert invoice.body.deal.offer.id == offer_id

    sent = await pay(pair.buyer, invoice.id)

    payment = sent.model
    assert isinstance(payment, PaymentNoticeMessage)
    acceptance = next(
        entry.model()
        for entry in await pair.buyer.store.history(
            peer=pair.dealer, type=MessageType.OFFER_ACCEPTANCE
        )
    )
    assert isinstance(acceptance, OfferAcceptanceMessage)
    assert acceptance.body.payment is not None
    assert acceptance.body.payment.method == "finance"
    # The loan she lined up with the credit union pays, not a bank transfer.
    assert payment.body.method == "finance"
    assert payment.body.financing is not None
    assert payment.body.financing.plan == acceptance.body.payment.financing_plan
    assert payment.body.financing.provider == CREDIT_UNION
    assert payment.body.amount == invoice.body.total
    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.PAYMENT_RECEIPT, within=REPLY_SECONDS
    )
    receipt = entry.model()
    assert isinstance(receipt, PaymentReceiptMessage)
    assert receipt.body.payment.id == payment.id
    assert receipt.body.amount == payment.body.amount
    # Paid: it cannot be paid twice.
    with pytest.raises(LocalProtocolError) as refused:
        await pay(pair.buyer, invoice.id)
    assert refused.value.code.value == "illegal-transition"


async def test_no_invoice_before_she_accepted_the_handover(pairs: PairFactory) -> None:
    pair = await pairs()
    await pair.deal()
    status, answer = await pair.driver("/invoice", {"buyer": await pair.pseudonym()})
    assert status == 409, answer
    assert answer["code"] == "illegal-transition"


async def test_her_agent_refuses_an_invoice_with_an_unstated_fee(pairs: PairFactory) -> None:
    pair = await pairs(vendor_faults=("invoice-unstated-fee",))
    await pair.deal()
    await _delivered(pair)
    status, answer = await pair.driver("/invoice", {"buyer": await pair.pseudonym()})
    assert status == 200, answer
    [invoice_id] = answer["sent"]
    await pair.driver("/deliver", {})
    assert await pair.buyer.store.entry(invoice_id, direction=Direction.RECEIVED) is None
    history = await pair.buyer.store.history(peer=pair.dealer, type=MessageType.INVOICE)
    assert all(entry.refused for entry in history)


async def test_a_query_is_answered_with_an_adjustment_that_supersedes(pairs: PairFactory) -> None:
    pair = await pairs()
    await pair.deal()
    await _delivered(pair)
    invoice = await _invoiced(pair)
    query = await query_invoice(pair.buyer, invoice.id, ["vehicle"], "Please confirm the price.")
    entry = await pair.buyer.wait_for(
        lambda e: e.type is MessageType.INVOICE and e.parent == query.message.message_id,
        within=REPLY_SECONDS,
    )
    adjusted = entry.model()
    assert isinstance(adjusted, InvoiceMessage)
    assert adjusted.body.supersedes is not None
    assert adjusted.body.supersedes.id == invoice.id
    with pytest.raises(LocalProtocolError):
        await pay(pair.buyer, invoice.id)  # superseded
    payment = (await pay(pair.buyer, adjusted.id)).model
    assert isinstance(payment, PaymentNoticeMessage)
    assert payment.body.method == "bank-transfer"  # as she chose at acceptance


async def test_her_weakened_agent_pays_by_transfer(pairs: PairFactory) -> None:
    pair = await pairs(buyer_faults=("pay-by-transfer",))
    await pair.deal(finance=True)
    await _delivered(pair)
    invoice = await _invoiced(pair)
    payment = (await pay(pair.buyer, invoice.id)).model
    assert isinstance(payment, PaymentNoticeMessage)
    assert payment.body.method == "bank-transfer"
