"""Delivering replies: the durable outbox, POSTed to each buyer's ``replyTo`` inbox.

A reply is committed to the outbox in the same transaction as the message
it answers (see :mod:`reference_vendor.store`), so a crash never loses one,
and it stays in the addressee's mailbox until it expires whatever happens to
its delivery (spec §11.4). This task delivers them in order per peer,
retrying with exponential backoff, under the delivery policy of spec §11.8:

* ``https`` only, ``http`` to hosts on the operator's allow-list;
* every address the host resolves to must be public unicast (unless the host
  is allow-listed), and the connection goes to an address that was checked:
  the session resolves through :class:`PolicyResolver`, and aiohttp connects
  to what its resolver returned, with no second lookup;
* redirects are never followed: a 3xx is a failed attempt;
* a relationship whose peer holds no deal yet has a small budget of attempts
  per message and of failures in all (anyone can name any ``replyTo``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from datetime import UTC, datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from reference_vendor.agent import VendorAgent
from reference_vendor.clock import format_timestamp
from reference_vendor.store import OutboxRow, StoreUnavailable
from vrm_protocol.http_binding import DeliveryPolicy, DeliveryRefused
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

__all__ = [
    "DeliveryAddressRefused",
    "PolicyResolver",
    "deliver_forever",
    "deliver_once",
    "delivery_session",
    "flush",
]

log = logging.getLogger(__name__)

#: Longest wait between two attempts (seconds).
MAX_BACKOFF = 300.0
#: Statuses after which retrying the same bytes cannot help: the peer refused them.
_FINAL_STATUSES = frozenset(range(400, 500)) - {408, 425, 429}
#: How long deliveries pause when the store cannot record their outcome (seconds).
STORE_PAUSE = 5.0
#: Bound on one delivery attempt, connection and answer included (seconds).
ATTEMPT_TIMEOUT = 10.0


class DeliveryAddressRefused(OSError):
    """A host resolved to an address the delivery policy forbids (spec §11.8).

    An :class:`OSError`, so that aiohttp's connector reports it as a failed
    lookup and never connects.
    """


class PolicyResolver(AbstractResolver):
    """Resolves with ``inner`` and returns the addresses only if every one of
    them is allowed (spec §11.8): aiohttp then connects to one of exactly these
    addresses, so a name cannot resolve one way for the check and another way
    for the connection.

    Args:
        policy: the agent's delivery policy.
        inner: the resolver that does the lookup (a threaded ``getaddrinfo``).
    """

    def __init__(self, policy: DeliveryPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host``, all of them allowed.

        Raises:
            DeliveryAddressRefused: one of them is not allowed (no connection is made).
            OSError: the lookup failed.
        """
        results = await self._inner.resolve(host, port, family)
        if not self._policy.allows_host(host, port):
            # A checked target for the host: the scheme was judged before the request.
            target = self._policy.check_url(f"https://{_bracketed(host)}:{port}/")
            for result in results:
                try:
                    self._policy.check_address(target, result["host"])
                except DeliveryRefused as refused:
                    raise DeliveryAddressRefused(str(refused)) from refused
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def delivery_session(policy: DeliveryPolicy) -> aiohttp.ClientSession:
    """The HTTP client the outbox delivers with: every lookup through
    :class:`PolicyResolver`, no proxy from the environment, each attempt
    bounded in time. (Redirects are refused per request.)"""
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy))
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT),
        trust_env=False,
    )


def _refusal(error: BaseException) -> DeliveryRefused | DeliveryAddressRefused | None:
    """The policy's refusal behind a client error, if that is what it is."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DeliveryRefused | DeliveryAddressRefused):
            return seen
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, DeliveryAddressRefused):
            return os_error
        seen = seen.__cause__
    return None


async def _refuse(agent: VendorAgent, row: OutboxRow, reason: str) -> None:
    """Give up delivering ``row`` without a POST: it waits in the mailbox."""
    log.warning(
        "not delivering %s %s to %s: %s; it waits in the mailbox",
        row.type,
        row.message_id,
        row.inbox,
        reason,
    )
    store = agent.store
    await store.call(
        lambda: store.mark_retry(row.id, time.time(), f"refused: {reason}", True, attempted=False)
    )


async def _deliver(agent: VendorAgent, session: aiohttp.ClientSession, row: OutboxRow) -> None:
    assert row.inbox is not None
    store = agent.store
    config = agent.config
    has_deal, failures = await store.call(store.delivery_standing, row.peer_id)
    if not has_deal and failures >= config.stranger_delivery_budget:
        # spec §11.8: a relationship whose peer holds no deal has spent its budget.
        await _refuse(agent, row, "the relationship's delivery budget is spent")
        return
    try:
        agent.delivery_policy.check_url(row.inbox)
    except DeliveryRefused as refused:
        await _refuse(agent, row, str(refused))
        return
    try:
        async with session.post(
            row.inbox,
            data=row.token,
            headers={"Content-Type": MESSAGE_MEDIA_TYPE},
            # spec §11.8: never follow a redirect; a 3xx is a failed attempt.
            allow_redirects="follow-redirects" in config.faults,
        ) as response:
            status = response.status
            detail = (await response.content.read(2048)).decode(errors="replace")
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        refusal = _refusal(error)
        if refusal is not None:
            await _refuse(agent, row, str(refusal))
            return
        status, detail = 0, f"{type(error).__name__}: {error}"
    if status in (200, 202):
        await store.call(store.mark_delivered, row.id, format_timestamp(datetime.now(UTC)))
        return
    attempts = row.attempts + 1
    limit = config.delivery_attempts if has_deal else config.stranger_delivery_attempts
    final = (
        status in _FINAL_STATUSES
        or attempts >= limit
        or (not has_deal and failures + 1 >= config.stranger_delivery_budget)
    )
    delay = min(MAX_BACKOFF, 0.5 * 2**attempts)
    log.warning(
        "delivery of %s %s to %s failed (%s): %s%s",
        row.type,
        row.message_id,
        row.inbox,
        status or "no answer",
        detail[:200].replace("\n", " "),
        "; giving up, it waits in the mailbox" if final else f"; retrying in {delay:.1f} s",
    )
    await store.call(
        lambda: store.mark_retry(
            row.id,
            time.time() + delay,
            f"{status} {detail}",
            final,
            peer_id=None if has_deal else row.peer_id,
        )
    )


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
        except StoreUnavailable as error:
            # D11: one line, and a pause: a delivery whose outcome cannot be
            # recorded would otherwise be POSTed again at once, and again.
            log.error("outbox paused for %.0f s: the store is unavailable: %s", STORE_PAUSE, error)
            await asyncio.sleep(STORE_PAUSE)
            continue
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
