"""Three real agents in this process, over HTTP on 127.0.0.1: the dealer of seed
000, Sally's agent, and her husband's own buyer agent (his own store and keys)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve as serve_buyer
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_profile
from reference_vendor.app import serve as serve_vendor
from reference_vendor.catalogue import load_catalogue
from reference_vendor.config import VendorConfig
from vrm_agent.server import Serving


def _socket() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass
class Household:
    """The dealer, Sally's agent and her husband's agent, running."""

    dealer: str
    sally: BuyerAgent
    husband: BuyerAgent
    husband_url: str
    sally_url: str
    http: aiohttp.ClientSession


async def _buyer(data_dir: Path) -> tuple[BuyerAgent, Serving, str]:
    sock, base = _socket()
    config = BuyerConfig(
        data_dir=data_dir,
        public_url=base,
        test_mode=True,
        decorrelation=Decorrelation(spread_seconds=0.0),
    )
    agent = await BuyerAgent.open(config, load_policy())
    return agent, await serve_buyer(agent, sock), base


@pytest.fixture
async def household(tmp_path: Path) -> AsyncIterator[Household]:
    vendor_sock, dealer = _socket()
    dealer_serving = await serve_vendor(
        VendorConfig(
            catalogue=load_catalogue("dealer-mayfair"),
            data_dir=tmp_path / "dealer",
            public_url=dealer,
            test_mode=True,
            reply_delay=0.0,
        ),
        vendor_sock,
    )
    sally, sally_serving, sally_url = await _buyer(tmp_path / "sally")
    for category, value in sally_profile().items():
        await sally.store.set_profile(category, value)
    husband, husband_serving, husband_url = await _buyer(tmp_path / "husband")
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    try:
        yield Household(dealer, sally, husband, husband_url, sally_url, http)
    finally:
        await http.close()
        for serving in (husband_serving, sally_serving, dealer_serving):
            await serving.close()
        await husband.close()
        await sally.close()
