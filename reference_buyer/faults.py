"""Named fault switches of the reference buyer, for the conformance suite's negative self-tests.

The same design as the reference vendor's (:mod:`reference_vendor.faults`):
the suite's own tests start the buyer with one of these faults (``buyer
serve --test-mode --fault NAME``) and show that the check named in the
fault's description fails. They are refused outside test mode, so a real
individual's agent cannot be started broken by accident.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from vrm_protocol.keys import KeyResolver, VerifyingKey

__all__ = ["FAULTS", "FaultError", "check_faults", "signature_not_checked"]

#: Fault name -> what the agent then does wrong (and the check that must catch it).
FAULTS: Final[dict[str, str]] = {
    "accept-without-verifying": (
        "the inbox accepts a message whose signature does not verify (SEC-SIG-TAMPERED)"
    ),
    "ignore-audience": (
        "the inbox accepts a message addressed to someone else, as if it were for the "
        "pseudonym the sender knows (SEC-AUDIENCE)"
    ),
    "share-identity-early": (
        "terms and notices of a party whose offer she has not accepted get identifying data "
        "as the policy allows (BUY-GUARD-TERMS-IDENTITY)"
    ),
    "any-notice": (
        "a service notice of any category is taken, whatever she allowed "
        "(BUY-GUARD-NOTICE-PREFERENCES)"
    ),
    "any-thread": (
        "a message is taken whatever thread or parent it names (BUY-GUARD-FOREIGN-THREAD)"
    ),
    "unbound-deal": (
        "a deal confirmation is taken whatever digest and acceptance it names "
        "(BUY-GUARD-DEAL-BINDING)"
    ),
    "pseudonym-oracle": (
        "a message to her pseudonym with another party is refused as not-a-participant, "
        "unlike one to a pseudonym nobody has (BUY-GUARD-PSEUDONYM-ORACLE)"
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


class _AnySignatureKey(VerifyingKey):
    """A public key whose ``verify`` accepts any signature (faults only)."""

    def verify(self, signing_input: bytes, signature: bytes) -> None:
        """Accept every signature: the signature stage (spec §8.4) is skipped."""
        return None


def signature_not_checked(resolve: KeyResolver) -> KeyResolver:
    """``resolve``, but every key it finds accepts any signature.

    For the ``accept-without-verifying`` fault only: every other stage of the
    receiving pipeline (header, key lookup, canonical payload, schema,
    key-sender binding, audience, freshness, replay) still applies.
    """

    def resolve_without_checking(kid: str) -> VerifyingKey:
        key = resolve(kid)
        members = {item.name: getattr(key, item.name) for item in dataclasses.fields(key)}
        return _AnySignatureKey(**members)

    return resolve_without_checking
