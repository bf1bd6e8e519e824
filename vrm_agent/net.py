"""An agent's network edge: where it may connect, and how much it reads (D6, D7).

Every address an agent POSTs to is one a peer named (``replyTo``) or published
(a discovered inbox), and everything a peer publishes is untrusted input. The
rules both reference agents apply:

* the library's :class:`~vrm_protocol.http_binding.DeliveryPolicy` (spec §11.8):
  ``https`` only, or ``http`` to hosts on the operator's allow-list; a host must
  resolve to public unicast addresses only unless it is allow-listed. The check
  runs inside the HTTP client's resolver (:class:`PolicyResolver`), so the
  address that was checked is the address connected to: there is no second
  resolution a hostile DNS server could answer differently;
* redirects are never followed (a 3xx is a failed attempt);
* :func:`fetch_bounded`: a GET bounded in size and time, read without
  decompression, refused at the bound without reading the rest (D7);
* :func:`post_message`: one delivery attempt of a token, its answer bounded;
* :func:`fetch_discovery`, :func:`fetch_key_set`: what a party publishes about
  itself (spec §11.1, §11.2), read within those bounds and judged before use:
  its endpoints on its own origin, at most 16 keys, a key set with one key
  the library refuses refused whole;
* :class:`KeyCache`: published key sets per party, bounded in entries and age.
"""

from __future__ import annotations

import asyncio
import socket
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult

from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import DISCOVERY_PATH, DeliveryPolicy, DeliveryRefused
from vrm_protocol.keys import KeySet
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

__all__ = [
    "ATTEMPT_TIMEOUT_SECONDS",
    "DISCOVERY_MAX_BYTES",
    "FETCH_TIMEOUT_SECONDS",
    "JWKS_MAX_BYTES",
    "JWKS_MAX_KEYS",
    "LOOPBACK",
    "MAILBOX_PAGE_MAX_BYTES",
    "RECEIPT_MAX_BYTES",
    "TERMS_MAX_BYTES",
    "DeliveryAddressRefused",
    "DeliveryRefused",
    "Discovered",
    "FetchRefused",
    "KeyCache",
    "PolicyResolver",
    "PostOutcome",
    "client_session",
    "fetch_bounded",
    "fetch_discovery",
    "fetch_json_object",
    "fetch_key_set",
    "loopback_policy",
    "origin",
    "policy_refusal",
    "post_message",
    "read_bounded",
    "same_origin",
]

#: D7: a discovery document and a JWKS are at most 64 KiB, a JWKS at most 16 keys.
DISCOVERY_MAX_BYTES: Final = 64 * 1024
JWKS_MAX_BYTES: Final = 64 * 1024
JWKS_MAX_KEYS: Final = 16
#: A terms document (D12): a legal text, far longer than a key set may be.
TERMS_MAX_BYTES: Final = 256 * 1024
#: A mailbox page: at most 50 messages of at most 64 KiB each, with room for the JSON.
MAILBOX_PAGE_MAX_BYTES: Final = 4 * 1024 * 1024
#: A receipt answering one POST (or the problem details refusing it).
RECEIPT_MAX_BYTES: Final = 64 * 1024
#: D7: every fetch is given up after 5 seconds.
FETCH_TIMEOUT_SECONDS: Final = 5.0
#: Bound on one delivery attempt, connection and answer included (seconds).
ATTEMPT_TIMEOUT_SECONDS: Final = 10.0
#: The allow-list of test mode and ``vrm demo``: the agents run on loopback.
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class FetchRefused(Exception):
    """A fetch broke a bound of D7 (size, time, redirect, status, encoding), or
    what it fetched is not what the party may publish (another origin, too many
    keys, a key the library refuses)."""


def loopback_policy(*extra: str) -> DeliveryPolicy:
    """The delivery policy of test mode and ``vrm demo``: loopback allow-listed
    (the agents run on 127.0.0.1), with ``extra`` allow-list entries.

    Raises:
        ValueError: an entry of ``extra`` is malformed.
    """
    return DeliveryPolicy.from_entries(sorted(LOOPBACK | set(extra)))


class DeliveryAddressRefused(OSError):
    """A host resolved to an address the delivery policy forbids (spec §11.8).

    An :class:`OSError`, so that aiohttp's connector reports it as a failed
    lookup and never connects.
    """


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
    """Whether ``url`` is on the origin (scheme, host, port) of ``party_id`` (D7)."""
    here = origin(url)
    return here is not None and here == origin(party_id)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class PolicyResolver(AbstractResolver):
    """Resolves with ``inner`` and returns the addresses only if every one of them
    is allowed (spec §11.8): aiohttp then connects to one of exactly these
    addresses, so a name cannot resolve one way for the check and another way
    for the connection. A host with any refused address is refused whole: a
    name that also resolves to a private address is not one to trust with the
    rest.

    Args:
        policy: the agent's delivery policy.
        inner: the resolver that does the lookup (a threaded ``getaddrinfo``).
    """

    def __init__(self, policy: DeliveryPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host``, all of them allowed.

        Raises:
            DeliveryAddressRefused: one of them is not allowed, or there is none
                (no connection is made).
            OSError: the lookup failed.
        """
        results = await self._inner.resolve(host, port, family)
        if not results:
            raise DeliveryAddressRefused(f"{host} resolves to nothing")
        if not self._policy.allows_host(host, port):
            # A checked target for the host: the scheme was judged before the request.
            target = self._policy.check_url(f"https://{_bracketed(host)}:{port}/")
            for result in results:
                try:
                    self._policy.check_address(target, result["host"])
                except DeliveryRefused as refused:
                    raise DeliveryAddressRefused(str(refused)) from refused
        return results

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


def client_session(
    policy: DeliveryPolicy,
    *,
    total_timeout: float = 30.0,
    connect_timeout: float = FETCH_TIMEOUT_SECONDS,
    limit: int = 64,
) -> aiohttp.ClientSession:
    """An HTTP client whose every connection passes ``policy``'s address check.

    No proxy from the environment; bodies are not decompressed (a few kilobytes
    of gzip must not become gigabytes behind a size bound, D7). Redirects are
    refused per request. Call from a running event loop.
    """
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy), limit=limit)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout),
        headers={"Accept-Encoding": "identity"},
        trust_env=False,
    )


def policy_refusal(error: BaseException) -> DeliveryRefused | DeliveryAddressRefused | None:
    """The delivery policy's refusal behind a client error, if that is what it is."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DeliveryRefused | DeliveryAddressRefused):
            return seen
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, DeliveryAddressRefused):
            return os_error
        seen = seen.__cause__
    return None


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
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """GET ``url`` under the bounds of D7: at most ``max_bytes``, within
    ``time_bound`` seconds, no redirect followed, a 200 answer only.

    Raises:
        DeliveryRefused: the policy forbids the URL or its addresses.
        FetchRefused: a bound was broken, or the answer was not 200.
    """
    policy.check_url(url)
    try:
        async with asyncio.timeout(time_bound):
            async with session.get(
                url, allow_redirects=False, headers=dict(headers or {})
            ) as response:
                if response.status != 200:
                    response.close()
                    raise FetchRefused(f"{url} answered {response.status}")
                return await read_bounded(response, max_bytes, url)
    except TimeoutError as error:
        raise FetchRefused(f"{url} did not answer within {time_bound:g} s") from error
    except aiohttp.ClientError as error:
        refusal = policy_refusal(error)
        if refusal is not None:
            raise DeliveryRefused(str(refusal)) from error
        raise FetchRefused(f"{url}: {error}") from error
    except OSError as error:  # the resolver's refusal, a refused connection
        raise DeliveryRefused(f"{url}: {error}") from error


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """The answer to one POST: its status, content type and (bounded) body."""

    status: int
    content_type: str
    body: bytes


async def post_message(
    session: aiohttp.ClientSession,
    policy: DeliveryPolicy,
    url: str,
    token: bytes,
    *,
    follow_redirects: bool = False,
    time_bound: float = ATTEMPT_TIMEOUT_SECONDS,
    max_answer_bytes: int = RECEIPT_MAX_BYTES,
    answer_needed: bool = True,
) -> PostOutcome:
    """One delivery attempt of ``token`` to the inbox at ``url`` (spec §11.3, §11.8).

    No redirect is followed (``follow_redirects`` is for a test-mode fault only):
    a 3xx comes back as it is, a failed attempt for the caller. With
    ``answer_needed`` false only the status matters (an outbox that keeps no
    receipt): the first ``max_answer_bytes`` of the answer are kept for a log
    line, whatever its encoding.

    Raises:
        DeliveryRefused: the policy forbids the URL or the addresses it resolves
            to (no connection was made).
        FetchRefused: no answer within ``time_bound``, the connection failed, or
            the answer broke its size bound.
    """
    policy.check_url(url)
    try:
        async with asyncio.timeout(time_bound):
            async with session.post(
                url,
                data=token,
                headers={"Content-Type": MESSAGE_MEDIA_TYPE},
                allow_redirects=follow_redirects,
            ) as response:
                status = response.status
                content_type = response.headers.get("Content-Type", "")
                if answer_needed:
                    body = await read_bounded(response, max_answer_bytes, url)
                else:
                    body = await response.content.read(max_answer_bytes)
    except TimeoutError as error:
        raise FetchRefused(f"{url} did not answer within {time_bound:g} s") from error
    except (aiohttp.ClientError, OSError) as error:
        refusal = policy_refusal(error)
        if refusal is not None:
            raise DeliveryRefused(str(refusal)) from error
        raise FetchRefused(f"{url}: {type(error).__name__}: {error}") from error
    return PostOutcome(status, content_type, body)


async def fetch_json_object(
    session: aiohttp.ClientSession,
    policy: DeliveryPolicy,
    url: str,
    *,
    max_bytes: int,
    time_bound: float = FETCH_TIMEOUT_SECONDS,
) -> dict[str, object]:
    """GET ``url`` as :func:`fetch_bounded` does, and parse it as a JSON object.

    Raises:
        DeliveryRefused: the policy forbids the URL or its addresses.
        FetchRefused: a bound was broken, or the answer is not a JSON object.
    """
    data = await fetch_bounded(session, policy, url, max_bytes=max_bytes, time_bound=time_bound)
    try:
        # orjson refuses nesting beyond 1024 levels itself; the bytes are bounded.
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise FetchRefused(f"{url} answered no JSON: {error}") from error
    if not isinstance(value, dict):
        raise FetchRefused(f"{url} answered JSON that is not an object")
    return value


@dataclass(frozen=True, slots=True)
class Discovered:
    """What a party publishes about itself, judged (spec §11.1, D7).

    Attributes:
        party: the party id (its base URL, no trailing slash).
        document: the discovery document as published.
        inbox, jwks: its inbox and key set, on its own origin.
        mailbox: its mailbox, on its own origin (the party's inbox origin's
            ``/vrm/mailbox`` when it names none).
    """

    party: str
    document: dict[str, object]
    inbox: str
    jwks: str
    mailbox: str | None


def _endpoint(document: dict[str, object], name: str) -> object:
    endpoints = document.get("endpoints")
    return endpoints.get(name) if isinstance(endpoints, dict) else None


async def fetch_discovery(
    session: aiohttp.ClientSession,
    policy: DeliveryPolicy,
    party: str,
    *,
    time_bound: float = FETCH_TIMEOUT_SECONDS,
) -> Discovered:
    """Fetch and judge ``party``'s discovery document (spec §11.1).

    What a party publishes is untrusted input (D7): the document is at most
    64 KiB, read within ``time_bound``, no redirect followed; it must name the
    party itself, and every endpoint it names must be on the party's own
    origin (an endpoint elsewhere would let the party aim another agent's
    signed messages and polls at any address it likes).

    Raises:
        DeliveryRefused: the policy forbids the URL or its addresses.
        FetchRefused: a bound was broken, or the document names another party,
            no inbox or key set, or an endpoint on another origin.
    """
    base = party.rstrip("/")
    document = await fetch_json_object(
        session, policy, base + DISCOVERY_PATH, max_bytes=DISCOVERY_MAX_BYTES, time_bound=time_bound
    )
    named = document.get("id")
    if not isinstance(named, str) or named.rstrip("/") != base:
        raise FetchRefused(f"{base}'s discovery document names another party: {named!r}"[:300])
    found: dict[str, str | None] = {}
    for name in ("inbox", "jwks", "mailbox"):
        url = _endpoint(document, name)
        if url is None and name == "mailbox":
            found[name] = None
            continue
        if not isinstance(url, str) or not same_origin(url, base):
            raise FetchRefused(
                f"{base}'s discovery document puts its {name} on another origin: {url!r}"[:300]
            )
        found[name] = url
    inbox, jwks = found["inbox"], found["jwks"]
    assert inbox is not None
    assert jwks is not None
    return Discovered(base, document, inbox, jwks, found["mailbox"])


async def fetch_key_set(
    session: aiohttp.ClientSession,
    policy: DeliveryPolicy,
    url: str,
    *,
    time_bound: float = FETCH_TIMEOUT_SECONDS,
) -> tuple[dict[str, object], KeySet]:
    """Fetch and judge a party's published key set (spec §11.2, D1, D7): at most
    64 KiB and 16 keys, every key one the library accepts, or the whole set is
    refused. The document as published, and its keys.

    Raises:
        DeliveryRefused: the policy forbids the URL or its addresses.
        FetchRefused: a bound was broken, or the key set is refused.
    """
    jwks = await fetch_json_object(
        session, policy, url, max_bytes=JWKS_MAX_BYTES, time_bound=time_bound
    )
    keys = jwks.get("keys")
    if not isinstance(keys, list) or len(keys) > JWKS_MAX_KEYS:
        raise FetchRefused(f"the key set at {url} must list at most {JWKS_MAX_KEYS} keys")
    try:
        return jwks, KeySet.from_jwks(jwks)
    except (ProtocolError, TypeError, ValueError) as error:
        raise FetchRefused(f"the key set at {url} is refused: {error}") from error


@dataclass
class KeyCache:
    """Published key sets per party, bounded in entries (least recently used goes
    first) and in age (D7)."""

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
