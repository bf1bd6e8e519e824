"""The sans-IO HTTP binding (spec §11): inbox request checks, problem details,
mailbox poll tokens, mailbox pages, receipts, the rate limiter and discovery.

Real keys throughout (pairwise did:jwk pseudonyms and a URL party's key); no
sockets: the module under test decides, the agents carry.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.codec import build_message, encode
from vrm_protocol.errors import (
    ERROR_TYPE_BASE,
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    MAX_CURSOR,
    MAX_POLL_LIFETIME,
    POLL_AUTH_SCHEME,
    POLL_TYP,
    PROBLEM_MEDIA_TYPE,
    TEST_DRIVER_PREFIX,
    DeliveryPolicy,
    DeliveryRefused,
    PollRequest,
    RateLimiter,
    check_inbox_request,
    discovery_document,
    forbidden_address_reason,
    mailbox_page,
    make_poll_token,
    parse_cursor,
    poll_token_from_authorization,
    problem_response,
    receipt_body,
    verify_poll_token,
)
from vrm_protocol.keys import PairwiseIdentity, SigningKey
from vrm_protocol.signing_profile import sign_compact
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, SUPPORTED_VERSIONS, MessageType

NOW = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
VENDOR = "http://127.0.0.1:8080"
OTHER_VENDOR = "http://127.0.0.1:9090"
LIMIT = 65536


def _code(error: pytest.ExceptionInfo[ProtocolError]) -> ErrorCode:
    return error.value.code


def _problem_body(error: ProtocolError, **options: Any) -> dict[str, Any]:
    return dict(json.loads(problem_response(error, **options).body))


@pytest.fixture(scope="module")
def buyer() -> PairwiseIdentity:
    return PairwiseIdentity.generate()


@pytest.fixture(scope="module")
def stranger() -> PairwiseIdentity:
    return PairwiseIdentity.generate()


def _poll_payload(poller: str, **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "from": poller,
        "to": [VENDOR],
        "created": "2026-11-23T10:00:00Z",
        "expires": "2026-11-23T10:04:00Z",
        "after": 0,
    }
    payload.update(overrides)
    return payload


def _signed_poll(identity: PairwiseIdentity, payload: dict[str, Any]) -> bytes:
    """A poll token with a hand-built payload (to make members wrong on purpose)."""
    return sign_compact(canonical_json(payload), identity.signing_key, typ=POLL_TYP)


# -- check_inbox_request (spec §11.3, §11.6) ----------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        MESSAGE_MEDIA_TYPE,
        "application/vrm+jws; charset=us-ascii",
        "Application/VRM+JWS",
        "  application/vrm+jws ;profile=x",
    ],
)
def test_inbox_takes_the_message_media_type_with_or_without_parameters(content_type: str) -> None:
    check_inbox_request(content_type, 1000, max_message_bytes=LIMIT)


@pytest.mark.parametrize(
    "content_type", [None, "", "application/json", "application/jose", "text/plain; x=vrm+jws"]
)
def test_inbox_refuses_another_or_missing_media_type(content_type: str | None) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        check_inbox_request(content_type, 100, max_message_bytes=LIMIT)
    assert caught.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE
    assert caught.value.http_status == 415


def test_inbox_refuses_a_declared_length_over_the_limit_before_reading() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        check_inbox_request(MESSAGE_MEDIA_TYPE, LIMIT + 1, max_message_bytes=LIMIT)
    assert caught.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    assert caught.value.http_status == 413


@pytest.mark.parametrize("length", [None, 0, LIMIT])
def test_inbox_allows_a_length_up_to_the_limit_or_undeclared(length: int | None) -> None:
    # An undeclared (chunked) length is bounded while reading, not here.
    check_inbox_request(MESSAGE_MEDIA_TYPE, length, max_message_bytes=LIMIT)


def test_media_type_is_judged_before_length() -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        check_inbox_request("text/plain", LIMIT * 10, max_message_bytes=LIMIT)
    assert caught.value.code is ErrorCode.UNSUPPORTED_MEDIA_TYPE


# -- problem_response (RFC 9457, spec §11.5) ----------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [ErrorCode.REPLAY, ErrorCode.SCHEMA_INVALID, ErrorCode.INTERNAL_ERROR, ErrorCode.RATE_LIMITED],
)
def test_problem_response_carries_the_rfc_9457_members(code: ErrorCode) -> None:
    error = RemoteProtocolError(code, "what happened this time", path="/body/budget")
    rendered = problem_response(error, instance="/vrm/inbox")
    assert rendered.status == code.http_status
    assert rendered.headers["Content-Type"] == PROBLEM_MEDIA_TYPE
    document = json.loads(rendered.body)
    assert document["type"] == ERROR_TYPE_BASE + code.value
    assert document["code"] == code.value
    assert document["title"] == code.info.title
    assert document["status"] == code.http_status
    assert document["detail"] == "what happened this time"
    assert document["instance"] == "/vrm/inbox"
    assert document["path"] == "/body/budget"


def test_problem_response_without_path_or_instance_omits_them() -> None:
    document = _problem_body(RemoteProtocolError(ErrorCode.BAD_SIGNATURE, "no"))
    assert "path" not in document
    assert "instance" not in document
    assert (
        "Retry-After"
        not in problem_response(RemoteProtocolError(ErrorCode.BAD_SIGNATURE, "no")).headers
    )


def test_problem_response_sets_retry_after_when_given() -> None:
    rendered = problem_response(
        RemoteProtocolError(ErrorCode.RATE_LIMITED, "slow down"), retry_after_seconds=7
    )
    assert rendered.status == 429
    assert rendered.headers["Retry-After"] == "7"


def test_problem_response_keeps_extra_members_and_non_ascii_detail() -> None:
    error = LocalProtocolError(
        ErrorCode.SCHEMA_INVALID, "prix en £ refusé", extra={"errors": [{"path": "/a"}]}
    )
    document = _problem_body(error)
    assert document["detail"] == "prix en £ refusé"
    assert document["errors"] == [{"path": "/a"}]


# -- poll tokens (spec §11.4) -------------------------------------------------------------------


def test_poll_token_round_trip(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=17, now=NOW
    )
    request = verify_poll_token(token, mailbox_owner=VENDOR, now=NOW + timedelta(minutes=1))
    assert request == PollRequest(poller=buyer.identifier, after=17)


def test_es256_pseudonym_polls_too() -> None:
    buyer = PairwiseIdentity.generate("ES256")
    token = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=0, now=NOW
    )
    assert verify_poll_token(token, mailbox_owner=VENDOR, now=NOW).poller == buyer.identifier


def test_poll_token_for_another_mailbox_is_wrong_audience(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=OTHER_VENDOR, after=0, now=NOW
    )
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.WRONG_AUDIENCE


def test_poll_token_signed_by_another_pseudonym_is_key_sender_mismatch(
    buyer: PairwiseIdentity, stranger: PairwiseIdentity
) -> None:
    # The stranger signs (validly, with its own did:jwk key) a poll in the buyer's
    # name: it must not read the buyer's mailbox.
    token = make_poll_token(
        stranger.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=0, now=NOW
    )
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.KEY_SENDER_MISMATCH


def test_poll_token_signed_by_a_url_party_key_is_not_resolved(buyer: PairwiseIdentity) -> None:
    # Only did:jwk pollers exist (spec §11.4): a thumbprint kid resolves to nothing.
    vendor_key = SigningKey.generate("EdDSA")
    vendor_key = vendor_key.with_kid(vendor_key.thumbprint())
    token = make_poll_token(vendor_key, poller=OTHER_VENDOR, mailbox_owner=VENDOR, after=0, now=NOW)
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.UNKNOWN_KEY


def test_poll_token_living_longer_than_the_maximum_is_refused(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key,
        poller=buyer.identifier,
        mailbox_owner=VENDOR,
        after=0,
        now=NOW,
        lifetime=MAX_POLL_LIFETIME + timedelta(seconds=1),
    )
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.LIFETIME_TOO_LONG


def test_poll_token_living_exactly_the_maximum_is_accepted(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key,
        poller=buyer.identifier,
        mailbox_owner=VENDOR,
        after=0,
        now=NOW,
        lifetime=MAX_POLL_LIFETIME,
    )
    assert verify_poll_token(token, mailbox_owner=VENDOR, now=NOW).after == 0


def test_expired_poll_token_is_refused(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=0, now=NOW
    )
    later = NOW + timedelta(hours=1)
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=later)
    assert _code(caught) is ErrorCode.MESSAGE_EXPIRED


def test_poll_token_from_the_future_is_refused(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key,
        poller=buyer.identifier,
        mailbox_owner=VENDOR,
        after=0,
        now=NOW + timedelta(hours=1),
    )
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.MESSAGE_NOT_YET_VALID


def test_a_message_token_is_not_a_poll_token(buyer: PairwiseIdentity) -> None:
    message = build_message(
        MessageType.EXIT_NOTICE,
        {},
        sender=buyer.identifier,
        to=[VENDOR],
        now=NOW,
    )
    # Any signed message (typ vrm+jws) will do; build it from the raw payload so
    # that the test depends only on the signing profile, not on a body schema.
    token = sign_compact(canonical_json(message), buyer.signing_key)
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.INVALID_TYP


def test_a_valid_message_is_not_a_poll_token(buyer: PairwiseIdentity) -> None:
    from conformance.peers import bodies

    message = build_message(
        MessageType.PERSONAL_RFI,
        bodies.personal_rfi_body(NOW),
        sender=buyer.identifier,
        to=[VENDOR],
        now=NOW,
    )
    token = encode(message, buyer.signing_key)
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.INVALID_TYP


@pytest.mark.parametrize(
    "overrides",
    [
        {"after": -1},
        {"after": True},
        {"after": False},
        {"after": "3"},
        {"after": 1.5},
        {"to": VENDOR},
        {"to": [VENDOR, 7]},
        {"from": 42},
    ],
    ids=[
        "negative-after",
        "true-after",
        "false-after",
        "string-after",
        "fractional-after",
        "to-not-a-list",
        "to-member-not-a-string",
        "from-not-a-string",
    ],
)
def test_poll_token_with_wrong_members_is_schema_invalid(
    buyer: PairwiseIdentity, overrides: dict[str, Any]
) -> None:
    token = _signed_poll(buyer, _poll_payload(buyer.identifier, **overrides))
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.SCHEMA_INVALID


def test_poll_token_without_after_is_schema_invalid(buyer: PairwiseIdentity) -> None:
    payload = _poll_payload(buyer.identifier)
    del payload["after"]
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(_signed_poll(buyer, payload), mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.SCHEMA_INVALID


def test_poll_token_with_a_malformed_timestamp_is_schema_invalid(buyer: PairwiseIdentity) -> None:
    payload = _poll_payload(buyer.identifier, created="2026-11-23 10:00:00")
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(_signed_poll(buyer, payload), mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.SCHEMA_INVALID


def test_poll_token_with_a_tampered_payload_fails_the_signature(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=0, now=NOW
    )
    header, _, signature = token.split(b".")
    other = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=99, now=NOW
    )
    forged = b".".join([header, other.split(b".")[1], signature])
    with pytest.raises(RemoteProtocolError) as caught:
        verify_poll_token(forged, mailbox_owner=VENDOR, now=NOW)
    assert _code(caught) is ErrorCode.BAD_SIGNATURE


def test_poll_token_is_read_from_the_vrm_poll_authorization_scheme(
    buyer: PairwiseIdentity,
) -> None:
    token = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=0, now=NOW
    )
    header = f"{POLL_AUTH_SCHEME} {token.decode()}"
    assert poll_token_from_authorization(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "VRM-Poll", "VRM-Poll   "])
def test_authorization_without_a_poll_token_is_authentication_required(
    header: str | None,
) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        poll_token_from_authorization(header)
    assert caught.value.code is ErrorCode.AUTHENTICATION_REQUIRED
    assert caught.value.http_status == 401


# -- mailbox_page (spec §11.4) ------------------------------------------------------------------


def test_mailbox_page_returns_messages_after_the_index_and_the_next_index() -> None:
    tokens = [b"a.b.c", b"d.e.f", b"g.h.i"]
    assert json.loads(mailbox_page(tokens, after=0)) == {
        "messages": ["a.b.c", "d.e.f", "g.h.i"],
        "next": 3,
    }
    assert json.loads(mailbox_page(tokens, after=2)) == {"messages": ["g.h.i"], "next": 3}


def test_mailbox_page_after_everything_is_empty_and_keeps_the_index() -> None:
    tokens = [b"a.b.c", b"d.e.f"]
    assert json.loads(mailbox_page(tokens, after=2)) == {"messages": [], "next": 2}
    assert json.loads(mailbox_page([], after=0)) == {"messages": [], "next": 0}


def test_a_poller_following_next_sees_every_message_once() -> None:
    tokens: list[bytes] = []
    seen: list[str] = []
    cursor = 0
    for batch in ([b"1.1.1"], [], [b"2.2.2", b"3.3.3"], [b"4.4.4"]):
        tokens.extend(batch)
        page = json.loads(mailbox_page(tokens, after=cursor))
        seen.extend(page["messages"])
        cursor = page["next"]
    assert seen == ["1.1.1", "2.2.2", "3.3.3", "4.4.4"]


# -- receipt_body (spec §6.16, §11.3) -----------------------------------------------------------


def test_receipt_body_binds_the_received_bytes(buyer: PairwiseIdentity) -> None:
    token = make_poll_token(
        buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=0, now=NOW
    )
    regarding = {
        "id": "urn:uuid:6c9f3b0e-2f7e-4b7a-9d55-1d2f3c4b5a69",
        "digest": message_digest(token),
    }
    body = receipt_body(regarding, now=NOW + timedelta(seconds=3, microseconds=500))
    assert body == {
        "regarding": regarding,
        "status": "accepted",
        "receivedAt": "2026-11-23T10:00:03Z",
    }
    # A copy, not the caller's mapping: later changes to it do not alter the receipt.
    regarding["id"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    assert body["regarding"]["id"] != regarding["id"]


def test_a_receipt_built_from_receipt_body_is_a_valid_message() -> None:
    vendor_key = SigningKey.generate("EdDSA")
    vendor_key = vendor_key.with_kid(vendor_key.thumbprint())
    buyer = PairwiseIdentity.generate()
    regarding = {
        "id": "urn:uuid:6c9f3b0e-2f7e-4b7a-9d55-1d2f3c4b5a69",
        "digest": message_digest(b"x"),
    }
    message = build_message(
        MessageType.RECEIPT,
        receipt_body(regarding, now=NOW),
        sender=VENDOR,
        to=[buyer.identifier],
        now=NOW,
        thread=regarding["id"],
        parent=regarding["id"],
    )
    # encode validates against the receipt schema and refuses what a receiver would.
    assert encode(message, vendor_key).count(b".") == 2


# -- RateLimiter (spec §11.6) -------------------------------------------------------------------


def test_rate_limiter_allows_a_burst_then_refuses_with_retry_after() -> None:
    limiter = RateLimiter(rate_per_second=0.5, burst=3)
    for _ in range(3):
        limiter.check("kid-a", 100.0)
    with pytest.raises(RemoteProtocolError) as caught:
        limiter.check("kid-a", 100.0)
    assert caught.value.code is ErrorCode.RATE_LIMITED
    assert caught.value.http_status == 429
    # One token at 0.5 per second is two seconds away.
    assert caught.value.extra["retry_after"] == 2


def test_rate_limiter_retry_after_is_whole_seconds_rounded_up() -> None:
    limiter = RateLimiter(rate_per_second=3.0, burst=1)
    limiter.check("k", 0.0)
    with pytest.raises(RemoteProtocolError) as caught:
        limiter.check("k", 0.0)
    # 1/3 s away: never 0 (a client told "retry after 0" would spin).
    assert caught.value.extra["retry_after"] == 1


def test_rate_limiter_refills_with_time() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=2)
    limiter.check("k", 0.0)
    limiter.check("k", 0.0)
    with pytest.raises(RemoteProtocolError):
        limiter.check("k", 0.5)
    limiter.check("k", 1.0)  # one token refilled after a second
    with pytest.raises(RemoteProtocolError):
        limiter.check("k", 1.0)
    # A long pause refills only up to the burst.
    limiter.check("k", 1000.0)
    limiter.check("k", 1000.0)
    with pytest.raises(RemoteProtocolError):
        limiter.check("k", 1000.0)


def test_a_refused_check_takes_no_token() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=1)
    limiter.check("k", 0.0)
    for _ in range(5):
        with pytest.raises(RemoteProtocolError):
            limiter.check("k", 0.2)
    limiter.check("k", 1.0)


def test_rate_limiter_buckets_are_per_key() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=1)
    limiter.check("a", 0.0)
    limiter.check("b", 0.0)
    with pytest.raises(RemoteProtocolError):
        limiter.check("a", 0.0)


def test_rate_limiter_key_table_is_bounded_and_forgets_the_idlest() -> None:
    limiter = RateLimiter(rate_per_second=0.001, burst=1, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.check(key, 0.0)
    limiter.check("d", 1.0)  # the table is full: "a", idle longest, is forgotten
    assert len(limiter._buckets) == 3
    limiter.check("a", 2.0)  # a forgotten key starts again with a full bucket
    assert len(limiter._buckets) == 3
    # "b" was forgotten to make room for "a"; "c" and "d" are still held (empty).
    with pytest.raises(RemoteProtocolError):
        limiter.check("c", 3.0)
    with pytest.raises(RemoteProtocolError):
        limiter.check("d", 3.0)
    limiter.check("b", 3.0)  # forgotten, so it starts with a full bucket again


def test_rate_limiter_under_many_keys_keeps_at_most_max_keys() -> None:
    limiter = RateLimiter(rate_per_second=1.0, burst=5, max_keys=50)
    for index in range(1000):
        limiter.check(f"did:jwk:{index}#0", float(index))
    assert len(limiter._buckets) == 50


# -- discovery_document (spec §11.1) ------------------------------------------------------------


def _discovery(**options: Any) -> dict[str, Any]:
    return discovery_document(
        party_id=VENDOR,
        role="vendor",
        name="Mayfair Motors",
        base_url=VENDOR + "/",
        accepts=[MessageType.PERSONAL_RFP, MessageType.PERSONAL_RFI],
        sends=[MessageType.RECEIPT, MessageType.OFFER],
        terms=[{"id": "t", "version": "1"}],
        categories=["vehicles.cars"],
        max_message_bytes=LIMIT,
        max_depth=32,
        rate_per_minute=600,
        **options,
    )


def test_discovery_document_names_endpoints_types_and_limits() -> None:
    document = _discovery()
    assert document["id"] == VENDOR
    assert document["role"] == "vendor"
    assert document["versions"] == sorted(SUPPORTED_VERSIONS)
    assert document["endpoints"] == {
        "inbox": VENDOR + INBOX_PATH,
        "jwks": VENDOR + JWKS_PATH,
        "mailbox": VENDOR + MAILBOX_PATH,
    }
    assert document["messageTypes"] == {
        "accepts": ["personal-rfi", "personal-rfp"],
        "sends": ["offer", "receipt"],
    }
    assert document["limits"] == {"maxMessageBytes": LIMIT, "maxDepth": 32, "ratePerMinute": 600}
    assert document["algorithms"] == ["EdDSA", "ES256"]
    assert document["terms"] == [{"id": "t", "version": "1"}]
    assert document["categories"] == ["vehicles.cars"]
    json.dumps(document)  # serialisable as is


def test_discovery_lists_the_test_driver_only_when_asked() -> None:
    assert "testDriver" not in _discovery()["endpoints"]
    assert "testDriver" not in _discovery(test_driver=False)["endpoints"]
    assert _discovery(test_driver=True)["endpoints"]["testDriver"] == VENDOR + TEST_DRIVER_PREFIX


def test_binding_paths_are_the_spec_paths() -> None:
    assert (DISCOVERY_PATH, JWKS_PATH, INBOX_PATH, MAILBOX_PATH) == (
        "/.well-known/vrm",
        "/vrm/jwks.json",
        "/vrm/inbox",
        "/vrm/mailbox",
    )


# -- parse_cursor (spec §11.4) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "cursor"),
    [([], None), (["0"], 0), (["0042"], 42), ([str(MAX_CURSOR)], MAX_CURSOR)],
)
def test_the_mailbox_cursor_is_ascii_decimal_within_its_range(
    values: list[str], cursor: int | None
) -> None:
    assert parse_cursor(values) == cursor


@pytest.mark.parametrize(
    "values",
    [
        [str(MAX_CURSOR + 1)],
        ["99999999999999999999999"],
        ["-1"],
        ["+1"],
        [" 1"],
        [""],
        ["1e3"],
        ["\u0663"],  # ARABIC-INDIC DIGIT THREE: int() takes it
        ["1", "2"],
    ],
)
def test_any_other_cursor_is_an_invalid_request(values: list[str]) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_cursor(values)
    assert caught.value.code is ErrorCode.INVALID_REQUEST


# -- the delivery policy (spec §11.8) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700::1", None),
        ("64:ff9b::808:808", None),  # NAT64 to a public address
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata services live here
        ("fe80::1", "link-local"),
        ("fc00::1", "unique-local"),
        ("100.64.0.1", "shared address space (carrier-grade NAT)"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),
        ("2001:db8::1", "private"),
    ],
)
def test_only_public_unicast_addresses_are_delivered_to(address: str, reason: str | None) -> None:
    assert forbidden_address_reason(ipaddress.ip_address(address)) == reason


def test_the_delivery_policy_wants_https_to_public_hosts_unless_allow_listed() -> None:
    policy = DeliveryPolicy.from_entries(["127.0.0.1", "localhost:8080", "[::1]:9", "Peer.Test."])
    assert policy.check_url("http://127.0.0.1:5/vrm/inbox").allow_listed
    assert policy.check_url("http://localhost:8080/vrm/inbox").allow_listed
    assert policy.check_url("https://[::1]:9/").allow_listed
    assert policy.check_url("http://peer.test/inbox").allow_listed
    public = policy.check_url("https://8.8.8.8/vrm/inbox")
    assert (public.host, public.port, public.allow_listed) == ("8.8.8.8", 443, False)
    named = policy.check_url("https://dealer.example/vrm/inbox")
    assert not named.allow_listed  # its addresses are judged once resolved
    policy.check_address(named, "93.184.215.14")
    for address in ("127.0.0.1", "10.0.0.7", "fe80::1%eth0", "not-an-address"):
        with pytest.raises(DeliveryRefused):
            policy.check_address(named, address)
    for url in (
        "http://dealer.example/vrm/inbox",  # http to a host not allow-listed
        "http://localhost:8081/",  # another port than the one allowed
        "https://127.0.0.2/",  # loopback, not allow-listed
        "https://[::1]:10/",
        "https://10.0.0.1/",
        "https://user:secret@dealer.example/",
        "ftp://dealer.example/",
        "https:///no-host",
        "https://dealer.example:0/",
        "https://dealer.example:99999/",
    ):
        with pytest.raises(DeliveryRefused):
            policy.check_url(url)


@pytest.mark.parametrize("entry", ["", "a/b", "host:port", "host:0", "[::1]x", "user@host", "::zz"])
def test_a_malformed_allow_list_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        DeliveryPolicy.from_entries([entry])
