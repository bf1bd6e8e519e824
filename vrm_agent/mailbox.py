"""The mailbox (spec §11.4, D5): every message a party sent the poller, until it expires.

:class:`Mailbox` serves an agent's own mailbox; :func:`poll` collects what waits
for the agent in a counterparty's, within the bounds of D7 (an agent whose
replies were POSTed to an inbox that no longer answers finds them there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from vrm_agent.clock import Clock
from vrm_agent.net import (
    FETCH_TIMEOUT_SECONDS,
    MAILBOX_PAGE_MAX_BYTES,
    FetchRefused,
    fetch_bounded,
    same_origin,
)
from vrm_agent.store import ProtocolStore
from vrm_agent.strategies import MailboxFilter
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import (
    MAX_CURSOR,
    POLL_AUTH_SCHEME,
    DeliveryPolicy,
    make_poll_token,
    verify_poll_token,
)
from vrm_protocol.keys import SigningKey
from vrm_protocol.limits import Limits

__all__ = ["Mailbox", "MailboxPage", "poll"]


class Mailbox:
    """Serves an agent's mailbox to pollers that prove who they are.

    Args:
        store: the protocol store (its outbox is the mailbox).
        owner: the agent's party id (the poll token's audience).
        clock: the agent's clock.
        limits: the receiving limits (a poll token is untrusted input).
        choose: which entries a poller is shown (production: all of them).
    """

    def __init__(
        self,
        store: ProtocolStore,
        *,
        owner: str,
        clock: Clock,
        limits: Limits,
        choose: MailboxFilter,
    ) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock
        self.limits = limits
        self.choose = choose

    async def page(self, poll_token: bytes, after: int | None) -> dict[str, Any]:
        """The messages waiting for the poller after the cursor, and the next cursor.

        Raises:
            RemoteProtocolError: the poll token does not verify.
            StoreUnavailable: the store cannot be read.
        """
        now = self.clock.now()
        request = verify_poll_token(
            poll_token, mailbox_owner=self.owner, now=now, limits=self.limits
        )
        start = request.after if after is None else max(after, request.after)
        # spec §11.4 (VRM-HTTP-010): every message for the poller until it expires,
        # also those delivered to its replyTo (a restarted agent may have missed them).
        entries = self.choose(
            await self.store.mailbox(request.poller, start, format_timestamp(now))
        )
        return {
            "messages": [entry.token.decode("ascii") for entry in entries],
            "next": entries[-1].cursor if entries else start,
        }


@dataclass(frozen=True, slots=True)
class MailboxPage:
    """What a counterparty's mailbox held for the poller: the tokens (each still to
    go through the receiving pipeline) and the cursor to ask from next time
    (``None`` when the page named none usable)."""

    tokens: tuple[bytes, ...]
    next: int | None


async def poll(
    session: aiohttp.ClientSession,
    policy: DeliveryPolicy,
    *,
    url: str,
    owner: str,
    poller: str,
    key: SigningKey,
    after: int,
    now: datetime,
    time_bound: float = FETCH_TIMEOUT_SECONDS,
) -> MailboxPage:
    """GET the page of ``owner``'s mailbox at ``url`` after cursor ``after``, as
    ``poller`` (whose pseudonym key signs the poll token, spec §11.4).

    The mailbox must be on the owner's own origin (D7); the page is read within
    the bounds of D7 and is untrusted: what is not a string token is dropped.

    Raises:
        FetchRefused: the URL is on another origin, a bound was broken, or the
            answer is not a mailbox page.
        DeliveryRefused: the delivery policy forbids the URL or its addresses.
    """
    if not same_origin(url, owner):
        raise FetchRefused(f"{url} is not on the origin of {owner}")
    token = make_poll_token(key, poller=poller, mailbox_owner=owner, after=after, now=now)
    body = await fetch_bounded(
        session,
        policy,
        f"{url}?after={after}",
        max_bytes=MAILBOX_PAGE_MAX_BYTES,
        time_bound=time_bound,
        headers={"Authorization": f"{POLL_AUTH_SCHEME} {token.decode('ascii')}"},
    )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise FetchRefused(f"{url} answered no JSON: {error}") from error
    if not isinstance(document, dict):
        raise FetchRefused(f"{url} answered no mailbox page")
    messages = document.get("messages")
    tokens = tuple(
        item.encode("ascii", errors="replace")
        for item in (messages if isinstance(messages, list) else [])
        if isinstance(item, str)
    )
    cursor = document.get("next")
    usable = isinstance(cursor, int) and not isinstance(cursor, bool) and 0 <= cursor <= MAX_CURSOR
    return MailboxPage(tokens, cursor if usable else None)
