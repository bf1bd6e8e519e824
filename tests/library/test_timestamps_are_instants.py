"""Timestamps that match the pattern but are not instants, and instants at the edge
of the calendar (issue 9, D4; spec §9.1, VRM-FRESH-012, VRM-FRESH-013).

A leap second (``23:59:60``) or 31 February is refused as ``schema-invalid``
at its JSON Pointer, never raised as a ``ValueError``; ``9999-12-31T23:59:59Z``
plus the allowed skew is the far future, never an ``OverflowError``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest

from vrm_protocol.attestations import verify_attestation
from vrm_protocol.canonical import canonical_json
from vrm_protocol.codec import build_message, decode, timestamp
from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.freshness import check_freshness, parse_timestamp
from vrm_protocol.http_binding import POLL_TYP, verify_poll_token
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver
from vrm_protocol.schema_registry import default_registry
from vrm_protocol.signing_profile import sign_compact, sign_json
from vrm_protocol.vocabulary import ATTESTATION_TYP

NOW: Final = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
VENDOR: Final = "https://dealer.vrm-protocol.example"
LEAP_SECOND: Final = "2026-12-31T23:59:60Z"
LAST_INSTANT: Final = "9999-12-31T23:59:59Z"
FIRST_INSTANT: Final = "0001-01-01T00:00:00Z"


def _rfi(sender: str, **changes: Any) -> dict[str, Any]:
    message = build_message(
        "personal-rfi",
        {
            "intent": {"category": "vehicles.cars", "summary": "Family hybrid", "quantity": 1},
            "budget": {"max": {"amount": "32000", "currency": "GBP"}},
            "responseBy": timestamp(NOW + timedelta(days=2)),
        },
        sender=sender,
        to=[VENDOR],
        now=NOW,
    )
    message.update(changes)
    return message


def _decode_error(message: dict[str, Any], identity: PairwiseIdentity, **options: Any) -> Any:
    token = sign_json(message, identity.signing_key)
    try:
        return decode(token, resolve_key=key_resolver(None), receiver=VENDOR, now=NOW, **options)
    except ProtocolError as error:
        return error


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"created": LEAP_SECOND}, "/created"),
        ({"expires": "2027-01-10T23:59:60Z"}, "/expires"),
        ({"created": "2027-02-31T09:00:00Z"}, "/created"),
        ({"body": "leap"}, "/body/responseBy"),
    ],
)
def test_timestamps_that_are_not_instants_are_schema_invalid(
    changes: dict[str, Any], path: str
) -> None:
    identity = PairwiseIdentity.generate()
    message = _rfi(identity.identifier)
    if changes.get("body") == "leap":
        message["body"] = {**message["body"], "responseBy": "2027-01-12T23:59:60Z"}
    else:
        message.update(changes)
    outcome = _decode_error(message, identity)
    assert isinstance(outcome, ProtocolError), outcome
    assert outcome.code is ErrorCode.SCHEMA_INVALID
    assert outcome.path == path


def test_the_schema_refuses_a_leap_second_everywhere() -> None:
    identity = PairwiseIdentity.generate()
    with pytest.raises(ProtocolError) as caught:
        default_registry().validate_message(_rfi(identity.identifier, created=LEAP_SECOND))
    assert caught.value.code is ErrorCode.SCHEMA_INVALID
    assert caught.value.path == "/created"


def test_parse_timestamp_refuses_with_a_protocol_error() -> None:
    for text in (LEAP_SECOND, "2027-02-31T09:00:00Z", "0000-01-01T00:00:00Z"):
        with pytest.raises(ProtocolError) as caught:
            parse_timestamp(text)
        assert caught.value.code is ErrorCode.SCHEMA_INVALID
        assert isinstance(caught.value, ValueError)  # as callers have always caught it


def test_the_last_instant_is_far_future_not_an_overflow() -> None:
    identity = PairwiseIdentity.generate()
    message = _rfi(identity.identifier, expires=LAST_INSTANT)
    outcome = _decode_error(message, identity)
    assert isinstance(outcome, ProtocolError)
    assert outcome.code is ErrorCode.LIFETIME_TOO_LONG  # lives longer than 30 days
    received = _decode_error(message, identity, max_lifetime=timedelta.max)
    assert not isinstance(received, ProtocolError), received
    created = _rfi(identity.identifier, created=LAST_INSTANT, expires=LAST_INSTANT)
    refused = _decode_error(created, identity)
    assert isinstance(refused, ProtocolError)
    assert refused.code is ErrorCode.MESSAGE_EXPIRED  # an empty window


def test_the_first_instant_is_far_past_not_an_overflow() -> None:
    identity = PairwiseIdentity.generate()
    outcome = _decode_error(_rfi(identity.identifier, created=FIRST_INSTANT), identity)
    assert isinstance(outcome, ProtocolError)
    assert outcome.code is ErrorCode.LIFETIME_TOO_LONG  # lives far longer than 30 days
    first = parse_timestamp(FIRST_INSTANT)
    with pytest.raises(ProtocolError) as caught:
        check_freshness(first, first + timedelta(seconds=1), NOW)
    assert caught.value.code is ErrorCode.MESSAGE_EXPIRED
    last = parse_timestamp(LAST_INSTANT)
    check_freshness(NOW, last, NOW, max_lifetime=timedelta.max)
    check_freshness(NOW, NOW + timedelta(days=1), last - timedelta(days=1), skew=timedelta.max)


def _poll_token(identity: PairwiseIdentity, created: str, expires: str) -> bytes:
    payload = {
        "after": 0,
        "created": created,
        "expires": expires,
        "from": identity.identifier,
        "to": [VENDOR],
    }
    return sign_compact(canonical_json(payload), identity.signing_key, typ=POLL_TYP)


@pytest.mark.parametrize(
    ("created", "expires", "code", "path"),
    [
        (LEAP_SECOND, "2027-01-01T00:03:00Z", ErrorCode.SCHEMA_INVALID, "/created"),
        ("2027-01-10T09:00:00Z", "2027-01-10T23:59:60Z", ErrorCode.SCHEMA_INVALID, "/expires"),
        ("2027-01-10T09:00:00Z", LAST_INSTANT, ErrorCode.LIFETIME_TOO_LONG, "/expires"),
        (LAST_INSTANT, LAST_INSTANT, ErrorCode.MESSAGE_EXPIRED, "/expires"),
    ],
)
def test_poll_tokens_with_odd_timestamps(
    created: str, expires: str, code: ErrorCode, path: str
) -> None:
    identity = PairwiseIdentity.generate()
    with pytest.raises(ProtocolError) as caught:
        verify_poll_token(_poll_token(identity, created, expires), mailbox_owner=VENDOR, now=NOW)
    assert caught.value.code is code
    assert caught.value.path == path


def _attestation(issued: str, expires: str) -> tuple[dict[str, str], dict[str, Any]]:
    issuer = SigningKey.generate()
    issuer_id = "https://credit-union.vrm-protocol.example"
    sally = PairwiseIdentity.generate()
    payload = {
        "aud": [VENDOR],
        "claims": {"range": "20000-35000 GBP"},
        "exp": expires,
        "iat": issued,
        "iss": issuer_id,
        "jti": "urn:uuid:7d1c3f4e-2b8a-4c55-9e61-0a3f5b2c9d10",
        "kind": "ability-to-pay",
        "sub": sally.identifier,
    }
    token = sign_compact(canonical_json(payload), issuer, typ=ATTESTATION_TYP)
    options = {
        "trusted_issuers": {issuer_id: KeySet([issuer.public()])},
        "subject": sally.identifier,
        "audience": VENDOR,
        "now": NOW,
    }
    return {"kind": "ability-to-pay", "issuer": issuer_id, "token": token.decode()}, options


def test_an_attestation_valid_until_the_last_instant_verifies() -> None:
    attestation, options = _attestation("2027-01-10T08:00:00Z", LAST_INSTANT)
    verified = verify_attestation(attestation, **options)
    assert verified.expires.year == 9999


@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (LEAP_SECOND, "2027-02-01T00:00:00Z"),
        ("2027-01-10T08:00:00Z", "2027-02-31T00:00:00Z"),
        (LAST_INSTANT, LAST_INSTANT),
        (FIRST_INSTANT, "0001-01-01T00:00:01Z"),
    ],
)
def test_attestations_with_odd_timestamps_are_invalid(issued: str, expires: str) -> None:
    attestation, options = _attestation(issued, expires)
    with pytest.raises(ProtocolError) as caught:
        verify_attestation(attestation, **options)
    assert caught.value.code is ErrorCode.ATTESTATION_INVALID
