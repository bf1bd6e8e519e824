"""The individual's agent: her side of every relationship (spec §4), on the runtime.

:class:`BuyerAgent` puts the parts together, each with one job:

* :mod:`vrm_agent.inbox` — the inbox pipeline, with her handlers
  (:mod:`reference_buyer.handlers`, checked complete at start-up against the
  message-type registry) and her reception (:mod:`reference_buyer.reception`:
  routing from verified bytes, answers alike for every stranger);
* :mod:`reference_buyer.store` — her personal data store;
* :mod:`reference_buyer.pseudonyms` — one pairwise pseudonym per counterparty,
  its key file and its reply address;
* :mod:`reference_buyer.directory` — what the parties she contacts publish,
  fetched within bounds and cached;
* :mod:`reference_buyer.courier` — the delivery of her messages;
* :mod:`reference_buyer.outgoing` — how one message of hers goes out;
* :mod:`reference_buyer.mailboxes` — collecting replies from mailboxes;
* :mod:`reference_buyer.buying` and :mod:`reference_buyer.owning` — what she
  decides and does, before and after the deal (:attr:`BuyerAgent.buying`,
  :attr:`BuyerAgent.owning`), under her sharing policy
  (:mod:`reference_buyer.policy`); :mod:`reference_buyer.ranking` — her view of
  the offers.

Each message she sends is a typed body that goes through the runtime
(:meth:`vrm_agent.inbox.Pipeline.send`): signed under her pseudonym with that
party, decided by the state machine as SENT (an illegal move is never signed
for sending), delivered, and committed with its effects only once the party
took it. Her HTTP side is :mod:`reference_buyer.app`; the one clock is the
runtime's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

import aiohttp

import reference_buyer.handlers_consents  # noqa: F401  (registers its handlers)
from reference_buyer import (
    handlers_conversation,  # noqa: F401  (registers its handlers)
    handlers_living,
    handlers_materials,  # noqa: F401 - registers its handlers
    handlers_myterms,
    handlers_transaction,  # noqa: F401 - registers its handlers
)
from reference_buyer.buying import AttestationSource, Buying
from reference_buyer.codecision import CoDecision
from reference_buyer.config import KEYS_DIR, BuyerConfig
from reference_buyer.consents import Consents
from reference_buyer.courier import Courier
from reference_buyer.directory import Directory
from reference_buyer.faults import BuyerStrategies
from reference_buyer.grants import Grants
from reference_buyer.handlers import HANDLERS
from reference_buyer.handlers_retention import answer_vendor_exits
from reference_buyer.mailboxes import Collected, MailboxPoller
from reference_buyer.outgoing import Sender, core
from reference_buyer.owning import Owning
from reference_buyer.policy import SharingPolicy
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.ranking import OfferCandidate, RankedOffer, rank_offers
from reference_buyer.reception import BuyerReception
from reference_buyer.store import STORE_FILE, Entry, SqliteBuyerStore
from vrm_agent.clock import AgentClock, Clock
from vrm_agent.files import DataDirError, prepare_data_dir
from vrm_agent.inbox import InboxAnswer, Pipeline, Reception
from vrm_agent.mailbox import Mailbox
from vrm_agent.net import ATTEMPT_TIMEOUT_SECONDS, client_session
from vrm_agent.store import StoreError
from vrm_agent.unit import UnitOfWork
from vrm_protocol.errors import RemoteProtocolError
from vrm_protocol.http_binding import RateLimiter
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.message_types import accepted_by, sent_by
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType, Role

__all__ = ["MESSAGE_LIFETIME", "BuyerAgent"]

#: How long the messages she signs stay valid (binding convention: one day).
MESSAGE_LIFETIME: Final = timedelta(days=1)


class BuyerAgent:
    """The individual's agent (see the module docstring).

    Open it with :meth:`open` (her data directory, store and HTTP client) and
    close it with :meth:`close`; :mod:`reference_buyer.app` serves it.

    Args:
        config: the agent's configuration.
        policy: her sharing policy.
        store: her store.
        session: the HTTP client every connection goes through (D6).
        clock: the one clock.
        strategies: production, or weakened by test-mode faults.
        ability_to_pay: a source of ability-to-pay attestations for her pseudonyms.
        sender_limiter: the per-sender budget, charged once a message verified (§11.6).

    Raises:
        IncompleteRegistry: a message type her agent must take has no handler.
    """

    def __init__(
        self,
        config: BuyerConfig,
        policy: SharingPolicy,
        store: SqliteBuyerStore,
        session: aiohttp.ClientSession,
        *,
        clock: Clock,
        strategies: BuyerStrategies | None = None,
        ability_to_pay: AttestationSource | None = None,
        sender_limiter: RateLimiter | None = None,
    ) -> None:
        HANDLERS.check_complete(self.accepts)
        self.config = config
        self.policy = policy
        self.store = store
        self.session = session
        self.clock = clock
        self.strategies = strategies or config.strategies
        self.ability_to_pay = ability_to_pay
        delivery_policy = config.delivery_policy
        self.pseudonyms = Pseudonyms(
            store, config.data_dir / KEYS_DIR, clock, inbox=config.inbox_url
        )
        self.directory = Directory(
            store, session, delivery_policy, clock, fetch_timeout=config.fetch_timeout
        )
        self.courier = Courier(
            store,
            self.directory,
            session,
            delivery_policy,
            clock,
            budget=config.budget,
            attempt_timeout=min(ATTEMPT_TIMEOUT_SECONDS, 2 * config.fetch_timeout),
        )
        self.reception = BuyerReception(
            self.directory,
            self.pseudonyms,
            config.limits,
            self.strategies.strangers,
            self._in_relationship,
        )
        self.pipeline = Pipeline(
            role=Role.BUYER,
            store=store,
            handlers=HANDLERS.bind(self),
            identities=self.pseudonyms,
            reception=self.reception,
            clock=clock,
            strategies=self.strategies.runtime,
            sender_limiter=sender_limiter,
            message_lifetime=MESSAGE_LIFETIME,
            on_commit=self._committed,
        )
        self.mailboxes = MailboxPoller(
            store,
            self.directory,
            self.pseudonyms,
            session,
            delivery_policy,
            clock,
            receive=self._collect,
            reception_of=self.reception.mailbox_of,
            fetch_timeout=config.fetch_timeout,
        )
        #: Her own mailbox (spec §11.4): what she sent a poller, until it expires.
        self.mailbox = Mailbox(
            store,
            owner=config.party_id or "",
            clock=clock,
            limits=config.limits,
            choose=self.strategies.runtime.mailbox,
        )
        self.sender = Sender(
            config, store, self.pseudonyms, self.directory, self.courier, self.pipeline, clock
        )
        #: Steps 1-4 and 10: what she does to buy.
        self.buying = Buying(
            store,
            policy,
            self.pseudonyms,
            self.directory,
            self.sender,
            clock,
            self.pipeline,
            ability_to_pay,
        )
        #: Steps 5-9: what she does as an owner.
        self.owning = Owning(
            store,
            policy,
            self.pseudonyms,
            self.directory,
            self.sender,
            clock,
            self.strategies.identity,
            signatories=self.strategies.signatories,
            registries=config.terms_registries,
        )
        #: A co-decision-maker's approval, asked of his agent, or given by this one (§10.2).
        self.codecision = CoDecision(
            config,
            store,
            self.pseudonyms,
            session,
            clock,
            answers=self.strategies.approval_answers,
            approve_at_once=self.strategies.approve_at_once,
        )
        #: Her consent changes (spec §6.20).
        self.consents = Consents(store, self.sender, clock)
        #: Her access grants and the reads under them (spec §6.18, §11.9).
        self.grants = Grants(
            store,
            self.pseudonyms,
            self.directory,
            self.sender,
            clock,
            party_id=config.party_id,
            rule=self.strategies.grants,
        )
        self._arrived = asyncio.Event()
        #: Answers sent after a commit (a vendor's exit acknowledged), until they end.
        self._answering: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls,
        config: BuyerConfig,
        policy: SharingPolicy,
        *,
        clock: Clock | None = None,
        strategies: BuyerStrategies | None = None,
        ability_to_pay: AttestationSource | None = None,
        sender_limiter: RateLimiter | None = None,
    ) -> BuyerAgent:
        """Her agent on her data directory: the directory made private, her store
        opened (migrated, off the event loop), an HTTP client made.

        Raises:
            DataDirError: the data directory or the store cannot be used (one line).
            FaultError: a fault outside test mode.
            ValueError: an allow-list entry is malformed.
        """
        prepare_data_dir(config.data_dir)
        path = config.data_dir / STORE_FILE
        try:
            store = await asyncio.to_thread(
                SqliteBuyerStore, path, busy_timeout=config.store_busy_timeout
            )
        except StoreError as error:
            raise DataDirError(f"cannot open the store {path}: {error}") from error
        session: aiohttp.ClientSession | None = None
        try:
            session = client_session(config.delivery_policy, total_timeout=ATTEMPT_TIMEOUT_SECONDS)
            agent = cls(
                config,
                policy,
                store,
                session,
                clock=clock or AgentClock(),
                strategies=strategies,
                ability_to_pay=ability_to_pay,
                sender_limiter=sender_limiter,
            )
            await asyncio.to_thread(agent.pseudonyms.prepare)
            await agent.directory.load()
        except BaseException:
            if session is not None:
                await session.close()
            await store.close()
            raise
        return agent

    async def close(self) -> None:
        """Close the HTTP client, then the store (after its last write)."""
        if self._answering:
            # A vendor's exit being acknowledged finishes first (or gives up).
            await asyncio.wait(set(self._answering), timeout=5)
        await self.session.close()
        await self.store.close()

    # -- what she takes and sends (the discovery document) -----------------------------------------

    @property
    def accepts(self) -> frozenset[MessageType]:
        """The message types her inbox takes (spec §6, §11.1)."""
        return accepted_by(Role.BUYER)

    @property
    def sends(self) -> frozenset[MessageType]:
        """The message types she may send."""
        return sent_by(Role.BUYER)

    @property
    def inbox_url(self) -> str | None:
        """The inbox her reply addresses are under (``None``: she polls mailboxes)."""
        return self.pseudonyms.inbox

    @inbox_url.setter
    def inbox_url(self, value: str | None) -> None:
        self.pseudonyms.inbox = value

    # -- receiving -----------------------------------------------------------------------------

    async def receive(self, token: bytes, *, tag: str | None = None) -> InboxAnswer:
        """One message POSTed to her inbox, or (``tag``) to one relationship's reply
        address: the runtime's pipeline with her reception and handlers.

        Raises:
            RemoteProtocolError: the message is refused; nothing was stored.
            StoreUnavailable: the store cannot be written; nothing was stored.
        """
        reception = self.reception.tagged(tag) if tag is not None else None
        try:
            return await self.pipeline.receive(token, reception=reception)
        except RemoteProtocolError as error:
            # A refusal that breaches her terms is reported and recorded (§6.9).
            await handlers_myterms.on_refusal(self, token, reception, error)
            raise

    async def _collect(self, token: bytes, reception: Reception) -> InboxAnswer:
        """One message collected from a mailbox: the pipeline, as :meth:`receive`."""
        try:
            return await self.pipeline.receive(token, reception=reception, via="mailbox")
        except RemoteProtocolError as error:
            await handlers_myterms.on_refusal(self, token, reception, error)
            raise

    def _committed(self, work: UnitOfWork) -> None:
        if work.inbound is not None:
            arrived, self._arrived = self._arrived, asyncio.Event()
            arrived.set()
            for task in answer_vendor_exits(self, work.writes):
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)

    async def _in_relationship(self) -> list[str]:
        return [relationship.peer for relationship in await self.store.relationships()]

    async def wait_for(self, predicate: Callable[[Entry], bool], *, within: float = 10.0) -> Entry:
        """The first message received that matches ``predicate``, waiting for it if need be.

        Raises:
            TimeoutError: nothing matched within ``within`` seconds.
            StoreUnavailable: the store cannot be read.
        """
        async with asyncio.timeout(within):
            while True:
                arrived = self._arrived
                for entry in await self.store.history(include_refused=False):
                    if entry.direction is Direction.RECEIVED and predicate(entry):
                        return entry
                await arrived.wait()

    async def poll_mailbox(self, peer: str) -> list[Collected]:
        """Collect what waits for her in ``peer``'s mailbox (spec §11.4, D5).

        Raises:
            RemoteProtocolError: TEMPORARILY_UNAVAILABLE, it cannot be polled.
            StoreUnavailable: the store cannot be read or written.
        """
        return await self.mailboxes.poll(peer)

    async def poll_all(self) -> int:
        """Poll every mailbox she may be waiting for, once; how many messages were taken."""
        return await self.mailboxes.poll_all()

    async def poll_forever(self, *, interval: float) -> None:
        """Poll at once and every ``interval`` seconds until cancelled (D5)."""
        await self.mailboxes.poll_forever(interval=interval)

    # -- her view ---------------------------------------------------------------------------------

    async def core(self, peer: str) -> RelationshipCore:
        """The relationship's core with ``peer`` (a new one's when there is none).

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        return await core(self.store, peer)

    async def ranked_offers(self, *, financing_wanted: bool = True) -> list[RankedOffer]:
        """Every open offer she received, cheapest total cost first (paper ones included)."""
        return rank_offers(
            [
                OfferCandidate(view.id, view.peer, view.body, open=view.status == "open")
                for view in await self.store.offer_views()
                if view.entry.direction is Direction.RECEIVED
            ],
            now=self.clock.now(),
            financing_wanted=financing_wanted,
        )

    async def state_summary(self) -> dict[str, Any]:
        """A JSON summary of relationships and data held (the test driver's ``GET /state``).

        Deterministic: it changes only when a message is taken or sent.
        """
        relationships: dict[str, Any] = {}
        for relationship in await self.store.relationships():
            peer = relationship.peer
            relationships[relationship.identifier] = {
                "peer": peer,
                "state": relationship.core.state.value,
                "offers": {
                    record.id: record.status.value for record in await self.store.offers(peer)
                },
                "messages": len(await self.store.history(peer=peer)),
                "shared": sorted({r.category for r in await self.store.shared_with(peer)}),
            }
        return {
            "role": "buyer",
            "relationships": relationships,
            "clockOffsetSeconds": int(self.clock.offset.total_seconds()),
            # Her service history, the work she declined flagged (spec §6.44).
            "serviceHistory": [e.to_json() for e in await handlers_living.service_history(self)],
            # Offers her agent flags, by id (seed 001: the old car before delivery).
            "offerWarnings": await handlers_living.offer_warnings(self),
            # Breaches of her terms she recorded, each with her report (spec §6.9).
            "breaches": [
                {"peer": b.peer, "message": b.message_id, "code": b.code, "report": b.report_id}
                for b in await self.store.breaches()
            ],
            # Who has the new value of each detail she changed (spec §6.74).
            "detailUpdates": [
                {"peer": u.peer, "item": u.item, "update": u.update_id, "receipt": u.receipt_id}
                for u in await self.store.detail_updates()
            ],
        }
