"""The specification's section map (§1 to §18) and the anchors of its headings.

The map is fixed: the prose sources in ``spec/src`` must use exactly these
numbers and titles for their level-1 and level-2 headings, so that every
"spec §N.M" citation in code, schemas and requirements means one thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.vocabulary import MessageType

__all__ = [
    "MESSAGE_SECTION",
    "SECTION_MAP",
    "SECTION_REFERENCE",
    "Section",
    "section_anchor",
    "slug",
]


@dataclass(frozen=True, slots=True)
class Section:
    """One numbered section of the map."""

    number: str
    title: str

    @property
    def level(self) -> int:
        """1 for "§8", 2 for "§8.1"."""
        return self.number.count(".") + 1

    @property
    def anchor(self) -> str:
        """The HTML id of the section's heading."""
        return section_anchor(self.number)


def section_anchor(number: str) -> str:
    """The HTML id of the heading of section ``number`` ("8.1" -> "sec-8.1")."""
    return f"sec-{number}"


def slug(text: str) -> str:
    """A lower-case, hyphenated id fragment for ``text``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


#: The sections of §6, one per message type, numbered by the type's unit in
#: the registry (``6.N``): a new type is placed where its unit says, never
#: listed here.
_MESSAGE_SECTIONS: Final[tuple[tuple[str, MessageType], ...]] = tuple(
    (spec.section, spec.type)
    for spec in sorted(MESSAGE_TYPES.values(), key=lambda spec: int(spec.section.split(".")[1]))
)
if len({number for number, _ in _MESSAGE_SECTIONS}) != len(_MESSAGE_SECTIONS):
    raise ImportError("two message types name the same section of §6")

_MAP: Final[tuple[tuple[str, str], ...]] = (
    ("1", "Introduction and goals"),
    ("2", "Terminology and conformance language"),
    ("3", "Roles and identities"),
    ("3.1", "Buyers: pairwise pseudonyms"),
    ("3.2", "Vendors and third parties"),
    ("4", "The lifecycle"),
    ("5", "Envelope"),
    ("5.1", "Members"),
    ("5.2", "Threads and parents"),
    ("5.3", "Addressing and audience"),
    ("5.4", "Extensions and unknown members"),
    ("6", "Messages"),
    *((number, str(kind)) for number, kind in _MESSAGE_SECTIONS),
    ("7", "State machine"),
    ("7.1", "States"),
    ("7.2", "Transitions"),
    ("7.3", "Participants"),
    ("7.4", "Offers"),
    ("7.5", "Exit and re-engagement"),
    ("8", "Signing profile"),
    ("8.1", "Algorithms"),
    ("8.2", "Protected header"),
    ("8.3", "Canonical payload"),
    ("8.4", "Keys and kid"),
    ("8.5", "Message digest"),
    ("8.6", "Processing order"),
    ("9", "Freshness and replay"),
    ("9.1", "Expiry and clock skew"),
    ("9.2", "Audience"),
    ("9.3", "Replay"),
    ("10", "Attestations"),
    ("10.1", "Ability to pay"),
    ("10.2", "Approval"),
    ("10.3", "Verification"),
    ("10.4", "Party attestations"),
    ("10.5", "Ability to pay without telling the issuer"),
    ("11", "HTTP binding"),
    ("11.1", "Discovery"),
    ("11.2", "JWKS"),
    ("11.3", "Inbox and receipts"),
    ("11.4", "Mailbox and poll token"),
    ("11.5", "Problem details"),
    ("11.6", "Limits and rate"),
    ("11.7", "Terms documents"),
    ("11.8", "Delivery policy"),
    ("11.9", "Granted reads"),
    ("11.10", "Directory"),
    ("11.11", "Approvals between agents"),
    ("12", "Privacy considerations"),
    ("12.1", "Observers and what they see"),
    ("12.2", "Correlation"),
    ("12.3", "Identification and disclosure"),
    ("12.4", "Data minimisation"),
    ("12.5", "Secondary use, retention and exit"),
    ("12.6", "The individual's own record"),
    ("13", "Security considerations"),
    ("13.1", "Threats and counter-measures"),
    ("13.2", "Request forgery through replyTo"),
    ("13.3", "Transport security"),
    ("13.4", "Keys: compromise and history"),
    ("13.5", "Denial of service"),
    ("13.6", "Time"),
    ("13.7", "Test mode"),
    ("14", "Conformance"),
    ("14.1", "The conformance suite"),
    ("14.2", "Test vectors"),
    ("14.3", "Test driver"),
    ("14.4", "Implementation reports"),
    ("15", "Versioning and extensions"),
    ("15.1", "Versions"),
    ("15.2", "Extensions"),
    ("15.3", "Registries"),
    ("16", "Registries"),
    ("16.1", "Registration policies"),
    ("16.2", "Media types and JWS types"),
    ("16.3", "Well-known URI"),
    ("16.4", "HTTP authentication scheme"),
    ("16.5", "Error codes"),
    ("16.6", "Message types"),
    ("16.7", "Purposes"),
    ("16.8", "Data categories"),
    ("16.9", "Notification categories"),
    ("16.10", "Terms documents"),
    ("17", "Worked example"),
    ("18", "References"),
    ("18.1", "Normative references"),
    ("18.2", "Informative references"),
)

#: Every section, in document order.
SECTION_MAP: Final[tuple[Section, ...]] = tuple(Section(number, title) for number, title in _MAP)

#: Section number -> section, for lookups.
SECTION_REFERENCE: Final[dict[str, Section]] = {section.number: section for section in SECTION_MAP}

#: Message type -> the number of its section in §6.
MESSAGE_SECTION: Final[dict[str, str]] = {str(kind): number for number, kind in _MESSAGE_SECTIONS}
