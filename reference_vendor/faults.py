"""Named fault switches, for the conformance suite's negative self-tests.

A conformance suite that never fails proves nothing: the suite's own tests
start the reference vendor with one of these faults (``vendor serve
--test-mode --fault NAME``) and show that the check named here fails. They
are refused outside test mode, so a production agent cannot be started
broken by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["FAULTS", "FaultError", "check_faults"]

#: Fault name -> what the agent then does wrong (and the check that must catch it).
FAULTS: Final[dict[str, str]] = {
    "accept-expired-offer": (
        "honours an acceptance of an offer past its validUntil (VEN-ACCEPT-EXPIRED)"
    ),
    "skip-audience-check": ("accepts messages addressed to another party (SEC-AUDIENCE)"),
    "keep-data-after-retention": ("never deletes data whose retention has ended (VEN-RETENTION)"),
    "ignore-exit": (
        "acknowledges an exit and receipts the deletion, but keeps the data (VEN-EXIT-FINAL)"
    ),
    "wrong-receipt-digest": (
        "receipts name a digest other than the message's (VEN-RFI-RECEIPT, AUD-RECEIPTS)"
    ),
    "offer-over-budget": (
        "answers RFIs and RFPs with a total above the buyer's budget (VEN-RFI-OFFER)"
    ),
}


class FaultError(ValueError):
    """A fault switch was asked for where it is not allowed, or does not exist."""


def check_faults(names: Iterable[str], *, test_mode: bool) -> frozenset[str]:
    """Validate fault names.

    Raises:
        FaultError: an unknown name, or any fault outside test mode.
    """
    chosen = frozenset(names)
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise FaultError(f"unknown fault(s) {unknown}; known: {sorted(FAULTS)}")
    if chosen and not test_mode:
        raise FaultError("fault switches are allowed only with --test-mode")
    return chosen
