"""The protocol's fixed vocabulary: version, media types, roles, message types
and the ten lifecycle steps.

These names are wire values.  Each enum cites the specification section that
defines it; the drift check (``python -m tools.codegen --check``) fails when this module and
``schemas/`` disagree about the set of message types.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ATTESTATION_TYP",
    "MESSAGE_MEDIA_TYPE",
    "MESSAGE_TYP",
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "LifecycleStep",
    "MessageType",
    "Role",
]

#: The protocol version this library speaks (spec §15).
PROTOCOL_VERSION = "1.0"
SUPPORTED_VERSIONS: frozenset[str] = frozenset({PROTOCOL_VERSION})

#: JWS ``typ`` of a protocol message (spec §8.2; RFC 8725 §3.11 explicit typing).
MESSAGE_TYP = "vrm+jws"
#: JWS ``typ`` of a third-party attestation carried inside a message (spec §10.3).
ATTESTATION_TYP = "vrm-attestation+jws"
#: HTTP media type of a message in transit (spec §11.3).
MESSAGE_MEDIA_TYPE = "application/vrm+jws"


class Role(StrEnum):
    """The two sides of a relationship (spec §3).

    A third party that presents its own terms of sharing (a sound-system
    maker, a manufacturer's programme) takes the ``vendor`` role in its own
    relationship with the individual.
    """

    BUYER = "buyer"
    VENDOR = "vendor"

    @property
    def peer(self) -> Role:
        """The other side."""
        return Role.VENDOR if self is Role.BUYER else Role.BUYER


class MessageType(StrEnum):
    """Every message type of protocol version 1.0 (spec §6; §6.17 is the deal refusal).

    The five core documents come first; the others are the replies a complete
    lifecycle needs.
    """

    # The five core documents.
    PERSONAL_RFI = "personal-rfi"
    PERSONAL_RFP = "personal-rfp"
    OFFER = "offer"
    TERMS_ASSERTION = "terms-assertion"
    EXIT_NOTICE = "exit-notice"
    # Replies and the rest of the lifecycle.
    OFFER_ACCEPTANCE = "offer-acceptance"
    OFFER_DECLINE = "offer-decline"
    DEAL_CONFIRMATION = "deal-confirmation"
    # Added in the way of the other types until MessageType is generated from
    # the schema files (tools.codegen): the vendor cannot honour an acceptance.
    DEAL_REFUSAL = "deal-refusal"
    TERMS_RESPONSE = "terms-response"
    SERVICE_NOTICE = "service-notice"
    SERVICE_RESPONSE = "service-response"
    SUPPORT_REQUEST = "support-request"
    SUPPORT_RESOLUTION = "support-resolution"
    EXIT_ACKNOWLEDGEMENT = "exit-acknowledgement"
    PROBLEM_REPORT = "problem-report"
    RECEIPT = "receipt"


class LifecycleStep(StrEnum):
    """The ten steps of the customer-supplier engagement framework (spec §4).

    Each names the individual's view first and the vendor's second where the
    two differ ("Search" / "Target").
    """

    SEARCH = "search"
    ENGAGE = "engage"
    NEGOTIATE = "negotiate"
    TRANSACT = "transact"
    WELCOME = "welcome"
    SERVICING = "servicing"
    DEVELOPMENT = "development"
    PROBLEMS = "problems"
    EXIT = "exit"
    REENGAGEMENT = "re-engagement"
