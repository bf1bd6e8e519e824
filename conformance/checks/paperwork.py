"""The paperwork of a deal (spec §12.5, §16.8; seed 000 step 4), against a vendor.

The suite is a buyer that reaches a deal; the vendor's terms of sharing at the
welcome may ask for the paperwork (the registered keeper, her insurance
policy). If they do, each such request must name the purpose
`legal-obligation` alone, with a retention (VRM-PAP-001), and the paperwork
shared under those terms is taken. A vendor that asks for no paperwork makes
the check skip.
"""

from __future__ import annotations

from conformance.checks._support import expect_accepted
from conformance.checks.scenarios import await_terms, run_deal
from conformance.context import CheckContext
from conformance.peers import bodies
from conformance.registry import REGISTRY
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
#: The paperwork categories (spec §16.8), and every category under them.
PAPERWORK = ("vehicle.registration-keeper", "insurance.policy")
LEGAL_OBLIGATION = "legal-obligation"
#: What the suite's buyer shares from "her store" for each paperwork category.
_VALUES = {
    "vehicle.registration-keeper": "Conformance Buyer, 1 Test Street (V5C 0000 0000 000)",
    "insurance.policy": "Conformance Mutual, policy CM-0000001, comprehensive",
}


def _is_paperwork(item: str) -> bool:
    return any(item == name or item.startswith(name + ".") for name in PAPERWORK)


@REGISTRY.check(
    "VEN-PAPERWORK-TERMS",
    title="The vendor asks for the paperwork of a deal for the legal obligation only",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-PAP-001",),
    roles=VENDOR,
    needs=("sends:terms-assertion",),
)
async def paperwork_terms(ctx: CheckContext) -> None:
    """After a deal, the vendor's terms assertion: each request for paperwork names
    `legal-obligation` alone and a retention; the paperwork shared under those
    terms, accepted as asked, is taken."""
    thread = await run_deal(ctx.session)
    terms = await await_terms(thread)
    requests = [r for r in terms.body.get("requests") or [] if isinstance(r, dict)]
    asked = [r for r in requests if _is_paperwork(str(r.get("item")))]
    if not asked:
        ctx.skip("the vendor's terms ask for no paperwork of the deal")
    for request in asked:
        item = str(request.get("item"))
        purposes = list(request.get("purposes") or [])
        ctx.expect(
            purposes == [LEGAL_OBLIGATION],
            f"{item} is asked for the legal obligation alone",
            expected=[LEGAL_OBLIGATION],
            actual=purposes,
            requirement="VRM-PAP-001",
        )
        retention = request.get("retention")
        ctx.expect(
            isinstance(retention, dict) and bool(retention.get("period")),
            f"{item} is asked with a retention",
            actual=retention,
            requirement="VRM-PAP-001",
        )
    accepted = [
        {
            "item": str(request["item"]),
            "purposes": [LEGAL_OBLIGATION],
        }
        for request in asked
    ]
    data = [
        {
            "item": str(request["item"]),
            "value": _VALUES.get(str(request["item"]), "on file"),
        }
        for request in asked
    ]
    refused = [str(r["item"]) for r in requests if not _is_paperwork(str(r.get("item")))]
    response = thread.persona.compose(
        "terms-response",
        bodies.terms_response_body(
            terms.ref(),
            accepted=accepted,
            refused=refused,
            data=data,
        ),
        thread=str(terms.field("thread") or terms.id),
        parent=str(terms.id),
    )
    expect_accepted(
        ctx,
        await thread.persona.send(response, note="the paperwork shared under the terms"),
        what="the paperwork shared for the legal obligation under the vendor's terms",
    )
