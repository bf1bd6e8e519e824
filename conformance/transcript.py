"""The run's transcript: every HTTP exchange between the suite and the target.

Every run records the full transcript, whichever way the traffic flows (the
suite calling the target, or the target calling one of the suite's servers),
so that a verdict can always be traced to the bytes that caused it. Each
exchange is tagged with the *scope* it happened in: the id of the running
check, or the name of the shared fixture (scenario) that produced it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "MAX_RECORDED_BODY",
    "Direction",
    "Exchange",
    "Transcript",
    "current_scope",
    "peek_jws_payload",
    "scoped",
]

#: Bodies larger than this are recorded as a prefix plus length and digest;
#: the oversized-message checks would otherwise put megabytes in every report.
MAX_RECORDED_BODY: Final = 64 * 1024

#: The scope new exchanges are tagged with (a check id or a fixture name).
current_scope: ContextVar[str | None] = ContextVar("conformance_scope", default=None)


class Direction(StrEnum):
    """Who opened the exchange."""

    TO_TARGET = "suite->target"
    FROM_TARGET = "target->suite"


def _record_body(body: bytes | str | None) -> str | None:
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    text = raw.decode("utf-8", errors="replace")
    if len(raw) <= MAX_RECORDED_BODY:
        return text
    digest = hashlib.sha256(raw).hexdigest()
    return f"{text[:2048]}... [{len(raw)} bytes in all, sha-256 {digest}]"


def peek_jws_payload(token: bytes | str | None) -> dict[str, Any] | None:
    """Decode a compact JWS payload *without verifying it*, for display only.

    Returns ``None`` when the token is not a compact JWS with a JSON object
    payload. Never used to decide a verdict: verdicts come from verification.
    """
    if token is None:
        return None
    text = token.decode("ascii", errors="replace") if isinstance(token, bytes) else token
    parts = text.strip().split(".")
    if len(parts) != 3 or len(text) > MAX_RECORDED_BODY:
        return None
    try:
        segment = parts[1] + "=" * (-len(parts[1]) % 4)
        payload = json.loads(base64.urlsafe_b64decode(segment))
    except (ValueError, binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


@dataclass(slots=True)
class Exchange:
    """One HTTP request and its response, as seen on the wire."""

    seq: int
    at: str
    direction: Direction
    scope: str | None
    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None
    #: A note the suite adds: what it forged, or why it rejected the request.
    note: str | None = None
    #: A transport error instead of a response (connection refused, timeout).
    error: str | None = None

    @property
    def message_type(self) -> str | None:
        """The ``type`` of the message in the request, when there is one."""
        payload = peek_jws_payload(self.request_body)
        value = payload.get("type") if payload else None
        return value if isinstance(value, str) else None

    def to_json(self) -> dict[str, Any]:
        """The exchange as a JSON object; messages are shown decoded beside the raw token."""
        data: dict[str, Any] = {
            "seq": self.seq,
            "at": self.at,
            "direction": self.direction.value,
            "scope": self.scope,
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": self.request_headers,
                "body": self.request_body,
            },
        }
        request_message = peek_jws_payload(self.request_body)
        if request_message is not None:
            data["request"]["message"] = request_message
        if self.status is not None:
            data["response"] = {
                "status": self.status,
                "headers": self.response_headers,
                "body": self.response_body,
            }
            response_message = peek_jws_payload(self.response_body)
            if response_message is not None:
                data["response"]["message"] = response_message
        if self.note is not None:
            data["note"] = self.note
        if self.error is not None:
            data["error"] = self.error
        return data


_RECORDED_HEADERS: Final = frozenset(
    {"content-type", "content-length", "authorization", "retry-after", "location"}
)


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {
        name: value for name, value in (headers or {}).items() if name.lower() in _RECORDED_HEADERS
    }


class Transcript:
    """Append-only record of every exchange in a run."""

    def __init__(self) -> None:
        self._exchanges: list[Exchange] = []

    def open(
        self,
        direction: Direction,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        note: str | None = None,
        scope: str | None = None,
    ) -> Exchange:
        """Record a request; complete it with :meth:`complete`.

        ``scope`` defaults to the current scope; the suite's servers pass the
        scope of the check that set up the party the target is calling.
        """
        exchange = Exchange(
            seq=len(self._exchanges) + 1,
            at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            direction=direction,
            scope=scope if scope is not None else current_scope.get(),
            method=method,
            url=url,
            request_headers=_headers(headers),
            request_body=_record_body(body),
            note=note,
        )
        self._exchanges.append(exchange)
        return exchange

    @staticmethod
    def complete(
        exchange: Exchange,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
    ) -> None:
        """Record the response to ``exchange``."""
        exchange.status = status
        exchange.response_headers = _headers(headers)
        exchange.response_body = _record_body(body)

    def __iter__(self) -> Iterator[Exchange]:
        return iter(list(self._exchanges))

    def __len__(self) -> int:
        return len(self._exchanges)

    def in_scopes(self, scopes: set[str]) -> list[Exchange]:
        """The exchanges tagged with any of ``scopes``, in order."""
        return [exchange for exchange in self._exchanges if exchange.scope in scopes]

    def to_json(self) -> list[dict[str, Any]]:
        """Every exchange as JSON, in order."""
        return [exchange.to_json() for exchange in self._exchanges]


@contextmanager
def scoped(scope: str) -> Iterator[None]:
    """Tag exchanges made inside the block (and tasks it starts) with ``scope``."""
    token = current_scope.set(scope)
    try:
        yield
    finally:
        current_scope.reset(token)
