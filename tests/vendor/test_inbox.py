"""The vendor's HTTP binding: discovery, keys, inbox receipts, replay, limits, mailbox,
delivery of replies (spec §11)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from reference_vendor.app import create_app
from reference_vendor.config import STORE_FILE, VendorConfig
from tests.vendor.conftest import VENDOR_ID, Buyer, receipt_payload
from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import decode
from vrm_protocol.keys import KeySet, key_resolver, thumbprint
from vrm_protocol.message_types import accepted_by, sent_by
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, Role

Client = TestClient[web.Request, web.Application]


def _problem(reply: tuple[int, bytes, str]) -> dict[str, Any]:
    status, body, content_type = reply
    assert content_type == "application/problem+json", (status, body[:200])
    document = json.loads(body)
    assert document["status"] == status
    assert document["type"].endswith("/" + document["code"])
    return dict(document)


async def test_discovery_lists_endpoints_limits_and_test_driver(vendor: Client) -> None:
    response = await vendor.get("/.well-known/vrm")
    assert response.status == 200
    document = await response.json()
    assert document["id"] == VENDOR_ID
    assert document["role"] == "vendor"
    assert document["endpoints"]["inbox"] == VENDOR_ID + "/vrm/inbox"
    assert document["endpoints"]["testDriver"] == VENDOR_ID + "/vrm/test-driver"
    assert "personal-rfp" in document["messageTypes"]["accepts"]
    assert document["limits"]["maxMessageBytes"] > 0
    assert document["terms"][0]["digest"].startswith("sha-256:")


@pytest.mark.parametrize(
    ("catalogue", "sells"), [("dealer-mayfair", True), ("road-warrior", False)]
)
async def test_discovery_lists_what_the_registry_says_the_role_takes_and_sends(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], catalogue: str, sells: bool
) -> None:
    # The lists come from the message-type registry, never from a hand-written
    # list: a party that sells nothing neither takes nor sends what selling is.
    vendor = await aiohttp_client(create_app(make_config(catalogue)))
    document = await (await vendor.get("/.well-known/vrm")).json()
    assert set(document["messageTypes"]["accepts"]) == {
        t.value for t in accepted_by(Role.VENDOR, sells=sells)
    }
    assert set(document["messageTypes"]["sends"]) == {
        t.value for t in sent_by(Role.VENDOR, sells=sells)
    }
    assert ("offer-acceptance" in document["messageTypes"]["accepts"]) is sells


async def test_a_parent_of_another_relationship_is_refused(
    new_buyer: Callable[[], Buyer],
) -> None:
    # spec §7.3: a parent the vendor holds must be a message of this relationship.
    sally, mallory = new_buyer(), new_buyer()
    rfi = sally.compose("personal-rfi", bodies.personal_rfi_body(sally.now()))
    assert (await sally.send(rfi))[0] == 202
    [offer] = await sally.poll()
    own = mallory.compose("personal-rfi", bodies.personal_rfi_body(mallory.now()))
    assert (await mallory.send(own))[0] == 202
    prying = mallory.compose(
        "support-request", bodies.support_request_body(), thread=own["id"], parent=offer.id
    )
    problem = _problem(await mallory.send(prying))
    assert (problem["code"], problem["path"]) == ("not-a-participant", "/parent")
    answering_her_own = mallory.compose(
        "offer-decline",
        bodies.offer_decline_body([offer.id]),
        thread=own["id"],
        parent=own["id"],
    )
    assert _problem(await mallory.send(answering_her_own))["code"] != "not-a-participant"


async def test_without_test_mode_there_is_no_driver(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    client = await aiohttp_client(create_app(make_config(test_mode=False)))
    document = await (await client.get("/.well-known/vrm")).json()
    assert "testDriver" not in document["endpoints"]
    assert (await client.get("/vrm/test-driver/state")).status == 404


async def test_jwks_publishes_the_public_key_under_its_thumbprint(vendor: Client) -> None:
    document = await (await vendor.get("/vrm/jwks.json")).json()
    (key,) = document["keys"]
    assert "d" not in key
    assert key["kid"] == thumbprint(key)


async def test_receipt_binds_the_exact_bytes_and_verifies(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    token = buyer.sign(rfi)
    status, body, content_type = await buyer.post(token)
    assert (status, content_type) == (202, MESSAGE_MEDIA_TYPE)
    jwks = await (await vendor.get("/vrm/jwks.json")).json()
    received = decode(
        body, resolve_key=key_resolver(KeySet.from_jwks(jwks)), receiver=buyer.id, now=buyer.now()
    )
    assert received.payload["type"] == "receipt"
    assert received.payload["body"]["regarding"] == {
        "id": rfi["id"],
        "digest": message_digest(token),
    }


async def test_accepted_message_is_in_the_store_when_202_returns(
    make_config: Callable[..., VendorConfig], new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    token = buyer.sign(rfi)
    status, receipt, _ = await buyer.post(token)
    assert status == 202
    # A second, independent connection to the file: the commit is durable, not cached.
    database = make_config().data_dir / STORE_FILE
    with sqlite3.connect(database) as conn:
        stored = conn.execute(
            "SELECT token, receipt FROM messages WHERE sender = ? AND message_id = ?",
            (buyer.id, rfi["id"]),
        ).fetchone()
        queued = conn.execute(
            "SELECT m.type, o.status FROM outbox o JOIN messages m ON m.pk = o.message_pk"
            " JOIN relationships r ON r.pk = o.relationship WHERE r.peer_id = ?",
            (buyer.id,),
        ).fetchall()
    assert stored == (token, receipt)
    assert queued == [("offer", "mailbox")]


async def test_identical_resend_gets_the_original_receipt_and_no_second_effect(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    token = buyer.sign(buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now())))
    first = await buyer.post(token)
    state = await (await vendor.get("/vrm/test-driver/state")).json()
    second = await buyer.post(token)
    assert first[0] == 202
    assert second[0] == 200
    assert second[1] == first[1]
    assert await (await vendor.get("/vrm/test-driver/state")).json() == state
    assert len(await buyer.poll()) == 1


async def test_different_message_under_a_used_id_is_a_replay(
    new_buyer: Callable[[], Buyer],
) -> None:
    buyer = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert (await buyer.send(rfi))[0] == 202
    changed = {**rfi, "extensions": {"org.example.replayed": True}}
    problem = _problem(await buyer.send(changed))
    assert (problem["status"], problem["code"]) == (409, "replay")


async def test_replay_protection_survives_a_restart(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    config = make_config()
    first_app = await aiohttp_client(create_app(config))
    buyer = Buyer(first_app)
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    token = buyer.sign(rfi)
    status, receipt, _ = await buyer.post(token)
    assert status == 202
    await first_app.close()
    # A new application on the same data directory: the same store, the same key.
    second_app = await aiohttp_client(create_app(config))
    buyer.client = second_app
    again = await buyer.post(token)
    assert again[:2] == (200, receipt)
    changed = {**rfi, "extensions": {"org.example.replayed": True}}
    assert _problem(await buyer.send(changed))["code"] == "replay"
    document = await (await second_app.get("/vrm/jwks.json")).json()
    received = decode(
        receipt,
        resolve_key=key_resolver(KeySet.from_jwks(document)),
        receiver=buyer.id,
        now=buyer.now(),
    )
    assert received.payload["type"] == "receipt", "the key survived the restart"


async def test_oversized_body_is_refused_before_it_is_read(
    vendor: Client, new_buyer: Callable[[], Buyer], make_config: Callable[..., VendorConfig]
) -> None:
    buyer = new_buyer()
    limit = make_config().limits.max_message_bytes
    garbage = b"x" * (limit + 1)  # not even a JWS: the size alone decides
    problem = _problem(await buyer.post(garbage))
    assert (problem["status"], problem["code"]) == (413, "payload-too-large")


async def test_oversized_chunked_body_is_refused(
    vendor: Client, make_config: Callable[..., VendorConfig]
) -> None:
    limit = make_config().limits.max_message_bytes

    async def chunks() -> Any:
        for _ in range(limit // 1024 + 2):
            yield b"y" * 1024

    response = await vendor.post(
        "/vrm/inbox", data=chunks(), headers={"Content-Type": MESSAGE_MEDIA_TYPE}
    )
    assert response.status == 413
    assert (await response.json())["code"] == "payload-too-large"


async def test_wrong_media_type_is_refused_before_parsing(new_buyer: Callable[[], Buyer]) -> None:
    buyer = new_buyer()
    token = buyer.sign(buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now())))
    problem = _problem(await buyer.post(token, content_type="application/json"))
    assert (problem["status"], problem["code"]) == (415, "unsupported-media-type")
    # The message itself was never processed: the same bytes are new afterwards.
    assert (await buyer.post(token))[0] == 202


async def test_pipeline_rejections_carry_their_stable_codes(
    new_buyer: Callable[[], Buyer],
) -> None:
    buyer = new_buyer()
    legal = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    token = buyer.sign(legal)
    head, payload, signature = token.split(b".")
    tampered = (
        head + b"." + payload + b"." + (b"A" if signature[:1] != b"A" else b"B") + signature[1:]
    )
    assert _problem(await buyer.post(tampered))["code"] == "bad-signature"
    assert _problem(await buyer.post(head + b"." + payload))["code"] == "malformed-jws"
    elsewhere = {**legal, "to": ["https://another-vendor.test"]}
    assert _problem(await buyer.send(elsewhere))["code"] == "wrong-audience"
    assert (await buyer.send(legal))[0] == 202


async def test_mailbox_needs_a_valid_poll_token(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    response = await vendor.get("/vrm/mailbox?after=0")
    assert response.status == 401
    assert (await response.json())["code"] == "authentication-required"
    buyer = new_buyer()
    other = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert (await buyer.send(rfi))[0] == 202
    assert await other.poll() == [], "a party sees only its own replies"
    assert [r.type for r in await buyer.poll()] == ["offer"]
    assert await buyer.poll() == [], "the cursor moves on"


async def test_replies_are_posted_to_the_reply_inbox(
    aiohttp_client: Any, aiohttp_server: Any, make_config: Callable[..., VendorConfig]
) -> None:
    received: list[bytes] = []
    attempts: list[int] = []

    async def buyer_inbox(request: web.Request) -> web.Response:
        attempts.append(1)
        if len(attempts) == 1:
            return web.Response(status=503)  # the first attempt fails: retried later
        received.append(await request.read())
        return web.Response(status=202)

    inbox_app = web.Application()
    inbox_app.router.add_post("/vrm/inbox", buyer_inbox)
    server = await aiohttp_server(inbox_app)
    # Delivery is driven step by step through the test driver.
    vendor = await aiohttp_client(create_app(make_config(background_delivery=False)))
    buyer = Buyer(vendor)
    rfi = buyer.compose(
        "personal-rfi",
        bodies.personal_rfi_body(buyer.now()),
        reply_inbox=str(server.make_url("/vrm/inbox")),
    )
    assert (await buyer.send(rfi))[0] == 202
    assert (await vendor.post("/vrm/test-driver/deliver")).status == 200
    assert received == []
    database = make_config().data_dir / STORE_FILE
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE outbox SET next_attempt = 0")  # skip the backoff wait
    assert (await vendor.post("/vrm/test-driver/deliver")).status == 200
    assert len(received) == 1
    payload = receipt_payload(received[0])
    assert (payload["type"], payload["thread"]) == ("offer", rfi["id"])
    # spec §11.4 (VRM-HTTP-010): delivered or not, the reply stays in the mailbox.
    assert [reply.token for reply in await buyer.poll()] == received


async def test_an_answer_that_cannot_be_made_becomes_a_problem_report(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], tmp_path: Path
) -> None:
    # A misconfigured catalogue: its delivery method is not a protocol token, so
    # every offer it would make is schema-invalid and is never signed.
    shipped = Path(__file__).parents[2] / "reference_vendor" / "catalogues" / "dealer-mayfair.toml"
    broken = tmp_path / "broken-dealer.toml"
    broken.write_text(
        shipped.read_text().replace(
            'delivery_method = "home-delivery"', 'delivery_method = "By Van"'
        )
    )
    vendor = await aiohttp_client(create_app(make_config(str(broken))))
    buyer = Buyer(vendor)
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    token = buyer.sign(rfi)
    assert (await buyer.post(token))[0] == 202, "the RFI itself was fine and is kept"
    report = await buyer.expect("problem-report")
    assert report.body["code"] == "internal-error"
    assert report.body["regarding"] == {"id": rfi["id"], "digest": message_digest(token)}
    assert report.payload["thread"] == rfi["id"]
    state = await (await vendor.get("/vrm/test-driver/state")).json()
    assert state["relationships"][buyer.id]["offers"] == [], "no offer was made"


async def test_a_sender_over_its_rate_is_told_when_to_retry(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    vendor = await aiohttp_client(create_app(make_config(burst=2, rate_per_second=0.01)))
    buyer = Buyer(vendor)
    for _ in range(2):
        rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
        assert (await buyer.send(rfi))[0] == 202
    over = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    response = await vendor.post(
        "/vrm/inbox", data=buyer.sign(over), headers={"Content-Type": MESSAGE_MEDIA_TYPE}
    )
    assert response.status == 429
    assert (await response.json())["code"] == "rate-limited"
    assert int(response.headers["Retry-After"]) >= 1
    other = Buyer(vendor)  # another pseudonym has a bucket of its own
    rfi = other.compose("personal-rfi", bodies.personal_rfi_body(other.now()))
    assert (await other.send(rfi))[0] == 202


async def test_the_vendors_messages_name_its_inbox_in_reply_to(
    new_buyer: Callable[[], Buyer],
) -> None:
    # spec §5.1 (VRM-ENV-010): a sender with a reachable inbox names it in replyTo;
    # the receipt, answered on the HTTP response, need not.
    buyer = new_buyer()
    token = buyer.sign(buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now())))
    status, receipt, _ = await buyer.post(token)
    assert status == 202
    [offer] = await buyer.poll()
    assert offer.type == "offer"
    assert offer.payload["replyTo"] == {"inbox": VENDOR_ID + "/vrm/inbox"}
    assert "replyTo" not in receipt_payload(receipt)
