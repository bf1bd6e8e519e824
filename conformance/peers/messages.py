"""Envelopes and bodies of the messages the suite sends, and signing them.

Bodies follow the message catalogue (spec §6) and Sally's car purchase: a
family car, a budget range, a trade-in, a credit union's ability-to-pay
attestation. They are deliberately ordinary: the suite tests the protocol,
not the product catalogue of the target.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from conformance.forge import JoseSigner, b64url, canonical_json, compact
from vrm_protocol.vocabulary import MESSAGE_TYP, PROTOCOL_VERSION

__all__ = [
    "DEFAULT_LIFETIME",
    "digest",
    "envelope",
    "message_ref",
    "new_message_id",
    "sign",
    "timestamp",
]

#: Envelope lifetime the suite gives its messages (binding convention: 1 day).
DEFAULT_LIFETIME: Final = timedelta(days=1)


def new_message_id() -> str:
    """A fresh message id (``urn:uuid:<uuid4>``)."""
    return f"urn:uuid:{uuid.uuid4()}"


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` and whole seconds, as the envelope wants."""
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(token: bytes) -> str:
    """The message digest: ``sha-256:`` + base64url(SHA-256(token bytes)) (spec §8.5)."""
    return "sha-256:" + b64url(hashlib.sha256(token).digest())


def message_ref(token: bytes, message_id: str) -> dict[str, str]:
    """A ``messageRef``: binds a reply to exactly the bytes received."""
    return {"id": message_id, "digest": digest(token)}


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
    lifetime: timedelta = DEFAULT_LIFETIME,
    created: datetime | None = None,
    expires: datetime | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete message payload (the envelope with its body).

    ``thread`` defaults to the message's own id: a message with no thread
    starts one (spec §5.2).
    """
    identifier = message_id or new_message_id()
    created_at = created or now
    payload: dict[str, Any] = {
        "vrm": PROTOCOL_VERSION,
        "type": message_type,
        "id": identifier,
        "thread": thread or identifier,
        "from": sender,
        "to": list(to),
        "created": timestamp(created_at),
        "expires": timestamp(expires or created_at + lifetime),
        "body": dict(body),
    }
    if parent is not None:
        payload["parent"] = parent
    if reply_inbox is not None:
        payload["replyTo"] = {"inbox": reply_inbox}
    if extensions is not None:
        payload["extensions"] = dict(extensions)
    return payload


def protected_header(signer: JoseSigner, *, typ: str = MESSAGE_TYP) -> dict[str, str]:
    """The only protected header the profile allows: alg, kid, typ (spec §8.2)."""
    return {"alg": signer.alg, "kid": signer.kid, "typ": typ}


def sign(payload: Mapping[str, Any], signer: JoseSigner, *, typ: str = MESSAGE_TYP) -> bytes:
    """Sign canonical JSON of ``payload`` as a compact JWS under the profile."""
    return compact(protected_header(signer, typ=typ), canonical_json(dict(payload)), signer)


def unverified_payload(token: bytes) -> dict[str, Any]:
    """Decode the payload of a token the suite itself made (no verification needed).

    Raises:
        ValueError: the token is not one of the suite's compact JWS.
    """
    import json

    segment = token.split(b".")[1]
    payload = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    if not isinstance(payload, dict):
        raise ValueError("not a message payload")
    return payload
