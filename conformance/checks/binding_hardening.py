"""The HTTP binding under attack (spec §11): the classes of defect an outside
battery found in the reference vendor (issue 9), judged in any vendor.

* a protected header nested deeper than the limits: ``nesting-too-deep``,
  never a 5xx from a parser that looked before the limits did (§11.6);
* junk naming a victim's ``kid`` must not spend the victim's rate budget
  (§11.6): the suite sends it, then the victim's own message must get through;
* the mailbox: a cursor out of range or malformed is ``invalid-request``, a
  request without poll credentials ``401 authentication-required`` (§11.4);
* every non-2xx answer is problem details, ``404`` and ``405`` included (§11.5);
* the terms route serves the bytes whose digest the discovery document and
  every ``termsReference`` name (§11.7);
* a reply is never POSTed on to where a redirect points (§11.8), and the
  reply whose delivery failed is still in the mailbox (§11.4).

What the delivery policy forbids beyond redirects (loopback, private
addresses) cannot be observed from a suite that can only listen on loopback,
which the target's operator may allow-list for the run: it is waived, not
guessed at (``waivers.toml``).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from conformance.checks._support import expect_accepted, expect_rejection, open_probe
from conformance.checks.mailbox import poll_mailbox, poll_token
from conformance.checks.scenarios import await_terms, vendor_deal
from conformance.client import HttpReply, TargetUnreachable, request
from conformance.context import CheckContext
from conformance.forge import b64url, canonical_json, compact
from conformance.model import WIRE_STEP
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.identity import new_pairwise
from conformance.peers.inbox import LocalParty
from conformance.peers.messages import protected_header
from conformance.peers.server import SuiteServer
from conformance.registry import REGISTRY
from conformance.target import discovery_url
from conformance.transcript import current_scope
from vrm_protocol.errors import ERROR_TYPE_BASE, ErrorCode
from vrm_protocol.http_binding import (
    INBOX_PATH,
    MAX_CURSOR,
    POLL_AUTH_SCHEME,
    PROBLEM_MEDIA_TYPE,
    terms_path,
)
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, Role

__all__: list[str] = []

VENDOR = (Role.VENDOR,)
E = ErrorCode

#: Nesting of the hostile header: past any interpreter's recursion limit, as
#: the header peek that broke needed, and far past any declared ``maxDepth``.
NESTED_HEADER_DEPTH: Final = 1400
#: The most junk tokens the lock-out check sends (it sends the target's declared
#: ``ratePerMinute`` plus one, up to this).
MAX_JUNK: Final = 1000
#: Junk tokens in flight at once.
JUNK_CONCURRENCY: Final = 16
#: A second loopback address for the junk, when the target listens on loopback:
#: then the junk cannot spend the budget of the suite's own address.
JUNK_SOURCE: Final = "127.0.0.2"
#: The most terms documents the terms check fetches.
MAX_TERMS: Final = 8
#: Grace after the first delivery for a redirect to be followed (never, we hope).
REDIRECT_GRACE_SECONDS: Final = 2.0


def _endpoint(ctx: CheckContext, name: str, requirement: str) -> str:
    endpoints = ctx.discovery.get("endpoints") or {}
    url = endpoints.get(name) if isinstance(endpoints, dict) else None
    ctx.require(
        isinstance(url, str),
        f"the discovery document names endpoints.{name}",
        requirement=requirement,
    )
    assert isinstance(url, str)
    return url


async def _get(
    ctx: CheckContext,
    method: str,
    url: str,
    *,
    requirement: str,
    headers: Mapping[str, str] | None = None,
    note: str | None = None,
) -> HttpReply:
    try:
        return await request(
            ctx.session.http, ctx.session.transcript, method, url, headers=headers, note=note
        )
    except TargetUnreachable as error:
        ctx.fail(f"the target answers {method} {url}", actual=error.reason, requirement=requirement)


def _expect_problem(
    ctx: CheckContext,
    reply: HttpReply,
    codes: tuple[ErrorCode, ...],
    *,
    what: str,
    requirement: str,
) -> None:
    """Require status and code of one of ``codes``, as RFC 9457 problem details."""
    expected = " or ".join(f"{code.http_status} {code.value}" for code in codes)
    actual = f"{reply.status} {reply.content_type} {reply.problem_code() or ''}".strip()
    ctx.require(
        any(reply.status == c.http_status and reply.problem_code() == c.value for c in codes),
        f"{what} is answered {expected}",
        expected=expected,
        actual=actual,
        requirement=requirement,
    )
    try:
        problem = reply.json()
    except ValueError:
        problem = None
    ctx.require(
        reply.content_type == PROBLEM_MEDIA_TYPE
        and isinstance(problem, dict)
        and problem.get("type") == ERROR_TYPE_BASE + str(reply.problem_code())
        and problem.get("status") == reply.status,
        f"the answer to {what} is problem details naming its type and status",
        expected=PROBLEM_MEDIA_TYPE,
        actual=actual,
        requirement="VRM-HTTP-013",
    )


# -- §11.6: limits before any parse, budgets after verification ---------------------------------


@REGISTRY.check(
    "BIND-NESTED-HEADER",
    title="A deeply nested protected header is refused by the limits, not a 5xx",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-016", "VRM-HTTP-006", "VRM-HTTP-013"),
    roles=VENDOR,
)
async def nested_header(ctx: CheckContext) -> None:
    """A legal RFI whose protected header carries a member nested 1400 deep (under
    4 KiB: small enough for any peek at the header to try it): ``nesting-too-deep``,
    and nothing of it kept."""
    probe = await open_probe(ctx)
    legal = probe.legal()
    limits = ctx.discovery.get("limits") or {}
    declared = limits.get("maxMessageBytes") if isinstance(limits, dict) else None
    nested = b"[" * NESTED_HEADER_DEPTH + b"]" * NESTED_HEADER_DEPTH
    header = canonical_json(dict(protected_header(probe.signer)))[:-1] + b',"x":' + nested + b"}"
    token = compact(header, canonical_json(legal), probe.signer)
    if isinstance(declared, int) and len(token) > declared:
        ctx.skip(f"a {len(token)}-byte probe exceeds the declared maxMessageBytes ({declared})")
    before = await probe.state()
    reply = await probe.post(token, note=f"forged: a header nested {NESTED_HEADER_DEPTH} deep")
    ctx.require(
        reply.status < 500,
        "a hostile header is never a server error",
        actual=reply.describe(),
        requirement="VRM-HTTP-016",
    )
    expect_rejection(
        ctx,
        reply,
        E.NESTING_TOO_DEEP,
        what="a protected header nested deeper than maxDepth",
        requirement="VRM-HTTP-016",
    )
    await probe.confirm_unchanged(legal, before)


def _junk(victim: Persona) -> bytes:
    """A token that names the victim's key but was not made with it: a legal RFI
    of the victim's under a signature of random bytes."""
    payload = victim.compose("personal-rfi", bodies.personal_rfi_body(victim.now()))
    token = compact(protected_header(victim.signer), canonical_json(payload), None)
    return token + b64url(secrets.token_bytes(64)).encode()


def _loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost")


class _SourceUnusable(Exception):
    """The second loopback address cannot reach the target."""


async def _send_junk(
    ctx: CheckContext, inbox: str, victim: Persona, count: int, *, source: str | None
) -> dict[int, int]:
    """POST ``count`` junk tokens naming the victim's key (from ``source`` when
    given); the answers by status. The first one is in the transcript, the
    others are counted: a transcript of a thousand identical requests would
    hide everything else.

    Raises:
        _SourceUnusable: ``source`` cannot reach the target.
    """
    connector = aiohttp.TCPConnector(
        local_addr=(source, 0) if source is not None else None, limit=JUNK_CONCURRENCY
    )
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            first = await request(
                http,
                ctx.session.transcript,
                "POST",
                inbox,
                body=_junk(victim),
                headers={"Content-Type": MESSAGE_MEDIA_TYPE},
                note=f"junk naming the victim's kid (1 of {count}; the rest not recorded)",
            )
        except TargetUnreachable as error:
            if source is not None:
                raise _SourceUnusable(error.reason) from error
            ctx.fail("the target answers junk", actual=error.reason)
        statuses[first.status] = 1

        async def post(token: bytes) -> int:
            try:
                async with http.post(
                    inbox,
                    data=token,
                    headers={"Content-Type": MESSAGE_MEDIA_TYPE},
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    await response.read()
                    return response.status
            except (aiohttp.ClientError, TimeoutError, OSError):
                return 0

        tokens = [_junk(victim) for _ in range(count - 1)]
        for start in range(0, len(tokens), JUNK_CONCURRENCY):
            batch = tokens[start : start + JUNK_CONCURRENCY]
            for status in await asyncio.gather(*(post(token) for token in batch)):
                statuses[status] = statuses.get(status, 0) + 1
    ctx.note(
        f"{count} junk tokens naming the victim's kid, from {source or 'the suite address'}: "
        + ", ".join(f"{n} answered {s or 'nothing'}" for s, n in sorted(statuses.items()))
    )
    return statuses


async def _flood(
    ctx: CheckContext, inbox: str, victim: Persona, count: int
) -> tuple[dict[int, int], bool]:
    """The junk, from a second loopback address when the target listens on
    loopback (then the junk cannot spend the suite address's budget), else from
    the suite's own; the answers by status, and whether the address was another."""
    if _loopback(inbox):
        try:
            return await _send_junk(ctx, inbox, victim, count, source=JUNK_SOURCE), True
        except _SourceUnusable:
            pass
    return await _send_junk(ctx, inbox, victim, count, source=None), False


@REGISTRY.check(
    "BIND-KID-LOCKOUT",
    title="Junk naming a victim's key does not lock the victim out",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-018",),
    roles=VENDOR,
    timeout=90.0,
)
async def kid_lockout(ctx: CheckContext) -> None:
    """The suite sends the target's declared ``ratePerMinute`` plus one (at most
    1000) tokens naming a victim pseudonym's ``kid`` under signatures of random
    bytes, from a second loopback address when it can. Right after, the victim's
    own legal RFI must be accepted: a per-key budget is charged only once the
    signature verified. A fresh pseudonym's RFI on either side tells a full
    address budget (skipped) from a locked-out key (failed)."""
    side = await buyer_side(ctx)
    victim = side.new_persona()
    limits = ctx.discovery.get("limits") or {}
    rate = limits.get("ratePerMinute") if isinstance(limits, dict) else None
    count = min(MAX_JUNK, (rate if isinstance(rate, int) and rate > 0 else 600) + 1)
    statuses, separate = await _flood(ctx, side.target_inbox, victim, count)
    ctx.expect(
        set(statuses) <= {E.BAD_SIGNATURE.http_status, E.RATE_LIMITED.http_status},
        "junk is refused (bad-signature, or rate-limited by address)",
        actual={str(status): n for status, n in sorted(statuses.items())},
        requirement="VRM-HTTP-018",
    )

    async def legal_rfi(persona: Persona, note: str) -> int:
        rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
        return (await persona.send(rfi, note=note)).status

    before = await legal_rfi(side.new_persona(), "control: a fresh pseudonym, same address")
    if before == E.RATE_LIMITED.http_status:
        ctx.skip("the suite's own address is over the target's budget: nothing to judge")
    victim_status = await legal_rfi(victim, "the victim's own RFI, after the junk")
    if victim_status == 202:
        return
    after = await legal_rfi(side.new_persona(), "control: a fresh pseudonym, same address")
    if victim_status == E.RATE_LIMITED.http_status and (
        after == E.RATE_LIMITED.http_status
        or (not separate and statuses.get(E.RATE_LIMITED.http_status))
    ):
        ctx.skip(
            "the address budget ran out around the victim's message: from one address the "
            "suite cannot tell it from a per-key lock-out"
        )
    ctx.require(
        False,
        "after junk naming its kid, the victim's own legal RFI is accepted, as fresh "
        "pseudonyms' RFIs just before and after it are",
        expected="202",
        actual=f"{victim_status} (controls: {before}, {after})",
        requirement="VRM-HTTP-018",
    )


# -- §11.4: the mailbox's credentials and cursor ----------------------------------------------


@REGISTRY.check(
    "BIND-MAILBOX-AUTH",
    title="A mailbox request without poll credentials is 401 authentication-required",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-020", "VRM-HTTP-013"),
    roles=VENDOR,
)
async def mailbox_authentication(ctx: CheckContext) -> None:
    """No ``Authorization``, a ``Bearer`` one, and ``VRM-Poll`` without a token:
    each ``401 authentication-required`` with ``WWW-Authenticate: VRM-Poll``."""
    url = _endpoint(ctx, "mailbox", "VRM-HTTP-020")
    for what, headers in (
        ("no Authorization header", {}),
        ("another scheme", {"Authorization": "Bearer conformance"}),
        ("the scheme without a token", {"Authorization": POLL_AUTH_SCHEME}),
    ):
        reply = await _get(
            ctx, "GET", f"{url}?after=0", headers=headers, requirement="VRM-HTTP-020", note=what
        )
        _expect_problem(
            ctx,
            reply,
            (E.AUTHENTICATION_REQUIRED,),
            what=f"a mailbox request with {what}",
            requirement="VRM-HTTP-020",
        )
        challenge = reply.headers.get("WWW-Authenticate", "")
        ctx.require(
            POLL_AUTH_SCHEME.lower() in challenge.lower(),
            f"the 401 for {what} names the {POLL_AUTH_SCHEME} scheme in WWW-Authenticate",
            actual=challenge or None,
            requirement="VRM-HTTP-020",
        )


@REGISTRY.check(
    "BIND-MAILBOX-CURSOR",
    title="A mailbox cursor out of range or malformed is invalid-request",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-019", "VRM-HTTP-010", "VRM-HTTP-013"),
    roles=VENDOR,
)
async def mailbox_cursor(ctx: CheckContext) -> None:
    """With a valid poll token, ``after`` beyond 64-bit integers, 2^53, -1, a word,
    an exponent, another script's digit or given twice: each ``400
    invalid-request``; the largest cursor, 2^53 - 1, is served."""
    url = _endpoint(ctx, "mailbox", "VRM-HTTP-019")
    side = await buyer_side(ctx)
    persona = side.new_persona()
    for query in (
        "after=99999999999999999999",
        f"after={MAX_CURSOR + 1}",
        "after=-1",
        "after=abc",
        "after=1e3",
        "after=%D9%A3",
        "after=1&after=2",
    ):
        token = poll_token(persona, side.target_id, 0).decode()
        reply = await _get(
            ctx,
            "GET",
            f"{url}?{query}",
            headers={"Authorization": f"{POLL_AUTH_SCHEME} {token}"},
            requirement="VRM-HTTP-019",
            note=f"mailbox cursor {query}",
        )
        _expect_problem(
            ctx,
            reply,
            (E.INVALID_REQUEST,),
            what=f"a mailbox request with {query}",
            requirement="VRM-HTTP-019",
        )
    token = poll_token(persona, side.target_id, 0).decode()
    reply = await _get(
        ctx,
        "GET",
        f"{url}?after={MAX_CURSOR}",
        headers={"Authorization": f"{POLL_AUTH_SCHEME} {token}"},
        requirement="VRM-HTTP-010",
    )
    ctx.require(
        reply.status == 200,
        f"the largest cursor ({MAX_CURSOR}) is served",
        actual=reply.status,
        requirement="VRM-HTTP-010",
    )


# -- §11.5: every non-2xx answer is problem details -------------------------------------------


def _allows(reply: HttpReply, method: str) -> bool:
    allowed = {part.strip().upper() for part in reply.headers.get("Allow", "").split(",")}
    return method in allowed


@REGISTRY.check(
    "BIND-PROBLEM-DETAILS",
    title="404 and 405 answers are problem details too",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-013",),
    roles=VENDOR,
)
async def routes_and_methods(ctx: CheckContext) -> None:
    """A path no route serves is ``404 not-found``; ``GET`` of the inbox and
    ``PUT`` of the discovery document are ``405 method-not-allowed`` (listing
    the methods in ``Allow``) or ``404 not-found``; all as problem details."""
    base = ctx.options.target.rstrip("/")
    nowhere = f"{base}/vrm/conformance-no-such-route/{secrets.token_hex(8)}"
    reply = await _get(ctx, "GET", nowhere, requirement="VRM-HTTP-013")
    _expect_problem(
        ctx, reply, (E.NOT_FOUND,), what="a path no route serves", requirement="VRM-HTTP-013"
    )
    inbox = _endpoint(ctx, "inbox", "VRM-HTTP-013")
    for method, url, taken in (
        ("GET", inbox, "POST"),
        ("PUT", discovery_url(ctx.options.target), "GET"),
    ):
        reply = await _get(ctx, method, url, requirement="VRM-HTTP-013")
        _expect_problem(
            ctx,
            reply,
            (E.METHOD_NOT_ALLOWED, E.NOT_FOUND),
            what=f"{method} {url}",
            requirement="VRM-HTTP-013",
        )
        if reply.status == E.METHOD_NOT_ALLOWED.http_status:
            ctx.require(
                _allows(reply, taken),
                f"the 405 for {method} {url} lists {taken} in Allow",
                actual=reply.headers.get("Allow"),
                requirement="VRM-HTTP-013",
            )


# -- §11.7: terms documents ---------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _digest(data: bytes) -> str:
    return "sha-256:" + b64url(hashlib.sha256(data).digest())


async def _fetch_terms(ctx: CheckContext, url: str, requirement: str) -> bytes:
    reply = await _get(ctx, "GET", url, requirement=requirement, note="terms document")
    ctx.require(
        reply.status == 200,
        f"the terms document at {url} is served",
        actual=reply.status,
        requirement=requirement,
    )
    content_type = reply.headers.get("Content-Type", "")
    media, _, parameters = content_type.partition(";")
    charset = {
        name.strip().lower(): value.strip().strip('"').lower()
        for name, _, value in (part.partition("=") for part in parameters.split(";"))
    }.get("charset")
    ctx.require(
        media.strip().lower() == "text/plain" and charset == "utf-8",
        f"the terms document at {url} is text/plain; charset=utf-8",
        actual=content_type or None,
        requirement=requirement,
    )
    return reply.body


@REGISTRY.check(
    "BIND-TERMS-DOCUMENT",
    title="Terms are served on the party's origin as the bytes their digest names",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-021", "VRM-HTTP-022"),
    roles=VENDOR,
    needs=("sends:terms-assertion",),
    timeout=60.0,
)
async def terms_documents(ctx: CheckContext) -> None:
    """Each entry of the discovery document's ``terms`` names the terms route on
    the party's own origin and the digest of the bytes served there; the
    ``termsReference`` of the terms assertion and of the offers the target sent
    point to that route, under the digest of what it serves."""
    party = str(ctx.discovery.get("id") or ctx.options.target).rstrip("/")
    listed = ctx.discovery.get("terms")
    ctx.require(
        isinstance(listed, list) and bool(listed),
        "a party that asserts terms lists them in its discovery document",
        actual=listed,
        requirement="VRM-HTTP-021",
    )
    assert isinstance(listed, list)
    served: dict[str, bytes] = {}
    for entry in listed[:MAX_TERMS]:
        ctx.require(
            isinstance(entry, dict)
            and all(isinstance(entry.get(k), str) for k in ("id", "version", "url", "digest")),
            "each terms entry names id, version, url and digest",
            actual=entry,
            requirement="VRM-HTTP-021",
        )
        assert isinstance(entry, dict)
        url = str(entry["url"])
        route = terms_path(str(entry["id"]), str(entry["version"]))
        ctx.require(
            _origin(url) == _origin(party) and urlsplit(url).path == urlsplit(party).path + route,
            "the terms entry's url is the terms route on the party's own origin",
            expected=party + route,
            actual=url,
            requirement="VRM-HTTP-021",
        )
        served[url] = await _fetch_terms(ctx, url, "VRM-HTTP-021")
        ctx.require(
            entry["digest"] == _digest(served[url]),
            "the listed digest is that of the bytes served",
            expected=_digest(served[url]),
            actual=entry["digest"],
            requirement="VRM-HTTP-021",
        )
    thread = await ctx.use(vendor_deal)
    terms = await await_terms(thread)
    references: list[tuple[str, Any]] = [("the terms assertion", terms.body.get("terms"))]
    references += [(f"offer {offer.id}", offer.body.get("terms")) for offer in thread.offers]
    for what, reference in references:
        if reference is None and what != "the terms assertion":
            continue  # an offer need not carry terms
        ctx.require(
            isinstance(reference, dict)
            and all(isinstance(reference.get(k), str) for k in ("id", "version", "url", "digest")),
            f"{what} carries a complete termsReference",
            actual=reference,
            requirement="VRM-HTTP-022",
        )
        assert isinstance(reference, dict)
        url = str(reference["url"])
        route = terms_path(str(reference["id"]), str(reference["version"]))
        ctx.require(
            _origin(url) == _origin(party) and urlsplit(url).path == urlsplit(party).path + route,
            f"the termsReference of {what} points to the terms route on the party's origin",
            expected=party + route,
            actual=url,
            requirement="VRM-HTTP-022",
        )
        if url not in served:
            served[url] = await _fetch_terms(ctx, url, "VRM-HTTP-022")
        ctx.require(
            reference["digest"] == _digest(served[url]),
            f"the termsReference of {what} carries the digest of the document served there",
            expected=_digest(served[url]),
            actual=reference["digest"],
            requirement="VRM-HTTP-022",
        )


# -- §11.8: redirects are never followed; the reply waits in the mailbox ------------------------


@REGISTRY.check(
    "BIND-NO-REDIRECT",
    title="A reply is never POSTed on where a redirect points, and waits in the mailbox",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-024", "VRM-HTTP-010"),
    roles=VENDOR,
    timeout=90.0,
)
async def no_redirect(ctx: CheckContext) -> None:
    """A persona names as ``replyTo`` an inbox that answers every POST ``307``
    to a canary URL. Once the target has POSTed there, the canary must see
    nothing; the offer is then collected from the mailbox. Skipped when the
    target POSTs nothing to the inbox (its delivery policy may not allow the
    suite's address)."""
    side = await buyer_side(ctx)
    canary, nonce = side.server.new_canary()
    attempts: list[bytes] = []
    attempted = asyncio.Event()

    async def redirecting(_: web.Request, body: bytes) -> web.Response:
        attempts.append(body)
        attempted.set()
        return web.Response(status=307, headers={"Location": canary})

    server = SuiteServer(ctx.session, "redirecting buyer inbox")
    server.route("POST", INBOX_PATH, redirecting)
    await server.start()
    identifier, signer = new_pairwise()
    party = LocalParty(
        identifier, signer, scope=current_scope.get(), inbox_url=server.base_url + INBOX_PATH
    )
    side.core.add(party)
    persona = Persona(side, party)
    side.personas.append(persona)
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi), what="a personal RFI")
    try:
        async with asyncio.timeout(ctx.options.reply_timeout):
            await attempted.wait()
    except TimeoutError:
        ctx.skip(
            f"the target POSTed nothing to the replyTo inbox within {ctx.options.reply_timeout:g}"
            " s (its delivery policy may not allow the suite's address): nothing to judge"
        )
    await asyncio.sleep(REDIRECT_GRACE_SECONDS)
    ctx.require(
        not server.canary_hits.get(nonce) and not side.server.canary_hits.get(nonce),
        "the target does not follow the redirect of its POST",
        expected="no request to the redirect's target",
        actual=side.server.canary_hits.get(nonce),
        requirement="VRM-HTTP-024",
    )
    offer = await poll_mailbox(
        ctx,
        persona,
        lambda item: item.type == "offer",
        within=timedelta(seconds=ctx.options.reply_timeout),
    )
    ctx.require(
        offer.ok, "the offer in the mailbox passes the receiving pipeline", actual=offer.error
    )
