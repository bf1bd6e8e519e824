"""Verified terms signatories: her agent checks who signed the terms before sharing
(spec §10.4; seed 000 step 5).

A party asserting terms may carry, in the assertion's ``attestations``, a
``terms-signatory`` attestation from a terms registry: that it signed the
standard agreement it asserts. Her agent verifies every one of them before it
shares anything under those terms (VRM-ATT-012): the registry is one she
trusts, the token verifies, its subject is the asserting party itself (the
message's sender and ``body.party.id``) and it names the asserted terms. Once
she trusts a registry, a third party (the sound-system maker) must present one
(VRM-ATT-013): its word alone is not enough for her data to leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final, Protocol

from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import KeySet
from vrm_protocol.models import TermsAssertionMessage
from vrm_protocol.party_attestations import TERMS_SIGNATORY, verify_terms_signatory

__all__ = ["ANY_SIGNATORY", "VERIFIED_SIGNATORIES", "SignatoryRule", "VerifiedSignatories"]


class SignatoryRule(Protocol):
    """Whether a terms assertion's signatories let her share (spec §10.4)."""

    def check(
        self, message: TermsAssertionMessage, registries: Mapping[str, KeySet], now: datetime
    ) -> int:
        """The number of verified signatory attestations.

        Raises:
            RemoteProtocolError: UNTRUSTED_ISSUER, ATTESTATION_INVALID or
                ATTESTATION_MISSING: she shares nothing.
        """
        ...


class VerifiedSignatories:
    """Every signatory attestation verified and bound to the asserting party; one
    required of a third party once she trusts a registry."""

    def check(
        self, message: TermsAssertionMessage, registries: Mapping[str, KeySet], now: datetime
    ) -> int:
        """See :class:`SignatoryRule`."""
        body = message.body
        party = message.from_
        if body.party.id != party:
            raise RemoteProtocolError(
                ErrorCode.ATTESTATION_INVALID,
                "the assertion speaks for another party than its sender",
                path="/body/party/id",
            )
        terms = body.terms.model_dump(mode="json")
        verified = 0
        for index, attestation in enumerate(body.attestations or ()):
            if attestation.kind != TERMS_SIGNATORY:
                continue
            try:
                verify_terms_signatory(
                    attestation.model_dump(mode="json"),
                    trusted_registries=registries,
                    party=party,
                    terms=terms,
                    now=now,
                )
            except RemoteProtocolError as error:
                raise RemoteProtocolError(
                    error.code, error.detail, path=f"/body/attestations/{index}"
                ) from error
            verified += 1
        if registries and body.party.role == "third-party" and not verified:
            raise RemoteProtocolError(
                ErrorCode.ATTESTATION_MISSING,
                "a third party must show a terms registry's attestation that it signed the "
                "terms it asserts before she shares under them",
                path="/body/attestations",
            )
        return verified


class _AnySignatory:
    """Fault only: every signatory taken at its word."""

    def check(
        self, message: TermsAssertionMessage, registries: Mapping[str, KeySet], now: datetime
    ) -> int:
        return len(message.body.attestations or ())


VERIFIED_SIGNATORIES: Final = VerifiedSignatories()
ANY_SIGNATORY: Final = _AnySignatory()
