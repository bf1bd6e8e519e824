"""A vendor leaving the market (``test_leaving.py``, unchanged) on PostgreSQL: the
export's history is read from the PostgreSQL store's messages."""

from __future__ import annotations

from tests.vendor.test_leaving import *  # noqa: F403  (the same tests, collected here)
from tests.vendor.test_lifecycle_postgres import make_config  # noqa: F401  (PostgreSQL)
