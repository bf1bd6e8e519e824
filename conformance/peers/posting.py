"""POSTing a message to the target's inbox and judging its answer (spec §11.3)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.client import HttpReply, TargetUnreachable, request
from conformance.context import Session
from conformance.model import CheckFailed, Expectation
from conformance.protocol import Decoded, decode_message
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

__all__ = ["InboxReply", "Sent", "header_kid", "post_to_inbox"]

#: Given the receipt's ``kid``, the JWKS of the target (``None`` for did:jwk targets).
ReceiptKeys = Callable[[str], Awaitable[Mapping[str, Any] | None]]


def header_kid(token: bytes) -> str:
    """The ``kid`` of a token's protected header ("" when unreadable).

    Read only to choose which published key set to hand the verifier; the
    verifier itself decides whether the header is acceptable.
    """
    try:
        segment = token.split(b".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (ValueError, IndexError, binascii.Error):
        return ""
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else ""


@dataclass(slots=True)
class InboxReply:
    """The target's answer to one POST to its inbox."""

    http: HttpReply
    #: The token that was posted.
    token: bytes
    #: The target's receipt as judged by the receiving pipeline (2xx only).
    receipt: Decoded | None = None
    receipt_token: bytes | None = None

    @property
    def status(self) -> int:
        """HTTP status."""
        return self.http.status

    @property
    def accepted(self) -> bool:
        """Whether the target took the message (``202``, or ``200`` for a resend)."""
        return self.http.status in (200, 202)

    @property
    def problem_code(self) -> str | None:
        """The problem details' ``code`` for a rejection."""
        return self.http.problem_code()

    def describe(self) -> str:
        """Status and code, for expectations' ``actual``."""
        code = self.problem_code
        return f"{self.status}" + (f" {code}" if code else "")


async def post_to_inbox(
    session: Session,
    inbox_url: str,
    token: bytes,
    *,
    receiver: str,
    receipt_keys: ReceiptKeys,
    note: str | None = None,
    content_type: str = MESSAGE_MEDIA_TYPE,
    headers: Mapping[str, str] | None = None,
) -> InboxReply:
    """POST ``token`` and judge the receipt of a 2xx answer.

    ``receiver`` is the suite party the receipt must be addressed to.

    Raises:
        CheckFailed: the target did not answer at all.
    """
    send_headers = {"Content-Type": content_type, **(headers or {})}
    try:
        http = await request(
            session.http,
            session.transcript,
            "POST",
            inbox_url,
            headers=send_headers,
            body=token,
            note=note,
        )
    except TargetUnreachable as error:
        raise CheckFailed(
            Expectation("the target's inbox answers", False, actual=error.reason)
        ) from error
    reply = InboxReply(http, token)
    if reply.accepted:
        reply.receipt_token = http.body.strip()
        jwks = await receipt_keys(header_kid(reply.receipt_token))
        reply.receipt = decode_message(
            reply.receipt_token,
            sender_jwks=jwks,
            receiver=receiver,
            now=session.clock.now(),
            judge=session.judge,
        )
    return reply


@dataclass(slots=True)
class Sent:
    """A message a persona sent and how the target answered."""

    payload: dict[str, Any]
    token: bytes
    #: The target's answer; ``None`` when the message was left in a mailbox.
    reply: InboxReply | None
    #: Run-wide order of sends and receipts (see ``Session.next_order``).
    order: int = 0

    @property
    def taken(self) -> bool:
        """Whether the target took the message: accepted over HTTP, or left in a
        mailbox for it to collect (a move of the relationship either way)."""
        return self.reply is None or self.reply.accepted
