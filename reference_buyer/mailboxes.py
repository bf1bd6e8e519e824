"""Collecting what waits for her in her counterparties' mailboxes (spec §11.4, D5).

Every party keeps what it sends her in its mailbox until it expires, whether
or not it also POSTed it to her reply address. So her agent polls the
mailbox of every counterparty she may be waiting for (every relationship not
closed or exited): at start-up (replies in flight while no agent ran, or sent
to the address of an earlier run, are there) and then every
``poll_interval`` seconds while it runs. Each mailbox is polled under the
pseudonym of that relationship only, at the mailbox its owner published on
its own origin (D7), within the runtime's bounds
(:func:`vrm_agent.mailbox.poll`); the cursor is kept in her store, so nothing
is collected twice and nothing is skipped. Every message collected goes
through her inbox's whole pipeline (:meth:`vrm_agent.inbox.Pipeline.receive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from reference_buyer.directory import Directory
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.store import BuyerStore
from vrm_agent.clock import Clock
from vrm_agent.inbox import InboxAnswer, Reception
from vrm_agent.mailbox import poll
from vrm_agent.net import FETCH_TIMEOUT_SECONDS, FetchRefused
from vrm_agent.store import StoreUnavailable
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import MAILBOX_PATH, DeliveryPolicy, DeliveryRefused
from vrm_protocol.states import RelationshipState

__all__ = ["Collected", "MailboxPoller"]

log = logging.getLogger(__name__)

#: Receive one token collected from a mailbox, through the reception given.
Receive = Callable[[bytes, Reception], Awaitable[InboxAnswer]]
#: The reception of what one party's mailbox held.
ReceptionOf = Callable[[str], Reception]

#: The states in which she waits for nothing more from a counterparty.
_DONE = frozenset({RelationshipState.EXITED, RelationshipState.CLOSED})


@dataclass(frozen=True, slots=True)
class Collected:
    """A message collected from a mailbox and taken (202): its receipt and id."""

    message_id: str
    answer: InboxAnswer


class MailboxPoller:
    """Polls her counterparties' mailboxes (see the module docstring).

    Args:
        store: her store (cursors, relationships).
        directory: where each counterparty's mailbox is.
        pseudonyms: her pseudonyms (each poll is signed by the relationship's own).
        session, policy: the HTTP client and where it may connect (D6).
        clock: the agent's clock.
        receive: the inbox pipeline for one collected token.
        reception_of: the reception of one party's mailbox.
        fetch_timeout: the time bound of a poll (D7).
    """

    def __init__(
        self,
        store: BuyerStore,
        directory: Directory,
        pseudonyms: Pseudonyms,
        session: aiohttp.ClientSession,
        policy: DeliveryPolicy,
        clock: Clock,
        *,
        receive: Receive,
        reception_of: ReceptionOf,
        fetch_timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self.store = store
        self.directory = directory
        self.pseudonyms = pseudonyms
        self.session = session
        self.policy = policy
        self.clock = clock
        self.receive = receive
        self.reception_of = reception_of
        self.fetch_timeout = fetch_timeout

    async def poll(self, peer: str) -> list[Collected]:
        """Collect what waits for her in ``peer``'s mailbox; the messages taken.

        Refused messages changed nothing and are skipped; the cursor then
        moves past them. A store that cannot write stops the collection before
        the cursor moves, so the rest is collected next time.

        Raises:
            RemoteProtocolError: TEMPORARILY_UNAVAILABLE, the mailbox cannot be
                polled (or she has no relationship with ``peer``).
            StoreUnavailable: the store cannot be read or written.
        """
        pseudonym = await self.pseudonyms.known(peer)
        if pseudonym is None:
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"she has no relationship with {peer}"
            )
        url = await self.directory.mailbox_of(peer) or peer.rstrip("/") + MAILBOX_PATH
        cursor = await self.store.mailbox_cursor(peer)
        try:
            page = await poll(
                self.session,
                self.policy,
                url=url,
                owner=peer,
                poller=pseudonym.identifier,
                key=pseudonym.identity.signing_key,
                after=cursor,
                now=self.clock.now(),
                time_bound=self.fetch_timeout,
            )
        except (DeliveryRefused, FetchRefused) as error:
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{url} could not be polled: {error}"[:500]
            ) from error
        taken: list[Collected] = []
        reception = self.reception_of(peer)
        for token in page.tokens:
            try:
                answer = await self.receive(token, reception)
            except ProtocolError:
                continue  # refused: it changed nothing
            if answer.status == 202 and answer.message_id is not None:
                taken.append(Collected(answer.message_id, answer))
        if page.next is not None and page.next != cursor:
            await self.store.set_mailbox_cursor(peer, page.next)
        return taken

    async def awaiting(self) -> list[str]:
        """The counterparties she may be waiting for: every relationship not
        closed or exited.

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        return [r.peer for r in await self.store.relationships() if r.core.state not in _DONE]

    async def poll_all(self) -> int:
        """Poll the mailbox of every counterparty she may be waiting for, once, at
        the same time; how many messages were taken. A counterparty that cannot
        be reached is skipped (tried again next time).

        Raises:
            StoreUnavailable: the store cannot be read or written.
        """
        peers = await self.awaiting()
        outcomes = await asyncio.gather(*(self._poll_quietly(peer) for peer in peers))
        return sum(outcomes)

    async def _poll_quietly(self, peer: str) -> int:
        try:
            return len(await self.poll(peer))
        except ProtocolError as error:
            log.debug("mailbox of %s not polled: %s", peer[:80], error)
            return 0

    async def poll_forever(self, *, interval: float) -> None:
        """Poll at once, then every ``interval`` seconds, until cancelled (D5)."""
        while True:
            try:
                await self.poll_all()
            except StoreUnavailable as error:
                log.error("mailboxes not polled: the store is unavailable: %s", error)
            except Exception:  # a bug must not stop the polling for good
                log.exception("polling the mailboxes failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.sleep(interval)
