"""The individual's agent: her side of every relationship (spec §4), on the runtime.

:class:`BuyerAgent` puts the pieces together, each with one job:

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
* :mod:`reference_buyer.mailboxes` — collecting replies from mailboxes;
* :mod:`reference_buyer.policy`, :mod:`reference_buyer.ranking` — her sharing
  policy and her view of the offers (pure).

What is left here is what she decides and does: an intentcast to many
vendors, an RFP (by post where a vendor is not online), a counter-offer, an
acceptance (identity disclosed only now), declines, answers to terms and
notices, a support request, an exit, re-engagement. Each message she sends is
a typed body that goes through the runtime (:meth:`vrm_agent.inbox.Pipeline.send`):
signed under her pseudonym with that party, decided by the state machine as
SENT (an illegal move is never signed for sending), delivered, and committed
with its effects only once the party took it. Her HTTP side is
:mod:`reference_buyer.app`; the one clock is the runtime's.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

import aiohttp
from pydantic import ValidationError

from reference_buyer.config import KEYS_DIR, BuyerConfig
from reference_buyer.courier import Courier
from reference_buyer.directory import Directory
from reference_buyer.faults import BuyerStrategies
from reference_buyer.handlers import HANDLERS
from reference_buyer.letters import Letter, PostalRecipient, render_letter, write_letter
from reference_buyer.mailboxes import Collected, MailboxPoller
from reference_buyer.policy import (
    ItemDecision,
    SharingPolicy,
    TermsDecision,
    check_nothing_identifying,
    evaluate_data_requests,
    evaluate_service_notice,
    evaluate_terms,
)
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.ranking import OfferCandidate, RankedOffer, rank_offers
from reference_buyer.reception import BuyerReception
from reference_buyer.store import (
    STORE_FILE,
    Channel,
    ConsentRecord,
    CredentialRecord,
    Entry,
    ExitRecord,
    Grant,
    Journal,
    OfferView,
    SharingRecord,
    SqliteBuyerStore,
    Withheld,
)
from vrm_agent.clock import AgentClock, Clock
from vrm_agent.files import DataDirError, prepare_data_dir
from vrm_agent.inbox import Delivered, InboxAnswer, Pipeline, Sent
from vrm_agent.mailbox import Mailbox
from vrm_agent.net import ATTEMPT_TIMEOUT_SECONDS, client_session
from vrm_agent.store import StoredMessage, StoreError
from vrm_agent.unit import DomainWrite, Reply, outgoing, present
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import new_message_id
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import RateLimiter
from vrm_protocol.ledger import LedgerQuery, OfferStatus, RelationshipCore
from vrm_protocol.message_types import accepted_by, sent_by
from vrm_protocol.models import (
    AcceptanceTradeIn,
    AcceptedRequest,
    Attestation,
    AttestationStatement,
    Condition,
    DataItem,
    DeclinedItem,
    DeletionReceipt,
    DeletionRequest,
    ExitAcknowledgementBody,
    ExitNoticeBody,
    ExitNoticeMessage,
    ExportRequest,
    MessageRef,
    Money,
    NotificationPreferences,
    OfferAcceptanceBody,
    OfferBody,
    OfferDeclineBody,
    OfferPrice,
    Payment,
    PersonalDetails,
    PersonalRfiBody,
    PersonalRfpBody,
    PersonalRfpMessage,
    ProblemReportBody,
    ProblemSubject,
    ReengagementPreferences,
    RefusedRequest,
    RegisteredTradeInItem,
    ScopedDataRequest,
    ServiceNoticeMessage,
    ServiceResponseBody,
    SupportRequestBody,
    TermsAssertionMessage,
    TermsReference,
    TermsResponseBody,
    VRMModel,
    parse_message_dict,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import PROTOCOL_VERSION, MessageType, Role

__all__ = [
    "ACCEPTANCE_CATEGORIES",
    "MESSAGE_LIFETIME",
    "NOT_BEFORE_ACCEPTANCE",
    "NOT_COVERED",
    "AttestationSource",
    "BuyerAgent",
]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=VRMModel)

#: How long the messages she signs stay valid (binding convention: one day).
MESSAGE_LIFETIME: Final = timedelta(days=1)
#: Identity members of an acceptance and the data categories they disclose (spec §6.4).
ACCEPTANCE_CATEGORIES: Final[Mapping[str, str]] = {
    "name": "identity.name",
    "email": "contact.email",
    "phone": "contact.phone",
    "address": "contact.postal-address",
}
#: The reasons an item is withheld, as her answers state them.
NOT_BEFORE_ACCEPTANCE: Final = (
    "identifying data is shared only with a party whose offer she has accepted (spec §12)"
)
NOT_COVERED: Final = "not covered by terms of sharing she accepted with this party"
#: What she keeps when a vendor leaving the market asks her to delete.
OWN_RECORDS: Final = "the individual's own record of the relationship: hers to keep"

#: Given (subject pseudonym, audience party id), an attestation ``{kind, issuer, token}``.
AttestationSource = Callable[[str, str], Mapping[str, str]]


def _model(cls: type[T], /, **fields: Any) -> T:
    """``cls`` built from ``fields`` (Python names or wire names), validated.

    Raises:
        LocalProtocolError: SCHEMA_INVALID, what she would send is not valid.
    """
    try:
        return cls.model_validate(fields)
    except ValidationError as error:
        raise LocalProtocolError(
            ErrorCode.SCHEMA_INVALID, f"not a valid {cls.__name__}: {error}"[:500]
        ) from None


def _revise(model: T, /, **changes: Any) -> T:
    """``model`` with ``changes``, validated again."""
    current = {name: value for name, value in model if value is not None}
    return _model(type(model), **{**current, **changes})


def _decimal(value: Decimal) -> str:
    """A decimal string as the schema wants it (no exponent, at most 2 places)."""
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "letter"


@dataclass(frozen=True, slots=True)
class _Letter:
    """Where a letter goes (her RFP to a vendor that is not online)."""

    recipient: PostalRecipient
    printed: dict[str, Letter]


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
            receive=lambda token, reception: self.pipeline.receive(
                token, reception=reception, via="mailbox"
            ),
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
        self._arrived = asyncio.Event()
        self._rng = random.SystemRandom()

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
        return await self.pipeline.receive(token, reception=reception)

    def _committed(self, work: Any) -> None:
        if work.inbound is not None:
            arrived, self._arrived = self._arrived, asyncio.Event()
            arrived.set()

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

    # -- sending ---------------------------------------------------------------------------------

    async def _send(
        self,
        peer: str,
        reply: Reply,
        *,
        backdate: int = 0,
        letter: _Letter | None = None,
    ) -> Sent:
        """Sign, decide, deliver (POST, or print a letter) and commit one message.

        Raises:
            LocalProtocolError: the state machine refuses it, it is not valid, or
                ``peer`` cannot be reached as it publishes itself (D7).
            RemoteProtocolError: the peer refused it or did not take it.
            StoreUnavailable: the store cannot be read or written.
        """
        await self.pseudonyms.ensure(peer)
        if letter is None:
            await self.directory.discover(peer)

        async def deliver(stored: StoredMessage, model: Any) -> Delivered:
            if letter is not None:
                await self._print(letter, stored, model)
                return Delivered(None, self._sent_writes(stored, model, Channel.LETTER, "printed"))
            try:
                receipt = await self.courier.deliver(stored)
            except RemoteProtocolError as refusal:
                # Not part of the relationship, but part of what she tried.
                await self.store.record_refusal(
                    self._journal_out(stored, Channel.HTTP, f"refused:{refusal.code.value}"),
                    stored.token,
                )
                raise
            return Delivered(
                receipt, self._sent_writes(stored, model, Channel.HTTP, "delivered", receipt)
            )

        return await self.pipeline.send(
            peer, reply, deliver=deliver, backdate=timedelta(seconds=backdate)
        )

    @staticmethod
    def _journal_out(
        stored: StoredMessage, channel: str, status: str, receipt: bytes | None = None
    ) -> Journal:
        return Journal(
            peer=stored.peer,
            sender=stored.sender,
            message_id=stored.message_id,
            type=stored.type,
            direction=Direction.SENT,
            channel=channel,
            status=status,
            thread=stored.thread,
            parent=stored.parent,
            at=stored.at,
            receipt=receipt,
        )

    def _sent_writes(
        self,
        stored: StoredMessage,
        model: Any,
        channel: str,
        status: str,
        receipt: bytes | None = None,
    ) -> tuple[DomainWrite, ...]:
        """Her records of a message the peer took: the journal line, and for an
        exit notice the exit awaiting its acknowledgement."""
        writes: list[DomainWrite] = [self._journal_out(stored, channel, status, receipt)]
        if isinstance(model, ExitNoticeMessage):
            writes.append(
                ExitRecord(
                    peer=stored.peer,
                    notice_id=stored.message_id,
                    notice_digest=stored.digest,
                    preferences=model.body.reengagement.model_dump(
                        mode="json", by_alias=True, exclude_none=True
                    ),
                    at=stored.at,
                )
            )
        return tuple(writes)

    async def _print(self, letter: _Letter, stored: StoredMessage, model: Any) -> None:
        """Render and write the letter carrying ``stored`` (a personal RFP).

        Raises:
            LocalProtocolError: ILLEGAL_TRANSITION, only an RFP goes by post;
                TEMPORARILY_UNAVAILABLE, the letter cannot be written.
        """
        if not isinstance(model, PersonalRfpMessage):
            raise LocalProtocolError(
                ErrorCode.ILLEGAL_TRANSITION, "only a personal RFP is sent by post"
            )
        rendered = render_letter(
            model,
            stored.token,
            recipient=letter.recipient,
            reply_address=self.config.reply_address,
            date=self.clock.now().date().isoformat(),
        )
        try:
            await asyncio.to_thread(
                write_letter, rendered, self.config.letters, _slug(letter.recipient.name)
            )
        except (OSError, DataDirError) as error:
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"the letter cannot be written: {error}"
            ) from error
        letter.printed[letter.recipient.party_id] = rendered

    async def _pause(self) -> None:
        """A random pause before one copy of a message sent to several parties
        (spec §12: copies are not sent in the same instant)."""
        spread = self.config.decorrelation.spread_seconds
        if spread > 0:
            await asyncio.sleep(self._rng.uniform(0, spread))

    def _offsets(self, count: int) -> list[int]:
        return self.config.decorrelation.offsets(count, self._rng)

    def _attestation_for(self, vendor: str, subject: str) -> tuple[Attestation, CredentialRecord]:
        """An ability-to-pay attestation for this pseudonym and vendor only, and her
        record of it."""
        assert self.ability_to_pay is not None
        attestation = _model(Attestation, **dict(self.ability_to_pay(subject, vendor)))
        record = CredentialRecord(
            attestation.kind,
            attestation.issuer,
            subject,
            attestation.token,
            format_timestamp(self.clock.now()),
        )
        return attestation, record

    # -- reading her store -----------------------------------------------------------------------

    async def core(self, peer: str) -> RelationshipCore:
        """The relationship's core with ``peer`` (a new one's when there is none)."""
        record = await self.store.relationship(peer)
        return record.core if record is not None else RelationshipCore()

    async def _deal(self, peer: str) -> bool:
        return (await self.core(peer)).accepted_offer is not None

    async def _latest(
        self, peer: str, message_type: MessageType, direction: Direction
    ) -> Entry | None:
        found = [
            entry
            for entry in await self.store.history(
                peer=peer, type=message_type, include_refused=False
            )
            if entry.direction is direction
        ]
        return found[-1] if found else None

    async def _received_offer(self, offer_id: str) -> OfferView:
        view = await self.store.offer_view(offer_id)
        if view is None or view.entry.direction is not Direction.RECEIVED:
            raise LocalProtocolError(ErrorCode.UNKNOWN_OFFER, f"no offer {offer_id} was received")
        return view

    async def _received(self, message_id: str, message_type: MessageType) -> Entry:
        entry = await self.store.entry(message_id, direction=Direction.RECEIVED)
        if entry is None or entry.type is not message_type or entry.token is None:
            raise LocalProtocolError(
                ErrorCode.ILLEGAL_TRANSITION, f"no {message_type.value} {message_id} was received"
            )
        return entry

    async def notifications_allowed(self, peer: str) -> tuple[str, ...]:
        """The notification categories she allowed ``peer``: those of her latest
        terms response it took (none before one)."""
        consents = await self.store.consents(peer)
        return consents[-1].notifications if consents else ()

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

    async def history_refs(self, peer: str) -> list[MessageRef]:
        """The kept history a re-engagement cites: references to the exact bytes of
        the messages that made the old relationship (the first intentcast, the
        accepted offer, the deal confirmation, the exit acknowledgement)."""
        accepted = {
            view.id
            for view in await self.store.offer_views(peer=peer)
            if view.record is not None and view.record.status is OfferStatus.ACCEPTED
        }
        history: list[MessageRef] = []
        first_rfi = True
        for entry in await self.store.history(peer=peer, include_refused=False):
            if entry.token is None:
                continue
            if entry.direction is Direction.SENT:
                if entry.type is MessageType.PERSONAL_RFI and first_rfi:
                    history.append(entry.ref())
                    first_rfi = False
                continue
            if entry.type in (MessageType.DEAL_CONFIRMATION, MessageType.EXIT_ACKNOWLEDGEMENT) or (
                entry.type is MessageType.OFFER and entry.message_id in accepted
            ):
                history.append(entry.ref())
        return history

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
        }

    # -- step 1: search ----------------------------------------------------------------------------

    async def send_rfis(
        self, vendors: Sequence[str], body: PersonalRfiBody, *, attest: bool = True
    ) -> dict[str, Sent]:
        """Step 1 (search): the same intentcast to many vendors at once, each under
        its own pseudonym, in its own thread (spec §6.1, §3.1).

        An ability-to-pay attestation, when the agent has a source and
        ``attest`` is true, is issued per pseudonym (its ``sub``), so even the
        credentials differ. A vendor she left earlier gets the history she kept
        (re-engagement, spec §7.5). Copies are decorrelated (spec §12).

        Raises:
            LocalProtocolError: the body identifies her, a vendor cannot be
                reached as it publishes itself, or the move is illegal.
            RemoteProtocolError: a vendor refused its RFI.
        """
        check_nothing_identifying(body)

        async def one(vendor: str, backdate: int) -> tuple[str, Sent]:
            await self._pause()
            await self.directory.discover(vendor)
            pseudonym = await self.pseudonyms.ensure(vendor)
            vendor_body = body
            writes: list[DomainWrite] = []
            if attest and self.ability_to_pay is not None and body.attestations is None:
                attestation, credential = self._attestation_for(vendor, pseudonym.identifier)
                vendor_body = _revise(vendor_body, attestations=(attestation,))
                writes.append(credential)
            if body.history is None and (await self.core(vendor)).state is RelationshipState.EXITED:
                # Re-engagement (spec §7.5): she comes back with the history she kept.
                vendor_body = _revise(vendor_body, history=tuple(await self.history_refs(vendor)))
            reply = outgoing(vendor_body, thread=None, parent=None, writes=writes)
            return vendor, await self._send(vendor, reply, backdate=backdate)

        offsets = self._offsets(len(vendors))
        results = await asyncio.gather(
            *(one(vendor, offset) for vendor, offset in zip(vendors, offsets, strict=True))
        )
        return dict(results)

    async def reengage(self, peer: str, body: PersonalRfiBody) -> Sent:
        """Step 10 (re-engagement): a new RFI to a vendor left earlier, carrying the
        history she kept (spec §6.1 ``history``, :meth:`history_refs`).

        Raises:
            LocalProtocolError: the move is illegal, or the body identifies her.
            RemoteProtocolError: the vendor refused the RFI.
        """
        check_nothing_identifying(body)
        revised = _revise(body, history=tuple(await self.history_refs(peer)))
        return await self._send(peer, outgoing(revised, thread=None, parent=None))

    # -- step 2: engage ----------------------------------------------------------------------------

    async def send_rfp(
        self,
        vendors: Sequence[str],
        body: PersonalRfpBody,
        *,
        postal: Sequence[PostalRecipient] = (),
        approver: str | Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Sent], dict[str, Letter]]:
        """Step 2 (engage): one personal RFP to several vendors (spec §6.2).

        ``recipientCount`` tells each how many received it, but each online
        vendor gets its own copy signed under its own pseudonym, continuing the
        thread of its RFI and naming the offer it follows, at its own random
        moment with its own ``created`` (spec §12). A vendor reached by post
        gets the same kind of signed message, rendered as a letter.

        ``approver`` names the co-decision-maker who must approve the deal:
        his own party id (per vendor, as a mapping, when there are several:
        one id in every copy would link them, VRM-PRIV-002). Her agent never
        holds his key nor signs for him (VRM-BUY-011): his approval must come
        from him (:meth:`accept` takes it).

        Raises:
            LocalProtocolError: the body identifies her, the move is illegal,
                or one approver id is given for several vendors.
            RemoteProtocolError: a vendor refused its RFP.
        """
        check_nothing_identifying(body)
        count = len(vendors) + len(postal)
        if isinstance(approver, str):
            if count > 1:
                raise LocalProtocolError(
                    ErrorCode.ILLEGAL_TRANSITION,
                    "one co-decision-maker id in every copy would link the copies "
                    "(VRM-PRIV-002): give his id for each vendor",
                )
            approver = {party: approver for party in [*vendors, *(p.party_id for p in postal)]}
        approvers = dict(approver or {})
        offsets = iter(self._offsets(count))

        async def build(vendor: str) -> Reply:
            pseudonym = await self.pseudonyms.ensure(vendor)
            offer = await self._latest(vendor, MessageType.OFFER, Direction.RECEIVED)
            rfi = await self._latest(vendor, MessageType.PERSONAL_RFI, Direction.SENT)
            changes: dict[str, Any] = {"recipient_count": count}
            writes: list[DomainWrite] = []
            if offer is not None and offer.token is not None:
                changes["in_response_to"] = (offer.ref(),)
            if self.ability_to_pay is not None and body.attestations is None:
                attestation, credential = self._attestation_for(vendor, pseudonym.identifier)
                changes["attestations"] = (attestation,)
                writes.append(credential)
            if vendor in approvers:
                changes["conditions"] = (
                    *(body.conditions or ()),
                    _model(
                        Condition,
                        kind="approval-required",
                        description="My partner approves the deal before I accept it.",
                        party=approvers[vendor],
                    ),
                )
            return outgoing(
                _revise(body, **changes),
                thread=rfi.thread if rfi is not None else None,
                parent=offer.message_id if offer is not None else None,
                writes=writes,
            )

        async def online(vendor: str, backdate: int) -> tuple[str, Sent]:
            await self._pause()
            await self.directory.discover(vendor)
            return vendor, await self._send(vendor, await build(vendor), backdate=backdate)

        deliveries = dict(
            await asyncio.gather(*(online(vendor, next(offsets)) for vendor in vendors))
        )
        letters: dict[str, Letter] = {}
        for recipient in postal:
            reply = await build(recipient.party_id)
            await self._send(
                recipient.party_id,
                reply,
                backdate=next(offsets),
                letter=_Letter(recipient, letters),
            )
        return deliveries, letters

    async def enter_paper_answer(
        self, peer: str, body: OfferBody | Mapping[str, Any], *, in_reply_to: str
    ) -> Entry:
        """Record an offer that came by post, typed in by her (seed 000 step 3).

        It is kept as an offer marked unsigned (channel ``paper``) in the thread
        of the letter it answers; it ranks beside the signed offers but cannot
        be accepted electronically: there are no signed bytes to bind to.

        Raises:
            LocalProtocolError: UNKNOWN_OFFER, ``in_reply_to`` is not a letter to
                ``peer``; SCHEMA_INVALID, the offer is not a valid offer body.
        """
        letter = await self.store.entry(in_reply_to, direction=Direction.SENT)
        if letter is None or letter.peer != peer or letter.channel != Channel.LETTER:
            raise LocalProtocolError(
                ErrorCode.UNKNOWN_OFFER, f"no letter {in_reply_to} was sent to {peer}"
            )
        now = self.clock.now()
        message_id = new_message_id()
        if not isinstance(body, OfferBody):
            # Judged as the offer message it stands for: errors name the member.
            payload = {
                "vrm": PROTOCOL_VERSION,
                "type": MessageType.OFFER.value,
                "id": message_id,
                "thread": letter.thread,
                "parent": letter.message_id,
                "from": peer,
                "to": [letter.sender],
                "created": format_timestamp(now),
                "expires": format_timestamp(now + MESSAGE_LIFETIME),
                "body": dict(body),
            }
            try:
                parsed = parse_message_dict(payload)
            except ProtocolError as error:
                raise LocalProtocolError(error.code, error.detail, path=error.path) from error
            assert isinstance(parsed.body, OfferBody)
            body = parsed.body
        return await self.store.enter_paper_offer(
            Journal(
                peer=peer,
                sender=peer,
                message_id=message_id,
                type=MessageType.OFFER,
                direction=Direction.RECEIVED,
                channel=Channel.PAPER,
                status="typed-in",
                thread=letter.thread,
                parent=letter.message_id,
                at=format_timestamp(now),
            ),
            body,
        )

    # -- step 3: negotiate -------------------------------------------------------------------------

    async def counter(self, offer_id: str, total: Decimal | str) -> Sent:
        """Step 3 (negotiate): a counter-offer at ``total``, superseding the vendor's
        offer (spec §6.3).

        Raises:
            LocalProtocolError: the offer is unknown, closed or superseded.
            RemoteProtocolError: the vendor refused the counter-offer.
        """
        offer = await self._received_offer(offer_id)
        body, price = offer.body, offer.body.price
        currency = price.total.currency
        wanted = Decimal(str(total))
        allowance = price.trade_in_allowance
        discount = (
            Decimal(price.subtotal.amount)
            - (Decimal(allowance.amount) if allowance is not None else Decimal(0))
            - wanted
        )
        counter_price = _model(
            OfferPrice,
            subtotal=price.subtotal,
            total=Money(amount=_decimal(wanted), currency=currency),
            **present(
                trade_in_allowance=allowance,
                discount=Money(amount=_decimal(discount), currency=currency)
                if discount > 0
                else None,
            ),
        )
        counter = _model(
            OfferBody,
            basis="counter",
            valid_until=format_timestamp(self.clock.now() + timedelta(days=2)),
            items=body.items,
            price=counter_price,
            terms=body.terms,
            supersedes=offer_id,
            in_response_to=offer.entry.ref(),
            **present(
                options=body.options,
                trade_in=body.trade_in,
                delivery=body.delivery,
                conditions=body.conditions,
            ),
        )
        reply = outgoing(counter, thread=offer.entry.thread, parent=offer_id)
        return await self._send(offer.peer, reply)

    # -- step 4: transact --------------------------------------------------------------------------

    async def accept(
        self,
        offer_id: str,
        *,
        payment: Payment | Mapping[str, Any] | None = None,
        approvals: Sequence[Attestation | Mapping[str, Any]] = (),
        decline_others: bool = True,
    ) -> Sent:
        """Step 4 (transact): accept exactly this offer (spec §6.4).

        Identity is disclosed now and only now, as far as her policy allows at
        acceptance; each category disclosed is logged as shared. When the offer
        (or her RFP) requires a co-decision-maker's approval, the acceptance
        carries the approval he signed himself, given here in ``approvals`` and
        checked against the offer's bytes: her agent never signs for anyone
        else (VRM-BUY-011), so without his approval it does not accept. Then,
        unless ``decline_others`` is false, the other vendors' live offers are
        declined (:meth:`decline_other_vendors`).

        Raises:
            LocalProtocolError: UNKNOWN_OFFER, OFFER_SUPERSEDED, OFFER_EXPIRED,
                OFFER_CLOSED (the ledger), ILLEGAL_TRANSITION for an indicative
                offer, APPROVAL_MISSING when an approval she needs was not given,
                ATTESTATION_INVALID when one given does not approve this offer.
            RemoteProtocolError: the vendor refused the acceptance.
        """
        offer = await self._received_offer(offer_id)
        vendor = offer.peer
        pseudonym = await self.pseudonyms.ensure(vendor)
        ref = offer.entry.ref()
        # The ledger speaks first (superseded, expired, closed, indicative): a move
        # the state machine refuses is refused for that reason, before anything else.
        draft = outgoing(OfferAcceptanceBody(offer=ref), thread=offer.entry.thread, parent=offer_id)
        try:
            await self.pipeline.check_send(vendor, draft)
        except LocalProtocolError as error:
            if error.code is not ErrorCode.APPROVAL_MISSING:
                raise
        profile = await self.store.profile()
        details: dict[str, Any] = {}
        disclosed: list[str] = []
        for member, category in ACCEPTANCE_CATEGORIES.items():
            if category in profile and self.policy.may_disclose("acceptance", category):
                details[member] = profile[category]
                disclosed.append(category)
        if payment is None:
            plans = offer.body.financing
            payment = (
                Payment(method="finance", financing_plan=plans[0].plan)
                if plans
                else Payment(method="bank-transfer")
            )
        elif not isinstance(payment, Payment):
            payment = _model(Payment, **dict(payment))
        rfp = await self._latest(vendor, MessageType.PERSONAL_RFP, Direction.SENT)
        rfp_message = rfp.model() if rfp is not None else None
        rfp_body = rfp_message.body if isinstance(rfp_message, PersonalRfpMessage) else None
        required = [
            condition
            for condition in (
                *((rfp_body.conditions or ()) if rfp_body is not None else ()),
                *(offer.body.conditions or ()),
            )
            if condition.kind == "approval-required"
        ]
        carried = (
            self._approvals_for(
                required, approvals, subject=pseudonym.identifier, vendor=vendor, offer_ref=ref
            )
            if required
            else ()
        )
        trade_in = None
        if rfp_body is not None and rfp_body.trade_in is not None:
            registration = profile.get("vehicle.registration")
            if isinstance(registration, str) and self.policy.may_disclose(
                "acceptance", "vehicle.registration"
            ):
                item = rfp_body.trade_in.item
                trade_in = _model(
                    AcceptanceTradeIn,
                    item=_model(
                        RegisteredTradeInItem,
                        registration=registration,
                        **{name: value for name, value in item if value is not None},
                    ),
                    handover=rfp_body.trade_in.handover,
                    **present(papers_handover=rfp_body.trade_in.papers_handover),
                )
                disclosed.append("vehicle.registration")
        body = _model(
            OfferAcceptanceBody,
            offer=ref,
            payment=payment,
            **present(
                identity=_model(PersonalDetails, **details) if "name" in details else None,
                approvals=carried or None,
                trade_in=trade_in,
            ),
        )
        reply = outgoing(body, thread=offer.entry.thread, parent=offer_id)
        terms = offer.body.terms
        reply.writes.extend(
            self._shared(
                vendor,
                pseudonym.identifier,
                disclosed,
                reply.id,
                f"{terms.id}@{terms.version}",
                ("delivery", "billing"),
            )
        )
        sent = await self._send(vendor, reply)
        if decline_others:
            await self.decline_other_vendors(vendor)
        return sent

    def _approvals_for(
        self,
        required: Sequence[Condition],
        given: Sequence[Attestation | Mapping[str, Any]],
        *,
        subject: str,
        vendor: str,
        offer_ref: MessageRef,
    ) -> tuple[Attestation, ...]:
        """The approvals an acceptance must carry: one from each party an
        ``approval-required`` condition names, signed by that party itself,
        approving exactly this offer (spec §6.4, §10.2).

        Raises:
            LocalProtocolError: APPROVAL_MISSING or ATTESTATION_INVALID.
        """
        offered = [
            item if isinstance(item, Attestation) else _model(Attestation, **dict(item))
            for item in given
        ]
        carried: list[Attestation] = []
        for condition in required:
            party = condition.party
            candidates = [a for a in offered if party is None or a.issuer == party]
            if not candidates:
                raise LocalProtocolError(
                    ErrorCode.APPROVAL_MISSING,
                    f"the offer needs the approval of {party or 'a co-decision-maker'}, and her "
                    "agent has none: it never signs for anyone else, so it does not accept "
                    "until he approves himself",
                    path="/body/approvals",
                )
            for approval in candidates:
                try:
                    verified = verify_attestation(
                        {"kind": approval.kind, "issuer": approval.issuer, "token": approval.token},
                        trusted_issuers={approval.issuer: None},
                        subject=subject,
                        audience=vendor,
                        now=self.clock.now(),
                        kind="approval",
                    )
                    statement = AttestationStatement.model_validate(verified.claims)
                except (ProtocolError, ValidationError) as error:
                    raise LocalProtocolError(
                        ErrorCode.ATTESTATION_INVALID, f"the approval given is refused: {error}"
                    ) from error
                approved = statement.approves.offer if statement.approves is not None else None
                if approved != offer_ref:
                    raise LocalProtocolError(
                        ErrorCode.ATTESTATION_INVALID,
                        "the approval given approves another offer",
                        path="/body/approvals",
                    )
                if approval not in carried:
                    carried.append(approval)
        return tuple(carried)

    def _shared(
        self,
        peer: str,
        identifier: str,
        categories: Iterable[str],
        message_id: str,
        terms: str | None,
        purposes: Sequence[str],
    ) -> list[DomainWrite]:
        at = format_timestamp(self.clock.now())
        return [
            SharingRecord(peer, identifier, category, message_id, terms, tuple(purposes), at)
            for category in categories
        ]

    async def decline_other_vendors(self, chosen: str) -> list[Sent]:
        """Decline the live offers of every other vendor asked, once ``chosen``'s
        offer is accepted (spec §6.5: a buyer that has accepted an offer SHOULD
        decline the open offers of the others), so no dealer keeps a car waiting.

        The declines are decorrelated like copies (spec §12). A vendor that
        refuses its decline does not undo the acceptance: it is skipped (its
        offers stay open in her store and may be declined later).
        """
        now = self.clock.now()
        pending: list[list[str]] = []
        for relationship in await self.store.relationships():
            if relationship.peer == chosen:
                continue
            facts = await self.store.ledger_facts(
                relationship.peer, LedgerQuery(open_offers_of=Role.VENDOR), now
            )
            live = [
                record.id
                for record in facts.offers.values()
                if record.sender is Role.VENDOR and record.live_at(now)
            ]
            if live:
                pending.append(sorted(live))

        async def one(live: list[str], backdate: int) -> list[Sent]:
            await self._pause()
            try:
                return await self.decline(live, reason="other-offer-accepted", backdate=backdate)
            except ProtocolError as error:
                log.info("a decline was not taken: %s", error)
                return []

        offsets = self._offsets(len(pending))
        results = await asyncio.gather(
            *(one(live, offset) for live, offset in zip(pending, offsets, strict=True))
        )
        return [sent for declines in results for sent in declines]

    async def decline(
        self,
        offer_ids: Sequence[str],
        *,
        reason: str = "other-offer-accepted",
        comment: str | None = None,
        backdate: int = 0,
    ) -> list[Sent]:
        """Decline offers, one decline per vendor in its own thread (spec §6.5).

        Raises:
            LocalProtocolError: an offer is unknown or already closed.
            RemoteProtocolError: a vendor refused the decline.
        """
        by_vendor: dict[str, list[OfferView]] = {}
        for offer_id in offer_ids:
            offer = await self._received_offer(offer_id)
            by_vendor.setdefault(offer.peer, []).append(offer)
        sent: list[Sent] = []
        for vendor, offers in by_vendor.items():
            body = _model(
                OfferDeclineBody,
                offers=tuple(offer.id for offer in offers),
                reason=reason,
                **present(comment=comment),
            )
            reply = outgoing(body, thread=offers[-1].entry.thread, parent=offers[-1].id)
            sent.append(await self._send(vendor, reply, backdate=backdate))
        return sent

    # -- step 5: welcome ---------------------------------------------------------------------------

    async def _unmatched_terms(self, party: str, reference: TermsReference | None) -> str | None:
        """Why the terms ``reference`` names cannot be matched, or ``None`` when the
        document fetched from ``party``'s own origin has exactly its digest (D12,
        VRM-BUY-010)."""
        if reference is None:
            return "the message names no terms document"
        try:
            document = await self.directory.terms_document(party, reference.url)
        except LocalProtocolError as error:
            return error.detail
        if message_digest(document) != reference.digest:
            return (
                f"the digest {reference.digest} does not match the terms document published "
                f"at {reference.url}"
            )
        return None

    async def _before_acceptance(self, party: str, decision: TermsDecision) -> TermsDecision:
        """``decision`` with every identifying item refused, while she has accepted no
        offer of ``party`` (spec §12, VRM-PRIV-011: identity is disclosed at
        acceptance, to that party only, and not before)."""
        if self.strategies.identity.may_identify(deal=await self._deal(party)):
            return decision
        return decision.withholding(self.policy.is_identifying, NOT_BEFORE_ACCEPTANCE)

    async def report_problem(
        self, entry: Entry, code: ErrorCode, detail: str, *, path: str | None = None
    ) -> Sent:
        """Tell the sender of ``entry`` why she does not act on it: a
        ``problem-report`` in its thread, answering it (spec §6.15).

        Raises:
            LocalProtocolError: the report would not be a valid message.
            RemoteProtocolError: the counterparty refused it.
        """
        body = _model(
            ProblemReportBody,
            regarding=ProblemSubject(id=entry.message_id, **present(digest=entry.digest)),
            code=code.value,
            title=code.info.title,
            detail=detail[:4000],
            **present(path=path),
        )
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        return await self._send(entry.peer, reply)

    async def answer_terms(
        self, assertion_id: str, *, decision: TermsDecision | None = None
    ) -> tuple[Sent, TermsDecision | None]:
        """Step 5 (welcome): answer a terms-of-sharing assertion (spec §6.8).

        First the terms themselves: the document the assertion names is
        fetched from the asserting party's own origin, within bounds, and its
        digest must match (D12, VRM-BUY-010). When it cannot be matched she
        shares nothing: the answer is a ``problem-report`` of code
        ``reference-mismatch`` and the decision returned is ``None``.

        Then her policy decides item by item (anything left to her is refused
        when no decision is given); an identifying item is refused while she
        has accepted no offer of this party (spec §12, VRM-PRIV-011), whatever
        the policy or the given decision say; data goes only with accepted
        items her profile holds; the consent record and the sharing log are
        committed with the response, and only if the party takes it.

        Raises:
            LocalProtocolError: no such assertion, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        entry = await self._received(assertion_id, MessageType.TERMS_ASSERTION)
        message = entry.model()
        assert isinstance(message, TermsAssertionMessage)
        assertion = message.body
        vendor = entry.peer
        mismatch = await self._unmatched_terms(vendor, assertion.terms)
        if mismatch is not None:
            problem = await self.report_problem(
                entry, ErrorCode.REFERENCE_MISMATCH, mismatch, path="/body/terms/digest"
            )
            return problem, None
        if decision is None:
            decision = evaluate_terms(assertion, self.policy, now=self.clock.now())
        decision = await self._before_acceptance(vendor, decision.resolved())
        profile = await self.store.profile()
        accepted = tuple(
            _model(
                AcceptedRequest,
                item=item.item,
                purposes=item.purposes,
                **present(retention=item.retention),
            )
            for item in decision.accepted
        )
        refused = tuple(
            _model(RefusedRequest, item=item.item, reason="; ".join(item.reasons) or "not needed")
            for item in decision.refused
        )
        data = tuple(
            _model(DataItem, item=item.item, value=profile[item.item])
            for item in decision.accepted
            if item.item in profile
        )
        body = _model(
            TermsResponseBody,
            assertion=entry.ref(),
            decision=decision.decision.value,
            accepted=accepted,
            notification_preferences=_model(
                NotificationPreferences, allowed=decision.notifications
            ),
            **present(refused=refused or None, data=data or None),
        )
        pseudonym = await self.pseudonyms.ensure(vendor)
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        terms_name = f"{assertion.terms.id}@{assertion.terms.version}"
        purposes = {item.item: item.purposes for item in decision.accepted}
        reply.writes.append(
            ConsentRecord(
                peer=vendor,
                assertion_id=entry.message_id,
                assertion_digest=str(entry.digest),
                response_id=reply.id,
                decision=decision.decision.value,
                accepted=tuple(Grant(item.item, item.purposes) for item in decision.accepted),
                refused=tuple(
                    Withheld(item.item, "; ".join(item.reasons) or "not needed")
                    for item in decision.refused
                ),
                notifications=decision.notifications,
                at=format_timestamp(self.clock.now()),
            )
        )
        for item in data:
            reply.writes.extend(
                self._shared(
                    vendor,
                    pseudonym.identifier,
                    [item.item],
                    reply.id,
                    terms_name,
                    purposes.get(item.item, ()),
                )
            )
        return await self._send(vendor, reply), decision

    # -- steps 6 and 7: servicing, development -----------------------------------------------------

    async def answer_service_notice(self, notice_id: str) -> Sent:
        """Steps 6-7 (servicing, development): answer a service notice as her policy
        says (spec §6.10).

        Proposed work the policy declines is declined with its reason (seed
        000: the tyres stay); the rest is accepted. Scoped data requests (a
        programme asking for travel dates, seed 000 step 7) carry data only
        where she agreed to share it with this party for that purpose
        (VRM-BUY-007): under terms the notice names, whose document she matched
        (D12; otherwise she shares nothing and answers with a
        ``problem-report`` of code ``reference-mismatch``) and that her policy
        accepts; or, when it names none, within the items and purposes of the
        terms response in force with this party. Nothing identifying goes to a
        party whose offer she has not accepted (VRM-PRIV-011). What is shared is
        logged.

        Raises:
            LocalProtocolError: no such notice, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        entry = await self._received(notice_id, MessageType.SERVICE_NOTICE)
        message = entry.model()
        assert isinstance(message, ServiceNoticeMessage)
        notice = message.body
        vendor = entry.peer
        requests = notice.data_requests or ()
        if requests and notice.terms is not None:
            mismatch = await self._unmatched_terms(vendor, notice.terms)
            if mismatch is not None:
                return await self.report_problem(
                    entry, ErrorCode.REFERENCE_MISMATCH, mismatch, path="/body/terms/digest"
                )
        work = evaluate_service_notice([p.code for p in notice.proposals or ()], self.policy)
        items = (
            evaluate_data_requests(requests, self.policy)
            if notice.terms is not None
            else await self._covered_by_consent(vendor, requests)
        )
        if not self.strategies.identity.may_identify(deal=await self._deal(vendor)):
            items = tuple(
                ItemDecision(i.item, False, (), None, (*i.reasons, NOT_BEFORE_ACCEPTANCE))
                if i.accepted and self.policy.is_identifying(i.item)
                else i
                for i in items
            )
        profile = await self.store.profile()
        accepted = (*work.accepted, *(i.item for i in items if i.accepted))
        declined = (
            *(_model(DeclinedItem, item=item, reason=why) for item, why in work.declined),
            *(
                _model(DeclinedItem, item=i.item, reason="; ".join(i.reasons) or "not needed")
                for i in items
                if not i.accepted
            ),
        )
        data = tuple(
            _model(DataItem, item=i.item, value=profile[i.item])
            for i in items
            if i.accepted and i.item in profile
        )
        if not declined:
            decision = "accept"
        elif not accepted:
            decision = "decline"
        else:
            decision = "accept-in-part"
        body = _model(
            ServiceResponseBody,
            notice=entry.ref(),
            decision=decision,
            **present(accepted=accepted or None, declined=declined or None, data=data or None),
        )
        pseudonym = await self.pseudonyms.ensure(vendor)
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        terms = notice.terms
        terms_name = f"{terms.id}@{terms.version}" if terms is not None else None
        purposes = {i.item: i.purposes for i in items if i.accepted}
        for item in data:
            reply.writes.extend(
                self._shared(
                    vendor,
                    pseudonym.identifier,
                    [item.item],
                    reply.id,
                    terms_name,
                    purposes.get(item.item, ()),
                )
            )
        return await self._send(vendor, reply)

    async def _covered_by_consent(
        self, party: str, requests: Sequence[ScopedDataRequest]
    ) -> tuple[ItemDecision, ...]:
        """Data requests that name no terms: each is granted only within an item and
        purposes she accepted in the terms response in force with ``party``."""
        consents = await self.store.consents(party)
        in_force = (
            {grant.item: set(grant.purposes) for grant in consents[-1].accepted}
            if (consents)
            else {}
        )
        decided = []
        for request in requests:
            asked = tuple(request.purposes)
            if asked and request.item in in_force and set(asked) <= in_force[request.item]:
                decided.append(ItemDecision(request.item, True, asked, None, ()))
            else:
                decided.append(ItemDecision(request.item, False, (), None, (NOT_COVERED,)))
        return tuple(decided)

    # -- step 8: problems --------------------------------------------------------------------------

    async def support_request(
        self,
        peer: str,
        *,
        subject: str,
        description: str,
        severity: str = "normal",
        regarding: str | None = None,
    ) -> Sent:
        """Step 8 (problems): tell the counterparty something is wrong (spec §6.11).

        Raises:
            LocalProtocolError: the relationship is in no state to raise a problem.
            RemoteProtocolError: the counterparty refused the request.
        """
        about = await self.store.entry(regarding) if regarding is not None else None
        if about is not None and about.token is None:
            about = None  # a paper answer: nothing signed to refer to
        body = _model(
            SupportRequestBody,
            subject=subject,
            description=description,
            severity=severity,
            **present(regarding=about.ref() if about is not None else None),
        )
        reply = outgoing(
            body,
            thread=about.thread if about is not None else None,
            parent=about.message_id if about is not None else None,
        )
        return await self._send(peer, reply)

    # -- step 9: exit ------------------------------------------------------------------------------

    async def exit(
        self,
        peer: str,
        *,
        reason: str = "need-changed",
        explanation: str | None = None,
        reengagement: ReengagementPreferences | Mapping[str, Any] | None = None,
    ) -> Sent:
        """Step 9 (exit): leave the relationship, asking for export and deletion (spec §6.13).

        The acknowledgement is checked against her sharing log when it arrives
        (:mod:`reference_buyer.exits`); the outcome is in ``store.exits()``.

        Raises:
            LocalProtocolError: the relationship cannot be exited in its state.
            RemoteProtocolError: the counterparty refused the notice.
        """
        if reengagement is None:
            reengagement = {"allowed": True, "topics": ["safety", "recall"]}
            reengagement["channel"] = "intentcast-only"
        preferences = (
            reengagement
            if isinstance(reengagement, ReengagementPreferences)
            else _model(ReengagementPreferences, **dict(reengagement))
        )
        body = _model(
            ExitNoticeBody,
            reason=reason,
            effective_at=format_timestamp(self.clock.now()),
            export=ExportRequest(requested=True, media_type="application/json"),
            deletion=DeletionRequest(requested=True),
            reengagement=preferences,
            **present(explanation=explanation),
        )
        signed = [e for e in await self.store.history(peer=peer, include_refused=False) if e.token]
        last = signed[-1] if signed else None
        reply = outgoing(
            body,
            thread=last.thread if last is not None else None,
            parent=last.message_id if last is not None else None,
        )
        return await self._send(peer, reply)

    async def acknowledge_exit(self, notice_id: str) -> Sent:
        """Acknowledge a vendor's exit (it leaves the market, spec §6.13): her own
        record of the relationship is hers to keep, so she deletes nothing and
        says so.

        Raises:
            LocalProtocolError: no such notice, or the move is illegal.
            RemoteProtocolError: the vendor refused the acknowledgement.
        """
        entry = await self._received(notice_id, MessageType.EXIT_NOTICE)
        pseudonym = await self.pseudonyms.ensure(entry.peer)
        body = _model(
            ExitAcknowledgementBody,
            notice=entry.ref(),
            deletion_receipt=_model(
                DeletionReceipt,
                relationship=pseudonym.identifier,
                deleted=(),
                deleted_at=format_timestamp(self.clock.now()),
                retained=({"item": "relationship.history", "basis": OWN_RECORDS},),
            ),
        )
        reply = outgoing(body, thread=entry.thread, parent=entry.message_id)
        return await self._send(entry.peer, reply)
