"""The suite's use of :mod:`vrm_protocol`: the normative receiving pipeline.

Everything the target sends is judged here, through the library's decoder
(limits, JWS profile, canonical payload, schema, key binding, audience,
freshness), the schema registry and the relationship state machine. Keeping
these calls in one module keeps the suite's dependence on the library's API
in one place. Signatures, headers and keys are judged a second time by the
suite's own verifier (:mod:`conformance.judge`), so that a defect of the
library's signing profile cannot hide in the judge as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conformance.judge import ATTESTATION_TYP, POLL_TYP, Judge
from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.vocabulary import Role

__all__ = [
    "Decoded",
    "StateReplay",
    "attestation_refusal",
    "decode_message",
    "jwks_kids",
    "jwks_refusal",
    "replay_relationship",
    "schema_errors",
    "schema_errors_of",
    "verify_poll",
]


@dataclass(frozen=True, slots=True)
class Decoded:
    """The outcome of running the receiving pipeline on one token."""

    payload: dict[str, Any] | None
    error_code: str | None = None
    error_detail: str | None = None
    #: Why the suite's own verifier disagrees with the library's verdict (a
    #: harness error of the check, never the target's fault), if it does.
    disagreement: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the token passed every stage."""
        return self.error_code is None


def decode_message(
    token: bytes,
    *,
    sender_jwks: Mapping[str, Any] | None,
    receiver: str | None,
    now: datetime,
    judge: Judge,
) -> Decoded:
    """Run the library's full receiving pipeline on ``token`` (spec §8-§9),
    and have ``judge`` verify it again (stages 3-7 and the key binding).

    ``sender_jwks`` holds the sender's published keys when it is identified
    by a URL; ``did:jwk`` senders need none. Never raises for a bad token:
    the error code is the verdict material. The verdict is the library's; a
    disagreement is recorded by ``judge`` (the runner makes the check a
    harness error) and named in :attr:`Decoded.disagreement`.
    """
    from vrm_protocol.codec import decode
    from vrm_protocol.keys import KeySet, key_resolver

    try:
        key_set = KeySet.from_jwks(dict(sender_jwks)) if sender_jwks is not None else None
        received = decode(token, resolve_key=key_resolver(key_set), receiver=receiver, now=now)
    except ProtocolError as error:
        decoded = Decoded(None, error.code.value, error.detail)
    else:
        decoded = Decoded(dict(received.payload))
    disagreement = judge.review(token, sender_jwks=sender_jwks, library_code=decoded.error_code)
    if disagreement is not None:
        return Decoded(
            decoded.payload, decoded.error_code, decoded.error_detail, disagreement.reason
        )
    return decoded


def verify_poll(
    token: bytes, *, mailbox_owner: str, now: datetime, judge: Judge
) -> tuple[str, int]:
    """Verify a mailbox poll token the target sent (spec §11.4): the poller and
    its ``after``. ``judge`` verifies it again (a disagreement is recorded).

    Raises:
        ProtocolError: the library refuses the token (the verdict is the library's).
    """
    from vrm_protocol.http_binding import verify_poll_token

    try:
        poll = verify_poll_token(token, mailbox_owner=mailbox_owner, now=now)
    except ProtocolError as error:
        judge.review(token, sender_jwks=None, library_code=error.code.value, typ=POLL_TYP)
        raise
    judge.review(token, sender_jwks=None, library_code=None, typ=POLL_TYP)
    return poll.poller, int(poll.after)


def attestation_refusal(
    attestation: Mapping[str, Any],
    *,
    subject: str,
    audience: str,
    now: datetime,
    judge: Judge,
) -> str | None:
    """Why the library refuses an attestation by a ``did:jwk`` issuer (spec §10.3),
    or ``None``; ``judge`` verifies its token again under the profile.
    """
    from vrm_protocol.attestations import verify_attestation

    issuer = str(attestation.get("issuer"))
    library_code: str | None = None
    refusal: str | None = None
    try:
        verify_attestation(
            attestation,
            trusted_issuers={issuer: None},
            subject=subject,
            audience=audience,
            now=now,
        )
    except Exception as error:  # the library's verdict, whatever its class
        refusal = str(error)
        # The signing profile's own code, when that is what refused the token.
        cause = error.__cause__
        library_code = (
            cause.code.value if isinstance(cause, ProtocolError) else "attestation-invalid"
        )
    token = attestation.get("token")
    if isinstance(token, str) and token.isascii():
        judge.review(
            token.encode("ascii"), sender_jwks=None, library_code=library_code, typ=ATTESTATION_TYP
        )
    return refusal


def jwks_refusal(document: Any, *, judge: Judge, subject: str) -> str | None:
    """Why a published JWKS is refused (spec §8.4, VRM-SIG-022), or ``None``.

    The library imports it and ``judge`` imports it again; a disagreement is
    recorded by ``judge``. The answer is the library's.
    """
    from vrm_protocol.keys import KeySet

    refusal: str | None = None
    try:
        KeySet.from_jwks(document)
    except (ProtocolError, ValueError) as error:
        refusal = str(error)
    judge.review_jwks(document, library_refusal=refusal, subject=subject)
    return refusal


def schema_errors(payload: Mapping[str, Any]) -> str | None:
    """Why ``payload`` fails its type's schema, or ``None`` when it is valid."""
    from vrm_protocol.schema_registry import default_registry

    try:
        default_registry().validate_message(dict(payload))
    except ProtocolError as error:
        return f"{error.code.value}: {error.detail}"
    return None


def schema_errors_of(instance: Any, schema_file: str) -> str | None:
    """Why ``instance`` fails the schema file ``schema_file`` (e.g. attestation
    claims), or ``None`` when it is valid.

    Raises:
        KeyError: the library has no schema file of that name.
    """
    from vrm_protocol.schema_registry import default_registry

    try:
        default_registry().validate(instance, schema_file)
    except ProtocolError as error:
        return f"{error.code.value}: {error.detail}"
    return None


def jwks_kids(jwks: Mapping[str, Any]) -> set[str]:
    """The ``kid`` values of a JWKS document (empty when it is not one)."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return set()
    return {str(key["kid"]) for key in keys if isinstance(key, dict) and "kid" in key}


def error_code(value: str) -> ErrorCode:
    """The registry entry for a code string.

    Raises:
        ValueError: not a registered code.
    """
    return ErrorCode(value)


@dataclass(frozen=True, slots=True)
class StateReplay:
    """What replaying one relationship through the state machine found."""

    steps: int
    faults: tuple[str, ...]


#: Messages that are not moves in a relationship (spec §8.6 stage 14, "Not a
#: move"): the registry's always-allowed types, receipts and problem reports.
_NOT_TRANSITIONS = frozenset(
    message_type.value for message_type, spec in MESSAGE_TYPES.items() if spec.always_allowed
)


def replay_relationship(
    *,
    our_role: Role,
    our_id: str,
    peer_id: str,
    sent: Sequence[tuple[int, Mapping[str, Any], bool, str]],
    received: Sequence[tuple[int, Mapping[str, Any] | None, bool, str]],
) -> StateReplay:
    """Replay a relationship through :class:`vrm_protocol.state_machine.Relationship`.

    ``sent`` holds (order, payload, accepted-by-the-target, digest); ``received``
    holds (order, payload, passed-the-pipeline, digest). Only what the target
    accepted and what passed the pipeline are moves. A move of the target the
    machine refuses is a fault; so is a move of the suite's that the machine
    refuses but the target accepted. Each move is judged at its own
    ``created`` time, the time its sender claimed (and the target checked).
    """
    from vrm_protocol.errors import LocalProtocolError, RemoteProtocolError
    from vrm_protocol.state_machine import Relationship

    relationship = Relationship(our_role, our_id, peer_id)
    events: list[tuple[int, str, Mapping[str, Any], str]] = []
    # An identical resend is one message, not two moves (spec §11.3): each
    # (direction, id) is replayed once, at its first occurrence.
    seen: set[tuple[str, str]] = set()
    for order, sent_payload, accepted, sent_digest in sent:
        key = ("send", str(sent_payload.get("id")))
        if accepted and sent_payload.get("type") not in _NOT_TRANSITIONS and key not in seen:
            seen.add(key)
            events.append((order, "send", sent_payload, sent_digest))
    for order, received_payload, ok, received_digest in received:
        if not ok or received_payload is None:
            continue
        key = ("receive", str(received_payload.get("id")))
        if received_payload.get("type") not in _NOT_TRANSITIONS and key not in seen:
            seen.add(key)
            events.append((order, "receive", received_payload, received_digest))
    events.sort(key=lambda event: event[0])
    faults: list[str] = []
    for _, direction, payload, message_digest in events:
        label = f"{payload.get('type')} {payload.get('id')}"
        now = _created(payload)
        try:
            if direction == "send":
                relationship.send(payload, now=now, digest=message_digest)
            else:
                relationship.receive(payload, now=now, digest=message_digest)
        except LocalProtocolError as error:
            faults.append(
                f"the target accepted {label} from the suite, an illegal move "
                f"({error.code.value}: {error.detail})"
            )
        except RemoteProtocolError as error:
            faults.append(
                f"the target sent {label}, an illegal move ({error.code.value}: {error.detail})"
            )
    return StateReplay(len(events), tuple(faults))


def _created(payload: Mapping[str, Any]) -> datetime:
    value = str(payload.get("created", ""))
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
