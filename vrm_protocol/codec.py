"""The outbound and inbound pipelines: messages <-> signed compact JWS bytes.

Outbound (:func:`encode`): serialize as RFC 8785 canonical JSON (spec §8.3)
and sign as a compact JWS under the profile (spec §8.2). A message model is
valid by construction (every model instance is; :func:`build_message`
builds one from body models, validating only the envelope around them), so
it is signed without being validated again; a plain payload mapping is
validated against the schema of its type first. A message that would be
refused by a conformant receiver is refused here, as a
:class:`LocalProtocolError`, before anything is sent.

Inbound (:func:`decode`), in the order of spec §8.4, each stage raising
:class:`RemoteProtocolError` with its own code, so that a message with
several faults is rejected for the earliest:

1. limits (token size, nesting), JWS framing and protected header, key
   lookup, signature, canonical payload (duplicates refused):
   :func:`~vrm_protocol.signing_profile.verify_compact`;
2. JSON object; protocol version, then message type; schema and model,
   validated once: the model is built by the one validator of the success
   path (:func:`~vrm_protocol.models.parse_message_dict`), and a payload it
   refuses is explained by the normative schema (JSON Pointer of the fault);
3. the signing key belongs to ``from`` (spec §8.4, §9.1);
4. audience (spec §9.2); freshness with clock skew (spec §9.1);
5. replay (spec §9.3), when a guard is given.

The state machine (spec §7) is the caller's next step.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, cast, overload

from pydantic import ValidationError

from vrm_protocol.canonical import canonical_json_fast, message_digest
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import (
    DEFAULT_MAX_LIFETIME,
    DEFAULT_SKEW,
    ReplayGuard,
    ReplayVerdict,
    check_audience,
    check_freshness,
    check_replay,
    format_timestamp,
    parse_timestamp,
)
from vrm_protocol.keys import DID_JWK_KEY_FRAGMENT, DID_JWK_PREFIX, KeyResolver, SigningKey
from vrm_protocol.limits import DEFAULT_LIMITS, Limits
from vrm_protocol.models import (
    FREE_JSON_BODIES,
    MESSAGE_MODELS,
    BaseMessage,
    Message,
    VRMModel,
    parse_message_dict,
    to_payload,
)
from vrm_protocol.schema_registry import default_registry
from vrm_protocol.signing_profile import sign_json, verify_compact
from vrm_protocol.vocabulary import PROTOCOL_VERSION, MessageType

__all__ = [
    "DEFAULT_LIFETIME",
    "Received",
    "build_message",
    "check_key_sender",
    "decode",
    "encode",
    "message_digest",
    "new_message_id",
    "timestamp",
]

#: The length of a protocol timestamp, ``2026-11-23T10:00:00Z``.
_TIMESTAMP_LENGTH: Final = 20
#: Envelope lifetime :func:`build_message` gives a message unless told otherwise.
DEFAULT_LIFETIME: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Received:
    """A message that passed the inbound pipeline.

    Attributes:
        message: the model of the message.
        payload: the payload as parsed (a JSON object, wire names).
        payload_bytes: the payload bytes exactly as signed (canonical JSON).
        token: the compact JWS exactly as received (store it: it is what
            ``messageRef`` digests bind to).
        digest: the message digest of ``token`` (spec §8.5).
        header: the protected header.
        signer_kid: the ``kid`` of the key that verified the signature.
        replay: ``NEW`` or ``DUPLICATE`` (an identical resend) when a replay
            guard was consulted, else ``None``.
    """

    message: Message
    payload: Mapping[str, Any] = field(repr=False)
    payload_bytes: bytes = field(repr=False)
    token: bytes = field(repr=False)
    digest: str
    header: Mapping[str, Any]
    signer_kid: str
    replay: ReplayVerdict | None = None


# -- helpers for building messages ---------------------------------------------------------------


def new_message_id() -> str:
    """A fresh message id: ``urn:uuid:`` and a random (version 4) UUID (spec §5.1)."""
    return f"urn:uuid:{uuid.uuid4()}"


def timestamp(moment: datetime) -> str:
    """A protocol timestamp (spec §5.1): RFC 3339, UTC, ``Z``, whole seconds.

    Raises:
        ValueError: ``moment`` is naive (has no time zone).
    """
    return format_timestamp(moment)


@overload
def build_message(
    message_type: MessageType | str,
    body: VRMModel,
    *,
    sender: str,
    to: Sequence[str],
    now: datetime,
    thread: str | None = None,
    parent: str | None = None,
    reply_inbox: str | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    message_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Message: ...


@overload
def build_message(
    message_type: MessageType | str,
    body: Mapping[str, Any],
    *,
    sender: str,
    to: Sequence[str],
    now: datetime,
    thread: str | None = None,
    parent: str | None = None,
    reply_inbox: str | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    message_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]: ...


def build_message(
    message_type: MessageType | str,
    body: Mapping[str, Any] | VRMModel,
    *,
    sender: str,
    to: Sequence[str],
    now: datetime,
    thread: str | None = None,
    parent: str | None = None,
    reply_inbox: str | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
    message_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Message | dict[str, Any]:
    """A complete message: the envelope (spec §5.1) around ``body``.

    A message without ``thread`` starts one: its thread is its own id (spec
    §5.2).

    With a body *model* (``OfferBody(...)``: the typed API) the result is
    the message model (``OfferMessage``), valid: the envelope is validated
    around the body, which a model already is, and :func:`encode` signs it
    without validating it again. With a body *mapping* the result is the
    payload dict (wire names), not validated here; :func:`encode` validates it.

    Raises:
        ValueError: ``message_type`` is not a message type, or ``now`` is naive.
        LocalProtocolError: (body model only) SCHEMA_INVALID: the envelope is
            not valid (e.g. ``sender`` is not a party identifier) or the body
            is not the body of ``message_type``; ``path`` names the fault.
    """
    kind = MessageType(message_type)
    identifier = message_id or new_message_id()
    envelope: dict[str, Any] = {
        "vrm": PROTOCOL_VERSION,
        "type": kind.value,
        "id": identifier,
        "thread": thread or identifier,
        "from": sender,
        "to": list(to),
        "created": timestamp(now),
        "expires": timestamp(now + lifetime),
        "body": body if isinstance(body, VRMModel) else dict(body),
    }
    if parent is not None:
        envelope["parent"] = parent
    if reply_inbox is not None:
        envelope["replyTo"] = {"inbox": reply_inbox}
    if extensions is not None:
        envelope["extensions"] = dict(extensions)
    if not isinstance(body, VRMModel):
        return envelope
    try:
        # The body is taken as the model it is (pydantic does not validate an
        # instance again); only the envelope's members are validated.
        return cast(Message, MESSAGE_MODELS[kind].model_validate(envelope))
    except ValidationError:
        # A body model of another type, or an envelope member at fault: judge
        # the payload the message stands for, so that the error is the schema's.
        payload = {**envelope, "body": to_payload(body)}
        try:
            return parse_message_dict(payload)
        except ProtocolError as error:
            raise _local(error) from None


def _local(error: ProtocolError) -> LocalProtocolError:
    return LocalProtocolError(
        error.code,
        f"refusing to send an invalid message: {error.detail}",
        path=error.path,
        extra=error.extra,
    )


# -- key and sender --------------------------------------------------------------------------------


def check_key_sender(kid: str, sender: Any) -> None:
    """Require the key ``kid`` to be one that can belong to ``sender`` (spec §8.4, §9.1).

    A buyer's pseudonym (``did:jwk``) signs only with the key its identifier
    encodes, named ``<identifier>#0``. A party identified by URL signs with a
    key from its JWKS: such a ``kid`` is a thumbprint, never a ``did:jwk``, and
    a ``did:jwk`` sender never signs with one. (That the key really is in the
    sender's published JWKS is established by the resolver the agent gives
    :func:`decode`: it must resolve the sender's keys only.)

    Raises:
        RemoteProtocolError: KEY_SENDER_MISMATCH.
    """
    sender_is_did = isinstance(sender, str) and sender.startswith(DID_JWK_PREFIX)
    if kid.startswith(DID_JWK_PREFIX):
        if not sender_is_did or kid != f"{sender}{DID_JWK_KEY_FRAGMENT}":
            raise RemoteProtocolError(
                ErrorCode.KEY_SENDER_MISMATCH,
                f"the message is signed by the pseudonym key {kid[:60]!r}…, which does not "
                "belong to the sender in 'from'",
                path="/from",
            )
    elif sender_is_did:
        raise RemoteProtocolError(
            ErrorCode.KEY_SENDER_MISMATCH,
            f"a did:jwk sender must sign with its own key '<from>#0', not kid {kid!r}",
            path="/from",
        )


# -- outbound -------------------------------------------------------------------------------------


def encode(message: Message | Mapping[str, Any], key: SigningKey) -> bytes:
    """Canonicalize and sign a message; the compact JWS to send (spec §8).

    A message model (from :func:`build_message` of body models, or from
    :func:`~vrm_protocol.models.parse_message_dict`) is valid by construction
    and is not validated again; a payload mapping (wire names) is validated
    against the schema of its type once.

    Raises:
        LocalProtocolError: SCHEMA_INVALID, UNSUPPORTED_VERSION or
            UNKNOWN_MESSAGE_TYPE (a payload mapping is not a message a
            receiver would accept; ``path`` names the fault);
            KEY_SENDER_MISMATCH (``key`` is not one that can sign for
            ``from``); NON_CANONICAL_PAYLOAD (a value with no canonical form);
            the signing profile's own refusals.
    """
    if isinstance(message, BaseMessage):
        try:
            check_key_sender(key.kid, message.from_)
        except ProtocolError as error:
            raise _local(error) from error
        # The payload as Python values (arrays as tuples, which serialize as
        # JSON arrays): the serializer's "json" mode would only copy them into lists.
        payload: dict[str, Any] = type(message).__pydantic_serializer__.to_python(
            message, by_alias=True, exclude_none=True
        )
        # Numbers of a model are integers within ±(2**53 - 1) (the schemas
        # allow no others) except in free JSON: the extensions, and bodies
        # holding JsonValue. Only those parts are walked for floats.
        free = [payload["extensions"]] if "extensions" in payload else []
        if message.type in FREE_JSON_BODIES:
            free.append(payload["body"])
        checked = all(canonical_json_fast(part) is not None for part in free)
        return sign_json(payload, key, numbers_checked=checked)
    mapping = to_payload(message) if isinstance(message, VRMModel) else dict(message)
    try:
        default_registry().validate_message(mapping)
        check_key_sender(key.kid, mapping.get("from"))
    except ProtocolError as error:
        raise _local(error) from error
    # Serialized once: canonical_json's output is canonical by construction,
    # so sign_json does not parse it again as sign_compact would.
    return sign_json(mapping, key)


def _instant(value: str, path: str) -> datetime:
    """The instant of a timestamp the model validated (pattern and calendar, spec §5.1).

    ``2026-11-23T10:00:00Z`` and nothing else reaches here, which
    ``datetime.fromisoformat`` reads exactly (ten times faster than the
    checking parser, which takes over should anything else ever arrive).
    """
    if len(value) == _TIMESTAMP_LENGTH and value[-1] == "Z":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return parse_timestamp(value, path=path)


# -- inbound --------------------------------------------------------------------------------------


def decode(
    token: bytes,
    *,
    resolve_key: KeyResolver,
    receiver: str | None,
    now: datetime,
    replay: ReplayGuard | None = None,
    limits: Limits = DEFAULT_LIMITS,
    skew: timedelta = DEFAULT_SKEW,
    max_lifetime: timedelta = DEFAULT_MAX_LIFETIME,
) -> Received:
    """Run the inbound pipeline on a compact JWS (see the module docstring for the order).

    ``receiver`` is our own identifier; ``None`` skips the audience check
    (for tools that inspect messages addressed to others). ``replay``, when
    given, classifies the message as new or an identical resend; remembering
    it is the caller's job once the message is durably stored (spec §9.3).

    Raises:
        RemoteProtocolError: the code of the first stage that refuses the
            message (limits, JWS, key, signature, payload, version, type,
            schema, key-sender binding, audience, freshness, replay).
        ValueError: ``now`` is naive.
    """
    verified = verify_compact(token, resolve_key=resolve_key, limits=limits)
    payload = verified.document
    if payload is None:  # pragma: no cover - verify_compact parses by default
        raise RemoteProtocolError(ErrorCode.MALFORMED_JSON, "payload is not a JSON object")
    # The one validation: the model is built, or the schema explains the refusal.
    message = parse_message_dict(payload)
    kid = str(verified.header["kid"])
    check_key_sender(kid, message.from_)
    if receiver is not None:
        check_audience(message.to, receiver)
    check_freshness(
        _instant(message.created, "/created"),
        _instant(message.expires, "/expires"),
        now,
        skew,
        max_lifetime=max_lifetime,
    )
    digest = message_digest(token)
    verdict = (
        check_replay(replay, sender=message.from_, message_id=message.id, digest=digest)
        if replay is not None
        else None
    )
    return Received(
        message=message,
        payload=payload,
        payload_bytes=verified.payload,
        token=token,
        digest=digest,
        header=verified.header,
        signer_kid=kid,
        replay=verdict,
    )
