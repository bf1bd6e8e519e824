"""The vendor's whole life cycle (``test_lifecycle.py``, unchanged) on PostgreSQL.

Every test of ``test_lifecycle.py`` is collected again here, where the
``make_config`` fixture gives the vendor a fresh database of the session's real
PostgreSQL server (``--store``) instead of a SQLite data directory: the same
answers, the same mailbox, the same state, on either store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reference_vendor.catalogue import TrustedIssuer, load_catalogue
from reference_vendor.config import VendorConfig
from tests.vendor.conftest import VENDOR_ID, Issuer
from tests.vendor.test_lifecycle import *  # noqa: F403  (the same tests, collected here)
from vrm_protocol.keys import KeySet


@pytest.fixture
def make_config(issuer: Issuer, postgres_url: str) -> Callable[..., VendorConfig]:
    def make(catalogue: str = "dealer-mayfair", **options: Any) -> VendorConfig:
        loaded = load_catalogue(catalogue).with_trusted_issuers(
            (TrustedIssuer(issuer.id, KeySet([issuer.key.public()]).to_jwks()),)
        )
        options.setdefault("reply_delay", 0.0)
        options.setdefault("test_mode", True)
        options.setdefault("public_url", VENDOR_ID)
        return VendorConfig(catalogue=loaded, data_dir=None, store_url=postgres_url, **options)

    return make


async def test_the_vendor_here_runs_on_postgresql(vendor: Any) -> None:
    from reference_vendor.app import AGENT
    from reference_vendor.store_postgres import PostgresVendorStore

    assert isinstance(vendor.server.app[AGENT].store, PostgresVendorStore)
