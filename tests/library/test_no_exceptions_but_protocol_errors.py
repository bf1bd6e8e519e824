"""Every public decoding function raises only ``ProtocolError`` for any input (issue 9, D4).

An agent turns a :class:`~vrm_protocol.errors.ProtocolError` into a problem
response with its code; anything else becomes a 500 and a traceback. So for
every function of the library that interprets bytes, strings or parsed JSON
from a peer, Hypothesis draws

(a) arbitrary bytes (and strings, and JSON values);
(b) structurally valid tokens, signed with real keys (Ed25519 and P-256),
    with bytes mutated;
(c) schema-valid payloads with extreme values (timestamps at the edges of
    the calendar and of the pattern, huge and tiny numbers, long strings,
    nesting and array lengths right at the limits and one past them),
    signed with real keys,

and requires the function to return or to raise a ``ProtocolError``,
nothing else. Example counts are bounded so that the file runs in seconds.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vrm_protocol import canonical, freshness, limits
from vrm_protocol.attestations import issue_attestation, verify_attestation
from vrm_protocol.codec import build_message, check_key_sender, decode, encode, timestamp
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import MemoryReplayGuard
from vrm_protocol.http_binding import (
    POLL_TYP,
    check_inbox_request,
    make_poll_token,
    poll_token_from_authorization,
    verify_poll_token,
)
from vrm_protocol.keys import (
    KeySet,
    PairwiseIdentity,
    SigningKey,
    VerifyingKey,
    key_resolver,
    resolve_did_jwk,
    thumbprint,
)
from vrm_protocol.models import parse_message_dict
from vrm_protocol.schema_registry import default_registry
from vrm_protocol.signing_profile import sign_compact, sign_json, verify_compact, verify_signature
from vrm_protocol.vocabulary import ATTESTATION_TYP

NOW: Final = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
VENDOR: Final = "https://dealer.vrm-protocol.example"
ISSUER: Final = "https://credit-union.vrm-protocol.example"
FAST: Final = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SLOW: Final = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VENDOR_KEY: Final = SigningKey.generate("EdDSA")
VENDOR_P256: Final = SigningKey.generate("ES256")
ISSUER_KEY: Final = SigningKey.generate("ES256")
BUYERS: Final = (PairwiseIdentity.generate("EdDSA"), PairwiseIdentity.generate("ES256"))
VENDOR_KEYS: Final = KeySet([VENDOR_KEY.public(), VENDOR_P256.public()])
ISSUER_KEYS: Final = KeySet([ISSUER_KEY.public()])


def only_protocol_errors(function: Callable[[], object]) -> None:
    """Run ``function``; anything it raises must be a ProtocolError."""
    with contextlib.suppress(ProtocolError):
        function()


# -- the functions under test, each a callable of one input ----------------------------------------


def _decode(token: bytes) -> None:
    decode(
        token,
        resolve_key=key_resolver(VENDOR_KEYS),
        receiver=VENDOR,
        now=NOW,
        replay=MemoryReplayGuard(),
    )


def _decode_as_buyer(token: bytes) -> None:
    decode(token, resolve_key=key_resolver(VENDOR_KEYS), receiver=BUYERS[0].identifier, now=NOW)


def _verify_compact(token: bytes) -> None:
    verify_compact(token, resolve_key=key_resolver(VENDOR_KEYS))
    verify_compact(token, resolve_key=key_resolver(VENDOR_KEYS), require_canonical=False)


def _poll(token: bytes) -> None:
    verify_poll_token(token, mailbox_owner=VENDOR, now=NOW)


def _attestation(token: bytes) -> None:
    text = token.decode("latin-1")
    for issuer, trusted in ((ISSUER, {ISSUER: ISSUER_KEYS}), (BUYERS[0].identifier, None)):
        verify_attestation(
            {"kind": "ability-to-pay", "issuer": issuer, "token": text},
            trusted_issuers=trusted or {issuer: None},
            subject=BUYERS[0].identifier,
            audience=VENDOR,
            now=NOW,
        )


TOKEN_FUNCTIONS: Final[dict[str, Callable[[bytes], object]]] = {
    "codec.decode": _decode,
    "codec.decode (buyer)": _decode_as_buyer,
    "signing_profile.verify_compact": _verify_compact,
    "http_binding.verify_poll_token": _poll,
    "attestations.verify_attestation": _attestation,
}


def _bytes_functions() -> dict[str, Callable[[bytes], object]]:
    ed = VENDOR_KEY.public()
    p256 = VENDOR_P256.public()
    return {
        **TOKEN_FUNCTIONS,
        "canonical.b64url_decode": canonical.b64url_decode,
        "canonical.parse_json_object": canonical.parse_json_object,
        "canonical.parse_canonical": canonical.parse_canonical,
        "canonical.is_canonical": canonical.is_canonical,
        "canonical.strip_json_strings": canonical.strip_json_strings,
        "canonical.longest_json_string": canonical.longest_json_string,
        "canonical.message_digest": canonical.message_digest,
        "limits.check_nesting": limits.check_nesting,
        "limits.check_token_size": limits.check_token_size,
        "signing_profile.verify_signature (Ed25519)": lambda data: verify_signature(
            data[:-64], data[-64:], ed
        ),
        "signing_profile.verify_signature (P-256)": lambda data: verify_signature(
            data[:-64], data[-64:], p256
        ),
        "keys.VerifyingKey.verify": lambda data: ed.verify(data, data[:64]),
    }


def _string_functions() -> dict[str, Callable[[str], object]]:
    return {
        "keys.resolve_did_jwk": resolve_did_jwk,
        "keys.key_resolver": key_resolver(VENDOR_KEYS),
        "keys.key_resolver (none)": key_resolver(None),
        "canonical.b64url_decode (str)": canonical.b64url_decode,
        "freshness.parse_timestamp": freshness.parse_timestamp,
        "http_binding.poll_token_from_authorization": poll_token_from_authorization,
        "http_binding.check_inbox_request": lambda text: check_inbox_request(
            text, len(text), max_message_bytes=65536
        ),
        "freshness.check_audience": lambda text: freshness.check_audience([text], VENDOR),
        "codec.check_key_sender": lambda text: check_key_sender(text, text[:-2]),
        "codec.check_key_sender (other)": lambda text: check_key_sender(text, VENDOR),
        "keys.KeySet.get": VENDOR_KEYS.get,
    }


def _value_functions() -> dict[str, Callable[[Any], object]]:
    registry = default_registry()
    return {
        "keys.VerifyingKey.from_jwk": VerifyingKey.from_jwk,
        "keys.KeySet.from_jwks": KeySet.from_jwks,
        "keys.SigningKey.from_private_jwk": SigningKey.from_private_jwk,
        "keys.PairwiseIdentity.from_private_jwk": PairwiseIdentity.from_private_jwk,
        "keys.thumbprint": thumbprint,
        "models.parse_message_dict": parse_message_dict,
        "schema_registry.validate_message": registry.validate_message,
        "schema_registry.validate (attestation)": lambda value: registry.validate(
            value, "attestation.schema.json"
        ),
        "freshness.parse_timestamp (value)": freshness.parse_timestamp,
        "freshness.check_audience (value)": lambda value: freshness.check_audience(value, VENDOR),
        "attestations.verify_attestation (value)": lambda value: verify_attestation(
            value,
            trusted_issuers={ISSUER: ISSUER_KEYS},
            subject=BUYERS[0].identifier,
            audience=VENDOR,
            now=NOW,
        ),
    }


# -- strategies ------------------------------------------------------------------------------------

#: Numbers at the edges: beyond 2**53, beyond 64 bits, beyond the double range.
EXTREME_INTEGERS: Final = st.sampled_from(
    [0, -1, 2**53 - 1, 2**53, 2**53 + 1, -(2**63), 2**64, 10**30, -(10**400), 10**400]
)
EXTREME_FLOATS: Final = st.sampled_from(
    [0.0, -0.0, 1e-320, 5e-324, 1.7976931348623157e308, float("inf"), -float("inf"), 1e16]
)
LAST: Final = "9999-12-31T23:59:59Z"
LEAP: Final = "2026-12-31T23:59:60Z"
EDGE_TIMESTAMPS: Final = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:60Z",
        "2026-12-31T23:59:60Z",
        "2027-02-29T10:00:00Z",
        "2028-02-29T10:00:00Z",
        "2027-02-31T10:00:00Z",
        "2027-13-01T10:00:00Z",
        "2027-01-10T24:00:00Z",
        "2027-01-10T09:00:00Z",
        "2027-01-10T09:05:00Z",
        "2027-01-09T09:00:00Z",
    ]
)
JSON_LEAVES: Final = (
    st.none()
    | st.booleans()
    | st.integers()
    | EXTREME_INTEGERS
    | EXTREME_FLOATS
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | EDGE_TIMESTAMPS
)
JSON_VALUES: Final = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                ["kty", "crv", "x", "y", "d", "kid", "alg", "keys", "type", "vrm", "body", "token"]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


def _message(sender: str, to: list[str]) -> dict[str, Any]:
    return build_message(
        "personal-rfi",
        {
            "intent": {"category": "vehicles.cars", "summary": "Family hybrid", "quantity": 1},
            "budget": {"max": {"amount": "32000", "currency": "GBP"}},
            "responseBy": timestamp(NOW + timedelta(days=2)),
        },
        sender=sender,
        to=to,
        now=NOW,
        message_id="urn:uuid:7d1c3f4e-2b8a-4c55-9e61-0a3f5b2c9d10",
    )


def _valid_tokens() -> list[bytes]:
    tokens = [encode(_message(buyer.identifier, [VENDOR]), buyer.signing_key) for buyer in BUYERS]
    tokens.append(encode(_message(VENDOR, [BUYERS[0].identifier]), VENDOR_P256))
    tokens += [
        make_poll_token(
            buyer.signing_key, poller=buyer.identifier, mailbox_owner=VENDOR, after=3, now=NOW
        )
        for buyer in BUYERS
    ]
    attestation = issue_attestation(
        kind="ability-to-pay",
        subject=BUYERS[0].identifier,
        audience=[VENDOR],
        claims={"range": {"min": "20000", "max": "35000"}},
        issuer_key=ISSUER_KEY,
        issuer_id=ISSUER,
        now=NOW,
    )
    tokens.append(attestation["token"].encode("ascii"))
    return tokens


VALID_TOKENS: Final = _valid_tokens()


@st.composite
def mutated_tokens(draw: st.DrawFn) -> bytes:
    """A valid token with some bytes changed, inserted, removed or a segment replaced."""
    token = bytearray(draw(st.sampled_from(VALID_TOKENS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "segment"]))
        position = draw(st.integers(0, max(len(token) - 1, 0)))
        if kind == "flip" and token:
            token[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and token:
            token[position] = draw(st.sampled_from(b'.=+/-_{}[]"\\\x00\xff0Aa'))
        elif kind == "insert":
            token[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and token:
            del token[position : position + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del token[position:]
        elif kind == "segment":
            segments = bytes(token).split(b".")
            index = draw(st.integers(0, len(segments) - 1))
            replacement = json.dumps(draw(JSON_VALUES), allow_nan=True).encode()
            segments[index] = canonical.b64url_encode(replacement).encode()
            token = bytearray(b".".join(segments))
    return bytes(token)


def _deep(depth: int) -> Any:
    nested: Any = "bottom"
    for _ in range(depth):
        nested = [nested]
    return nested


@st.composite
def extreme_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A legal message made extreme in one or more places (still signed)."""
    buyer = draw(st.sampled_from(BUYERS))
    message = _message(buyer.identifier, [VENDOR])
    body = message["body"]
    extensions: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 4))):
        where = draw(
            st.sampled_from(
                [
                    "created",
                    "expires",
                    "responseBy",
                    "number",
                    "float",
                    "string",
                    "depth",
                    "array",
                    "quantity",
                    "amount",
                    "to",
                ]
            )
        )
        if where in ("created", "expires"):
            message[where] = draw(EDGE_TIMESTAMPS)
        elif where == "responseBy":
            body["responseBy"] = draw(EDGE_TIMESTAMPS)
        elif where == "number":
            extensions["org.example.number"] = draw(EXTREME_INTEGERS)
        elif where == "float":
            extensions["org.example.float"] = draw(EXTREME_FLOATS)
        elif where == "string":
            extensions["org.example.string"] = "x" * draw(st.sampled_from([16380, 16382, 16383]))
        elif where == "depth":
            extensions["org.example.deep"] = _deep(draw(st.integers(12, 16)))
        elif where == "array":
            extensions["org.example.array"] = list(range(draw(st.sampled_from([255, 256, 257]))))
        elif where == "quantity":
            body["intent"]["quantity"] = draw(EXTREME_INTEGERS)
        elif where == "amount":
            body["budget"]["max"]["amount"] = draw(
                st.sampled_from(["9" * 40, "0.00001", "-1", "1e9", "00"])
            )
        else:
            message["to"] = [VENDOR] * draw(st.sampled_from([1, 50, 300]))
    if extensions:
        message["extensions"] = extensions
    return message


def _sign(message: dict[str, Any], key: SigningKey) -> bytes | None:
    try:
        return sign_json(message, key)
    except ProtocolError:  # no canonical form (a number beyond the double range)
        return None


# -- (a) arbitrary input ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(_bytes_functions()))
@FAST
@given(data=st.binary(max_size=300) | st.sampled_from(VALID_TOKENS))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    function = _bytes_functions()[name]
    only_protocol_errors(lambda: function(data))


@pytest.mark.parametrize("name", sorted(TOKEN_FUNCTIONS))
@FAST
@given(
    segments=st.lists(
        st.binary(max_size=60) | JSON_VALUES.map(lambda value: json.dumps(value).encode()),
        min_size=1,
        max_size=4,
    )
)
def test_arbitrary_segments(name: str, segments: list[bytes]) -> None:
    """Three base64url segments of anything: the framing passes, what is inside is random."""
    token = b".".join(canonical.b64url_encode(segment).encode() for segment in segments)
    only_protocol_errors(lambda: TOKEN_FUNCTIONS[name](token))


@pytest.mark.parametrize("name", sorted(_string_functions()))
@FAST
@given(text=st.text(max_size=200) | EDGE_TIMESTAMPS)
def test_arbitrary_strings(name: str, text: str) -> None:
    function = _string_functions()[name]
    only_protocol_errors(lambda: function(text))


@pytest.mark.parametrize("name", sorted(_value_functions()))
@FAST
@given(value=JSON_VALUES)
def test_arbitrary_json_values(name: str, value: Any) -> None:
    function = _value_functions()[name]
    only_protocol_errors(lambda: function(value))


@SLOW
@given(value=JSON_VALUES, message_type=st.sampled_from(["personal-rfi", "offer", "receipt"]))
def test_arbitrary_bodies_of_real_types(value: Any, message_type: str) -> None:
    """A valid envelope around a random body: the schema and the model must refuse cleanly."""
    message = {**_message(BUYERS[0].identifier, [VENDOR]), "type": message_type, "body": value}
    registry = default_registry()
    only_protocol_errors(lambda: registry.validate_message(message))
    only_protocol_errors(lambda: parse_message_dict(message))


# -- (b) valid tokens with mutated bytes -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOKEN_FUNCTIONS))
@SLOW
@given(token=mutated_tokens())
def test_mutated_tokens(name: str, token: bytes) -> None:
    only_protocol_errors(lambda: TOKEN_FUNCTIONS[name](token))


# -- (c) schema-valid payloads with extreme values, signed -----------------------------------------


def _rfi(**changes: Any) -> dict[str, Any]:
    return {**_message(BUYERS[0].identifier, [VENDOR]), **changes}


@SLOW
@given(message=extreme_payloads(), key_index=st.integers(0, 1))
@example(message=_rfi(created=LEAP), key_index=0)
@example(message=_rfi(expires=LAST), key_index=1)
@example(message=_rfi(created=None), key_index=0)
@example(message=_rfi(replyTo={"inbox": 7}), key_index=1)
def test_extreme_payloads_signed_with_real_keys(message: dict[str, Any], key_index: int) -> None:
    buyer = BUYERS[key_index]
    message["from"] = buyer.identifier
    token = _sign(message, buyer.signing_key)
    if token is None:
        return
    for function in TOKEN_FUNCTIONS.values():
        only_protocol_errors(lambda function=function: function(token))  # type: ignore[misc]
    only_protocol_errors(lambda: parse_message_dict(message))
    only_protocol_errors(lambda: default_registry().validate_message(message))


@SLOW
@given(
    created=EDGE_TIMESTAMPS | EDGE_TIMESTAMPS | st.text(max_size=25) | EXTREME_INTEGERS,
    expires=EDGE_TIMESTAMPS | EDGE_TIMESTAMPS | st.text(max_size=25) | EXTREME_INTEGERS,
    after=st.integers(0, 10) | EXTREME_INTEGERS | st.booleans() | st.none(),
    buyer=st.sampled_from(BUYERS),
)
# The classes issue 9 found, always tried: year 9999 plus skew, a leap second.
@example(created="2027-01-10T09:00:00Z", expires=LAST, after=0, buyer=BUYERS[0])
@example(created="2027-01-10T09:00:00Z", expires=LEAP, after=0, buyer=BUYERS[1])
def test_poll_tokens_with_extreme_claims(
    created: Any, expires: Any, after: Any, buyer: Any
) -> None:
    claims = {
        "after": after,
        "created": created,
        "expires": expires,
        "from": buyer.identifier,
        "to": [VENDOR],
    }
    try:
        token = sign_compact(canonical.canonical_json(claims), buyer.signing_key, typ=POLL_TYP)
    except ProtocolError:  # no canonical form (a number beyond the double range)
        return
    only_protocol_errors(lambda: _poll(token))


@SLOW
@given(
    issued=EDGE_TIMESTAMPS | EDGE_TIMESTAMPS | st.text(max_size=25) | EXTREME_INTEGERS,
    expires=EDGE_TIMESTAMPS | EDGE_TIMESTAMPS | st.text(max_size=25) | EXTREME_INTEGERS,
    claims=JSON_VALUES,
    audience=st.lists(st.sampled_from([VENDOR, "x", ""]), max_size=3) | JSON_VALUES,
)
@example(issued="2027-01-10T08:00:00Z", expires=LAST, claims={}, audience=[VENDOR])
@example(issued="2027-01-10T08:00:00Z", expires=LEAP, claims={}, audience=[VENDOR])
def test_attestations_with_extreme_claims(
    issued: Any, expires: Any, claims: Any, audience: Any
) -> None:
    payload = {
        "aud": audience,
        "claims": claims,
        "exp": expires,
        "iat": issued,
        "iss": ISSUER,
        "jti": "urn:uuid:7d1c3f4e-2b8a-4c55-9e61-0a3f5b2c9d10",
        "kind": "ability-to-pay",
        "sub": BUYERS[0].identifier,
    }
    try:
        token = sign_compact(canonical.canonical_json(payload), ISSUER_KEY, typ=ATTESTATION_TYP)
    except ProtocolError:
        return
    only_protocol_errors(lambda: _attestation(token))
