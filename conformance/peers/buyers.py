"""The suite playing buyers, against a vendor under test (``--role vendor``).

Each :class:`Persona` is a fresh pairwise pseudonym (did:jwk) with its own
inbox on the suite's server, so that every check can start a relationship
of its own and nothing one check does leaks into another.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext, Session
from conformance.forge import JoseSigner
from conformance.model import CheckFailed, Expectation, HarnessError
from conformance.peers.identity import new_pairwise
from conformance.peers.inbox import Inbound, InboxCore, LocalParty
from conformance.peers.messages import envelope, sign, unverified_payload
from conformance.peers.posting import InboxReply, Sent, post_to_inbox
from conformance.peers.server import SuiteServer
from conformance.protocol import jwks_kids
from conformance.transcript import current_scope
from vrm_protocol.http_binding import INBOX_PATH
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

__all__ = [
    "BuyerSide",
    "Persona",
    "TargetKeys",
    "buyer_side",
]


class TargetKeys:
    """The target's published JWKS, fetched on demand and refreshed on an unknown kid.

    Refreshing at most once per ``min_interval`` seconds mirrors what the
    binding asks of agents, so the suite never hammers the target.
    """

    def __init__(self, session: Session, jwks_url: str, *, min_interval: float = 1.0) -> None:
        self.session = session
        self.jwks_url = jwks_url
        self.min_interval = min_interval
        self.jwks: dict[str, Any] | None = None
        self._fetched_at = float("-inf")

    async def refresh(self) -> dict[str, Any]:
        """Fetch the JWKS now.

        Raises:
            CheckFailed: the target did not serve a JWKS.
        """
        try:
            reply = await request(self.session.http, self.session.transcript, "GET", self.jwks_url)
            document = reply.json() if reply.status == 200 else None
        except (TargetUnreachable, ValueError) as error:
            raise CheckFailed(
                Expectation(
                    f"the target serves its JWKS at {self.jwks_url}", False, actual=str(error)
                )
            ) from error
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise CheckFailed(
                Expectation(
                    f"the target serves a JWKS at {self.jwks_url}",
                    False,
                    actual=reply.body[:200].decode(errors="replace"),
                )
            )
        self.jwks = document
        self._fetched_at = time.monotonic()
        return document

    async def for_kid(self, kid: str) -> dict[str, Any]:
        """The JWKS, refreshed first if it lacks ``kid`` (and was not just fetched)."""
        if self.jwks is None or (
            kid not in jwks_kids(self.jwks)
            and time.monotonic() - self._fetched_at >= self.min_interval
        ):
            return await self.refresh()
        return self.jwks


@dataclass(slots=True)
class Persona:
    """One pairwise pseudonym the suite plays as a buyer."""

    side: BuyerSide
    party: LocalParty
    sent: list[Sent] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The persona's did:jwk identifier."""
        return self.party.id

    @property
    def signer(self) -> JoseSigner:
        """The persona's key."""
        return self.party.signer

    @property
    def inbox_url(self) -> str:
        """Where the target POSTs replies for this persona."""
        return self.party.inbox_url

    def now(self) -> datetime:
        """The target's current time, as the suite tracks it."""
        return self.side.session.clock.now()

    def compose(
        self,
        message_type: str,
        body: Mapping[str, Any],
        *,
        reply: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """A message from this persona to the target (``fields`` as for :func:`envelope`)."""
        fields.setdefault("to", [self.side.target_id])
        return envelope(
            message_type,
            body,
            sender=self.id,
            now=self.now(),
            reply_inbox=self.inbox_url if reply else None,
            **fields,
        )

    async def send(self, payload: Mapping[str, Any], *, note: str | None = None) -> InboxReply:
        """Sign ``payload`` under the profile and POST it to the target's inbox."""
        token = sign(payload, self.signer)
        return await self.post(token, note=note)

    async def post(
        self,
        token: bytes,
        *,
        note: str | None = None,
        content_type: str = MESSAGE_MEDIA_TYPE,
        headers: Mapping[str, str] | None = None,
    ) -> InboxReply:
        """POST raw bytes to the target's inbox and judge any receipt.

        Raises:
            CheckFailed: the target did not answer at all.
        """
        reply = await post_to_inbox(
            self.side.session,
            self.side.target_inbox,
            token,
            receiver=self.id,
            receipt_keys=self.side.keys.for_kid,
            note=note,
            content_type=content_type,
            headers=headers,
        )
        try:
            payload = unverified_payload(token)
        except (ValueError, IndexError):
            payload = {}
        self.sent.append(Sent(payload, token, reply, self.side.session.next_order()))
        return reply

    async def expect(
        self,
        predicate: Callable[[Inbound], bool],
        *,
        description: str,
        requirement: str | None = None,
        within: float | None = None,
    ) -> Inbound:
        """Wait for a message from the target to this persona matching ``predicate``.

        Raises:
            CheckFailed: none arrived within the reply timeout.
        """
        return await self.side.core.wait_for(
            lambda item: item.receiver == self.id and predicate(item),
            within=within if within is not None else self.side.session.options.reply_timeout,
            description=description,
            requirement=requirement,
        )

    def received(self) -> list[Inbound]:
        """Every message the target sent this persona so far."""
        return self.side.core.matching(lambda item: item.receiver == self.id)


class BuyerSide:
    """The suite's buyer agent: personas, their shared inbox, the target's keys."""

    def __init__(
        self,
        session: Session,
        server: SuiteServer,
        target_id: str,
        target_inbox: str,
        keys: TargetKeys,
    ) -> None:
        self.session = session
        self.server = server
        self.target_id = target_id
        self.target_inbox = target_inbox
        self.keys = keys
        self.core = InboxCore(session, self._sender_keys)
        self.personas: list[Persona] = []

    async def _sender_keys(self, sender: str, kid: str) -> Mapping[str, Any] | None:
        if sender != self.target_id:
            # The suite has no relationship with any other URL party: it
            # must not fetch keys from a URL a message merely names.
            return None
        return await self.keys.for_kid(kid)

    def new_persona(self, alg: str = "EdDSA") -> Persona:
        """A fresh pseudonym (an Ed25519 key unless ``alg`` says ES256), receiving
        from now on; its exchanges are tagged with the current check's (or
        scenario's) scope."""
        identifier, signer = new_pairwise(alg)
        party = LocalParty(
            identifier,
            signer,
            scope=current_scope.get(),
            inbox_url=self.server.base_url + INBOX_PATH,
        )
        self.core.add(party)
        persona = Persona(self, party)
        self.personas.append(persona)
        return persona


async def _start(session: Session) -> BuyerSide:
    discovery = session.discovery
    if discovery is None:
        raise HarnessError(f"no discovery document: {session.discovery_error}")
    raw_endpoints = discovery.get("endpoints")
    endpoints: dict[str, Any] = raw_endpoints if isinstance(raw_endpoints, dict) else {}
    target_id, inbox, jwks = discovery.get("id"), endpoints.get("inbox"), endpoints.get("jwks")
    if not all(isinstance(value, str) for value in (target_id, inbox, jwks)):
        raise CheckFailed(
            Expectation(
                "the discovery document names the party id, endpoints.inbox and endpoints.jwks",
                False,
                actual={"id": target_id, "inbox": inbox, "jwks": jwks},
            )
        )
    server = SuiteServer(session, "buyer inbox")
    keys = TargetKeys(session, str(jwks))
    side = BuyerSide(session, server, str(target_id), str(inbox), keys)
    server.route("POST", INBOX_PATH, side.core.handle)
    server.scope_for_path = lambda path, body: side.core.scope_for(body)
    await server.start()
    return side


async def buyer_side(ctx: CheckContext | Session) -> BuyerSide:
    """The run's buyer side, started on first use.

    Raises:
        CheckFailed: the discovery document lacks what a buyer needs.
        HarnessError: the suite's server could not start.
    """
    session = ctx.session if isinstance(ctx, CheckContext) else ctx
    return await session.service("buyer-side", _start)
