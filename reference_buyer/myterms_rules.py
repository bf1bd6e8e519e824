"""Her guards for her own terms (spec §6.70-§6.71): strategies.

Strategies, so that the suite's self-tests can start her agent with a guard
weakened (:mod:`reference_buyer.faults`) without a branch in production code.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Protocol

from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.models import TermsAgreementBody, TermsProfferBody

__all__ = [
    "AS_PROFFERED",
    "HOLDERS_ONLY",
    "MISLABELLED_NOTICES",
    "AgreementRule",
    "AnyAgreement",
    "AsProffered",
    "BreachRule",
    "DetailsRecipients",
    "Everyone",
    "HoldersOnly",
    "MislabelledNotices",
    "NoBreaches",
]


class AgreementRule(Protocol):
    """Which terms-agreements she takes (spec §6.71, VRM-MYT-004)."""

    def check(self, answer: TermsAgreementBody, proffer: TermsProfferBody | None) -> None:
        """Refuse ``answer`` unless it names the agreement of ``proffer`` (hers, as sent).

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        ...


class AsProffered:
    """The answer names exactly the agreement she proffered: id, version and digest."""

    def check(self, answer: TermsAgreementBody, proffer: TermsProfferBody | None) -> None:
        """Refuse an answer about another agreement than hers (spec §6.71, VRM-MYT-004).

        Raises:
            RemoteProtocolError: REFERENCE_MISMATCH.
        """
        if proffer is None or answer.agreement != proffer.agreement:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                "the terms-agreement names another agreement than the one she proffered",
                path="/body/agreement",
            )


class AnyAgreement:
    """Takes any answer to her proffer (a fault)."""

    def check(self, answer: TermsAgreementBody, proffer: TermsProfferBody | None) -> None:
        """Nothing refused."""
        return None


AS_PROFFERED: Final = AsProffered()


class BreachRule(Protocol):
    """Which refusals of hers are breaches of her terms to report and record (spec §6.9)."""

    def is_breach(self, code: ErrorCode) -> bool:
        """Whether a message refused with ``code`` breaches her terms."""
        ...


class MislabelledNotices:
    """A notice that is not what it says it is (spec §6.9, VRM-MYT-007)."""

    def is_breach(self, code: ErrorCode) -> bool:
        """``mislabelled-notice`` only."""
        return code is ErrorCode.MISLABELLED_NOTICE


class NoBreaches:
    """Refuses quietly: nothing reported, nothing recorded (a fault)."""

    def is_breach(self, code: ErrorCode) -> bool:
        """Never."""
        return False


MISLABELLED_NOTICES: Final = MislabelledNotices()


class DetailsRecipients(Protocol):
    """Who is sent a change of her details, with which items (spec §6.73)."""

    def items_for(self, changed: Collection[str], held: Collection[str]) -> tuple[str, ...]:
        """The changed items to send to a party that holds ``held`` (by her sharing
        log); none: the party is not sent the change."""
        ...


class HoldersOnly:
    """Only the parties that hold a changed item, only the items each holds (VRM-MYT-010)."""

    def items_for(self, changed: Collection[str], held: Collection[str]) -> tuple[str, ...]:
        """``changed`` ∩ ``held``."""
        return tuple(item for item in changed if item in held)


class Everyone:
    """Every current relationship gets every changed item (a fault)."""

    def items_for(self, changed: Collection[str], held: Collection[str]) -> tuple[str, ...]:
        """``changed``."""
        return tuple(changed)


HOLDERS_ONLY: Final = HoldersOnly()
