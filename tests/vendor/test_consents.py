"""The reference vendor applies her consent changes and receipts them (spec §6.20,
§6.21), over HTTP, with a real store and keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from tests.vendor.conftest import Buyer
from tests.vendor.test_lifecycle import _state, _welcome
from vrm_protocol.canonical import message_digest

Client = TestClient[web.Request, web.Application]


async def _change(buyer: Buyer, thread: str, changes: list[dict[str, Any]]) -> Any:
    change = buyer.compose("consent-change", {"changes": changes}, thread=thread, parent=thread)
    token = buyer.sign(change)
    status, body, _ = await buyer.post(token)
    assert status == 202, body
    receipt = await buyer.expect("consent-receipt")
    assert receipt.body["change"] == {"id": change["id"], "digest": message_digest(token)}
    return receipt


def _relationship(state: dict[str, Any], buyer: Buyer) -> dict[str, Any]:
    return dict(state["relationships"][buyer.id])


async def test_a_withdrawal_deletes_what_no_legal_basis_keeps_and_says_so(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, shared = await _welcome(buyer)
    assert {"identity.name", "contact.email"} <= set(shared)
    receipt = await _change(
        buyer,
        rfi["id"],
        [
            {"item": "contact.email", "action": "withdraw"},
            {"item": "identity.name", "action": "withdraw"},
        ],
    )
    applied = {a["item"]: a for a in receipt.body["applied"]}
    # The e-mail address (given at acceptance too) is not the deal record's to keep.
    assert applied["contact.email"] == {"item": "contact.email", "purposes": [], "deleted": True}
    # Her name stays in the sales record, on its legal basis only.
    assert applied["identity.name"] == {"item": "identity.name", "purposes": [], "deleted": False}
    (kept,) = receipt.body["retained"]
    assert kept["item"] == "identity.name"
    assert kept["basis"].startswith("legal-obligation")
    relationship = _relationship(await _state(vendor), buyer)
    assert not {"contact.email", "identity.name"} & set(relationship["data"])
    assert not {c["item"] for c in relationship["consents"]} & {"contact.email", "identity.name"}

    # At her exit the e-mail address is reported deleted, not retained (VRM-GRANT-010).
    notice = buyer.compose(
        "exit-notice", bodies.exit_notice_body(buyer.now()), thread=rfi["id"], parent=rfi["id"]
    )
    assert (await buyer.send(notice))[0] == 202
    deletion = (await buyer.expect("exit-acknowledgement")).body["deletionReceipt"]
    assert "contact.email" in deletion["deleted"]
    assert "contact.email" not in {r["item"] for r in deletion.get("retained", [])}


async def test_narrowing_and_widening_stay_within_the_terms(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, shared = await _welcome(buyer)
    assert "vehicle.vin" in shared
    before = _relationship(await _state(vendor), buyer)["data"]["vehicle.vin"]["retainUntil"]
    narrowed = await _change(
        buyer,
        rfi["id"],
        [
            {
                "item": "vehicle.vin",
                "action": "narrow",
                "purposes": ["warranty"],
                "retention": {"period": "P30D"},
            }
        ],
    )
    assert narrowed.body["applied"] == [
        {"item": "vehicle.vin", "purposes": ["warranty"], "deleted": False}
    ]
    widened = await _change(
        buyer,
        rfi["id"],
        [{"item": "vehicle.vin", "action": "widen", "purposes": ["safety-recall", "marketing"]}],
    )
    # Marketing was never asked for the VIN: it is not added (VRM-GRANT-011).
    assert widened.body["applied"] == [
        {"item": "vehicle.vin", "purposes": ["warranty", "safety-recall"], "deleted": False}
    ]
    relationship = _relationship(await _state(vendor), buyer)
    held = relationship["data"]["vehicle.vin"]
    assert held["purposes"] == ["warranty", "safety-recall"]
    # Her narrowing shortened the retention to 30 days; the widening did not lengthen it.
    assert held["retainUntil"] < before
    (consent,) = [c for c in relationship["consents"] if c["item"] == "vehicle.vin"]
    assert consent["retainUntil"] == held["retainUntil"]


async def test_a_malformed_change_is_refused_and_answered_by_nothing(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi, _ = await _welcome(buyer)
    for changes in (
        [{"item": "vehicle.vin", "action": "narrow"}],
        [{"item": "vehicle.vin", "action": "withdraw", "purposes": ["warranty"]}],
        [
            {"item": "vehicle.vin", "action": "withdraw"},
            {"item": "vehicle.vin", "action": "widen", "purposes": ["warranty"]},
        ],
    ):
        change = buyer.compose("consent-change", {"changes": changes}, thread=rfi["id"])
        status, body, _ = await buyer.send(change)
        assert (status, json.loads(body)["code"]) == (422, "schema-invalid")
    assert await buyer.poll() == []
