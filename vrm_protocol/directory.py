"""The directory, sans-IO (spec §11.10): signed listings and anonymous searches.

An individual looking for vendors she does not know yet asks a directory, a
party of its own that is neither her agent nor a vendor. Vendors list the
product categories and areas they serve with a *listing*: a compact JWS
(``typ`` ``vrm-listing+jws``) signed with a key of the JWKS the vendor
publishes on its own origin, so that nobody can list someone else. Her agent
asks with a plain ``GET /vrm/directory/search?category=&area=``: no key, no
pseudonym, no cookie, nothing else; the directory learns a category and a
coarse area, and never sees the RFI that follows (her agent sends it to each
vendor's own inbox). The answer carries every listing unchanged, so that her
agent verifies each one itself against the keys the vendor publishes.

This module decides, the agents carry: paths, the listing's signing and
verification, the query and the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from vrm_protocol.canonical import b64url_decode, canonical_json, parse_json_object
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import DEFAULT_SKEW, check_freshness, format_timestamp, parse_timestamp
from vrm_protocol.http_binding import DISCOVERY_PATH
from vrm_protocol.keys import KeySet, SigningKey, VerifyingKey
from vrm_protocol.schema_registry import default_registry
from vrm_protocol.signing_profile import sign_compact, verify_compact

__all__ = [
    "DEFAULT_LISTING_LIFETIME",
    "LISTINGS_PATH",
    "LISTING_MAX_BYTES",
    "LISTING_MEDIA_TYPE",
    "LISTING_SCHEMA",
    "LISTING_TYP",
    "MAX_LISTING_LIFETIME",
    "MAX_SEARCH_RESULTS",
    "SEARCH_PARAMETERS",
    "SEARCH_PATH",
    "SEARCH_SCHEMA",
    "Listing",
    "area_matches",
    "claimed_listing",
    "make_listing",
    "parse_search",
    "search_answer",
    "search_url",
    "verify_listing",
]

#: Where a directory takes listings (POST) and answers searches (GET).
LISTINGS_PATH: Final = "/vrm/directory/listings"
SEARCH_PATH: Final = "/vrm/directory/search"
#: ``typ`` of a listing (spec §11.10).
LISTING_TYP: Final = "vrm-listing+jws"
#: A listing is POSTed as a compact JWS (RFC 7515 §9.2.1).
LISTING_MEDIA_TYPE: Final = "application/jose"
LISTING_SCHEMA: Final = "binding/listing.schema.json"
SEARCH_SCHEMA: Final = "binding/directory-search.schema.json"
#: The only query parameters of a search (VRM-DIR-004): anything else could identify her.
SEARCH_PARAMETERS: Final = ("category", "area")
#: The largest listing a directory reads.
LISTING_MAX_BYTES: Final = 16 * 1024
#: A listing lives at most this long: a vendor that stops renewing drops out.
MAX_LISTING_LIFETIME: Final = timedelta(days=30)
DEFAULT_LISTING_LIFETIME: Final = timedelta(days=7)
#: The most vendors one answer names.
MAX_SEARCH_RESULTS: Final = 100


@dataclass(frozen=True, slots=True)
class Listing:
    """A listing's payload, as signed (and, from :func:`verify_listing`, verified)."""

    party: str
    name: str
    categories: tuple[str, ...]
    areas: tuple[str, ...]
    issued: datetime
    expires: datetime
    #: The compact JWS exactly as posted.
    token: bytes

    def serves(self, category: str, area: str) -> bool:
        """Whether the listing names ``category`` and an area matching ``area``."""
        return category in self.categories and any(area_matches(a, area) for a in self.areas)

    @property
    def discovery(self) -> str:
        """The vendor's discovery document, on its own origin (spec §11.1)."""
        return self.party.rstrip("/") + DISCOVERY_PATH


def area_matches(listed: str, asked: str) -> bool:
    """Whether a listed area serves an asked one: the same area, or one of them is
    the other's whole country (``GB`` serves ``GB-NW``; ``GB-NW`` is in ``GB``)."""
    if listed == asked:
        return True
    return listed.split("-")[0] == asked.split("-")[0] and ("-" not in listed or "-" not in asked)


def make_listing(
    key: SigningKey,
    *,
    party: str,
    name: str,
    categories: Sequence[str],
    areas: Sequence[str],
    now: datetime,
    lifetime: timedelta = DEFAULT_LISTING_LIFETIME,
) -> bytes:
    """Sign a vendor's listing (spec §11.10, VRM-DIR-001) with its published ``key``.

    Raises:
        RemoteProtocolError: SCHEMA_INVALID, the listing would not be valid.
        LocalProtocolError: the key's algorithm is outside the signing profile.
    """
    payload = {
        "party": party,
        "name": name,
        "categories": list(categories),
        "areas": list(areas),
        "issued": format_timestamp(now),
        "expires": format_timestamp(now + lifetime),
    }
    default_registry().validate(payload, LISTING_SCHEMA)
    return sign_compact(canonical_json(payload), key, typ=LISTING_TYP)


def _listing(claims: Mapping[str, Any], token: bytes) -> Listing:
    default_registry().validate(claims, LISTING_SCHEMA)
    return Listing(
        party=str(claims["party"]),
        name=str(claims["name"]),
        categories=tuple(claims["categories"]),
        areas=tuple(claims["areas"]),
        issued=parse_timestamp(claims["issued"], path="/issued"),
        expires=parse_timestamp(claims["expires"], path="/expires"),
        token=token,
    )


def claimed_listing(token: bytes) -> Listing:
    """What a listing *claims*, before any verification: which party to fetch the
    keys of. Never use it for anything else.

    Raises:
        RemoteProtocolError: MALFORMED_JWS, MALFORMED_JSON or SCHEMA_INVALID.
    """
    parts = token.split(b".")
    if len(parts) != 3 or len(token) > LISTING_MAX_BYTES:
        raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, "a listing is one compact JWS")
    try:
        payload = b64url_decode(parts[1])
    except ValueError as error:
        raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, f"payload: {error}") from error
    return _listing(parse_json_object(payload, what="listing"), token)


def verify_listing(
    token: bytes,
    keys: KeySet,
    *,
    party: str,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> Listing:
    """Verify a listing of ``party`` against the key set ``party`` publishes on its
    own origin (spec §11.10, VRM-DIR-002, VRM-DIR-005).

    Only the current keys of that set verify: a ``did:jwk`` kid, another party's
    key, a retired key are ``unknown-key``.

    Raises:
        RemoteProtocolError: any failure of the signing profile (``unknown-key``,
            ``bad-signature``, ``invalid-typ``...), SCHEMA_INVALID,
            KEY_SENDER_MISMATCH when the listing names another party,
            MESSAGE_EXPIRED, MESSAGE_NOT_YET_VALID, LIFETIME_TOO_LONG.
    """

    def resolve(kid: str) -> VerifyingKey:
        return keys.get(kid)

    verified = verify_compact(token, resolve_key=resolve, typ=LISTING_TYP)
    claims = verified.document if verified.document is not None else {}
    listing = _listing(claims, token)
    if listing.party.rstrip("/") != party.rstrip("/"):
        raise RemoteProtocolError(
            ErrorCode.KEY_SENDER_MISMATCH,
            f"the listing names {listing.party!r}, not the party whose keys signed it"[:300],
            path="/party",
        )
    check_freshness(listing.issued, listing.expires, now, skew, max_lifetime=MAX_LISTING_LIFETIME)
    return listing


def search_url(directory: str, *, category: str, area: str) -> str:
    """The search a buyer agent makes (VRM-DIR-004): the two parameters, nothing else."""
    return (
        directory.rstrip("/") + SEARCH_PATH + "?" + urlencode({"category": category, "area": area})
    )


def parse_search(parameters: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """The ``(category, area)`` of a search's query parameters.

    Raises:
        RemoteProtocolError: INVALID_REQUEST, a parameter is missing, repeated,
            unknown or malformed.
    """
    found: dict[str, str] = {}
    for name, value in parameters:
        if name not in SEARCH_PARAMETERS or name in found:
            raise RemoteProtocolError(
                ErrorCode.INVALID_REQUEST,
                f"a search takes `category` and `area` once each, not {name[:40]!r}",
            )
        found[name] = value
    if set(found) != set(SEARCH_PARAMETERS):
        raise RemoteProtocolError(ErrorCode.INVALID_REQUEST, "a search needs `category` and `area`")
    answer = {"category": found["category"], "area": found["area"], "vendors": []}
    if not default_registry().is_valid(answer, SEARCH_SCHEMA):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, "`category` or `area` is not one the directory knows"
        )
    return found["category"], found["area"]


def search_answer(category: str, area: str, listings: Iterable[Listing]) -> dict[str, Any]:
    """The answer to a search: the listings serving ``category`` in ``area``, in
    the order given, each signed token unchanged, at most
    :data:`MAX_SEARCH_RESULTS`. Valid against ``binding/directory-search.schema.json``."""
    vendors = [
        {
            "party": listing.party,
            "name": listing.name,
            "discovery": listing.discovery,
            "listing": listing.token.decode("ascii"),
        }
        for listing in listings
        if listing.serves(category, area)
    ][:MAX_SEARCH_RESULTS]
    return {"category": category, "area": area, "vendors": vendors}
