"""The buyer agent's network edge: what it may connect to, and how much it reads.

Everything a vendor publishes is untrusted input (spec D7), and every address
the agent POSTs to is one a peer published (spec D6).  This module holds the
rules the agent applies to both:

* :class:`DeliveryPolicy`: ``https`` only, or ``http`` for hosts on the
  operator's allow-list; a host must resolve to public unicast addresses only
  (no loopback, private, link-local, unique-local, CGNAT, multicast,
  unspecified or reserved address) unless the host is on the allow-list.  The
  check runs inside the HTTP client's resolver (:class:`PolicyResolver`), so
  the address that was checked is the address that is connected to: there is
  no second resolution a hostile DNS server could answer differently.
* :func:`fetch_bounded`: a GET that never follows a redirect, gives up after a
  time bound and stops reading at a size bound, without reading the rest.
* :class:`KeyCache`: published key sets, per party, bounded in entries and age.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from vrm_protocol.keys import KeySet

__all__ = [
    "DISCOVERY_MAX_BYTES",
    "FETCH_TIMEOUT_SECONDS",
    "JWKS_MAX_BYTES",
    "JWKS_MAX_KEYS",
    "LOOPBACK",
    "MAILBOX_PAGE_MAX_BYTES",
    "TERMS_MAX_BYTES",
    "DeliveryPolicy",
    "DeliveryRefused",
    "FetchRefused",
    "KeyCache",
    "PolicyResolver",
    "client_session",
    "fetch_bounded",
    "origin",
    "same_origin",
]

#: Spec D7: a discovery document and a JWKS are at most 64 KiB, a JWKS at most 16 keys.
DISCOVERY_MAX_BYTES: Final = 64 * 1024
JWKS_MAX_BYTES: Final = 64 * 1024
JWKS_MAX_KEYS: Final = 16
#: A terms document (spec D12): a legal text, far longer than a key set may be.
TERMS_MAX_BYTES: Final = 256 * 1024
#: A mailbox page: at most 50 messages of at most 64 KiB each, with room for the JSON.
MAILBOX_PAGE_MAX_BYTES: Final = 4 * 1024 * 1024
#: A receipt answering one POST.
RECEIPT_MAX_BYTES: Final = 64 * 1024
#: Spec D7: every fetch is given up after 5 seconds.
FETCH_TIMEOUT_SECONDS: Final = 5.0
#: The allow-list of test mode and ``vrm demo``: the agents run on loopback.
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class DeliveryRefused(Exception):
    """The delivery policy (spec D6) forbids this URL or address."""


class FetchRefused(Exception):
    """A fetch broke a bound of spec D7 (size, time, redirect, status, encoding)."""


def origin(url: str) -> tuple[str, str, int] | None:
    """The (scheme, host, port) origin of ``url``, or ``None`` when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


def same_origin(url: str, party_id: str) -> bool:
    """Whether ``url`` is on the origin (scheme, host, port) of ``party_id`` (spec D7)."""
    here = origin(url)
    return here is not None and here == origin(party_id)


def _public_unicast(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, not a public address
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_private
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_reserved
        and not ip.is_unspecified
    )


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Where the agent may connect (spec D6).

    ``allow`` is the operator's allow-list: host names or addresses, alone
    (any port) or as ``host:port`` (``[v6]:port`` for IPv6).  A listed host may
    be reached over plain ``http`` and at any address it resolves to.
    """

    allow: frozenset[str] = frozenset()
    #: Attempts per message before delivery is given up (a 3xx answer is a failed attempt).
    max_attempts: int = 3
    #: Consecutive failed attempts a relationship that holds no deal may cost,
    #: after which the agent stops trying until one succeeds.
    relationship_budget: int = 12

    @classmethod
    def loopback(cls) -> DeliveryPolicy:
        """The policy of test mode and ``vrm demo``: loopback hosts allowed."""
        return cls(allow=LOOPBACK)

    def allows_host(self, host: str, port: int) -> bool:
        """Whether the operator allow-listed ``host`` (on ``port``)."""
        host = host.lower().strip("[]")
        shown = f"[{host}]" if ":" in host else host
        return host in self.allow or f"{shown}:{port}" in self.allow

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be contacted, or ``None`` when it may (scheme,
        and the address itself for a URL naming an IP address)."""
        where = origin(url)
        if where is None:
            return f"{url!r} is not an http(s) URL"
        scheme, host, port = where
        listed = self.allows_host(host, port)
        if scheme != "https" and not listed:
            return f"{url} is plain http and {host} is not on the operator's allow-list"
        if not listed and _is_address(host) and not _public_unicast(host):
            return f"{host} is not a public unicast address"
        return None

    def address_allowed(self, host: str, port: int, address: str) -> bool:
        """Whether ``host`` may be reached at ``address`` (public unicast, or allow-listed)."""
        return self.allows_host(host, port) or _public_unicast(address)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


class PolicyResolver(AbstractResolver):
    """Resolves once and hands the HTTP client only addresses the policy allows.

    The client connects to the addresses returned here, so what was checked is
    what is connected to (spec D6: no second resolution).  A host with any
    address the policy refuses is refused whole: a name that also resolves to
    a private address is not one to trust with the rest.
    """

    def __init__(self, policy: DeliveryPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host``, all of them allowed by the policy.

        Raises:
            OSError: the host does not resolve, or resolves to a refused address.
        """
        found = await self._resolver.resolve(host, port, family)
        refused = [
            r["host"] for r in found if not self._policy.address_allowed(host, port, r["host"])
        ]
        if refused or not found:
            raise OSError(
                f"{host} resolves to {refused or 'nothing'}: refused by the delivery policy"
            )
        return found

    async def close(self) -> None:
        """Release the underlying resolver."""
        await self._resolver.close()


def client_session(policy: DeliveryPolicy) -> aiohttp.ClientSession:
    """An HTTP client whose every connection passes ``policy``'s address check.

    Bodies are not decompressed: a few kilobytes of gzip must not become
    gigabytes behind a size bound (spec D7).  Call from a running event loop.
    """
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy), limit=64)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=30, connect=FETCH_TIMEOUT_SECONDS),
        headers={"Accept-Encoding": "identity"},
    )


async def read_bounded(response: aiohttp.ClientResponse, max_bytes: int, url: str) -> bytes:
    """Read ``response``'s body, refusing it at ``max_bytes`` without reading further.

    Raises:
        FetchRefused: the body is (or declares itself) larger, or is encoded.
    """
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        response.close()
        raise FetchRefused(f"{url} answered with Content-Encoding {encoding!r}")
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        response.close()
        raise FetchRefused(f"{url} declares {declared} bytes; at most {max_bytes} are read")
    data = bytearray()
    async for chunk in response.content.iter_chunked(16384):
        data += chunk
        if len(data) > max_bytes:
            response.close()  # hang up: the rest is never read
            raise FetchRefused(f"{url} sent more than {max_bytes} bytes")
    return bytes(data)


async def fetch_bounded(
    session: aiohttp.ClientSession,
    policy: DeliveryPolicy,
    url: str,
    *,
    max_bytes: int,
    time_bound: float = FETCH_TIMEOUT_SECONDS,
    headers: dict[str, str] | None = None,
) -> bytes:
    """GET ``url`` under the bounds of spec D7: at most ``max_bytes``, within
    ``time_bound`` seconds, no redirect followed, a 200 answer only.

    Raises:
        DeliveryRefused: the policy forbids the URL or its addresses.
        FetchRefused: a bound was broken, or the answer was not 200.
    """
    refusal = policy.refusal(url)
    if refusal is not None:
        raise DeliveryRefused(refusal)
    try:
        async with asyncio.timeout(time_bound):
            async with session.get(url, allow_redirects=False, headers=headers) as response:
                if response.status != 200:
                    response.close()
                    raise FetchRefused(f"{url} answered {response.status}")
                return await read_bounded(response, max_bytes, url)
    except TimeoutError as error:
        raise FetchRefused(f"{url} did not answer within {time_bound:g} s") from error
    except aiohttp.ClientError as error:
        raise FetchRefused(f"{url}: {error}") from error
    except OSError as error:  # the resolver's refusal, a refused connection
        raise DeliveryRefused(f"{url}: {error}") from error


@dataclass
class KeyCache:
    """Published key sets per party, bounded in entries (least recently used
    goes first) and in age (spec D7)."""

    max_entries: int = 256
    ttl_seconds: float = 3600.0
    _entries: OrderedDict[str, tuple[KeySet, float]] = field(default_factory=OrderedDict)

    def get(self, party: str, *, now: float) -> KeySet | None:
        """The cached keys of ``party``, unless absent or older than the TTL."""
        entry = self._entries.get(party)
        if entry is None:
            return None
        keys, stored = entry
        if now - stored > self.ttl_seconds:
            del self._entries[party]
            return None
        self._entries.move_to_end(party)
        return keys

    def put(self, party: str, keys: KeySet, *, now: float) -> None:
        """Cache ``party``'s keys, evicting the least recently used beyond the bound."""
        self._entries[party] = (keys, now)
        self._entries.move_to_end(party)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, parties: Iterable[str] | None = None) -> None:
        """Forget ``parties`` (all when ``None``)."""
        if parties is None:
            self._entries.clear()
            return
        for party in parties:
            self._entries.pop(party, None)

    def __len__(self) -> int:
        return len(self._entries)
