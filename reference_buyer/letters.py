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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from reference_buyer.store import private_directory, write_private
from vrm_protocol.canonical import message_digest

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


def _money(value: Any) -> str:
    if not isinstance(value, Mapping):
        return "-"
    return f"{value.get('currency', '')} {value.get('amount', '?')}".strip()


def _lines(body: Mapping[str, Any]) -> dict[str, str]:
    item = body.get("requirements", {}).get("item", {})
    item_line = " ".join(
        str(part)
        for part in (item.get("year"), item.get("make"), item.get("model"))
        if part is not None
    )
    item_line = (item_line + " - " if item_line else "") + str(item.get("description", ""))
    budget = body.get("budget", {})
    budget_line = (
        f"{_money(budget.get('min'))} to {_money(budget.get('max'))}"
        if budget.get("min")
        else f"up to {_money(budget.get('max'))}"
    )
    financing = body.get("financing", {})
    financing_line = (
        f"wanted, up to {financing.get('maxTermMonths', '?')} months"
        if financing.get("wanted")
        else "not wanted"
    )
    delivery = body.get("delivery", {})
    location = delivery.get("location", {})
    where = ", ".join(
        str(location[name]) for name in ("postcodeArea", "region", "country") if name in location
    )
    delivery_line = (
        f"{delivery.get('method', '?')} to {where or '?'}, by {delivery.get('wantedBy', '?')}"
    )
    trade_in = body.get("tradeIn")
    trade_in_line = ""
    if isinstance(trade_in, Mapping):
        vehicle = trade_in.get("item", {})
        described = " ".join(
            str(vehicle[name]) for name in ("year", "make", "model") if name in vehicle
        ) or str(vehicle.get("description", ""))
        mileage = f", {vehicle['mileage']} miles" if "mileage" in vehicle else ""
        handover = str(trade_in.get("handover", "?"))
        trade_in_line = f"{described}{mileage}; handed over {_HANDOVER.get(handover, handover)}"
    return {
        "item_line": item_line,
        "budget_line": budget_line,
        "financing_line": financing_line,
        "delivery_line": delivery_line,
        "trade_in_line": trade_in_line,
    }


def render_letter(
    payload: Mapping[str, Any],
    token: bytes,
    *,
    recipient: PostalRecipient,
    reply_address: Sequence[str],
    date: str,
) -> Letter:
    """Render the signed RFP ``payload`` (whose signed form is ``token``) as a letter.

    Pure: the caller supplies the date and writes the files.

    Raises:
        ValueError: ``payload`` is not a personal RFP addressed to ``recipient``.
        jinja2.UndefinedError: the payload lacks a member the letter shows.
    """
    if payload.get("type") != "personal-rfp":
        raise ValueError(f"only a personal-rfp is sent by post, not {payload.get('type')!r}")
    if recipient.party_id not in (payload.get("to") or []):
        raise ValueError(f"the RFP is not addressed to {recipient.party_id}")
    body = payload["body"]
    digest = message_digest(token)
    sender = str(payload.get("from", ""))
    attestations = ", ".join(
        f"{a.get('kind')} attestation from {a.get('issuer')}"
        for a in body.get("attestations") or []
        if isinstance(a, Mapping)
    )
    context = {
        "message": payload,
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
    return Letter(str(payload["id"]), digest, text, html)


def write_letter(letter: Letter, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write the letter as ``<stem>.txt`` and ``<stem>.html`` in ``directory``.

    Raises:
        OSError: the files cannot be written.
    """
    # A letter carries her RFP: private like the rest of her store (spec D10).
    private_directory(directory)
    text_path = directory / f"{stem}.txt"
    html_path = directory / f"{stem}.html"
    write_private(text_path, letter.text.encode("utf-8"))
    write_private(html_path, letter.html.encode("utf-8"))
    return text_path, html_path
