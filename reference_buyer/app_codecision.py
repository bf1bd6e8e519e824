"""Her agent's HTTP side for a co-decision-maker's approval (spec §10.2, §11.11).

Routes::

    POST /vrm/approvals                  an approval request (or enrolment) for this agent
    POST /vrm/approvals/replies/{tag}    his answer to one request she sent

and test-driver instructions (spec §14.3): ``/approval-enrol {vendor, agent}``,
``/approval-request {offer, agent, summary?}``, ``/approvals`` (requests asked
and received), ``/approve {request, decision: approve|refuse, reason?}``.

Both routes are bounded like her inbox: the address is charged before the body
is read, the body is read within the message size and time bounds (§11.6), and
every refusal is problem details with a registry code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vrm_agent.http import read_body
from vrm_protocol.approval_requests import APPROVAL_REPLIES_PATH, APPROVALS_PATH
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.http_binding import RateLimiter

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = ["DRIVER_ACTIONS", "add_routes"]


def add_routes(app: web.Application, agent: BuyerAgent, limiter: RateLimiter) -> None:
    """Add the approvals endpoint and her reply inboxes to ``app``."""

    async def token_of(request: web.Request) -> bytes:
        limiter.check(request.remote or "unknown", agent.clock.monotonic())
        limits = agent.config.limits
        return (
            await read_body(request, limits.max_message_bytes, agent.config.body_timeout)
        ).strip()

    async def approvals(request: web.Request) -> web.StreamResponse:
        status, answer = await agent.codecision.receive(await token_of(request))
        return web.json_response(answer, status=status)

    async def replies(request: web.Request) -> web.StreamResponse:
        token = await token_of(request)
        answer = await agent.codecision.take_answer(request.match_info["tag"], token)
        return web.json_response(answer, status=202)

    app.router.add_post(APPROVALS_PATH, approvals)
    app.router.add_post(APPROVAL_REPLIES_PATH + "/{tag}", replies)


def _invalid(detail: str, path: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.INVALID_REQUEST, detail, path=path)


def _string(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(f"'{name}' must be a non-empty string", f"/{name}")
    return value


async def _enrol(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    vendor = _string(document, "vendor").rstrip("/")
    return {"approver": await agent.codecision.enrol(vendor, _string(document, "agent"))}


async def summary_of(agent: BuyerAgent, offer_id: str) -> tuple[str, dict[str, str], str]:
    """The vendor, messageRef and a one-line summary of a received offer.

    Raises:
        RemoteProtocolError: NOT_FOUND, she received no signed offer of that id.
    """
    view = await agent.store.offer_view(offer_id)
    if view is None or view.entry.token is None:
        raise RemoteProtocolError(ErrorCode.NOT_FOUND, f"no signed offer {offer_id}")
    ref = view.entry.ref()
    total = view.body.price.total
    item = view.body.items[0].description if view.body.items else "the deal"
    summary = f"{item}: {total.currency} {total.amount} ({view.body.basis})"
    return view.peer, {"id": ref.id, "digest": ref.digest}, summary[:500]


async def _request(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    vendor, ref, summary = await summary_of(agent, _string(document, "offer"))
    if "summary" in document:
        summary = _string(document, "summary")
    jti = await agent.codecision.ask(
        ref, vendor=vendor, agent=_string(document, "agent"), summary=summary
    )
    return {"request": jti}


async def _approvals(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    return {
        "asked": [
            {"request": row["jti"], "status": row["status"], "offer": row["data"]["offer"]}
            for row in await agent.codecision.asked()
        ],
        "received": await agent.codecision.pending(),
    }


async def _approve(agent: BuyerAgent, document: dict[str, Any]) -> Any:
    decision = document.get("decision", "approve")
    if decision not in ("approve", "refuse"):
        raise _invalid("'decision' is 'approve' or 'refuse'", "/decision")
    reason = document.get("reason", "")
    if not isinstance(reason, str):
        raise _invalid("'reason' must be a string", "/reason")
    done = await agent.codecision.decide(
        _string(document, "request"), approve=decision == "approve", reason=reason
    )
    return {"request": done.request, "approved": done.approved}


DRIVER_ACTIONS: Mapping[str, Callable[[BuyerAgent, dict[str, Any]], Awaitable[Any]]] = {
    "approval-enrol": _enrol,
    "approval-request": _request,
    "approvals": _approvals,
    "approve": _approve,
}
