"""The postal path: an RFP for a vendor that is not online, as a printed letter.

Seed 000, step 3: two of the dealers "are not yet online", so they receive the
personal RFP by post.  The letter is rendered from the *same* signed message
the online dealers get (one payload, one digest), so a paper answer can quote
the digest and be bound to exactly that request, and the individual's store
keeps one history whatever the channel.  A paper answer typed in by the
individual is stored as an offer marked unsigned (see
:meth:`reference_buyer.agent.BuyerAgent.enter_paper_answer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from vrm_agent.files import prepare_data_dir, write_private_atomically
from vrm_protocol.canonical import message_digest
from vrm_protocol.models import Money, PersonalRfpBody, PersonalRfpMessage

__all__ = ["Letter", "PostalRecipient", "render_letter", "write_letter"]

_ENVIRONMENT = Environment(
    loader=PackageLoader("reference_buyer", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class PostalRecipient:
    """A vendor reached by post: its party id (for the envelope), name and address."""

    party_id: str
    name: str
    address: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Letter:
    """A rendered letter: plain text, HTML, and the digest of the signed request."""

    message_id: str
    digest: str
    text: str
    html: str


#: Seed 001: when the old car changes hands is part of the deal; say it in words.
_HANDOVER = {
    "with-delivery": "when the new car is delivered, not before (with-delivery)",
    "before-delivery": "before delivery (before-delivery)",
    "after-delivery": "after delivery (after-delivery)",
}


def _money(value: Money | None) -> str:
    return "-" if value is None else f"{value.currency} {value.amount}"


def _lines(body: PersonalRfpBody) -> dict[str, str]:
    item = body.requirements.item
    item_line = " ".join(
        str(part) for part in (item.year, item.make, item.model) if part is not None
    )
    item_line = (item_line + " - " if item_line else "") + item.description
    budget = body.budget
    budget_line = (
        f"{_money(budget.min)} to {_money(budget.max)}"
        if budget.min is not None
        else f"up to {_money(budget.max)}"
    )
    financing = body.financing
    financing_line = (
        f"wanted, up to {financing.max_term_months or '?'} months"
        if financing is not None and financing.wanted
        else "not wanted"
    )
    delivery = body.delivery
    location = delivery.location if delivery is not None else None
    where = ", ".join(
        part
        for part in (
            (location.postcode_area, location.region, location.country) if location else ()
        )
        if part is not None
    )
    delivery_line = (
        f"{(delivery.method if delivery else None) or '?'} to {where or '?'}, by "
        f"{(delivery.wanted_by if delivery else None) or '?'}"
    )
    trade_in = body.trade_in
    trade_in_line = ""
    if trade_in is not None:
        vehicle = trade_in.item
        described = (
            " ".join(
                str(part)
                for part in (vehicle.year, vehicle.make, vehicle.model)
                if part is not None
            )
            or vehicle.description
        )
        mileage = f", {vehicle.mileage} miles" if vehicle.mileage is not None else ""
        handover = trade_in.handover
        trade_in_line = f"{described}{mileage}; handed over {_HANDOVER.get(handover, handover)}"
    return {
        "item_line": item_line,
        "budget_line": budget_line,
        "financing_line": financing_line,
        "delivery_line": delivery_line,
        "trade_in_line": trade_in_line,
    }


def render_letter(
    message: PersonalRfpMessage,
    token: bytes,
    *,
    recipient: PostalRecipient,
    reply_address: Sequence[str],
    date: str,
) -> Letter:
    """Render the signed RFP ``message`` (whose signed form is ``token``) as a letter.

    Pure: the caller supplies the date and writes the files.

    Raises:
        ValueError: ``message`` is not addressed to ``recipient``.
        jinja2.UndefinedError: the letter shows a member the message lacks.
    """
    if recipient.party_id not in message.to:
        raise ValueError(f"the RFP is not addressed to {recipient.party_id}")
    body = message.body
    digest = message_digest(token)
    sender = message.from_
    attestations = ", ".join(
        f"{attestation.kind} attestation from {attestation.issuer}"
        for attestation in body.attestations or ()
    )
    context = {
        "message": message,
        "body": body,
        "digest": digest,
        "token": token.decode("ascii"),
        "recipient": recipient,
        "reply_address": list(reply_address),
        "date": date,
        "attestations": attestations,
        "short_sender": sender[:24] + "…" if len(sender) > 24 else sender,
        **_lines(body),
    }
    text = _ENVIRONMENT.get_template("letter.txt.j2").render(context)
    html = _ENVIRONMENT.get_template("letter.html.j2").render(context)
    return Letter(message.id, digest, text, html)


def write_letter(letter: Letter, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write the letter as ``<stem>.txt`` and ``<stem>.html`` in ``directory``.

    Raises:
        OSError: the files cannot be written.
        DataDirError: the directory cannot be made private.
    """
    # A letter carries her RFP: private like the rest of her store (spec D10).
    prepare_data_dir(directory)
    text_path = directory / f"{stem}.txt"
    html_path = directory / f"{stem}.html"
    write_private_atomically(text_path, letter.text.encode("utf-8"))
    write_private_atomically(html_path, letter.html.encode("utf-8"))
    return text_path, html_path
