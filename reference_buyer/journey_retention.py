"""The manufacturer's retention touchpoints, between real agents (seed 004).

Sally registers her new car with the manufacturer, its own agent (the
reference vendor run with ``catalogues/manufacturer.toml``): an enquiry, its
terms of sharing, her answer, in which she chooses the notices she wants. The
manufacturer then runs its touchpoints (new-model information, a test-drive
invitation, a warranty extension, loyalty, promotions for her area); what her
choices allow arrives as service notices her agent takes (VRM-BUY-007), the
rest is not sent and the manufacturer records why (VRM-RET-001, VRM-RET-002).

``vrm demo`` runs this in step 7, and ``examples/retention_offers.py`` on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reference_buyer.agent import BuyerAgent
from reference_buyer.store import Entry
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import ExitNoticeMessage, PersonalRfiBody, ServiceNoticeMessage
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

__all__ = [
    "MANUFACTURER_CATALOGUE",
    "NOTIFICATIONS",
    "RetentionOutcome",
    "Touchpoint",
    "VendorExit",
    "register_and_run_touchpoints",
    "registration_rfi_body",
    "vendor_leaves",
]

#: The catalogue the manufacturer's agent runs with.
MANUFACTURER_CATALOGUE = "manufacturer"
#: What Sally allows the manufacturer (seed 004): safety and recalls, news of new
#: models, invitations to events (test drives, loyalty) and warranty offers; no
#: promotions.
NOTIFICATIONS = ("safety", "recall", "new-products", "events", "warranty")

#: The manufacturer's test driver: ``(path, instruction) -> answer``.
Driver = Callable[[str, dict[str, Any]], Awaitable[Any]]


class RetentionFailed(Exception):
    """A touchpoint went otherwise than her choices say it must."""


@dataclass(frozen=True, slots=True)
class Touchpoint:
    """One touchpoint as the manufacturer reported it, and what reached her."""

    code: str
    kind: str
    category: str
    sent: bool
    message_id: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class RetentionOutcome:
    """The touchpoints, and the notification categories she chose."""

    touchpoints: tuple[Touchpoint, ...]
    notifications: tuple[str, ...]

    @property
    def sent(self) -> tuple[Touchpoint, ...]:
        return tuple(t for t in self.touchpoints if t.sent)

    @property
    def refused(self) -> tuple[Touchpoint, ...]:
        return tuple(t for t in self.touchpoints if not t.sent)

    def lines(self) -> list[str]:
        """One line per touchpoint, for the story."""
        return [
            f"{t.code} ({t.kind}, {t.category}): sent as {t.message_id}"
            if t.sent
            else f"{t.code} ({t.kind}, {t.category}): NOT sent, {t.reason}"
            for t in self.touchpoints
        ]

    def summary(self) -> str:
        """The step's line."""
        sent = ", ".join(t.code for t in self.sent)
        refused = "; ".join(f"{t.code} not sent ({t.reason})" for t in self.refused)
        return (
            f"manufacturer touchpoints within her choices ({' + '.join(self.notifications)}): "
            f"{sent}; {refused or 'none refused'}"
        )


def _message(message_id: str | None) -> Callable[[Entry], bool]:
    return lambda entry: entry.message_id == message_id


def registration_rfi_body(now: datetime) -> PersonalRfiBody:
    """Her enquiry to the manufacturer: register the new car for owner services."""
    return PersonalRfiBody.model_validate(
        {
            "intent": {
                "category": "vehicles.ownership",
                "summary": "Register my new Prius for warranty, recalls and owner news",
                "quantity": 1,
            },
            "budget": {"max": {"amount": "0", "currency": "GBP"}},
            "responseBy": format_timestamp(now + timedelta(hours=1)),
        }
    )


async def register_and_run_touchpoints(
    agent: BuyerAgent,
    manufacturer: str,
    driver: Driver,
    *,
    within: float,
    notifications: Sequence[str] = NOTIFICATIONS,
) -> RetentionOutcome:
    """Register with ``manufacturer`` choosing ``notifications``, have it run its
    touchpoints, and check that what reached her is exactly what it sent, every
    one in a category she allowed.

    Raises:
        RetentionFailed: a notice outside her choices, or one that did not come.
        LocalProtocolError, RemoteProtocolError: a move was refused.
    """
    store = agent.store
    history = await store.history()
    seq = history[-1].seq if history else 0
    await agent.buying.send_rfis(
        [manufacturer], registration_rfi_body(agent.clock.now()), attest=False
    )
    assertion = await agent.wait_for(
        lambda e: e.seq > seq and e.type is MessageType.TERMS_ASSERTION and e.peer == manufacturer,
        within=within,
    )
    _, decision = await agent.owning.answer_terms(
        assertion.message_id, notifications=tuple(notifications)
    )
    if decision is None:
        raise RetentionFailed("the manufacturer's terms are not the ones it published (spec D12)")
    pseudonym = await agent.pseudonyms.known(manufacturer)
    assert pseudonym is not None  # she just wrote to it
    answer = await driver("/touchpoints", {"buyer": pseudonym.identifier})
    touchpoints = tuple(
        Touchpoint(
            str(t["code"]),
            str(t["kind"]),
            str(t["category"]),
            bool(t["sent"]),
            t.get("id"),
            t.get("reason"),
        )
        for t in answer["touchpoints"]
    )
    chosen = tuple(decision.notifications)
    for touchpoint in touchpoints:
        if not touchpoint.sent:
            continue
        entry = await agent.wait_for(_message(touchpoint.message_id), within=within)
        notice = entry.model()
        if not isinstance(notice, ServiceNoticeMessage) or notice.body.category not in chosen:
            raise RetentionFailed(f"{touchpoint.code} reached her outside her choices {chosen}")
    return RetentionOutcome(touchpoints, chosen)


@dataclass(frozen=True, slots=True)
class VendorExit:
    """A vendor that left the market, as her agent recorded and answered it."""

    notice_id: str
    verified: bool
    problems: tuple[str, ...]
    exported: tuple[str, ...]
    deleted: tuple[str, ...]
    acknowledged: bool

    def summary(self, name: str) -> str:
        """The step's line."""
        outcome = "verified" if self.verified else f"INCOMPLETE ({'; '.join(self.problems)})"
        return (
            f"{name} left the market: export of {len(self.exported)} records "
            f"({', '.join(self.exported)}) and deletion receipt checked against her sharing "
            f"log: {outcome}; {'acknowledged' if self.acknowledged else 'NOT acknowledged'}"
        )


async def vendor_leaves(
    agent: BuyerAgent, vendor: str, driver: Driver, *, within: float
) -> VendorExit:
    """Have ``vendor`` leave the market (its test driver) and wait until her agent
    checked its notice and acknowledged it (spec §6.13, VRM-RET-004).

    Raises:
        RetentionFailed: no notice came, or her agent did not acknowledge it.
    """
    store = agent.store
    history = await store.history()
    seq = history[-1].seq if history else 0
    await driver("/leave-market", {"explanation": "We are closing our UK online sales."})
    notice = await agent.wait_for(
        lambda e: e.seq > seq and e.type is MessageType.EXIT_NOTICE and e.peer == vendor,
        within=within,
    )
    message = notice.model()
    assert isinstance(message, ExitNoticeMessage)
    acknowledged = False
    async with asyncio.timeout(within):
        while not acknowledged:
            acks = await store.history(peer=vendor, type=MessageType.EXIT_ACKNOWLEDGEMENT)
            acknowledged = any(
                e.direction is Direction.SENT and e.parent == notice.message_id for e in acks
            )
            if not acknowledged:
                await asyncio.sleep(0.05)
    [record] = [e for e in await store.exits(vendor) if e.notice_id == notice.message_id]
    receipt = message.body.deletion_receipt
    return VendorExit(
        notice.message_id,
        record.receipt_verified is True,
        record.problems,
        tuple(sorted(message.body.export.data or {})),
        tuple(receipt.deleted) if receipt is not None else (),
        acknowledged,
    )
