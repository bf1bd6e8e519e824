"""Printed material by post (spec §6.60, §6.61; seed 000 step 2), for both roles.

Against a vendor, the suite is a buyer in the enquiry (an RFI sent) that asks
for a brochure by post, giving a postal address for that delivery alone: the
vendor must answer with a dispatch naming the request by its digest, listing
the material, saying the address was deleted, and its ``GET state`` must hold
no address of hers afterwards. Against a buyer, the suite is a vendor her RFI
reached; her agent, told to ask it for a brochure (``POST {driver}/materials
{"vendor"}``; a driver without it makes the check skip), must send her postal
address under a `delivery` consent until sent and nothing else of hers, and
refuse a dispatch naming the request with another digest, or listing material
she did not ask for.
"""

from __future__ import annotations

from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection
from conformance.checks.scenarios import (
    buyer_rfi_to_new_vendor,
    prompt_wait,
    reply_inbox,
)
from conformance.context import CheckContext
from conformance.peers import bodies
from conformance.peers.buyers import buyer_side
from conformance.peers.messages import message_ref, sign
from conformance.peers.vendors import require_accepted
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.errors import ErrorCode
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
BUYER = (Role.BUYER,)
E = ErrorCode
WRONG_DIGEST = "sha-256:" + "Z" * 43
POSTAL_ADDRESS = "contact.postal-address"
_ADDRESS = {"lines": ["1 Conformance Row"], "postcode": "ZZ1 1ZZ", "country": "GB"}
_CONSENT = {"purpose": "delivery", "retention": "until-sent"}


# -- against a vendor: the suite is the buyer --------------------------------------------------


@REGISTRY.check(
    "MAT-VEN-DISPATCH",
    title="The vendor posts the brochure, says so naming the request, and keeps no address",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-MAT-002", "VRM-MAT-004"),
    roles=VENDOR,
    needs=("test-driver", "accepts:material-request", "sends:material-dispatch"),
)
async def vendor_dispatch(ctx: CheckContext) -> None:
    """After an RFI, the persona asks for a brochure by post. The vendor answers
    with a dispatch naming the request by its digest, listing the brochure, with
    ``addressDeleted``; its ``GET state`` then holds no postal address of hers."""
    side = await buyer_side(ctx.session)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="a personal RFI"), what="a personal RFI")
    request = persona.compose(
        "material-request",
        {"materials": [{"code": "brochure"}], "address": _ADDRESS, "consent": _CONSENT},
    )
    expect_accepted(
        ctx,
        await persona.send(request, note="a brochure by post"),
        what="her material request",
        requirement="VRM-MAT-004",
    )
    dispatch = await persona.expect(
        lambda item: item.type == "material-dispatch",
        description="the vendor says the brochure was posted",
        requirement="VRM-MAT-004",
    )
    ctx.require(
        dispatch.ok, "the dispatch passes the receiving pipeline", actual=dispatch.error_detail
    )
    sent = next(s.token for s in reversed(persona.sent) if s.payload.get("id") == request["id"])
    body = dispatch.body
    ctx.expect(
        body.get("request") == message_ref(sent, str(request["id"])),
        "the dispatch names her request by the digest of the bytes received",
        actual=body.get("request"),
        requirement="VRM-MAT-002",
    )
    ctx.expect(
        body.get("materials") == ["brochure"] and body.get("addressDeleted") is True,
        "the dispatch lists the brochure and says the address was deleted",
        actual=body,
        requirement="VRM-MAT-004",
    )
    status, state = await call_driver_raw(ctx.session, "GET", "/state")
    ctx.require(status == 200, "the test driver answers GET state", actual=status)
    held: Any = (((state or {}).get("relationships") or {}).get(persona.id) or {}).get("data")
    ctx.expect(
        POSTAL_ADDRESS not in (held or {}),
        "the vendor holds no postal address of hers once the brochure is posted",
        actual=held,
        requirement="VRM-MAT-004",
    )


# -- against a buyer: the suite plays the vendor -----------------------------------------------


@REGISTRY.check(
    "MAT-BUY-DISPATCH",
    title="The buyer asks for a brochure with her address alone, and takes only a dispatch of it",
    step=LifecycleStep.ENGAGE,
    requirements=("VRM-MAT-001", "VRM-MAT-002", "VRM-MAT-003"),
    roles=BUYER,
    needs=("test-driver", "sends:material-request", "accepts:material-dispatch"),
)
async def buyer_dispatch(ctx: CheckContext) -> None:
    """After her RFI, her agent, told to, asks the suite's vendor for a brochure:
    her postal address under a `delivery` consent until sent, nothing else of
    hers. A dispatch naming the request with another digest, or listing
    material she did not ask for, is ``reference-mismatch``; the right one is
    taken."""
    session = ctx.session
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Brochures")
    inbox = reply_inbox(rfi)
    status, _ = await call_driver_raw(
        session, "POST", "/materials", {"vendor": vendor.id, "materials": ["brochure"]}
    )
    if status in (404, 405):
        ctx.skip("the buyer's test driver has no materials instruction")
    request = await vendor.expect(
        lambda item: item.type == "material-request",
        description="the buyer asks for a brochure by post",
        within=prompt_wait(session),
        requirement="VRM-MAT-001",
    )
    body = request.body
    ctx.expect(
        set(body) <= {"materials", "address", "consent", "about"}
        and body.get("consent") == _CONSENT
        and isinstance(body.get("address"), dict),
        "the request carries her postal address under a delivery consent until sent, "
        "and nothing else of hers",
        actual=body,
        requirement="VRM-MAT-001",
    )

    def dispatch(request_ref: dict[str, str], materials: list[str]) -> dict[str, Any]:
        return vendor.reply_to(
            request,
            "material-dispatch",
            {
                "request": request_ref,
                "materials": materials,
                "sentAt": format_timestamp(session.clock.now()),
                "addressDeleted": True,
            },
        )

    wrong = dispatch({"id": str(request.id), "digest": WRONG_DIGEST}, ["brochure"])
    reply = await vendor.deliver(wrong, inbox=inbox, note="dispatch, another digest")
    if reply is not None:
        expect_rejection(
            ctx, reply, E.REFERENCE_MISMATCH,
            what="a dispatch naming her request with another digest",
            requirement="VRM-MAT-002",
        )  # fmt: skip
    extra = dispatch(request.ref(), ["brochure", "price-list"])
    reply = await vendor.deliver(extra, inbox=inbox, note="dispatch of material not asked for")
    ctx.require(
        reply is not None,
        "the dispatch is POSTed to the buyer's inbox (it answers over HTTP)",
        requirement="VRM-MAT-003",
    )
    assert reply is not None
    expect_rejection(
        ctx, reply, E.REFERENCE_MISMATCH,
        what="a dispatch listing material she did not ask for",
        requirement="VRM-MAT-003",
    )  # fmt: skip
    right = dispatch(request.ref(), ["brochure"])
    require_accepted(
        await vendor.deliver_token(
            sign(right, vendor.signer), to=str(rfi.field("from")), inbox=inbox, note="dispatch"
        ),
        "the buyer takes the dispatch of the brochure she asked for",
    )
