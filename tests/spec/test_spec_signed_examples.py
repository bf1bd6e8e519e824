"""The worked example (spec §17) as published: every message signed with the test keys.

These tests read the built files (``spec/vrm-protocol.md``, ``spec/vrm-protocol.html``,
``spec/test-keys.json``) and verify them with the published keys only, as another
implementation would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tools.specgen import SpecBuildError
from tools.specgen.schema_docs import load_examples, load_schemas
from tools.specgen.signed_examples import sign_journey, verify_journey
from vrm_protocol.canonical import b64url_decode, b64url_encode, message_digest
from vrm_protocol.codec import decode, encode
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.keys import (
    DID_JWK_PREFIX,
    KeySet,
    SigningKey,
    VerifyingKey,
    did_jwk_identifier,
    key_resolver,
)

ROOT = Path(__file__).resolve().parents[2]
SEED_PREFIX = b"vrm-protocol spec test key:"


@pytest.fixture(scope="module")
def published_keys() -> dict[str, Any]:
    document = json.loads((ROOT / "spec/test-keys.json").read_text("utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def markdown_tokens() -> list[bytes]:
    markdown = (ROOT / "spec/vrm-protocol.md").read_text("utf-8")
    worked = markdown[markdown.index('<a id="sec-17"></a>') :]
    blocks = re.findall(r"as a compact JWS \(.*?:\n\n```text\n(.*?)\n```", worked, flags=re.S)
    return [block.replace("\n", "").encode("ascii") for block in blocks]


def _walk(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for member in value.values():
            yield from _walk(member)
    elif isinstance(value, list):
        for member in value:
            yield from _walk(member)


def _unverified_payload(token: bytes) -> dict[str, Any]:
    payload = json.loads(b64url_decode(token.split(b".")[1]))
    assert isinstance(payload, dict)
    return payload


def test_every_example_is_shown_signed(markdown_tokens: list[bytes]) -> None:
    examples = sorted((ROOT / "schemas/examples").glob("*.json"))
    assert len(markdown_tokens) == len(examples) > 0
    html = (ROOT / "spec/vrm-protocol.html").read_text("utf-8")
    html_tokens = re.findall(r'<pre class="jws"><code>([^<]+)</code></pre>', html)
    assert [token.encode("ascii") for token in html_tokens] == markdown_tokens


def test_published_keys_follow_the_stated_derivation(published_keys: dict[str, Any]) -> None:
    parties = published_keys["parties"]
    assert "TEST ONLY" in published_keys["warning"]
    assert len({party["label"] for party in parties}) == len(parties)
    for party in parties:
        seed = hashlib.sha256(SEED_PREFIX + party["label"].encode("utf-8")).digest()
        assert party["privateJwk"]["d"] == b64url_encode(seed)
        private = SigningKey.from_private_jwk(party["privateJwk"])
        public = VerifyingKey.from_jwk(party["publicJwk"])
        assert private.public().public_members() == public.public_members()
        if party["id"].startswith(DID_JWK_PREFIX):
            assert party["id"] == did_jwk_identifier(public)
            assert party["kid"] == party["id"] + "#0"
        else:
            assert party["kid"] == public.thumbprint()
    assert {key["kid"] for key in published_keys["jwks"]["keys"]} == {
        party["kid"] for party in parties
    }


def test_signed_examples_verify_with_the_published_keys(
    markdown_tokens: list[bytes], published_keys: dict[str, Any]
) -> None:
    url_keys = {
        party["kid"]: (party["id"], VerifyingKey.from_jwk(party["publicJwk"]))
        for party in published_keys["parties"]
        if not party["id"].startswith(DID_JWK_PREFIX)
    }
    resolve = key_resolver(KeySet(key for _, key in url_keys.values()))
    digests: dict[str, str] = {}
    references_checked = 0
    previous_created = ""
    for token in markdown_tokens:
        claimed = _unverified_payload(token)
        received = decode(
            token,
            resolve_key=resolve,
            receiver=claimed["to"][0],
            now=parse_timestamp(claimed["created"]),
        )
        sender = received.message.from_
        if not sender.startswith(DID_JWK_PREFIX):
            # A URL party signs only with its own published key (spec §8.4).
            assert url_keys[received.signer_kid][0] == sender
        assert received.payload["created"] >= previous_created  # journey order
        previous_created = str(received.payload["created"])
        for reference in _walk(received.payload):
            if "digest" in reference and reference.get("id") in digests:
                assert reference["digest"] == digests[reference["id"]], reference["id"]
                references_checked += 1
        assert received.payload["id"] not in digests
        digests[str(received.payload["id"])] = message_digest(token)
    # The journey is a chain: most replies name an earlier message by digest.
    assert references_checked >= len(markdown_tokens) // 2


def test_a_tampered_example_fails_the_build() -> None:
    schemas = load_schemas(ROOT / "schemas")
    journey = sign_journey(load_examples(schemas, ROOT / "schemas/examples"))
    verify_journey(journey)
    first = journey.messages[0]
    header, payload, signature = first.token.split(b".")
    flipped = signature[:-2] + (b"A" if signature[-2:-1] != b"A" else b"B") + signature[-1:]
    tampered = dataclasses.replace(first, token=b".".join([header, payload, flipped]))
    broken = dataclasses.replace(journey, messages=(tampered, *journey.messages[1:]))
    with pytest.raises(SpecBuildError, match="does not verify"):
        verify_journey(broken)


def test_a_stale_reference_fails_the_build() -> None:
    schemas = load_schemas(ROOT / "schemas")
    journey = sign_journey(load_examples(schemas, ROOT / "schemas/examples"))
    second = journey.messages[1]
    payload = json.loads(json.dumps(second.payload))
    payload["body"]["regarding"]["digest"] = "sha-256:" + "A" * 43
    sender = journey.party(payload["from"]).key
    token = encode(payload, sender)
    stale = dataclasses.replace(second, payload=payload, token=token, digest=message_digest(token))
    broken = dataclasses.replace(
        journey, messages=(journey.messages[0], stale, *journey.messages[2:])
    )
    with pytest.raises(SpecBuildError, match="stale digest"):
        verify_journey(broken)
