"""The mailbox's positions and cursors, and the order in which it refuses a poll
token (spec §11.4, VRM-HTTP-032, VRM-HTTP-033).

SEC-MAILBOX-POLL shows that each forged token is refused; here each token has
two faults, and the code must be the one §11.4 checks first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conformance.checks._support import expect_accepted
from conformance.checks.mailbox import POLL_LIFETIME, _mailbox_url, poll_mailbox
from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext
from conformance.forge import JoseSigner
from conformance.model import WIRE_STEP
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.identity import new_pairwise
from conformance.peers.messages import sign, timestamp
from conformance.protocol import schema_errors_of
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import MAILBOX_PAGE_SCHEMA, POLL_AUTH_SCHEME, POLL_TYP
from vrm_protocol.vocabulary import MESSAGE_TYP, Role

E = ErrorCode
#: Another party's mailbox: a token for it is for the wrong audience.
ELSEWHERE = "https://another-party.vrm-protocol.example"


def _token(
    persona: Persona,
    *,
    to: str,
    after: int | None = 0,
    created: datetime | None = None,
    lifetime: timedelta = POLL_LIFETIME,
    signer: JoseSigner | None = None,
    typ: str = POLL_TYP,
) -> str:
    start = created or persona.now()
    payload: dict[str, Any] = {
        "from": persona.id,
        "to": [to],
        "created": timestamp(start),
        "expires": timestamp(start + lifetime),
    }
    if after is not None:
        payload["after"] = after
    return sign(payload, signer or persona.signer, typ=typ).decode()


async def _get(ctx: CheckContext, url: str, token: str, query: str, note: str) -> Any:
    try:
        return await request(
            ctx.session.http,
            ctx.session.transcript,
            "GET",
            f"{url}{query}",
            headers={"Authorization": f"{POLL_AUTH_SCHEME} {token}"},
            note=note,
        )
    except TargetUnreachable as error:
        ctx.fail("the mailbox answers", actual=error.reason, requirement="VRM-HTTP-010")


async def _rfi_waiting(ctx: CheckContext) -> tuple[Persona, str]:
    """A persona whose RFI (no replyTo) left an offer in her mailbox."""
    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()), reply=False)
    expect_accepted(
        ctx, await persona.send(rfi, note="RFI without replyTo"), what="an RFI without replyTo"
    )
    return persona, str(rfi["id"])


@REGISTRY.check(
    "MBX-POSITIONS",
    title="The mailbox serves messages after the cursor, in order, and says where it stopped",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-032",),
    roles=(Role.VENDOR,),
)
async def mailbox_positions(ctx: CheckContext) -> None:
    """Two offers wait for a persona (an RFI, then an RFP once the first offer
    came). Paged from cursor 0, every page is a valid mailbox page, the first
    offer comes before the second and none twice; from the last ``next`` the
    mailbox serves nothing and answers that cursor as ``next`` — whether the
    cursor is the query's ``after``, the token's, or the token's when the
    query's is smaller."""
    persona, thread = await _rfi_waiting(ctx)
    within = timedelta(seconds=ctx.options.reply_timeout)
    first = await poll_mailbox(ctx, persona, lambda item: item.type == "offer", within=within)
    rfp = persona.compose(
        "personal-rfp",
        bodies.personal_rfp_body(persona.now()),
        thread=thread,
        parent=str(first.id),
        reply=False,
    )
    expect_accepted(ctx, await persona.send(rfp, note="an RFP after the offer"), what="an RFP")
    second = await poll_mailbox(
        ctx,
        persona,
        lambda item: item.type == "offer" and item.id != first.id,
        within=within,
    )
    url = _mailbox_url(ctx)
    owner = persona.side.target_id
    served: list[str] = []
    cursor = 0
    for _ in range(50):
        token = _token(persona, to=owner, after=0)
        reply = await _get(ctx, url, token, f"?after={cursor}", f"page after {cursor}")
        ctx.require(reply.status == 200, "the mailbox serves a page", actual=reply.status)
        document = reply.json()
        errors = schema_errors_of(document, MAILBOX_PAGE_SCHEMA)
        ctx.require(
            errors is None,
            "the page is valid against mailbox-page.schema.json",
            actual=errors,
            requirement="VRM-HTTP-032",
        )
        messages = document["messages"]
        for item in messages:
            inbound = await persona.side.core.accept(str(item).encode(), via="mailbox")
            served.append(str(inbound.id))
        if not messages:
            ctx.require(
                document["next"] == cursor,
                "a page with no message answers the cursor as next",
                expected=cursor,
                actual=document["next"],
                requirement="VRM-HTTP-032",
            )
            break
        ctx.require(
            document["next"] > cursor,
            "next, the last message's position, is greater than the cursor",
            expected=f"> {cursor}",
            actual=document["next"],
            requirement="VRM-HTTP-032",
        )
        cursor = int(document["next"])
    ours = [item for item in served if item in (str(first.id), str(second.id))]
    ctx.require(
        ours == [str(first.id), str(second.id)],
        "the offers are served once each, the first kept before the second",
        expected=[str(first.id), str(second.id)],
        actual=ours,
        requirement="VRM-HTTP-032",
    )
    cases = [
        ("the token's after, no query", _token(persona, to=owner, after=cursor), ""),
        (
            "a query after smaller than the token's",
            _token(persona, to=owner, after=cursor),
            "?after=0",
        ),
    ]
    for what, token, query in cases:
        reply = await _get(ctx, url, token, query, f"poll with {what}")
        document = reply.json() if reply.status == 200 else None
        ctx.expect(
            isinstance(document, dict)
            and document.get("messages") == []
            and document.get("next") == cursor,
            f"with {what}, the cursor is {cursor}: nothing after it, next is it",
            expected={"messages": [], "next": cursor},
            actual=document if document is not None else reply.status,
            requirement="VRM-HTTP-032",
        )


@REGISTRY.check(
    "MBX-POLL-ORDER",
    title="A poll token with two faults is refused for the one §11.4 checks first",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-033",),
    roles=(Role.VENDOR,),
)
async def poll_refusal_order(ctx: CheckContext) -> None:
    """Signing profile before schema, schema before key, key before audience,
    audience before freshness; expired before not-yet-valid before a lifetime
    longer than five minutes; and a token that only lives too long is
    ``lifetime-too-long``."""
    persona, _ = await _rfi_waiting(ctx)
    url = _mailbox_url(ctx)
    owner = persona.side.target_id
    _, stranger = new_pairwise()
    now = persona.now()
    long_ago = now - timedelta(hours=2)
    ahead = now + timedelta(hours=1)
    cases: list[tuple[str, str, ErrorCode]] = [
        (
            "typed vrm+jws and with no after",
            _token(persona, to=owner, after=None, typ=MESSAGE_TYP),
            E.INVALID_TYP,
        ),
        (
            "with no after, signed by another key",
            _token(persona, to=owner, after=None, signer=stranger),
            E.SCHEMA_INVALID,
        ),
        (
            "signed by another key, for another mailbox",
            _token(persona, to=ELSEWHERE, signer=stranger),
            E.KEY_SENDER_MISMATCH,
        ),
        (
            "for another mailbox, expired",
            _token(persona, to=ELSEWHERE, created=long_ago),
            E.WRONG_AUDIENCE,
        ),
        (
            "expired, living an hour",
            _token(persona, to=owner, created=long_ago, lifetime=timedelta(hours=1)),
            E.MESSAGE_EXPIRED,
        ),
        (
            "not yet valid, living an hour",
            _token(persona, to=owner, created=ahead, lifetime=timedelta(hours=1)),
            E.MESSAGE_NOT_YET_VALID,
        ),
        (
            "living an hour",
            _token(persona, to=owner, lifetime=timedelta(hours=1)),
            E.LIFETIME_TOO_LONG,
        ),
    ]
    for what, token, code in cases:
        reply = await _get(ctx, url, token, "?after=0", f"poll token {what}")
        ctx.expect(
            reply.status == code.http_status and reply.problem_code() == code.value,
            f"a poll token {what} is refused with {code.value}",
            expected=f"{code.http_status} {code.value}",
            actual=f"{reply.status} {reply.problem_code() or ''}".strip(),
            requirement="VRM-HTTP-033",
        )
