"""Collecting replies from the target's mailbox with a signed poll token (spec §11.4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from conformance.checks._support import expect_accepted
from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext
from conformance.forge import JoseSigner
from conformance.model import WIRE_STEP
from conformance.peers import bodies
from conformance.peers.buyers import Persona
from conformance.peers.inbox import Inbound
from conformance.peers.messages import sign, timestamp
from conformance.registry import REGISTRY
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import POLL_AUTH_SCHEME, POLL_TYP
from vrm_protocol.vocabulary import MESSAGE_TYP, Role

__all__ = ["poll_mailbox", "poll_token"]

#: Poll tokens live at most five minutes (spec §11.4).
POLL_LIFETIME = timedelta(minutes=4)


def poll_token(
    persona: Persona,
    owner: str,
    after: int,
    *,
    signer: JoseSigner | None = None,
    typ: str = POLL_TYP,
    issued: datetime | None = None,
) -> bytes:
    """A ``vrm-poll+jws`` token: the persona asks ``owner`` for messages after ``after``.

    ``signer``, ``typ`` and ``issued`` let a check forge a token the mailbox must refuse.
    """
    now = issued or persona.now()
    payload: dict[str, Any] = {
        "from": persona.id,
        "to": [owner],
        "created": timestamp(now),
        "expires": timestamp(now + POLL_LIFETIME),
        "after": after,
    }
    return sign(payload, signer or persona.signer, typ=typ)


async def poll_mailbox(
    ctx: CheckContext,
    persona: Persona,
    predicate: Callable[[Inbound], bool],
    *,
    within: timedelta,
) -> Inbound:
    """Poll the target's mailbox until a message matching ``predicate`` arrives.

    Every message collected goes through the suite's receiving pipeline (and
    into the audits), as if it had been POSTed.

    Raises:
        CheckFailed: the mailbox could not be polled, or nothing matched in time.
    """
    endpoints = ctx.discovery.get("endpoints") or {}
    url = endpoints.get("mailbox") if isinstance(endpoints, dict) else None
    ctx.require(
        isinstance(url, str),
        "the discovery document names endpoints.mailbox",
        requirement="VRM-HTTP-010",
    )
    assert isinstance(url, str)
    owner = persona.side.target_id
    cursor = 0
    seen = 0  # messages the mailbox served, for the verdict text
    deadline = asyncio.get_running_loop().time() + within.total_seconds()
    while True:
        token = poll_token(persona, owner, cursor)
        try:
            reply = await request(
                ctx.session.http,
                ctx.session.transcript,
                "GET",
                f"{url}?after={cursor}",
                headers={"Authorization": f"{POLL_AUTH_SCHEME} {token.decode()}"},
            )
        except TargetUnreachable as error:
            ctx.fail("the mailbox answers", actual=error.reason, requirement="VRM-HTTP-010")
        ctx.require(
            reply.status == 200,
            "the mailbox answers a valid poll with 200",
            actual=reply.describe() if hasattr(reply, "describe") else reply.status,
            requirement="VRM-HTTP-010",
        )
        try:
            document = reply.json()
        except ValueError:
            ctx.fail("the mailbox answers JSON", requirement="VRM-HTTP-010")
        messages = document.get("messages") if isinstance(document, dict) else None
        ctx.require(
            isinstance(messages, list) and isinstance(document.get("next"), int),
            "the mailbox answers {messages: [...], next: int}",
            actual=document,
            requirement="VRM-HTTP-010",
        )
        assert isinstance(messages, list)
        seen += len(messages)
        for item in messages:
            inbound = await persona.side.core.accept(str(item).encode(), via="mailbox")
            if inbound.receiver == persona.id and predicate(inbound):
                return inbound
        cursor = int(document["next"])
        if asyncio.get_running_loop().time() >= deadline:
            ctx.fail(
                "the reply appears in the mailbox",
                expected=f"within {within}",
                actual=f"none matching among {seen} messages served",
                requirement="VRM-HTTP-010",
            )
        await asyncio.sleep(0.2)


def _mailbox_url(ctx: CheckContext) -> str:
    endpoints = ctx.discovery.get("endpoints") or {}
    url = endpoints.get("mailbox") if isinstance(endpoints, dict) else None
    ctx.require(
        isinstance(url, str),
        "the discovery document names endpoints.mailbox",
        requirement="VRM-HTTP-010",
    )
    assert isinstance(url, str)
    return url


@REGISTRY.check(
    "SEC-MAILBOX-POLL",
    title="The mailbox serves only a valid poll token of the mailbox's owner",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-011",),
    roles=(Role.VENDOR,),
)
async def mailbox_poll_tokens(ctx: CheckContext) -> None:
    """With mail waiting for a persona, the mailbox refuses: a token typed
    ``vrm+jws``; a token for another mailbox; a token signed by another
    pseudonym's key; an expired token — and serves none of the mail.
    A valid token then collects it."""
    from conformance.peers.buyers import buyer_side
    from conformance.peers.identity import new_pairwise

    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()), reply=False)
    expect_accepted(
        ctx, await persona.send(rfi, note="RFI without replyTo"), what="an RFI without replyTo"
    )
    url = _mailbox_url(ctx)
    owner = side.target_id
    _, stranger = new_pairwise()
    long_ago = persona.now() - timedelta(hours=2)
    # A request without credentials at all is BIND-MAILBOX-AUTH's (VRM-HTTP-020).
    forged: list[tuple[str, str, ErrorCode]] = [
        (
            "a token typed vrm+jws",
            poll_token(persona, owner, 0, typ=MESSAGE_TYP).decode(),
            ErrorCode.INVALID_TYP,
        ),
        (
            "a token for another mailbox",
            poll_token(persona, "https://another-party.vrm-protocol.example", 0).decode(),
            ErrorCode.WRONG_AUDIENCE,
        ),
        (
            "a token signed by another pseudonym's key",
            poll_token(persona, owner, 0, signer=stranger).decode(),
            ErrorCode.KEY_SENDER_MISMATCH,
        ),
        (
            "an expired token",
            poll_token(persona, owner, 0, issued=long_ago).decode(),
            ErrorCode.MESSAGE_EXPIRED,
        ),
    ]
    for what, token, code in forged:
        headers = {"Authorization": f"{POLL_AUTH_SCHEME} {token}"}
        try:
            reply = await request(
                ctx.session.http,
                ctx.session.transcript,
                "GET",
                f"{url}?after=0",
                headers=headers,
                note=f"forged poll: {what}",
            )
        except TargetUnreachable as error:
            ctx.fail("the mailbox answers", actual=error.reason, requirement="VRM-HTTP-011")
        ctx.expect(
            reply.status == code.http_status and reply.problem_code() == code.value,
            f"the mailbox refuses {what}",
            expected=f"{code.http_status} {code.value}",
            actual=f"{reply.status} {reply.problem_code() or ''}".strip(),
            requirement="VRM-HTTP-011",
        )
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        ctx.require(
            not (isinstance(answer, dict) and answer.get("messages")),
            f"the answer to {what} carries no mail",
            requirement="VRM-HTTP-011",
        )
    offer = await poll_mailbox(
        ctx,
        persona,
        lambda item: item.type == "offer",
        within=timedelta(seconds=ctx.options.reply_timeout),
    )
    ctx.expect(offer.ok, "a valid poll token collects the mail", actual=offer.error)


@REGISTRY.check(
    "MBX-KEPT-WITH-REPLY-TO",
    title="A message POSTed to replyTo is kept in the mailbox as well",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-010",),
    roles=(Role.VENDOR,),
)
async def kept_with_reply_to(ctx: CheckContext) -> None:
    """A persona with a ``replyTo`` inbox sends an RFI; once the offer arrived
    there, the same bytes are also in the persona's mailbox: a reply is kept
    until it expires whether or not it was delivered."""
    from conformance.peers.buyers import buyer_side

    side = await buyer_side(ctx)
    persona = side.new_persona()
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    expect_accepted(ctx, await persona.send(rfi, note="RFI with replyTo"), what="an RFI")
    posted = await persona.expect(
        lambda item: item.type == "offer" and item.via == "inbox",
        description="the offer is POSTed to the replyTo inbox",
        requirement="VRM-HTTP-007",
    )
    if posted.via != "inbox":
        ctx.skip("the offer did not arrive at the replyTo inbox")
    kept = await poll_mailbox(
        ctx,
        persona,
        lambda item: item.type == "offer" and item.id == posted.id,
        within=timedelta(seconds=ctx.options.reply_timeout),
    )
    ctx.require(
        kept.token == posted.token,
        "the mailbox keeps the very message POSTed to replyTo",
        expected=posted.digest,
        actual=kept.digest,
        requirement="VRM-HTTP-010",
    )


@REGISTRY.check(
    "MBX-UNSOLICITED-TO-REPLY-TO",
    title="A message that answers none of hers goes to her latest replyTo and stays in her mailbox",
    step=WIRE_STEP,
    requirements=("VRM-HTTP-030",),
    roles=(Role.VENDOR,),
)
async def unsolicited_to_latest_reply_to(ctx: CheckContext) -> None:
    """spec §11.4 (VRM-HTTP-030): after a deal, the vendor's terms assertion
    answers no message of hers; it is POSTed to the ``replyTo`` inbox of her
    latest message (the acceptance) and kept in her mailbox as well."""
    from conformance.checks.scenarios import await_terms, run_deal

    thread = await run_deal(ctx.session)
    assert thread.acceptance is not None
    reply_to = thread.acceptance.payload.get("replyTo")
    if not isinstance(reply_to, dict) or not reply_to.get("inbox"):
        ctx.skip("the suite's acceptance named no replyTo inbox")
    terms = await await_terms(thread)
    ctx.expect(
        terms.via == "inbox",
        "the terms assertion is POSTed to the replyTo inbox of her latest message",
        expected="inbox",
        actual=terms.via,
        requirement="VRM-HTTP-030",
    )
    kept = await poll_mailbox(
        ctx,
        thread.persona,
        lambda item: item.type == "terms-assertion" and item.id == terms.id,
        within=timedelta(seconds=ctx.options.reply_timeout),
    )
    ctx.require(
        kept.token == terms.token,
        "her mailbox keeps the very terms assertion POSTed to replyTo",
        expected=terms.digest,
        actual=kept.digest,
        requirement="VRM-HTTP-030",
    )
