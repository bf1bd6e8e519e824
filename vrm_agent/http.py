"""The HTTP side every agent shares: problem details, bounded bodies, the inbox and
mailbox routes (spec §11).

* :func:`problem_details` — a middleware making every non-2xx answer of every
  route RFC 9457 problem details with a registry code (spec §11.5, D9): a
  protocol error keeps its code; what aiohttp raises itself (no route, a method
  the route does not take, a body over the limit) gets the code of its status
  (``Allow`` kept on 405); a store that cannot be written is ``503
  temporarily-unavailable`` with ``Retry-After`` after one log line (D11);
  anything unexpected is ``internal-error`` after one log line with its
  traceback;
* :func:`read_body` — a body read within a size bound and a time bound (§11.6);
* :func:`inbox_route` — step 1 of the inbox pipeline (headers judged before the
  body is read, the address charged before anything is verified), then the
  pipeline, then the receipt, written before any reply can be delivered;
* :func:`mailbox_route` — ``GET /vrm/mailbox`` with a signed poll token (§11.4).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import web

from vrm_agent.clock import Clock
from vrm_agent.inbox import InboxAnswer
from vrm_agent.store import StoreUnavailable
from vrm_agent.strategies import Admission
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    POLL_AUTH_SCHEME,
    RateLimiter,
    check_inbox_request,
    parse_cursor,
    poll_token_from_authorization,
    problem_response,
)
from vrm_protocol.limits import Limits, check_nesting
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

__all__ = [
    "STATUS_CODES",
    "STORE_RETRY_AFTER_SECONDS",
    "Handler",
    "inbox_route",
    "json_object",
    "mailbox_route",
    "problem",
    "problem_details",
    "read_body",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: What a 503 for an unavailable store asks the sender to wait (seconds).
STORE_RETRY_AFTER_SECONDS: Final = 5

#: The registry code for each status aiohttp itself answers with (router, body limits).
STATUS_CODES: Final[Mapping[int, ErrorCode]] = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.AUTHENTICATION_REQUIRED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    408: ErrorCode.REQUEST_TIMEOUT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.TEMPORARILY_UNAVAILABLE,
}


def code_for_status(status: int) -> ErrorCode:
    """The registry code for an HTTP status (``internal-error`` for other 5xx)."""
    return STATUS_CODES.get(
        status, ErrorCode.INVALID_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR
    )


def problem(error: ProtocolError, request: web.Request | None = None) -> web.Response:
    """``error`` as RFC 9457 problem details (spec §11.5), with the headers its
    status calls for: ``Retry-After`` on 429 and 503, ``WWW-Authenticate`` on 401
    (``extra["www_authenticate"]``), and the connection closed when
    ``extra["close"]`` says the rest of the request will not be read."""
    extra = dict(error.extra)
    retry = extra.pop("retry_after", None)
    challenge = extra.pop("www_authenticate", None)
    close = bool(extra.pop("close", False))
    if retry is None and error.code is ErrorCode.TEMPORARILY_UNAVAILABLE:
        retry = STORE_RETRY_AFTER_SECONDS
    rendered = problem_response(
        error,
        instance=request.path if request is not None else None,
        retry_after_seconds=int(retry) if isinstance(retry, int) else None,
    )
    response = web.Response(status=rendered.status, body=rendered.body, headers=rendered.headers)
    if isinstance(challenge, str):
        response.headers["WWW-Authenticate"] = challenge
    if close:
        response.force_close()
    return response


def store_unavailable(error: StoreUnavailable, request: web.Request) -> web.Response:
    """D11: the store cannot be written now; nothing was applied, so the sender may
    resend. One log line, no traceback."""
    log.error("%s %s: the store is unavailable: %s", request.method, request.path, error)
    return problem(
        RemoteProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE,
            "the agent cannot store anything now; nothing was applied, send it again later",
            extra={"retry_after": STORE_RETRY_AFTER_SECONDS},
        ),
        request,
    )


@web.middleware
async def problem_details(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every non-2xx answer of every route is problem details (see the module docstring)."""
    try:
        return await handler(request)
    except ProtocolError as error:
        return problem(error, request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = problem(
            RemoteProtocolError(code_for_status(error.status), error.reason), request
        )
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except StoreUnavailable as error:
        return store_unavailable(error, request)
    except ConnectionError as error:
        # The client went away mid-request (an aborted upload): nothing to answer
        # and nothing went wrong here, so one line, not a traceback.
        log.info("%s %s: the client went away: %s", request.method, request.path, error)
        return problem(RemoteProtocolError(ErrorCode.INVALID_REQUEST, str(error)), request)
    except Exception:
        log.exception("%s %s: unexpected failure", request.method, request.path)
        return problem(
            RemoteProtocolError(
                ErrorCode.INTERNAL_ERROR,
                "the agent failed to process the request; nothing was applied",
            ),
            request,
        )


async def read_body(request: web.Request, limit: int, time_bound: float) -> bytes:
    """Read at most ``limit`` bytes of the body within ``time_bound`` seconds; more is
    ``payload-too-large``, slower is ``request-timeout`` (spec §11.6).

    The declared length was checked before; this bounds a chunked body too. A
    body that does not arrive in time is answered at once and the connection
    closed, so a client that never finishes holds it seconds, not minutes.

    Raises:
        RemoteProtocolError: PAYLOAD_TOO_LARGE or REQUEST_TIMEOUT.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(time_bound):
            while True:
                chunk = await request.content.read(65536)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > limit:
                    raise RemoteProtocolError(
                        ErrorCode.PAYLOAD_TOO_LARGE,
                        f"the body exceeds the limit of {limit} bytes",
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise RemoteProtocolError(
            ErrorCode.REQUEST_TIMEOUT,
            f"the body did not arrive within {time_bound:g} s",
            extra={"close": True},
        ) from None


async def json_object(request: web.Request, limits: Limits, time_bound: float) -> dict[str, Any]:
    """The JSON object of an instruction (a test driver's, an operator's).

    The body is bounded in size like a message and its nesting checked on the
    raw bytes by the library before ``json.loads`` sees it (spec §11.6), so a
    hostile instruction cannot exhaust the parser's stack either.

    Raises:
        RemoteProtocolError: INVALID_REQUEST (not a JSON object), or
            PAYLOAD_TOO_LARGE / NESTING_TOO_DEEP / REQUEST_TIMEOUT.
    """
    body = await read_body(request, limits.max_message_bytes, time_bound)
    check_nesting(body, limits)
    try:
        document = json.loads(body)
    except ValueError as error:
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, f"a JSON object is expected: {error}"
        ) from error
    if not isinstance(document, dict):
        raise RemoteProtocolError(ErrorCode.INVALID_REQUEST, "a JSON object is expected")
    return document


def inbox_route(
    receive: Callable[[bytes], Awaitable[InboxAnswer]],
    *,
    limits: Limits,
    body_timeout: float,
    clock: Clock,
    address_limiter: RateLimiter,
    sender_limiter: RateLimiter | None,
    admission: Admission,
    after_answer: Callable[[], None],
) -> Handler:
    """``POST /vrm/inbox`` (spec §11.3): step 1 of the pipeline, then ``receive``.

    ``after_answer`` runs once the receipt is written (it wakes the outbox: a
    reply never overtakes the receipt of the message it answers).
    """
    limit = limits.max_message_bytes

    async def inbox(request: web.Request) -> web.StreamResponse:
        # Headers first: an oversized or mistyped body is refused unread (§11.3, §11.6).
        check_inbox_request(
            request.headers.get("Content-Type"), request.content_length, max_message_bytes=limit
        )
        # spec §11.6 (VRM-HTTP-018): before the signature is verified only the
        # address is charged; the sender's budget is the pipeline's, once it
        # verified who sent the message. Nothing here parses the token.
        admission.before_body(request.remote, clock.monotonic(), address=address_limiter)
        token = await read_body(request, limit, body_timeout)
        admission.before_verification(token, clock.monotonic(), sender=sender_limiter)
        answer = await receive(token.strip())
        response = web.Response(status=answer.status, body=answer.receipt)
        response.content_type = MESSAGE_MEDIA_TYPE
        if answer.queued:
            # The receipt first: a reply never overtakes it.
            await response.prepare(request)
            await response.write_eof()
            after_answer()
        return response

    return inbox


def mailbox_route(
    page: Callable[[bytes, int | None], Awaitable[Mapping[str, Any]]],
    *,
    clock: Clock,
    address_limiter: RateLimiter,
) -> Handler:
    """``GET /vrm/mailbox?after=N`` with a signed poll token (spec §11.4).

    ``page(poll_token, after)`` verifies the token and returns the page.
    """

    async def mailbox(request: web.Request) -> web.StreamResponse:
        try:
            # spec §11.6: a poll costs a signature verification; the address pays first.
            address_limiter.check(request.remote or "unknown", clock.monotonic())
            # spec §11.4: credentials first (401 names the scheme), then the query.
            token = poll_token_from_authorization(request.headers.get("Authorization"))
            after = parse_cursor(request.query.getall("after", []))
            document = await page(token, after)
        except ProtocolError as error:
            response = problem(error, request)
            if error.code is ErrorCode.AUTHENTICATION_REQUIRED:
                response.headers["WWW-Authenticate"] = POLL_AUTH_SCHEME
            return response
        return web.json_response(dict(document))

    return mailbox
