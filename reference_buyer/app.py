"""The buyer agent over HTTP (spec §11): discovery, keys, inbox, test driver.

A buyer agent's inbox follows the same binding rules as a vendor's: the
media type and declared length are judged before the body is read, the
message goes through the receiving pipeline with a durable replay guard,
``202`` and a signed receipt come only after the message is committed, an
identical resend gets ``200`` and the original receipt, and every refusal is
RFC 9457 problem details (aiohttp's own 404, 405 and 413 included, spec D9;
a store that cannot write is ``503`` with ``Retry-After``, spec D11). Each
relationship also has a reply address of its own, ``/vrm/inbox/{tag}`` with a
random tag (spec §12), that takes only that relationship's messages.

The buyer's keys are pairwise ``did:jwk`` pseudonyms, resolved from the
identifiers themselves, so its JWKS is present but empty (spec §3.1).

In test mode (spec §14.3) the test driver takes the instructions a person
would give (``/rfi``, ``/rfp``, ``/accept``, ``/decline``, ``/terms``,
``/service``, ``/exit``), moves the clock and reports the state; an
instruction it cannot act on is ``400 invalid-request``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from reference_buyer.agent import BuyerAgent
from reference_buyer.scenario import sally_rfi_body, sally_rfp_body
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    POLL_AUTH_SCHEME,
    TEST_DRIVER_PREFIX,
    RateLimiter,
    check_inbox_request,
    discovery_document,
    mailbox_page,
    poll_token_from_authorization,
    problem_response,
    verify_poll_token,
)
from vrm_protocol.limits import DEFAULT_LIMITS
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

__all__ = ["AGENT", "CONFIG", "AppConfig", "create_app"]

ACCEPTS = (
    MessageType.OFFER,
    MessageType.DEAL_CONFIRMATION,
    MessageType.TERMS_ASSERTION,
    MessageType.SERVICE_NOTICE,
    MessageType.SUPPORT_RESOLUTION,
    MessageType.EXIT_ACKNOWLEDGEMENT,
    MessageType.PROBLEM_REPORT,
    MessageType.RECEIPT,
)
SENDS = (
    MessageType.PERSONAL_RFI,
    MessageType.PERSONAL_RFP,
    MessageType.OFFER,
    MessageType.OFFER_ACCEPTANCE,
    MessageType.OFFER_DECLINE,
    MessageType.TERMS_RESPONSE,
    MessageType.SERVICE_RESPONSE,
    MessageType.SUPPORT_REQUEST,
    MessageType.EXIT_NOTICE,
    MessageType.PROBLEM_REPORT,
    MessageType.RECEIPT,
)


@dataclass
class AppConfig:
    """How the HTTP side of the agent is set up."""

    #: The agent's base URL once known (after binding); else each request's origin.
    base_url: str | None = None
    test_mode: bool = False
    max_message_bytes: int = DEFAULT_LIMITS.max_message_bytes
    rate_per_minute: int = 6000
    #: How long a client may take to send a message's body (spec D9: ``request-timeout``).
    body_read_timeout: float = 10.0
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        per_second = self.rate_per_minute / 60
        self.limiter = RateLimiter(rate_per_second=per_second, burst=max(1, int(per_second * 2)))


_log = logging.getLogger(__name__)

AGENT = web.AppKey("agent", BuyerAgent)
CONFIG = web.AppKey("config", AppConfig)
#: When a store that cannot write asks the sender to come back (spec D11).
STORE_RETRY_AFTER_SECONDS = 5
#: The largest mailbox cursor a query may name: 2^53 - 1, exact in every JSON (spec D9).
MAX_CURSOR = 2**53 - 1
#: How far the test driver may move the agent's clock (ten years either way).
MAX_CLOCK_OFFSET_SECONDS = 10 * 366 * 86400


class InvalidInstruction(ValueError):
    """A test-driver instruction the agent cannot act on (spec D9: ``invalid-request``)."""


def _problem(error: ProtocolError) -> web.Response:
    retry: int | None = None
    if error.code is ErrorCode.RATE_LIMITED:
        value = error.extra.get("retry_after")
        retry = int(value) if isinstance(value, int) else None
    elif error.code is ErrorCode.TEMPORARILY_UNAVAILABLE:
        retry = STORE_RETRY_AFTER_SECONDS
    rendered = problem_response(error, retry_after_seconds=retry)
    return web.Response(status=rendered.status, body=rendered.body, headers=rendered.headers)


def _http_problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    """Problem details for an HTTP-level refusal that carried no message (spec D9)."""
    code = {
        400: ErrorCode.INVALID_REQUEST,
        401: ErrorCode.AUTHENTICATION_REQUIRED,
        404: ErrorCode.NOT_FOUND,
        405: ErrorCode.METHOD_NOT_ALLOWED,
        408: ErrorCode.REQUEST_TIMEOUT,
        413: ErrorCode.PAYLOAD_TOO_LARGE,
        415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        429: ErrorCode.RATE_LIMITED,
        503: ErrorCode.TEMPORARILY_UNAVAILABLE,
    }.get(status, ErrorCode.INTERNAL_ERROR if status >= 500 else ErrorCode.INVALID_REQUEST)
    response = _problem(LocalProtocolError(code, detail))
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@web.middleware
async def problem_details(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every non-2xx answer is RFC 9457 problem details with a registry code (spec
    §11.5, D9): aiohttp's own 404, 405 (with ``Allow``) and 413 included."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        extra: dict[str, str] = {}
        if isinstance(error, web.HTTPMethodNotAllowed):
            extra["Allow"] = ", ".join(sorted(error.allowed_methods))
        return _http_problem(error.status, error.reason, extra)


def _base_url(request: web.Request) -> str:
    configured = request.app[CONFIG].base_url
    return configured if configured is not None else str(request.url.origin())


async def discovery(request: web.Request) -> web.Response:
    """``GET /.well-known/vrm`` (spec §11.1)."""
    config = request.app[CONFIG]
    base = _base_url(request)
    document = discovery_document(
        party_id=base,
        role="buyer",
        name="Reference buyer agent",
        base_url=base,
        accepts=ACCEPTS,
        sends=SENDS,
        max_message_bytes=config.max_message_bytes,
        max_depth=DEFAULT_LIMITS.max_nesting_depth,
        rate_per_minute=config.rate_per_minute,
        test_driver=config.test_mode,
    )
    return web.json_response(document)


async def jwks(request: web.Request) -> web.Response:
    """``GET /vrm/jwks.json``: empty, every buyer key is a did:jwk (spec §3.1, §11.2)."""
    return web.json_response({"keys": []})


async def _read_body(request: web.Request, limit: int, time_bound: float) -> bytes:
    """The request body, refusing more than ``limit`` bytes even without a
    Content-Length, and a body that takes longer than ``time_bound`` seconds.

    Raises:
        RemoteProtocolError: ``PAYLOAD_TOO_LARGE`` or ``REQUEST_TIMEOUT``.
        ConnectionError: the client went away before the body was complete.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(time_bound):
            async for chunk in request.content.iter_chunked(65536):
                size += len(chunk)
                if size > limit:
                    raise RemoteProtocolError(
                        ErrorCode.PAYLOAD_TOO_LARGE,
                        f"the message exceeds the limit of {limit} bytes",
                    )
                chunks.append(chunk)
    except TimeoutError as error:
        raise RemoteProtocolError(
            ErrorCode.REQUEST_TIMEOUT,
            f"the body did not arrive within {time_bound:g} s",
        ) from error
    return b"".join(chunks)


async def inbox(request: web.Request) -> web.StreamResponse:
    """``POST /vrm/inbox`` and ``POST /vrm/inbox/{tag}``, a relationship's own
    reply address (spec §11.3, §12)."""
    agent = request.app[AGENT]
    config = request.app[CONFIG]
    try:
        # Headers first: a wrong type or an oversized declared body is refused unread.
        check_inbox_request(
            request.headers.get("Content-Type"),
            request.content_length,
            max_message_bytes=config.max_message_bytes,
        )
        # Spec D8: before the signature is verified only the address is charged;
        # the sender is charged once verified (agent.after_verification).
        config.limiter.check(f"addr:{request.remote}", time.monotonic())
        body = await _read_body(request, config.max_message_bytes, config.body_read_timeout)
        token = body.strip(b" \t\r\n")
        outcome = await agent.receive(token, reply_tag=request.match_info.get("tag"))
    except ProtocolError as error:
        if error.code is ErrorCode.TEMPORARILY_UNAVAILABLE:
            _log.warning("inbox: %s", error.detail)  # one line, no traceback (spec D11)
        return _problem(error)
    except (ConnectionError, aiohttp.ClientPayloadError) as error:
        # The client went away mid-upload: nothing to answer, nothing applied.
        _log.info("inbox: the client went away before the message was complete (%s)", error)
        return web.Response(status=400)
    except Exception:
        # spec §11.5: even our own failure is answered as problem details;
        # nothing was committed, so the sender may retry.
        _log.exception("inbox failure")
        return _problem(
            LocalProtocolError(ErrorCode.INTERNAL_ERROR, "the agent failed; nothing was applied")
        )
    return web.Response(
        status=outcome.status, body=outcome.receipt, content_type=MESSAGE_MEDIA_TYPE
    )


async def mailbox(request: web.Request) -> web.Response:
    """``GET /vrm/mailbox``: the buyer always POSTs its messages, so its mailbox
    is empty; a valid poll is answered with an empty page (spec §11.4)."""
    agent = request.app[AGENT]
    try:
        after = request.query.get("after", "0")
        if not after.isdigit() or not after.isascii() or int(after) > MAX_CURSOR:
            raise LocalProtocolError(
                ErrorCode.INVALID_REQUEST,
                f"after must be an integer from 0 to {MAX_CURSOR}",
                path="/after",
            )
        scheme, _, credentials = (request.headers.get("Authorization") or "").partition(" ")
        if scheme != POLL_AUTH_SCHEME or not credentials.strip():
            raise RemoteProtocolError(
                ErrorCode.AUTHENTICATION_REQUIRED,
                f"a mailbox request needs 'Authorization: {POLL_AUTH_SCHEME} <signed poll token>'",
            )
        token = poll_token_from_authorization(request.headers.get("Authorization"))
        poll = verify_poll_token(token, mailbox_owner=_base_url(request), now=agent.clock.now())
    except ProtocolError as error:
        response = _problem(error)
        if error.code is ErrorCode.AUTHENTICATION_REQUIRED:
            response.headers["WWW-Authenticate"] = POLL_AUTH_SCHEME
        return response
    return web.Response(body=mailbox_page([], after=poll.after), content_type="application/json")


# -- test driver (spec §14.3) --------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _driver(action: Callable[[BuyerAgent, dict[str, Any]], Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            try:
                document = json.loads(await request.read())
            except (ValueError, RecursionError) as error:
                raise InvalidInstruction(f"the instruction is not JSON: {error}") from error
            if not isinstance(document, dict):
                raise InvalidInstruction("the instruction is not a JSON object")
            answer = await action(request.app[AGENT], document)
        except InvalidInstruction as error:
            return _problem(LocalProtocolError(ErrorCode.INVALID_REQUEST, str(error)))
        except ProtocolError as error:
            return _problem(error)
        except sqlite3.Error as error:
            _log.warning("test driver: the store cannot write: %s", error)
            return _problem(
                LocalProtocolError(
                    ErrorCode.TEMPORARILY_UNAVAILABLE,
                    "the personal data store cannot write now; nothing was applied",
                )
            )
        return web.json_response(answer)

    return handler


def _string(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInstruction(f"'{name}' must be a non-empty string")
    return value


def _strings(document: Mapping[str, Any], many: str, one: str) -> list[str]:
    """``document[many]`` (a non-empty list of strings), else ``[document[one]]``."""
    if many in document:
        values = document[many]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise InvalidInstruction(f"'{many}' must be a non-empty list of strings")
        return list(values)
    return [_string(document, one)]


def _vendors(document: Mapping[str, Any]) -> list[str]:
    return [v.rstrip("/") for v in _strings(document, "vendors", "vendor")]


def _body(document: Mapping[str, Any]) -> dict[str, Any] | None:
    body = document.get("body")
    if body is not None and not isinstance(body, dict):
        raise InvalidInstruction("'body' must be a JSON object")
    return body


async def _rfi(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    vendors = _vendors(document)
    body = _body(document) or sally_rfi_body(agent.clock.now())
    sent = await agent.send_rfis(vendors, body)
    return {"sent": {vendor: d.message.message_id for vendor, d in sent.items()}}


async def _rfp(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    vendors = _vendors(document)
    body = _body(document) or sally_rfp_body(agent.clock.now())
    approver = document.get("approver")
    if approver is not None and not (
        isinstance(approver, str)
        or (isinstance(approver, dict) and all(isinstance(v, str) for v in approver.values()))
    ):
        raise InvalidInstruction("'approver' must be a party id, or a map vendor -> party id")
    sent, _ = await agent.send_rfp(vendors, body, approver=approver)
    return {"sent": {vendor: d.message.message_id for vendor, d in sent.items()}}


async def _accept(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offer = _string(document, "offer")
    approvals = document.get("approvals", [])
    if not isinstance(approvals, list) or not all(isinstance(a, dict) for a in approvals):
        raise InvalidInstruction("'approvals' must be a list of attestations")
    delivery = await agent.accept(offer, approvals=approvals)
    return {"sent": delivery.message.message_id}


async def _decline(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offers = _strings(document, "offers", "offer")
    reason = document.get("reason", "price")
    if not isinstance(reason, str):
        raise InvalidInstruction("'reason' must be a string")
    deliveries = await agent.decline(offers, reason=reason)
    return {"sent": [d.message.message_id for d in deliveries]}


async def _terms(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    delivery, decision = await agent.answer_terms(_string(document, "assertion"))
    if decision is None:
        # She could not match the terms document: a problem report, nothing shared.
        return {"sent": delivery.message.message_id, "problem": "reference-mismatch"}
    return {"sent": delivery.message.message_id, "decision": str(decision.decision)}


async def _service(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    delivery = await agent.answer_service_notice(_string(document, "notice"))
    return {"sent": delivery.message.message_id}


async def _exit(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    preferences = document.get("reengagement")
    if preferences is not None and not isinstance(preferences, dict):
        raise InvalidInstruction("'reengagement' must be a JSON object")
    delivery = await agent.exit(_vendors(document)[0], reengagement=preferences)
    return {"sent": delivery.message.message_id}


async def _clock(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offset = document.get("offsetSeconds")
    if (
        not isinstance(offset, int)
        or isinstance(offset, bool)
        or abs(offset) > MAX_CLOCK_OFFSET_SECONDS
    ):
        raise InvalidInstruction(
            f"'offsetSeconds' must be an integer within ±{MAX_CLOCK_OFFSET_SECONDS}"
        )
    agent.clock.offset = timedelta(seconds=offset)
    return {"offsetSeconds": offset}


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].state_summary())


def create_app(agent: BuyerAgent, config: AppConfig | None = None) -> web.Application:
    """The buyer agent's aiohttp application.

    The caller owns the agent (its store and HTTP client) and closes them; the
    application only routes. Per-sender rate limits are charged through the
    agent's ``after_verification`` hook, once a message verified (spec D8).
    """
    config = config or AppConfig()
    # A little headroom over the message limit so that the inbox, not aiohttp,
    # answers an oversized message (with problem details).
    app = web.Application(
        client_max_size=config.max_message_bytes + 1024, middlewares=[problem_details]
    )
    app[AGENT] = agent
    app[CONFIG] = config

    def charge_sender(sender: str) -> None:
        config.limiter.check(f"sender:{sender}", time.monotonic())

    agent.after_verification = charge_sender
    # GET only: every route served is one the OpenAPI description lists (no HEAD).
    app.router.add_get(DISCOVERY_PATH, discovery, allow_head=False)
    app.router.add_get(JWKS_PATH, jwks, allow_head=False)
    app.router.add_post(INBOX_PATH, inbox)
    app.router.add_post(INBOX_PATH + "/{tag}", inbox)
    app.router.add_get(MAILBOX_PATH, mailbox, allow_head=False)
    if config.test_mode:
        actions = {
            "rfi": _rfi,
            "rfp": _rfp,
            "accept": _accept,
            "decline": _decline,
            "terms": _terms,
            "service": _service,
            "exit": _exit,
            "clock": _clock,
        }
        for name, action in actions.items():
            app.router.add_post(f"{TEST_DRIVER_PREFIX}/{name}", _driver(action))
        app.router.add_get(f"{TEST_DRIVER_PREFIX}/state", _state, allow_head=False)
    return app
