"""The buyer agent: the individual's side of every relationship (spec §4).

:class:`BuyerAgent` owns the I/O the library leaves to agents: the clock, the
personal data store, the HTTP client, key files.  For each counterparty it
uses a fresh pairwise pseudonym (spec §3.1) so that no two vendors can link
what they receive; it runs every message it sends through the relationship
state machine before signing it, and every message it receives through the
library's receiving pipeline and then the state machine before storing it and
answering with a signed receipt (spec §11.3).

The individual's decisions come from the sharing policy
(:mod:`reference_buyer.policy`); ranking offers is
:func:`reference_buyer.ranking.rank_offers`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import random
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from reference_buyer.faults import signature_not_checked
from reference_buyer.letters import Letter, PostalRecipient, render_letter, write_letter
from reference_buyer.net import (
    DISCOVERY_MAX_BYTES,
    FETCH_TIMEOUT_SECONDS,
    JWKS_MAX_BYTES,
    JWKS_MAX_KEYS,
    MAILBOX_PAGE_MAX_BYTES,
    RECEIPT_MAX_BYTES,
    TERMS_MAX_BYTES,
    DeliveryPolicy,
    DeliveryRefused,
    FetchRefused,
    KeyCache,
    client_session,
    fetch_bounded,
    read_bounded,
    same_origin,
)
from reference_buyer.policy import (
    ItemDecision,
    SharingPolicy,
    TermsDecision,
    check_nothing_identifying,
    evaluate_data_requests,
    evaluate_service_notice,
    evaluate_terms,
)
from reference_buyer.ranking import OfferCandidate, RankedOffer, rank_offers
from reference_buyer.store import (
    ConsentRecord,
    DealRecord,
    ExitRecord,
    IdentityRecord,
    OfferRecord,
    PersonalDataStore,
    RelationshipRecord,
    SharingRecord,
    StoredMessage,
)
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.codec import decode, encode, new_message_id, timestamp
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    MAILBOX_PATH,
    POLL_AUTH_SCHEME,
    PROBLEM_MEDIA_TYPE,
    make_poll_token,
    receipt_body,
)
from vrm_protocol.keys import (
    DID_JWK_PREFIX,
    KeySet,
    PairwiseIdentity,
    SigningKey,
    VerifyingKey,
    key_resolver,
)
from vrm_protocol.signing_profile import VerifiedJWS, verify_compact
from vrm_protocol.state_machine import Relationship, RelationshipState
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, PROTOCOL_VERSION, MessageType, Role

__all__ = [
    "ACCEPTANCE_CATEGORIES",
    "AttestationSource",
    "BuyerAgent",
    "Clock",
    "Decorrelation",
    "Delivery",
    "ExitCheck",
    "Inbound",
    "rank_offers",
    "verify_exit_acknowledgement",
]

#: How long the messages the agent signs stay valid (binding convention: one day).
MESSAGE_LIFETIME = timedelta(days=1)
#: Identity members of an acceptance and the data categories they disclose (spec §6.4).
ACCEPTANCE_CATEGORIES: Mapping[str, str] = {
    "name": "identity.name",
    "email": "contact.email",
    "phone": "contact.phone",
    "address": "contact.postal-address",
}
#: How often, at most, the agent re-reads its counterparties' keys on an unknown kid.
KEY_REFRESH_INTERVAL_SECONDS = 30.0
#: The audience of a message addressed to none of her pseudonyms: it never matches
#: anything, so the pipeline answers ``wrong-audience`` (spec §9.2).
NO_SUCH_PSEUDONYM = "urn:vrm:buyer-agent:no-such-pseudonym"
#: How long a spent delivery budget lasts: after this long without an attempt, the
#: relationship may cost attempts again (spec D6).
BUDGET_WINDOW_SECONDS = 600.0
#: Pauses between delivery attempts of one message (spec D6: a bounded retry budget).
RETRY_PAUSES_SECONDS = (0.2, 0.6)
#: The reasons an item is withheld, as the terms response states them.
NOT_BEFORE_ACCEPTANCE = (
    "identifying data is shared only with a party whose offer she has accepted (spec §12)"
)
NOT_COVERED = "not covered by terms of sharing she accepted with this party"

#: Given (subject pseudonym, audience party id), an attestation ``{kind, issuer, token}``.
AttestationSource = Callable[[str, str], Mapping[str, str]]


@dataclass
class Clock:
    """The agent's clock: real UTC time plus an offset the test driver may set (spec §14.3)."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        """Now, whole seconds (the wire carries no fractions that could correlate, spec §3.1)."""
        return datetime.now(UTC).replace(microsecond=0) + self.offset


def payload_of(token: bytes) -> dict[str, Any]:
    """The payload of a compact JWS, parsed without verification.

    Used only to read tokens the agent already verified and stored (the
    transcript of ``vrm demo``); nothing received is routed by it (spec D8).

    Raises:
        ValueError: the token has no readable JSON object payload.
    """
    try:
        segment = token.split(b".")[1]
        value = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (IndexError, binascii.Error, UnicodeDecodeError, RecursionError) as error:
        # RecursionError: absurd nesting, refused properly by the pipeline's limits.
        raise ValueError(f"not a compact JWS: {error}") from error
    if not isinstance(value, dict):
        raise ValueError("the payload is not a JSON object")
    return value


def _refusal_of(
    counterparty: str, status: int, content_type: str, answer: bytes
) -> RemoteProtocolError:
    """The error a counterparty's problem details name (``internal-error`` when unreadable)."""
    code, detail = ErrorCode.INTERNAL_ERROR, answer[:300].decode(errors="replace")
    if content_type.startswith(PROBLEM_MEDIA_TYPE):
        try:
            problem = json.loads(answer)
            code = ErrorCode(problem.get("code"))
            detail = str(problem.get("detail", detail))
        except (ValueError, TypeError, AttributeError, RecursionError):
            pass
    return RemoteProtocolError(code, f"{counterparty} refused the message ({status}): {detail}")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` parsed as a JSON object (bounded already; spec D7).

    Raises:
        LocalProtocolError: ``TEMPORARILY_UNAVAILABLE`` when it is not one.
    """
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise LocalProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE, f"{what} is not JSON: {error}"
        ) from error
    if not isinstance(value, dict):
        raise LocalProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, f"{what} is not a JSON object")
    return value


def message_ref(message: StoredMessage) -> dict[str, str]:
    """A ``messageRef`` binding a reply to the exact bytes of ``message`` (spec §5.2).

    Raises:
        LocalProtocolError: ``UNKNOWN_OFFER`` when the message has no signed
            bytes to bind to (a paper answer).
    """
    if message.digest is None:
        raise LocalProtocolError(
            ErrorCode.UNKNOWN_OFFER,
            f"{message.message_id} arrived on paper: there are no signed bytes to refer to",
        )
    return {"id": message.message_id, "digest": message.digest}


@dataclass(frozen=True, slots=True)
class Decorrelation:
    """How far the agent decorrelates messages that go to several parties at once
    (spec §12, VRM-PRIV-014): copies of one RFI or RFP, and the declines sent
    when an offer is accepted.

    Each copy waits a random pause of up to ``spread_seconds`` before it is
    composed and sent, and its ``created`` is set back by its own random whole
    number of seconds below ``backdate_seconds`` (distinct for every copy), so
    that neither the clock on the wire nor the moment of arrival pairs them.
    Tests and the demo set ``spread_seconds`` to 0 to stay fast; the copies'
    ``created`` still differ.
    """

    spread_seconds: float = 2.0
    backdate_seconds: int = 30

    def offsets(self, count: int, rng: random.Random) -> list[int]:
        """``count`` distinct backdating offsets in seconds, in random order."""
        window = max(self.backdate_seconds, count)
        return rng.sample(range(window), count)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message the agent sent: what was stored, and the counterparty's receipt."""

    message: StoredMessage
    receipt: bytes | None


@dataclass(frozen=True, slots=True)
class Inbound:
    """The outcome of receiving one message: HTTP status and the receipt bytes."""

    status: int
    receipt: bytes
    message: StoredMessage


@dataclass(frozen=True, slots=True)
class ExitCheck:
    """How an exit acknowledgement's export and deletion receipt checked out."""

    verified: bool
    problems: tuple[str, ...]
    shared: tuple[str, ...]
    deleted: tuple[str, ...]


def verify_exit_acknowledgement(
    body: Mapping[str, Any],
    *,
    notice: StoredMessage,
    our_id: str,
    shared_categories: Iterable[str],
) -> ExitCheck:
    """Check an exit acknowledgement against what the individual shared (spec §6.14).

    Every category the sharing log says was disclosed must be listed as deleted
    or as retained with a basis; the receipt must be about our pseudonym and
    acknowledge our notice's exact bytes; the export's digest must match its
    data.  Pure.
    """
    problems: list[str] = []
    acknowledged = body.get("notice")
    if not isinstance(acknowledged, Mapping) or acknowledged != {
        "id": notice.message_id,
        "digest": notice.digest,
    }:
        problems.append("the acknowledgement does not bind our exit notice's exact bytes")
    receipt = body.get("deletionReceipt")
    receipt = receipt if isinstance(receipt, Mapping) else {}
    if receipt.get("relationship") != our_id:
        problems.append(f"the deletion receipt is about {receipt.get('relationship')}, not us")
    deleted = tuple(str(item) for item in receipt.get("deleted") or [])
    retained = {
        str(item.get("item")): item
        for item in receipt.get("retained") or []
        if isinstance(item, Mapping)
    }
    shared = tuple(sorted(set(shared_categories)))
    for category in shared:
        if category in deleted:
            continue
        kept = retained.get(category)
        if kept is not None and kept.get("basis"):
            continue
        problems.append(f"{category} was shared but is neither deleted nor retained with a basis")
    export = body.get("export")
    if isinstance(export, Mapping):
        data = export.get("data")
        try:
            expected = message_digest(canonical_json(data))
        except (ProtocolError, TypeError, ValueError):
            expected = None
        if expected is None or export.get("digest") != expected:
            problems.append("the export's digest does not match its data")
    elif notice.payload.get("body", {}).get("export", {}).get("requested"):
        problems.append("an export was requested but none was given")
    return ExitCheck(not problems, tuple(problems), shared, deleted)


class BuyerAgent:
    """The individual's agent (see the module docstring).

    The agent owns its HTTP client: every connection it makes passes its
    :class:`~reference_buyer.net.DeliveryPolicy` (spec D6), and every fetch is
    bounded (spec D7). Close it with :meth:`close`.
    """

    def __init__(
        self,
        store: PersonalDataStore,
        policy: SharingPolicy,
        *,
        clock: Clock | None = None,
        inbox_url: str | None = None,
        ability_to_pay: AttestationSource | None = None,
        letters_dir: Path | None = None,
        reply_address: Sequence[str] = ("VRM reply service", "PO Box 1", "London", "EC1A 1AA"),
        faults: frozenset[str] = frozenset(),
        delivery: DeliveryPolicy | None = None,
        decorrelation: Decorrelation | None = None,
        fetch_timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self.store = store
        #: Fault switches (test mode only, see :mod:`reference_buyer.faults`).
        self.faults = faults
        self.policy = policy
        self.clock = clock or Clock()
        #: Where counterparties POST replies (``replyTo``, followed by the random
        #: segment of each relationship); ``None``: they use their mailbox and the
        #: agent polls it (spec §11.4).
        self.inbox_url = inbox_url
        self.ability_to_pay = ability_to_pay
        self.letters_dir = letters_dir or store.data_dir / "letters"
        self.reply_address = tuple(reply_address)
        #: Where the agent may connect (spec D6); the default allows no loopback.
        self.delivery = delivery or DeliveryPolicy()
        #: How copies to several parties are decorrelated (spec §12).
        self.decorrelation = decorrelation or Decorrelation()
        #: The time bound of every fetch (spec D7).
        self.fetch_timeout = fetch_timeout
        #: Called with the sender of every message that passed verification, before
        #: anything is stored: per-sender rate limits are charged here (spec D8),
        #: never on unverified bytes. It raises to refuse.
        self.after_verification: Callable[[str], None] | None = None
        #: Party id used in discovery and as the audience of messages for none of our pseudonyms.
        self.agent_id: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._arrivals = asyncio.Condition()
        self._keys_cache = KeyCache()
        self._last_key_refresh = -KEY_REFRESH_INTERVAL_SECONDS
        #: Per counterparty: consecutive failed delivery attempts, and when the last was.
        self._failed_attempts: dict[str, tuple[int, float]] = {}
        self._rng = random.SystemRandom()

    async def http(self) -> aiohttp.ClientSession:
        """The agent's HTTP client (made on first use, inside the running loop)."""
        if self._http is None or self._http.closed:
            self._http = client_session(self.delivery)
        return self._http

    async def close(self) -> None:
        """Close the HTTP client (the store is the caller's to close)."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _fetch(self, url: str, *, max_bytes: int) -> bytes:
        """GET ``url`` under the bounds of spec D7.

        Raises:
            LocalProtocolError: ``TEMPORARILY_UNAVAILABLE`` naming the bound broken.
        """
        try:
            return await fetch_bounded(
                await self.http(),
                self.delivery,
                url,
                max_bytes=max_bytes,
                time_bound=self.fetch_timeout,
            )
        except (DeliveryRefused, FetchRefused) as error:
            raise LocalProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, str(error)) from error

    # -- identities, counterparties, keys ----------------------------------------------------------

    def identity_for(self, counterparty: str) -> IdentityRecord:
        """The pseudonym used with ``counterparty``; a fresh one on first contact (spec §3.1).

        Each counterparty gets its own key pair and identifier, so two vendors
        comparing notes find nothing in common.
        """
        record = self.store.identity_for(counterparty)
        if record is None:
            record = self.store.create_identity(
                counterparty, PairwiseIdentity.generate(), now=self.clock.now()
            )
        return record

    async def discover(self, party_url: str) -> dict[str, Any]:
        """Fetch and remember a counterparty's discovery document and keys (spec §11.1-2).

        Only parties the individual chose to contact are fetched; nothing named
        by an inbound message ever is (spec §13: no URL from a message is
        fetched). What the party publishes is untrusted (spec D7, VRM-BUY-012):
        each fetch is bounded in size and time and follows no redirect, every
        endpoint must be on the party's own origin, and a key set of more than
        16 keys, or with a key the library refuses, is refused whole.

        Raises:
            LocalProtocolError: ``TEMPORARILY_UNAVAILABLE`` when the party does not
                answer within the bounds, or its document names another id or an
                endpoint on another origin, or its key set is refused.
        """
        base = party_url.rstrip("/")
        document = _json_object(
            await self._fetch(base + DISCOVERY_PATH, max_bytes=DISCOVERY_MAX_BYTES),
            f"{base}'s discovery document",
        )
        endpoints = document.get("endpoints")
        if str(document.get("id", "")).rstrip("/") != base or not isinstance(endpoints, dict):
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                f"{base}'s discovery document names another party, or no endpoints",
            )
        for name in ("inbox", "jwks", "mailbox"):
            url = endpoints.get(name)
            # Spec D7: an endpoint elsewhere would let the party aim her agent's
            # signed messages and polls at any address it likes.
            optional = name == "mailbox" and url is None
            if not optional and (not isinstance(url, str) or not same_origin(url, base)):
                raise LocalProtocolError(
                    ErrorCode.TEMPORARILY_UNAVAILABLE,
                    f"{base}'s discovery document puts its {name} on another origin: {url!r}",
                )
        jwks = await self._fetch_jwks(base, str(endpoints["jwks"]))
        self.store.save_counterparty(base, document, jwks, now=self.clock.now())
        self._keys_cache.drop([base])
        return dict(document)

    async def _fetch_jwks(self, party: str, url: str) -> dict[str, Any]:
        """Fetch and check a party's JWKS (spec D7: 64 KiB, 16 keys, refused whole).

        Raises:
            LocalProtocolError: ``TEMPORARILY_UNAVAILABLE``.
        """
        jwks = _json_object(await self._fetch(url, max_bytes=JWKS_MAX_BYTES), f"{party}'s JWKS")
        keys = jwks.get("keys")
        if not isinstance(keys, list) or len(keys) > JWKS_MAX_KEYS:
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                f"{party}'s JWKS must list at most {JWKS_MAX_KEYS} keys",
            )
        try:
            KeySet.from_jwks(jwks)  # refuse unusable keys now, not when a message arrives
        except (ProtocolError, TypeError, ValueError) as error:
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{party}'s JWKS is refused: {error}"
            ) from error
        return jwks

    def _party_keys(self, party: str) -> KeySet:
        """The keys ``party`` published, from the bounded cache (spec D7) or the store."""
        now = time.monotonic()
        keys = self._keys_cache.get(party, now=now)
        if keys is None:
            known = self.store.counterparty(party) if party else None
            keys = KeySet()
            if known is not None:
                with contextlib.suppress(ProtocolError, TypeError, ValueError):
                    keys = KeySet.from_jwks(known["jwks"])
            self._keys_cache.put(party, keys, now=now)
        return keys

    def _resolver(self, missing: list[str]) -> Callable[[str], VerifyingKey]:
        """A key resolver over the keys of every party she contacted.

        A ``did:jwk`` kid resolves from itself. Another kid is looked up among
        the published keys of the parties she contacted (strangers' keys are
        never fetched, spec §13): enough to verify the signature and read the
        message's routing from verified bytes. The full pipeline then runs
        again with the claimed sender's keys only (:meth:`receive`). An unknown
        kid is appended to ``missing``, so the caller may refresh keys (rotation).
        """

        def resolve(kid: str) -> VerifyingKey:
            if kid.startswith(DID_JWK_PREFIX):
                return key_resolver(None)(kid)
            for party in self.store.counterparties():
                keys = self._party_keys(party)
                if kid in keys:
                    return keys.get(kid)
            missing.append(kid)
            raise RemoteProtocolError(
                ErrorCode.UNKNOWN_KEY, f"no party she contacted has kid {kid!r}"
            )

        return resolve

    async def _refresh_keys_for_unknown(self) -> bool:
        """Re-read the keys of the parties she deals with, after an unknown kid (rotation).

        Only parties already in a relationship are asked, and at most every
        :data:`KEY_REFRESH_INTERVAL_SECONDS`, so a stranger cannot make the agent
        fetch anything or flood a vendor with key requests. Whether anything was
        refreshed.
        """
        if time.monotonic() - self._last_key_refresh < KEY_REFRESH_INTERVAL_SECONDS:
            return False
        self._last_key_refresh = time.monotonic()
        for party in [r.counterparty for r in self.store.relationships()]:
            known = self.store.counterparty(party)
            if known is None:
                continue
            try:
                jwks = await self._fetch_jwks(party, str(known["discovery"]["endpoints"]["jwks"]))
            except (LocalProtocolError, KeyError, TypeError):
                continue
            self.store.save_counterparty(party, known["discovery"], jwks, now=self.clock.now())
            self._keys_cache.drop([party])
        return True

    # -- relationships ---------------------------------------------------------------------------

    def relationship(self, counterparty: str) -> Relationship:
        """The state machine of the relationship with ``counterparty`` (restored from the store)."""
        record = self.store.relationship(counterparty)
        if record is not None:
            return Relationship.restore(record.snapshot)
        identity = self.identity_for(counterparty)
        return Relationship(Role.BUYER, identity.identifier, counterparty)

    def _save_relationship(self, counterparty: str, relationship: Relationship) -> None:
        self.store.save_relationship(
            RelationshipRecord(
                counterparty,
                relationship.our_id,
                relationship.state.value,
                relationship.snapshot(),
                timestamp(self.clock.now()),
            )
        )

    # -- sending ---------------------------------------------------------------------------------

    def compose(
        self,
        counterparty: str,
        message_type: MessageType,
        body: Mapping[str, Any],
        *,
        thread: str | None = None,
        parent: str | None = None,
        backdate: int = 0,
    ) -> dict[str, Any]:
        """A complete message from our pseudonym for ``counterparty`` to it (spec §5).

        ``backdate`` sets ``created`` that many seconds before now: one copy of
        a message sent to several parties is decorrelated from the others by it
        (spec §12); its lifetime runs from ``created``.
        """
        identity = self.identity_for(counterparty)
        now = self.clock.now() - timedelta(seconds=backdate)
        message_id = new_message_id()
        payload: dict[str, Any] = {
            "vrm": PROTOCOL_VERSION,
            "type": str(message_type),
            "id": message_id,
            "thread": thread or message_id,
            "from": identity.identifier,
            "to": [counterparty],
            "created": timestamp(now),
            "expires": timestamp(now + MESSAGE_LIFETIME),
            "body": dict(body),
        }
        if parent is not None:
            payload["parent"] = parent
        if self.inbox_url is not None:
            # Spec §12 (VRM-PRIV-013): a reply address of its own per relationship,
            # ending in a random segment nobody can compute from the pseudonym, so
            # the address neither links two vendors' pseudonyms nor lets anyone
            # guess where to write as if to this relationship.
            tag = self.store.reply_tag(identity.identifier)
            payload["replyTo"] = {"inbox": f"{self.inbox_url.rstrip('/')}/{tag}"}
        return payload

    def _sign(self, payload: Mapping[str, Any], key: SigningKey) -> bytes:
        return encode(payload, key)

    async def send(
        self,
        counterparty: str,
        payload: Mapping[str, Any],
        *,
        channel: str = "http",
        on_commit: Callable[[StoredMessage], None] | None = None,
    ) -> Delivery:
        """Check, sign, store and deliver one message (spec §7, §8, §11.3).

        The state machine sees the message first (an illegal move is never
        signed); the signed bytes and the new state are committed before the
        POST, so a reply racing the receipt finds the relationship ready.  A
        rejection rolls the relationship back.  ``channel='letter'`` stores
        without delivering (the letter is printed instead).

        Raises:
            LocalProtocolError: the state machine refuses the move, or the
                message would not pass the schema.
            RemoteProtocolError: the counterparty refused the message (its code).
        """
        identity = self.identity_for(counterparty)
        # The relationship is read and written in one write transaction, so a
        # CLI command and the serving agent on the same store cannot interleave.
        async with self._lock:
            with self.store.transaction():
                relationship = self.relationship(counterparty)
                before = relationship.snapshot()
                # Judge the move on a copy first: an illegal message is never
                # even signed (a superseded, expired or indicative offer is not
                # accepted, spec §7.4).
                relationship.copy().send(payload, now=self.clock.now())
                token = self._sign(payload, identity.key)
                digest = message_digest(token)
                relationship.send(payload, now=self.clock.now(), digest=digest)
                stored = self.store.record_message(
                    direction="out",
                    channel=channel,
                    payload=payload,
                    counterparty=counterparty,
                    token=token,
                    digest=digest,
                    verified=True,
                    now=self.clock.now(),
                    delivery="pending" if channel == "http" else "printed",
                )
                self._save_relationship(counterparty, relationship)
                if on_commit is not None:
                    on_commit(stored)
        if channel != "http":
            return Delivery(stored, None)
        try:
            receipt = await self._deliver(counterparty, token, identity, stored)
        except RemoteProtocolError as refusal:
            async with self._lock:
                with self.store.transaction():
                    self._save_relationship(counterparty, Relationship.restore(before))
                    self.store.set_delivery(stored.message_id, f"refused:{refusal.code}", None)
            raise
        self.store.set_delivery(stored.message_id, "delivered", receipt)
        return Delivery(stored, receipt)

    async def _deliver(
        self, counterparty: str, token: bytes, identity: IdentityRecord, stored: StoredMessage
    ) -> bytes:
        """POST ``token`` to the counterparty's inbox and verify the receipt (spec §11.3).

        The inbox is the one its discovery document names on its own origin
        (spec D7); the POST follows the delivery policy (spec D6): no redirect
        is followed (a 3xx is a failed attempt), at most
        ``delivery.max_attempts`` attempts per message, and a relationship
        without a deal stops costing attempts after
        ``delivery.relationship_budget`` consecutive failures. An identical
        resend is answered with the first receipt, so retrying is safe.

        Raises:
            RemoteProtocolError: the counterparty refused (its problem code), did
                not answer, or answered with a receipt that does not verify or
                binds other bytes.
        """
        known = self.store.counterparty(counterparty)
        if known is None:
            await self.discover(counterparty)
            known = self.store.counterparty(counterparty)
        assert known is not None
        inbox = str(known["discovery"]["endpoints"]["inbox"])
        if not same_origin(inbox, counterparty):  # stored by an older version: refuse now
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{counterparty}'s inbox is on another origin"
            )
        failures, last = self._failed_attempts.get(counterparty, (0, 0.0))
        if time.monotonic() - last > BUDGET_WINDOW_SECONDS:
            failures = 0  # the budget is renewed once the peer has been left alone a while
        has_deal = self.relationship(counterparty).accepted_offer is not None
        if not has_deal and failures >= self.delivery.relationship_budget:
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                f"{counterparty} failed {failures} deliveries in a row: its budget is spent",
            )
        last_error = "no attempt"
        for attempt in range(self.delivery.max_attempts):
            if attempt:
                await asyncio.sleep(
                    RETRY_PAUSES_SECONDS[min(attempt, len(RETRY_PAUSES_SECONDS)) - 1]
                )
            refusal = self.delivery.refusal(inbox)
            if refusal is not None:
                self._failed_attempts[counterparty] = (failures + attempt + 1, time.monotonic())
                raise RemoteProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, refusal)
            try:
                async with asyncio.timeout(self.fetch_timeout * 2):
                    async with (await self.http()).post(
                        inbox,
                        data=token,
                        headers={"Content-Type": MESSAGE_MEDIA_TYPE},
                        allow_redirects=False,
                    ) as response:
                        status = response.status
                        content_type = response.headers.get("Content-Type", "")
                        answer = await read_bounded(response, RECEIPT_MAX_BYTES, inbox)
            except (TimeoutError, aiohttp.ClientError, OSError, FetchRefused) as error:
                last_error = f"{inbox} did not answer: {error}"
                continue
            if status in (200, 202):
                break
            if 300 <= status < 400 or status in (429, 503) or status >= 500:
                last_error = f"{inbox} answered {status}"
                continue
            self._failed_attempts.pop(counterparty, None)
            raise _refusal_of(counterparty, status, content_type, answer)
        else:
            self._failed_attempts[counterparty] = (
                failures + self.delivery.max_attempts,
                time.monotonic(),
            )
            raise RemoteProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, last_error)
        self._failed_attempts.pop(counterparty, None)
        receipt = answer.strip()
        try:
            received = decode(
                receipt,
                resolve_key=key_resolver(self._party_keys(counterparty)),
                receiver=identity.identifier,
                now=self.clock.now(),
            )
        except RemoteProtocolError as error:
            if (
                error.code is not ErrorCode.UNKNOWN_KEY
                or not await self._refresh_keys_for_unknown()
            ):
                raise
            received = decode(
                receipt,
                resolve_key=key_resolver(self._party_keys(counterparty)),
                receiver=identity.identifier,
                now=self.clock.now(),
            )
        regarding = received.payload.get("body", {}).get("regarding")
        if (
            received.payload.get("type") != MessageType.RECEIPT
            or received.payload.get("from") != counterparty
            or regarding != {"id": stored.message_id, "digest": stored.digest}
        ):
            raise RemoteProtocolError(
                ErrorCode.SCHEMA_INVALID,
                "the receipt is not the counterparty's receipt for the exact bytes sent",
            )
        return receipt

    # -- receiving -------------------------------------------------------------------------------

    async def receive(
        self, token: bytes, *, via: str = "inbox", reply_tag: str | None = None
    ) -> Inbound:
        """Run one inbound message through the receiving pipeline, the state
        machine, her guards and the store; answer with a signed receipt (spec
        §9, §11.3).

        Nothing of the message is read before the library's limit-checked
        pipeline has verified it (spec D8). Then, in order: the key must be one
        its sender publishes; it must be addressed to the pseudonym she uses
        with that sender, or it is answered exactly as a message for no
        pseudonym of hers (VRM-PRIV-012); it must belong to that relationship
        by thread and parent (VRM-BUY-008); the state machine must allow it; a
        deal confirmation must bind her offer and acceptance (VRM-BUY-009); a
        notice must be of a category she allowed that party (VRM-BUY-007).
        ``reply_tag`` is the random segment of the reply address it was POSTed
        to: only that relationship's messages are taken there. An identical
        resend is answered with the original receipt (status 200) and has no
        second effect.

        Raises:
            RemoteProtocolError: the message is refused (its code says why);
                nothing was stored.
            LocalProtocolError: ``TEMPORARILY_UNAVAILABLE`` when the store
                cannot write (spec D11); nothing was stored.
        """
        digest = message_digest(token)
        again = self.store.inbound_by_digest(digest)
        if again is not None and again.receipt is not None:
            return Inbound(200, again.receipt, again)
        verified = await self._verify_signature(token)
        claimed = verified.document or {}
        sender = str(claimed.get("from"))
        receiver = self._receiver_for(claimed, sender)
        if receiver is not None and reply_tag is not None:
            tagged = self.store.identity_by_reply_tag(reply_tag)
            if tagged is None or tagged.identifier != receiver.identifier:
                receiver = None  # another relationship's address: as for a stranger
        misaddressed = False
        if receiver is None and "ignore-audience" in self.faults:
            # FAULT: the message is taken as meant for the pseudonym its sender knows.
            receiver = self._identity_known_to(sender)
            misaddressed = receiver is not None
        # The whole pipeline, in its order (spec §8, VRM-ENV-015), with the keys of
        # the sender it claims only (spec §9.1) and, as audience, the pseudonym she
        # uses with that sender: for any other pseudonym (hers with someone else,
        # or nobody's) the answer is the same (spec §12, VRM-PRIV-012).
        resolve = key_resolver(self._party_keys(sender))
        if "accept-without-verifying" in self.faults:
            resolve = signature_not_checked(resolve)  # FAULT: signatures unchecked
        audience = (
            None if misaddressed else (receiver.identifier if receiver else NO_SUCH_PSEUDONYM)
        )
        oracle = None
        if receiver is None and "pseudonym-oracle" in self.faults:
            # FAULT: her pseudonym with another party is told from nobody's.
            oracle = next(
                (
                    record
                    for name in claimed.get("to") or []
                    if isinstance(name, str)
                    and (record := self.store.identity_by_identifier(name)) is not None
                ),
                None,
            )
            audience = oracle.identifier if oracle is not None else audience
        received = decode(
            token, resolve_key=resolve, receiver=audience, now=self.clock.now(), replay=self.store
        )
        if oracle is not None:
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT, "this pseudonym is not in a relationship with you"
            )
        assert receiver is not None  # decode refused anything addressed to none of ours
        payload = dict(received.payload)
        if self.after_verification is not None:
            self.after_verification(sender)
        async with self._lock:
            again = self.store.inbound_by_digest(digest)
            if again is not None and again.receipt is not None:
                return Inbound(200, again.receipt, again)
            counterparty = receiver.counterparty
            try:
                with self.store.transaction():
                    relationship = self.relationship(counterparty)
                    before = relationship.copy()
                    if "any-thread" not in self.faults:  # FAULT: participation unchecked
                        self._check_participation(payload, counterparty)
                    # spec §7.3: the sender must be the counterparty of this
                    # pseudonym (the machine raises not-a-participant otherwise).
                    # FAULT ignore-audience: the state machine is shown the message as if
                    # it named the pseudonym (it checks the audience too, spec §7.3).
                    seen = {**payload, "to": [receiver.identifier]} if misaddressed else payload
                    relationship.receive(seen, now=self.clock.now(), digest=digest)
                    if "unbound-deal" not in self.faults:  # FAULT: bindings unchecked
                        self._check_bindings(payload, before, counterparty)
                    if "any-notice" not in self.faults:  # FAULT: preferences unchecked
                        self._check_notice_preferences(payload, before, counterparty)
                    receipt = self._receipt(payload, digest, receiver)
                    stored = self.store.record_message(
                        direction="in",
                        channel=via,
                        payload=payload,
                        counterparty=counterparty,
                        token=token,
                        digest=digest,
                        verified=True,
                        now=self.clock.now(),
                        receipt=receipt,
                        delivery="received",
                    )
                    self._save_relationship(counterparty, relationship)
                    self._apply_inbound(stored, relationship)
            except sqlite3.IntegrityError as error:
                raise RemoteProtocolError(
                    ErrorCode.REPLAY, "this (sender, id) was already received", path="/id"
                ) from error
            except sqlite3.Error as error:
                # Spec D11: a store that cannot write (disk full, read-only,
                # locked) applies nothing; the sender retries later.
                raise LocalProtocolError(
                    ErrorCode.TEMPORARILY_UNAVAILABLE,
                    f"the personal data store cannot write now ({error}); nothing was applied",
                    extra={"retryAfter": 5},
                ) from error
        async with self._arrivals:
            self._arrivals.notify_all()
        return Inbound(202, receipt, stored)

    async def _verify_signature(self, token: bytes) -> VerifiedJWS:
        """The library's signing profile (limits, header, key, signature, canonical
        payload) with the keys of every party she contacted: what routes the
        message is read from verified bytes only, never peeked at (spec D8).

        Raises:
            RemoteProtocolError: the first stage that refused the token.
        """
        missing: list[str] = []
        resolve = self._resolver(missing)
        if "accept-without-verifying" in self.faults:
            resolve = signature_not_checked(resolve)  # FAULT: signatures unchecked
        try:
            return verify_compact(token, resolve_key=resolve)
        except RemoteProtocolError as error:
            # A known party may have rotated its keys: re-read them (bounded), once.
            if not (missing and error.code is ErrorCode.UNKNOWN_KEY):
                raise
            if not await self._refresh_keys_for_unknown():
                raise
            return verify_compact(token, resolve_key=resolve)

    def _receiver_for(self, payload: Mapping[str, Any], sender: str) -> IdentityRecord | None:
        """The pseudonym she uses with ``sender``, if the message is addressed to it."""
        identity = self.store.identity_for(sender)
        recipients = payload.get("to")
        if identity is None or not isinstance(recipients, list):
            return None
        return identity if identity.identifier in recipients else None

    def _identity_known_to(self, counterparty: str) -> IdentityRecord | None:
        """The pseudonym already used with ``counterparty``, if any (never a new one)."""
        return self.store.identity_for(counterparty)

    def _check_participation(self, payload: Mapping[str, Any], counterparty: str) -> None:
        """Refuse a message that belongs to another relationship (spec §7, VRM-BUY-008).

        Its thread must be one of this relationship's (vendors write only in
        threads she started with them); its parent, when she holds it, must
        be a message of this relationship and of the same thread.

        Raises:
            RemoteProtocolError: ``NOT_A_PARTICIPANT``.
        """
        thread = str(payload.get("thread"))
        if not self.store.has_thread(counterparty, thread):
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT,
                "the thread is not one she started with this party",
                path="/thread",
            )
        parent = payload.get("parent")
        if isinstance(parent, str):
            held = self.store.message(parent)
            if held is not None and (held.counterparty != counterparty or held.thread != thread):
                raise RemoteProtocolError(
                    ErrorCode.NOT_A_PARTICIPANT,
                    "the parent is a message of another relationship or thread",
                    path="/parent",
                )

    def _check_bindings(
        self, payload: Mapping[str, Any], before: Relationship, counterparty: str
    ) -> None:
        """A deal confirmation must name exactly the offer she accepted, by the
        digest of the bytes she received, and her acceptance (spec §6.6,
        VRM-BUY-009). The state machine has already checked the offer's id.

        Raises:
            RemoteProtocolError: ``REFERENCE_MISMATCH``.
        """
        if payload.get("type") != MessageType.DEAL_CONFIRMATION:
            return
        deal = payload.get("body", {}).get("deal", {})
        accepted = before.accepted_offer
        record = before.offers.get(accepted) if accepted is not None else None
        named = deal.get("offer") if isinstance(deal, Mapping) else None
        if record is None or not isinstance(named, Mapping):
            return
        if named.get("digest") != record.digest:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                f"the deal names offer {accepted} with a digest other than that of the bytes "
                "she accepted",
                path="/body/deal/offer/digest",
            )
        acceptances = [
            m.message_id
            for m in self.store.messages(
                counterparty=counterparty, type=str(MessageType.OFFER_ACCEPTANCE)
            )
            if m.direction == "out"
            and m.payload.get("body", {}).get("offer", {}).get("id") == accepted
        ]
        if not acceptances or deal.get("acceptance") != acceptances[-1]:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                "the deal names an acceptance she did not send for this offer",
                path="/body/deal/acceptance",
            )

    def notification_preferences(self, counterparty: str) -> tuple[str, ...]:
        """The notification categories she allowed ``counterparty``: those of her
        latest terms response it received (none before one)."""
        for consent in reversed(self.store.consents(counterparty)):
            response = self.store.message(consent.response_id)
            if response is not None and not response.delivery.startswith("refused"):
                return tuple(consent.notifications)
        return ()

    def _check_notice_preferences(
        self, payload: Mapping[str, Any], before: Relationship, counterparty: str
    ) -> None:
        """A service notice must be of a category she allowed that party (spec
        §6.9, VRM-BUY-007). After an exit the state machine has judged it by her
        re-engagement preferences instead.

        Raises:
            RemoteProtocolError: ``NOT_ACCEPTED_BY_TERMS``.
        """
        if payload.get("type") != MessageType.SERVICE_NOTICE:
            return
        if before.state is RelationshipState.EXITED:
            return
        category = payload.get("body", {}).get("category")
        allowed = self.notification_preferences(counterparty)
        if category not in allowed:
            raise RemoteProtocolError(
                ErrorCode.NOT_ACCEPTED_BY_TERMS,
                f"she allows this party notices of {list(allowed)} only, not {category!r}",
                path="/body/category",
            )

    def _receipt(self, payload: Mapping[str, Any], digest: str, receiver: IdentityRecord) -> bytes:
        now = self.clock.now()
        receipt = {
            "vrm": PROTOCOL_VERSION,
            "type": str(MessageType.RECEIPT),
            "id": new_message_id(),
            "thread": payload.get("thread") or payload["id"],
            "parent": payload["id"],
            "from": receiver.identifier,
            "to": [payload["from"]],
            "created": timestamp(now),
            "expires": timestamp(now + MESSAGE_LIFETIME),
            "body": receipt_body({"id": payload["id"], "digest": digest}, now=now),
        }
        return self._sign(receipt, receiver.key)

    def _apply_inbound(self, stored: StoredMessage, relationship: Relationship) -> None:
        """Update offers, deals and exits from a message just received (same commit)."""
        body = stored.payload.get("body", {})
        kind = stored.type
        if kind == MessageType.OFFER:
            supersedes = body.get("supersedes")
            if isinstance(supersedes, str):
                self.store.set_offer_status(supersedes, "superseded")
            self.store.save_offer(
                OfferRecord(
                    stored.message_id,
                    stored.counterparty,
                    stored.thread,
                    stored.digest,
                    str(body.get("basis")),
                    "open",
                    stored.verified,
                    body,
                    stored.stored_at,
                    "in",
                )
            )
        elif kind == MessageType.DEAL_CONFIRMATION:
            deal = body.get("deal", {})
            offer_id = str(deal.get("offer", {}).get("id"))
            self.store.set_offer_status(offer_id, "accepted")
            self.store.save_deal(
                DealRecord(
                    str(deal.get("id")),
                    stored.counterparty,
                    offer_id,
                    str(deal.get("acceptance")),
                    body,
                    stored.stored_at,
                )
            )
        elif kind == MessageType.EXIT_ACKNOWLEDGEMENT:
            notice_id = str(body.get("notice", {}).get("id"))
            notice = self.store.message(notice_id)
            if notice is None:
                return
            check = verify_exit_acknowledgement(
                body,
                notice=notice,
                our_id=relationship.our_id,
                shared_categories=[r.category for r in self.store.shared_with(stored.counterparty)],
            )
            self.store.record_exit_acknowledgement(
                notice_id,
                ack_id=stored.message_id,
                deletion_receipt=body.get("deletionReceipt", {}),
                verified=check.verified,
                problems=check.problems,
            )

    async def wait_for(
        self, predicate: Callable[[StoredMessage], bool], *, within: float = 10.0
    ) -> StoredMessage:
        """The first stored inbound message matching ``predicate``, waiting for it if need be.

        Raises:
            TimeoutError: nothing matched within ``within`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with self._arrivals:
            while True:
                for message in self.store.messages():
                    if message.direction == "in" and predicate(message):
                        return message
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError("the expected message did not arrive")
                try:
                    await asyncio.wait_for(self._arrivals.wait(), remaining)
                except TimeoutError:
                    continue

    async def poll_mailbox(self, counterparty: str) -> list[Inbound]:
        """Collect what waits for her in ``counterparty``'s mailbox (spec §11.4, D5).

        Every party keeps what it sends her in its mailbox until it expires, so
        this also finds replies that were POSTed to a reply address of hers
        that no longer answers (an agent restarted on another port). The
        mailbox is the one the party's discovery document names on its own
        origin (spec D7); the page is read within bounds; the cursor is kept
        in the store, so a restart does not fetch everything again. Each
        message goes through :meth:`receive`; refused ones are skipped (they
        changed nothing).

        Raises:
            RemoteProtocolError: ``TEMPORARILY_UNAVAILABLE`` when the mailbox
                cannot be polled.
        """
        known = self.store.counterparty(counterparty) or {}
        url = known.get("discovery", {}).get("endpoints", {}).get("mailbox")
        if not isinstance(url, str):
            url = counterparty.rstrip("/") + MAILBOX_PATH
        if not same_origin(url, counterparty):
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{counterparty}'s mailbox is on another origin"
            )
        identity = self.identity_for(counterparty)
        cursor = self.store.mailbox_cursor(counterparty)
        token = make_poll_token(
            identity.key,
            poller=identity.identifier,
            mailbox_owner=counterparty,
            after=cursor,
            now=self.clock.now(),
        )
        try:
            page = await fetch_bounded(
                await self.http(),
                self.delivery,
                f"{url}?after={cursor}",
                max_bytes=MAILBOX_PAGE_MAX_BYTES,
                time_bound=self.fetch_timeout,
                headers={"Authorization": f"{POLL_AUTH_SCHEME} {token.decode('ascii')}"},
            )
            document = json.loads(page)
        except (DeliveryRefused, FetchRefused, ValueError, RecursionError) as error:
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{url} could not be polled: {error}"
            ) from error
        if not isinstance(document, dict):
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{url} answered no mailbox page"
            )
        received: list[Inbound] = []
        for item in document.get("messages") or []:
            if not isinstance(item, str):
                continue
            try:
                received.append(
                    await self.receive(item.encode("ascii", errors="replace"), via="mailbox")
                )
            except ProtocolError:
                continue
        next_index = document.get("next")
        if isinstance(next_index, int) and not isinstance(next_index, bool) and next_index >= 0:
            self.store.set_mailbox_cursor(counterparty, next_index)
        return received

    def awaiting(self) -> list[str]:
        """The counterparties she may be waiting for: every relationship not
        closed or exited (spec D5: these mailboxes are polled)."""
        return [
            record.counterparty
            for record in self.store.relationships()
            if record.state not in (RelationshipState.EXITED.value, RelationshipState.CLOSED.value)
        ]

    async def poll_all(self) -> int:
        """Poll the mailbox of every counterparty she may be waiting for, once;
        how many messages were taken. A counterparty that cannot be reached is
        skipped (tried again next time)."""
        taken = 0
        for counterparty in self.awaiting():
            with contextlib.suppress(ProtocolError):
                taken += sum(1 for i in await self.poll_mailbox(counterparty) if i.status == 202)
        return taken

    async def poll_forever(self, *, interval: float = 1.0) -> None:
        """Poll the mailboxes of her counterparties at once, then every
        ``interval`` seconds, until cancelled (spec D5: after a restart, and
        while she waits for answers, replies in flight are fetched)."""
        while True:
            await self.poll_all()
            await asyncio.sleep(interval)

    # -- the lifecycle, the individual's side ----------------------------------------------------

    async def send_rfis(
        self, vendors: Sequence[str], body: Mapping[str, Any], *, attest: bool = True
    ) -> dict[str, Delivery]:
        """Step 1 (search): the same intentcast to many vendors at once, each under
        its own pseudonym, in its own thread (spec §6.1, §3.1).

        An ability-to-pay attestation, when the agent has a source and
        ``attest`` is true, is issued per pseudonym (its ``sub``), so even the
        credentials differ.

        Raises:
            LocalProtocolError: the body identifies the individual, or a vendor
                cannot be reached.
            RemoteProtocolError: a vendor refused its RFI.
        """
        check_nothing_identifying(body)
        offsets = self.decorrelation.offsets(len(vendors), self._rng)

        async def one(vendor: str, backdate: int) -> tuple[str, Delivery]:
            await self._pause()
            await self.discover(vendor)
            vendor_body = dict(body)
            if attest and self.ability_to_pay is not None and "attestations" not in vendor_body:
                vendor_body["attestations"] = [self._attestation_for(vendor)]
            existing = self.store.relationship(vendor)
            if existing is not None and existing.state == "exited" and "history" not in body:
                # Re-engagement (spec §7.5): she comes back with the history she kept.
                vendor_body["history"] = self.history_refs(vendor)
            payload = self.compose(vendor, MessageType.PERSONAL_RFI, vendor_body, backdate=backdate)
            return vendor, await self.send(vendor, payload)

        results = await asyncio.gather(
            *(one(vendor, offset) for vendor, offset in zip(vendors, offsets, strict=True))
        )
        return dict(results)

    async def _pause(self) -> None:
        """A random pause before one copy of a message sent to several parties
        (spec §12: copies are not sent in the same instant)."""
        if self.decorrelation.spread_seconds > 0:
            await asyncio.sleep(self._rng.uniform(0, self.decorrelation.spread_seconds))

    def _attestation_for(self, vendor: str) -> dict[str, str]:
        assert self.ability_to_pay is not None
        identity = self.identity_for(vendor)
        attestation = dict(self.ability_to_pay(identity.identifier, vendor))
        self.store.add_credential(
            kind=attestation["kind"],
            issuer=attestation["issuer"],
            subject=identity.identifier,
            token=attestation["token"],
            now=self.clock.now(),
        )
        return attestation

    def _latest(self, counterparty: str, message_type: MessageType) -> StoredMessage | None:
        found = self.store.messages(counterparty=counterparty, type=str(message_type))
        return found[-1] if found else None

    async def send_rfp(
        self,
        vendors: Sequence[str],
        body: Mapping[str, Any],
        *,
        postal: Sequence[PostalRecipient] = (),
        approver: str | Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Delivery], dict[str, Letter]]:
        """Step 2 (engage): one personal RFP to several vendors (spec §6.2).

        ``recipientCount`` tells each how many received it, but each online
        vendor gets its own copy signed under its own pseudonym, continuing the
        thread of its RFI and naming the offer it follows, at its own random
        moment with its own ``created`` (spec §12).  A vendor reached by post
        gets the same kind of signed message, rendered as a letter.

        ``approver`` names the co-decision-maker who must approve the deal:
        his own party id (per vendor, as a mapping, when there are several:
        one id in every copy would link them, VRM-PRIV-002). Her agent never
        holds his key nor signs for him (VRM-BUY-011): his approval must come
        from him (:meth:`accept` takes it).

        Raises:
            LocalProtocolError: the body identifies the individual, the move is
                illegal, or one approver id is given for several vendors.
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
        offsets = iter(self.decorrelation.offsets(count, self._rng))

        def build(vendor: str) -> dict[str, Any]:
            vendor_body = {**body, "recipientCount": count}
            offer = self._latest(vendor, MessageType.OFFER)
            rfi = self._latest(vendor, MessageType.PERSONAL_RFI)
            thread = rfi.thread if rfi is not None else None
            parent = offer.message_id if offer is not None else None
            if offer is not None and offer.digest is not None:
                vendor_body["inResponseTo"] = [message_ref(offer)]
            if self.ability_to_pay is not None and "attestations" not in vendor_body:
                vendor_body["attestations"] = [self._attestation_for(vendor)]
            if vendor in approvers:
                conditions = list(vendor_body.get("conditions", []))
                conditions.append(
                    {
                        "kind": "approval-required",
                        "description": "My partner approves the deal before I accept it.",
                        "party": approvers[vendor],
                    }
                )
                vendor_body["conditions"] = conditions
            return self.compose(
                vendor,
                MessageType.PERSONAL_RFP,
                vendor_body,
                thread=thread,
                parent=parent,
                backdate=next(offsets),
            )

        async def online(vendor: str) -> tuple[str, Delivery]:
            await self._pause()
            if self.store.counterparty(vendor) is None:
                await self.discover(vendor)
            return vendor, await self.send(vendor, build(vendor))

        deliveries = dict(await asyncio.gather(*(online(vendor) for vendor in vendors)))
        letters: dict[str, Letter] = {}
        for recipient in postal:
            payload = build(recipient.party_id)
            delivery = await self.send(recipient.party_id, payload, channel="letter")
            assert delivery.message.token is not None
            letter = render_letter(
                payload,
                delivery.message.token,
                recipient=recipient,
                reply_address=self.reply_address,
                date=self.clock.now().date().isoformat(),
            )
            write_letter(letter, self.letters_dir, _slug(recipient.name))
            letters[recipient.party_id] = letter
        return deliveries, letters

    def enter_paper_answer(
        self, counterparty: str, body: Mapping[str, Any], *, in_reply_to: str
    ) -> StoredMessage:
        """Record an offer that came by post, typed in by the individual (seed 000 step 3).

        It is stored as an offer marked unsigned (``channel='paper'``,
        ``verified`` false) in the thread of the letter it answers; it ranks
        beside the signed offers but cannot be accepted electronically.

        Raises:
            LocalProtocolError: ``UNKNOWN_OFFER`` when ``in_reply_to`` is not a
                letter sent to ``counterparty``; ``SCHEMA_INVALID`` when the
                typed-in offer would not be a valid message.
        """
        letter = self.store.message(in_reply_to)
        if letter is None or letter.counterparty != counterparty or letter.channel != "letter":
            raise LocalProtocolError(
                ErrorCode.UNKNOWN_OFFER, f"no letter {in_reply_to} was sent to {counterparty}"
            )
        now = self.clock.now()
        payload = {
            "vrm": PROTOCOL_VERSION,
            "type": str(MessageType.OFFER),
            "id": new_message_id(),
            "thread": letter.thread,
            "parent": letter.message_id,
            "from": counterparty,
            "to": [letter.sender],
            "created": timestamp(now),
            "expires": timestamp(now + MESSAGE_LIFETIME),
            "body": dict(body),
        }
        try:
            from vrm_protocol.schema_registry import default_registry

            default_registry().validate_message(payload)
        except ProtocolError as error:
            raise LocalProtocolError(error.code, error.detail, path=error.path) from error
        with self.store.transaction():
            stored = self.store.record_message(
                direction="in",
                channel="paper",
                payload=payload,
                counterparty=counterparty,
                token=None,
                digest=None,
                verified=False,
                now=now,
                delivery="typed-in",
            )
            self.store.save_offer(
                OfferRecord(
                    stored.message_id,
                    counterparty,
                    stored.thread,
                    None,
                    str(body.get("basis")),
                    "open",
                    False,
                    body,
                    stored.stored_at,
                    "in",
                )
            )
        return stored

    def ranked_offers(self, *, financing_wanted: bool = True) -> list[RankedOffer]:
        """Every open offer received, cheapest total cost first (paper ones included)."""
        return rank_offers(
            [
                OfferCandidate(o.offer_id, o.counterparty, o.body, open=o.status == "open")
                for o in self.store.offers()
            ],
            now=self.clock.now(),
            financing_wanted=financing_wanted,
        )

    async def counter(self, offer_id: str, total: Decimal | str) -> Delivery:
        """Step 3 (negotiate): a counter-offer at ``total``, superseding the
        vendor's offer (spec §6.3).

        Raises:
            LocalProtocolError: the offer is unknown, closed or superseded.
            RemoteProtocolError: the vendor refused the counter-offer.
        """
        offer = self._offer_message(offer_id)
        body = offer.payload["body"]
        price = body["price"]
        currency = price["total"]["currency"]
        wanted = Decimal(str(total))
        allowance = Decimal(price.get("tradeInAllowance", {}).get("amount", "0"))
        subtotal = Decimal(price["subtotal"]["amount"])
        counter_price: dict[str, Any] = {"subtotal": price["subtotal"]}
        if "tradeInAllowance" in price:
            counter_price["tradeInAllowance"] = price["tradeInAllowance"]
        discount = subtotal - allowance - wanted
        if discount > 0:
            counter_price["discount"] = {"amount": _decimal(discount), "currency": currency}
        counter_price["total"] = {"amount": _decimal(wanted), "currency": currency}
        counter_body: dict[str, Any] = {
            name: value
            for name, value in body.items()
            if name
            in {"items", "options", "tradeIn", "delivery", "conditions", "terms", "financing"}
        }
        counter_body.update(
            {
                "basis": "counter",
                "supersedes": offer_id,
                "validUntil": timestamp(self.clock.now() + timedelta(days=2)),
                "price": counter_price,
                "inResponseTo": message_ref(offer),
            }
        )
        counter_body.pop("financing", None)
        payload = self.compose(
            offer.counterparty,
            MessageType.OFFER,
            counter_body,
            thread=offer.thread,
            parent=offer_id,
        )

        def record(stored: StoredMessage) -> None:
            self.store.set_offer_status(offer_id, "superseded")
            self.store.save_offer(
                OfferRecord(
                    stored.message_id,
                    offer.counterparty,
                    stored.thread,
                    stored.digest,
                    "counter",
                    "open",
                    True,
                    counter_body,
                    stored.stored_at,
                    "out",
                )
            )

        return await self.send(offer.counterparty, payload, on_commit=record)

    def _offer_message(self, offer_id: str) -> StoredMessage:
        offer = self.store.message(offer_id)
        if offer is None or offer.type != MessageType.OFFER or offer.direction != "in":
            raise LocalProtocolError(ErrorCode.UNKNOWN_OFFER, f"no offer {offer_id} was received")
        return offer

    async def accept(
        self,
        offer_id: str,
        *,
        payment: Mapping[str, Any] | None = None,
        approvals: Sequence[Mapping[str, Any]] = (),
        decline_others: bool = True,
    ) -> Delivery:
        """Step 4 (transact): accept exactly this offer (spec §6.4).

        Identity is disclosed now and only now, as far as the policy allows at
        acceptance; each category disclosed is logged as shared.  When the
        offer (or her RFP) requires a co-decision-maker's approval, the
        acceptance carries the approval he signed himself, given here in
        ``approvals`` and checked against the offer's bytes: her agent never
        signs for anyone else (VRM-BUY-011), so without his approval it does
        not accept.  Then, unless ``decline_others`` is false, the other
        vendors' live offers are declined (:meth:`decline_other_vendors`).

        Raises:
            LocalProtocolError: ``UNKNOWN_OFFER``, ``OFFER_SUPERSEDED``,
                ``OFFER_EXPIRED``, ``OFFER_CLOSED`` (the state machine's
                offers ledger), ``ILLEGAL_TRANSITION`` for an indicative offer,
                ``APPROVAL_MISSING`` when an approval she needs was not given,
                ``ATTESTATION_INVALID`` when one given does not approve this offer.
            RemoteProtocolError: the vendor refused the acceptance.
        """
        offer = self._offer_message(offer_id)
        vendor = offer.counterparty
        identity = self.identity_for(vendor)
        ref = message_ref(offer)
        profile = self.store.profile()
        details: dict[str, Any] = {}
        disclosed: list[str] = []
        for member, category in ACCEPTANCE_CATEGORIES.items():
            if category in profile and self.policy.may_disclose("acceptance", category):
                details[member] = profile[category]
                disclosed.append(category)
        body: dict[str, Any] = {"offer": ref}
        if "name" in details:
            body["identity"] = details
        offer_body = offer.payload["body"]
        if payment is None:
            plans = offer_body.get("financing") or []
            payment = (
                {"method": "finance", "financingPlan": str(plans[0]["plan"])}
                if plans
                else {"method": "bank-transfer"}
            )
        body["payment"] = dict(payment)
        rfp = self._latest(vendor, MessageType.PERSONAL_RFP)
        rfp_body = rfp.payload["body"] if rfp is not None else {}
        required = [
            c
            for c in list(rfp_body.get("conditions", [])) + list(offer_body.get("conditions", []))
            if isinstance(c, Mapping) and c.get("kind") == "approval-required"
        ]
        # The offers ledger speaks first (superseded, expired, closed, indicative):
        # a move the state machine refuses is refused for that reason.
        draft = self.compose(vendor, MessageType.OFFER_ACCEPTANCE, body, thread=offer.thread)
        try:
            self.relationship(vendor).copy().send(draft, now=self.clock.now())
        except LocalProtocolError as error:
            if error.code is not ErrorCode.APPROVAL_MISSING:
                raise
        if required:
            body["approvals"] = self._approvals_for(
                required, approvals, subject=identity.identifier, vendor=vendor, offer_ref=ref
            )
        trade_in = rfp_body.get("tradeIn")
        if isinstance(trade_in, Mapping):
            trade_in = {**trade_in, "item": dict(trade_in.get("item", {}))}
            if "vehicle.registration" in profile and self.policy.may_disclose(
                "acceptance", "vehicle.registration"
            ):
                trade_in["item"]["registration"] = profile["vehicle.registration"]
                disclosed.append("vehicle.registration")
            body["tradeIn"] = trade_in
        payload = self.compose(
            vendor, MessageType.OFFER_ACCEPTANCE, body, thread=offer.thread, parent=offer_id
        )
        terms = offer_body.get("terms", {})

        def record(stored: StoredMessage) -> None:
            self.store.set_offer_status(offer_id, "accepted")
            self._log_shared(
                vendor,
                identity.identifier,
                disclosed,
                stored.message_id,
                f"{terms.get('id')}@{terms.get('version')}",
                ("delivery", "billing"),
            )

        delivery = await self.send(vendor, payload, on_commit=record)
        if decline_others:
            await self.decline_other_vendors(vendor)
        return delivery

    def _approvals_for(
        self,
        required: Sequence[Mapping[str, Any]],
        given: Sequence[Mapping[str, Any]],
        *,
        subject: str,
        vendor: str,
        offer_ref: Mapping[str, str],
    ) -> list[dict[str, Any]]:
        """The approvals an acceptance must carry: one from each party an
        ``approval-required`` condition names, signed by that party itself,
        approving exactly this offer (spec §6.4, §10.2).

        Raises:
            LocalProtocolError: ``APPROVAL_MISSING`` or ``ATTESTATION_INVALID``.
        """
        carried: list[dict[str, Any]] = []
        for condition in required:
            party = condition.get("party")
            candidates = [a for a in given if party is None or a.get("issuer") == party]
            if not candidates:
                raise LocalProtocolError(
                    ErrorCode.APPROVAL_MISSING,
                    f"the offer needs the approval of {party or 'a co-decision-maker'}, and her "
                    "agent has none: it never signs for anyone else, so it does not accept "
                    "until he approves himself",
                    path="/body/approvals",
                )
            for approval in candidates:
                issuer = str(approval.get("issuer"))
                try:
                    verified = verify_attestation(
                        approval,
                        trusted_issuers={issuer: None},
                        subject=subject,
                        audience=vendor,
                        now=self.clock.now(),
                        kind="approval",
                    )
                except ProtocolError as error:
                    raise LocalProtocolError(
                        ErrorCode.ATTESTATION_INVALID, f"the approval given is refused: {error}"
                    ) from error
                approved = (verified.claims.get("approves") or {}).get("offer")
                if approved != dict(offer_ref):
                    raise LocalProtocolError(
                        ErrorCode.ATTESTATION_INVALID,
                        "the approval given approves another offer",
                        path="/body/approvals",
                    )
                if approval not in carried:
                    carried.append(dict(approval))
        return carried

    async def decline_other_vendors(self, chosen: str) -> list[Delivery]:
        """Decline the live offers of every other vendor asked, once ``chosen``'s
        offer is accepted (spec §6.5: a buyer that has accepted an offer SHOULD
        decline the open offers of the others), so no dealer keeps a car waiting.

        The declines are decorrelated like copies (spec §12): each goes at its
        own random moment with its own ``created``, so the vendors cannot pair
        them by time.  A vendor that refuses its decline does not undo the
        acceptance: it is skipped (its offers stay open in the store and may be
        declined later).
        """
        now = self.clock.now()
        pending: list[tuple[str, list[str]]] = []
        for record in self.store.relationships():
            if record.counterparty == chosen:
                continue
            live = [
                offer.id
                for offer in Relationship.restore(record.snapshot).live_offers(now)
                if offer.sender is Role.VENDOR
            ]
            if live:
                pending.append((record.counterparty, live))
        offsets = self.decorrelation.offsets(len(pending), self._rng)

        async def one(live: list[str], backdate: int) -> list[Delivery]:
            await self._pause()
            with contextlib.suppress(ProtocolError):
                return await self.decline(live, reason="other-offer-accepted", backdate=backdate)
            return []

        results = await asyncio.gather(
            *(one(live, offset) for (_, live), offset in zip(pending, offsets, strict=True))
        )
        return [delivery for deliveries in results for delivery in deliveries]

    def _log_shared(
        self,
        counterparty: str,
        identifier: str,
        categories: Iterable[str],
        message_id: str,
        terms: str | None,
        purposes: Sequence[str],
    ) -> None:
        now = timestamp(self.clock.now())
        self.store.log_sharing(
            [
                SharingRecord(
                    counterparty, identifier, category, message_id, terms, tuple(purposes), now
                )
                for category in categories
            ]
        )

    async def decline(
        self,
        offer_ids: Sequence[str],
        *,
        reason: str = "other-offer-accepted",
        comment: str | None = None,
        backdate: int = 0,
    ) -> list[Delivery]:
        """Decline offers, one decline per vendor in its own thread (spec §6.5).

        Raises:
            LocalProtocolError: an offer is unknown or already closed.
            RemoteProtocolError: a vendor refused the decline.
        """
        by_vendor: dict[str, list[StoredMessage]] = {}
        for offer_id in offer_ids:
            offer = self._offer_message(offer_id)
            by_vendor.setdefault(offer.counterparty, []).append(offer)
        deliveries = []
        for vendor, offers in by_vendor.items():
            body: dict[str, Any] = {"offers": [o.message_id for o in offers], "reason": reason}
            if comment:
                body["comment"] = comment
            payload = self.compose(
                vendor,
                MessageType.OFFER_DECLINE,
                body,
                thread=offers[-1].thread,
                parent=offers[-1].message_id,
                backdate=backdate,
            )
            ids = [o.message_id for o in offers]

            def record(stored: StoredMessage, ids: list[str] = ids) -> None:
                for offer_id in ids:
                    self.store.set_offer_status(offer_id, "declined")

            deliveries.append(await self.send(vendor, payload, on_commit=record))
        return deliveries

    def _request(self, message_id: str, message_type: MessageType) -> StoredMessage:
        message = self.store.message(message_id)
        if message is None or message.type != message_type or message.direction != "in":
            raise LocalProtocolError(
                ErrorCode.ILLEGAL_TRANSITION, f"no {message_type} {message_id} was received"
            )
        return message

    async def _unmatched_terms(self, party: str, reference: Any) -> str | None:
        """Why the terms ``reference`` names cannot be matched, or ``None`` when
        the document fetched from ``party``'s own origin has exactly its digest
        (spec D12, VRM-BUY-010)."""
        if not isinstance(reference, Mapping):
            return "the message names no terms document"
        url, digest = reference.get("url"), reference.get("digest")
        if not isinstance(url, str) or not same_origin(url, party):
            # Only the asserting party's own origin speaks for its terms: a
            # document elsewhere could be anyone's.
            return f"the terms document {url!r} is not published on the origin of {party}"
        try:
            document = await self._fetch(url, max_bytes=TERMS_MAX_BYTES)
        except LocalProtocolError as error:
            return f"the terms document could not be fetched: {error.detail}"
        if message_digest(document) != digest:
            return f"the digest {digest} does not match the terms document published at {url}"
        return None

    def _before_acceptance(self, party: str, decision: TermsDecision) -> TermsDecision:
        """``decision`` with every identifying item refused, while she has accepted
        no offer of ``party`` (spec §12, VRM-PRIV-011: identity is disclosed at
        acceptance, to that party only, and not before)."""
        if self.relationship(party).accepted_offer is not None:
            return decision
        if "share-identity-early" in self.faults:  # FAULT: identity before the deal
            return decision
        return decision.withholding(self.policy.is_identifying, NOT_BEFORE_ACCEPTANCE)

    async def report_problem(
        self, message: StoredMessage, code: ErrorCode, detail: str, *, path: str | None = None
    ) -> Delivery:
        """Tell the sender of ``message`` why she does not act on it: a
        ``problem-report`` in its thread, answering it (spec §6.15).

        Raises:
            LocalProtocolError: the report would not be a valid message.
            RemoteProtocolError: the counterparty refused it.
        """
        body: dict[str, Any] = {
            "regarding": {
                "id": message.message_id,
                **({"digest": message.digest} if message.digest else {}),
            },
            "code": code.value,
            "title": code.info.title,
            "detail": detail[:4000],
        }
        if path is not None:
            body["path"] = path
        payload = self.compose(
            message.counterparty,
            MessageType.PROBLEM_REPORT,
            body,
            thread=message.thread,
            parent=message.message_id,
        )
        return await self.send(message.counterparty, payload)

    async def answer_terms(
        self, assertion_id: str, *, decision: TermsDecision | None = None
    ) -> tuple[Delivery, TermsDecision | None]:
        """Step 5 (welcome): answer a terms-of-sharing assertion (spec §6.8).

        First the terms themselves: the document the assertion names is
        fetched from the asserting party's own origin, within bounds, and its
        digest must match (spec D12, VRM-BUY-010). When it cannot be matched she
        shares nothing: the answer is a ``problem-report`` of code
        ``reference-mismatch`` and the decision returned is ``None``.

        Then the policy decides item by item (anything left to the individual
        is refused when no decision is given); an identifying item is refused
        while she has accepted no offer of this party (spec §12,
        VRM-PRIV-011), whatever the policy or the given decision say; data goes
        only with accepted items the profile holds; the consent record and the
        sharing log are written in the same commit as the response.

        Raises:
            LocalProtocolError: no such assertion, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        assertion = self._request(assertion_id, MessageType.TERMS_ASSERTION)
        assertion_body = assertion.payload["body"]
        vendor = assertion.counterparty
        mismatch = await self._unmatched_terms(vendor, assertion_body.get("terms"))
        if mismatch is not None:
            problem = await self.report_problem(
                assertion, ErrorCode.REFERENCE_MISMATCH, mismatch, path="/body/terms/digest"
            )
            return problem, None
        if decision is None:
            decision = evaluate_terms(assertion_body, self.policy, now=self.clock.now())
        decision = self._before_acceptance(vendor, decision.resolved())
        profile = self.store.profile()
        accepted = [
            {
                "item": item.item,
                "purposes": list(item.purposes),
                **({"retention": dict(item.retention)} if item.retention else {}),
            }
            for item in decision.accepted
        ]
        refused = [
            {"item": item.item, "reason": "; ".join(item.reasons) or "not needed"}
            for item in decision.refused
        ]
        data = [
            {"item": item.item, "value": profile[item.item]}
            for item in decision.accepted
            if item.item in profile
        ]
        body: dict[str, Any] = {
            "assertion": message_ref(assertion),
            "decision": str(decision.decision),
            "accepted": accepted,
            "notificationPreferences": {"allowed": list(decision.notifications)},
        }
        if refused:
            body["refused"] = refused
        if data:
            body["data"] = data
        identity = self.identity_for(vendor)
        payload = self.compose(
            vendor,
            MessageType.TERMS_RESPONSE,
            body,
            thread=assertion.thread,
            parent=assertion.message_id,
        )
        terms = assertion_body.get("terms", {})
        terms_name = f"{terms.get('id')}@{terms.get('version')}"

        def record(stored: StoredMessage) -> None:
            self.store.record_consent(
                ConsentRecord(
                    vendor,
                    assertion.message_id,
                    str(assertion.digest),
                    stored.message_id,
                    str(decision.decision),
                    accepted,
                    refused,
                    list(decision.notifications),
                    stored.stored_at,
                )
            )
            purposes = {item.item: item.purposes for item in decision.accepted}
            for item in data:
                self._log_shared(
                    vendor,
                    identity.identifier,
                    [item["item"]],
                    stored.message_id,
                    terms_name,
                    purposes.get(item["item"], ()),
                )

        return await self.send(vendor, payload, on_commit=record), decision

    async def answer_service_notice(self, notice_id: str) -> Delivery:
        """Steps 6-7 (servicing, development): answer a service notice as the
        policy says (spec §6.10).

        Proposed work the policy declines is declined with its reason (seed
        000: the tyres stay); the rest is accepted.  Scoped data requests (a
        programme asking for travel dates, seed 000 step 7) carry data only
        where she agreed to share it with this party for that purpose
        (VRM-BUY-007): under terms the notice names, whose document she matched
        (spec D12; otherwise she shares nothing and answers with a
        ``problem-report`` of code ``reference-mismatch``) and that her policy
        accepts; or, when it names none, within the items and purposes of the
        terms response in force with this party. Nothing identifying goes to a
        party whose offer she has not accepted (VRM-PRIV-011). What is shared is
        logged.

        Raises:
            LocalProtocolError: no such notice, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        notice = self._request(notice_id, MessageType.SERVICE_NOTICE)
        notice_body = notice.payload["body"]
        vendor = notice.counterparty
        requests = [r for r in notice_body.get("dataRequests") or [] if isinstance(r, Mapping)]
        terms = notice_body.get("terms")
        if requests and terms is not None:
            mismatch = await self._unmatched_terms(vendor, terms)
            if mismatch is not None:
                return await self.report_problem(
                    notice, ErrorCode.REFERENCE_MISMATCH, mismatch, path="/body/terms/digest"
                )
        codes = [
            str(p["code"]) for p in notice_body.get("proposals") or [] if isinstance(p, Mapping)
        ]
        work = evaluate_service_notice(codes, self.policy)
        if terms is not None:
            items = evaluate_data_requests(requests, self.policy)
        else:
            items = self._covered_by_consent(vendor, requests)
        if (
            self.relationship(vendor).accepted_offer is None
            and "share-identity-early" not in self.faults  # FAULT: identity before the deal
        ):
            items = tuple(
                ItemDecision(i.item, False, (), None, (*i.reasons, NOT_BEFORE_ACCEPTANCE))
                if i.accepted and self.policy.is_identifying(i.item)
                else i
                for i in items
            )
        profile = self.store.profile()
        accepted = [*work.accepted, *(i.item for i in items if i.accepted)]
        declined = [
            *({"item": item, "reason": why} for item, why in work.declined),
            *(
                {"item": i.item, "reason": "; ".join(i.reasons) or "not needed"}
                for i in items
                if not i.accepted
            ),
        ]
        data = [
            {"item": i.item, "value": profile[i.item]}
            for i in items
            if i.accepted and i.item in profile
        ]
        if not declined:
            decision = "accept"
        elif not accepted:
            decision = "decline"
        else:
            decision = "accept-in-part"
        body: dict[str, Any] = {"notice": message_ref(notice), "decision": decision}
        if accepted:
            body["accepted"] = accepted
        if declined:
            body["declined"] = declined
        if data:
            body["data"] = data
        identity = self.identity_for(vendor)
        payload = self.compose(
            vendor,
            MessageType.SERVICE_RESPONSE,
            body,
            thread=notice.thread,
            parent=notice.message_id,
        )
        terms_name = (
            f"{terms.get('id')}@{terms.get('version')}" if isinstance(terms, Mapping) else None
        )
        purposes = {i.item: i.purposes for i in items if i.accepted}

        def record(stored: StoredMessage) -> None:
            for item in data:
                self._log_shared(
                    vendor,
                    identity.identifier,
                    [item["item"]],
                    stored.message_id,
                    terms_name,
                    purposes.get(item["item"], ()),
                )

        return await self.send(vendor, payload, on_commit=record)

    def _covered_by_consent(
        self, party: str, requests: Sequence[Mapping[str, Any]]
    ) -> tuple[ItemDecision, ...]:
        """Data requests that name no terms: each is granted only within an item
        and purposes she accepted in the terms response in force with ``party``."""
        in_force: dict[str, set[str]] = {}
        for consent in reversed(self.store.consents(party)):
            response = self.store.message(consent.response_id)
            if response is not None and not response.delivery.startswith("refused"):
                in_force = {
                    str(item.get("item")): {str(p) for p in item.get("purposes") or []}
                    for item in consent.accepted
                }
                break
        decided = []
        for request in requests:
            item = str(request.get("item"))
            asked = tuple(str(p) for p in request.get("purposes") or [])
            if asked and item in in_force and set(asked) <= in_force[item]:
                decided.append(ItemDecision(item, True, asked, None, ()))
            else:
                decided.append(ItemDecision(item, False, (), None, (NOT_COVERED,)))
        return tuple(decided)

    async def support_request(
        self,
        counterparty: str,
        *,
        subject: str,
        description: str,
        severity: str = "normal",
        regarding: str | None = None,
    ) -> Delivery:
        """Step 8 (problems): tell the counterparty something is wrong (spec §6.11).

        Raises:
            LocalProtocolError: the relationship is in no state to raise a problem.
            RemoteProtocolError: the counterparty refused the request.
        """
        body: dict[str, Any] = {
            "subject": subject,
            "description": description,
            "severity": severity,
        }
        thread = parent = None
        if regarding is not None:
            about = self.store.message(regarding)
            if about is not None and about.digest is not None:
                body["regarding"] = message_ref(about)
                thread, parent = about.thread, about.message_id
        payload = self.compose(
            counterparty, MessageType.SUPPORT_REQUEST, body, thread=thread, parent=parent
        )
        return await self.send(counterparty, payload)

    async def exit(
        self,
        counterparty: str,
        *,
        reason: str = "need-changed",
        explanation: str | None = None,
        reengagement: Mapping[str, Any] | None = None,
    ) -> Delivery:
        """Step 9 (exit): leave the relationship, asking for export and deletion (spec §6.13).

        The acknowledgement is checked against the sharing log when it arrives
        (:func:`verify_exit_acknowledgement`); the result is in ``store.exits()``.

        Raises:
            LocalProtocolError: the relationship cannot be exited in its state.
            RemoteProtocolError: the counterparty refused the notice.
        """
        now = self.clock.now()
        preferences = dict(
            reengagement
            if reengagement is not None
            else {"allowed": True, "topics": ["safety", "recall"], "channel": "intentcast-only"}
        )
        body: dict[str, Any] = {
            "reason": reason,
            "effectiveAt": timestamp(now),
            "export": {"requested": True, "mediaType": "application/json"},
            "deletion": {"requested": True},
            "reengagement": preferences,
        }
        if explanation:
            body["explanation"] = explanation
        last = self.store.messages(counterparty=counterparty)
        thread = last[-1].thread if last else None
        parent = last[-1].message_id if last else None
        payload = self.compose(
            counterparty, MessageType.EXIT_NOTICE, body, thread=thread, parent=parent
        )

        def record(stored: StoredMessage) -> None:
            self.store.record_exit(
                ExitRecord(
                    counterparty,
                    stored.message_id,
                    str(stored.digest),
                    preferences,
                    stored.stored_at,
                    None,
                    None,
                    None,
                    (),
                )
            )

        return await self.send(counterparty, payload, on_commit=record)

    async def reengage(self, counterparty: str, body: Mapping[str, Any]) -> Delivery:
        """Step 10 (re-engagement): a new RFI to a vendor left earlier, carrying
        the history the individual kept (spec §6.1 ``history``, see :meth:`history_refs`).

        Raises:
            LocalProtocolError: the move is illegal, or the body identifies the individual.
            RemoteProtocolError: the vendor refused the RFI.
        """
        check_nothing_identifying(body)
        payload = self.compose(
            counterparty,
            MessageType.PERSONAL_RFI,
            {**body, "history": self.history_refs(counterparty)},
        )
        return await self.send(counterparty, payload)

    def history_refs(self, counterparty: str) -> list[dict[str, str]]:
        """The kept history a re-engagement cites: references to the exact bytes
        of the messages that made the old relationship (the first intentcast,
        the accepted offer, the deal confirmation, the exit acknowledgement)."""
        history: list[dict[str, str]] = []
        first_rfi = True
        for message in self.store.messages(counterparty=counterparty):
            if message.digest is None:
                continue
            if message.direction == "out":
                if message.type == MessageType.PERSONAL_RFI and first_rfi:
                    history.append(message_ref(message))
                    first_rfi = False
                continue
            if message.type in (MessageType.DEAL_CONFIRMATION, MessageType.EXIT_ACKNOWLEDGEMENT):
                history.append(message_ref(message))
            elif message.type == MessageType.OFFER:
                offer = self.store.offer(message.message_id)
                if offer is not None and offer.status == "accepted":
                    history.append(message_ref(message))
        return history

    # -- views -----------------------------------------------------------------------------------

    def state_summary(self) -> dict[str, Any]:
        """A JSON summary of relationships and data held (test driver ``GET /state``).

        Deterministic: it changes only when a message is accepted or sent.
        """
        relationships: dict[str, Any] = {}
        for record in self.store.relationships():
            relationship = Relationship.restore(record.snapshot)
            relationships[record.identifier] = {
                "peer": record.counterparty,
                "state": record.state,
                "offers": {
                    offer_id: offer.status.value for offer_id, offer in relationship.offers.items()
                },
                "messages": len(self.store.messages(counterparty=record.counterparty)),
                "shared": sorted({r.category for r in self.store.shared_with(record.counterparty)}),
            }
        return {
            "role": "buyer",
            "relationships": relationships,
            "clockOffsetSeconds": int(self.clock.offset.total_seconds()),
        }


def _decimal(value: Decimal) -> str:
    """A decimal string as the schema wants it (no exponent, at most 4 places)."""
    quantized = value.quantize(Decimal("0.01")).normalize()
    text = format(quantized, "f")
    return text


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "letter"
