"""Crash safety of the reference vendor as a real process (spec §11.3, §9.3).

"Acknowledged means durable": a ``202`` is sent only after the message, its
receipt and everything it caused are committed to SQLite (WAL,
``synchronous=FULL``) in one transaction. So after a SIGKILL at any moment

* every message that got a ``202`` is known: the identical resend is answered
  ``200`` with the original receipt, byte for byte (spec §11.3);
* the replies it owed are still there (here: in the mailbox, spec §11.4);
* a message that got no ``202`` is either wholly applied (its resend is ``200``)
  or not at all (its resend is ``202``, once) — never half;
* another message under a used (sender, id) is a ``replay`` (spec §9.3);
* the SQLite file passes ``PRAGMA integrity_check``.

Real processes, real keys, 127.0.0.1 only; each test is bounded by timeouts.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import (
    HTTP_TIMEOUT,
    AgentProcess,
    Agents,
    Buyer,
    Posted,
    discovery,
    integrity_check,
    mailbox,
    post_token,
    vendor_keys,
)
from vrm_protocol.canonical import b64url_decode, message_digest
from vrm_protocol.codec import decode
from vrm_protocol.keys import key_resolver

#: No test may run longer than this (the machine is shared; the HTTP and process
#: timeouts inside are shorter still).
TEST_DEADLINE_SECONDS = 28.0
BURST_SIZE = 50


def _message_id(token: bytes) -> str:
    return str(json.loads(b64url_decode(token.split(b".")[1]))["id"])


async def _offers_for(
    session: aiohttp.ClientSession, vendor: AgentProcess, buyer: Buyer
) -> list[dict[str, Any]]:
    return [m for m in await mailbox(session, vendor.base_url, buyer) if m["type"] == "offer"]


async def _assert_receipt_regards(
    session: aiohttp.ClientSession,
    vendor: AgentProcess,
    receipt: bytes,
    buyer: Buyer,
    token: bytes,
) -> None:
    """The receipt is signed by the vendor's published key and binds the exact bytes sent."""
    keys = await vendor_keys(session, vendor.base_url)
    received = decode(
        receipt, resolve_key=key_resolver(keys), receiver=buyer.id, now=datetime.now(UTC)
    )
    assert received.payload["type"] == "receipt"
    assert received.payload["from"] == vendor.base_url
    assert received.payload["body"]["regarding"] == {
        "id": _message_id(token),
        "digest": message_digest(token),
    }


async def test_an_acknowledged_message_survives_sigkill(agents: Agents) -> None:
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        first = agents.start()
        buyer = Buyer(first.base_url)
        rfi = buyer.rfi()
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            accepted = await post_token(session, first.base_url, rfi)
            assert accepted.status == 202, accepted.body[:300]
            # Killed the instant the 202 is read: nothing after the commit may matter.
            first.kill()
        assert integrity_check(first.store_path) == "ok"

        second = agents.start(port=first.port)
        assert second.base_url == first.base_url  # the same party (spec §3.2)
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            assert (await discovery(session, second.base_url))["id"] == first.base_url
            await _assert_receipt_regards(session, second, accepted.body, buyer, rfi)

            resent = await post_token(session, second.base_url, rfi)
            assert resent.status == 200
            assert resent.body == accepted.body  # the original receipt, byte for byte

            # The offer the RFI caused was committed with it (one transaction).
            offers = await _offers_for(session, second, buyer)
            assert len(offers) == 1, second.log()
            assert offers[0]["body"]["inResponseTo"] == {
                "id": _message_id(rfi),
                "digest": message_digest(rfi),
            }
            assert offers[0]["thread"] == _message_id(rfi)

            # Another message under the same (sender, id) is a replay (spec §9.3)...
            replay = buyer.rfi(message_id=_message_id(rfi), budget_max="33000")
            assert replay != rfi
            refused = await post_token(session, second.base_url, replay)
            assert refused.status == 409
            assert refused.problem()["code"] == "replay"
            # ...and leaves no trace.
            assert len(await _offers_for(session, second, buyer)) == 1


async def _send_all(
    base_url: str, tokens: list[bytes], vendor: AgentProcess, rng: random.Random
) -> list[Posted | None]:
    """POST every token concurrently and SIGKILL the vendor at a seeded point: a
    random delay after a random number of ``202`` answers, so the kill may fall
    between a commit and its answer as well as between messages. ``None`` for a
    message whose answer never came."""
    kill_after = rng.randint(1, len(tokens) - 5)
    kill_delay = rng.uniform(0.0, 0.02)
    answers: list[Posted | None] = [None] * len(tokens)
    accepted = 0
    loop = asyncio.get_running_loop()

    async def send(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        try:
            answer = await post_token(session, base_url, tokens[index])
        except (aiohttp.ClientError, TimeoutError):
            return  # the vendor died under this request: no answer
        # Any answer read, even one read after the kill, was really sent by the
        # vendor: a 202 in it is an acknowledgement and must hold.
        answers[index] = answer
        if answer.status == 202:
            accepted += 1
            if accepted == kill_after:
                loop.call_later(kill_delay, vendor.kill)

    connector = aiohttp.TCPConnector(limit=len(tokens))
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT, connector=connector) as session:
        await asyncio.gather(*(send(index, session) for index in range(len(tokens))))
    vendor.kill()  # when every message was answered before the chosen point
    return answers


@pytest.mark.parametrize("seed", [20261123, 7])
async def test_sigkill_during_a_burst_loses_nothing_acknowledged(agents: Agents, seed: int) -> None:
    rng = random.Random(seed)
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        first = agents.start()
        buyers = [Buyer(first.base_url) for _ in range(BURST_SIZE)]
        tokens = [buyer.rfi() for buyer in buyers]
        answers = await _send_all(first.base_url, tokens, first, rng)
        for answer in answers:
            # Before the kill, the inbox answers only 202 (all are valid, fresh, distinct).
            assert answer is None or answer.status == 202, answer
        assert any(answer is not None for answer in answers)
        assert integrity_check(first.store_path) == "ok"

        second = agents.start(port=first.port)
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            first_resends = await asyncio.gather(
                *(post_token(session, second.base_url, token) for token in tokens)
            )
            second_resends = await asyncio.gather(
                *(post_token(session, second.base_url, token) for token in tokens)
            )
            for index, (answer, resent, again) in enumerate(
                zip(answers, first_resends, second_resends, strict=True)
            ):
                if answer is not None:
                    # Acknowledged before the kill: known, with the original receipt.
                    assert (resent.status, resent.body) == (200, answer.body), index
                else:
                    # Unanswered: wholly applied (200) or not at all (202) — then known.
                    assert resent.status in (200, 202), (index, resent)
                    await _assert_receipt_regards(
                        session, second, resent.body, buyers[index], tokens[index]
                    )
                assert (again.status, again.body) == (200, resent.body), index

            # Not half-applied: every RFI caused exactly its one offer, no more.
            for buyer, token in zip(buyers, tokens, strict=True):
                offers = await _offers_for(session, second, buyer)
                assert [o["body"]["inResponseTo"]["digest"] for o in offers] == [
                    message_digest(token)
                ], second.log()
        assert second.stop() == 0
        assert integrity_check(second.store_path) == "ok"


async def test_replay_is_refused_across_a_graceful_restart(agents: Agents) -> None:
    async with asyncio.timeout(TEST_DEADLINE_SECONDS):
        first = agents.start()
        buyer = Buyer(first.base_url)
        rfi = buyer.rfi()
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            accepted = await post_token(session, first.base_url, rfi)
            assert accepted.status == 202
        assert first.stop() == 0  # SIGTERM: a graceful stop
        assert integrity_check(first.store_path) == "ok"

        second = agents.start(port=first.port)
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            resent = await post_token(session, second.base_url, rfi)
            assert (resent.status, resent.body) == (200, accepted.body)

            replay = buyer.rfi(message_id=_message_id(rfi), budget_max="31000")
            refused = await post_token(session, second.base_url, replay)
            assert refused.status == 409
            problem = refused.problem()
            assert problem["code"] == "replay"
            assert problem["type"].endswith("/replay")
            assert problem["status"] == 409
        assert second.stop() == 0

        # And once more after a second restart: the refusal is durable too.
        third = agents.start(port=first.port)
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            refused_again = await post_token(session, third.base_url, replay)
            assert refused_again.status == 409
            assert refused_again.problem()["code"] == "replay"
            assert len(await _offers_for(session, third, buyer)) == 1
