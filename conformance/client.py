"""HTTP calls from the suite, each recorded in the transcript."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict

from conformance.transcript import Direction, Exchange, Transcript

__all__ = ["HttpReply", "TargetUnreachable", "request"]


class TargetUnreachable(Exception):
    """The target did not answer an HTTP request (refused, reset, timed out)."""

    def __init__(self, method: str, url: str, reason: str) -> None:
        super().__init__(f"{method} {url}: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HttpReply:
    """An HTTP response as received."""

    status: int
    #: Case-insensitive, as HTTP header names are (RFC 9110 §5.1).
    headers: Mapping[str, str]
    body: bytes
    exchange: Exchange

    @property
    def content_type(self) -> str:
        """The media type, without parameters, lower-cased."""
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: the body is not JSON.
        """
        return json.loads(self.body)

    def problem_code(self) -> str | None:
        """The ``code`` member of an RFC 9457 problem body, if the body is one."""
        try:
            document = self.json()
        except ValueError:
            return None
        code = document.get("code") if isinstance(document, dict) else None
        return code if isinstance(code, str) else None


async def request(
    http: aiohttp.ClientSession,
    transcript: Transcript,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    json_body: Any = None,
    note: str | None = None,
    time_limit: float = 10.0,
) -> HttpReply:
    """Send one request and record it.

    Redirects are never followed: a conformant agent answers at the address
    it published, and following a redirect could make the suite fetch a URL
    the target chose.

    Raises:
        TargetUnreachable: no HTTP response arrived within ``time_limit``.
    """
    send_headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        send_headers.setdefault("Content-Type", "application/json")
    exchange = transcript.open(
        Direction.TO_TARGET, method, url, headers=send_headers, body=body, note=note
    )
    try:
        async with http.request(
            method,
            url,
            data=body,
            headers=send_headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=time_limit),
        ) as response:
            payload = await response.read()
            reply_headers = CIMultiDict(response.headers)
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        exchange.error = f"{type(error).__name__}: {error}"
        raise TargetUnreachable(method, url, exchange.error) from error
    Transcript.complete(exchange, response.status, headers=reply_headers, body=payload)
    return HttpReply(response.status, reply_headers, payload, exchange)
