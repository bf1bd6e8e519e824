"""The directory as an aiohttp application (spec §11.10).

* ``POST /vrm/directory/listings``: one listing, a compact JWS
  (``application/jose``, ``typ`` ``vrm-listing+jws``). The directory reads the
  party the listing claims, fetches that party's discovery document and key
  set from the party's own origin within the bounds every agent applies (D7:
  64 KiB, 5 s, no redirect, endpoints on the party's origin, at most 16 keys),
  and keeps the listing only if one of those keys verifies it (VRM-DIR-002):
  nobody lists someone else. ``201`` with the party and when the listing
  expires; problem details otherwise.
* ``GET /vrm/directory/search?category=&area=``: the listings serving that
  category in that area, each token unchanged (VRM-DIR-003). No
  authentication, no cookie; nothing about the request is kept (the rate
  limiter's buckets live in memory and are keyed by address only while they
  fill).

Listings live in memory: a vendor lists itself again when the directory
restarts, or when its listing nears expiry.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from aiohttp import web

from vrm_agent.clock import AgentClock, Clock
from vrm_agent.http import problem_details
from vrm_agent.net import (
    FETCH_TIMEOUT_SECONDS,
    FetchRefused,
    client_session,
    fetch_discovery,
    fetch_key_set,
)
from vrm_agent.server import Serving
from vrm_agent.server import serve as serve_app
from vrm_protocol.directory import (
    LISTING_MAX_BYTES,
    LISTING_MEDIA_TYPE,
    LISTINGS_PATH,
    SEARCH_PATH,
    Listing,
    claimed_listing,
    parse_search,
    search_answer,
    verify_listing,
)
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import DeliveryPolicy, DeliveryRefused, RateLimiter

__all__ = ["DirectoryConfig", "Listings", "create_app", "serve"]

#: The most listings the directory holds (one per party).
MAX_LISTINGS = 10_000


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    """What the directory needs.

    Attributes:
        policy: where it may fetch a listed party's documents from (spec §11.8).
        fetch_timeout: the time bound of each fetch (D7).
        rate_per_second, burst: the token bucket per client address (listings
            make the directory fetch: each costs a token; searches too).
        header_timeout, max_connections: the connection bounds (spec §11.6).
    """

    policy: DeliveryPolicy
    fetch_timeout: float = FETCH_TIMEOUT_SECONDS
    rate_per_second: float = 5.0
    burst: int = 20
    header_timeout: float = 10.0
    max_connections: int = 256


@dataclass
class Listings:
    """The listings held, one per party (the latest issued wins), in memory."""

    by_party: dict[str, Listing] = field(default_factory=dict)

    def put(self, listing: Listing) -> None:
        """Keep ``listing`` unless the party's current one was issued later.

        Raises:
            RemoteProtocolError: TEMPORARILY_UNAVAILABLE, the directory is full.
        """
        party = listing.party.rstrip("/")
        held = self.by_party.get(party)
        if held is not None and held.issued > listing.issued:
            return
        if held is None and len(self.by_party) >= MAX_LISTINGS:
            raise RemoteProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, "the directory is full")
        self.by_party[party] = listing

    def current(self, now: datetime) -> list[Listing]:
        """The listings not expired at ``now`` (expired ones are dropped), by party."""
        for party in [p for p, listing in self.by_party.items() if listing.expires <= now]:
            del self.by_party[party]
        return [self.by_party[party] for party in sorted(self.by_party)]


CONFIG: web.AppKey[DirectoryConfig] = web.AppKey("config")
LISTINGS: web.AppKey[Listings] = web.AppKey("listings")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter")
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session")


def _throttle(request: web.Request) -> None:
    # Keyed by address only to bound what one client costs; never logged or kept.
    request.app[LIMITER].check(request.remote or "", request.app[CLOCK].monotonic())


async def post_listing(request: web.Request) -> web.Response:
    """Take one listing, verified against its party's published keys (VRM-DIR-002)."""
    _throttle(request)
    if request.content_type != LISTING_MEDIA_TYPE:
        raise RemoteProtocolError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"a listing is posted as {LISTING_MEDIA_TYPE}"
        )
    token = await read_bounded_request(request)
    claimed = claimed_listing(token)
    config = request.app[CONFIG]
    try:
        # Only the claimed party's own origin speaks for its keys (D7, §11.1).
        discovered = await fetch_discovery(
            request.app[SESSION], config.policy, claimed.party, time_bound=config.fetch_timeout
        )
        _, keys = await fetch_key_set(
            request.app[SESSION], config.policy, discovered.jwks, time_bound=config.fetch_timeout
        )
    except (DeliveryRefused, FetchRefused) as error:
        raise RemoteProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE,
            f"the keys of {claimed.party} cannot be fetched from its origin: {error}"[:300],
        ) from error
    now = request.app[CLOCK].now()
    listing = verify_listing(token, keys, party=discovered.party, now=now)
    request.app[LISTINGS].put(listing)
    return web.json_response(
        {"party": listing.party, "expires": format_timestamp(listing.expires)}, status=201
    )


async def read_bounded_request(request: web.Request) -> bytes:
    """The request body, refused beyond :data:`LISTING_MAX_BYTES`.

    Raises:
        RemoteProtocolError: PAYLOAD_TOO_LARGE.
    """
    declared = request.content_length
    if declared is not None and declared > LISTING_MAX_BYTES:
        raise RemoteProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, "a listing is at most 16 KiB")
    data = bytearray()
    async for chunk in request.content.iter_chunked(4096):
        data += chunk
        if len(data) > LISTING_MAX_BYTES:
            raise RemoteProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, "a listing is at most 16 KiB")
    return bytes(data).strip()


async def search(request: web.Request) -> web.Response:
    """The vendors listed for a category and an area (VRM-DIR-003): nothing asked of
    the requester, nothing kept about the request."""
    _throttle(request)
    category, area = parse_search(request.query.items())
    answer = search_answer(category, area, request.app[LISTINGS].current(request.app[CLOCK].now()))
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


async def _session(app: web.Application) -> AsyncIterator[None]:
    app[SESSION] = client_session(app[CONFIG].policy)
    try:
        yield
    finally:
        await app[SESSION].close()


def create_app(config: DirectoryConfig, *, clock: Clock | None = None) -> web.Application:
    """The directory's application (listings in memory)."""
    app = web.Application(client_max_size=LISTING_MAX_BYTES + 1024, middlewares=[problem_details])
    app[CONFIG] = config
    app[LISTINGS] = Listings()
    app[CLOCK] = clock or AgentClock()
    app[LIMITER] = RateLimiter(config.rate_per_second, config.burst)
    app.cleanup_ctx.append(_session)
    app.router.add_post(LISTINGS_PATH, post_listing)
    app.router.add_get(SEARCH_PATH, search, allow_head=False)
    return app


async def serve(config: DirectoryConfig, sock: socket.socket) -> Serving:
    """Serve the directory on ``sock`` (bound, listening, non-blocking).

    Raises:
        Exception: whatever starting the application raised.
    """
    return await serve_app(
        create_app(config),
        sock,
        header_timeout=config.header_timeout,
        max_connections=config.max_connections,
    )
