"""How the vendor answers her own terms (spec §6.70, §6.71) and her programme
enrolments (spec §6.72): its strategies.

A strategy, so that the suite's self-tests can start the vendor declining an
agreement its discovery document lists (:mod:`reference_vendor.faults`)
without a branch in the production code. In production the vendor agrees
exactly to the roster agreements its catalogue (and so its discovery
document) lists, and declines the others (VRM-MYT-003).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from vrm_protocol.models import AgreementRef, MessageRef, ProgrammeTerms
from vrm_protocol.myterms import agreement

__all__ = [
    "AS_LISTED",
    "BOUND_TO_ENROLMENT",
    "WHAT_IT_HOLDS",
    "AsListed",
    "BoundToEnrolment",
    "ClaimsAll",
    "DecliningAll",
    "DetailsReceipting",
    "MyTermsAnswer",
    "MyTermsPolicy",
    "ProgrammeBinding",
    "Unbound",
    "WhatItHolds",
]


@dataclass(frozen=True, slots=True)
class MyTermsAnswer:
    """The decision on one proffer, and why."""

    decision: Literal["agree", "decline"]
    reason: str | None = None


class MyTermsPolicy(Protocol):
    """Whether the vendor agrees to an agreement she proffers."""

    def answer(self, proffered: AgreementRef, listed: Collection[tuple[str, str]]) -> MyTermsAnswer:
        """The answer to a proffer of ``proffered``; ``listed`` are the
        ``(id, version)`` the discovery document lists under ``agreements``."""
        ...


class AsListed:
    """Agree to what the discovery document lists, by the roster's digest; decline the rest."""

    def answer(self, proffered: AgreementRef, listed: Collection[tuple[str, str]]) -> MyTermsAnswer:
        """``agree`` exactly when ``proffered`` is listed (spec §6.71, VRM-MYT-003)."""
        known = agreement(proffered.id, proffered.version)
        if (
            known is not None
            and known.digest == proffered.digest
            and (proffered.id, proffered.version) in listed
        ):
            return MyTermsAnswer("agree")
        return MyTermsAnswer(
            "decline", f"{proffered.id} {proffered.version} is not among the agreements we accept"
        )


class DecliningAll:
    """Declines every proffer, even of agreements it lists (a fault)."""

    def answer(self, proffered: AgreementRef, listed: Collection[tuple[str, str]]) -> MyTermsAnswer:
        """Always ``decline``."""
        return MyTermsAnswer("decline", "we do not take terms from customers")


AS_LISTED: Final = AsListed()


class ProgrammeBinding(Protocol):
    """What the vendor's terms for a programme say of the enrolment they answer."""

    def bind(self, code: str, enrolment: MessageRef) -> ProgrammeTerms | None:
        """The ``programme`` member of the terms answering ``enrolment``."""
        ...


class BoundToEnrolment:
    """The programme's code and her enrolment by its digest (spec §6.72, VRM-MYT-006)."""

    def bind(self, code: str, enrolment: MessageRef) -> ProgrammeTerms | None:
        """``{code, enrolment}``."""
        return ProgrammeTerms(code=code, enrolment=enrolment)


class Unbound:
    """Answers an enrolment with its general terms, naming no programme (a fault)."""

    def bind(self, code: str, enrolment: MessageRef) -> ProgrammeTerms | None:
        """Nothing."""
        return None


BOUND_TO_ENROLMENT: Final = BoundToEnrolment()


class DetailsReceipting(Protocol):
    """What the vendor's receipt of her details update lists as held (spec §6.74)."""

    def held(self, updated: Sequence[str], asked: Sequence[str]) -> tuple[str, ...]:
        """The ``held`` of the receipt: ``updated`` are the items it holds and
        updated, ``asked`` every item of her update."""
        ...


class WhatItHolds:
    """Exactly the items it holds under her consent and updated (VRM-MYT-009)."""

    def held(self, updated: Sequence[str], asked: Sequence[str]) -> tuple[str, ...]:
        """``updated``."""
        return tuple(updated)


class ClaimsAll:
    """Claims to hold every item of her update, held or not (a fault)."""

    def held(self, updated: Sequence[str], asked: Sequence[str]) -> tuple[str, ...]:
        """``asked``."""
        return tuple(dict.fromkeys(asked))


WHAT_IT_HOLDS: Final = WhatItHolds()
