"""The vendor agent: the runtime's pipeline with the vendor's handlers, and its own actions.

:class:`VendorAgent` puts the pieces of :mod:`vrm_agent` together for a vendor
(or a third party, which takes the vendor role): the inbox pipeline with the
handlers of :mod:`reference_vendor.handlers` (checked complete against the
message-type registry at start-up), the outbox and the mailbox on its store,
its one clock, and what the vendor starts itself: a service notice within the
individual's preferences, the retention sweep, the test driver's clock.

It is independent of HTTP (:mod:`reference_vendor.app` carries bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

import aiohttp
from pydantic import ValidationError

import reference_vendor.handlers_consents  # noqa: F401  (registers its handlers)
from reference_vendor import (
    handlers_conversation,  # noqa: F401  (registers its handlers)
    handlers_living,  # noqa: F401 - registers its handlers
    handlers_materials,  # noqa: F401 - registers its handlers
    handlers_myterms,  # noqa: F401 - registers its handlers
    handlers_transaction,  # noqa: F401 - registers its handlers
)
from reference_vendor.catalogue import Catalogue
from reference_vendor.config import VendorConfig
from reference_vendor.faults import VendorStrategies
from reference_vendor.handlers import HANDLERS
from reference_vendor.handlers_grants import GrantedRead, read_granted
from reference_vendor.store import (
    ConsentRow,
    DataRow,
    DeletionRow,
    Preferences,
    SuppressedRow,
    VendorStore,
)
from vrm_agent.clock import Clock
from vrm_agent.inbox import DirectReception, Inbound, InboxAnswer, Pipeline, SingleIdentity, Us
from vrm_agent.mailbox import Mailbox
from vrm_agent.outbox import DeliveryBudget, Outbox
from vrm_agent.store import RelationshipRecord, StoreUnavailable
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.http_binding import INBOX_PATH, RateLimiter
from vrm_protocol.keys import KeySet, SigningKey, key_resolver
from vrm_protocol.message_types import accepted_by, sent_by
from vrm_protocol.models import (
    Attestation,
    AttestationStatement,
    BaseMessage,
    OfferAcceptanceMessage,
    OfferBody,
    ServiceNoticeBody,
)
from vrm_protocol.sd_jwt_vc import SD_JWT_FORMAT, key_binding_of, verify_presentation
from vrm_protocol.vocabulary import MessageType, Role

__all__ = ["CLOCK_OFFSET_SETTING", "MESSAGE_LIFETIME", "NoticeOutcome", "VendorAgent"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseMessage)

#: Settings key under which the test driver's clock offset survives restarts.
CLOCK_OFFSET_SETTING: Final = "clock-offset-seconds"
#: Lifetime the vendor gives its messages (binding convention: one day, spec §9.1).
MESSAGE_LIFETIME: Final = timedelta(days=1)

#: The categories the vendor has something to say in, most useful first (seed 000 step 6).
NOTICE_PREFERENCE: Final = (
    "maintenance", "safety", "recall", "technical", "warranty", "new-products", "events",
    "promotions",
)  # fmt: skip
#: The notice kind for each category.
NOTICE_KINDS: Final[Mapping[str, str]] = {
    "maintenance": "maintenance-reminder",
    "safety": "safety-recall",
    "recall": "safety-recall",
    "technical": "software-update",
    "warranty": "warranty-extension",
    "new-products": "programme-offer",
    "events": "programme-offer",
}
NOTICE_SUMMARIES: Final[Mapping[str, str]] = {
    "maintenance-reminder": "Your annual service is due next month",
    "safety-recall": "Safety recall: the tyre pressure sensor needs a software fix",
    "software-update": "A software update for the infotainment system is available",
    "warranty-extension": "Extend your warranty by two years before it ends",
    "programme-offer": "A programme for owners like you",
}


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    """Whether an operator's notice was sent, and why not when it was not."""

    sent: bool
    message_id: str | None = None
    reason: str | None = None


class VendorAgent:
    """The vendor (or third party) as a protocol participant.

    Args:
        config: the agent's configuration.
        store: its CRM store.
        clock: its clock (the test driver may shift it).
        key: its signing key (published in its JWKS).
        session: the HTTP client its outbox delivers with (``vrm_agent.net.client_session``).
        strategies: production, or weakened by test-mode faults.
        sender_limiter: the per-sender budget, charged once a message's signature
            verified (spec §11.6); none when absent.

    Raises:
        IncompleteRegistry: a message type the vendor must take has no handler.
    """

    def __init__(
        self,
        config: VendorConfig,
        store: VendorStore,
        clock: Clock,
        key: SigningKey,
        *,
        session: aiohttp.ClientSession,
        strategies: VendorStrategies | None = None,
        sender_limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.key = key
        self.key_set = KeySet([key.public()])
        #: The HTTP client (every connection passes the delivery policy).
        self.session = session
        self.party_id = config.party_id
        #: What registries attest about the party itself (spec §10.4).
        self.party_attestations: list[Attestation] = list(config.party_attestations)
        # The terms are served on the agent's own origin, so that is where the
        # references in its messages point (spec §11.7).
        self.catalogue: Catalogue = config.catalogue.at_origin(config.party_id)
        self.strategies = strategies or config.strategies
        self.trusted_issuers: dict[str, KeySet | None] = {
            issuer.id: KeySet.from_jwks(issuer.jwks) for issuer in self.catalogue.trusted_issuers
        }
        # A third party takes the vendor role in its own relationships; a party
        # that sells nothing neither takes nor sends the messages of selling.
        HANDLERS.check_complete(self.accepts)
        us = Us(self.party_id, key, self.party_id + INBOX_PATH)
        runtime = self.strategies.runtime
        self.pipeline = Pipeline(
            role=Role.VENDOR,
            store=store,
            handlers=HANDLERS.bind(self),
            identities=SingleIdentity(us),
            # Buyers are did:jwk pseudonyms: their key comes from the identifier,
            # nothing is fetched (spec §3.1).
            reception=DirectReception(self.party_id, key_resolver(None), config.limits),
            clock=clock,
            strategies=runtime,
            sender_limiter=sender_limiter,
            message_lifetime=MESSAGE_LIFETIME,
            reply_delay=config.reply_delay,
            on_commit=self._committed,
        )
        self.mailbox = Mailbox(
            store, owner=self.party_id, clock=clock, limits=config.limits, choose=runtime.mailbox
        )
        self.outbox = Outbox(
            store,
            policy=config.delivery_policy,
            budget=DeliveryBudget(
                config.delivery_attempts,
                config.stranger_delivery_attempts,
                config.stranger_delivery_budget,
            ),
            clock=clock,
            options=runtime.delivery,
            session=session,
        )
        self._retention_changed = asyncio.Event()

    # -- what it takes and sends (the discovery document) ----------------------------------------

    @property
    def accepts(self) -> frozenset[MessageType]:
        """The message types the vendor takes in its inbox (spec §6, §11.1)."""
        return accepted_by(Role.VENDOR, sells=self.catalogue.sells)

    @property
    def sends(self) -> frozenset[MessageType]:
        """The message types the vendor may send."""
        return sent_by(Role.VENDOR, sells=self.catalogue.sells)

    # -- receiving ----------------------------------------------------------------------------

    async def receive(self, token: bytes) -> InboxAnswer:
        """Process one message POSTed to the inbox (spec §11.3): see
        :meth:`vrm_agent.inbox.Pipeline.receive`.

        Raises:
            RemoteProtocolError: the message is refused; nothing was stored.
            StoreUnavailable: the store cannot be written; nothing was stored.
        """
        return await self.pipeline.receive(token)

    def _committed(self, work: UnitOfWork) -> None:
        if any(isinstance(write, DataRow | ConsentRow) for write in work.writes):
            self._retention_changed.set()

    # -- what handlers ask of the agent ----------------------------------------------------------

    def verified_claims(
        self, attestations: Sequence[Attestation] | None, inbound: Inbound[Any], kind: str
    ) -> list[AttestationStatement]:
        """Verify every attestation a request carries (spec §10.3); the statements of
        those of ``kind``.

        Raises:
            RemoteProtocolError: UNTRUSTED_ISSUER or ATTESTATION_INVALID.
        """
        statements: list[AttestationStatement] = []
        for attestation in attestations or ():
            if attestation.format == SD_JWT_FORMAT:
                # Spec §10.5: a credential presented once, to this vendor, bound to
                # the sender's pseudonym by its key-binding JWT's nonce.
                audience, nonce = self.party_id, inbound.peer
                if not self.strategies.holder_binding:  # a fault (test mode only)
                    audience, nonce = key_binding_of(attestation.token)
                credential = verify_presentation(
                    attestation.token,
                    issuer=attestation.issuer,
                    trusted_issuers=self.trusted_issuers,
                    audience=audience,
                    nonce=nonce,
                    now=inbound.now,
                )
                if attestation.kind == kind:
                    statements.append(
                        _statement(present(range=credential.range, purpose=credential.purpose))
                    )
                continue
            token = _attestation(attestation)
            verified = verify_attestation(
                token,
                trusted_issuers=self.trusted_issuers,
                subject=inbound.peer,
                # VRM-ATT-009: its aud must include this vendor.
                audience=self.strategies.attestation_audience.audience(token, self.party_id),
                now=inbound.now,
            )
            if verified.kind == kind:
                statements.append(_statement(verified.claims))
        return statements

    def check_approvals(
        self, offer: OfferBody, digest: str | None, inbound: Inbound[OfferAcceptanceMessage]
    ) -> None:
        """A co-decision-maker's approval the offer requires must be present and
        verify, and approve this offer if it names one (spec §6.4, §10.2).

        Raises:
            RemoteProtocolError: APPROVAL_MISSING or ATTESTATION_INVALID.
        """
        body = inbound.message.body
        approvals = body.approvals or ()
        offer_id = body.offer.id
        for condition in offer.conditions or ():
            if condition.kind != "approval-required":
                continue
            party = condition.party
            candidates = [a for a in approvals if party is None or a.issuer == party]
            if not candidates:
                raise RemoteProtocolError(
                    ErrorCode.APPROVAL_MISSING,
                    f"offer {offer_id} requires the approval of {party or 'a co-decision-maker'}",
                    path="/body/approvals",
                )
            for attestation in candidates:
                verified = verify_attestation(
                    _attestation(attestation),
                    trusted_issuers={attestation.issuer: None}
                    if party is not None
                    else self.trusted_issuers,
                    subject=inbound.peer,
                    audience=self.party_id,
                    now=inbound.now,
                    kind="approval",
                )
                statement = _statement(verified.claims)
                approved = statement.approves.offer if statement.approves is not None else None
                if approved is not None and (approved.id, approved.digest) != (offer_id, digest):
                    raise RemoteProtocolError(
                        ErrorCode.ATTESTATION_INVALID,
                        "the approval names another offer",
                        path="/body/approvals",
                    )

    async def sent(self, inbound: Inbound[Any], message_id: str, model: type[M]) -> M | None:
        """The message ``message_id`` the vendor sent in ``inbound``'s relationship, as
        a ``model`` (read back from the token stored when it was sent), if any.

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        stored = await self.store.message(self.party_id, message_id)
        if stored is None or stored.peer != inbound.peer:
            return None
        message = stored.model()
        return message if isinstance(message, model) else None

    # -- operator actions ---------------------------------------------------------------------

    async def send_notice(
        self,
        peer: str,
        *,
        kind: str | None = None,
        category: str | None = None,
        programme: str | None = None,
        summary: str | None = None,
        proposals: Sequence[Mapping[str, Any]] = (),
    ) -> NoticeOutcome:
        """Send a service notice (servicing, spec §6.9) or a programme offer
        (development) to ``peer``, if the individual's preferences allow it.

        Without a category (or programme) the vendor picks the first category
        it has something to say in that the individual allows. A notice in a
        category the individual did not allow is not sent; the refusal is
        recorded (spec §12, notification preferences).

        Raises:
            LookupError: no relationship with ``peer``, or no such programme.
            LocalProtocolError: the notice would not be a valid message (e.g. a
                malformed proposal); nothing was sent or recorded.
            StoreUnavailable: the store cannot be read or written.
        """
        now = self.clock.now()
        chosen = self.catalogue.programme(programme) if programme else None
        if programme and chosen is None:
            raise LookupError(f"no programme {programme!r} in the catalogue")
        preferences = await self.store.preferences(peer)
        why_not: list[str] = []
        what: list[tuple[str, str]] = []

        async def compose(record: RelationshipRecord, work: UnitOfWork) -> None:
            topic = category
            if topic is None:
                topic = chosen.category if chosen else self._choose_category(record, preferences)
            notice_kind = kind or (chosen.kind if chosen else NOTICE_KINDS.get(topic, "other"))
            what.append((notice_kind, topic))
            reason: str | None = None
            allowed = preferences.notifications_allowed
            if record.core.exit is not None:
                pass  # the state machine judges the exit's re-engagement preferences
            elif allowed is None:
                reason = "the individual has not chosen notification categories"
            elif topic not in allowed:
                reason = f"the individual does not allow {topic} notifications"
            if reason is not None:
                why_not.append(reason)
                work.write(SuppressedRow(peer, notice_kind, topic, reason, format_timestamp(now)))
                return
            text = summary
            if text is None:
                text = chosen.summary if chosen else NOTICE_SUMMARIES.get(notice_kind)
            document: dict[str, Any] = {
                "kind": notice_kind,
                "category": topic,
                "summary": text or notice_kind.replace("-", " "),
                "respondBy": format_timestamp(now + timedelta(days=14)),
            }
            if proposals:
                # Work proposed, each accepted or declined on its own (seed 000 step 6).
                document["proposals"] = [dict(proposal) for proposal in proposals]
            if chosen is not None:
                document["details"] = chosen.details
                if chosen.data_requests:
                    document["dataRequests"] = [_scoped_request(r) for r in chosen.data_requests]
                    document["terms"] = self.catalogue.terms_reference()
            try:
                body = ServiceNoticeBody.model_validate(document)
            except ValidationError as error:
                raise LocalProtocolError(
                    ErrorCode.SCHEMA_INVALID, f"not a valid notice: {error}"
                ) from None
            # Vendors write only in threads the individual started (spec §5.2):
            # the notice joins the relationship's latest one.
            work.reply(body, thread=record.thread, parent=None)

        def finish(work: UnitOfWork) -> None:
            if not why_not and not work.outbound:
                reason = "the relationship's state or re-engagement preferences forbid it"
                why_not.append(reason)
                notice_kind, topic = what[0]
                work.write(SuppressedRow(peer, notice_kind, topic, reason, format_timestamp(now)))

        work = await self.pipeline.act(peer, compose, finish=finish)
        if why_not:
            return NoticeOutcome(False, reason=why_not[0])
        self.outbox.wake()
        return NoticeOutcome(True, message_id=work.outbound[0].message.message_id)

    def _choose_category(self, record: RelationshipRecord, preferences: Preferences) -> str:
        exit_record = record.core.exit
        if exit_record is not None:
            allowed: tuple[str, ...] = exit_record.topics or ()
        else:
            allowed = preferences.notifications_allowed or ()
        for category in NOTICE_PREFERENCE:
            if category in allowed and category in self.catalogue.notification_categories:
                return category
        return NOTICE_PREFERENCE[0]

    # -- retention, clock, state ----------------------------------------------------------------

    async def sweep(self) -> list[DeletionRow]:
        """Delete data whose retention has ended, by the agent's clock (spec §12).

        Raises:
            StoreUnavailable: the store cannot be written.
        """
        if not self.strategies.retention.sweeps:
            return []
        return await self.store.sweep_retention(format_timestamp(self.clock.now()))

    async def sweep_forever(self, longest_sleep: float) -> None:
        """Sweep, then sleep until the next retention ends (or something with a
        retention is stored, or the clock moves), at most ``longest_sleep``
        seconds; until cancelled. An agent holding nothing sleeps that long."""
        while True:
            self._retention_changed.clear()
            wait = longest_sleep
            try:
                await self.sweep()
                deadline = await self.store.next_retention_deadline()
                if deadline is not None:
                    due = (parse_timestamp(deadline) - self.clock.now()).total_seconds()
                    wait = min(longest_sleep, max(1.0, due + 1.0))
            except StoreUnavailable as error:
                log.error("retention sweep postponed: the store is unavailable: %s", error)
            except Exception:
                log.exception("retention sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._retention_changed.wait(), wait)

    async def set_clock_offset(self, seconds: int) -> None:
        """Shift the agent's clock (test driver, spec §14.3); the offset survives restarts.

        Raises:
            StoreUnavailable: the store cannot be written.
        """
        self.clock.set_offset_seconds(seconds)
        await self.store.set_setting(CLOCK_OFFSET_SETTING, str(seconds))
        await self.sweep()
        self._retention_changed.set()

    async def restore_clock_offset(self) -> None:
        """Re-apply a clock offset the test driver set before a restart."""
        value = await self.store.setting(CLOCK_OFFSET_SETTING)
        if value is not None:
            self.clock.set_offset_seconds(int(value))

    async def read_grant(self, grant_id: str) -> GrantedRead:
        """Read the items of an access grant it holds from her agent, now (spec §11.9):
        see :func:`reference_vendor.handlers_grants.read_granted`.

        Raises:
            LookupError, LocalProtocolError: as ``read_granted``.
        """
        return await read_granted(self, grant_id)

    async def summary(self) -> dict[str, Any]:
        """The state summary of the test driver (after a retention sweep)."""
        await self.sweep()
        summary = await self.store.summary()
        summary["party"] = self.party_id
        return summary


def _attestation(attestation: Attestation) -> dict[str, str]:
    """An attestation as the library's verifier takes it."""
    return {"kind": attestation.kind, "issuer": attestation.issuer, "token": attestation.token}


def _statement(claims: Mapping[str, Any]) -> AttestationStatement:
    """The statement of a verified attestation, as its model.

    Raises:
        RemoteProtocolError: ATTESTATION_INVALID, its claims are not a statement.
    """
    try:
        return AttestationStatement.model_validate(claims)
    except ValidationError as error:
        raise RemoteProtocolError(
            ErrorCode.ATTESTATION_INVALID, f"the attestation's claims are not a statement: {error}"
        ) from None


def _scoped_request(request: Mapping[str, Any]) -> dict[str, Any]:
    entry = dict(request)
    retention = entry.get("retention")
    if isinstance(retention, str):
        entry["retention"] = {"period": retention}
    return entry
