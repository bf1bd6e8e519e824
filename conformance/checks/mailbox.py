"""Collecting replies from the target's mailbox with a signed poll token (spec §11.4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from conformance.client import TargetUnreachable, request
from conformance.context import CheckContext
from conformance.peers.buyers import Persona
from conformance.peers.inbox import Inbound
from conformance.peers.messages import sign, timestamp
from vrm_protocol.http_binding import POLL_AUTH_SCHEME, POLL_TYP

__all__ = ["poll_mailbox", "poll_token"]

#: Poll tokens live at most five minutes (spec §11.4).
POLL_LIFETIME = timedelta(minutes=4)


def poll_token(persona: Persona, owner: str, after: int) -> bytes:
    """A ``vrm-poll+jws`` token: the persona asks ``owner`` for messages after ``after``."""
    now = persona.now()
    payload: dict[str, Any] = {
        "from": persona.id,
        "to": [owner],
        "created": timestamp(now),
        "expires": timestamp(now + POLL_LIFETIME),
        "after": after,
    }
    return sign(payload, persona.signer, typ=POLL_TYP)


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
        requirement="HTTP-MAILBOX",
    )
    assert isinstance(url, str)
    owner = persona.side.target_id
    cursor = 0
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
            ctx.fail("the mailbox answers", actual=error.reason, requirement="HTTP-MAILBOX")
        ctx.require(
            reply.status == 200,
            "the mailbox answers a valid poll with 200",
            actual=reply.describe() if hasattr(reply, "describe") else reply.status,
            requirement="HTTP-MAILBOX",
        )
        try:
            document = reply.json()
        except ValueError:
            ctx.fail("the mailbox answers JSON", requirement="HTTP-MAILBOX")
        messages = document.get("messages") if isinstance(document, dict) else None
        ctx.require(
            isinstance(messages, list) and isinstance(document.get("next"), int),
            "the mailbox answers {messages: [...], next: int}",
            actual=document,
            requirement="HTTP-MAILBOX",
        )
        assert isinstance(messages, list)
        for item in messages:
            inbound = await persona.side.core.accept(str(item).encode(), via="mailbox")
            if inbound.receiver == persona.id and predicate(inbound):
                return inbound
        cursor = int(document["next"])
        if asyncio.get_running_loop().time() >= deadline:
            ctx.fail(
                "the reply appears in the mailbox",
                expected=f"within {within}",
                actual="nothing matching",
                requirement="HTTP-MAILBOX",
            )
        await asyncio.sleep(0.2)
