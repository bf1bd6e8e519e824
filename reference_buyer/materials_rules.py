"""Printed material by post (spec §6.60, §6.61): her guard on the dispatch.

A strategy, so that the suite's self-tests can start her agent taking any
dispatch (:mod:`reference_buyer.faults`) without a branch in the production
code. In production a dispatch must list only material her request asked for
(VRM-MAT-003).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from vrm_protocol.errors import ErrorCode, RemoteProtocolError

__all__ = ["AS_ASKED", "AnyDispatch", "AsAsked", "DispatchRule"]


class DispatchRule(Protocol):
    """Whether a dispatch's material is what she asked for."""

    def check(self, asked: Collection[str], sent: Sequence[str]) -> None:
        """Refuse material she did not ask for.

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        ...


@dataclass(frozen=True, slots=True)
class AsAsked:
    """Production: every code dispatched is one she asked for (VRM-MAT-003)."""

    def check(self, asked: Collection[str], sent: Sequence[str]) -> None:
        extra = sorted(set(sent) - set(asked))
        if extra:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                f"the dispatch lists material she did not ask for: {', '.join(extra)}",
                path="/body/materials",
            )


@dataclass(frozen=True, slots=True)
class AnyDispatch:
    """A fault: any dispatch is taken, whatever it says was sent."""

    def check(self, asked: Collection[str], sent: Sequence[str]) -> None:
        return None


AS_ASKED: Final[DispatchRule] = AsAsked()
