"""The manufacturer's retention touchpoints (seed 004), within what she chose.

The manufacturer runs as the reference vendor with its own catalogue
(``catalogues/manufacturer.toml``). After the sale the CRM world decides from
what it gathered when to write to her: new-model information, a test-drive
invitation, a warranty extension, loyalty, promotions for her area. Here she
decided first, in her terms-response: the notification categories she allows
(spec §6.8, §12) and the data she shares. Each touchpoint goes out as a
service notice (spec §6.9) only

- in a category her notification preferences allow (VRM-RET-001), of a kind
  that category may carry (VRM-MSG-038: the catalogue refuses any other), and
- when every item it depends on is data she shared with the manufacturer under
  terms it still holds (VRM-RET-002): a promotion for her area only if she
  shared her area.

A touchpoint not sent is recorded with its reason (the suppressed notices the
state summary lists), never sent anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from reference_vendor.catalogue import Touchpoint
from reference_vendor.store import Preferences, SuppressedRow
from vrm_agent.store import RelationshipRecord
from vrm_agent.unit import UnitOfWork
from vrm_protocol.freshness import format_timestamp

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = [
    "WITHIN_CHOICES",
    "TouchpointGate",
    "TouchpointOutcome",
    "WithinChoices",
    "blocked_by",
    "run_touchpoints",
]


@dataclass(frozen=True, slots=True)
class TouchpointOutcome:
    """One touchpoint: sent (with the notice's id) or not (with the reason)."""

    code: str
    kind: str
    category: str
    sent: bool
    message_id: str | None = None
    reason: str | None = None
    #: The data items it depends on.
    needs: tuple[str, ...] = ()


def blocked_by(
    touchpoint: Touchpoint,
    preferences: Preferences,
    shared: frozenset[str],
    *,
    exited: bool = False,
) -> str | None:
    """Why ``touchpoint`` may not be sent to her, or ``None`` when it may.

    Her notification categories come first (VRM-RET-001); then the data the
    touchpoint depends on (VRM-RET-002). After her exit her re-engagement
    preferences replace her notification categories: the state machine judges
    those when the notice is sent (spec §7.5, VRM-STATE-009).
    """
    allowed = preferences.notifications_allowed
    if not exited:
        if allowed is None:
            return "the individual has not chosen notification categories"
        if touchpoint.category not in allowed:
            return f"the individual does not allow {touchpoint.category} notifications"
    missing = [item for item in touchpoint.needs if item not in shared]
    if missing:
        return f"it depends on {', '.join(missing)}, which the individual did not share"
    return None


class TouchpointGate(Protocol):
    """Whether a touchpoint may go to her (the vendor's strategy; a fault may weaken it)."""

    def blocked_by(
        self,
        touchpoint: Touchpoint,
        preferences: Preferences,
        shared: frozenset[str],
        *,
        exited: bool,
    ) -> str | None:
        """Why it may not be sent, or ``None``."""
        ...


class WithinChoices:
    """Her notification categories and the data she shared decide (:func:`blocked_by`)."""

    def blocked_by(
        self,
        touchpoint: Touchpoint,
        preferences: Preferences,
        shared: frozenset[str],
        *,
        exited: bool,
    ) -> str | None:
        """:func:`blocked_by`."""
        return blocked_by(touchpoint, preferences, shared, exited=exited)


WITHIN_CHOICES: Final = WithinChoices()


async def run_touchpoints(vendor: VendorAgent, peer: str) -> list[TouchpointOutcome]:
    """Run every touchpoint of the catalogue for ``peer``, in order: each sent
    within her choices, or recorded as not sent with its reason.

    Raises:
        LookupError: no relationship with ``peer``.
        StoreUnavailable: the store cannot be read or written.
    """
    outcomes: list[TouchpointOutcome] = []
    for touchpoint in vendor.catalogue.touchpoints:
        record = await vendor.store.relationship(peer)
        if record is None:
            raise LookupError(f"no relationship with {peer}")
        preferences = await vendor.store.preferences(peer)
        held = {row.item: row.value for row in await vendor.store.data_for(peer)}
        reason = vendor.strategies.touchpoints.blocked_by(
            touchpoint, preferences, frozenset(held), exited=record.core.exit is not None
        )
        if reason is not None:
            await _record_not_sent(vendor, peer, touchpoint, reason)
            outcomes.append(
                TouchpointOutcome(
                    touchpoint.code,
                    touchpoint.kind,
                    touchpoint.category,
                    False,
                    reason=reason,
                    needs=touchpoint.needs,
                )
            )
            continue
        summary = touchpoint.summary
        values = [str(held[item]) for item in touchpoint.needs if item in held]
        if values:
            # The data it depends on, as she shared it (her area, never more).
            summary += " (" + ", ".join(values) + ")"
        outcome = await vendor.send_notice(
            peer,
            kind=touchpoint.kind,
            category=touchpoint.category,
            programme=touchpoint.programme,
            summary=summary,
        )
        outcomes.append(
            TouchpointOutcome(
                touchpoint.code,
                touchpoint.kind,
                touchpoint.category,
                outcome.sent,
                message_id=outcome.message_id,
                reason=outcome.reason,
                needs=touchpoint.needs,
            )
        )
    return outcomes


async def _record_not_sent(
    vendor: VendorAgent, peer: str, touchpoint: Touchpoint, reason: str
) -> None:
    """Record the touchpoint not sent, with its reason, in the relationship's unit."""
    stamp = format_timestamp(vendor.clock.now())

    async def compose(record: RelationshipRecord, work: UnitOfWork) -> None:
        work.write(SuppressedRow(peer, touchpoint.kind, touchpoint.category, reason, stamp))

    await vendor.pipeline.act(peer, compose)
