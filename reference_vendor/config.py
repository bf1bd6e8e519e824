"""The vendor agent's configuration and its signing key on disk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reference_vendor.catalogue import Catalogue
from vrm_agent.files import DataDirError, write_private_atomically
from vrm_protocol.http_binding import DeliveryPolicy
from vrm_protocol.keys import InvalidKeyError, SigningKey
from vrm_protocol.limits import DEFAULT_LIMITS, Limits
from vrm_protocol.models import Attestation

if TYPE_CHECKING:
    from reference_vendor.faults import VendorStrategies

__all__ = [
    "KEY_FILE",
    "LOCK_FILE",
    "STORE_FILE",
    "TEST_MODE_DELIVERY",
    "VendorConfig",
    "load_or_create_key",
]

#: The vendor's private signing key (JWK, mode 0600) inside the data directory.
KEY_FILE = "vendor-signing-key.jwk"
#: The vendor's SQLite store inside the data directory.
STORE_FILE = "vendor.sqlite3"
#: The lock file that keeps a second agent off the data directory (D10).
LOCK_FILE = "vendor.lock"
#: What test mode adds to the delivery allow-list: loopback (spec §11.8, §14.3).
TEST_MODE_DELIVERY = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class VendorConfig:
    """Everything :func:`reference_vendor.app.create_app` needs.

    Attributes:
        catalogue: what the party is and sells.
        data_dir: where the SQLite store and the key live (created if missing);
            ``None`` with a ``store_url``.
        store_url: a PostgreSQL URL (``postgresql://...``): the store and the
            signing key live in that database, which several processes of the
            vendor may serve at once; ``None``: SQLite in ``data_dir``.
        public_url: the party's base URL, which is also its party id (spec §3.2).
        test_mode: serve the conformance test driver (spec §14.3).
        faults: named faults (test mode only, see :mod:`reference_vendor.faults`).
        limits: the receiving limits, declared in discovery (spec §11.6).
        rate_per_second, burst: the token bucket per signing key.
        address_rate_per_second, address_burst: the token bucket per peer address.
        reply_delay: seconds between committing a reply and its first delivery
            attempt, so that a reply never overtakes the receipt of the message
            it answers.
        delivery_attempts: attempts before a reply's delivery is given up, in a
            relationship whose peer holds a deal.
        stranger_delivery_attempts: the same, in a relationship whose peer holds
            no deal yet (spec §11.8: anyone can name any replyTo).
        stranger_delivery_budget: failed deliveries a relationship whose peer
            holds no deal may cost in all, over every message; then its messages
            wait in the mailbox only.
        header_timeout: seconds a connection may take to deliver a request's
            headers (from its opening, or from the previous answer) before it
            is closed (spec §11.6).
        body_timeout: seconds a request's body may take to arrive before it is
            answered ``408 request-timeout`` (spec §11.6).
        max_connections: connections held open at once; more are answered
            ``503`` with ``Retry-After`` and closed.
        store_busy_timeout: seconds a write waits for a store another process
            holds locked before the request is answered ``503`` (spec §11.5).
        allow_delivery_to: the operator's allow-list (``host``, ``host:port``,
            ``[v6]:port``): hosts the agent may POST to over ``http`` and whatever
            their addresses (spec §11.8). Test mode adds loopback.
        sweep_interval: the longest the retention sweeper sleeps (it wakes when the
            earliest retention ends, and when data is stored or the clock moves).
        background_delivery: deliver replies from a background task (tests that
            drive delivery step by step through the test driver turn it off).
        operator_token: when set, ``POST /vrm/operator/service-notice`` with
            ``Authorization: Bearer <token>`` lets the operator send notices
            outside test mode.
    """

    catalogue: Catalogue
    data_dir: Path | None
    public_url: str
    store_url: str | None = None
    test_mode: bool = False
    faults: frozenset[str] = field(default_factory=frozenset)
    limits: Limits = DEFAULT_LIMITS
    rate_per_second: float = 10.0
    burst: int = 100
    address_rate_per_second: float = 100.0
    address_burst: int = 1000
    reply_delay: float = 0.25
    delivery_attempts: int = 8
    stranger_delivery_attempts: int = 3
    stranger_delivery_budget: int = 6
    allow_delivery_to: frozenset[str] = field(default_factory=frozenset)
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_connections: int = 512
    store_busy_timeout: float = 5.0
    sweep_interval: float = 3600.0
    background_delivery: bool = True
    operator_token: str | None = None
    #: The party's own attestations (spec §10.4), carried in its terms assertions.
    party_attestations: tuple[Attestation, ...] = ()

    @property
    def shared_store(self) -> bool:
        """Whether other processes of the vendor may serve the same store."""
        return self.store_url is not None

    @property
    def party_id(self) -> str:
        """The party id: the base URL without a trailing slash (spec §3.2)."""
        return self.public_url.rstrip("/")

    @property
    def strategies(self) -> VendorStrategies:
        """The strategies the agent runs with: production, with the named faults.

        Raises:
            FaultError: an unknown fault, or any fault outside test mode.
        """
        from reference_vendor.faults import CATALOGUE, VendorStrategies

        return CATALOGUE.apply(VendorStrategies(), self.faults, test_mode=self.test_mode)

    @property
    def delivery_policy(self) -> DeliveryPolicy:
        """Where the agent may POST what a peer asks it to (spec §11.8): the
        operator's allow-list, and loopback in test mode (the suite's and the
        demo's parties listen there).

        Raises:
            ValueError: an allow-list entry is malformed.
        """
        entries = set(self.allow_delivery_to)
        if self.test_mode:
            entries |= TEST_MODE_DELIVERY
        return DeliveryPolicy.from_entries(sorted(entries))


def load_or_create_key(path: Path, alg: str = "EdDSA") -> SigningKey:
    """The vendor's signing key: read from ``path``, or created there (mode 0600).

    The ``kid`` is the key's RFC 7638 thumbprint (spec §8.4), so the same key
    is published under the same ``kid`` after every restart. A new key is
    written atomically (D10): a crash leaves no key or the whole key, never an
    empty file that would block every later start.

    Raises:
        DataDirError: the file cannot be read or written, or holds no acceptable
            private JWK (one line for the operator).
    """
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as error:
        raise DataDirError(f"cannot read the signing key file {path}: {error}") from error
    if text is not None:
        try:
            key = SigningKey.from_private_jwk(json.loads(text))
        except (ValueError, InvalidKeyError) as error:
            what = "empty" if not text.strip() else "not a private JWK"
            raise DataDirError(
                f"the signing key file {path} is {what} ({str(error)[:120]}); restore it from "
                "a backup, or move it away to make a new key (the vendor's key then changes)"
            ) from error
        return key.with_kid(key.thumbprint())
    key = SigningKey.generate(alg)
    try:
        write_private_atomically(path, json.dumps(key.to_private_jwk(), indent=2).encode())
    except OSError as error:
        raise DataDirError(
            f"cannot write the signing key file {path}: {error.strerror or error}"
        ) from error
    return key.with_kid(key.thumbprint())
