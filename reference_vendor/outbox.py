"""Delivering replies: the durable outbox, POSTed to each buyer's ``replyTo`` inbox.

A reply is committed to the outbox in the same transaction as the message
it answers (see :mod:`reference_vendor.store`), so a crash never loses one.
This task delivers them in order per peer, retrying with exponential
backoff; a reply without an inbox stays in the mailbox (spec §11.4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import aiohttp

from reference_vendor.agent import VendorAgent
from reference_vendor.clock import format_timestamp
from reference_vendor.store import OutboxRow
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

__all__ = ["deliver_forever", "deliver_once", "flush"]

log = logging.getLogger(__name__)

#: Longest wait between two attempts (seconds).
MAX_BACKOFF = 300.0
#: Statuses after which retrying the same bytes cannot help: the peer refused them.
_FINAL_STATUSES = frozenset(range(400, 500)) - {408, 425, 429}


async def _deliver(agent: VendorAgent, session: aiohttp.ClientSession, row: OutboxRow) -> None:
    assert row.inbox is not None
    store = agent.store
    try:
        async with session.post(
            row.inbox,
            data=row.token,
            headers={"Content-Type": MESSAGE_MEDIA_TYPE},
            allow_redirects=False,
        ) as response:
            status = response.status
            detail = (await response.content.read(2048)).decode(errors="replace")
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        status, detail = 0, f"{type(error).__name__}: {error}"
    if status in (200, 202):
        await store.call(store.mark_delivered, row.id, format_timestamp(datetime.now(UTC)))
        return
    attempts = row.attempts + 1
    final = status in _FINAL_STATUSES or attempts >= agent.config.delivery_attempts
    delay = min(MAX_BACKOFF, 0.5 * 2**attempts)
    log.warning(
        "delivery of %s %s to %s failed (%s): %s%s",
        row.type,
        row.message_id,
        row.inbox,
        status or "no answer",
        detail[:200],
        "; giving up" if final else f"; retrying in {delay:.1f} s",
    )
    await store.call(store.mark_retry, row.id, time.time() + delay, f"{status} {detail}", final)


async def deliver_once(
    agent: VendorAgent, session: aiohttp.ClientSession, *, ahead: float = 0.0
) -> int:
    """Attempt every delivery due now (or within ``ahead`` seconds); return how
    many were attempted. One delivery pass at a time, so a reply is never
    POSTed twice at once nor overtaken by the next one for the same peer."""
    async with agent.delivery_lock:
        rows = await agent.store.call(agent.store.due_outbox, time.time() + ahead)
        for row in rows:
            await _deliver(agent, session, row)
        return len(rows)


async def flush(agent: VendorAgent, session: aiohttp.ClientSession) -> None:
    """Deliver every reply waiting for its first attempt, now.

    The test driver calls this before it moves the clock: what was in flight
    arrives before the jump, as it would have had time really passed.
    Replies already in backoff (their peer failed) keep their schedule.
    """
    for _ in range(10):
        if not await deliver_once(agent, session, ahead=agent.config.reply_delay):
            return


async def deliver_forever(
    agent: VendorAgent, session: aiohttp.ClientSession, *, idle_wait: float = 0.1
) -> None:
    """Deliver due replies until cancelled, waking early when new ones are committed.

    A reply is due ``reply_delay`` seconds after its commit, so a pass right
    after each commit would find nothing due: after a wake-up the task waits
    that long (at most ``idle_wait``) and makes one pass for every commit of
    the window. A busy inbox then costs a few passes a second, not one store
    query per message it accepts; a reply is not delivered later than it is
    due, an operator's notice (due at once) at most ``idle_wait`` later.
    """
    while True:
        try:
            attempted = await deliver_once(agent, session)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not stop deliveries for good
            log.exception("outbox delivery failed")
            attempted = 0
        if attempted:
            continue
        try:
            await asyncio.wait_for(agent.outbox_ready.wait(), timeout=idle_wait)
        except TimeoutError:
            continue  # nothing committed: the periodic pass (retries coming due)
        agent.outbox_ready.clear()
        await asyncio.sleep(min(agent.config.reply_delay, idle_wait))
