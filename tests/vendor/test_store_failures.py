"""A store that cannot be written (D11): the vendor answers ``503
temporarily-unavailable`` with ``Retry-After``, logs one line, and applies
nothing, so that the sender's resend is processed as new once the store
recovers (spec §11.5, VRM-HTTP-014).

A real SQLite store locked by another connection, as an operator's shell or
a backup tool would lock it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from conformance.peers import bodies
from reference_vendor.app import create_app
from reference_vendor.config import STORE_FILE, VendorConfig
from tests.vendor.conftest import Buyer


async def test_a_locked_store_answers_503_logs_one_line_and_applies_nothing(
    aiohttp_client: Any,
    make_config: Callable[..., VendorConfig],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_config(store_busy_timeout=0.2)
    vendor = await aiohttp_client(create_app(config))
    buyer = Buyer(vendor)
    token = buyer.sign(buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now())))
    before = await (await vendor.get("/vrm/test-driver/state")).json()
    holder = sqlite3.connect(config.data_dir / STORE_FILE, isolation_level=None)
    caplog.clear()
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the store
        status, body, content_type = await buyer.post(token)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    problem = json.loads(body)
    assert (status, content_type) == (503, "application/problem+json")
    assert problem["code"] == "temporarily-unavailable"
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].exc_info is None
    assert await (await vendor.get("/vrm/test-driver/state")).json() == before
    # Nothing was applied: the very same bytes are accepted as new, not as a resend.
    assert (await buyer.post(token))[0] == 202


async def test_the_retry_after_of_a_503_is_set(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> None:
    config = make_config(store_busy_timeout=0.2)
    vendor = await aiohttp_client(create_app(config))
    buyer = Buyer(vendor)
    token = buyer.sign(buyer.compose("personal-rfi", bodies.personal_rfi_body(buyer.now())))
    holder = sqlite3.connect(config.data_dir / STORE_FILE, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        response = await vendor.post(
            "/vrm/inbox", data=token, headers={"Content-Type": "application/vrm+jws"}
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status == 503
    assert int(response.headers["Retry-After"]) >= 1
