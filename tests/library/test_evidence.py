"""Evidence bundles (spec §6.32, ``vrm_protocol.evidence``): a thread that
verifies offline, and every way of tampering with it refuted."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vrm_protocol.canonical import message_digest
from vrm_protocol.codec import build_message, encode
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.evidence import BUNDLE_FORMAT, KeySnapshot, build_bundle, verify_bundle
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey

DEALER = "https://dealer.example"
T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


class Thread:
    """A support request and its resolution between her pseudonym and the dealer."""

    def __init__(self) -> None:
        self.her = PairwiseIdentity.generate()
        self.dealer_key = SigningKey.generate("ES256")
        self.keys = KeySet([self.dealer_key.public()])
        self.tokens: list[bytes] = []
        request = build_message(
            "support-request",
            {"subject": "Warning light", "description": "After cold starts", "severity": "high"},
            sender=self.her.identifier,
            to=[DEALER],
            now=T0,
        )
        self.thread = str(request["id"])
        self.add(request, self.her.signing_key)
        self.add(
            self.reply(
                "support-resolution",
                {
                    "request": self.ref(0),
                    "status": "in-progress",
                    "resolution": "The workshop will look.",
                },
                at=T0 + timedelta(hours=1),
            ),
            self.dealer_key,
        )

    def ref(self, index: int) -> dict[str, str]:
        token = self.tokens[index]
        payload_id = self.ids[index]
        return {"id": payload_id, "digest": message_digest(token)}

    @property
    def ids(self) -> list[str]:
        import json

        from vrm_protocol.canonical import b64url_decode

        return [json.loads(b64url_decode(t.split(b".")[1]))["id"] for t in self.tokens]

    def reply(self, kind: str, body: dict[str, Any], *, at: datetime) -> dict[str, Any]:
        return dict(
            build_message(
                kind, body, sender=DEALER, to=[self.her.identifier], now=at, thread=self.thread
            )
        )

    def add(self, payload: dict[str, Any], key: SigningKey) -> None:
        self.tokens.append(encode(payload, key))

    def bundle(self, keys: KeySet | None = None) -> dict[str, Any]:
        snapshot = (keys or self.keys).to_jwks()
        return build_bundle(
            self.tokens,
            [KeySnapshot(DEALER, snapshot, format_timestamp(T0 + timedelta(days=1)))],
            thread=self.thread,
            seal_key=self.her.signing_key,
            sealed_by=self.her.identifier,
            now=T0 + timedelta(days=2),
        )


def refuted(document: Any, code: ErrorCode) -> None:
    with pytest.raises(RemoteProtocolError) as raised:
        verify_bundle(document)
    assert raised.value.code is code, raised.value


def test_a_bundle_verifies_offline_long_after_its_messages_expired() -> None:
    thread = Thread()
    bundle = thread.bundle()
    assert bundle["format"] == BUNDLE_FORMAT
    report = verify_bundle(bundle)
    assert report.count == 2
    assert report.thread == thread.thread
    assert report.sealed_by == thread.her.identifier
    assert set(report.parties) == {thread.her.identifier, DEALER}
    assert report.types == ("support-request", "support-resolution")
    assert report.head == bundle["messages"][-1]["chain"]


def test_a_key_retired_after_the_message_still_verifies_it_as_evidence() -> None:
    thread = Thread()
    keys = KeySet([thread.dealer_key.public()])
    keys.add(SigningKey.generate("ES256").public())
    keys.retire(thread.dealer_key.kid, at=T0 + timedelta(days=1))
    assert verify_bundle(thread.bundle(keys)).count == 2
    # Retired before the message was made: that key never made it.
    early = KeySet([SigningKey.generate("ES256").public()])
    early.add(thread.dealer_key.public())
    early.retire(thread.dealer_key.kid, at=T0)
    refuted(thread.bundle(early), ErrorCode.UNKNOWN_KEY)


@pytest.mark.parametrize("change", ["swap", "drop", "add", "head"])
def test_the_digest_chain_refutes_a_message_moved_dropped_or_added(change: str) -> None:
    thread = Thread()
    bundle = thread.bundle()
    messages = bundle["messages"]
    if change == "swap":
        messages[0], messages[1] = messages[1], messages[0]
    elif change == "drop":
        del messages[0]
    elif change == "add":
        messages.append(copy.deepcopy(messages[-1]))
    else:
        bundle["head"] = messages[0]["chain"]
    refuted(bundle, ErrorCode.REFERENCE_MISMATCH)


def test_a_token_changed_or_re_signed_is_refuted() -> None:
    thread = Thread()
    bundle = thread.bundle()
    token = bundle["messages"][1]["token"]
    header, payload, signature = token.split(".")
    bundle["messages"][1]["token"] = f"{header}.{payload}.{signature[:-4]}AAAA"
    refuted(bundle, ErrorCode.REFERENCE_MISMATCH)  # the digest no longer matches
    # Recomputed digests and chain: the signature still refutes it.
    forged = build_bundle(
        [thread.tokens[0], f"{header}.{payload}.{signature[:-4]}AAAA".encode()],
        [KeySnapshot(DEALER, thread.keys.to_jwks(), format_timestamp(T0))],
        thread=thread.thread,
        seal_key=thread.her.signing_key,
        sealed_by=thread.her.identifier,
        now=T0,
    )
    refuted(forged, ErrorCode.BAD_SIGNATURE)


def test_a_reference_between_bundled_messages_must_bind_the_bundled_bytes() -> None:
    thread = Thread()
    wrong = {"id": thread.ids[0], "digest": "sha-256:" + "A" * 43}
    thread.add(
        thread.reply(
            "support-resolution",
            {"request": wrong, "status": "resolved", "resolution": "Done."},
            at=T0 + timedelta(hours=2),
        ),
        thread.dealer_key,
    )
    refuted(thread.bundle(), ErrorCode.REFERENCE_MISMATCH)


def test_the_seal_is_hers_and_over_this_bundle() -> None:
    thread = Thread()
    bundle = thread.bundle()
    stranger = PairwiseIdentity.generate()
    resealed = build_bundle(
        thread.tokens,
        [],
        thread=thread.thread,
        seal_key=stranger.signing_key,
        sealed_by=stranger.identifier,
        now=T0,
    )
    refuted({**bundle, "seal": resealed["seal"]}, ErrorCode.KEY_SENDER_MISMATCH)
    shorter = Thread()
    other = shorter.bundle()
    refuted({**bundle, "seal": other["seal"]}, ErrorCode.KEY_SENDER_MISMATCH)


def test_messages_of_another_thread_or_without_their_keys_are_refuted() -> None:
    thread = Thread()
    refuted({**thread.bundle(), "thread": "urn:uuid:other"}, ErrorCode.SCHEMA_INVALID)
    refuted({**thread.bundle(), "keys": []}, ErrorCode.UNKNOWN_KEY)


@pytest.mark.parametrize(
    "document",
    [None, [], {}, {"format": BUNDLE_FORMAT}, {"format": BUNDLE_FORMAT, "thread": "t"}],
)
def test_anything_else_is_refuted_with_a_protocol_error(document: Any) -> None:
    with pytest.raises(RemoteProtocolError):
        verify_bundle(document)


def test_junk_in_every_member_is_a_protocol_error() -> None:
    thread = Thread()
    bundle = thread.bundle()
    for member, junk in [
        ("messages", [{"token": "a.b.c", "digest": "x", "chain": "y"}]),
        ("messages", ["x"]),
        ("keys", [{"party": DEALER, "retrievedAt": "yesterday", "jwks": {}}]),
        ("keys", [{"party": DEALER, "retrievedAt": format_timestamp(T0), "jwks": []}]),
        ("seal", "not.a.seal"),
    ]:
        with pytest.raises(RemoteProtocolError):
            verify_bundle({**bundle, member: junk})


def _receipt(thread: Thread, index: int, signer: SigningKey, sender: str, to: str) -> bytes:
    """The receipt of message ``index`` by its receiver (``sender`` of the receipt)."""
    payload = build_message(
        "receipt",
        {
            "regarding": thread.ref(index),
            "status": "accepted",
            "receivedAt": format_timestamp(T0 + timedelta(hours=index)),
        },
        sender=sender,
        to=[to],
        now=T0 + timedelta(hours=index),
        thread=thread.thread,
    )
    return encode(payload, signer)


def _with_receipts(thread: Thread, receipts: list[bytes | None]) -> dict[str, Any]:
    return build_bundle(
        thread.tokens,
        [KeySnapshot(DEALER, thread.keys.to_jwks(), format_timestamp(T0))],
        receipts,
        thread=thread.thread,
        seal_key=thread.her.signing_key,
        sealed_by=thread.her.identifier,
        now=T0 + timedelta(days=2),
    )


def test_receipts_prove_each_side_took_the_others_message() -> None:
    thread = Thread()
    dealers = _receipt(thread, 0, thread.dealer_key, DEALER, thread.her.identifier)
    hers = _receipt(thread, 1, thread.her.signing_key, thread.her.identifier, DEALER)
    bundle = _with_receipts(thread, [dealers, hers])
    assert verify_bundle(bundle).count == 2
    assert bundle["messages"][0]["receipt"] == dealers.decode()
    # A receipt dropped or swapped breaks the chain; one for another message is refuted.
    dropped = copy.deepcopy(bundle)
    del dropped["messages"][0]["receipt"]
    refuted(dropped, ErrorCode.REFERENCE_MISMATCH)
    refuted(_with_receipts(thread, [hers, None]), ErrorCode.SCHEMA_INVALID)
    wrong = _receipt(thread, 1, thread.dealer_key, DEALER, thread.her.identifier)
    refuted(_with_receipts(thread, [wrong, None]), ErrorCode.REFERENCE_MISMATCH)
    forged = _receipt(thread, 0, SigningKey.generate("ES256"), DEALER, thread.her.identifier)
    refuted(_with_receipts(thread, [forged, None]), ErrorCode.UNKNOWN_KEY)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, member in value.items() for p in _leaves(member, (*path, key))] + [path]
    if isinstance(value, list):
        return [p for i, member in enumerate(value) for p in _leaves(member, (*path, i))] + [path]
    return [path]


def test_a_bundle_with_any_member_replaced_by_junk_is_a_protocol_error_or_still_holds() -> None:
    """D4: whatever the document, verify_bundle raises nothing but protocol errors."""
    import random

    thread = Thread()
    bundle = thread.bundle()
    junk: list[Any] = [None, 0, -1, 2**70, 1.5, "", "x", "a.b.c", [], {}, [None], {"keys": 1}]
    chooser = random.Random(20261206)
    paths = [p for p in _leaves(bundle) if p]
    for _ in range(400):
        document = copy.deepcopy(bundle)
        path = chooser.choice(paths)
        node = document
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = chooser.choice(junk)
        with contextlib.suppress(RemoteProtocolError):
            verify_bundle(document)
