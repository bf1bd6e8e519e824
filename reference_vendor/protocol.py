"""The vendor agent's use of :mod:`vrm_protocol`, in one place.

The receiving pipeline (spec §8-§9), signing (spec §8.2), envelopes (spec
§5) and receipts (spec §11.3): the
agent calls these helpers and never the codec directly, so that the
dependence on the library's API is one module deep.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.codec import Received, build_message, decode, encode, new_message_id
from vrm_protocol.http_binding import receipt_body
from vrm_protocol.keys import SigningKey, key_resolver
from vrm_protocol.limits import Limits

__all__ = [
    "MESSAGE_LIFETIME",
    "Inbound",
    "decode_inbound",
    "envelope",
    "message_digest",
    "new_message_id",
    "receipt_payload",
    "sign_message",
]

#: Lifetime the vendor gives its messages (binding convention: one day, spec §9.1).
MESSAGE_LIFETIME = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message that passed the receiving pipeline up to (not including) replay."""

    payload: dict[str, Any]
    token: bytes
    digest: str

    @property
    def sender(self) -> str:
        """The envelope's ``from``."""
        return str(self.payload["from"])

    @property
    def id(self) -> str:
        """The message id."""
        return str(self.payload["id"])

    @property
    def type(self) -> str:
        """The message type."""
        return str(self.payload["type"])

    @property
    def thread(self) -> str:
        """The thread id."""
        return str(self.payload["thread"])

    @property
    def body(self) -> dict[str, Any]:
        """The body."""
        body = self.payload.get("body")
        return body if isinstance(body, dict) else {}

    def ref(self) -> dict[str, str]:
        """A ``messageRef`` binding a reply to exactly these bytes (spec §8.5)."""
        return {"id": self.id, "digest": self.digest}


def decode_inbound(token: bytes, *, receiver: str | None, now: datetime, limits: Limits) -> Inbound:
    """Run the library's receiving pipeline on ``token`` (spec §8-§9, in that order:
    limits, header, key, signature, canonical payload, JSON, version/type, schema,
    model, key-sender binding, audience, freshness). Replay is the store's stage.

    Buyers are did:jwk pseudonyms: their key comes from the identifier, nothing is
    fetched (spec §3.1). ``receiver=None`` skips the audience stage (a fault switch).

    Raises:
        RemoteProtocolError: with the code of the first stage that failed.
    """
    received = decode(
        token, resolve_key=key_resolver(None), receiver=receiver, now=now, limits=limits
    )
    return Inbound(_payload_of(received), token, received.digest)


def _payload_of(received: Received) -> dict[str, Any]:
    # The pipeline parsed the payload into a plain JSON object of its own, and
    # ``received`` is dropped here, so the handlers may keep parts of it without
    # a second parse (and the digest of the token it computed is reused too).
    document = received.payload
    if isinstance(document, dict):
        return document
    # Another mapping: a plain JSON copy of the payload as signed.
    copy = json.loads(received.payload_bytes)
    assert isinstance(copy, dict)  # the pipeline refused anything but an object
    return copy


def envelope(
    message_type: str,
    body: Mapping[str, Any],
    *,
    sender: str,
    to: Sequence[str],
    now: datetime,
    thread: str | None = None,
    parent: str | None = None,
    reply_inbox: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    """A complete message payload (spec §5.1) with the vendor's message lifetime.
    ``thread`` defaults to the message's own id: a message without a thread starts
    one (spec §5.2)."""
    return build_message(
        message_type,
        body,
        sender=sender,
        to=to,
        now=now,
        thread=thread,
        parent=parent,
        reply_inbox=reply_inbox,
        lifetime=MESSAGE_LIFETIME,
        message_id=message_id,
    )


def sign_message(payload: Mapping[str, Any], key: SigningKey) -> bytes:
    """Serialise ``payload`` canonically and sign it under the profile (spec §8.2-§8.3).

    The codec validates the message against its schema first, so the vendor
    never puts an invalid message on the wire.

    Raises:
        LocalProtocolError: the message is not valid (schema, model).
    """
    return encode(dict(payload), key)


def receipt_payload(inbound: Inbound, *, sender: str, now: datetime) -> dict[str, Any]:
    """The ``receipt`` answering ``inbound`` on the HTTP response (spec §6.16, §11.3):
    it binds the message's id and digest, in its thread, addressed to its sender."""
    return envelope(
        "receipt",
        receipt_body(inbound.ref(), now=now),
        sender=sender,
        to=[inbound.sender],
        now=now,
        thread=inbound.thread,
        parent=inbound.id,
    )


def export_digest(data: Mapping[str, Any]) -> str:
    """The digest of an export: over the RFC 8785 canonical JSON of ``data`` (spec §6.14)."""
    return message_digest(canonical_json(dict(data)))
