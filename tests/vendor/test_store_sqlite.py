"""The vendor's SQLite store beyond the contract: what it refuses to open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reference_vendor.store import VENDOR_SCHEMA, SqliteVendorStore
from vrm_agent.sqlite import PROTOCOL_SCHEMA
from vrm_agent.store import StoreError


def test_the_vendor_brings_both_components_to_their_latest_version(tmp_path: Path) -> None:
    store = SqliteVendorStore(tmp_path / "v.sqlite3")
    try:
        assert store.schema_versions() == {
            "vrm_agent": len(PROTOCOL_SCHEMA.steps),
            "reference_vendor": len(VENDOR_SCHEMA.steps),
        }
    finally:
        store.close_blocking()


def test_the_store_of_the_vendor_before_the_runtime_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES (1), (2), (3)")
    with pytest.raises(StoreError, match="earlier version") as refused:
        SqliteVendorStore(path)
    assert "\n" not in str(refused.value)
