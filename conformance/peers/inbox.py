"""The suite's side of the inbox binding: receiving what the target sends.

The suite receives as a conformant agent would (spec §11.3): it checks the
media type, runs the library's receiving pipeline, answers a good message
with ``202`` and a signed receipt, an identical resend with ``200`` and the
original receipt, a different message under a used id with ``409``, and
anything else with RFC 9457 problem details. Unlike an agent, it keeps
*every* message, good or bad, as evidence for the checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from conformance.context import Session
from conformance.forge import JoseSigner
from conformance.model import CheckFailed, Expectation
from conformance.peers.messages import digest, envelope, sign, timestamp
from conformance.peers.posting import header_kid
from conformance.protocol import decode_message
from conformance.transcript import peek_jws_payload
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.http_binding import check_inbox_request, problem_response
from vrm_protocol.limits import DEFAULT_LIMITS
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

__all__ = ["Inbound", "InboxCore", "LocalParty"]

#: The suite's parties take messages up to the library's default limit, the
#: limit their discovery documents declare (spec §11.6).
SUITE_MAX_MESSAGE_BYTES = DEFAULT_LIMITS.max_message_bytes


@dataclass(slots=True)
class Inbound:
    """One message the target sent to a party the suite plays."""

    token: bytes
    #: The payload as sent (unverified: for routing, display and judging
    #: aspects the pipeline never reached).
    payload: dict[str, Any] | None
    #: The suite's view of the target's clock when the message arrived.
    received_at: datetime
    #: The suite party the message was addressed to (``None``: none of ours).
    receiver: str | None
    #: Error code of the receiving pipeline, ``None`` when it passed.
    error: str | None = None
    error_detail: str | None = None
    #: Transcript scope of the check or scenario that owned the receiver.
    scope: str | None = None
    #: How the message arrived: ``inbox`` (POSTed by the target) or ``mailbox``.
    via: str = "inbox"
    #: An identical resend of a message already received.
    duplicate: bool = False
    #: Run-wide order of sends and receipts (see ``Session.next_order``).
    order: int = 0

    @property
    def ok(self) -> bool:
        """Whether the message passed the whole receiving pipeline."""
        return self.error is None

    def field(self, name: str) -> Any:
        """An envelope member from the payload as sent (``None`` when absent)."""
        return (self.payload or {}).get(name)

    @property
    def type(self) -> str | None:
        """The message type as sent."""
        value = self.field("type")
        return value if isinstance(value, str) else None

    @property
    def id(self) -> str | None:
        """The message id as sent."""
        value = self.field("id")
        return value if isinstance(value, str) else None

    @property
    def body(self) -> dict[str, Any]:
        """The body as sent (empty when absent or not an object)."""
        value = self.field("body")
        return value if isinstance(value, dict) else {}

    @property
    def digest(self) -> str:
        """The digest binding a reply to exactly these bytes."""
        return digest(self.token)

    def ref(self) -> dict[str, str]:
        """A ``messageRef`` to this message."""
        return {"id": self.id or "", "digest": self.digest}

    def describe(self) -> str:
        """A short description for reports."""
        state = "ok" if self.ok else f"rejected: {self.error}"
        return f"{self.type or '?'} {self.id or '?'} from {self.field('from')} ({state})"


@dataclass(slots=True)
class LocalParty:
    """A party the suite plays, able to receive: its id, key and owning scope."""

    id: str
    signer: JoseSigner
    scope: str | None = None
    inbox_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


SenderKeys = Callable[[str, str], Awaitable[Mapping[str, Any] | None]]


class InboxCore:
    """Receives, judges and records messages for a set of local parties."""

    def __init__(self, session: Session, sender_keys: SenderKeys) -> None:
        self.session = session
        self.parties: dict[str, LocalParty] = {}
        self.received: list[Inbound] = []
        self._changed = asyncio.Condition()
        self._sender_keys = sender_keys
        #: Deliveries refused on purpose (``refuse_deliveries``): token and order.
        self.refused: list[tuple[bytes, int]] = []
        #: (sender, id) -> (token, receipt) for idempotent resends (spec §11.3).
        self._receipts: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    def add(self, party: LocalParty) -> None:
        """Receive for ``party`` from now on."""
        self.parties[party.id] = party

    def scope_for(self, body: bytes) -> str | None:
        """The transcript scope of the party a raw request is addressed to."""
        payload = peek_jws_payload(body)
        for recipient in (payload or {}).get("to") or []:
            party = self.parties.get(recipient) if isinstance(recipient, str) else None
            if party is not None:
                return party.scope
        return None

    async def record(self, inbound: Inbound) -> None:
        """Keep ``inbound`` and wake every waiter."""
        async with self._changed:
            self.received.append(inbound)
            self._changed.notify_all()

    async def handle(self, request: web.Request, body: bytes) -> web.Response:
        """The ``POST /vrm/inbox`` handler."""
        try:
            check_inbox_request(
                request.headers.get("Content-Type"),
                request.content_length,
                max_message_bytes=SUITE_MAX_MESSAGE_BYTES,
            )
        except RemoteProtocolError as error:
            return _problem(error)
        party = self._addressee(peek_jws_payload(body.strip()))
        if party is not None and party.extra.get("refuse_deliveries", 0) > 0:
            # A check asked this party to be unavailable for a while: the
            # target's retry (VRM-HTTP-009) must resend the same bytes (VRM-FRESH-010).
            party.extra["refuse_deliveries"] -= 1
            self.refused.append((body.strip(), self.session.next_order()))
            rendered = problem_response(
                RemoteProtocolError(
                    ErrorCode.TEMPORARILY_UNAVAILABLE, "the conformance suite is testing retries"
                ),
                retry_after_seconds=1,
            )
            return web.Response(
                status=rendered.status, body=rendered.body, headers=rendered.headers
            )
        inbound = await self.accept(body.strip(), via="inbox")
        if inbound.error is not None:
            return _problem(
                RemoteProtocolError(ErrorCode(inbound.error), inbound.error_detail or "")
            )
        _, receipt = self._receipts[(str(inbound.field("from")), str(inbound.id))]
        return web.Response(
            status=200 if inbound.duplicate else 202,
            body=receipt,
            headers={"Content-Type": MESSAGE_MEDIA_TYPE},
        )

    async def accept(self, token: bytes, *, via: str) -> Inbound:
        """Run the receiving pipeline on ``token`` and record the outcome."""
        payload = peek_jws_payload(token)
        now = self.session.clock.now()
        party = self._addressee(payload)
        inbound = Inbound(
            token=token,
            payload=payload,
            received_at=now,
            receiver=party.id if party else None,
            scope=(party.scope if party else None) or self.session.active_scope,
            via=via,
        )
        sender = (payload or {}).get("from")
        if party is None:
            inbound.error = ErrorCode.WRONG_AUDIENCE.value
            inbound.error_detail = "addressed to no party the suite plays"
        else:
            kid = header_kid(token)
            jwks = (
                await self._sender_keys(sender, kid)
                if isinstance(sender, str) and not sender.startswith("did:")
                else None
            )
            decoded = decode_message(
                token, sender_jwks=jwks, receiver=party.id, now=now, judge=self.session.judge
            )
            inbound.error, inbound.error_detail = decoded.error_code, decoded.error_detail
        if inbound.ok and party is not None:
            key = (str(sender), str(inbound.id))
            previous = self._receipts.get(key)
            if previous is not None and previous[0] != token:
                inbound.error = ErrorCode.REPLAY.value
                inbound.error_detail = f"message id {inbound.id} was already used by {sender}"
            elif previous is not None:
                inbound.duplicate = True
            else:
                self._receipts[key] = (token, self._receipt(party, inbound))
        inbound.order = self.session.next_order()
        await self.record(inbound)
        return inbound

    def _addressee(self, payload: Mapping[str, Any] | None) -> LocalParty | None:
        recipients = (payload or {}).get("to")
        if not isinstance(recipients, list):
            return None
        for recipient in recipients:
            if isinstance(recipient, str) and recipient in self.parties:
                return self.parties[recipient]
        return None

    def _receipt(self, party: LocalParty, inbound: Inbound) -> bytes:
        sender = str(inbound.field("from"))
        receipt = envelope(
            "receipt",
            {
                "regarding": inbound.ref(),
                "status": "accepted",
                "receivedAt": timestamp(inbound.received_at),
            },
            sender=party.id,
            to=[sender],
            now=self.session.clock.now(),
            thread=str(inbound.field("thread") or inbound.id),
            parent=inbound.id,
        )
        return sign(receipt, party.signer)

    async def wait_for(
        self,
        predicate: Callable[[Inbound], bool],
        *,
        within: float,
        description: str,
        requirement: str | None = None,
    ) -> Inbound:
        """The first received message matching ``predicate``, waiting up to ``within`` s.

        Raises:
            CheckFailed: nothing matching arrived in time.
        """

        def find() -> Inbound | None:
            return next((item for item in self.received if predicate(item)), None)

        async with self._changed:
            try:
                async with asyncio.timeout(within):
                    while (found := find()) is None:
                        await self._changed.wait()
            except TimeoutError:
                raise CheckFailed(
                    Expectation(
                        description,
                        False,
                        expected=f"a message within {within:.0f} s",
                        # What was observed: how many messages did arrive (for
                        # any party the suite plays), and the last few of them.
                        actual=f"none matching among {len(self.received)} received"
                        + (
                            "; last: " + "; ".join(i.describe() for i in self.received[-3:])
                            if self.received
                            else ""
                        ),
                        requirement=requirement,
                    )
                ) from None
        return found

    def matching(self, predicate: Callable[[Inbound], bool]) -> list[Inbound]:
        """Every received message matching ``predicate``, in arrival order."""
        return [item for item in self.received if predicate(item)]


def _problem(error: RemoteProtocolError) -> web.Response:
    rendered = problem_response(error)
    return web.Response(status=rendered.status, body=rendered.body, headers=rendered.headers)
