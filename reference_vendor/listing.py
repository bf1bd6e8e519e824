"""The vendor lists itself in a directory (spec §11.10).

A listing says which product categories (the catalogue's) and which areas the
vendor serves, signed with the vendor's own key: the one its JWKS publishes,
so the directory, which fetches that JWKS from the vendor's origin, can tell
that the vendor listed itself (VRM-DIR-001, VRM-DIR-002). The areas are the
operator's (``--area``), else the catalogue's countries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from reference_vendor.agent import VendorAgent
from vrm_agent.net import ATTEMPT_TIMEOUT_SECONDS, RECEIPT_MAX_BYTES, read_bounded
from vrm_protocol.directory import LISTING_MEDIA_TYPE, LISTINGS_PATH, make_listing

__all__ = ["ListingRefused", "list_at"]


class ListingRefused(Exception):
    """The directory did not take the listing (or could not be reached)."""


async def list_at(agent: VendorAgent, directory: str, areas: Sequence[str] = ()) -> dict[str, Any]:
    """Post the vendor's signed listing to ``directory``; the directory's answer.

    Raises:
        ListingRefused: the directory refused it, or did not answer in time.
        DeliveryRefused: the delivery policy forbids the directory's address.
    """
    catalogue = agent.catalogue
    token = make_listing(
        agent.strategies.listing.key(agent.key),
        party=agent.party_id,
        name=catalogue.name,
        categories=catalogue.categories,
        areas=list(areas) or list(catalogue.countries),
        now=agent.clock.now(),
    )
    url = directory.rstrip("/") + LISTINGS_PATH
    agent.config.delivery_policy.check_url(url)
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT_SECONDS):
            async with agent.session.post(
                url,
                data=token,
                headers={"Content-Type": LISTING_MEDIA_TYPE},
                allow_redirects=False,
            ) as response:
                body = await read_bounded(response, RECEIPT_MAX_BYTES, url)
                status = response.status
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        raise ListingRefused(f"{url}: {type(error).__name__}: {error}") from error
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = {"detail": body[:200].decode(errors="replace")}
    if status != 201 or not isinstance(answer, dict):
        raise ListingRefused(f"{url} answered {status}: {answer}"[:500])
    return answer
