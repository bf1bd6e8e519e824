"""Appointments, service records and extras (``test_appointments.py``,
``test_service_records.py``, ``test_addons.py``, unchanged) with the dealer on
PostgreSQL: a fresh database of the session's real server instead of a SQLite
data directory."""

from __future__ import annotations

import pytest

from tests.transaction.test_addons import *  # noqa: F403  (the same tests, collected here)
from tests.transaction.test_appointments import *  # noqa: F403
from tests.transaction.test_service_records import *  # noqa: F403


@pytest.fixture
def dealer_store_url(postgres_url: str) -> str:
    return postgres_url
