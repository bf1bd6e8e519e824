"""The vendor agent over HTTP (spec §11): an aiohttp application.

Routes (spec §11.1-§11.4)::

    GET  /.well-known/vrm        discovery document
    GET  /vrm/jwks.json          the vendor's public keys
    GET  /vrm/terms/{id}/{ver}   the terms document it asserts (text/plain; charset=utf-8)
    POST /vrm/inbox              one message (application/vrm+jws) -> 202 + receipt
    GET  /vrm/mailbox?after=N    every message sent to the poller, until it expires (VRM-Poll)

and, only with ``test_mode`` (spec §14.3), the test driver::

    POST /vrm/test-driver/clock           {"offsetSeconds": N}: run N s ahead of real time
    GET  /vrm/test-driver/state           relationships, offers, data held, deletions
    POST /vrm/test-driver/service-notice  {"peer", "kind", "category"?, "programme"?, "summary"?}
    POST /vrm/test-driver/sweep           run the retention sweep now
    POST /vrm/test-driver/deliver         attempt every due delivery now

and, only with an ``operator_token``, the operator's own route (same body as
the driver's ``service-notice``, ``Authorization: Bearer <token>``)::

    POST /vrm/operator/service-notice

Every answer of 400 or more, on every route, is RFC 9457 problem details
with the stable code (spec §11.5, the ``problem_details`` middleware); a
store that cannot be written is ``503 temporarily-unavailable`` with
``Retry-After``; an unexpected failure is ``internal-error`` and, because the
agent commits in one transaction, leaves nothing half-written. Only the
address is charged before a message is verified, the sender after (§11.6).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from reference_vendor.agent import VendorAgent
from reference_vendor.clock import AgentClock
from reference_vendor.config import (
    KEY_FILE,
    LOCK_FILE,
    STORE_FILE,
    VendorConfig,
    load_or_create_key,
)
from reference_vendor.faults import header_kid
from reference_vendor.outbox import deliver_forever, deliver_once, delivery_session, flush
from reference_vendor.store import SqliteVendorStore, StoreUnavailable
from vrm_agent.files import DataDirError, lock_data_dir
from vrm_agent.server import Serving
from vrm_agent.server import serve as serve_app
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    POLL_AUTH_SCHEME,
    TERMS_PATH_PREFIX,
    TERMS_TEXT_MEDIA_TYPE,
    TEST_DRIVER_PREFIX,
    RateLimiter,
    check_inbox_request,
    discovery_document,
    parse_cursor,
    poll_token_from_authorization,
    problem_response,
)
from vrm_protocol.limits import check_nesting
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MessageType

__all__ = ["AGENT", "CONFIG", "STATUS_CODES", "create_app", "read_body", "serve"]

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", VendorConfig)
AGENT = web.AppKey("agent", VendorAgent)
HTTP = web.AppKey("http", aiohttp.ClientSession)
ADDRESS_LIMITER = web.AppKey("address_limiter", RateLimiter)

#: The operator's routes (enabled by ``operator_token``).
OPERATOR_PREFIX = "/vrm/operator"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_M = MessageType
#: What a vendor takes in its inbox (spec §6), and what it sends.
VENDOR_ACCEPTS = (
    _M.PERSONAL_RFI, _M.PERSONAL_RFP, _M.OFFER, _M.OFFER_ACCEPTANCE, _M.OFFER_DECLINE,
    _M.TERMS_RESPONSE, _M.SERVICE_RESPONSE, _M.SUPPORT_REQUEST, _M.EXIT_NOTICE,
    _M.PROBLEM_REPORT,
)  # fmt: skip
VENDOR_SENDS = (
    _M.OFFER, _M.DEAL_CONFIRMATION, _M.TERMS_ASSERTION, _M.SERVICE_NOTICE,
    _M.SUPPORT_RESOLUTION, _M.EXIT_ACKNOWLEDGEMENT, _M.RECEIPT,
)  # fmt: skip
THIRD_PARTY_ACCEPTS = (
    _M.PERSONAL_RFI, _M.TERMS_RESPONSE, _M.SERVICE_RESPONSE, _M.SUPPORT_REQUEST,
    _M.EXIT_NOTICE, _M.PROBLEM_REPORT,
)  # fmt: skip
THIRD_PARTY_SENDS = (
    _M.TERMS_ASSERTION, _M.SERVICE_NOTICE, _M.SUPPORT_RESOLUTION, _M.EXIT_ACKNOWLEDGEMENT,
    _M.RECEIPT,
)  # fmt: skip


def _problem(error: ProtocolError, request: web.Request) -> web.Response:
    """``error`` as RFC 9457 problem details (spec §11.5), with the headers its
    status calls for: ``Retry-After`` on 429 and 503, ``WWW-Authenticate`` on 401."""
    extra = error.extra
    retry = extra.pop("retry_after", None)
    challenge = extra.pop("www_authenticate", None)
    close = bool(extra.pop("close", False))
    rendered = problem_response(
        error,
        instance=request.path,
        retry_after_seconds=int(retry) if isinstance(retry, int) else None,
    )
    response = web.Response(status=rendered.status, body=rendered.body, headers=rendered.headers)
    if isinstance(challenge, str):
        response.headers["WWW-Authenticate"] = challenge
    if close:
        # The rest of the request will not be read: the connection ends here.
        response.force_close()
    return response


def _internal_error(request: web.Request) -> web.Response:
    error = RemoteProtocolError(
        ErrorCode.INTERNAL_ERROR, "the vendor failed to process the message; nothing was applied"
    )
    return _problem(error, request)


#: What a 503 for an unavailable store asks the sender to wait (seconds).
STORE_RETRY_AFTER_SECONDS = 5

#: The registry code for each status aiohttp itself answers with (router, body limits).
STATUS_CODES: dict[int, ErrorCode] = {
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


@web.middleware
async def problem_details(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every non-2xx answer of every route is problem details (spec §11.5, VRM-HTTP-013):
    a protocol error keeps its code; what aiohttp raises itself (no route, a
    method the route does not take, a body over the limit) gets the registry
    code of its status, keeping ``Allow`` on 405; anything unexpected is
    ``internal-error`` after one log line with its traceback."""
    try:
        return await handler(request)
    except ProtocolError as error:
        return _problem(error, request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = STATUS_CODES.get(
            error.status,
            ErrorCode.INVALID_REQUEST if error.status < 500 else ErrorCode.INTERNAL_ERROR,
        )
        response = _problem(RemoteProtocolError(code, error.reason), request)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
        return response
    except StoreUnavailable as error:
        # D11: the store cannot be written now (disk full, read-only, locked);
        # nothing was applied, so the sender may resend. One line, no traceback.
        log.error("%s %s: the store is unavailable: %s", request.method, request.path, error)
        return _problem(
            RemoteProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                "the vendor cannot store anything now; nothing was applied, send it again later",
                extra={"retry_after": STORE_RETRY_AFTER_SECONDS},
            ),
            request,
        )
    except ConnectionError as error:
        # The client went away mid-request (an aborted upload): nothing to answer
        # and nothing went wrong here, so one line, not a traceback.
        log.info("%s %s: the client went away: %s", request.method, request.path, error)
        return _problem(RemoteProtocolError(ErrorCode.INVALID_REQUEST, str(error)), request)
    except Exception:
        log.exception("%s %s: unexpected failure", request.method, request.path)
        return _internal_error(request)


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes of the body within the agent's ``body_timeout``;
    more is ``payload-too-large``, slower is ``request-timeout`` (spec §11.6).

    The declared length was checked before; this bounds a chunked body too. A
    body that does not arrive in time is answered at once and the connection
    closed, so a client that never finishes holds it seconds, not minutes.

    Raises:
        RemoteProtocolError: PAYLOAD_TOO_LARGE or REQUEST_TIMEOUT.
    """
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(request.app[CONFIG].body_timeout):
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
            f"the body did not arrive within {request.app[CONFIG].body_timeout:g} s",
            extra={"close": True},
        ) from None


async def inbox(request: web.Request) -> web.StreamResponse:
    """``POST /vrm/inbox`` (spec §11.3)."""
    app = request.app
    config = app[CONFIG]
    agent = app[AGENT]
    limit = config.limits.max_message_bytes
    try:
        # Headers first: an oversized or mistyped body is refused unread (spec §11.3, §11.6).
        check_inbox_request(
            request.headers.get("Content-Type"), request.content_length, max_message_bytes=limit
        )
        # spec §11.6 (VRM-HTTP-018): before the signature is verified only the
        # address is charged; the sender's own budget is charged by the agent once
        # the pipeline verified who sent the message. Nothing here parses the token.
        app[ADDRESS_LIMITER].check(request.remote or "unknown", time.monotonic())
        token = (await read_body(request, limit)).strip()
        if "key-budget-before-verification" in config.faults:
            kid = header_kid(token)
            if kid is not None and agent.sender_limiter is not None:
                agent.sender_limiter.check(kid, time.monotonic())
        answer = await agent.receive(token)
    except ProtocolError as error:
        return _problem(error, request)
    response = web.Response(status=answer.status, body=answer.receipt)
    response.content_type = MESSAGE_MEDIA_TYPE
    # Send the receipt before any reply can be delivered: a reply never
    # overtakes the receipt of the message it answers.
    await response.prepare(request)
    await response.write_eof()
    agent.outbox_ready.set()
    return response


async def mailbox(request: web.Request) -> web.Response:
    """``GET /vrm/mailbox?after=N`` with a signed poll token (spec §11.4)."""
    agent = request.app[AGENT]
    try:
        # spec §11.6: a poll costs a signature verification; the address pays first.
        request.app[ADDRESS_LIMITER].check(request.remote or "unknown", time.monotonic())
        # spec §11.4: credentials first (401 names the scheme), then the query.
        token = poll_token_from_authorization(request.headers.get("Authorization"))
        after = parse_cursor(request.query.getall("after", []))
        document = await agent.mailbox(token, after)
    except ProtocolError as error:
        response = _problem(error, request)
        if error.code is ErrorCode.AUTHENTICATION_REQUIRED:
            response.headers["WWW-Authenticate"] = POLL_AUTH_SCHEME
        return response
    return web.json_response(document)


async def discovery(request: web.Request) -> web.Response:
    """``GET /.well-known/vrm`` (spec §11.1)."""
    config = request.app[CONFIG]
    catalogue = request.app[AGENT].catalogue
    vendor = catalogue.role == "vendor"
    document = discovery_document(
        party_id=config.party_id,
        # A third party takes the vendor role in its own relationship (vocabulary.Role).
        role="vendor",
        name=catalogue.name,
        base_url=config.party_id,
        accepts=VENDOR_ACCEPTS if vendor else THIRD_PARTY_ACCEPTS,
        sends=VENDOR_SENDS if vendor else THIRD_PARTY_SENDS,
        terms=[catalogue.terms_reference()],
        categories=catalogue.categories,
        max_message_bytes=config.limits.max_message_bytes,
        max_depth=config.limits.max_nesting_depth,
        rate_per_minute=int(config.rate_per_second * 60),
        test_driver=config.test_mode,
    )
    document["partyRole"] = catalogue.role
    return web.json_response(document)


async def terms_document(request: web.Request) -> web.Response:
    """``GET /vrm/terms/{id}/{version}`` (spec §11.7): the terms document the agent
    asserts, as the exact bytes its digest covers.

    Raises:
        RemoteProtocolError: NOT_FOUND for any other id or version.
    """
    catalogue = request.app[AGENT].catalogue
    wanted = (request.match_info["id"], request.match_info["version"])
    if wanted != (catalogue.terms_id, catalogue.terms_version):
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, "no terms document of this id and version")
    return web.Response(body=catalogue.terms_bytes, headers={"Content-Type": TERMS_TEXT_MEDIA_TYPE})


async def jwks(request: web.Request) -> web.Response:
    """``GET /vrm/jwks.json`` (spec §11.2): public keys under their thumbprints."""
    return web.json_response(request.app[AGENT].key_set.to_jwks())


# -- test driver (spec §14.3) -------------------------------------------------------------------


#: The largest clock offset the driver takes: a century either way keeps every
#: instant the agent computes (offer ends, retention ends) within the calendar.
MAX_CLOCK_OFFSET_SECONDS = 100 * 366 * 24 * 3600


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The JSON object of a driver or operator instruction.

    The body is bounded in size like a message and its nesting checked on the
    raw bytes by the library before ``json.loads`` sees it (spec §11.6), so a
    hostile instruction cannot exhaust the parser's stack either.

    Raises:
        RemoteProtocolError: INVALID_REQUEST (not a JSON object), or
            PAYLOAD_TOO_LARGE / NESTING_TOO_DEEP.
    """
    limits = request.app[CONFIG].limits
    body = await read_body(request, limits.max_message_bytes)
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


async def driver_clock(request: web.Request) -> web.Response:
    """``POST /clock {"offsetSeconds": N}``: absolute offset from real time."""
    document = await _json_object(request)
    offset = document.get("offsetSeconds")
    if (
        not isinstance(offset, int)
        or isinstance(offset, bool)
        or abs(offset) > MAX_CLOCK_OFFSET_SECONDS
    ):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"offsetSeconds is an integer of at most {MAX_CLOCK_OFFSET_SECONDS} either way",
            path="/offsetSeconds",
        )
    agent = request.app[AGENT]
    # What is in flight arrives before time jumps (see outbox.flush).
    await flush(agent, request.app[HTTP])
    await agent.set_clock_offset(offset)
    return web.json_response({"offsetSeconds": offset, "now": agent.clock.now().isoformat()})


async def driver_state(request: web.Request) -> web.Response:
    """``GET /state``: relationships, offers, data held, deletions."""
    return web.json_response(await request.app[AGENT].summary())


async def driver_service_notice(request: web.Request) -> web.Response:
    """``POST /service-notice {"buyer"|"peer", "kind"?, "category"?, "programme"?, "summary"?,
    "proposals"?}``:
    prompt the vendor to send a service notice or programme offer (spec §14.3).

    ``200`` when sent; ``409`` ``illegal-transition`` (problem details with
    ``sent: false`` and the ``reason``) when the individual's preferences or
    the relationship's state forbid it (the refusal is recorded); ``404``
    ``not-found`` for an unknown relationship or programme.

    Raises:
        RemoteProtocolError: INVALID_REQUEST, NOT_FOUND or ILLEGAL_TRANSITION.
    """
    document = await _json_object(request)
    peer = document.get("peer", document.get("buyer"))
    if not isinstance(peer, str):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "name the relationship: buyer (or peer) is a party id"
        )
    options = {
        name: value if isinstance(value, str) else None
        for name in ("kind", "category", "programme", "summary")
        for value in (document.get(name),)
    }
    proposals = document.get("proposals") or []
    if not isinstance(proposals, list) or not all(isinstance(p, dict) for p in proposals):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "proposals is a list of objects", path="/proposals"
        )
    try:
        outcome = await request.app[AGENT].send_notice(peer, proposals=proposals, **options)
    except LookupError as error:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, str(error)) from error
    except LocalProtocolError as error:
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, f"not a valid notice: {error}"
        ) from error
    if not outcome.sent:
        raise RemoteProtocolError(
            ErrorCode.ILLEGAL_TRANSITION,
            outcome.reason or "the notice was not sent",
            extra={"sent": False, "reason": outcome.reason},
        )
    return web.json_response({"sent": True, "id": outcome.message_id, "reason": None})


async def operator_service_notice(request: web.Request) -> web.Response:
    """``POST /vrm/operator/service-notice``: the driver's instruction, for the operator.

    Raises:
        RemoteProtocolError: AUTHENTICATION_REQUIRED without the operator's
            bearer token; otherwise as :func:`driver_service_notice`.
    """
    token = request.app[CONFIG].operator_token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if (
        token is None
        or scheme != "Bearer"
        or not hmac.compare_digest(given.encode(), token.encode())
    ):
        raise RemoteProtocolError(
            ErrorCode.AUTHENTICATION_REQUIRED,
            "operator routes need 'Authorization: Bearer <token>'",
            extra={"www_authenticate": "Bearer"},
        )
    return await driver_service_notice(request)


async def driver_sweep(request: web.Request) -> web.Response:
    """``POST /sweep``: delete data whose retention has ended, now."""
    deleted = await request.app[AGENT].sweep()
    return web.json_response({"deleted": [{"peer": d.peer_id, "item": d.item} for d in deleted]})


async def driver_deliver(request: web.Request) -> web.Response:
    """``POST /deliver``: attempt every due delivery now."""
    attempted = await deliver_once(request.app[AGENT], request.app[HTTP])
    return web.json_response({"attempted": attempted})


# -- lifecycle --------------------------------------------------------------------------------


async def _sweep_forever(agent: VendorAgent, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await agent.sweep()
        except StoreUnavailable as error:
            log.error("retention sweep postponed: the store is unavailable: %s", error)
        except Exception:
            log.exception("retention sweep failed")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    # The data directory first: private, and locked so that no second agent
    # serves the same store (D10). Each failure is one line (DataDirError).
    lock = lock_data_dir(config.data_dir, lock_file=LOCK_FILE, agent="vendor agent")
    try:
        try:
            store = SqliteVendorStore(
                config.data_dir / STORE_FILE, busy_timeout=config.store_busy_timeout
            )
        except (sqlite3.Error, OSError) as error:
            raise DataDirError(
                f"cannot open the store {config.data_dir / STORE_FILE}: {error}"
            ) from error
        try:
            key = load_or_create_key(config.data_dir / KEY_FILE)
        except BaseException:
            store.close()
            raise
    except BaseException:
        lock.release()
        raise
    agent = VendorAgent(
        config,
        store,
        AgentClock(),
        key,
        sender_limiter=RateLimiter(config.rate_per_second, config.burst),
    )
    if config.test_mode:
        await agent.restore_clock_offset()
    app[AGENT] = agent
    session = delivery_session(agent.delivery_policy)
    app[HTTP] = session
    tasks = [
        asyncio.create_task(_sweep_forever(agent, config.sweep_interval), name="vendor-sweeper")
    ]
    if config.background_delivery:
        tasks.append(asyncio.create_task(deliver_forever(agent, session), name="vendor-outbox"))
    try:
        await agent.sweep()
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await session.close()
        store.close()
        lock.release()


def create_app(config: VendorConfig) -> web.Application:
    """The vendor agent as an aiohttp application.

    The store, the key and the background tasks (reply delivery, retention
    sweep) start with the application and stop with it (``cleanup_ctx``).
    """
    limits = config.limits
    # The inbox bounds its own body; this bounds the test driver's JSON bodies.
    app = web.Application(
        client_max_size=limits.max_message_bytes + 1024, middlewares=[problem_details]
    )
    app[CONFIG] = config
    app[ADDRESS_LIMITER] = RateLimiter(config.address_rate_per_second, config.address_burst)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get(DISCOVERY_PATH, discovery)
    app.router.add_get(JWKS_PATH, jwks)
    app.router.add_get(TERMS_PATH_PREFIX + "/{id}/{version}", terms_document)
    app.router.add_post(INBOX_PATH, inbox)
    app.router.add_get(MAILBOX_PATH, mailbox)
    if config.operator_token:
        app.router.add_post(OPERATOR_PREFIX + "/service-notice", operator_service_notice)
    if config.test_mode:
        app.router.add_post(TEST_DRIVER_PREFIX + "/clock", driver_clock)
        app.router.add_get(TEST_DRIVER_PREFIX + "/state", driver_state)
        app.router.add_post(TEST_DRIVER_PREFIX + "/service-notice", driver_service_notice)
        app.router.add_post(TEST_DRIVER_PREFIX + "/sweep", driver_sweep)
        app.router.add_post(TEST_DRIVER_PREFIX + "/deliver", driver_deliver)
    return app


async def serve(config: VendorConfig, sock: socket.socket) -> Serving:
    """Serve the vendor agent on ``sock`` (bound, listening, non-blocking), with the
    connection bounds of spec §11.6 (:func:`vrm_agent.server.serve`).

    Raises:
        Exception: whatever starting the agent raised (its store, key or data
            directory); nothing is left running then.
    """
    return await serve_app(
        create_app(config),
        sock,
        header_timeout=config.header_timeout,
        max_connections=config.max_connections,
    )
