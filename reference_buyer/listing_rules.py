"""How her agent judges a directory's listings (spec §11.9, VRM-DIR-005): one of
her guards, a strategy of :class:`~reference_buyer.faults.BuyerStrategies` so
that the suite's self-tests can start her agent without it."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from vrm_protocol.directory import Listing, claimed_listing, verify_listing
from vrm_protocol.keys import KeySet

__all__ = ["VERIFIED_LISTINGS", "ListingRule", "UnverifiedListings", "VerifiedListings"]


class ListingRule(Protocol):
    """Whether a listing speaks for the party it names."""

    def judge(self, token: bytes, keys: KeySet, *, party: str, now: datetime) -> Listing:
        """The listing, if it may be trusted.

        Raises:
            RemoteProtocolError: it may not.
        """
        ...


class VerifiedListings:
    """Production: verified against the keys ``party`` publishes on its own origin."""

    def judge(self, token: bytes, keys: KeySet, *, party: str, now: datetime) -> Listing:
        return verify_listing(token, keys, party=party, now=now)


class UnverifiedListings:
    """Fault only: the listing is taken at its word, whoever signed it."""

    def judge(self, token: bytes, keys: KeySet, *, party: str, now: datetime) -> Listing:
        return claimed_listing(token)


VERIFIED_LISTINGS: Final = VerifiedListings()
