"""The suite playing vendors and third parties, against a buyer under test
(``--role buyer``).

Each :class:`SuiteVendor` is a complete little agent on its own 127.0.0.1
port: a party id (its base URL), a discovery document, a published JWKS, an
inbox that receipts what the buyer sends, and a mailbox for buyers that give
no ``replyTo``. What it sends, and when, is scripted by the checks.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from conformance.context import CheckContext, Session
from conformance.forge import JoseSigner
from conformance.model import CheckFailed, Expectation
from conformance.peers.identity import new_key
from conformance.peers.inbox import Inbound, InboxCore, LocalParty
from conformance.peers.messages import digest, envelope, sign, unverified_payload
from conformance.peers.posting import InboxReply, Sent, post_to_inbox
from conformance.peers.server import SuiteServer
from conformance.protocol import verify_poll
from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    discovery_document,
    problem_response,
)
from vrm_protocol.limits import DEFAULT_LIMITS
from vrm_protocol.message_types import accepted_by, sent_by
from vrm_protocol.vocabulary import Role

__all__ = ["SUITE_PROGRAMME", "SuiteVendor", "VendorSide", "vendor_side"]

#: The programme every vendor of the suite lists (spec §6.72).
SUITE_PROGRAMME = "suite-owners-club"

#: What the suite's vendors announce in their discovery documents: what the
#: registry says a vendor takes and sends (spec §11.1), never a list of its own.
_ACCEPTS = tuple(sorted(accepted_by(Role.VENDOR)))
_SENDS = tuple(sorted(sent_by(Role.VENDOR)))


@dataclass(slots=True)
class SuiteVendor:
    """One vendor the suite plays."""

    name: str
    server: SuiteServer
    signer: JoseSigner
    core: InboxCore
    #: Keys published besides the signing key (rotation checks add one).
    extra_public_keys: list[dict[str, Any]] = field(default_factory=list)
    #: Messages waiting in the mailbox, per buyer pseudonym.
    mailbox: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    #: Everything this vendor delivered, and the buyer's answers.
    sent: list[Sent] = field(default_factory=list)
    #: Every mailbox poll: (poller named by a valid token, or None, and why not).
    polls: list[tuple[str | None, str | None]] = field(default_factory=list)
    #: Per buyer pseudonym, how many of its mailbox messages a poll has served.
    collected: dict[str, int] = field(default_factory=dict)
    #: Notified whenever a poll serves messages.
    collection: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: Terms documents published at ``/vrm/terms/{id}/{version}`` on this vendor's
    #: origin, as exact bytes (spec §6.8: a buyer matches a digest against them).
    terms_documents: dict[tuple[str, str], bytes] = field(default_factory=dict)
    #: Replaces members of the discovery document's ``endpoints`` (hostile vendors).
    endpoints_override: dict[str, str] = field(default_factory=dict)
    #: Keys listed under ``retired`` with their ``retiredAt`` (spec §8.4, VRM-SIG-028).
    retired_public_keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The vendor's party id: its base URL."""
        return self.server.base_url

    @property
    def session(self) -> Session:
        """The run's session."""
        return self.server.session

    def jwks(self) -> dict[str, Any]:
        """The published JWKS."""
        current = {
            **self.signer.public_jwk,
            "kid": self.signer.kid,
            "alg": self.signer.alg,
            "use": "sig",
        }
        document: dict[str, Any] = {"keys": [current, *self.extra_public_keys]}
        if self.retired_public_keys:
            document["retired"] = list(self.retired_public_keys)
        return document

    def publish_terms(
        self,
        text: str = "Conformance test terms of sharing, version 1.0.\n",
        *,
        terms_id: str = "conformance-test-terms",
        version: str = "1.0",
        digest_of: bytes | None = None,
    ) -> dict[str, str]:
        """Publish a terms document on this vendor's origin and return the
        ``termsReference`` naming it (spec §6.8, VRM-BUY-010).

        ``digest_of`` makes the reference carry the digest of other bytes than
        those published: a digest nobody can match.
        """
        data = text.encode("utf-8")
        self.terms_documents[(terms_id, version)] = data
        return {
            "id": terms_id,
            "version": version,
            "url": f"{self.id}/vrm/terms/{terms_id}/{version}",
            "digest": digest(digest_of if digest_of is not None else data),
        }

    def discovery(self) -> dict[str, Any]:
        """The discovery document at ``/.well-known/vrm``."""
        document = self._discovery()
        document["endpoints"].update(self.endpoints_override)
        return document

    def _discovery(self) -> dict[str, Any]:
        return discovery_document(
            party_id=self.id,
            role="vendor",
            name=self.name,
            base_url=self.id,
            accepts=_ACCEPTS,
            sends=_SENDS,
            categories=["vehicles.cars"],
            # The suite judges what it receives with the library's default
            # limits, so those are the limits its parties declare (spec §11.6).
            max_message_bytes=DEFAULT_LIMITS.max_message_bytes,
            max_depth=DEFAULT_LIMITS.max_nesting_depth,
            rate_per_minute=6000,
            # A programme she may ask to join (spec §6.72, check PRG-BUY-ENROLMENT).
            programmes=[{"code": SUITE_PROGRAMME, "title": "The suite's owners' club"}],
        )

    def compose(
        self, message_type: str, body: Mapping[str, Any], *, to: str, **fields: Any
    ) -> dict[str, Any]:
        """A message from this vendor to buyer ``to``."""
        return envelope(
            message_type,
            body,
            sender=self.id,
            to=[to],
            now=self.session.clock.now(),
            reply_inbox=self.id + INBOX_PATH,
            **fields,
        )

    def reply_to(
        self, inbound: Inbound, message_type: str, body: Mapping[str, Any], **fields: Any
    ) -> dict[str, Any]:
        """A reply to ``inbound`` in its thread."""
        fields.setdefault("thread", inbound.field("thread") or inbound.id)
        fields.setdefault("parent", inbound.id)
        return self.compose(message_type, body, to=str(inbound.field("from")), **fields)

    async def deliver(
        self, payload: Mapping[str, Any], *, inbox: str | None, note: str | None = None
    ) -> InboxReply | None:
        """Sign and deliver ``payload``: POST it to ``inbox``, or (no inbox) leave it
        in the mailbox for the buyer to collect (spec §11.4). Returns the
        buyer's answer, or ``None`` for mailbox delivery."""
        token = sign(payload, self.signer)
        return await self.deliver_token(token, to=str(payload["to"][0]), inbox=inbox, note=note)

    async def deliver_token(
        self, token: bytes, *, to: str, inbox: str | None, note: str | None = None
    ) -> InboxReply | None:
        """Deliver a token as is (forged ones included)."""
        if inbox is None:
            # No replyTo: the buyer collects it from this vendor's mailbox (spec §11.4).
            self.mailbox[to].append(token)
            self.sent.append(
                Sent(unverified_payload(token), token, None, self.session.next_order())
            )
            await self._await_collection(to, len(self.mailbox[to]))
            return None

        async def no_keys(kid: str) -> None:
            return None  # the buyer signs receipts with its did:jwk key

        reply = await post_to_inbox(
            self.session, inbox, token, receiver=self.id, receipt_keys=no_keys, note=note
        )
        try:
            payload = unverified_payload(token)
        except (ValueError, IndexError):
            payload = {}
        self.sent.append(Sent(payload, token, reply, self.session.next_order()))
        return reply

    async def _await_collection(self, buyer: str, count: int) -> None:
        """Wait until the buyer has collected ``count`` messages from the mailbox.

        Raises:
            CheckFailed: it did not poll for them within the reply timeout.
        """
        within = self.session.options.reply_timeout
        async with self.collection:
            try:
                async with asyncio.timeout(within):
                    while self.collected.get(buyer, 0) < count:
                        await self.collection.wait()
            except TimeoutError:
                raise CheckFailed(
                    Expectation(
                        f"the buyer collects its messages from {self.name}'s mailbox",
                        False,
                        expected=f"a poll within {within:.0f} s",
                        actual=f"{self.collected.get(buyer, 0)} of {count} collected",
                        requirement="VRM-HTTP-010",
                    )
                ) from None

    async def expect(
        self,
        predicate: Callable[[Inbound], bool],
        *,
        description: str,
        requirement: str | None = None,
        within: float | None = None,
    ) -> Inbound:
        """Wait for a message from the buyer to this vendor matching ``predicate``.

        Raises:
            CheckFailed: none arrived in time.
        """
        return await self.core.wait_for(
            lambda item: item.receiver == self.id and predicate(item),
            within=within if within is not None else self.session.options.reply_timeout,
            description=description,
            requirement=requirement,
        )

    def received(self) -> list[Inbound]:
        """Every message the buyer sent this vendor so far."""
        return self.core.matching(lambda item: item.receiver == self.id)


class VendorSide:
    """The vendors the suite plays in one run."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.vendors: list[SuiteVendor] = []

    async def add_vendor(
        self,
        name: str,
        *,
        alg: str = "EdDSA",
        raw_jwks: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None,
    ) -> SuiteVendor:
        """Start one more vendor server, signing with a fresh key of ``alg``.

        ``raw_jwks`` serves the JWKS instead of the vendor's keys, unrecorded
        (hostile vendors: a key set far too large is streamed, not held).

        Raises:
            HarnessError: its port could not be bound.
        """
        # Each vendor's party id carries a fresh path, so that no two runs (and no
        # two vendors) share an identity even when the OS reuses a port: a buyer
        # rightly treats a known id as the party it already has a relationship with.
        server = SuiteServer(self.session, name, prefix=f"/vendors/{secrets.token_hex(6)}")

        async def no_url_senders(sender: str, kid: str) -> None:
            # Buyers are did:jwk pseudonyms; a URL sender is nobody the
            # vendor has a relationship with, and its keys are not fetched.
            return None

        core = InboxCore(self.session, no_url_senders)
        vendor = SuiteVendor(name, server, new_key(alg), core)

        async def discovery(request: web.Request, body: bytes) -> web.Response:
            return web.json_response(vendor.discovery())

        async def jwks(request: web.Request, body: bytes) -> web.Response:
            return web.json_response(vendor.jwks())

        async def mailbox(request: web.Request, body: bytes) -> web.Response:
            return await _serve_mailbox(vendor, request)

        async def terms(request: web.Request, body: bytes) -> web.Response:
            key = (request.match_info["id"], request.match_info["version"])
            if key not in vendor.terms_documents:
                return web.Response(status=404)
            return web.Response(
                body=vendor.terms_documents[key], content_type="text/plain", charset="utf-8"
            )

        server.route("GET", DISCOVERY_PATH, discovery)
        if raw_jwks is None:
            server.route("GET", JWKS_PATH, jwks)
        else:
            server.app.router.add_route("GET", server.prefix + JWKS_PATH, raw_jwks)
        server.route("GET", "/vrm/terms/{id}/{version}", terms)
        server.route("POST", INBOX_PATH, core.handle)
        server.route("GET", MAILBOX_PATH, mailbox)
        server.scope_for_path = lambda path, body: core.scope_for(body)
        await server.start()
        core.add(LocalParty(vendor.id, vendor.signer, scope=None, inbox_url=vendor.id + INBOX_PATH))
        self.vendors.append(vendor)
        return vendor


async def _serve_mailbox(vendor: SuiteVendor, request: web.Request) -> web.Response:
    """``GET /vrm/mailbox?after=N``, authorised by the poller's signed poll token."""
    from vrm_protocol.http_binding import poll_token_from_authorization

    try:
        token = poll_token_from_authorization(request.headers.get("Authorization"))
        poller, after = verify_poll(
            token,
            mailbox_owner=vendor.id,
            now=vendor.session.clock.now(),
            judge=vendor.session.judge,
        )
    except ProtocolError as error:
        vendor.polls.append((None, f"{error.code.value}: {error.detail}"))
        rendered = problem_response(error)
        return web.Response(status=rendered.status, body=rendered.body, headers=rendered.headers)
    vendor.polls.append((poller, None))
    waiting = vendor.mailbox.get(poller, [])
    messages = [token.decode("ascii") for token in waiting[after:]]
    async with vendor.collection:
        vendor.collected[poller] = max(vendor.collected.get(poller, 0), len(waiting))
        vendor.collection.notify_all()
    return web.Response(
        body=json.dumps({"messages": messages, "next": len(waiting)}).encode(),
        content_type="application/json",
    )


async def _start(session: Session) -> VendorSide:
    side = VendorSide(session)
    for index in range(session.options.vendor_count):
        await side.add_vendor(f"Conformance Motors {chr(ord('A') + index)}")
    return side


async def vendor_side(ctx: CheckContext | Session) -> VendorSide:
    """The run's vendors, started on first use.

    Raises:
        HarnessError: a vendor server could not start.
    """
    session = ctx.session if isinstance(ctx, CheckContext) else ctx
    return await session.service("vendor-side", _start)


def require_accepted(reply: InboxReply | None, description: str) -> None:
    """Fail unless the buyer accepted a delivery.

    Raises:
        CheckFailed: the buyer refused it.
    """
    if reply is not None and not reply.accepted:
        raise CheckFailed(Expectation(description, False, expected="202", actual=reply.describe()))
