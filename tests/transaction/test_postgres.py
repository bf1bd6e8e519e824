"""Delivery, invoice and payment (``test_delivery.py``, ``test_invoice.py``,
unchanged) with the dealer on PostgreSQL: a fresh database of the session's
real server instead of a SQLite data directory."""

from __future__ import annotations

import pytest

from tests.transaction.test_delivery import *  # noqa: F403  (the same tests, collected here)
from tests.transaction.test_invoice import *  # noqa: F403


@pytest.fixture
def dealer_store_url(postgres_url: str) -> str:
    return postgres_url
