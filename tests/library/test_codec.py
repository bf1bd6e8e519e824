"""The codec: outbound validation and signing, the inbound pipeline and its stage order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from vrm_protocol import codec, models
from vrm_protocol.canonical import b64url_encode, canonical_json, message_digest
from vrm_protocol.codec import (
    Received,
    build_message,
    decode,
    encode,
    new_message_id,
    timestamp,
)
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import MemoryReplayGuard, ReplayVerdict, parse_timestamp
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver
from vrm_protocol.models import OfferMessage, parse_message_dict, to_payload
from vrm_protocol.vocabulary import MESSAGE_TYP, MessageType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "schemas" / "examples").glob("*.json"))
VENDOR_URL = "https://prius-dealer.london.example"


def _load(path: Path) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return payload


class Parties:
    """A vendor (URL + JWKS) and a buyer pseudonym, as two agents would hold them."""

    def __init__(self) -> None:
        self.vendor_key = SigningKey.generate("EdDSA")
        self.vendor_keys = KeySet([self.vendor_key.public()])
        self.buyer = PairwiseIdentity.generate()

    def offer(self) -> dict[str, Any]:
        """The vendor's offer to the buyer."""
        payload = _load(ROOT / "schemas" / "examples" / "offer.binding-with-trade-in.json")
        payload["from"] = VENDOR_URL
        payload["to"] = [self.buyer.identifier]
        return payload

    def now(self, payload: dict[str, Any]) -> datetime:
        return parse_timestamp(payload["created"])

    def decode_offer(self, token: bytes, **overrides: Any) -> Received:
        arguments: dict[str, Any] = {
            "resolve_key": key_resolver(self.vendor_keys),
            "receiver": self.buyer.identifier,
            "now": self.now(self.offer()),
        }
        arguments.update(overrides)
        return decode(token, **arguments)


@pytest.fixture
def parties() -> Parties:
    return Parties()


def _forge(payload_bytes: bytes, key: SigningKey, header: dict[str, Any] | None = None) -> bytes:
    """A token signed over arbitrary payload bytes (what a faulty peer could send)."""
    protected = canonical_json(header or {"alg": key.alg, "kid": key.kid, "typ": MESSAGE_TYP})
    signing_input = f"{b64url_encode(protected)}.{b64url_encode(payload_bytes)}".encode("ascii")
    return signing_input + b"." + b64url_encode(key.sign(signing_input)).encode("ascii")


def _code(call: Any) -> ErrorCode:
    with pytest.raises(RemoteProtocolError) as caught:
        call()
    return caught.value.code


# -- round trips ----------------------------------------------------------------------------------


def test_an_offer_round_trips(parties: Parties) -> None:
    payload = parties.offer()
    token = encode(payload, parties.vendor_key)
    received = parties.decode_offer(token, replay=MemoryReplayGuard())
    assert isinstance(received.message, OfferMessage)
    assert received.payload == payload
    assert received.payload_bytes == canonical_json(payload)
    assert received.digest == message_digest(token)
    assert received.signer_kid == parties.vendor_key.kid
    assert received.header == {"alg": "EdDSA", "kid": parties.vendor_key.kid, "typ": MESSAGE_TYP}
    assert received.replay is ReplayVerdict.NEW
    with pytest.raises(AttributeError):
        received.digest = "x"  # type: ignore[misc]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_round_trips_from_a_pseudonym(path: Path) -> None:
    buyer = PairwiseIdentity.generate()
    payload = _load(path)
    payload["from"] = buyer.identifier
    token = encode(payload, buyer.signing_key)
    received = decode(
        token, resolve_key=key_resolver(None), receiver=payload["to"][0], now=_now(payload)
    )
    assert to_payload(received.message) == payload


def _now(payload: dict[str, Any]) -> datetime:
    return parse_timestamp(payload["created"]) + timedelta(seconds=30)


def test_a_model_and_its_payload_encode_to_the_same_bytes(parties: Parties) -> None:
    payload = parties.offer()
    message = parse_message_dict(payload)
    assert encode(message, parties.vendor_key) == encode(payload, parties.vendor_key)


# -- outbound refusals ----------------------------------------------------------------------------


def test_an_invalid_message_is_never_signed(parties: Parties) -> None:
    payload = parties.offer()
    payload["body"]["price"]["total"]["amount"] = 21400
    with pytest.raises(LocalProtocolError) as caught:
        encode(payload, parties.vendor_key)
    assert caught.value.code is ErrorCode.SCHEMA_INVALID
    assert caught.value.path == "/body/price/total/amount"


def test_signing_for_someone_else_is_refused(parties: Parties) -> None:
    payload = parties.offer()
    payload["from"] = parties.buyer.identifier
    with pytest.raises(LocalProtocolError) as caught:
        encode(payload, parties.vendor_key)
    assert caught.value.code is ErrorCode.KEY_SENDER_MISMATCH


# -- inbound stages -------------------------------------------------------------------------------


def test_a_tampered_signature_is_refused(parties: Parties) -> None:
    token = encode(parties.offer(), parties.vendor_key)
    header, payload, signature = token.split(b".")
    flipped = b"A" if signature[:1] != b"A" else b"B"
    assert (
        _code(lambda: parties.decode_offer(b".".join([header, payload, flipped + signature[1:]])))
        is ErrorCode.BAD_SIGNATURE
    )


def test_an_unknown_key_is_refused(parties: Parties) -> None:
    token = encode(parties.offer(), parties.vendor_key)
    assert (
        _code(lambda: parties.decode_offer(token, resolve_key=key_resolver(KeySet())))
        is ErrorCode.UNKNOWN_KEY
    )


def test_a_non_canonical_payload_is_refused(parties: Parties) -> None:
    pretty = json.dumps(parties.offer(), indent=1).encode()
    token = _forge(pretty, parties.vendor_key)
    assert _code(lambda: parties.decode_offer(token)) is ErrorCode.NON_CANONICAL_PAYLOAD


def test_an_unknown_type_is_refused_after_the_signature(parties: Parties) -> None:
    payload = parties.offer()
    payload["type"] = "offer-v2"
    token = _forge(canonical_json(payload), parties.vendor_key)
    assert _code(lambda: parties.decode_offer(token)) is ErrorCode.UNKNOWN_MESSAGE_TYPE


def test_a_schema_fault_is_refused_with_its_path(parties: Parties) -> None:
    payload = parties.offer()
    payload["body"]["basis"] = "final"
    token = _forge(canonical_json(payload), parties.vendor_key)
    with pytest.raises(RemoteProtocolError) as caught:
        parties.decode_offer(token)
    assert (caught.value.code, caught.value.path) == (ErrorCode.SCHEMA_INVALID, "/body/basis")


def test_a_vendor_key_cannot_speak_for_a_pseudonym(parties: Parties) -> None:
    payload = parties.offer()
    payload["from"] = parties.buyer.identifier
    payload["to"] = [VENDOR_URL]
    token = _forge(canonical_json(payload), parties.vendor_key)
    code = _code(lambda: parties.decode_offer(token, receiver=VENDOR_URL))
    assert code is ErrorCode.KEY_SENDER_MISMATCH


def test_one_pseudonym_cannot_speak_for_another(parties: Parties) -> None:
    other = PairwiseIdentity.generate()
    payload = parties.offer()
    payload["from"] = parties.buyer.identifier
    payload["to"] = [VENDOR_URL]
    token = _forge(canonical_json(payload), other.signing_key)
    code = _code(lambda: parties.decode_offer(token, receiver=VENDOR_URL))
    assert code is ErrorCode.KEY_SENDER_MISMATCH


def test_the_audience_is_checked(parties: Parties) -> None:
    token = encode(parties.offer(), parties.vendor_key)
    assert (
        _code(lambda: parties.decode_offer(token, receiver=PairwiseIdentity.generate().identifier))
        is ErrorCode.WRONG_AUDIENCE
    )
    assert parties.decode_offer(token, receiver=None).message.type == "offer"


def test_freshness_is_checked_with_skew(parties: Parties) -> None:
    payload = parties.offer()
    token = encode(payload, parties.vendor_key)
    expires = parse_timestamp(payload["expires"])
    created = parse_timestamp(payload["created"])
    parties.decode_offer(token, now=expires + timedelta(seconds=299))
    assert (
        _code(lambda: parties.decode_offer(token, now=expires + timedelta(seconds=300)))
        is ErrorCode.MESSAGE_EXPIRED
    )
    assert (
        _code(lambda: parties.decode_offer(token, now=created - timedelta(seconds=301)))
        is ErrorCode.MESSAGE_NOT_YET_VALID
    )
    parties.decode_offer(token, now=created - timedelta(seconds=30), skew=timedelta(seconds=60))


def test_replay_and_identical_resend(parties: Parties) -> None:
    guard = MemoryReplayGuard()
    payload = parties.offer()
    token = encode(payload, parties.vendor_key)
    first = parties.decode_offer(token, replay=guard)
    assert first.replay is ReplayVerdict.NEW
    guard.remember(first.message.from_, first.message.id, _expiry(payload), first.digest)
    assert parties.decode_offer(token, replay=guard).replay is ReplayVerdict.DUPLICATE
    payload["body"]["basis"] = "indicative"
    different = encode(payload, parties.vendor_key)
    assert _code(lambda: parties.decode_offer(different, replay=guard)) is ErrorCode.REPLAY


def _expiry(payload: dict[str, Any]) -> datetime:
    return parse_timestamp(payload["expires"])


def test_the_earliest_stage_names_the_fault(parties: Parties) -> None:
    payload = parties.offer()
    payload["to"] = [VENDOR_URL]  # wrong audience for the buyer ...
    late = parse_timestamp(payload["expires"]) + timedelta(days=1)  # ... and expired
    token = encode(payload, parties.vendor_key)
    assert _code(lambda: parties.decode_offer(token, now=late)) is ErrorCode.WRONG_AUDIENCE

    payload["body"]["basis"] = "final"  # ... and schema-invalid
    forged = _forge(canonical_json(payload), parties.vendor_key)
    assert _code(lambda: parties.decode_offer(forged, now=late)) is ErrorCode.SCHEMA_INVALID

    payload["from"] = parties.buyer.identifier  # ... signed by a key not the sender's
    forged = _forge(canonical_json(payload), parties.vendor_key)
    assert _code(lambda: parties.decode_offer(forged, now=late)) is ErrorCode.SCHEMA_INVALID


# -- helpers --------------------------------------------------------------------------------------


def test_build_message_makes_a_valid_envelope(parties: Parties) -> None:
    body = _load(ROOT / "schemas" / "examples" / "personal-rfi.sally-family-car.json")["body"]
    now = datetime(2027, 1, 11, 9, 0, 0, 750000, tzinfo=UTC)
    payload = build_message(
        MessageType.PERSONAL_RFI,
        body,
        sender=parties.buyer.identifier,
        to=[VENDOR_URL],
        now=now,
        reply_inbox="http://127.0.0.1:8401/vrm/inbox",
    )
    assert payload["thread"] == payload["id"]
    assert payload["created"] == "2027-01-11T09:00:00Z"
    assert payload["expires"] == "2027-01-12T09:00:00Z"
    assert "parent" not in payload
    token = encode(payload, parties.buyer.signing_key)
    received = decode(token, resolve_key=key_resolver(None), receiver=VENDOR_URL, now=now)
    assert received.payload == payload


def test_build_message_of_a_body_model_is_the_message_model(parties: Parties) -> None:
    offer = parse_message_dict(parties.offer())
    assert isinstance(offer, OfferMessage)
    thread = new_message_id()
    message = build_message(
        "offer",
        offer.body,
        sender=VENDOR_URL,
        to=[parties.buyer.identifier],
        now=datetime(2027, 1, 11, 9, 0, tzinfo=UTC),
        thread=thread,
        parent=offer.id,
        lifetime=timedelta(hours=2),
    )
    assert isinstance(message, OfferMessage)
    assert message.body is offer.body  # taken as it is, not validated again
    assert (message.thread, message.parent) == (thread, offer.id)
    assert message.expires == "2027-01-11T11:00:00Z"
    assert to_payload(message)["body"] == parties.offer()["body"]
    token = encode(message, parties.vendor_key)
    received = parties.decode_offer(token, now=datetime(2027, 1, 11, 9, 0, tzinfo=UTC))
    assert received.message == message


def test_encode_of_a_message_model_does_not_validate_again(
    parties: Parties, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = parse_message_dict(parties.offer())
    expected = encode(message, parties.vendor_key)

    def no_validation(*_: Any, **__: Any) -> Any:
        raise AssertionError("validated again")

    monkeypatch.setattr(codec, "default_registry", no_validation)
    monkeypatch.setattr(codec, "parse_message_dict", no_validation)
    monkeypatch.setattr(models.MESSAGE_ADAPTER, "validate_python", no_validation)
    assert encode(message, parties.vendor_key) == expected
    with pytest.raises(AssertionError):
        encode(to_payload(message), parties.vendor_key)  # a payload dict is validated


def test_encode_of_a_model_and_of_its_payload_are_the_same_token(parties: Parties) -> None:
    payload = parties.offer()
    payload["extensions"] = {"com.example.trim": {"colour": "grey", "codes": [1, 2.5, None]}}
    message = parse_message_dict(payload)
    assert encode(message, parties.vendor_key) == encode(payload, parties.vendor_key)


def test_build_message_of_a_body_model_validates_the_envelope(parties: Parties) -> None:
    offer = parse_message_dict(parties.offer())
    assert isinstance(offer, OfferMessage)
    now = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)
    with pytest.raises(LocalProtocolError) as caught:
        build_message("offer", offer.body, sender="dealer", to=[parties.buyer.identifier], now=now)
    assert (caught.value.code, caught.value.path) == (ErrorCode.SCHEMA_INVALID, "/from")
    with pytest.raises(LocalProtocolError) as caught:
        build_message("offer", offer.body, sender=VENDOR_URL, to=[], now=now)
    assert (caught.value.code, caught.value.path) == (ErrorCode.SCHEMA_INVALID, "/to")
    with pytest.raises(LocalProtocolError) as caught:  # the body of another type
        build_message("receipt", offer.body, sender=VENDOR_URL, to=[VENDOR_URL], now=now)
    assert caught.value.code is ErrorCode.SCHEMA_INVALID
    assert str(caught.value.path).startswith("/body")


def test_ids_and_timestamps() -> None:
    assert new_message_id() != new_message_id()
    assert new_message_id().startswith("urn:uuid:")
    assert timestamp(datetime(2026, 11, 23, 10, 0, 0, 999999, tzinfo=UTC)) == "2026-11-23T10:00:00Z"
    with pytest.raises(ValueError):
        timestamp(datetime(2026, 11, 23, 10, 0, 0))  # naive on purpose
