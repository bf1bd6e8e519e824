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
import hashlib
import json
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
from reference_buyer.policy import (
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
from vrm_protocol.attestations import issue_attestation
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
from vrm_protocol.state_machine import Relationship
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, PROTOCOL_VERSION, MessageType, Role

__all__ = [
    "ACCEPTANCE_CATEGORIES",
    "AttestationSource",
    "BuyerAgent",
    "Clock",
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

    Used only to *route* (which of our pseudonyms it is for) before the
    receiving pipeline verifies everything, and to read tokens already verified.

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


def header_kid(token: bytes) -> str | None:
    """The ``kid`` of a token's protected header, unverified (``None`` when unreadable)."""
    try:
        segment = token.split(b".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (IndexError, binascii.Error, ValueError, RecursionError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


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
    """The individual's agent (see the module docstring)."""

    def __init__(
        self,
        store: PersonalDataStore,
        policy: SharingPolicy,
        *,
        http: aiohttp.ClientSession,
        clock: Clock | None = None,
        inbox_url: str | None = None,
        ability_to_pay: AttestationSource | None = None,
        letters_dir: Path | None = None,
        reply_address: Sequence[str] = ("VRM reply service", "PO Box 1", "London", "EC1A 1AA"),
        faults: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        #: Fault switches (test mode only, see :mod:`reference_buyer.faults`).
        self.faults = faults
        self.policy = policy
        self.http = http
        self.clock = clock or Clock()
        #: Where counterparties POST replies (``replyTo``); ``None``: they use their
        #: mailbox and the agent polls it (spec §11.4).
        self.inbox_url = inbox_url
        self.ability_to_pay = ability_to_pay
        self.letters_dir = letters_dir or store.data_dir / "letters"
        self.reply_address = tuple(reply_address)
        #: Party id used in discovery and as the audience of messages for none of our pseudonyms.
        self.agent_id: str | None = None
        self._lock = asyncio.Lock()
        self._arrivals = asyncio.Condition()
        self._key_set: KeySet | None = None
        self._last_key_refresh = 0.0
        self._mailbox_cursor: dict[str, int] = {}

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
        by an inbound message ever is (spec §13: no URL from a message is fetched).

        Raises:
            LocalProtocolError: ``TEMPORARILY_UNAVAILABLE`` when the party does not
                answer, or its document names another id or a key URL elsewhere.
        """
        base = party_url.rstrip("/")
        try:
            async with self.http.get(base + DISCOVERY_PATH) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
            jwks_url = str(document["endpoints"]["jwks"])
            if document.get("id", "").rstrip("/") != base or not jwks_url.startswith(base + "/"):
                raise LocalProtocolError(
                    ErrorCode.TEMPORARILY_UNAVAILABLE,
                    f"{base}'s discovery document names another party or keys held elsewhere",
                )
            async with self.http.get(jwks_url) as response:
                response.raise_for_status()
                jwks = await response.json(content_type=None)
            KeySet.from_jwks(jwks)  # refuse unusable keys now, not when a message arrives
        except (aiohttp.ClientError, KeyError, TypeError, ValueError) as error:
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"cannot discover {base}: {error}"
            ) from error
        self.store.save_counterparty(base, document, jwks, now=self.clock.now())
        self._key_set = None
        return dict(document)

    def _keys(self) -> KeySet:
        if self._key_set is None:
            key_set = KeySet()
            for party in self.store.counterparties():
                known = self.store.counterparty(party)
                if known is None:
                    continue
                try:
                    for key in KeySet.from_jwks(known["jwks"]):
                        if key.kid not in key_set:
                            key_set.add(key)
                except ValueError:
                    continue
            self._key_set = key_set
        return self._key_set

    def _resolver_for(self, party: str) -> Callable[[str], VerifyingKey]:
        """A key resolver for messages from ``party``: its published keys only
        (an empty set for strangers: nothing is fetched for them, spec §13)."""
        known = self.store.counterparty(party) if party else None
        key_set = KeySet()
        if known is not None:
            try:
                key_set = KeySet.from_jwks(known["jwks"])
            except ValueError:
                key_set = KeySet()
        return key_resolver(key_set)

    async def _refresh_keys_for_unknown(self, kid: str | None) -> None:
        """Re-read the keys of the parties we deal with when a kid is unknown (rotation).

        Only parties already in a relationship are asked, and at most every
        :data:`KEY_REFRESH_INTERVAL_SECONDS`, so a stranger cannot make the agent
        fetch anything or flood a vendor with key requests.
        """
        if kid is None or kid.startswith(DID_JWK_PREFIX) or kid in self._keys():
            return
        if time.monotonic() - self._last_key_refresh < KEY_REFRESH_INTERVAL_SECONDS:
            return
        self._last_key_refresh = time.monotonic()
        for party in [r.counterparty for r in self.store.relationships()]:
            known = self.store.counterparty(party)
            if known is None:
                continue
            try:
                async with self.http.get(known["discovery"]["endpoints"]["jwks"]) as response:
                    if response.status != 200:
                        continue
                    jwks = await response.json(content_type=None)
                KeySet.from_jwks(jwks)
            except (aiohttp.ClientError, KeyError, TypeError, ValueError):
                continue
            self.store.save_counterparty(party, known["discovery"], jwks, now=self.clock.now())
        self._key_set = None

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
    ) -> dict[str, Any]:
        """A complete message from our pseudonym for ``counterparty`` to it (spec §5)."""
        identity = self.identity_for(counterparty)
        now = self.clock.now()
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
            # spec §12: a reply address of its own per relationship, so that not
            # even the address links two vendors' pseudonyms (the inbox ignores it).
            tag = hashlib.sha256(identity.identifier.encode()).hexdigest()[:16]
            payload["replyTo"] = {"inbox": f"{self.inbox_url}?for={tag}"}
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
        try:
            async with self.http.post(
                inbox, data=token, headers={"Content-Type": MESSAGE_MEDIA_TYPE}
            ) as response:
                status = response.status
                content_type = response.headers.get("Content-Type", "")
                answer = await response.read()
        except aiohttp.ClientError as error:
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{inbox} did not answer: {error}"
            ) from error
        if status not in (200, 202):
            code, detail = ErrorCode.INTERNAL_ERROR, answer[:300].decode(errors="replace")
            if content_type.startswith(PROBLEM_MEDIA_TYPE):
                try:
                    problem = json.loads(answer)
                    code = ErrorCode(problem.get("code"))
                    detail = str(problem.get("detail", detail))
                except (ValueError, TypeError):
                    pass
            raise RemoteProtocolError(code, f"{counterparty} refused the message: {detail}")
        receipt = answer.strip()
        await self._refresh_keys_for_unknown(header_kid(receipt))
        decode(
            receipt,
            resolve_key=self._resolver_for(counterparty),
            receiver=identity.identifier,
            now=self.clock.now(),
        )
        receipt_payload = payload_of(receipt)
        regarding = receipt_payload.get("body", {}).get("regarding")
        if (
            receipt_payload.get("type") != MessageType.RECEIPT
            or receipt_payload.get("from") != counterparty
            or regarding != {"id": stored.message_id, "digest": stored.digest}
        ):
            raise RemoteProtocolError(
                ErrorCode.SCHEMA_INVALID,
                "the receipt is not the counterparty's receipt for the exact bytes sent",
            )
        return receipt

    # -- receiving -------------------------------------------------------------------------------

    async def receive(self, token: bytes, *, via: str = "inbox") -> Inbound:
        """Run one inbound message through the receiving pipeline, the state
        machine and the store; answer with a signed receipt (spec §9, §11.3).

        An identical resend is answered with the original receipt (status 200)
        and has no second effect.

        Raises:
            RemoteProtocolError: the message is refused (its code says why);
                nothing was stored.
        """
        digest = message_digest(token)
        again = self.store.inbound_by_digest(digest)
        if again is not None and again.receipt is not None:
            return Inbound(200, again.receipt, again)
        # One unverified parse, for routing only (which pseudonym, whose keys);
        # the pipeline below verifies and parses for real.
        try:
            routing: dict[str, Any] | None = payload_of(token)
        except ValueError:
            routing = None
        receiver = self._receiver_for(routing)
        await self._refresh_keys_for_unknown(header_kid(token))
        claimed_sender = str(routing.get("from")) if routing is not None else ""
        audience: str | None = receiver.identifier if receiver is not None else self._no_receiver()
        misaddressed = False
        if receiver is None and "ignore-audience" in self.faults:
            # FAULT: the message is taken as meant for the pseudonym its sender knows.
            receiver = self._identity_known_to(claimed_sender)
            misaddressed = receiver is not None
            audience = None if misaddressed else audience
        # spec §9.1: only the keys the claimed sender publishes can verify its
        # message (a did:jwk sender's key is its identifier).
        resolve_key = self._resolver_for(claimed_sender)
        if "accept-without-verifying" in self.faults:
            resolve_key = signature_not_checked(resolve_key)  # FAULT: signatures unchecked
        received = decode(
            token,
            resolve_key=resolve_key,
            receiver=audience,
            now=self.clock.now(),
            replay=self.store,
        )
        assert receiver is not None  # decode refused anything addressed to none of us
        payload = dict(received.payload)
        async with self._lock:
            again = self.store.inbound_by_digest(digest)
            if again is not None and again.receipt is not None:
                return Inbound(200, again.receipt, again)
            counterparty = receiver.counterparty
            try:
                with self.store.transaction():
                    relationship = self.relationship(counterparty)
                    # spec §7.3: the sender must be the counterparty of this
                    # pseudonym (the machine raises not-a-participant otherwise).
                    # FAULT ignore-audience: the state machine is shown the message as if
                    # it named the pseudonym (it checks the audience too, spec §7.3).
                    seen = {**payload, "to": [receiver.identifier]} if misaddressed else payload
                    relationship.receive(seen, now=self.clock.now(), digest=digest)
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
        async with self._arrivals:
            self._arrivals.notify_all()
        return Inbound(202, receipt, stored)

    def _no_receiver(self) -> str:
        # The buyer agent speaks only through its pairwise pseudonyms (spec §3.1):
        # a message addressed to none of them, even one naming the agent's own
        # URL, is for someone else. This audience never matches a party id, so
        # the pipeline refuses the message with wrong-audience after verifying it.
        return "urn:vrm:buyer-agent:no-such-pseudonym"

    def _identity_known_to(self, counterparty: str) -> IdentityRecord | None:
        """The pseudonym already used with ``counterparty``, if any (never a new one)."""
        for record in self.store.identities():
            if record.counterparty == counterparty:
                return record
        return None

    def _receiver_for(self, routing: Mapping[str, Any] | None) -> IdentityRecord | None:
        if routing is None:
            return None
        recipients = routing.get("to")
        if not isinstance(recipients, list):
            return None
        for recipient in recipients:
            if isinstance(recipient, str):
                record = self.store.identity_by_identifier(recipient)
                if record is not None:
                    return record
        return None

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
        """Collect replies left in ``counterparty``'s mailbox (spec §11.4), for an
        agent that gave no ``replyTo`` inbox.

        Each message goes through :meth:`receive`; refused ones are skipped
        (they changed nothing).

        Raises:
            RemoteProtocolError: the mailbox refused the poll.
        """
        known = self.store.counterparty(counterparty) or {}
        url = known.get("discovery", {}).get("endpoints", {}).get("mailbox")
        if not isinstance(url, str):
            url = counterparty.rstrip("/") + MAILBOX_PATH
        identity = self.identity_for(counterparty)
        cursor = self._mailbox_cursor.get(counterparty, 0)
        token = make_poll_token(
            identity.key,
            poller=identity.identifier,
            mailbox_owner=counterparty,
            after=cursor,
            now=self.clock.now(),
        )
        try:
            async with self.http.get(
                url,
                params={"after": str(cursor)},
                headers={"Authorization": f"{POLL_AUTH_SCHEME} {token.decode('ascii')}"},
            ) as response:
                status = response.status
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as error:
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{url} did not answer: {error}"
            ) from error
        if status != 200 or not isinstance(document, dict):
            raise RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{url} refused the poll ({status})"
            )
        received: list[Inbound] = []
        for item in document.get("messages") or []:
            try:
                received.append(await self.receive(str(item).encode("ascii"), via="mailbox"))
            except ProtocolError:
                continue
        next_index = document.get("next")
        if isinstance(next_index, int):
            self._mailbox_cursor[counterparty] = next_index
        return received

    async def poll_forever(self, *, interval: float = 1.0) -> None:
        """Poll the mailbox of every counterparty in a live relationship, forever
        (an agent with no public inbox, spec §11.4).  Cancel the task to stop.

        A counterparty that cannot be reached is tried again next round.
        """
        while True:
            for record in self.store.relationships():
                if record.state in ("exited", "closed"):
                    continue
                with contextlib.suppress(ProtocolError):
                    await self.poll_mailbox(record.counterparty)
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

        async def one(vendor: str) -> tuple[str, Delivery]:
            await self.discover(vendor)
            vendor_body = dict(body)
            if attest and self.ability_to_pay is not None and "attestations" not in vendor_body:
                vendor_body["attestations"] = [self._attestation_for(vendor)]
            existing = self.store.relationship(vendor)
            if existing is not None and existing.state == "exited" and "history" not in body:
                # Re-engagement (spec §7.5): she comes back with the history she kept.
                vendor_body["history"] = self.history_refs(vendor)
            payload = self.compose(vendor, MessageType.PERSONAL_RFI, vendor_body)
            return vendor, await self.send(vendor, payload)

        results = await asyncio.gather(*(one(vendor) for vendor in vendors))
        return dict(results)

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
        co_decision_maker: bool = False,
    ) -> tuple[dict[str, Delivery], dict[str, Letter]]:
        """Step 2 (engage): one personal RFP to several vendors (spec §6.2).

        ``recipientCount`` tells each how many received it, but each online
        vendor gets its own copy signed under its own pseudonym, continuing the
        thread of its RFI and naming the offer it follows.  A vendor reached by
        post gets the same kind of signed message, rendered as a letter.  With
        ``co_decision_maker`` the RFP says that a co-decision-maker must
        approve: a key of its own for each vendor, held in the store.

        Raises:
            LocalProtocolError: the body identifies the individual or the move is illegal.
            RemoteProtocolError: a vendor refused its RFP.
        """
        check_nothing_identifying(body)
        count = len(vendors) + len(postal)

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
            if co_decision_maker:
                approver = self._co_decision_maker(vendor)
                conditions = list(vendor_body.get("conditions", []))
                conditions.append(
                    {
                        "kind": "approval-required",
                        "description": "My partner approves the deal before I accept it.",
                        "party": approver.identifier,
                    }
                )
                vendor_body["conditions"] = conditions
            return self.compose(
                vendor, MessageType.PERSONAL_RFP, vendor_body, thread=thread, parent=parent
            )

        async def online(vendor: str) -> tuple[str, Delivery]:
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

    def _co_decision_maker(self, vendor: str) -> PairwiseIdentity:
        name = f"co-decision-maker:{vendor}"
        key = self.store.named_key(name)
        if key is None:
            identity = PairwiseIdentity.generate()
            self.store.save_named_key(name, identity.signing_key)
            return identity
        return PairwiseIdentity.from_signing_key(key)

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
        approval_summary: str = "Approved: the car, the price and the trade-in.",
        decline_others: bool = True,
    ) -> Delivery:
        """Step 4 (transact): accept exactly this offer (spec §6.4).

        Identity is disclosed now and only now, as far as the policy allows at
        acceptance; each category disclosed is logged as shared.  When the RFP
        named a co-decision-maker, the acceptance carries that person's
        approval attestation, bound to this offer's bytes.  Then, unless
        ``decline_others`` is false, the other vendors' live offers are
        declined (:meth:`decline_other_vendors`).

        Raises:
            LocalProtocolError: ``UNKNOWN_OFFER``, ``OFFER_SUPERSEDED``,
                ``OFFER_EXPIRED``, ``OFFER_CLOSED`` (the state machine's
                offers ledger), or ``ILLEGAL_TRANSITION`` for an indicative offer.
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
        approver_party = next(
            (
                c.get("party")
                for c in list(rfp_body.get("conditions", []))
                + list(offer_body.get("conditions", []))
                if isinstance(c, Mapping) and c.get("kind") == "approval-required"
            ),
            None,
        )
        if approver_party is not None:
            approver = self._co_decision_maker(vendor)
            body["approvals"] = [
                issue_attestation(
                    kind="approval",
                    subject=identity.identifier,
                    audience=[vendor],
                    claims={
                        "approves": {"offer": ref, "summary": approval_summary},
                        "relation": "co-decision-maker",
                    },
                    issuer_key=approver.signing_key,
                    issuer_id=approver.identifier,
                    now=self.clock.now(),
                )
            ]
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

    async def decline_other_vendors(self, chosen: str) -> list[Delivery]:
        """Decline the live offers of every other vendor asked, once ``chosen``'s
        offer is accepted (spec §6.5: a buyer that has accepted an offer SHOULD
        decline the open offers of the others), so no dealer keeps a car waiting.

        A vendor that refuses its decline does not undo the acceptance: it is
        skipped (its offers stay open in the store and may be declined later).
        """
        now = self.clock.now()
        sent: list[Delivery] = []
        for record in self.store.relationships():
            if record.counterparty == chosen:
                continue
            live = [
                offer.id
                for offer in Relationship.restore(record.snapshot).live_offers(now)
                if offer.sender is Role.VENDOR
            ]
            if live:
                with contextlib.suppress(ProtocolError):
                    sent += await self.decline(live, reason="other-offer-accepted")
        return sent

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

    async def answer_terms(
        self, assertion_id: str, *, decision: TermsDecision | None = None
    ) -> tuple[Delivery, TermsDecision]:
        """Step 5 (welcome): answer a terms-of-sharing assertion (spec §6.8).

        The policy decides item by item (anything left to the individual is
        refused when no decision is given); data goes only with accepted items
        the profile holds; the consent record and the sharing log are written
        in the same commit as the response.

        Raises:
            LocalProtocolError: no such assertion, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        assertion = self._request(assertion_id, MessageType.TERMS_ASSERTION)
        assertion_body = assertion.payload["body"]
        if decision is None:
            decision = evaluate_terms(assertion_body, self.policy, now=self.clock.now())
        decision = decision.resolved()
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
        vendor = assertion.counterparty
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
        programme asking for travel dates, seed 000 step 7) are judged like
        terms; accepted ones carry the data and are logged as shared.

        Raises:
            LocalProtocolError: no such notice, or the move is illegal.
            RemoteProtocolError: the counterparty refused the response.
        """
        notice = self._request(notice_id, MessageType.SERVICE_NOTICE)
        notice_body = notice.payload["body"]
        codes = [
            str(p["code"]) for p in notice_body.get("proposals") or [] if isinstance(p, Mapping)
        ]
        work = evaluate_service_notice(codes, self.policy)
        requests = [r for r in notice_body.get("dataRequests") or [] if isinstance(r, Mapping)]
        items = evaluate_data_requests(requests, self.policy)
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
        vendor = notice.counterparty
        identity = self.identity_for(vendor)
        payload = self.compose(
            vendor,
            MessageType.SERVICE_RESPONSE,
            body,
            thread=notice.thread,
            parent=notice.message_id,
        )
        terms = notice_body.get("terms") or {}
        terms_name = f"{terms.get('id')}@{terms.get('version')}" if terms else None
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
