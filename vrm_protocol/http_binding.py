"""The HTTP binding, sans-IO (spec §11).

Everything an HTTP server or client of the protocol must agree on, as data and
pure functions: paths, media types, the discovery document, how a rejection
becomes RFC 9457 problem details, the per-sender rate limit, and the signed
mailbox poll that lets a buyer agent with no public address collect its
replies.  Sockets, frameworks and storage stay in the agents; this module
decides, they carry.

Binding summary (spec §11):

* ``GET  /.well-known/vrm``      discovery document (JSON).
* ``GET  /vrm/jwks.json``        the party's public keys (JWKS, RFC 7517 §5).
* ``POST /vrm/inbox``            body: one message, ``application/vrm+jws``.
  ``202`` with a signed ``receipt`` once the message is stored durably;
  ``200`` with the *original* receipt when the identical message is resent;
  ``4xx/5xx`` with ``application/problem+json`` otherwise.
* ``GET  /vrm/mailbox?after=N``  every message the party sent the poller,
  until it expires; authorised by a signed poll token (``vrm-poll+jws``) in
  ``Authorization: VRM-Poll <token>``.
* ``GET  /vrm/terms/{id}/{version}``  a terms document the party asserts.
* ``GET  /vrm/exports/{id}``     an exit's export too large to embed, to the
  pseudonym's poll token (spec §6.14).

Replies never ride on the HTTP response: a reply is a message of its own,
kept in the sender's mailbox and also POSTed to the inbox named in the
request's ``replyTo`` when the delivery policy allows that address.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import quote, urlsplit

from vrm_protocol.canonical import canonical_json
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import (
    DEFAULT_SKEW,
    check_audience,
    check_freshness,
    format_timestamp,
    parse_timestamp,
)
from vrm_protocol.keys import SigningKey, resolve_did_jwk
from vrm_protocol.limits import DEFAULT_LIMITS, Limits
from vrm_protocol.schema_registry import default_registry
from vrm_protocol.signing_profile import sign_compact, verify_compact
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, SUPPORTED_VERSIONS, MessageType

__all__ = [
    "DISCOVERY_PATH",
    "DISCOVERY_SCHEMA",
    "EXPORTS_PATH_PREFIX",
    "INBOX_PATH",
    "JWKS_PATH",
    "JWKS_SCHEMA",
    "MAILBOX_PAGE_SCHEMA",
    "MAILBOX_PATH",
    "MAX_CURSOR",
    "MAX_POLL_LIFETIME",
    "POLL_AUTH_SCHEME",
    "POLL_TOKEN_SCHEMA",
    "POLL_TYP",
    "PROBLEM_DETAILS_SCHEMA",
    "PROBLEM_MEDIA_TYPE",
    "TERMS_PATH_PREFIX",
    "TERMS_TEXT_MEDIA_TYPE",
    "TEST_DRIVER_PREFIX",
    "TEST_DRIVER_SCHEMA",
    "DeliveryPolicy",
    "DeliveryRefused",
    "DeliveryTarget",
    "PollRequest",
    "ProblemResponse",
    "RateLimiter",
    "buyer_discovery_document",
    "check_inbox_request",
    "discovery_document",
    "forbidden_address_reason",
    "mailbox_page",
    "make_poll_token",
    "parse_cursor",
    "poll_token_from_authorization",
    "problem_response",
    "receipt_body",
    "terms_path",
    "verify_poll_token",
]

DISCOVERY_PATH: Final = "/.well-known/vrm"
JWKS_PATH: Final = "/vrm/jwks.json"
INBOX_PATH: Final = "/vrm/inbox"
MAILBOX_PATH: Final = "/vrm/mailbox"
#: Terms documents a party asserts, at ``/vrm/terms/{id}/{version}`` (spec §11.7).
TERMS_PATH_PREFIX: Final = "/vrm/terms"
#: How a terms document is served: its digest is over exactly these bytes.
TERMS_TEXT_MEDIA_TYPE: Final = "text/plain; charset=utf-8"
#: Exports too large to embed in an exit acknowledgement, at ``/vrm/exports/{id}`` (spec §6.14).
EXPORTS_PATH_PREFIX: Final = "/vrm/exports"
#: Present only when an agent runs in test mode (conformance test driver, spec §14.3).
TEST_DRIVER_PREFIX: Final = "/vrm/test-driver"

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
#: ``typ`` of the mailbox poll token (spec §11.4).
POLL_TYP: Final = "vrm-poll+jws"
POLL_AUTH_SCHEME: Final = "VRM-Poll"
#: The schemas of the binding's documents (spec §11), in the schema registry.
DISCOVERY_SCHEMA: Final = "binding/discovery.schema.json"
JWKS_SCHEMA: Final = "binding/jwks.schema.json"
POLL_TOKEN_SCHEMA: Final = "binding/poll-token.schema.json"  # noqa: S105 - a file name
MAILBOX_PAGE_SCHEMA: Final = "binding/mailbox-page.schema.json"
PROBLEM_DETAILS_SCHEMA: Final = "binding/problem-details.schema.json"
TEST_DRIVER_SCHEMA: Final = "binding/test-driver.schema.json"
#: The longest a poll token may live: long enough for one poll, short enough
#: that a leaked token is useless soon (spec §11.4).
MAX_POLL_LIFETIME: Final = timedelta(minutes=5)
#: The largest mailbox cursor (spec §11.4): the largest integer every JSON
#: implementation represents exactly (I-JSON, RFC 7493 §2.2).
MAX_CURSOR: Final = 2**53 - 1


def terms_path(terms_id: str, version: str) -> str:
    """The path at which a party serves its terms document ``terms_id`` ``version``
    (spec §11.7): each of them one percent-encoded path segment (RFC 3986 §3.3),
    so that no identifier can reach another route."""
    return f"{TERMS_PATH_PREFIX}/{quote(terms_id, safe='')}/{quote(version, safe='')}"


def check_inbox_request(
    content_type: str | None, content_length: int | None, *, max_message_bytes: int
) -> None:
    """Check an inbox request's headers before its body is read (spec §11.3).

    The body is refused unread when its declared length exceeds the limit, so
    an oversized message costs the receiver nothing but the headers.

    Raises:
        RemoteProtocolError: ``UNSUPPORTED_MEDIA_TYPE`` when the content type is
            not ``application/vrm+jws`` (parameters are ignored);
            ``PAYLOAD_TOO_LARGE`` when the declared length exceeds the limit.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != MESSAGE_MEDIA_TYPE:
        raise RemoteProtocolError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"inbox takes {MESSAGE_MEDIA_TYPE}, not {media_type or 'an undeclared type'}",
        )
    if content_length is not None and content_length > max_message_bytes:
        raise RemoteProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"declared body of {content_length} bytes exceeds the limit of {max_message_bytes}",
        )


@dataclass(frozen=True, slots=True)
class ProblemResponse:
    """An HTTP response carrying RFC 9457 problem details."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def problem_response(
    error: ProtocolError, *, instance: str | None = None, retry_after_seconds: int | None = None
) -> ProblemResponse:
    """Render a protocol error as an HTTP problem-details response (RFC 9457 §3).

    The status comes from the error registry, the body names the stable code in
    both ``type`` and the ``code`` extension member.
    """
    headers = {"Content-Type": PROBLEM_MEDIA_TYPE}
    if retry_after_seconds is not None:
        headers["Retry-After"] = str(retry_after_seconds)
    body = json.dumps(error.to_problem(instance=instance), ensure_ascii=False).encode()
    return ProblemResponse(error.http_status, headers, body)


def poll_token_from_authorization(header_value: str | None) -> bytes:
    """Extract the poll token from an ``Authorization`` header (spec §11.4).

    Raises:
        RemoteProtocolError: ``AUTHENTICATION_REQUIRED`` when the header is
            absent, of another scheme or carries no token (spec §11.4,
            VRM-HTTP-020); the answer names the scheme in ``WWW-Authenticate``.
    """
    scheme, _, token = (header_value or "").partition(" ")
    if scheme != POLL_AUTH_SCHEME or not token.strip():
        raise RemoteProtocolError(
            ErrorCode.AUTHENTICATION_REQUIRED,
            f"mailbox requests need 'Authorization: {POLL_AUTH_SCHEME} <signed poll token>'",
        )
    return token.strip().encode("ascii", errors="replace")


def parse_cursor(values: Sequence[str]) -> int | None:
    """The mailbox cursor from the values of the ``after`` query parameter (spec §11.4).

    ``None`` when the parameter is absent. The cursor is written in ASCII
    decimal digits, at most :data:`MAX_CURSOR` (so it fits every store's
    integers and every JSON number); a sign, a space, another script's digits,
    an empty value or a second ``after`` are refused, never guessed at.

    Raises:
        RemoteProtocolError: ``INVALID_REQUEST`` (VRM-HTTP-019).
    """
    if not values:
        return None
    if len(values) > 1:
        raise RemoteProtocolError(ErrorCode.INVALID_REQUEST, "give the cursor after once")
    text = values[0]
    # str.isdigit() and int() take digits of every script: only ASCII 0-9 here.
    if not (0 < len(text) <= len(str(MAX_CURSOR)) and text.isascii() and text.isdigit()):
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"after is a decimal integer from 0 to {MAX_CURSOR}, not {text[:40]!r}",
        )
    cursor = int(text)
    if cursor > MAX_CURSOR:
        raise RemoteProtocolError(
            ErrorCode.INVALID_REQUEST, f"after is at most {MAX_CURSOR}, not {cursor}"
        )
    return cursor


@dataclass
class RateLimiter:
    """A token bucket per key: at most ``burst`` messages at once, refilled at
    ``rate_per_second`` (spec §11.6).

    Sans-IO: the caller passes a monotonic ``now`` in seconds.  Agents keep one
    keyed by the peer address, charged before anything is parsed, and one keyed
    by the sender, charged only once the message's signature has verified and
    its key is bound to ``from`` (spec §11.6, VRM-HTTP-018): a sender minting
    fresh pseudonyms is still held by the address bucket, and junk naming a
    victim's ``kid`` cannot spend the victim's budget.
    """

    rate_per_second: float
    burst: int
    max_keys: int = 100_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    def check(self, key: str, now: float) -> None:
        """Take one token for ``key``.

        Raises:
            RemoteProtocolError: ``RATE_LIMITED``; ``extra["retry_after"]`` holds
                the whole seconds until a token is free.
        """
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_second)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self.rate_per_second
            raise RemoteProtocolError(
                ErrorCode.RATE_LIMITED,
                f"more than {self.burst} messages at once from this sender; retry later",
                extra={"retry_after": max(1, int(wait + 0.999))},
            )
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            # Bounded memory: forget the bucket idle longest. Cheap enough, since
            # a full table is the rare case and dict order is insertion order.
            self._buckets.pop(next(iter(self._buckets)))
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens - 1.0, now)


def discovery_document(
    *,
    party_id: str,
    role: str,
    name: str,
    base_url: str,
    accepts: Iterable[MessageType],
    sends: Iterable[MessageType],
    terms: Sequence[Mapping[str, Any]] = (),
    categories: Sequence[str] = (),
    max_message_bytes: int,
    max_depth: int,
    rate_per_minute: int,
    algorithms: Sequence[str] = ("EdDSA", "ES256"),
    test_driver: bool = False,
    agreements: Sequence[Mapping[str, str]] = (),
    programmes: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """Build a vendor's discovery document served at ``/.well-known/vrm`` (spec §11.1).

    It tells a peer which protocol versions and message types the party
    handles, where its inbox, mailbox and keys are, the terms documents it
    serves, the categories it serves, and the limits it applies, so that a
    sender can stay within them instead of learning them from rejections.
    ``agreements`` are the MyTerms roster agreements it agrees to (spec §6.71,
    VRM-MYT-003) and ``programmes`` those she may ask to join (spec §6.72);
    each is listed only when there is one. Valid against
    ``schemas/binding/discovery.schema.json`` for ``role`` ``vendor``;
    a buyer agent serves :func:`buyer_discovery_document` instead.
    """
    base = base_url.rstrip("/")
    endpoints = {
        "inbox": base + INBOX_PATH,
        "jwks": base + JWKS_PATH,
        "mailbox": base + MAILBOX_PATH,
    }
    if test_driver:
        endpoints["testDriver"] = base + TEST_DRIVER_PREFIX
    document: dict[str, Any] = {
        "versions": sorted(SUPPORTED_VERSIONS),
        "id": party_id,
        "role": role,
        "name": name,
        "endpoints": endpoints,
        "messageTypes": {
            "accepts": sorted(str(t) for t in accepts),
            "sends": sorted(str(t) for t in sends),
        },
        "algorithms": list(algorithms),
        "terms": [dict(t) for t in terms],
        "categories": list(categories),
        "limits": {
            "maxMessageBytes": max_message_bytes,
            "maxDepth": max_depth,
            "ratePerMinute": rate_per_minute,
        },
    }
    if agreements:
        document["agreements"] = [dict(a) for a in agreements]
    if programmes:
        document["programmes"] = [dict(p) for p in programmes]
    return document


def buyer_discovery_document(
    *,
    accepts: Iterable[MessageType],
    sends: Iterable[MessageType],
    max_message_bytes: int,
    max_depth: int,
    rate_per_minute: int | None = None,
    algorithms: Sequence[str] = ("EdDSA", "ES256"),
    test_driver_url: str | None = None,
) -> dict[str, Any]:
    """The discovery document a buyer agent may serve at its agent's origin (spec
    §11.1, VRM-HTTP-027): what any buyer agent would say, and nothing that names
    or links one of her pseudonyms (no ``id``, no inbox, keys or mailbox). In test
    mode, ``test_driver_url`` lists the test driver. Valid against
    ``schemas/binding/discovery.schema.json``.
    """
    limits: dict[str, int] = {"maxMessageBytes": max_message_bytes, "maxDepth": max_depth}
    if rate_per_minute is not None:
        limits["ratePerMinute"] = rate_per_minute
    document: dict[str, Any] = {
        "versions": sorted(SUPPORTED_VERSIONS),
        "role": "buyer",
        "messageTypes": {
            "accepts": sorted(str(t) for t in accepts),
            "sends": sorted(str(t) for t in sends),
        },
        "algorithms": list(algorithms),
        "limits": limits,
    }
    if test_driver_url is not None:
        document["endpoints"] = {"testDriver": test_driver_url}
    return document


@dataclass(frozen=True, slots=True)
class PollRequest:
    """A verified mailbox poll: who asks, and for messages after which index."""

    poller: str
    after: int


def make_poll_token(
    key: SigningKey,
    *,
    poller: str,
    mailbox_owner: str,
    after: int,
    now: datetime,
    lifetime: timedelta = timedelta(minutes=4),
) -> bytes:
    """Sign a ``vrm-poll+jws`` token asking ``mailbox_owner`` for messages after ``after``.

    Raises:
        LocalProtocolError: the key's algorithm is outside the signing profile.
    """
    payload = {
        "from": poller,
        "to": [mailbox_owner],
        "created": format_timestamp(now),
        "expires": format_timestamp(now + lifetime),
        "after": after,
    }
    return sign_compact(canonical_json(payload), key, typ=POLL_TYP)


def verify_poll_token(
    token: bytes,
    *,
    mailbox_owner: str,
    now: datetime,
    limits: Limits = DEFAULT_LIMITS,
    skew: timedelta = DEFAULT_SKEW,
) -> PollRequest:
    """Verify a mailbox poll token and say who polls (spec §11.4).

    The token is a compact JWS with ``typ`` ``vrm-poll+jws`` whose payload is
    ``{from, to: [owner], created, expires, after}``
    (``schemas/binding/poll-token.schema.json``).  Only buyers poll, and a
    buyer's ``did:jwk`` identifier *is* its key, so verification needs no key
    lookup: the ``kid`` must be ``<from>#0``. The checks apply in this order
    (spec §11.4): the signing profile, the schema, the key, the audience, then
    freshness.

    Raises:
        RemoteProtocolError: any signing-profile failure; ``SCHEMA_INVALID`` when
            the payload is not valid against its schema (with the JSON Pointer of
            the fault); ``KEY_SENDER_MISMATCH`` when the key is not
            the poller's; ``WRONG_AUDIENCE`` when the token is for another
            mailbox; ``MESSAGE_EXPIRED`` / ``MESSAGE_NOT_YET_VALID`` outside its
            lifetime; ``LIFETIME_TOO_LONG`` when it claims to live longer than
            ``MAX_POLL_LIFETIME``.
    """
    verified = verify_compact(token, resolve_key=resolve_did_jwk, typ=POLL_TYP, limits=limits)
    claims = verified.document if verified.document is not None else {}
    # spec §11.4 (VRM-HTTP-032): the payload is schemas/binding/poll-token.schema.json.
    default_registry().validate(claims, POLL_TOKEN_SCHEMA)
    poller, audience, after = str(claims["from"]), list(claims["to"]), int(claims["after"])
    if verified.header.get("kid") != poller + "#0":
        raise RemoteProtocolError(
            ErrorCode.KEY_SENDER_MISMATCH, "the poll token is not signed by the poller's own key"
        )
    check_audience(audience, mailbox_owner)
    # A timestamp that is not an instant is schema-invalid at its own member;
    # one near year 9999 is the far future (spec §9.1, VRM-FRESH-012, -013).
    created = parse_timestamp(claims.get("created"), path="/created")  # type: ignore[arg-type]
    expires = parse_timestamp(claims.get("expires"), path="/expires")  # type: ignore[arg-type]
    check_freshness(created, expires, now, skew, max_lifetime=MAX_POLL_LIFETIME)
    return PollRequest(poller=poller, after=after)


def receipt_body(regarding: Mapping[str, str], *, now: datetime) -> dict[str, Any]:
    """The body of the ``receipt`` an inbox answers with (spec §6.16, §11.3).

    ``regarding`` is the received message's ``messageRef`` (id and digest of
    the exact token), so the sender can prove which bytes were acknowledged.
    An identical resend is answered with the *original* receipt's bytes, so
    the status of a receipt is always ``accepted``.
    """
    return {"regarding": dict(regarding), "status": "accepted", "receivedAt": format_timestamp(now)}


def mailbox_page(tokens: Sequence[bytes], *, after: int) -> bytes:
    """The JSON body of a mailbox response: messages after ``after`` and the next index.

    The index is the count of messages ever left for the poller, so a poller
    that remembers ``next`` sees each message once and loses none (spec §11.4).
    """
    page = {"messages": [token.decode("ascii") for token in tokens[after:]], "next": len(tokens)}
    return json.dumps(page).encode()


# -- the delivery policy (spec §11.8) -----------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: RFC 6598 shared address space (carrier-grade NAT): not "private" to Python, not public.
_SHARED_ADDRESS_SPACE: Final = ipaddress.ip_network("100.64.0.0/10")
#: RFC 4193 unique local addresses.
_UNIQUE_LOCAL: Final = ipaddress.ip_network("fc00::/7")
#: RFC 6052 well-known NAT64 prefix: the embedded IPv4 address is where it leads.
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
#: RFC 3056 6to4: the embedded IPv4 address is where it leads.
_SIX_TO_FOUR: Final = ipaddress.ip_network("2002::/16")


class DeliveryRefused(ValueError):
    """The delivery policy forbids a POST to this address (spec §11.8); ``str()``
    says why, in one line for the operator's log."""


def forbidden_address_reason(address: IPAddress) -> str | None:
    """Why a POST must not go to ``address`` without the operator's leave, or
    ``None`` when it is a public unicast address (spec §11.8).

    Addresses that embed an IPv4 address (IPv4-mapped, NAT64, 6to4) are judged
    by the address they lead to, so none is a way around the rule.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return forbidden_address_reason(address.ipv4_mapped)
        if address in _NAT64:
            return forbidden_address_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _SIX_TO_FOUR:
            return forbidden_address_reason(
                ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)
            )
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in _SHARED_ADDRESS_SPACE, "shared address space (carrier-grade NAT)"),
        (isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL, "unique-local"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally reachable"),
    )
    return next((reason for failed, reason in checks if failed), None)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    """A host as compared with the allow-list: lower case, no trailing dot,
    IPv6 literals in their compressed form."""
    literal = _literal(host)
    return str(literal) if literal is not None else host.lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class DeliveryTarget:
    """A URL the policy admitted, and what the connection must still respect."""

    url: str
    scheme: str
    host: str
    port: int
    #: The operator allows this host (or host and port): no address rule applies.
    allow_listed: bool


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Where an agent may POST what a peer asked it to (spec §11.8, VRM-HTTP-023):
    a ``replyTo`` inbox or an inbox a discovery document published.

    ``https`` only, to a host whose addresses are all public unicast, unless the
    operator allow-listed the host (any port) or the host and port: then
    ``http`` is allowed too and the address rule does not apply. Sans-IO: the
    agent resolves the name, hands every address to :meth:`check_address`, and
    connects to an address it checked.
    """

    #: (host, port) pairs; port ``None`` allows every port of the host.
    allowed: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> DeliveryPolicy:
        """A policy allowing each entry: ``host``, ``host:port``, an IPv6 literal,
        or ``[v6]:port``.

        Raises:
            ValueError: an entry is not one of those forms, or its port is not 1-65535.
        """
        allowed: set[tuple[str, int | None]] = set()
        for raw in entries:
            entry = raw.strip()
            host, port_text = entry, ""
            if entry.startswith("["):
                host, _, rest = entry[1:].partition("]")
                if rest and not rest.startswith(":"):
                    raise ValueError(f"not host, host:port or [v6]:port: {raw!r}")
                port_text = rest[1:]
            elif entry.count(":") == 1:
                host, _, port_text = entry.partition(":")
            if (
                not host
                or any(c in host for c in "/@?#[] ")
                or (":" in host and _literal(host) is None)
            ):
                raise ValueError(f"not host, host:port or [v6]:port: {raw!r}")
            port: int | None = None
            if port_text:
                if not port_text.isascii() or not port_text.isdigit():
                    raise ValueError(f"the port of {raw!r} is not a number")
                port = int(port_text)
                if not 0 < port < 65536:
                    raise ValueError(f"the port of {raw!r} is not 1-65535")
            allowed.add((_normal_host(host), port))
        return cls(frozenset(allowed))

    def allows_host(self, host: str, port: int) -> bool:
        """Whether the operator allow-listed ``host`` (any port) or ``host:port``."""
        normal = _normal_host(host)
        return (normal, None) in self.allowed or (normal, port) in self.allowed

    def check_url(self, url: str) -> DeliveryTarget:
        """Judge the URL itself: scheme, host and, for an IP literal, the address.

        A host name's addresses are judged when it is resolved
        (:meth:`check_address`), immediately before connecting.

        Raises:
            DeliveryRefused: the URL is malformed, carries credentials, is not
                ``https`` (``http`` for an allow-listed host), or names an IP
                address that is not public unicast and not allow-listed.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise DeliveryRefused(f"not a valid URL: {error}") from error
        scheme, host = parts.scheme.lower(), parts.hostname
        if scheme not in ("https", "http") or not host or port == 0:
            raise DeliveryRefused(f"not an http(s) URL with a host: {url[:200]!r}")
        if parts.username is not None or parts.password is not None:
            raise DeliveryRefused("the URL carries credentials")
        port = port or (443 if scheme == "https" else 80)
        allow_listed = self.allows_host(host, port)
        if scheme == "http" and not allow_listed:
            raise DeliveryRefused(f"http is allowed only to allow-listed hosts, not {host}")
        target = DeliveryTarget(url, scheme, _normal_host(host), port, allow_listed)
        literal = _literal(host)
        if literal is not None:
            self.check_address(target, str(literal))
        return target

    def check_address(self, target: DeliveryTarget, address: str) -> None:
        """Judge one address ``target``'s host resolved to (or its literal).

        Raises:
            DeliveryRefused: ``address`` is not public unicast and the host is
                not allow-listed, or it is not an IP address at all.
        """
        if target.allow_listed:
            return
        literal = _literal(address.split("%", 1)[0])
        if literal is None:
            raise DeliveryRefused(f"{target.host} resolved to {address!r}, not an IP address")
        reason = forbidden_address_reason(literal)
        if reason is not None:
            shown = target.host if target.host == str(literal) else f"{target.host} ({literal})"
            raise DeliveryRefused(f"{shown} is {reason} and not on the allow-list")
