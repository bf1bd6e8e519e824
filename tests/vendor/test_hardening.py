"""Regression tests of issue 9 for the reference vendor: hostile input at the HTTP
binding, rate limits that a stranger cannot turn against a victim, every non-2xx
answer as problem details (spec §11).

Real application, real SQLite store and keys on disk; buyers sign with the library.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from reference_vendor.app import create_app
from reference_vendor.catalogue import load_catalogue, shipped_catalogues
from reference_vendor.config import VendorConfig
from tests.vendor.conftest import VENDOR_ID, Buyer
from vrm_protocol.canonical import b64url_encode
from vrm_protocol.http_binding import POLL_AUTH_SCHEME, make_poll_token
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

Client = TestClient[web.Request, web.Application]


async def _problem(response: Any) -> dict[str, Any]:
    """The RFC 9457 body of ``response``, after checking its media type and status."""
    body = await response.read()
    assert response.content_type == "application/problem+json", (response.status, body[:300])
    document = json.loads(body)
    assert document["status"] == response.status
    assert document["type"].endswith("/" + document["code"])
    return dict(document)


def _junk_token(kid: str, *, header_extra: bytes = b"") -> bytes:
    """A token that names ``kid`` but was not signed by its key."""
    kid_member = json.dumps(kid).encode()
    header = b'{"alg":"EdDSA","kid":' + kid_member + header_extra + b',"typ":"vrm+jws"}'
    payload = b'{"junk":true}'
    return (b64url_encode(header) + "." + b64url_encode(payload) + "." + "A" * 86).encode()


# -- D8: nothing parses attacker bytes outside the pipeline; per-key budgets after verification --


async def test_a_deeply_nested_header_is_refused_by_the_pipeline_not_a_500(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    # Beyond the interpreter's recursion limit, yet a header of under 4 KiB: small
    # enough for any header peek to try it (the peek it broke skipped longer ones).
    depth = 1_400
    nested = b',"x":' + b"[" * depth + b"]" * depth
    token = _junk_token(buyer.identity.signing_key.kid, header_extra=nested)
    response = await vendor.post(
        "/vrm/inbox", data=token, headers={"Content-Type": MESSAGE_MEDIA_TYPE}
    )
    problem = await _problem(response)
    assert (problem["status"], problem["code"]) == (400, "nesting-too-deep")


async def test_junk_tokens_naming_a_victims_kid_do_not_lock_the_victim_out(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    # A per-key budget of 2: before the fix, junk charged the victim's bucket.
    vendor = await aiohttp_client(create_app(make_config(burst=2, rate_per_second=0.001)))
    victim = Buyer(vendor)
    kid = victim.identity.signing_key.kid
    for _ in range(5):
        response = await vendor.post(
            "/vrm/inbox", data=_junk_token(kid), headers={"Content-Type": MESSAGE_MEDIA_TYPE}
        )
        assert (await _problem(response))["code"] == "bad-signature"
    rfi = victim.compose("personal-rfi", bodies.personal_rfi_body(victim.now()))
    status, body, _ = await victim.send(rfi)
    assert status == 202, body
    # The victim's own budget still holds her: it is charged once she is verified.
    second = victim.compose("personal-rfi", bodies.personal_rfi_body(victim.now()))
    assert (await victim.send(second))[0] == 202
    third = victim.compose("personal-rfi", bodies.personal_rfi_body(victim.now()))
    status, body, _ = await victim.send(third)
    assert (status, json.loads(body)["code"]) == (429, "rate-limited")


# -- the mailbox: every query parameter validated, credentials required --------------------------


async def _poll_headers(buyer: Buyer, after: int = 0) -> dict[str, str]:
    token = make_poll_token(
        buyer.identity.signing_key,
        poller=buyer.id,
        mailbox_owner=VENDOR_ID,
        after=after,
        now=buyer.now(),
    )
    return {"Authorization": f"{POLL_AUTH_SCHEME} {token.decode()}"}


async def test_a_mailbox_cursor_out_of_range_or_malformed_is_an_invalid_request(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    buyer = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert (await buyer.send(rfi))[0] == 202
    headers = await _poll_headers(buyer)
    for query in (
        "after=99999999999999999999",  # beyond SQLite's 64-bit integers: a 500 before
        "after=9007199254740992",  # 2^53: beyond the cursor's range
        "after=-1",
        "after=abc",
        "after=%D9%A3",  # an Arabic-Indic digit three, which int() would take
        "after=+1",
        "after=",
        "after=1&after=2",
    ):
        response = await vendor.get(f"/vrm/mailbox?{query}", headers=headers)
        problem = await _problem(response)
        assert (problem["status"], problem["code"]) == (400, "invalid-request"), query
    response = await vendor.get("/vrm/mailbox?after=9007199254740991", headers=headers)
    assert response.status == 200
    assert (await response.json())["messages"] == []
    assert [reply.type for reply in await buyer.poll()] == ["offer"]


async def test_a_mailbox_request_without_poll_credentials_is_401(vendor: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer abc"}, {"Authorization": "VRM-Poll"}):
        response = await vendor.get("/vrm/mailbox?after=0", headers=headers)
        problem = await _problem(response)
        assert (problem["status"], problem["code"]) == (401, "authentication-required"), headers
        assert response.headers["WWW-Authenticate"] == POLL_AUTH_SCHEME


# -- every non-2xx answer is problem details (spec §11.5) --------------------------------------


async def test_unknown_routes_and_methods_are_answered_with_problem_details(
    vendor: Client,
) -> None:
    response = await vendor.get("/vrm/no-such-route")
    problem = await _problem(response)
    assert (problem["status"], problem["code"]) == (404, "not-found")
    for method, path, allowed in (
        ("GET", "/vrm/inbox", {"POST"}),
        ("DELETE", "/.well-known/vrm", {"GET", "HEAD"}),
        ("PUT", "/vrm/mailbox", {"GET", "HEAD"}),
        ("GET", "/vrm/test-driver/clock", {"POST"}),
    ):
        response = await vendor.request(method, path)
        problem = await _problem(response)
        assert (problem["status"], problem["code"]) == (405, "method-not-allowed"), path
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed, path


async def test_bad_driver_and_operator_instructions_are_problem_details(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    vendor = await aiohttp_client(create_app(make_config(operator_token="s3cret")))
    driver = "/vrm/test-driver"
    for path, body, status, code in (
        ("/clock", b"not json", 400, "invalid-request"),
        ("/clock", b"[1]", 400, "invalid-request"),
        ("/clock", b'{"offsetSeconds": "soon"}', 400, "invalid-request"),
        # An offset beyond any calendar: an OverflowError (500) before.
        ("/clock", b'{"offsetSeconds": 1000000000000000000000}', 400, "invalid-request"),
        ("/clock", b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "nesting-too-deep"),
        ("/service-notice", b"{}", 400, "invalid-request"),
        ("/service-notice", b'{"peer": "did:jwk:nobody"}', 404, "not-found"),
        ("/service-notice", b'{"peer": "x", "proposals": 3}', 400, "invalid-request"),
    ):
        response = await vendor.post(
            driver + path, data=body, headers={"Content-Type": "application/json"}
        )
        problem = await _problem(response)
        assert (problem["status"], problem["code"]) == (status, code), (path, body[:40])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
        response = await vendor.post(
            "/vrm/operator/service-notice", json={"peer": "did:jwk:nobody"}, headers=headers
        )
        problem = await _problem(response)
        assert (problem["status"], problem["code"]) == (401, "authentication-required")
        assert response.headers["WWW-Authenticate"] == "Bearer"


# -- terms documents are served from the party's own origin (D12) --------------------------------


async def test_the_terms_document_is_served_on_the_vendors_origin_under_its_digest(
    vendor: Client, new_buyer: Callable[[], Buyer]
) -> None:
    discovery = await (await vendor.get("/.well-known/vrm")).json()
    [listed] = discovery["terms"]
    path = "/vrm/terms/mayfair-motors-terms-of-sharing/1.0"
    assert listed["url"] == VENDOR_ID + path
    response = await vendor.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    served = await response.read()
    digest = "sha-256:" + b64url_encode(hashlib.sha256(served).digest())
    assert listed["digest"] == digest
    assert served.decode("utf-8").startswith("Mayfair Motors terms of sharing, version 1.0.")
    # What the vendor sends names exactly this document.
    buyer = new_buyer()
    rfi = buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now()))
    assert (await buyer.send(rfi))[0] == 202
    offer = await buyer.expect("offer")
    assert offer.body["terms"] == listed
    for missing in ("/vrm/terms/mayfair-motors-terms-of-sharing/9.9", "/vrm/terms/other/1.0"):
        problem = await _problem(await vendor.get(missing))
        assert (problem["status"], problem["code"]) == (404, "not-found")


def test_no_shipped_catalogue_names_a_terms_url_of_its_own() -> None:
    # The url is derived from the agent's origin, never written in a catalogue
    # (a url elsewhere would be a document nobody can fetch from the party).
    for name in shipped_catalogues():
        text = (resources.files("reference_vendor") / "catalogues" / f"{name}.toml").read_text()
        assert "url" not in tomllib.loads(text)["terms"], name
        reference = load_catalogue(name).at_origin(VENDOR_ID).terms_reference()
        assert reference["url"].startswith(VENDOR_ID + "/vrm/terms/"), name


# -- replies are never lost: every message is kept in the mailbox until it expires (D5) ----------


async def test_a_reply_posted_to_reply_to_is_also_kept_in_the_mailbox(
    aiohttp_client: Any, aiohttp_server: Any, make_config: Callable[..., VendorConfig]
) -> None:
    posted: list[bytes] = []

    async def buyer_inbox(request: web.Request) -> web.Response:
        posted.append(await request.read())
        return web.Response(status=202)

    inbox_app = web.Application()
    inbox_app.router.add_post("/vrm/inbox", buyer_inbox)
    server = await aiohttp_server(inbox_app, host="127.0.0.1")
    vendor = await aiohttp_client(create_app(make_config(background_delivery=False)))
    buyer = Buyer(vendor)
    rfi = buyer.compose(
        "personal-rfi",
        bodies.personal_rfi_body(buyer.now()),
        reply_inbox=str(server.make_url("/vrm/inbox")),
    )
    assert (await buyer.send(rfi))[0] == 202
    assert (await vendor.post("/vrm/test-driver/deliver")).status == 200
    [kept] = await buyer.poll()
    assert posted == [kept.token], "the very bytes POSTed are in the mailbox too"


async def test_a_reply_whose_reply_to_is_dead_waits_in_the_mailbox_until_it_expires(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig], unused_tcp_port: int
) -> None:
    vendor = await aiohttp_client(create_app(make_config(background_delivery=False)))
    buyer = Buyer(vendor)
    rfi = buyer.compose(
        "personal-rfi",
        bodies.personal_rfi_body(buyer.now()),
        # A buyer agent that restarted on another port: nobody listens here.
        reply_inbox=f"http://127.0.0.1:{unused_tcp_port}/vrm/inbox",
    )
    assert (await buyer.send(rfi))[0] == 202
    assert (await vendor.post("/vrm/test-driver/deliver")).status == 200
    [offer] = await buyer.poll()
    assert offer.type == "offer"
    # Past the message's expiry (the vendor's messages live one day) it is gone.
    await vendor.post("/vrm/test-driver/clock", json={"offsetSeconds": 2 * 24 * 3600})
    buyer.cursor = 0
    assert await buyer.poll() == []


async def test_mailbox_polls_are_charged_to_the_address_before_verification(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    # A poll costs a signature verification: a flood of them is held by the
    # address budget, like a flood of messages (spec §11.6).
    vendor = await aiohttp_client(
        create_app(make_config(address_burst=2, address_rate_per_second=0.001))
    )
    statuses = [(await vendor.get("/vrm/mailbox?after=0")).status for _ in range(3)]
    assert statuses == [401, 401, 429]
