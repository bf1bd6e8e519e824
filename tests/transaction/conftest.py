"""Both reference agents, real, in this process, over HTTP on 127.0.0.1: the
dealer of seed 000 (its SQLite store, its key) and Sally's agent, with a credit
union whose ability-to-pay attestations the dealer trusts. Each test brings a
relationship to the deal it needs with the agents' own actions."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve as serve_buyer
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_profile, sally_rfi_body, sally_rfp_body
from reference_vendor.app import serve as serve_vendor
from reference_vendor.catalogue import TrustedIssuer, load_catalogue
from reference_vendor.config import VendorConfig
from vrm_agent.server import Serving
from vrm_protocol.attestations import issue_attestation
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.vocabulary import MessageType

CREDIT_UNION = "https://credit-union.example"
REPLY_SECONDS = 10.0


def _socket() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class Pair:
    """The dealer and Sally, and how to reach the dealer's test driver."""

    buyer: BuyerAgent
    dealer: str
    http: aiohttp.ClientSession

    async def driver(self, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST an instruction to the dealer's test driver."""
        async with self.http.post(self.dealer + TEST_DRIVER_PREFIX + path, json=body) as answer:
            return answer.status, dict(await answer.json(content_type=None))

    async def pseudonym(self) -> str:
        """Her pseudonym with the dealer."""
        known = await self.buyer.pseudonyms.known(self.dealer)
        assert known is not None
        return known.identifier

    async def deal(self, *, finance: bool = False) -> str:
        """RFI, RFP with her trade-in, the dealer's binding offer accepted, the deal
        confirmed; the offer id. Paid by the first financing plan with ``finance``
        (with the credit union's attestation), else by bank transfer."""
        buyer = self.buyer
        now = buyer.clock.now()
        await buyer.buying.send_rfis([self.dealer], sally_rfi_body(now))
        await buyer.wait_for(
            lambda e: e.type is MessageType.OFFER and e.peer == self.dealer, within=REPLY_SECONDS
        )
        sent, _ = await buyer.buying.send_rfp([self.dealer], sally_rfp_body(buyer.clock.now()))
        rfp_id = sent[self.dealer].message.message_id
        # The offer answering her RFP: binding, with her trade-in and financing.
        entry = await buyer.wait_for(
            lambda e: e.type is MessageType.OFFER and e.parent == rfp_id, within=REPLY_SECONDS
        )
        offer_id = entry.message_id
        payment = None if finance else {"method": "bank-transfer"}
        await buyer.buying.accept(offer_id, payment=payment)
        await buyer.wait_for(
            lambda e: e.type is MessageType.DEAL_CONFIRMATION and e.peer == self.dealer,
            within=REPLY_SECONDS,
        )
        return offer_id


PairFactory = Callable[..., Awaitable[Pair]]


@pytest.fixture
def dealer_store_url() -> str | None:
    """The dealer's PostgreSQL store, or ``None`` for SQLite in a data directory."""
    return None


@pytest.fixture
async def pairs(tmp_path: Path, dealer_store_url: str | None) -> AsyncIterator[PairFactory]:
    """``start(vendor_faults=(), buyer_faults=())``: the dealer and Sally, running."""
    issuer_key = SigningKey.generate("ES256")
    running: list[Serving] = []
    buyers: list[BuyerAgent] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(
        vendor_faults: tuple[str, ...] = (), buyer_faults: tuple[str, ...] = ()
    ) -> Pair:
        vendor_sock, dealer = _socket()
        catalogue = load_catalogue("dealer-mayfair").with_trusted_issuers(
            (TrustedIssuer(CREDIT_UNION, KeySet([issuer_key.public()]).to_jwks()),)
        )
        vendor_config = VendorConfig(
            catalogue=catalogue,
            data_dir=tmp_path / "dealer" if dealer_store_url is None else None,
            store_url=dealer_store_url,
            public_url=dealer,
            test_mode=True,
            reply_delay=0.0,
            faults=frozenset(vendor_faults),
        )
        running.append(await serve_vendor(vendor_config, vendor_sock))
        buyer_sock, base = _socket()
        config = BuyerConfig(
            data_dir=tmp_path / "sally",
            public_url=base,
            test_mode=True,
            decorrelation=Decorrelation(spread_seconds=0.0),
            faults=frozenset(buyer_faults),
        )

        def ability_to_pay(subject: str, audience: str) -> Mapping[str, str]:
            return issue_attestation(
                kind="ability-to-pay",
                subject=subject,
                audience=[audience],
                claims={
                    "range": {
                        "min": {"amount": "20000", "currency": "GBP"},
                        "max": {"amount": "30000", "currency": "GBP"},
                    },
                    "purpose": "new car loan",
                },
                issuer_key=issuer_key,
                issuer_id=CREDIT_UNION,
                now=agent.clock.now() - timedelta(seconds=1),
            )

        agent = await BuyerAgent.open(config, load_policy(), ability_to_pay=ability_to_pay)
        buyers.append(agent)
        for category, value in sally_profile().items():
            await agent.store.set_profile(category, value)
        running.append(await serve_buyer(agent, buyer_sock))
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        sessions.append(http)
        return Pair(agent, dealer, http)

    yield start
    for http in sessions:
        await http.close()
    for serving in reversed(running):
        await serving.close()
    for agent in buyers:
        await agent.close()
