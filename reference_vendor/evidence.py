"""Re-engagement with what she kept (seed 003 step 10; spec §6.1 ``evidence``).

When she comes back, her RFI or RFP may carry signed messages of the earlier
relationship that she kept: the deal confirmation, an invoice, the service
notices. The vendor's deleted copy is not needed: it verifies each as a
message it signed itself, with its key history (a key retired after the
message was created still verifies it, spec §13.4), and relies only on those
that verify (VRM-RET-005). It uses them in its answer: the offer names the
earlier deal and gives its returning-customer terms (VRM-RET-006).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

import orjson

from vrm_protocol.canonical import b64url_decode
from vrm_protocol.codec import decode
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.keys import evidence_resolver
from vrm_protocol.models import (
    Condition,
    DealConfirmationMessage,
    Message,
    OfferBody,
    parse_message_dict,
)

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = [
    "VERIFIED",
    "Evidence",
    "EvidenceReader",
    "Verified",
    "credit_evidence",
    "verified_evidence",
]


@dataclass(frozen=True, slots=True)
class Evidence:
    """The evidence a request carried: what verified as the vendor's own, and what did not."""

    verified: tuple[Message, ...]
    refused: tuple[str, ...]

    @property
    def deals(self) -> tuple[DealConfirmationMessage, ...]:
        """The deal confirmations among what verified."""
        return tuple(m for m in self.verified if isinstance(m, DealConfirmationMessage))


def verified_evidence(vendor: VendorAgent, tokens: Sequence[str] | None) -> Evidence:
    """Each token verified as a message the vendor signed (spec §6.1, §13.4): its
    signature under the vendor's keys current or retired after it was created,
    ``from`` the vendor itself. Pure but for the key set."""
    verified: list[Message] = []
    refused: list[str] = []
    for index, token in enumerate(tokens or ()):
        try:
            # The payload names its own creation time; the signature binds it,
            # so a message cannot claim a time before its key's retirement.
            raw = token.encode()
            unverified = parse_message_dict(orjson.loads(b64url_decode(raw.split(b".")[1])))
            created = parse_timestamp(unverified.created)
            # Addressed to her (an earlier pseudonym, perhaps): no audience of ours.
            received = decode(
                raw,
                resolve_key=evidence_resolver(vendor.key_set, created),
                receiver=None,
                now=created,
            )
        except (ProtocolError, ValueError, IndexError, orjson.JSONDecodeError) as error:
            refused.append(f"evidence {index}: {error}")
            continue
        if received.message.from_ != vendor.party_id:
            refused.append(f"evidence {index}: not a message of {vendor.party_id}")
            continue
        verified.append(received.message)
    return Evidence(tuple(verified), tuple(refused))


def credit_evidence(offer: OfferBody, evidence: Evidence) -> OfferBody:
    """``offer`` naming the earlier deals the evidence proves (VRM-RET-006)."""
    if not evidence.deals:
        return offer
    named = ", ".join(
        f"{m.body.deal.id} of {m.created[:10]} ({m.body.deal.total.currency} "
        f"{m.body.deal.total.amount})"
        for m in evidence.deals
    )
    condition = Condition(
        kind="other",
        description=(
            f"Returning customer: our earlier deal {named}, from the signed confirmation "
            "you kept and shared; the loyalty terms of this offer rest on it."
        ),
    )
    return offer.model_copy(update={"conditions": (*(offer.conditions or ()), condition)})


class EvidenceReader(Protocol):
    """How the vendor reads the evidence of a request (a fault may trust it unread)."""

    def read(self, vendor: VendorAgent, tokens: Sequence[str] | None) -> Evidence:
        """What it relies on, and what it does not."""
        ...


class Verified:
    """:func:`verified_evidence`."""

    def read(self, vendor: VendorAgent, tokens: Sequence[str] | None) -> Evidence:
        """:func:`verified_evidence`."""
        return verified_evidence(vendor, tokens)


VERIFIED: Final = Verified()
