"""Her consents exported as ISO/IEC TS 27560 consent records in the W3C Data
Privacy Vocabulary (JSON-LD): ``vrm buyer consents --format dpv`` and the
dashboard's download. Her real agent and an in-test vendor over HTTP: she
answers the vendor's terms (given, and refused), narrows, then withdraws,
each change answered by a signed consent receipt; the records carry every
field the DPV-27560 guide marks as required, and their statuses follow the
events in order."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from reference_buyer.cli import buyer as buyer_cli
from reference_buyer.dpv import GIVEN, REFUSED, RENEWED, SCHEMA, WITHDRAWN, consent_records
from vrm_protocol.canonical import message_digest
from vrm_protocol.vocabulary import MessageType

from .conftest import InTestVendor, RunningBuyer, VendorFactory
from .test_guard import _deal, _terms, _terms_body

#: Every record holds these (DPV-27560 guide §8: the fields that MUST be present
#: and that her store can fill).
RECORD_FIELDS = (
    "@id",
    "@type",
    "dct:identifier",
    "dct:conformsTo",
    "dpv:hasDataSubject",
    "dpv:hasDataController",
    "dpv:hasNotice",
    "dpv:hasProcess",
    "dpv:hasConsentControl",
    "dpv:hasConsentStatus",
)
PROCESS_FIELDS = ("dpv:hasPersonalData", "dpv:hasPurpose", "dpv:hasRecipient")
EVENT_FIELDS = (
    "@type",
    "dpv:isIndicatedAtTime",
    "dpv:isIndicatedBy",
    "dpv:hasIndicationMethod",
    "dct:references",
)
VALID = {GIVEN, RENEWED}


async def _change(
    buyer: RunningBuyer, vendor: InTestVendor, change: dict[str, Any], applied: dict[str, Any]
) -> tuple[str, str]:
    """Her change, and the vendor's receipt for it: their message ids."""
    await buyer.agent.consents.change(vendor.id, [change])
    token, message = vendor.last(MessageType.CONSENT_CHANGE.value)
    ref = {"id": message["id"], "digest": message_digest(token)}
    body = {"change": ref, "applied": [applied], "retained": []}
    receipt, receipt_token = vendor.reply(message, MessageType.CONSENT_RECEIPT, body)
    assert (await buyer.post(receipt_token))[0] == 202
    return message["id"], receipt["id"]


def check_record(record: dict[str, Any]) -> list[str]:
    """What a record lacks, or where its statuses do not follow its events."""
    problems = [f"no {name}" for name in RECORD_FIELDS if name not in record]
    if record.get("@type") != "dpv:ConsentRecord" or record.get("dct:conformsTo") != SCHEMA:
        problems.append("not a DPV-27560 consent record")
    process = record.get("dpv:hasProcess", {})
    problems += [f"process has no {name}" for name in PROCESS_FIELDS if name not in process]
    events = record.get("dpv:hasConsentStatus", [])
    if not events:
        return [*problems, "no event"]
    for event in events:
        problems += [f"event has no {name}" for name in EVENT_FIELDS if name not in event]
    if events[0]["@type"] not in (GIVEN, REFUSED):
        problems.append("the first event neither gives nor refuses")
    times = [event["dpv:isIndicatedAtTime"] for event in events]
    if times != sorted(times):
        problems.append("events out of order")
    for before, after in itertools.pairwise(events):
        if before["@type"] not in VALID and after["@type"] == RENEWED:
            problems.append("renewed after it ended")
    # The processing as it stands is what the last event left.
    last = events[-1]
    if process.get("dpv:hasPurpose") != last.get("dpv:hasPurpose"):
        problems.append("the process's purposes are not the last event's")
    if last["@type"] not in VALID and process.get("dpv:hasPurpose"):
        problems.append("purposes left after consent ended")
    return problems


async def test_consents_export_as_dpv_records_whose_statuses_follow_the_events(
    buyer: RunningBuyer, start_vendor: VendorFactory, tmp_path: Path
) -> None:
    vendor = await start_vendor("Careful Motors")
    rfi = await _deal(buyer, vendor)
    body = _terms_body(vendor, ["contact.email", "contact.phone"])
    body["requests"][0]["purposes"] = ["servicing", "warranty"]
    assertion = await _terms(buyer, vendor, rfi, body)
    await buyer.agent.owning.answer_terms(assertion["id"])
    _, response = vendor.last("terms-response")
    accepted = {a["item"]: a["purposes"] for a in response["body"].get("accepted", [])}
    assert accepted.get("contact.email") == ["servicing", "warranty"], response["body"]

    narrow = await _change(
        buyer,
        vendor,
        {"item": "contact.email", "action": "narrow", "purposes": ["servicing"]},
        {"item": "contact.email", "purposes": ["servicing"], "deleted": False},
    )
    withdraw = await _change(
        buyer,
        vendor,
        {"item": "contact.email", "action": "withdraw"},
        {"item": "contact.email", "purposes": [], "deleted": True},
    )

    document = await consent_records(buyer.store)
    assert document["@context"]["dpv"] == "https://w3id.org/dpv#"
    records = {r["dpv:hasProcess"]["dpv:hasPersonalData"]: r for r in document["@graph"]}
    for record in records.values():
        assert check_record(record) == [], record
        assert record["dpv:hasDataController"] == {"@id": vendor.id}
        assert record["dpv:hasNotice"]["@id"] == assertion["id"]
    email = records["contact.email"]
    events = email["dpv:hasConsentStatus"]
    assert [e["@type"] for e in events] == [GIVEN, RENEWED, WITHDRAWN]
    assert [e["dpv:hasPurpose"] for e in events] == [["servicing", "warranty"], ["servicing"], []]
    references = [[r["@id"] for r in e["dct:references"]] for e in events]
    assert references == [[response["id"]], list(narrow), list(withdraw)]
    assert "checked out" in events[2]["dct:description"]
    assert email["dpv:hasProcess"]["dpv:hasStorageCondition"]["dpv:hasDuration"]["rdf:value"] == (
        "P2Y"
    )
    # Her pseudonym with the vendor, not her name.
    relationship = (await buyer.store.relationships())[0]
    assert email["dpv:hasDataSubject"] == {"@id": relationship.identifier}
    # Anything she refused at the welcome is a refused consent.
    for record in records.values():
        if record["dpv:hasConsentStatus"][0]["@type"] == REFUSED:
            assert record["dpv:hasProcess"]["dpv:hasPurpose"] == []
    # The same records from the command line, in the same order, with stable ids.
    # (In a thread: the command runs its own event loop.)
    result = await asyncio.to_thread(
        CliRunner().invoke,
        buyer_cli,
        ["consents", "--data-dir", str(buyer.agent.config.data_dir), "--format", "dpv"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == document
    out = tmp_path / "consents.jsonld"
    result = await asyncio.to_thread(
        CliRunner().invoke,
        buyer_cli,
        [
            "consents",
            "--data-dir",
            str(buyer.agent.config.data_dir),
            "--format",
            "dpv",
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text("utf-8")) == document
    text = await asyncio.to_thread(
        CliRunner().invoke, buyer_cli, ["consents", "--data-dir", str(buyer.agent.config.data_dir)]
    )
    assert f"{vendor.id} contact.email: ConsentWithdrawn [] (3 events)" in text.output
    assert out.stat().st_mode & 0o077 == 0


def test_a_missing_store_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(buyer_cli, ["consents", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no personal data store" in result.output
