"""The outbox: every message sent stays in the mailbox (D5); those owed to a
``replyTo`` inbox are POSTed, under the delivery policy and a retry budget (D6).

A message is committed to the outbox in the same unit of work as the message it
answers, so a crash never loses one, and it stays in the addressee's mailbox
until it expires whatever happens to its delivery (spec §11.4). The
:class:`Outbox` delivers in order per peer, retrying with exponential backoff:

* the delivery policy of spec §11.8 (:mod:`vrm_agent.net`): ``https``, or
  ``http`` to allow-listed hosts; the address checked is the address
  connected to; a redirect is never followed (a 3xx is a failed attempt);
* a relationship whose peer was never seen to hold a deal has a small budget
  of attempts per message and of failures in all (anyone can name any
  ``replyTo``); then its messages wait in the mailbox only.

Delivery is driven by events, not by polling: :meth:`Outbox.run` sleeps on an
:class:`asyncio.Event` until a commit queues something (:meth:`Outbox.wake`) or
until the next attempt already scheduled is due. An idle agent's outbox
costs nothing: no timer fires while nothing is owed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

import aiohttp

from vrm_agent.clock import Clock
from vrm_agent.net import FetchRefused, post_message
from vrm_agent.store import DeliveryOutcome, OutboxEntry, ProtocolStore, StoreUnavailable
from vrm_agent.strategies import DeliveryOptions
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import DeliveryPolicy, DeliveryRefused

__all__ = ["DeliveryBudget", "Outbox"]

log = logging.getLogger(__name__)

#: Longest wait between two attempts (seconds).
MAX_BACKOFF: Final = 300.0
#: Statuses after which retrying the same bytes cannot help: the peer refused them.
FINAL_STATUSES: Final = frozenset(range(400, 500)) - {408, 425, 429}
#: How long deliveries pause when the store cannot record their outcome (seconds).
STORE_PAUSE: Final = 5.0
#: The shortest sleep between two passes (guards against a busy loop on clock skew).
MIN_SLEEP: Final = 0.01


@dataclass(frozen=True, slots=True)
class DeliveryBudget:
    """The retry budget of spec §11.8 (D6).

    Attributes:
        attempts: attempts per message to a peer that holds (or held) a deal.
        stranger_attempts: attempts per message to a peer that never did.
        stranger_failures: failed deliveries a relationship without a deal may
            cost in all, over every message; then they wait in the mailbox.
    """

    attempts: int = 8
    stranger_attempts: int = 3
    stranger_failures: int = 6


class Outbox:
    """Delivers what the store owes to ``replyTo`` inboxes (see the module docstring).

    Args:
        store: the protocol store.
        policy: where the agent may POST (spec §11.8).
        budget: the retry budget.
        clock: the agent's clock (``wall`` schedules attempts).
        options: delivery strategy (production: no redirect followed).
        session: the HTTP client (built with :func:`vrm_agent.net.client_session`).
    """

    def __init__(
        self,
        store: ProtocolStore,
        *,
        policy: DeliveryPolicy,
        budget: DeliveryBudget,
        clock: Clock,
        options: DeliveryOptions,
        session: aiohttp.ClientSession,
    ) -> None:
        self.store = store
        self.policy = policy
        self.budget = budget
        self.clock = clock
        self.options = options
        self.session = session
        self._wake = asyncio.Event()
        self._pass = asyncio.Lock()

    def wake(self) -> None:
        """Something was queued: look again (cheap; call after every commit that queued)."""
        self._wake.set()

    async def deliver_due(self, *, ahead: float = 0.0) -> int:
        """Attempt every delivery due now (or within ``ahead`` seconds); how many were
        attempted. One pass at a time, so a message is never POSTed twice at once
        nor overtaken by the next one for the same peer (a pass holds at most one
        entry per peer, so its POSTs go out together); the outcomes of a pass are
        recorded in one unit of work.

        Raises:
            StoreUnavailable: the store cannot be read or written.
        """
        async with self._pass:
            entries = await self.store.due_deliveries(self.clock.wall() + ahead)
            attempts = await asyncio.gather(
                *(self._attempt(entry) for entry in entries), return_exceptions=True
            )
            outcomes = [
                self._failed_unexpectedly(entry, attempt)
                if isinstance(attempt, BaseException)
                else attempt
                for entry, attempt in zip(entries, attempts, strict=True)
            ]
            await self.store.record_deliveries(outcomes)
            return len(entries)

    def _failed_unexpectedly(self, entry: OutboxEntry, error: BaseException) -> DeliveryOutcome:
        """A defect during an attempt: logged, and the entry tried again after a
        pause (the others of the pass keep their outcomes).

        Raises:
            BaseException: ``error`` itself when it is not an ``Exception``
                (a cancellation, an interrupt).
        """
        if not isinstance(error, Exception):
            raise error
        log.error(
            "delivery of %s %s failed unexpectedly",
            entry.type.value,
            entry.message_id,
            exc_info=error,
        )
        return DeliveryOutcome(
            entry.id, next_attempt=self.clock.wall() + STORE_PAUSE, error=repr(error)[:500]
        )

    async def flush(self, ahead: float) -> None:
        """Deliver every message waiting for its first attempt, now.

        The test driver calls this before it moves the clock: what was in flight
        arrives before the jump, as it would have had time really passed.
        Messages already in backoff (their peer failed) keep their schedule.

        Raises:
            StoreUnavailable: the store cannot be read or written.
        """
        for _ in range(10):
            if not await self.deliver_due(ahead=ahead):
                return

    async def run(self) -> None:
        """Deliver until cancelled: a pass, then sleep until woken or the next due time."""
        while True:
            # Cleared before the pass: a commit during the pass wakes the next wait.
            self._wake.clear()
            try:
                attempted = await self.deliver_due()
                if attempted:
                    continue
                due = await self.store.next_delivery_at()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as error:
                # D11: one line, and a pause: a delivery whose outcome cannot be
                # recorded would otherwise be POSTed again at once, and again.
                log.error(
                    "outbox paused for %.0f s: the store is unavailable: %s", STORE_PAUSE, error
                )
                await asyncio.sleep(STORE_PAUSE)
                continue
            except Exception:  # a bug must not stop deliveries for good
                log.exception("outbox delivery failed")
                await asyncio.sleep(STORE_PAUSE)
                continue
            timeout = None if due is None else max(MIN_SLEEP, due - self.clock.wall())
            with contextlib.suppress(TimeoutError):  # an attempt came due
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _refuse(self, entry: OutboxEntry, reason: str) -> DeliveryOutcome:
        """Give up delivering ``entry`` without a POST: it waits in the mailbox."""
        log.warning(
            "not delivering %s %s to %s: %s; it waits in the mailbox",
            entry.type.value,
            entry.message_id,
            entry.inbox,
            reason,
        )
        return DeliveryOutcome(
            entry.id,
            next_attempt=self.clock.wall(),
            error=f"refused: {reason}",
            final=True,
            attempted=False,
        )

    async def _attempt(self, entry: OutboxEntry) -> DeliveryOutcome:
        """One attempt (or a refusal without one) of ``entry``; what to record."""
        assert entry.inbox is not None
        standing = entry.standing
        budget = self.budget
        if not standing.deal_seen and standing.failures >= budget.stranger_failures:
            # spec §11.8: a relationship whose peer holds no deal has spent its budget.
            return self._refuse(entry, "the relationship's delivery budget is spent")
        try:
            outcome = await post_message(
                self.session,
                self.policy,
                entry.inbox,
                entry.token,
                follow_redirects=self.options.follow_redirects,
                max_answer_bytes=2048,
                answer_needed=False,
            )
        except DeliveryRefused as refused:
            return self._refuse(entry, str(refused))
        except FetchRefused as error:
            status, detail = 0, str(error)
        else:
            status, detail = outcome.status, outcome.body.decode(errors="replace")
        if status in (200, 202):
            return DeliveryOutcome(entry.id, delivered_at=format_timestamp(self.clock.now()))
        attempts = entry.attempts + 1
        limit = budget.attempts if standing.deal_seen else budget.stranger_attempts
        final = (
            status in FINAL_STATUSES
            or attempts >= limit
            or (not standing.deal_seen and standing.failures + 1 >= budget.stranger_failures)
        )
        delay = min(MAX_BACKOFF, 0.5 * 2**attempts)
        log.warning(
            "delivery of %s %s to %s failed (%s): %s%s",
            entry.type.value,
            entry.message_id,
            entry.inbox,
            status or "no answer",
            detail[:200].replace("\n", " "),
            "; giving up, it waits in the mailbox" if final else f"; retrying in {delay:.1f} s",
        )
        return DeliveryOutcome(
            entry.id,
            next_attempt=self.clock.wall() + delay,
            error=f"{status} {detail}",
            final=final,
            count_against=None if standing.deal_seen else entry.peer,
        )
