"""The story at the top of the demo's transcript (issue 12, "the main job grows
with it"): one line per message, in order, saying who sent it to whom (names,
not ids), what it is (its type and a few words from its body) and whether its
signature and receipt verified. The full messages follow it in the transcript.

The few words come from the typed message (never a body read by key); a type
without words of its own here is described by its registry summary.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.models import (
    AnswerMessage,
    DealConfirmationMessage,
    DeliveryNoticeMessage,
    ExitAcknowledgementMessage,
    ExitNoticeMessage,
    HandoverRecordMessage,
    InspectionResultMessage,
    InvoiceMessage,
    Message,
    OfferAcceptanceMessage,
    OfferBody,
    OfferDeclineMessage,
    OfferMessage,
    PaymentNoticeMessage,
    PaymentReceiptMessage,
    PersonalRfiMessage,
    PersonalRfpMessage,
    ProblemReportMessage,
    QuestionMessage,
    ServiceNoticeMessage,
    ServiceResponseMessage,
    SupportEscalationMessage,
    SupportRequestMessage,
    SupportResolutionMessage,
    TermsAssertionMessage,
    TermsResponseMessage,
)
from vrm_protocol.vocabulary import MessageType

__all__ = ["gist", "story_lines"]

#: The longest "few words" of a line.
GIST_WIDTH = 70


def _short(text: str, width: int = GIST_WIDTH) -> str:
    return textwrap.shorten(" ".join(text.split()), width, placeholder="…")


def _money(amount: Any) -> str:
    return f"{amount.currency} {amount.amount}"


def _value(value: Any) -> str:
    return str(getattr(value, "value", value))


def _offer(message: OfferMessage) -> str:
    body = message.body
    what = body.items[0].description if body.items else ""
    return f"{body.basis}, {_money(body.price.total)}: {what}"


def _rfi(message: PersonalRfiMessage) -> str:
    body = message.body
    history = f", with {len(body.history)} kept messages" if body.history else ""
    return f"{body.intent.summary}, budget up to {_money(body.budget.max)}{history}"


def _rfp(message: PersonalRfpMessage) -> str:
    body = message.body
    trade_in = f", trade-in {body.trade_in.handover}" if body.trade_in is not None else ""
    return f"{body.requirements.item.description}, budget up to {_money(body.budget.max)}{trade_in}"


_GISTS: Mapping[type[Any], Callable[[Any], str]] = {
    PersonalRfiMessage: _rfi,
    PersonalRfpMessage: _rfp,
    OfferMessage: _offer,
    OfferAcceptanceMessage: lambda m: "accepts the offer, with her identity",
    OfferDeclineMessage: lambda m: f"declines {len(m.body.offers)} offer(s)",
    DealConfirmationMessage: lambda m: f"deal {m.body.deal.id}, {_money(m.body.deal.total)}",
    TermsAssertionMessage: lambda m: f"terms {m.body.terms.id} {m.body.terms.version}",
    TermsResponseMessage: lambda m: f"{_value(m.body.decision)}",
    ServiceNoticeMessage: lambda m: f"{m.body.kind} ({m.body.category})",
    ServiceResponseMessage: lambda m: f"{_value(m.body.decision)}",
    SupportRequestMessage: lambda m: f"“{m.body.subject}”",
    SupportResolutionMessage: lambda m: f"{m.body.status}: {m.body.resolution}",
    SupportEscalationMessage: lambda m: f"to {m.body.to.name}",
    ExitNoticeMessage: lambda m: f"{_value(m.body.reason)}",
    ExitAcknowledgementMessage: lambda m: "export and deletion receipt",
    DeliveryNoticeMessage: lambda m: f"delivery of {len(m.body.items)} item(s)",
    HandoverRecordMessage: lambda m: f"{len(m.body.items)} item(s) changed hands",
    InspectionResultMessage: lambda m: f"{_value(m.body.decision)}",
    InvoiceMessage: lambda m: f"{m.body.id}, {_money(m.body.total)}",
    PaymentNoticeMessage: lambda m: f"{_value(m.body.method)}, {_money(m.body.amount)}",
    PaymentReceiptMessage: lambda m: f"received {_money(m.body.amount)}",
    QuestionMessage: lambda m: f"“{m.body.text}”",
    AnswerMessage: lambda m: f"“{m.body.text}”",
    ProblemReportMessage: lambda m: f"{_value(m.body.code)}",
}


def _paper(kind: MessageType, paper: OfferBody) -> str | None:
    # A paper answer she typed in (an offer, the only answer on paper her store keeps).
    if kind is not MessageType.OFFER:
        return None
    return f"typed in from paper, {paper.basis}, {_money(paper.price.total)}"


def gist(kind: MessageType, message: Message | None, paper: OfferBody | None = None) -> str:
    """A few words on what ``message`` says (its type's summary when there are
    none of its own); ``paper``: the body of an answer typed in from paper."""
    words: str | None = _paper(kind, paper) if paper is not None else None
    if message is not None:
        describe = _GISTS.get(type(message))
        if describe is not None:
            try:
                words = describe(message)
            except (AttributeError, IndexError, TypeError):
                words = None
    if not words:
        spec = MESSAGE_TYPES.get(kind)
        words = spec.summary if spec is not None else str(kind)
    return _short(words)


def _verdict(item: Mapping[str, Any]) -> str:
    if item["verified"] is None:
        return "unsigned (typed in from paper)"
    signature = "✔ verified" if item["verified"] else "✘ NOT VERIFIED"
    receipt = {True: ", receipt ✔", False: ", RECEIPT ✘", None: ""}[item["receiptVerified"]]
    return signature + receipt


def story_lines(
    entries: Sequence[Mapping[str, Any]],
    titles: Mapping[str, str],
    before: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The story: a heading per step (``titles``: step -> title), then one line
    per message of ``entries`` (the transcript's items, in order). ``before``
    gives lines told at the start of a step that are not messages (a directory
    search)."""
    lines = [
        "## The story",
        "",
        "One line per message, in order: who sent it to whom, what it is, and whether its "
        "signature (and the receipt for it) verified. The full messages follow below.",
    ]
    current: object = object()
    for item in entries:
        if item["step"] != current:
            current = item["step"]
            title = titles.get(str(current), str(current or "before the steps"))
            lines += ["", f"**{title}**", ""]
            lines += [f"- {line}" for line in (before or {}).get(str(current), ())]
        post = " (by post)" if item["channel"] == "letter" else ""
        lines.append(
            f"- {item['seq']} · {item['senderName']} → {item['recipient']}{post}: "
            f"**{item['type']}**, {item['gist']} — {_verdict(item)}"
        )
    return [*lines, ""]
