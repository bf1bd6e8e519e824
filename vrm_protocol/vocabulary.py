"""The protocol's fixed vocabulary: version, media types, roles, message types
and the ten lifecycle steps.

These names are wire values.  Each enum cites the specification section that
defines it. :class:`MessageType` is generated from ``schemas/`` (one member per
message schema, ``python -m tools.codegen``, into
:mod:`vrm_protocol._generated_vocabulary`) and re-exported here: adding a
message type edits no list in this module; the drift check
(``python -m tools.codegen --check``) fails when the generated module and the
schemas disagree.
"""

from __future__ import annotations

from enum import StrEnum

from vrm_protocol._generated_vocabulary import MessageType

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
