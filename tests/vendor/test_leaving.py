"""A vendor leaving the market (seed 003 step 9, spec §6.13), over HTTP: the operator
decides, every relationship gets an exit notice carrying her export (with the
relationship's signed history) and the receipt of the deletion done with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.peers import bodies
from reference_vendor.handlers import export_digest
from tests.vendor.conftest import Buyer
from tests.vendor.test_lifecycle import _welcome


async def test_the_operator_leaves_the_market_with_export_and_receipt(
    aiohttp_client: Any, make_config: Callable[..., Any]
) -> None:
    from reference_vendor.app import create_app

    vendor = await aiohttp_client(create_app(make_config(operator_token="let-me-in")))
    buyer = Buyer(vendor)
    _, accepted = await _welcome(buyer)
    unauthorised = await vendor.post("/vrm/operator/leave-market", json={})
    assert unauthorised.status == 401
    answer = await vendor.post(
        "/vrm/operator/leave-market",
        json={"explanation": "We are closing."},
        headers={"Authorization": "Bearer let-me-in"},
    )
    assert answer.status == 200, await answer.text()
    document = await answer.json()
    notice = await buyer.expect("exit-notice")
    assert document["sent"] == [notice.id]
    body = notice.body
    assert (body["reason"], body["explanation"]) == ("vendor-leaving-market", "We are closing.")
    export = body["export"]
    assert set(accepted) <= set(export["data"])
    assert export["digest"] == export_digest(export["data"])
    # The relationship's history: the vendor's own signed messages of record.
    history = {entry["type"] for entry in export["data"]["history"]}
    assert {"deal-confirmation", "terms-assertion"} <= history
    receipt = body["deletionReceipt"]
    assert receipt["relationship"] == buyer.id
    assert set(accepted) <= set(receipt["deleted"])
    state = await (await vendor.get("/vrm/test-driver/state")).json()
    assert state["relationships"][buyer.id]["data"] == {}
    assert state["relationships"][buyer.id]["state"] == "exiting"
    # Her acknowledgement ends it; a second departure finds nothing left to leave.
    ack = buyer.compose(
        "exit-acknowledgement",
        {"notice": notice.ref()},
        thread=notice.payload["thread"],
        parent=notice.id,
    )
    assert (await buyer.send(ack))[0] == 202
    again = await vendor.post("/vrm/test-driver/leave-market", json={})
    assert (await again.json())["sent"] == []
    # Out of the market: a new enquiry gets no offer.
    newcomer = Buyer(vendor)
    rfi = newcomer.compose("personal-rfi", bodies.personal_rfi_body(newcomer.now()))
    assert (await newcomer.send(rfi))[0] == 202
    assert [r.type for r in await newcomer.poll()] == []
