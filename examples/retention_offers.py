"""Retention without surveillance: the manufacturer's touchpoints (seed 004), between real agents.

Dave bought his car through his own agent. The carmaker wants him back: news
of a new model, a test drive, an extended warranty before the original one
ends, loyalty, promotions for his area. In the CRM world the carmaker decides
all of that from what it gathered about him. Here Dave decided first, in his
terms-response to the manufacturer: which notification categories he allows,
and which data he shares.

The manufacturer runs as its own agent (``vrm vendor serve --catalogue
manufacturer``, a separate process with its own store, over HTTP on
127.0.0.1); Dave's and Erin's buyer agents run here, each with its own inbox
server and personal data store. Each touchpoint goes out only within what its
owner chose; what does not is recorded by the manufacturer with its reason:

- Dave allows new models, events and warranty offers, not promotions: the
  promotion for his area is not sent.
- Erin allows promotions too, but shares no area: the promotion for her area
  is not sent either.
- Dave leaves (safety and recalls only afterwards): nothing more is sent.

Run it:

    python examples/retention_offers.py [OUT_DIR]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve as serve_agent
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.journey import Journey, running_vendors
from reference_buyer.journey_retention import (
    MANUFACTURER_CATALOGUE,
    NOTIFICATIONS,
    RetentionOutcome,
    register_and_run_touchpoints,
)
from reference_buyer.policy import load_policy
from vrm_agent.clock import AgentClock
from vrm_agent.net import LOOPBACK
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.vocabulary import MessageType

#: How long a buyer waits for any one message.
WITHIN = 15.0


@contextlib.asynccontextmanager
async def buyer(name: str, out: Path) -> AsyncIterator[BuyerAgent]:
    """A buyer agent with its own store and its own inbox server on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    config = BuyerConfig(
        data_dir=out / name,
        public_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
        allow_delivery_to=LOOPBACK,
        decorrelation=Decorrelation(spread_seconds=0.0),
    )
    agent = await BuyerAgent.open(config, load_policy(), clock=AgentClock())
    await agent.store.set_profile("vehicle.model", "Toyota Prius 1.8 Hybrid Excel")
    await agent.store.set_profile("location.home-area", "NW3")
    try:
        running = await serve_agent(agent, sock)
        try:
            yield agent
        finally:
            await running.close()
    finally:
        await agent.close()


def show(who: str, outcome: RetentionOutcome) -> None:
    print(f"\n{who} allows: {', '.join(outcome.notifications)}")
    for touchpoint in outcome.touchpoints:
        if touchpoint.sent:
            print(f"  sent: {touchpoint.code} ({touchpoint.kind}, {touchpoint.category})")
        else:
            print(f"  not sent: {touchpoint.code} ({touchpoint.category}): {touchpoint.reason}")


def trust_nobody(out: Path) -> Path:
    """An issuer file naming an issuer nobody here uses: the manufacturer trusts no one."""
    out.mkdir(parents=True, exist_ok=True)
    trust_file = out / "issuer.json"
    key = SigningKey.generate("ES256")
    trust_file.write_text(
        json.dumps({"issuer": "https://nobody.example", "jwks": KeySet([key.public()]).to_jwks()})
    )
    return trust_file


async def run(out: Path) -> int:
    trust_file = trust_nobody(out)
    journey = Journey(out, Console())
    async with (
        running_vendors([MANUFACTURER_CATALOGUE], out, trust_file, journey) as vendors,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
    ):
        manufacturer = vendors[MANUFACTURER_CATALOGUE].url
        print(f"The manufacturer's agent: {manufacturer}")

        async def driver(path: str, body: dict[str, Any]) -> Any:
            async with http.post(manufacturer + TEST_DRIVER_PREFIX + path, json=body) as answer:
                answer.raise_for_status()
                return await answer.json()

        async with buyer("dave", out) as dave, buyer("erin", out) as erin:
            outcome = await register_and_run_touchpoints(dave, manufacturer, driver, within=WITHIN)
            show("Dave", outcome)
            outcome = await register_and_run_touchpoints(
                erin,
                manufacturer,
                driver,
                within=WITHIN,
                notifications=(*NOTIFICATIONS, "promotions"),
            )
            show("Erin", outcome)

            print("\nDave leaves the manufacturer; afterwards safety and recalls only:")
            await dave.owning.exit(
                manufacturer,
                reason="need-changed",
                reengagement={"allowed": True, "topics": ["safety", "recall"]},
            )
            await dave.wait_for(
                lambda e: e.type is MessageType.EXIT_ACKNOWLEDGEMENT and e.peer == manufacturer,
                within=WITHIN,
            )
            pseudonym = await dave.pseudonyms.known(manufacturer)
            assert pseudonym is not None
            answer = await driver("/touchpoints", {"buyer": pseudonym.identifier})
            for touchpoint in answer["touchpoints"]:
                print(f"  not sent: {touchpoint['code']}: {touchpoint['reason']}")
            sent_after_exit = [t for t in answer["touchpoints"] if t["sent"]]
            recorded = len(await driver_state(http, manufacturer))
            print(f"\nThe manufacturer recorded {recorded} touchpoints not sent, with the reasons.")
            return 1 if sent_after_exit else 0


async def driver_state(http: aiohttp.ClientSession, base: str) -> list[Any]:
    async with http.get(base + TEST_DRIVER_PREFIX + "/state") as answer:
        answer.raise_for_status()
        document = await answer.json()
    suppressed = document["suppressedNotices"]
    assert isinstance(suppressed, list)
    return suppressed


def main() -> int:
    """Run into OUT_DIR (default: a temporary directory); 0 when all went as chosen."""
    if len(sys.argv) > 1:
        return asyncio.run(run(Path(sys.argv[1])))
    with tempfile.TemporaryDirectory() as out:
        return asyncio.run(run(Path(out)))


if __name__ == "__main__":
    sys.exit(main())
