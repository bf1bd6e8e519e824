"""The specification builder's one exception."""

from __future__ import annotations

__all__ = ["SpecBuildError"]


class SpecBuildError(Exception):
    """The specification cannot be built from its sources (the message says why)."""
