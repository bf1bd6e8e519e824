"""Living with the product (issue 12): the retention touchpoints (seed 004, spec §6.9).

A vendor (a manufacturer, a dealer) decides on its own when to run its
retention touchpoints; in test mode the suite asks it to through the test
driver (``POST {driver}/touchpoints {"buyer": <pseudonym>}``), which answers
what it did with each: ``{"touchpoints": [{"code", "kind", "category",
"needs", "sent", "id", "reason"}]}``. A driver without that instruction makes
the check skip, with that reason.
"""

from __future__ import annotations

import asyncio

from conformance.checks.scenarios import run_deal, run_welcome
from conformance.context import CheckContext
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
#: How long the suite watches for notices after the touchpoints ran.
WATCH_SECONDS = 2.0
#: Every notification category: she allows them all, and shares little.
EVERY_CATEGORY = (
    "safety", "recall", "maintenance", "technical", "warranty", "promotions", "new-products",
    "events",
)  # fmt: skip


@REGISTRY.check(
    "VEN-TOUCHPOINTS",
    title="Retention touchpoints only within the data she shared, the others recorded",
    step=LifecycleStep.DEVELOPMENT,
    requirements=("VRM-RET-001", "VRM-RET-002", "VRM-MSG-019"),
    roles=VENDOR,
    needs=("test-driver", "sends:service-notice"),
)
async def touchpoints(ctx: CheckContext) -> None:
    """After the welcome (she allows every category, and shares all the vendor asked
    for but the last item), the vendor runs its touchpoints: none that depends on
    data she did not share is sent (VRM-RET-001); each sent one reaches her in a
    category she allowed; each not sent says why (VRM-RET-002)."""
    thread = await run_deal(ctx.session)
    thread = await run_welcome(ctx.session, thread, notifications=EVERY_CATEGORY)
    status, answer = await call_driver_raw(
        ctx.session, "POST", "/touchpoints", {"buyer": thread.persona.id}
    )
    if status in (404, 405):
        ctx.skip("the target's test driver has no touchpoints instruction")
    ctx.require(
        200 <= status < 300 and isinstance(answer, dict),
        "the test driver takes the touchpoints instruction",
        actual=f"{status} {answer}",
    )
    reported = answer.get("touchpoints")
    ctx.require(
        isinstance(reported, list) and all(isinstance(t, dict) for t in reported),
        "the driver answers the touchpoints it ran",
        actual=answer,
    )
    await asyncio.sleep(WATCH_SECONDS)
    received = {
        str(item.id): item for item in thread.persona.received() if item.type == "service-notice"
    }
    shared = set(thread.shared_categories)
    for touchpoint in reported:
        code = touchpoint.get("code")
        needs = {str(item) for item in touchpoint.get("needs") or []}
        if touchpoint.get("sent"):
            ctx.expect(
                needs <= shared,
                f"touchpoint {code} is sent only with the data it depends on shared",
                expected=sorted(shared),
                actual=sorted(needs),
                requirement="VRM-RET-001",
            )
            notice = received.get(str(touchpoint.get("id")))
            ctx.expect(
                notice is not None and notice.body.get("category") in EVERY_CATEGORY,
                f"touchpoint {code} reaches her as the service notice the driver names",
                actual=sorted(received),
                requirement="VRM-MSG-019",
            )
        else:
            ctx.expect(
                bool(touchpoint.get("reason")),
                f"touchpoint {code} not sent says why",
                actual=touchpoint,
                requirement="VRM-RET-002",
            )
