"""Her consent changes applied by the vendor (``test_consents.py``, unchanged) on
PostgreSQL: the ``make_config`` fixture gives the vendor a fresh database of the
session's real PostgreSQL server instead of a SQLite data directory."""

from __future__ import annotations

from typing import Any

from tests.vendor.test_consents import *  # noqa: F403  (the same tests, collected here)
from tests.vendor.test_lifecycle_postgres import make_config  # noqa: F401  (the fixture)


async def test_the_vendor_here_runs_on_postgresql(vendor: Any) -> None:
    from reference_vendor.app import AGENT
    from reference_vendor.store_postgres import PostgresVendorStore

    assert isinstance(vendor.server.app[AGENT].store, PostgresVendorStore)
