"""The buyer agent's configuration and the files in her data directory."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from reference_buyer.courier import BUYER_BUDGET
from reference_buyer.faults import CATALOGUE, BuyerStrategies
from vrm_agent.net import FETCH_TIMEOUT_SECONDS, LOOPBACK
from vrm_agent.outbox import DeliveryBudget
from vrm_protocol.http_binding import INBOX_PATH, DeliveryPolicy
from vrm_protocol.keys import KeySet
from vrm_protocol.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "AGENT_FILE",
    "KEYS_DIR",
    "LETTERS_DIR",
    "LOCK_FILE",
    "BuyerConfig",
    "Decorrelation",
]

#: The lock a serving agent holds on her data directory (D10: one agent per store).
LOCK_FILE: Final = "serve.lock"
#: Where a serving agent records its address (and pid) for the other commands.
AGENT_FILE: Final = "agent.json"
#: Her pseudonyms' private keys, inside the data directory.
KEYS_DIR: Final = "keys"
#: The letters she printed, inside the data directory (unless told otherwise).
LETTERS_DIR: Final = "letters"


@dataclass(frozen=True, slots=True)
class Decorrelation:
    """How far the agent decorrelates messages that go to several parties at once
    (spec §12, VRM-PRIV-014): copies of one RFI or RFP, and the declines sent
    when an offer is accepted.

    Each copy waits a random pause of up to ``spread_seconds`` before it is
    composed and sent, and its ``created`` is set back by its own random whole
    number of seconds below ``backdate_seconds`` (distinct for every copy), so
    that neither the clock on the wire nor the moment of arrival pairs them.
    Tests and the demo set ``spread_seconds`` to 0 to stay fast; the copies'
    ``created`` still differ.
    """

    spread_seconds: float = 2.0
    backdate_seconds: int = 30

    def offsets(self, count: int, rng: random.Random) -> list[int]:
        """``count`` distinct backdating offsets in seconds, in random order."""
        window = max(self.backdate_seconds, count)
        return rng.sample(range(window), count)


@dataclass(frozen=True, slots=True)
class BuyerConfig:
    """Everything her agent needs besides her sharing policy.

    Attributes:
        data_dir: her personal data store, keys and letters (created 0700).
        public_url: her agent's base URL once it serves (its party id in
            discovery, the owner of its mailbox); ``None`` when it does not.
        inbox: give counterparties a reply address (``replyTo``) on her inbox;
            false: they keep replies in their mailboxes and she polls them
            (spec §11.4). Without ``public_url`` there is no inbox either way.
        test_mode: serve the conformance test driver (spec §14.3).
        faults: named faults (test mode only, see :mod:`reference_buyer.faults`).
        limits: the receiving limits, declared in discovery (spec §11.6).
        rate_per_second, burst: the token bucket per sender (charged once a
            message verified) and per address (charged before anything is read).
        body_timeout, header_timeout: seconds a request's body, or its headers,
            may take (spec §11.6).
        max_connections: connections held open at once (more are answered 503).
        allow_delivery_to: the operator's allow-list (``host``, ``host:port``):
            hosts her agent may reach over ``http`` and whatever their
            addresses (D6). Test mode adds loopback.
        fetch_timeout: the time bound of every fetch (D7).
        budget: the delivery budget of her messages (D6).
        decorrelation: how copies to several parties are decorrelated (spec §12).
        poll_interval: seconds between polls of the counterparties' mailboxes
            while she waits for answers (D5).
        store_busy_timeout: seconds a write waits for a store another process
            holds locked before the request is answered 503 (D11).
        letters_dir: where letters are printed (default: in the data directory).
        reply_address: the postal address her letters give for answers.
        terms_registries: the terms registries she trusts (spec §10.4).
    """

    data_dir: Path
    public_url: str | None = None
    inbox: bool = True
    test_mode: bool = False
    faults: frozenset[str] = field(default_factory=frozenset)
    limits: Limits = DEFAULT_LIMITS
    rate_per_second: float = 100.0
    burst: int = 200
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    max_connections: int = 512
    allow_delivery_to: frozenset[str] = field(default_factory=frozenset)
    fetch_timeout: float = FETCH_TIMEOUT_SECONDS
    budget: DeliveryBudget = BUYER_BUDGET
    decorrelation: Decorrelation = field(default_factory=Decorrelation)
    poll_interval: float = 5.0
    store_busy_timeout: float = 5.0
    letters_dir: Path | None = None
    reply_address: tuple[str, ...] = ("VRM reply service", "PO Box 1", "London", "EC1A 1AA")
    #: The terms registries she trusts, by issuer id (spec §10.4): with one, a third
    #: party must show that it signed the terms it asserts before she shares.
    terms_registries: Mapping[str, KeySet] = field(default_factory=dict)

    @property
    def party_id(self) -> str | None:
        """Her agent's party id: its base URL without a trailing slash (spec §3.2)."""
        return self.public_url.rstrip("/") if self.public_url is not None else None

    @property
    def inbox_url(self) -> str | None:
        """The inbox her reply addresses are under, if she gives counterparties one."""
        party = self.party_id
        return party + INBOX_PATH if party is not None and self.inbox else None

    @property
    def strategies(self) -> BuyerStrategies:
        """Production, with the named faults.

        Raises:
            FaultError: an unknown fault, or any fault outside test mode.
        """
        return CATALOGUE.apply(BuyerStrategies(), self.faults, test_mode=self.test_mode)

    @property
    def delivery_policy(self) -> DeliveryPolicy:
        """Where her agent may connect (D6): the operator's allow-list, and
        loopback in test mode.

        Raises:
            ValueError: an allow-list entry is malformed.
        """
        entries = set(self.allow_delivery_to)
        if self.test_mode:
            entries |= LOOPBACK
        return DeliveryPolicy.from_entries(sorted(entries))

    @property
    def letters(self) -> Path:
        """Where her letters are printed."""
        return self.letters_dir or self.data_dir / LETTERS_DIR
