"""Her consents as ISO/IEC TS 27560 consent records in the W3C Data Privacy
Vocabulary (DPV), JSON-LD, so that other consent tools can read them.

The mapping follows the DPV guide "Consent Records and Receipts as per ISO/IEC
TS 27560:2023 using DPV" (https://w3id.org/dpv/guides/consent-27560, §8):

* One ``dpv:ConsentRecord`` per consent: one data item she agreed (or
  refused) to share with one party in one terms response. ``dct:identifier``
  is a UUID derived from the terms response and the item (the same in every
  export); ``dct:conformsTo`` names the DPV-27560 record schema (§8.1.1).
* ``dpv:hasDataSubject`` is her pairwise pseudonym with that party (never her
  name: the record says no more than the relationship did); the party is
  ``dpv:hasDataController`` and ``dpv:hasRecipient``.
* ``dpv:hasNotice`` is the party's signed terms assertion she answered (a
  ``dpv:ConsentNotice``: its message id, and the terms document it names).
* ``dpv:hasProcess`` holds the processing as it stands now: the item
  (``dpv:hasPersonalData``), the purposes left (``dpv:hasPurpose``), and how
  long the party said it keeps it (``dpv:hasStorageCondition`` with a
  ``dpv:StorageDuration``).
* ``dpv:hasConsentStatus`` lists the lifecycle events in order (§8.5): each
  with its type, ``dpv:isIndicatedAtTime``, ``dpv:isIndicatedBy``,
  ``dpv:hasIndicationMethod``, the purposes it left, and ``dct:references``
  to the signed messages that carry it (her terms response; her consent
  change and the party's consent receipt; her exit notice and its
  acknowledgement). DPV has no "narrowed" or "widened" status: a narrowing
  or widening is ``dpv:RenewedConsentGiven`` for the purposes that remain
  (DPV's valid-for-processing status given again, for a new scope), and a
  withdrawal, or her exit, is ``dpv:ConsentWithdrawn``; an item she refused
  at the welcome is ``dpv:ConsentRefused``. The last event is the status now.

Pure reading of her store, through its typed methods.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from reference_buyer.store import (
    BuyerStore,
    ConsentChangeRecord,
    ConsentRecord,
    ExitRecord,
)
from vrm_protocol.errors import ProtocolError
from vrm_protocol.models import ConsentChangeItem, TermsAssertionMessage
from vrm_protocol.state_machine import Direction

__all__ = [
    "CONTEXT",
    "GIVEN",
    "REFUSED",
    "RENEWED",
    "SCHEMA",
    "WITHDRAWN",
    "consent_records",
]

#: The namespaces the DPV-27560 guide uses (§3).
CONTEXT: Final[Mapping[str, str]] = {
    "dpv": "https://w3id.org/dpv#",
    "dct": "http://purl.org/dc/terms/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}
#: The record schema (DPV-27560 §8.1.1).
SCHEMA: Final = "https://w3id.org/dpv/schema/dpv-27560#record"
GIVEN: Final = "dpv:ConsentGiven"
RENEWED: Final = "dpv:RenewedConsentGiven"
WITHDRAWN: Final = "dpv:ConsentWithdrawn"
REFUSED: Final = "dpv:ConsentRefused"
#: Derives each record's identifier from its terms response and item.
_RECORDS: Final = uuid.UUID("6b1c3f5e-2f7d-4c47-9a51-0d6f3c9e8a20")


@dataclass
class _Consent:
    """One consent as it is rebuilt from her store, event by event."""

    peer: str
    subject: str
    item: str
    consent: ConsentRecord
    purposes: tuple[str, ...]
    kept_for: str | None
    events: list[dict[str, Any]] = field(default_factory=list)


def _event(
    kind: str,
    at: str,
    method: str,
    references: Sequence[str | None],
    purposes: Sequence[str],
    description: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "@type": kind,
        "dpv:isIndicatedAtTime": at,
        "dpv:isIndicatedBy": "dpv:DataSubject",
        "dpv:hasIndicationMethod": method,
        "dpv:hasPurpose": list(purposes),
        "dct:references": [{"@id": ref} for ref in references if ref],
    }
    if description:
        event["dct:description"] = description
    return event


async def _notice(
    store: BuyerStore, consent: ConsentRecord
) -> tuple[dict[str, Any], Mapping[str, str]]:
    """The terms assertion as a consent notice, and item -> retention period."""
    notice: dict[str, Any] = {
        "@id": consent.assertion_id,
        "@type": "dpv:ConsentNotice",
        "dct:identifier": consent.assertion_digest,
    }
    kept: dict[str, str] = {}
    entry = await store.entry(consent.assertion_id, direction=Direction.RECEIVED)
    if entry is not None and entry.token is not None:
        try:
            message = entry.model()
        except ProtocolError:
            message = None
        if isinstance(message, TermsAssertionMessage):
            terms = message.body.terms
            notice["dct:references"] = {
                "@id": terms.url,
                "dct:identifier": f"{terms.id}@{terms.version}",
                "dct:date": entry.at,
            }
            kept = {request.item: request.retention.period for request in message.body.requests}
    return notice, kept


def _receipt_note(change: ConsentChangeRecord) -> str:
    if change.receipt_verified is None:
        return "the party's consent receipt is awaited"
    if change.receipt_verified:
        return "the party's consent receipt checked out against her sharing log"
    return "the party's consent receipt did NOT check out: " + "; ".join(change.problems)


def _apply_change(current: _Consent, change: ConsentChangeRecord, item: ConsentChangeItem) -> None:
    """One change of hers to this consent's item, as its next event."""
    references = [change.change_id, change.receipt_id]
    method = f"consent-change ({item.action}), a signed message of hers"
    if item.action == "withdraw":
        current.purposes = ()
        kind = WITHDRAWN
    elif item.action == "narrow":
        current.purposes = tuple(p for p in current.purposes if p in (item.purposes or ()))
        kind = RENEWED
    else:
        current.purposes = (
            *current.purposes,
            *(p for p in item.purposes or () if p not in current.purposes),
        )
        kind = RENEWED
    current.events.append(
        _event(kind, change.at, method, references, current.purposes, _receipt_note(change))
    )


def _apply_exit(current: _Consent, exit_record: ExitRecord) -> None:
    current.purposes = ()
    outcome = {
        None: "the party's acknowledgement is awaited",
        True: "the party's deletion receipt checked out against her sharing log",
        False: "the party's deletion receipt did NOT check out: " + "; ".join(exit_record.problems),
    }[exit_record.receipt_verified]
    current.events.append(
        _event(
            WITHDRAWN,
            exit_record.at,
            "exit-notice, a signed message of hers ending the relationship",
            [exit_record.notice_id, exit_record.ack_id],
            (),
            outcome,
        )
    )


def _record(current: _Consent) -> dict[str, Any]:
    identifier = uuid.uuid5(_RECORDS, f"{current.consent.response_id}|{current.item}")
    process: dict[str, Any] = {
        "@type": "dpv:Process",
        "dpv:hasPersonalData": current.item,
        "dpv:hasPurpose": list(current.purposes),
        "dpv:hasDataController": {"@id": current.peer},
        "dpv:hasRecipient": {"@id": current.peer},
        "dpv:hasLegalBasis": "dpv:ExpressedConsent",
    }
    if current.kept_for is not None:
        process["dpv:hasStorageCondition"] = {
            "@type": "dpv:StorageDuration",
            "dpv:hasDuration": {"@type": "dpv:TemporalDuration", "rdf:value": current.kept_for},
        }
    return {
        "@id": f"urn:uuid:{identifier}",
        "@type": "dpv:ConsentRecord",
        "dct:identifier": str(identifier),
        "dct:conformsTo": SCHEMA,
        "dpv:hasDataSubject": {"@id": current.subject},
        "dpv:hasDataController": {"@id": current.peer},
        "dpv:hasProcess": process,
        "dpv:hasConsentControl": {
            "@type": ["dpv:WithdrawConsent"],
            "dct:description": "her agent withdraws, narrows or widens it with a signed "
            "consent-change message at any time in the relationship",
        },
        "dpv:hasConsentStatus": current.events,
    }


async def consent_records(store: BuyerStore) -> dict[str, Any]:
    """Every consent in her store as a DPV-27560 consent record (JSON-LD).

    Raises:
        StoreUnavailable: her store cannot be read now.
    """
    subjects = {
        relationship.peer: relationship.identifier for relationship in await store.relationships()
    }
    changes = await store.consent_changes()
    exits = await store.exits()
    records: list[dict[str, Any]] = []
    for consent in await store.consents():
        notice, kept = await _notice(store, consent)
        subject = subjects.get(consent.peer, "dpv:DataSubject")
        method = "terms-response, a signed message of hers"
        for grant in consent.accepted:
            current = _Consent(
                consent.peer, subject, grant.item, consent, grant.purposes, kept.get(grant.item)
            )
            current.events.append(
                _event(GIVEN, consent.at, method, [consent.response_id], grant.purposes)
            )
            # Her changes and her exit, applied in the order she made them.
            later: list[tuple[str, int, ConsentChangeRecord | ExitRecord]] = [
                (change.at, n, change)
                for n, change in enumerate(changes)
                if change.peer == consent.peer and change.at >= consent.at
            ]
            later += [
                (exit_record.at, len(changes) + n, exit_record)
                for n, exit_record in enumerate(exits)
                if exit_record.peer == consent.peer and exit_record.at >= consent.at
            ]
            for _, _, event in sorted(later, key=lambda entry: entry[:2]):
                if isinstance(event, ExitRecord):
                    _apply_exit(current, event)
                    continue
                for raw in event.changes:
                    try:
                        item = ConsentChangeItem.model_validate(raw)
                    except ValidationError:
                        continue
                    if item.item == grant.item:
                        _apply_change(current, event, item)
            record = _record(current)
            record["dpv:hasNotice"] = notice
            records.append(record)
        for withheld in consent.refused:
            current = _Consent(
                consent.peer, subject, withheld.item, consent, (), kept.get(withheld.item)
            )
            current.events.append(
                _event(REFUSED, consent.at, method, [consent.response_id], (), withheld.reason)
            )
            record = _record(current)
            record["dpv:hasNotice"] = notice
            records.append(record)
    return {"@context": dict(CONTEXT), "@graph": records}
