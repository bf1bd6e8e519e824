"""Her agent over HTTP (spec §11): discovery, keys, inbox, mailbox, test driver.

Routes::

    GET  /.well-known/vrm        the discovery document (accepts/sends from the registry)
    GET  /vrm/jwks.json          empty: every key of hers is a did:jwk pseudonym (spec §3.1)
    POST /vrm/inbox              the inbox (spec §11.3)
    POST /vrm/inbox/{tag}        one relationship's reply address: its messages only (spec §12)
    GET  /vrm/mailbox?after=N    her mailbox, with a signed poll token (spec §11.4)
    GET  /vrm/read/{tag}         a read under one of her access grants (spec §11.9)
    POST /vrm/approvals          approval requests, when she is someone's co-decision-maker
    POST /vrm/approvals/replies/{tag}  a co-decision-maker's answer to one request (§11.11)

and, only in test mode (spec §14.3), the test driver: the instructions a
person would give (``/rfi``, ``/rfp``, ``/accept``, ``/decline``, ``/terms``,
``/service``, ``/exit``, ``/grant``, ``/revoke``, ``/consent``), ``/clock`` and ``GET /state``.

Her inbox follows the rules every agent's does (:mod:`vrm_agent.http`): the
media type and declared length are judged before the body is read, the body
is read within a time bound, only the address is charged before anything is
verified (the sender once verified, spec §11.6), ``202`` and a signed receipt
come only once the message and all it caused are committed, an identical
resend gets ``200`` and the original receipt. Every answer of 400 or more on
every route is RFC 9457 problem details with a registry code (D9); a store
that cannot write is ``503 temporarily-unavailable`` with ``Retry-After``
(D11); an instruction the driver cannot act on is ``400 invalid-request``.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from pydantic import ValidationError

from reference_buyer import (
    app_codecision,
    handlers_living,
    handlers_materials,
    handlers_myterms,
    handlers_transaction,
)
from reference_buyer import handlers_conversation as conversation
from reference_buyer.agent import BuyerAgent
from reference_buyer.decisions import decided_terms
from reference_buyer.grants import READ_PATH
from reference_buyer.scenario import sally_rfi_body, sally_rfp_body
from vrm_agent.http import Handler, inbox_route, json_object, mailbox_route, problem_details
from vrm_agent.server import Serving
from vrm_agent.server import serve as serve_app
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    TEST_DRIVER_PREFIX,
    RateLimiter,
    buyer_discovery_document,
)
from vrm_protocol.models import PersonalRfiBody, PersonalRfpBody, VRMModel

__all__ = ["AGENT", "MAX_CLOCK_OFFSET_SECONDS", "create_app", "serve"]

AGENT = web.AppKey("agent", BuyerAgent)
ADDRESS_LIMITER = web.AppKey("address_limiter", RateLimiter)
INBOX_ROUTE: web.AppKey[Handler] = web.AppKey("inbox_route")
MAILBOX_ROUTE: web.AppKey[Handler] = web.AppKey("mailbox_route")

#: How far the test driver may move her agent's clock (ten years either way).
MAX_CLOCK_OFFSET_SECONDS = 10 * 366 * 86400

B = TypeVar("B", bound=VRMModel)


def _nothing() -> None:
    """Her agent queues nothing to deliver after answering: it delivers itself."""


async def inbox(request: web.Request) -> web.StreamResponse:
    """``POST /vrm/inbox`` (spec §11.3)."""
    return await request.app[INBOX_ROUTE](request)


async def tagged_inbox(request: web.Request) -> web.StreamResponse:
    """``POST /vrm/inbox/{tag}``: one relationship's reply address (spec §12)."""
    agent = request.app[AGENT]
    handler = inbox_route(
        partial(agent.receive, tag=request.match_info["tag"]),
        limits=agent.config.limits,
        body_timeout=agent.config.body_timeout,
        clock=agent.clock,
        address_limiter=request.app[ADDRESS_LIMITER],
        sender_limiter=agent.pipeline.sender_limiter,
        admission=agent.strategies.runtime.admission,
        after_answer=_nothing,
    )
    return await handler(request)


async def mailbox(request: web.Request) -> web.StreamResponse:
    """``GET /vrm/mailbox?after=N`` with a signed poll token (spec §11.4)."""
    return await request.app[MAILBOX_ROUTE](request)


async def discovery(request: web.Request) -> web.Response:
    """``GET /.well-known/vrm`` (spec §11.1, VRM-HTTP-027): what she takes and
    sends (from the message-type registry), and nothing that names or links one
    of her pseudonyms: no ``id``, no inbox, keys or mailbox."""
    agent = request.app[AGENT]
    config = agent.config
    base = (config.party_id or str(request.url.origin())).rstrip("/")
    # VRM-HTTP-027: nothing that names or finds one of her pseudonyms (no id, no
    # inbox, keys or mailbox); in test mode, the test driver only.
    document = buyer_discovery_document(
        accepts=sorted(agent.accepts),
        sends=sorted(agent.sends),
        max_message_bytes=config.limits.max_message_bytes,
        max_depth=config.limits.max_nesting_depth,
        rate_per_minute=int(config.rate_per_second * 60),
        test_driver_url=base + TEST_DRIVER_PREFIX if config.test_mode else None,
    )
    return web.json_response(document)


async def jwks(request: web.Request) -> web.Response:
    """``GET /vrm/jwks.json``: empty, every key of hers is a did:jwk (spec §3.1, §11.2)."""
    return web.json_response({"keys": []})


async def granted_read(request: web.Request) -> web.Response:
    """``GET /vrm/read/{tag}``: a read under one of her access grants, with a
    proof of possession (spec §11.9); refusals are problem details."""
    agent = request.app[AGENT]
    # spec §11.6, D8: before anything is verified only the address is charged.
    request.app[ADDRESS_LIMITER].check(request.remote or "unknown", agent.clock.monotonic())
    outcome = await agent.grants.read(
        request.match_info["tag"],
        method=request.method,
        authorization=request.headers.get("Authorization"),
    )
    return web.json_response(outcome.document, headers={"Cache-Control": "no-store"})


# -- test driver (spec §14.3) ---------------------------------------------------------------------

Action = Callable[[BuyerAgent, dict[str, Any]], Awaitable[Any]]


def _invalid(detail: str, path: str | None = None) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.INVALID_REQUEST, detail, path=path)


def _driver(action: Action) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        agent = request.app[AGENT]
        document = await json_object(request, agent.config.limits, agent.config.body_timeout)
        return web.json_response(await action(agent, document))

    return handler


def _string(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(f"'{name}' must be a non-empty string", f"/{name}")
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
            raise _invalid(f"'{many}' must be a non-empty list of strings", f"/{many}")
        return list(values)
    return [_string(document, one)]


def _vendors(document: Mapping[str, Any]) -> list[str]:
    return [v.rstrip("/") for v in _strings(document, "vendors", "vendor")]


def _body(document: Mapping[str, Any], model: type[B]) -> B | None:
    body = document.get("body")
    if body is None:
        return None
    if not isinstance(body, dict):
        raise _invalid("'body' must be a JSON object", "/body")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        raise LocalProtocolError(
            ErrorCode.SCHEMA_INVALID, f"not a valid body: {error}"[:500], path="/body"
        ) from None


async def _rfi(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    vendors = _vendors(document)
    body = _body(document, PersonalRfiBody) or sally_rfi_body(agent.clock.now())
    sent = await agent.buying.send_rfis(vendors, body)
    return {"sent": {vendor: s.message.message_id for vendor, s in sent.items()}}


async def _rfp(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    vendors = _vendors(document)
    body = _body(document, PersonalRfpBody) or sally_rfp_body(agent.clock.now())
    approver = document.get("approver")
    if approver is not None and not (
        isinstance(approver, str)
        or (isinstance(approver, dict) and all(isinstance(v, str) for v in approver.values()))
    ):
        raise _invalid("'approver' must be a party id, or a map vendor -> party id", "/approver")
    sent, _ = await agent.buying.send_rfp(vendors, body, approver=approver)
    return {"sent": {vendor: s.message.message_id for vendor, s in sent.items()}}


async def _accept(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offer = _string(document, "offer")
    approvals = document.get("approvals", [])
    if not isinstance(approvals, list) or not all(isinstance(a, dict) for a in approvals):
        raise _invalid("'approvals' must be a list of attestations", "/approvals")
    if not approvals:
        # The approvals her co-decision-maker's agent posted back (spec §10.2).
        approvals = await agent.codecision.approvals_for(offer)
    sent = await agent.buying.accept(offer, approvals=approvals)
    return {"sent": sent.message.message_id}


async def _decline(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offers = _strings(document, "offers", "offer")
    reason = document.get("reason", "price")
    if not isinstance(reason, str):
        raise _invalid("'reason' must be a string", "/reason")
    sent = await agent.buying.decline(offers, reason=reason)
    return {"sent": [s.message.message_id for s in sent]}


async def _terms(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    assertion = _string(document, "assertion")
    # Her decision, when the instruction carries one, is acted on as she
    # decided; without one her standing policy answers (VRM-CONF-008).
    decided = await decided_terms(agent.store, assertion, document)
    sent, decision = await agent.owning.answer_terms(assertion, decision=decided)
    if decision is None:
        # She could not match the terms document: a problem report, nothing shared.
        return {"sent": sent.message.message_id, "problem": "reference-mismatch"}
    return {"sent": sent.message.message_id, "decision": decision.decision.value}


async def _service(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    sent = await agent.owning.answer_service_notice(_string(document, "notice"))
    return {"sent": sent.message.message_id}


async def _exit(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    preferences = document.get("reengagement")
    if preferences is not None and not isinstance(preferences, dict):
        raise _invalid("'reengagement' must be a JSON object", "/reengagement")
    sent = await agent.owning.exit(_vendors(document)[0], reengagement=preferences)
    return {"sent": sent.message.message_id}


async def _inspect(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    inspection = await handlers_transaction.inspect(agent, _string(document, "handover"))
    return {
        "sent": list(inspection.sent),
        "decision": inspection.decision,
        "reasons": list(inspection.reasons),
    }


async def _pay(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    sent = await handlers_transaction.pay(agent, _string(document, "invoice"))
    return {"sent": [sent.message.message_id]}


async def _question(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    topic, about = document.get("topic"), document.get("about")
    if not all(value is None or isinstance(value, str) for value in (topic, about)):
        raise _invalid("'topic' and 'about' must be strings")
    sent = await conversation.ask(
        agent, _vendors(document)[0], _string(document, "text"), topic=topic, about=about
    )
    return {"sent": sent.message.message_id}


async def _answer(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    text = document.get("text")
    if text is not None and not isinstance(text, str):
        raise _invalid("'text' must be a string", "/text")
    sent = await conversation.answer(agent, _string(document, "question"), text)
    return {"sent": sent.message.message_id}


async def _support(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    severity, regarding = document.get("severity", "normal"), document.get("regarding")
    if not isinstance(severity, str) or not (regarding is None or isinstance(regarding, str)):
        raise _invalid("'severity' and 'regarding' must be strings")
    sent = await agent.owning.support_request(
        _vendors(document)[0],
        subject=_string(document, "subject"),
        description=_string(document, "description"),
        severity=severity,
        regarding=regarding,
    )
    return {"sent": sent.message.message_id}


async def _escalate(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    days = document.get("withinDays", 14)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365:
        raise _invalid("'withinDays' must be an integer from 1 to 365", "/withinDays")
    sent = await conversation.escalate(
        agent,
        _string(document, "request"),
        level=_string(document, "level"),
        name=_string(document, "name"),
        within=timedelta(days=days),
    )
    return {"sent": sent.message.message_id}


async def _grant(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    seconds = document.get("seconds", 86400)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 < seconds <= 366 * 86400:
        raise _invalid("'seconds' must be an integer from 1 to a year", "/seconds")
    purposes = _strings(document, "purposes", "purpose")
    sent, record = await agent.grants.grant(
        _vendors(document)[0],
        items=_strings(document, "items", "item"),
        purposes=purposes,
        until=agent.clock.now() + timedelta(seconds=seconds),
    )
    return {
        "sent": [sent.message.message_id],
        "grant": record.grant_id,
        "endpoint": record.endpoint,
    }


async def _revoke(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    sent = await agent.grants.revoke(_string(document, "grant"))
    return {"sent": [sent.message.message_id]}


async def _consent(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    changes = document.get("changes")
    if (
        not isinstance(changes, list)
        or not changes
        or not all(isinstance(c, dict) for c in changes)
    ):
        raise _invalid("'changes' must be a non-empty list of objects", "/changes")
    try:
        sent = await agent.consents.change(_vendors(document)[0], changes)
    except (ValidationError, TypeError) as error:
        raise _invalid(f"not a valid consent change: {error}"[:500], "/changes") from None
    return {"sent": [sent.message.message_id]}


async def _book(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    slot = document.get("slot")
    if slot is not None and not isinstance(slot, str):
        raise _invalid("'slot' must be a slot id", "/slot")
    sent = await handlers_living.book(agent, _string(document, "proposal"), slot)
    return {"sent": [sent.message.message_id]}


async def _addons(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    accept = document.get("accept")
    if accept is not None and not (
        isinstance(accept, list) and all(isinstance(code, str) for code in accept)
    ):
        raise _invalid("'accept' must be a list of add-on codes", "/accept")
    sent = await handlers_living.answer_addons(agent, _string(document, "addonOffer"), accept)
    return {"sent": [sent.message.message_id]}


async def _proffer(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    version = document.get("version", "1.0")
    if not isinstance(version, str):
        raise _invalid("'version' must be a string", "/version")
    sent = await handlers_myterms.proffer(
        agent, _vendors(document)[0], _string(document, "agreement"), version
    )
    return {"sent": [sent.message.message_id]}


async def _enrol(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    sent = await handlers_myterms.enrol(
        agent, _vendors(document)[0], _string(document, "programme")
    )
    return {"sent": [sent.message.message_id]}


async def _update_details(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    items = document.get("items")
    if (
        not isinstance(items, dict)
        or not items
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in items.items())
    ):
        raise _invalid("'items' must be a JSON object of data categories to strings", "/items")
    reason = document.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise _invalid("'reason' must be a string", "/reason")
    sent = await handlers_myterms.update_details(agent, items, reason=reason)
    return {"sent": [s.message.message_id for s in sent.values()]}


async def _materials(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    # Printed material by post (spec §6.60): her address from her store.
    codes = document.get("materials", ["brochure"])
    if not (isinstance(codes, list) and codes and all(isinstance(c, str) for c in codes)):
        raise _invalid("'materials' must be a non-empty list of codes", "/materials")
    sent = await handlers_materials.request_material(agent, _vendors(document)[0], codes)
    return {"sent": [sent.message.message_id]}


async def _clock(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    offset = document.get("offsetSeconds")
    if (
        not isinstance(offset, int)
        or isinstance(offset, bool)
        or abs(offset) > MAX_CLOCK_OFFSET_SECONDS
    ):
        raise _invalid(
            f"'offsetSeconds' must be an integer within ±{MAX_CLOCK_OFFSET_SECONDS}",
            "/offsetSeconds",
        )
    agent.clock.set_offset_seconds(offset)
    return {"offsetSeconds": offset}


async def _search(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    # A directory search (spec §11.10), then, when asked, the RFI to every vendor found.
    from reference_buyer.vendor_search import search_directory

    found = await search_directory(
        agent,
        _string(document, "directory"),
        category=_string(document, "category"),
        area=_string(document, "area"),
    )
    sent: list[str] = []
    if document.get("rfi") is True and found.vendors:
        body = _body(document, PersonalRfiBody) or sally_rfi_body(agent.clock.now())
        rfis = await agent.buying.send_rfis(found.vendors, body)
        sent = [s.message.message_id for s in rfis.values()]
    return {
        "sent": sent,
        "vendors": found.vendors,
        "setAside": [{"party": party, "why": why} for party, why in found.set_aside],
    }


async def _state(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENT].state_summary())


_ACTIONS: Mapping[str, Action] = {
    "rfi": _rfi,
    "rfp": _rfp,
    "accept": _accept,
    "decline": _decline,
    "terms": _terms,
    "service": _service,
    "exit": _exit,
    "clock": _clock,
    "inspect": _inspect,
    "pay": _pay,
    "question": _question,
    "answer": _answer,
    "support": _support,
    "escalate": _escalate,
    "grant": _grant,
    "revoke": _revoke,
    "consent": _consent,
    "book": _book,
    "addons": _addons,
    "search": _search,
    **app_codecision.DRIVER_ACTIONS,
    "proffer": _proffer,
    "enrol": _enrol,
    "update-details": _update_details,
    "materials": _materials,
}


# -- the application ---------------------------------------------------------------------------


def create_app(agent: BuyerAgent) -> web.Application:
    """Her agent's aiohttp application.

    The caller owns the agent (it opens and closes it, with its store and
    HTTP client); the application routes.
    """
    config = agent.config
    # A little headroom over the message limit so that the inbox, not aiohttp,
    # answers an oversized message (with problem details).
    app = web.Application(
        client_max_size=config.limits.max_message_bytes + 1024, middlewares=[problem_details]
    )
    app[AGENT] = agent
    address_limiter = RateLimiter(config.rate_per_second, config.burst)
    app[ADDRESS_LIMITER] = address_limiter
    app[INBOX_ROUTE] = inbox_route(
        agent.receive,
        limits=config.limits,
        body_timeout=config.body_timeout,
        clock=agent.clock,
        address_limiter=address_limiter,
        sender_limiter=agent.pipeline.sender_limiter,
        admission=agent.strategies.runtime.admission,
        after_answer=_nothing,
    )
    app[MAILBOX_ROUTE] = mailbox_route(
        agent.mailbox.page, clock=agent.clock, address_limiter=address_limiter
    )
    # GET only: every route served is one the OpenAPI description lists (no HEAD).
    app.router.add_get(DISCOVERY_PATH, discovery, allow_head=False)
    app.router.add_get(JWKS_PATH, jwks, allow_head=False)
    app.router.add_post(INBOX_PATH, inbox)
    app.router.add_post(INBOX_PATH + "/{tag}", tagged_inbox)
    app.router.add_get(MAILBOX_PATH, mailbox, allow_head=False)
    app.router.add_get(READ_PATH + "/{tag}", granted_read, allow_head=False)
    app_codecision.add_routes(app, agent, address_limiter)
    if config.test_mode:
        for name, action in _ACTIONS.items():
            app.router.add_post(f"{TEST_DRIVER_PREFIX}/{name}", _driver(action))
        app.router.add_get(f"{TEST_DRIVER_PREFIX}/state", _state, allow_head=False)
    return app


async def serve(agent: BuyerAgent, sock: socket.socket) -> Serving:
    """Serve her agent on ``sock`` (bound, listening, non-blocking), with the
    connection bounds of spec §11.6 (:func:`vrm_agent.server.serve`).

    Raises:
        Exception: whatever starting the application raised.
    """
    return await serve_app(
        create_app(agent),
        sock,
        header_timeout=agent.config.header_timeout,
        max_connections=agent.config.max_connections,
    )
