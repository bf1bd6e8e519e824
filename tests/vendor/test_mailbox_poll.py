"""A counterparty's mailbox, polled the way an agent without a reachable inbox
collects its replies (:func:`vrm_agent.mailbox.poll`; spec §11.4, D5, D7): the
reference vendor on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformance.peers import bodies
from reference_vendor.app import AGENT, create_app
from reference_vendor.config import VendorConfig
from vrm_agent.mailbox import poll
from vrm_agent.net import LOOPBACK, FetchRefused, client_session
from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.http_binding import MAILBOX_PATH, DeliveryPolicy
from vrm_protocol.keys import PairwiseIdentity, key_resolver
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE


async def test_replies_are_collected_from_the_mailbox_on_the_owners_origin(
    aiohttp_server: Any,
    unused_tcp_port: int,
    make_config: Callable[..., VendorConfig],
) -> None:
    port = unused_tcp_port
    owner = f"http://127.0.0.1:{port}"
    config = make_config(public_url=owner)
    server = await aiohttp_server(create_app(config), host="127.0.0.1", port=port)
    agent = server.app[AGENT]
    sally = PairwiseIdentity.generate()
    now = agent.clock.now()
    rfi = build_message(
        "personal-rfi", bodies.personal_rfi_body(now), sender=sally.identifier, to=[owner], now=now
    )
    policy = DeliveryPolicy.from_entries(LOOPBACK)
    async with client_session(policy) as session:
        async with session.post(
            owner + "/vrm/inbox",
            data=encode(rfi, sally.signing_key),
            headers={"Content-Type": MESSAGE_MEDIA_TYPE},
        ) as answer:
            assert answer.status == 202
        page = await poll(
            session,
            policy,
            url=owner + MAILBOX_PATH,
            owner=owner,
            poller=sally.identifier,
            key=sally.signing_key,
            after=0,
            now=now,
        )
        [token] = page.tokens
        assert page.next is not None
        assert page.next > 0
        offer = decode(
            token, resolve_key=key_resolver(agent.key_set), receiver=sally.identifier, now=now
        )
        assert offer.message.type == "offer"
        again = await poll(
            session,
            policy,
            url=owner + MAILBOX_PATH,
            owner=owner,
            poller=sally.identifier,
            key=sally.signing_key,
            after=page.next,
            now=now,
        )
        assert again.tokens == ()
        with pytest.raises(FetchRefused, match="origin"):
            await poll(
                session,
                policy,
                url="http://127.0.0.2:1" + MAILBOX_PATH,
                owner=owner,
                poller=sally.identifier,
                key=sally.signing_key,
                after=0,
                now=now,
            )
