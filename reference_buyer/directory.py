"""What the parties she contacts publish about themselves: discovery and key sets.

Her agent contacts only parties she chose (a vendor she sends an RFI), and
never fetches anything an inbound message names (spec §13). What such a party
publishes is untrusted input (D7, VRM-BUY-012), so :class:`Directory`:

* fetches the discovery document and the key set with the runtime's bounded
  fetches (:func:`vrm_agent.net.fetch_discovery`,
  :func:`vrm_agent.net.fetch_key_set`): 64 KiB, 5 s, no redirect, every
  endpoint on the party's own origin, at most 16 keys, refused whole;
* caches both per party, bounded in entries (least recently used goes first)
  and in age: a party is fetched again once its entry is older than the TTL,
  not once per message (issue 14: an intentcast to 50 vendors fetched each
  one's documents once, not per message);
* keeps what was fetched in her store, so that after a restart her agent
  verifies replies without fetching anything;
* resolves the keys of an inbound message: those of the claimed sender only
  (:meth:`Directory.keys_of`), or, to route a message from verified bytes,
  those of every party she contacted (:meth:`Directory.contacted_resolver`);
* re-reads a known party's key set when a message names a key it does not
  know (rotation), at most every ``refresh_interval`` seconds, and only for
  parties she is in a relationship with: a stranger cannot make her agent
  fetch anything.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

import aiohttp

from reference_buyer.store import BuyerStore, Counterparty
from vrm_agent.clock import Clock
from vrm_agent.locks import KeyedLocks
from vrm_agent.net import (
    FETCH_TIMEOUT_SECONDS,
    TERMS_MAX_BYTES,
    Discovered,
    FetchRefused,
    fetch_bounded,
    fetch_discovery,
    fetch_key_set,
    same_origin,
)
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.http_binding import DeliveryPolicy, DeliveryRefused
from vrm_protocol.keys import DID_JWK_PREFIX, KeyResolver, KeySet, VerifyingKey, resolve_did_jwk

__all__ = ["KEY_REFRESH_INTERVAL_SECONDS", "BoundedCache", "Directory", "Published"]

log = logging.getLogger(__name__)

#: How often, at most, her agent re-reads key sets after an unknown kid.
KEY_REFRESH_INTERVAL_SECONDS: Final = 30.0
#: How long what a party published is trusted before it is fetched again (D7).
PUBLISHED_TTL_SECONDS: Final = 3600.0
#: How many parties' publications are held in memory at most (D7).
MAX_CACHED_PARTIES: Final = 256

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """Values per party, bounded in entries (least recently used goes first) and
    in age (D7). Times are the agent's monotonic clock."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()

    def get(self, party: str, *, now: float) -> V | None:
        """The value for ``party``, unless absent or older than the TTL."""
        entry = self._entries.get(party)
        if entry is None:
            return None
        value, stored = entry
        if now - stored > self.ttl_seconds:
            del self._entries[party]
            return None
        self._entries.move_to_end(party)
        return value

    def put(self, party: str, value: V, *, now: float) -> None:
        """Hold ``value`` for ``party``, evicting the least recently used beyond the bound."""
        self._entries[party] = (value, now)
        self._entries.move_to_end(party)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, party: str) -> None:
        """Forget ``party``."""
        self._entries.pop(party, None)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Published:
    """What one party published: its endpoints and its keys."""

    discovered: Discovered
    keys: KeySet


def _unavailable(party: str, error: Exception) -> LocalProtocolError:
    return LocalProtocolError(
        ErrorCode.TEMPORARILY_UNAVAILABLE, f"{party} cannot be reached as published: {error}"
    )


class Directory:
    """Discovery and key sets of the parties she contacts (see the module docstring).

    Args:
        store: her store (what was fetched is kept there).
        session: the HTTP client (every connection passes ``policy``).
        policy: where her agent may connect (D6).
        clock: the agent's clock.
        fetch_timeout: the time bound of each fetch (D7: 5 s).
        ttl_seconds, max_entries: the cache's bounds (D7).
        refresh_interval: the least time between two re-reads after an unknown kid.
    """

    def __init__(
        self,
        store: BuyerStore,
        session: aiohttp.ClientSession,
        policy: DeliveryPolicy,
        clock: Clock,
        *,
        fetch_timeout: float = FETCH_TIMEOUT_SECONDS,
        ttl_seconds: float = PUBLISHED_TTL_SECONDS,
        max_entries: int = MAX_CACHED_PARTIES,
        refresh_interval: float = KEY_REFRESH_INTERVAL_SECONDS,
    ) -> None:
        self.store = store
        self.session = session
        self.policy = policy
        self.clock = clock
        self.fetch_timeout = fetch_timeout
        self.refresh_interval = refresh_interval
        #: Fetched from the party within the TTL: usable for sending.
        self._fresh: BoundedCache[Published] = BoundedCache(max_entries, ttl_seconds)
        #: Key sets known (fetched, or read back from the store): usable for receiving.
        self._keys: BoundedCache[KeySet] = BoundedCache(max_entries, ttl_seconds)
        #: Every kid of every party she contacted, to route a message by its key.
        self._kid_index: dict[str, str] = {}
        self._fetching = KeyedLocks()
        self._last_refresh = float("-inf")

    async def load(self) -> None:
        """Index the keys of every party she contacted (at start-up, from the store).

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        for known in await self.store.counterparties():
            try:
                keys = KeySet.from_jwks(known.jwks)
            except (ProtocolError, TypeError, ValueError):
                continue  # refused when it was fetched already; nothing to index
            self._index(known.party, keys)

    def _index(self, party: str, keys: KeySet) -> None:
        for kid, owner in list(self._kid_index.items()):
            if owner == party:
                del self._kid_index[kid]
        for kid in keys.kids:
            self._kid_index[kid] = party

    # -- sending: what the party publishes, fresh --

    async def discover(self, party: str) -> Published:
        """What ``party`` publishes, fetched within D7's bounds unless fetched
        within the TTL, and kept in her store.

        Raises:
            LocalProtocolError: TEMPORARILY_UNAVAILABLE, the party does not
                answer within the bounds, its document names another party or
                an endpoint on another origin, or its key set is refused.
            StoreUnavailable: the store cannot be written.
        """
        party = party.rstrip("/")
        fresh = self._fresh.get(party, now=self.clock.monotonic())
        if fresh is not None:
            return fresh
        async with self._fetching.hold(party):
            fresh = self._fresh.get(party, now=self.clock.monotonic())
            if fresh is not None:
                return fresh
            try:
                discovered = await fetch_discovery(
                    self.session, self.policy, party, time_bound=self.fetch_timeout
                )
                jwks, keys = await fetch_key_set(
                    self.session, self.policy, discovered.jwks, time_bound=self.fetch_timeout
                )
            except (DeliveryRefused, FetchRefused) as error:
                raise _unavailable(party, error) from error
            published = Published(discovered, keys)
            await self.store.save_counterparty(
                Counterparty(party, discovered.document, jwks, format_timestamp(self.clock.now()))
            )
            self._remember(party, published)
            return published

    def _remember(self, party: str, published: Published) -> None:
        now = self.clock.monotonic()
        self._fresh.put(party, published, now=now)
        self._keys.put(party, published.keys, now=now)
        self._index(party, published.keys)

    async def inbox_of(self, party: str) -> str:
        """The inbox ``party`` publishes on its own origin (fetched if need be).

        Raises:
            LocalProtocolError: TEMPORARILY_UNAVAILABLE (see :meth:`discover`).
        """
        return (await self.discover(party)).discovered.inbox

    async def mailbox_of(self, party: str) -> str | None:
        """The mailbox ``party`` published on its own origin, as last fetched
        (``None`` when none is known; nothing is fetched for this)."""
        fresh = self._fresh.get(party, now=self.clock.monotonic())
        if fresh is not None:
            return fresh.discovered.mailbox
        known = await self.store.counterparty(party)
        endpoints = known.discovery.get("endpoints") if known is not None else None
        url = endpoints.get("mailbox") if isinstance(endpoints, dict) else None
        # Kept by an earlier fetch, judged then; judged again all the same (D7).
        return url if isinstance(url, str) and same_origin(url, party) else None

    async def terms_document(self, party: str, url: str) -> bytes:
        """The exact bytes of a terms document ``party`` asserts, fetched from its own
        origin within bounds (D12: only the asserting party speaks for its terms).

        Raises:
            LocalProtocolError: TEMPORARILY_UNAVAILABLE, the URL is not on the
                party's origin, or the document cannot be fetched within bounds.
        """
        if not same_origin(url, party):
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                f"the terms document {url!r} is not published on the origin of {party}"[:300],
            )
        try:
            return await fetch_bounded(
                self.session,
                self.policy,
                url,
                max_bytes=TERMS_MAX_BYTES,
                time_bound=self.fetch_timeout,
            )
        except (DeliveryRefused, FetchRefused) as error:
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                f"the terms document could not be fetched: {error}"[:300],
            ) from error

    # -- receiving: whose key signed --

    async def keys_of(self, party: str) -> KeySet:
        """The keys ``party`` published (from the cache, else as kept in her store;
        none when she never contacted it). Nothing is fetched.

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        keys = self._keys.get(party, now=self.clock.monotonic())
        if keys is not None:
            return keys
        known = await self.store.counterparty(party) if party else None
        keys = KeySet()
        if known is not None:
            try:
                keys = KeySet.from_jwks(known.jwks)
            except (ProtocolError, TypeError, ValueError):
                keys = KeySet()
        self._keys.put(party, keys, now=self.clock.monotonic())
        self._index(party, keys)
        return keys

    def contacted_resolver(self, missing: list[str]) -> KeyResolver:
        """A key resolver over the keys of every party she contacted (``did:jwk``
        kids resolve from themselves). A kid it cannot resolve from memory is
        appended to ``missing``: :meth:`find` then loads or re-reads its keys."""

        def resolve(kid: str) -> VerifyingKey:
            if kid.startswith(DID_JWK_PREFIX):
                return resolve_did_jwk(kid)
            party = self._kid_index.get(kid)
            keys = self._keys.get(party, now=self.clock.monotonic()) if party else None
            if keys is not None and kid in keys:
                return keys.get(kid)
            missing.append(kid)
            raise RemoteProtocolError(
                ErrorCode.UNKNOWN_KEY, f"no party she contacted has kid {kid!r}"[:300]
            )

        return resolve

    async def find(
        self, kids: Iterable[str], *, in_relationship: Callable[[], Awaitable[Iterable[str]]]
    ) -> bool:
        """Make the keys named by ``kids`` resolvable: load those of parties she
        contacted from her store, and, for a kid no party is known to have,
        re-read the key sets of the parties she is in a relationship with
        (rotation), at most every ``refresh_interval`` seconds. Whether
        anything new may now resolve.

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        loaded = False
        unknown = False
        for kid in kids:
            party = self._kid_index.get(kid)
            if party is None:
                unknown = True
                continue
            await self.keys_of(party)
            loaded = True
        if unknown and self._may_refresh():
            loaded = await self.refresh(await in_relationship()) or loaded
        return loaded

    def _may_refresh(self) -> bool:
        return self.clock.monotonic() - self._last_refresh >= self.refresh_interval

    async def refresh(self, parties: Iterable[str]) -> bool:
        """Re-read the key sets of ``parties`` (a rotation), unless one was re-read
        less than ``refresh_interval`` seconds ago. Whether it was done; a party
        that cannot be reached keeps the keys it had.

        Raises:
            StoreUnavailable: the store cannot be read or written.
        """
        if not self._may_refresh():
            return False
        self._last_refresh = self.clock.monotonic()
        for party in parties:
            self._fresh.drop(party)
            try:
                await self.discover(party)
            except LocalProtocolError as error:
                log.info("keys of %s not refreshed: %s", party[:80], error.detail)
        return True
