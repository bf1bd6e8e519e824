"""The buyer agent over HTTP (spec §11): discovery, keys, inbox, test driver.

A buyer agent's inbox follows the same binding rules as a vendor's: the
media type and declared length are judged before the body is read, the
message goes through the receiving pipeline with a durable replay guard,
``202`` and a signed receipt come only after the message is committed, an
identical resend gets ``200`` and the original receipt, and every refusal is
RFC 9457 problem details.

The buyer's keys are pairwise ``did:jwk`` pseudonyms, resolved from the
identifiers themselves, so its JWKS is present but empty (spec §3.1).

In test mode (spec §14.3) the test driver takes the instructions a person
would give (``/rfi``, ``/rfp``, ``/accept``, ``/decline``, ``/terms``,
``/service``, ``/exit``), moves the clock and reports the state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from reference_buyer.agent import BuyerAgent, header_kid
from reference_buyer.scenario import sally_rfi_body, sally_rfp_body
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
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
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        per_second = self.rate_per_minute / 60
        self.limiter = RateLimiter(rate_per_second=per_second, burst=max(1, int(per_second * 2)))


_log = logging.getLogger(__name__)

AGENT = web.AppKey("agent", BuyerAgent)
CONFIG = web.AppKey("config", AppConfig)


def _problem(error: ProtocolError) -> web.Response:
    retry = error.extra.get("retry_after") if error.code is ErrorCode.RATE_LIMITED else None
    rendered = problem_response(
        error, retry_after_seconds=int(retry) if isinstance(retry, int) else None
    )
    return web.Response(status=rendered.status, body=rendered.body, headers=rendered.headers)


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


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes even without a Content-Length."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise RemoteProtocolError(
                ErrorCode.PAYLOAD_TOO_LARGE, f"the message exceeds the limit of {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def inbox(request: web.Request) -> web.Response:
    """``POST /vrm/inbox`` (spec §11.3)."""
    agent = request.app[AGENT]
    config = request.app[CONFIG]
    try:
        # Headers first: a wrong type or an oversized declared body is refused unread.
        check_inbox_request(
            request.headers.get("Content-Type"),
            request.content_length,
            max_message_bytes=config.max_message_bytes,
        )
        now = time.monotonic()
        config.limiter.check(f"addr:{request.remote}", now)
        token = (await _read_body(request, config.max_message_bytes)).strip(b" \t\r\n")
        kid = header_kid(token)
        if kid is not None:
            config.limiter.check(f"kid:{kid}", now)
        outcome = await agent.receive(token)
    except ProtocolError as error:
        return _problem(error)
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
        token = poll_token_from_authorization(request.headers.get("Authorization"))
        poll = verify_poll_token(token, mailbox_owner=_base_url(request), now=agent.clock.now())
    except ProtocolError as error:
        return _problem(error)
    return web.Response(body=mailbox_page([], after=poll.after), content_type="application/json")


# -- test driver (spec §14.3) --------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _driver(action: Callable[[BuyerAgent, dict[str, Any]], Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        try:
            document = await request.json()
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            document = {}
        try:
            answer = await action(request.app[AGENT], document)
        except ProtocolError as error:
            return _problem(error)
        except (KeyError, TypeError, ValueError) as error:
            return web.json_response({"error": f"bad instruction: {error}"}, status=400)
        return web.json_response(answer)

    return handler


def _vendors(document: dict[str, Any]) -> list[str]:
    vendors = document.get("vendors")
    if isinstance(vendors, list):
        return [str(v).rstrip("/") for v in vendors]
    return [str(document["vendor"]).rstrip("/")]


async def _rfi(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    body = document.get("body") or sally_rfi_body(agent.clock.now())
    sent = await agent.send_rfis(_vendors(document), body)
    return {"sent": {vendor: d.message.message_id for vendor, d in sent.items()}}


async def _rfp(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    body = document.get("body") or sally_rfp_body(agent.clock.now())
    sent, _ = await agent.send_rfp(
        _vendors(document), body, co_decision_maker=bool(document.get("approvalRequired"))
    )
    return {"sent": {vendor: d.message.message_id for vendor, d in sent.items()}}


async def _accept(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    delivery = await agent.accept(str(document["offer"]))
    return {"sent": delivery.message.message_id}


async def _decline(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offers = document.get("offers") or [document["offer"]]
    deliveries = await agent.decline(
        [str(o) for o in offers], reason=str(document.get("reason", "price"))
    )
    return {"sent": [d.message.message_id for d in deliveries]}


async def _terms(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    delivery, decision = await agent.answer_terms(str(document["assertion"]))
    return {"sent": delivery.message.message_id, "decision": str(decision.decision)}


async def _service(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    delivery = await agent.answer_service_notice(str(document["notice"]))
    return {"sent": delivery.message.message_id}


async def _exit(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    preferences = document.get("reengagement")
    delivery = await agent.exit(
        _vendors(document)[0],
        reengagement=preferences if isinstance(preferences, dict) else None,
    )
    return {"sent": delivery.message.message_id}


async def _clock(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offset = int(document["offsetSeconds"])
    agent.clock.offset = timedelta(seconds=offset)
    return {"offsetSeconds": offset}


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[AGENT].state_summary())


def create_app(agent: BuyerAgent, config: AppConfig | None = None) -> web.Application:
    """The buyer agent's aiohttp application.

    The caller owns the agent (its store and HTTP client session) and closes
    them; the application only routes.
    """
    config = config or AppConfig()
    # A little headroom over the message limit so that the inbox, not aiohttp,
    # answers an oversized message (with problem details).
    app = web.Application(client_max_size=config.max_message_bytes + 1024)
    app[AGENT] = agent
    app[CONFIG] = config
    app.router.add_get(DISCOVERY_PATH, discovery)
    app.router.add_get(JWKS_PATH, jwks)
    app.router.add_post(INBOX_PATH, inbox)
    app.router.add_get(MAILBOX_PATH, mailbox)
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
        app.router.add_get(f"{TEST_DRIVER_PREFIX}/state", _state)
    return app
