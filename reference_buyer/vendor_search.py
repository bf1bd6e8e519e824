"""Finding vendors she does not know yet, in a directory (spec §11.10; seeds 000
step 2, 003 step 1).

Her agent asks a directory with a plain GET carrying a product category and a
coarse area and nothing else (VRM-DIR-004): a client of its own for each
search, with no cookie jar, no ``Authorization``, no ``User-Agent``, never
one of her pseudonyms or her reply inbox. The directory learns what is looked
for and roughly where; not who looks, and never the RFI that follows: her
agent sends that to each vendor's own inbox, under a pseudonym per vendor.

The answer is untrusted input: read within bounds (D7), and each listing
verified against the keys the listed vendor publishes on its own origin
(fetched by her :class:`~reference_buyer.directory.Directory`, within the
same bounds) before the vendor is named to her (VRM-DIR-005). A listing that
does not verify, names another party, serves another category or area, or
points its discovery anywhere but the vendor's own origin is set aside, with
why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import aiohttp

from reference_buyer.agent import BuyerAgent
from vrm_agent.net import FetchRefused, PolicyResolver, fetch_json_object, same_origin
from vrm_protocol.directory import SEARCH_SCHEMA, Listing, search_url
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import DISCOVERY_PATH, DeliveryPolicy, DeliveryRefused
from vrm_protocol.schema_registry import default_registry

__all__ = ["SEARCH_MAX_BYTES", "DirectorySearch", "FoundVendor", "search_directory"]

#: A directory's answer: at most 100 listings of at most 16 KiB, with room for the JSON.
SEARCH_MAX_BYTES: Final = 2 * 1024 * 1024
#: The most vendors one search names to her.
MAX_FOUND: Final = 20


@dataclass(frozen=True, slots=True)
class FoundVendor:
    """A vendor whose listing verified against the keys it publishes."""

    party: str
    name: str
    listing: Listing


@dataclass(frozen=True, slots=True)
class DirectorySearch:
    """One search: what was asked, who was found, what was set aside and why."""

    directory: str
    category: str
    area: str
    found: tuple[FoundVendor, ...]
    set_aside: tuple[tuple[str, str], ...]

    @property
    def vendors(self) -> list[str]:
        """The party ids found, in the directory's order."""
        return [vendor.party for vendor in self.found]


@asynccontextmanager
async def _anonymous_client(policy: DeliveryPolicy) -> AsyncIterator[aiohttp.ClientSession]:
    # A client of its own per search: no cookie it could be given back, no
    # connection shared with her relationships, no User-Agent (VRM-DIR-004).
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=PolicyResolver(policy), limit=4),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        headers={"Accept-Encoding": "identity"},
        skip_auto_headers=("User-Agent",),
        trust_env=False,
    )
    try:
        yield session
    finally:
        await session.close()


async def search_directory(
    agent: BuyerAgent, directory: str, *, category: str, area: str
) -> DirectorySearch:
    """Ask ``directory`` for the vendors serving ``category`` in ``area``, and keep
    those whose listing verifies (see the module docstring).

    Raises:
        LocalProtocolError: TEMPORARILY_UNAVAILABLE, the directory cannot be
            reached within the bounds, or answers something that is not a search
            answer; INVALID_REQUEST, ``category`` or ``area`` is malformed.
        StoreUnavailable: her store cannot be written.
    """
    if not default_registry().is_valid(
        {"category": category, "area": area, "vendors": []}, SEARCH_SCHEMA
    ):
        raise LocalProtocolError(ErrorCode.INVALID_REQUEST, "not a category and a coarse area")
    url = search_url(directory, category=category, area=area)
    policy = agent.config.delivery_policy
    try:
        async with _anonymous_client(policy) as session:
            answer = await fetch_json_object(
                session,
                policy,
                url,
                max_bytes=SEARCH_MAX_BYTES,
                time_bound=agent.config.fetch_timeout,
            )
    except (DeliveryRefused, FetchRefused) as error:
        raise LocalProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE, f"the directory cannot be asked: {error}"[:300]
        ) from error
    if not default_registry().is_valid(answer, SEARCH_SCHEMA):
        raise LocalProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE, "the directory answered no search answer"
        )
    found: list[FoundVendor] = []
    set_aside: list[tuple[str, str]] = []
    entries = answer["vendors"]
    assert isinstance(entries, list)
    for entry in entries:
        party = str(entry["party"]).rstrip("/")
        if len(found) >= MAX_FOUND:
            set_aside.append((party, f"more than {MAX_FOUND} vendors found"))
            continue
        if entry["discovery"] != party + DISCOVERY_PATH or not same_origin(
            entry["discovery"], party
        ):
            set_aside.append((party, "its discovery is not on its own origin"))
            continue
        if any(vendor.party == party for vendor in found):
            continue
        try:
            published = await agent.directory.discover(party)
            # Her guard (a strategy: the suite's self-tests start her agent without it).
            listing = agent.strategies.listings.judge(
                str(entry["listing"]).encode("ascii"),
                published.keys,
                party=party,
                now=agent.clock.now(),
            )
        except ProtocolError as error:
            set_aside.append((party, f"{error.code.value}: {error.detail}"[:200]))
            continue
        if not listing.serves(category, area):
            set_aside.append((party, "its listing does not serve that category and area"))
            continue
        found.append(FoundVendor(party, listing.name, listing))
    await agent.store.add_note(
        f"Directory {directory}: {len(found)} vendor(s) for {category} in {area}"
        + (f" ({', '.join(v.name for v in found)})" if found else ""),
        source="directory",
        at=format_timestamp(agent.clock.now()),
    )
    return DirectorySearch(directory, category, area, tuple(found), tuple(set_aside))
