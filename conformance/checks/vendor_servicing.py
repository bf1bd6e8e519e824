"""A vendor's service notices (``--role vendor``, spec §6.9).

A vendor decides on its own when to send a notice; in test mode the suite
asks it to through the test driver (``POST {driver}/service-notice
{"buyer": <pseudonym>}``). A driver without that instruction makes these
checks skip, with that reason.
"""

from __future__ import annotations

import asyncio
from typing import Any

from conformance.checks.scenarios import (
    VendorThread,
    run_deal,
    run_welcome,
    vendor_welcome,
)
from conformance.context import CheckContext
from conformance.peers.inbox import Inbound
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
#: How long the suite watches for a notice the vendor must NOT send.
ABSENCE_WATCH_SECONDS = 2.0


async def _prompt_notice(ctx: CheckContext, thread: VendorThread) -> tuple[int, Any]:
    status, answer = await call_driver_raw(
        ctx.session, "POST", "/service-notice", {"buyer": thread.persona.id}
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no service-notice instruction")
    return status, answer


def _allowed(thread: VendorThread) -> set[str]:
    assert thread.terms_response is not None
    preferences = thread.terms_response.payload["body"].get("notificationPreferences") or {}
    return {str(category) for category in preferences.get("allowed") or []}


def _notices(thread: VendorThread) -> list[Inbound]:
    return [item for item in thread.persona.received() if item.type == "service-notice"]


@REGISTRY.check(
    "VEN-SERVICE-NOTICE",
    title="A service notice respects the preferences and states what it asks",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-MSG-019", "VRM-MSG-020"),
    roles=VENDOR,
    needs=("test-driver", "sends:service-notice"),
)
async def service_notice(ctx: CheckContext) -> None:
    """After the welcome (the individual allows safety, recall and maintenance
    notices), the vendor is prompted to send a notice: its category is one the
    individual allows, and each data request states purposes, retention and scope."""
    thread = await ctx.use(vendor_welcome)
    status, answer = await _prompt_notice(ctx, thread)
    ctx.require(
        200 <= status < 300,
        "the test driver takes the service-notice instruction",
        actual=f"{status} {answer}",
    )
    notice = await thread.persona.expect(
        lambda item: item.type == "service-notice",
        description="the vendor sends the service notice",
        requirement="VRM-MSG-019",
    )
    ctx.require(notice.ok, "the notice passes the receiving pipeline", actual=notice.error)
    allowed = _allowed(thread)
    ctx.expect(
        notice.body.get("category") in allowed,
        "the notice's category is one the individual allows",
        expected=sorted(allowed),
        actual=notice.body.get("category"),
        requirement="VRM-MSG-019",
    )
    for request in notice.body.get("dataRequests") or []:
        ctx.expect(
            isinstance(request, dict)
            and bool(request.get("purposes"))
            and isinstance(request.get("retention"), dict)
            and bool(request.get("scope")),
            f"the request for {request.get('item') if isinstance(request, dict) else request} "
            "states purposes, retention and scope",
            actual=request,
            requirement="VRM-MSG-020",
        )


@REGISTRY.check(
    "VEN-NOTICE-PREFERENCES",
    title="No service notice outside the individual's notification preferences",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-MSG-019",),
    roles=VENDOR,
    needs=("test-driver", "sends:service-notice"),
)
async def notice_preferences(ctx: CheckContext) -> None:
    """In a relationship whose terms response allows safety notices only, the
    vendor prompted to send a (maintenance) notice refuses, or sends one of an
    allowed category only."""
    thread = await run_deal(ctx.session)
    thread = await run_welcome(ctx.session, thread, notifications=("safety",))
    await _prompt_notice(ctx, thread)
    await asyncio.sleep(ABSENCE_WATCH_SECONDS)
    categories = [str(notice.body.get("category")) for notice in _notices(thread)]
    ctx.require(
        set(categories) <= {"safety"},
        "every notice the vendor sent is of a category the individual allows",
        expected=["safety"],
        actual=categories,
        requirement="VRM-MSG-019",
    )
