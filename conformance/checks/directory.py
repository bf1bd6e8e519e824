"""A buyer agent's directory search (spec §11.10; ``--role buyer``, the suite
plays the directory and the vendors it lists).

The suite's directory answers one search with two listings: one of a suite
vendor, signed with that vendor's published key, and one naming a second
suite vendor but signed with the first one's key (somebody listing someone
else). The buyer is told to search and send her RFI to every vendor found.
Judged: the search itself (a GET with `category` and `area` and nothing that
identifies her), the RFI reaching the honestly listed vendor's own inbox, and
nothing reaching the vendor whose listing does not verify, nor the directory.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web

from conformance.checks.scenarios import prompt_buyer, prompt_wait
from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext
from conformance.peers.messages import sign
from conformance.peers.server import SuiteServer
from conformance.peers.vendors import SuiteVendor, vendor_side
from conformance.registry import REGISTRY
from conformance.target import call_driver
from vrm_protocol.directory import (
    LISTING_MEDIA_TYPE,
    LISTING_TYP,
    LISTINGS_PATH,
    SEARCH_PARAMETERS,
    SEARCH_PATH,
    verify_listing,
)
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import DISCOVERY_PATH
from vrm_protocol.keys import KeySet
from vrm_protocol.vocabulary import LifecycleStep, Role

#: What the suite's directory is asked for.
CATEGORY, AREA = "vehicles.cars", "GB-NW"
#: How long the suite watches for a message the buyer must NOT send.
ABSENCE_WATCH_SECONDS = 2.0
#: Headers that would let the directory know her again (VRM-DIR-004).
IDENTIFYING_HEADERS = ("cookie", "authorization", "proxy-authorization", "from", "referer")


@dataclass(slots=True)
class _SeenRequest:
    method: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _SuiteDirectory:
    server: SuiteServer
    answer: dict[str, Any] = field(default_factory=dict)
    searches: list[_SeenRequest] = field(default_factory=list)
    other: list[str] = field(default_factory=list)


def _listing(signer_of: SuiteVendor, party: SuiteVendor, now: Any) -> str:
    payload = {
        "party": party.id,
        "name": party.name,
        "categories": [CATEGORY],
        "areas": ["GB"],
        "issued": format_timestamp(now),
        "expires": format_timestamp(now + timedelta(days=1)),
    }
    return sign(payload, signer_of.signer, typ=LISTING_TYP).decode("ascii")


async def _directory(ctx: CheckContext) -> _SuiteDirectory:
    server = SuiteServer(
        ctx.session, "Conformance Directory", prefix=f"/directory/{secrets.token_hex(6)}"
    )
    directory = _SuiteDirectory(server)

    async def search(request: web.Request, body: bytes) -> web.Response:
        directory.searches.append(
            _SeenRequest(
                request.method,
                list(request.query.items()),
                {name.lower(): value for name, value in request.headers.items()},
                body,
            )
        )
        return web.json_response(directory.answer)

    async def anything_else(request: web.Request, body: bytes) -> web.Response:
        directory.other.append(f"{request.method} {request.path}")
        return web.Response(status=404)

    server.route("GET", SEARCH_PATH, search)
    server.route("POST", LISTINGS_PATH, anything_else)
    server.route("POST", "/vrm/inbox", anything_else)
    await server.start()
    return directory


@REGISTRY.check(
    "BUY-DIRECTORY-SEARCH",
    title="The buyer searches a directory anonymously and writes only to verified vendors",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-DIR-004", "VRM-DIR-005", "VRM-DIR-006"),
    roles=(Role.BUYER,),
)
async def directory_search(ctx: CheckContext) -> None:
    """The search carries a category and an area only; the RFI goes to the
    vendor whose listing verifies, at its own inbox, and nowhere else."""
    side = await vendor_side(ctx)
    honest = await side.add_vendor("Conformance Listed Motors")
    impersonated = await side.add_vendor("Conformance Impersonated Motors")
    directory = await _directory(ctx)
    now = ctx.session.clock.now()
    directory.answer = {
        "category": CATEGORY,
        "area": AREA,
        "vendors": [
            {
                "party": vendor.id,
                "name": vendor.name,
                "discovery": vendor.id + DISCOVERY_PATH,
                # The second listing names the second vendor, signed by the first.
                "listing": _listing(honest, vendor, now),
            }
            for vendor in (honest, impersonated)
        ],
    }
    answer = await prompt_buyer(
        ctx.session,
        "search",
        {"directory": directory.server.base_url, "category": CATEGORY, "area": AREA, "rfi": True},
        instruction=f"Make the buyer agent search the directory {directory.server.base_url} "
        f"for {CATEGORY} in {AREA}, and send a personal RFI to every vendor it finds.",
    )
    ctx.require(
        bool(directory.searches),
        "the buyer asks the directory",
        actual=answer,
        requirement="VRM-DIR-004",
    )
    for seen in directory.searches:
        names = sorted(name for name, _ in seen.query)
        ctx.expect(
            seen.method == "GET" and not seen.body,
            "the search is a GET without a body",
            actual=f"{seen.method}, {len(seen.body)} bytes",
            requirement="VRM-DIR-004",
        )
        ctx.expect(
            names == sorted(SEARCH_PARAMETERS)
            and dict(seen.query) == {"category": CATEGORY, "area": AREA},
            "the search carries `category` and `area` and no other parameter",
            expected={"category": CATEGORY, "area": AREA},
            actual=seen.query,
            requirement="VRM-DIR-004",
        )
        sent = sorted(name for name in seen.headers if name in IDENTIFYING_HEADERS)
        ctx.expect(
            not sent,
            "the search sends no cookie, credentials or other identifying header",
            actual=sent or None,
            requirement="VRM-DIR-004",
        )
        naming = [
            name
            for name, value in [*seen.headers.items(), *seen.query]
            if "did:jwk" in value or "/vrm/inbox" in value
        ]
        ctx.expect(
            not naming,
            "nothing in the search names one of her pseudonyms or reply inboxes",
            actual=naming or None,
            requirement="VRM-DIR-004",
        )
    await honest.expect(
        lambda item: item.type == "personal-rfi",
        description="the buyer sends its RFI to the listed vendor's own inbox",
        requirement="VRM-DIR-006",
        within=prompt_wait(ctx.session),
    )
    await asyncio.sleep(ABSENCE_WATCH_SECONDS)
    written = [item.describe() for item in impersonated.received()]
    ctx.expect(
        not written,
        "the buyer does not write to a vendor whose listing another key signed",
        expected="nothing",
        actual=written or None,
        requirement="VRM-DIR-005",
    )
    ctx.expect(
        not directory.other,
        "the buyer sends the directory nothing but its search",
        actual=directory.other or None,
        requirement="VRM-DIR-006",
    )


@REGISTRY.check(
    "VEN-DIRECTORY-LISTING",
    title="The vendor lists itself with a listing its own published key signed",
    step=LifecycleStep.SEARCH,
    requirements=("VRM-DIR-001",),
    roles=(Role.VENDOR,),
)
async def vendor_listing(ctx: CheckContext) -> None:
    """Told through its test driver to list itself at the suite's directory, the
    vendor POSTs one `application/jose` listing, `typ` `vrm-listing+jws`, valid
    against its schema, naming the vendor itself, living at most 30 days, and
    verified by a current key of the JWKS its discovery document names."""
    server = SuiteServer(
        ctx.session, "Conformance Directory", prefix=f"/directory/{secrets.token_hex(6)}"
    )
    posted: list[tuple[str, bytes]] = []

    async def take(request: web.Request, body: bytes) -> web.Response:
        posted.append((request.content_type, body))
        return web.json_response({"party": ctx.session.options.target, "expires": "-"}, status=201)

    server.route("POST", LISTINGS_PATH, take)
    await server.start()
    await call_driver(ctx.session, "POST", "/list", {"directory": server.base_url})
    ctx.require(
        len(posted) == 1,
        "the vendor posts one listing to the directory",
        actual=len(posted),
        requirement="VRM-DIR-001",
    )
    media_type, token = posted[0]
    ctx.expect(
        media_type == LISTING_MEDIA_TYPE,
        f"the listing is posted as {LISTING_MEDIA_TYPE}",
        actual=media_type,
        requirement="VRM-DIR-001",
    )
    endpoints = ctx.discovery.get("endpoints") or {}
    url = endpoints.get("jwks") if isinstance(endpoints, dict) else None
    ctx.require(isinstance(url, str), "the discovery document names endpoints.jwks")
    assert isinstance(url, str)
    try:
        reply = await request(ctx.session.http, ctx.session.transcript, "GET", url)
        keys = KeySet.from_jwks(reply.json())
    except (TargetUnreachable, ValueError, TypeError, ProtocolError) as error:
        ctx.fail(f"GET {url} answers the vendor's JWKS", actual=str(error))
    party = str(ctx.discovery.get("id", ctx.session.options.target))
    try:
        listing = verify_listing(token, keys, party=party, now=ctx.session.clock.now())
    except ProtocolError as error:
        ctx.fail(
            "the listing verifies under the vendor's published keys and names the vendor",
            actual=f"{error.code.value}: {error.detail}",
            requirement="VRM-DIR-001",
        )
    ctx.expect(
        bool(listing.categories) and bool(listing.areas),
        "the listing names the categories and areas served",
        actual={"categories": listing.categories, "areas": listing.areas},
        requirement="VRM-DIR-001",
    )
