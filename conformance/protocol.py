"""The suite's use of :mod:`vrm_protocol`: the normative receiving pipeline.

Everything the target sends is judged here, through the library's decoder
(limits, JWS profile, canonical payload, schema, key binding, audience,
freshness), the schema registry and the relationship state machine. Keeping
these calls in one module keeps the suite's dependence on the library's API
in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.vocabulary import Role

__all__ = [
    "Decoded",
    "StateReplay",
    "decode_message",
    "jwks_kids",
    "replay_relationship",
    "schema_errors",
]


@dataclass(frozen=True, slots=True)
class Decoded:
    """The outcome of running the receiving pipeline on one token."""

    payload: dict[str, Any] | None
    error_code: str | None = None
    error_detail: str | None = None

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
) -> Decoded:
    """Run the library's full receiving pipeline on ``token`` (spec §8-§9).

    ``sender_jwks`` holds the sender's published keys when it is identified
    by a URL; ``did:jwk`` senders need none. Never raises for a bad token:
    the error code is the verdict material.
    """
    from vrm_protocol.codec import decode
    from vrm_protocol.keys import KeySet, key_resolver

    try:
        key_set = KeySet.from_jwks(dict(sender_jwks)) if sender_jwks is not None else None
        received = decode(token, resolve_key=key_resolver(key_set), receiver=receiver, now=now)
    except ProtocolError as error:
        return Decoded(None, error.code.value, error.detail)
    payload = json.loads(received.payload)
    return Decoded(payload if isinstance(payload, dict) else None)


def schema_errors(payload: Mapping[str, Any]) -> str | None:
    """Why ``payload`` fails its type's schema, or ``None`` when it is valid."""
    from vrm_protocol.schema_registry import default_registry

    try:
        default_registry().validate_message(dict(payload))
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


#: Messages that are not moves in a relationship: HTTP-level acknowledgements
#: and asynchronous problem reports.
_NOT_TRANSITIONS = frozenset({"receipt", "problem-report"})


def replay_relationship(
    *,
    our_role: Role,
    our_id: str,
    peer_id: str,
    sent: Sequence[tuple[int, Mapping[str, Any], bool]],
    received: Sequence[tuple[int, Mapping[str, Any] | None, bool, datetime]],
) -> StateReplay:
    """Replay a relationship through :class:`vrm_protocol.state_machine.Relationship`.

    ``sent`` holds (order, payload, accepted-by-the-target); ``received``
    holds (order, payload, passed-the-pipeline, arrival time). Only what the
    target accepted and what passed the pipeline are moves. A move of the
    target the machine refuses is a fault; so is a move of the suite's that
    the machine refuses but the target accepted.
    """
    from vrm_protocol.models import parse_message_dict
    from vrm_protocol.state_machine import Relationship

    from vrm_protocol.errors import LocalProtocolError, RemoteProtocolError

    relationship = Relationship(our_role, our_id, peer_id)
    events: list[tuple[int, str, Mapping[str, Any]]] = []
    for order, payload, accepted in sent:
        if accepted and payload.get("type") not in _NOT_TRANSITIONS:
            events.append((order, "send", payload))
    for order, payload, ok, _ in received:
        if ok and payload is not None and payload.get("type") not in _NOT_TRANSITIONS:
            events.append((order, "receive", payload))
    events.sort(key=lambda event: event[0])
    faults: list[str] = []
    for _, direction, payload in events:
        label = f"{payload.get('type')} {payload.get('id')}"
        message = parse_message_dict(dict(payload))
        now = _created(payload)
        try:
            if direction == "send":
                relationship.send(message, now=now)
            else:
                relationship.receive(message, now=now)
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
