"""Evidence bundles (spec §6.32): a thread she can hand to a third party, that
verifies offline.

A bundle is one JSON document (``format`` :data:`BUNDLE_FORMAT`) carrying

* ``messages``: the compact JWS of every message of one thread, in the order
  her agent recorded them, each with its message digest (spec §8.5), the
  receipt its receiver signed when it took it (spec §11.3), when kept, and
  its link in the digest chain;
* ``keys``: the JWKS of each party that is not a ``did:jwk`` as her agent
  retrieved it, with the time of retrieval (retired keys stay under
  ``retired`` and verify, as evidence, what they signed before their
  retirement: spec §13.4);
* ``head``: the last link of the chain, and ``seal``: a JWS (``typ``
  :data:`SEAL_TYP`) over the bundle's summary by the key of her pseudonym in
  that relationship.

Each link is ``sha-256:`` + base64url(SHA-256(RFC 8785 JSON of
``{"digest": <message digest>, "previous": <previous link or null>,
"receipt": <the receipt's digest or null>}``)): a message or a receipt left
out, added or moved changes every later link and the head.

:func:`build_bundle` makes one; :func:`verify_bundle` checks one with
nothing but the document: every digest and link, the head, the seal, every
signature with the keys the bundle carries (at each message's ``created``),
one thread between two parties, and every ``messageRef`` between messages of
the bundle. Sans-IO: no network, no clock but the messages' own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from vrm_protocol.canonical import b64url_decode, b64url_encode, canonical_json, message_digest
from vrm_protocol.codec import decode
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.keys import (
    DID_JWK_PREFIX,
    KeySet,
    SigningKey,
    evidence_resolver,
    key_resolver,
)
from vrm_protocol.models import ReceiptMessage
from vrm_protocol.signing_profile import sign_compact, verify_compact

__all__ = [
    "BUNDLE_FORMAT",
    "SEAL_TYP",
    "BundleReport",
    "KeySnapshot",
    "build_bundle",
    "chain_link",
    "verify_bundle",
]

#: The bundle's ``format`` member.
BUNDLE_FORMAT: Final = "vrm-evidence-bundle/1"
#: The JWS ``typ`` of a bundle's seal.
SEAL_TYP: Final = "vrm-evidence+jws"
#: The most messages one bundle carries (a thread of a relationship, not an archive).
MAX_MESSAGES: Final = 10_000


@dataclass(frozen=True, slots=True)
class KeySnapshot:
    """A party's JWKS as retrieved at ``retrieved_at`` (a protocol timestamp)."""

    party: str
    jwks: Mapping[str, Any]
    retrieved_at: str


@dataclass(frozen=True, slots=True)
class BundleReport:
    """What a verified bundle holds."""

    thread: str
    count: int
    head: str
    parties: tuple[str, ...]
    sealed_by: str
    types: tuple[str, ...]


def chain_link(previous: str | None, digest: str, receipt: str | None = None) -> str:
    """The link of the message ``digest`` (with the digest of its ``receipt``, if
    kept) after ``previous`` (``None`` for the first message)."""
    link = canonical_json({"digest": digest, "previous": previous, "receipt": receipt})
    return "sha-256:" + b64url_encode(hashlib.sha256(link).digest())


def _seal_payload(
    thread: str, head: str, count: int, sealed_by: str, sealed_at: str
) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "thread": thread,
        "head": head,
        "count": count,
        "sealedBy": sealed_by,
        "sealedAt": sealed_at,
    }


def build_bundle(
    tokens: Sequence[bytes],
    keys: Sequence[KeySnapshot],
    receipts: Sequence[bytes | None] = (),
    *,
    thread: str,
    seal_key: SigningKey,
    sealed_by: str,
    now: datetime,
) -> dict[str, Any]:
    """The bundle of ``tokens`` (one thread, in recorded order), with the receipt of
    each (``receipts``, in the same order; ``None`` or missing: none kept), sealed
    by ``seal_key`` (the key of ``sealed_by``, her pseudonym in the relationship).

    Raises:
        ValueError: no tokens, or more than :data:`MAX_MESSAGES`.
        LocalProtocolError: the seal cannot be signed with ``seal_key``.
    """
    if not tokens or len(tokens) > MAX_MESSAGES:
        raise ValueError(f"a bundle carries 1 to {MAX_MESSAGES} messages, not {len(tokens)}")
    messages = []
    previous: str | None = None
    for index, token in enumerate(tokens):
        digest = message_digest(token)
        receipt = receipts[index] if index < len(receipts) else None
        receipt_digest = message_digest(receipt) if receipt is not None else None
        previous = chain_link(previous, digest, receipt_digest)
        entry = {"token": token.decode("ascii"), "digest": digest, "chain": previous}
        if receipt is not None:
            entry["receipt"] = receipt.decode("ascii")
        messages.append(entry)
    assert previous is not None
    sealed_at = format_timestamp(now)
    seal = sign_compact(
        canonical_json(_seal_payload(thread, previous, len(messages), sealed_by, sealed_at)),
        seal_key,
        typ=SEAL_TYP,
    )
    return {
        "format": BUNDLE_FORMAT,
        "thread": thread,
        "createdAt": sealed_at,
        "keys": [
            {"party": k.party, "retrievedAt": k.retrieved_at, "jwks": dict(k.jwks)} for k in keys
        ],
        "messages": messages,
        "head": previous,
        "seal": seal.decode("ascii"),
    }


def _refuted(code: ErrorCode, detail: str, path: str | None = None) -> RemoteProtocolError:
    return RemoteProtocolError(code, f"the bundle does not hold: {detail}", path=path)


def _string(document: Mapping[str, Any], name: str, path: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise _refuted(ErrorCode.SCHEMA_INVALID, f"{name} must be a non-empty string", path)
    return value


def _list(document: Mapping[str, Any], name: str) -> list[Any]:
    value = document.get(name)
    if not isinstance(value, list):
        raise _refuted(ErrorCode.SCHEMA_INVALID, f"{name} must be an array", f"/{name}")
    return value


def _key_sets(entries: list[Any]) -> dict[str, KeySet]:
    found: dict[str, KeySet] = {}
    for index, entry in enumerate(entries):
        path = f"/keys/{index}"
        if not isinstance(entry, Mapping):
            raise _refuted(ErrorCode.SCHEMA_INVALID, "a key snapshot is an object", path)
        party = _string(entry, "party", path + "/party")
        _instant(entry, "retrievedAt", path + "/retrievedAt")
        jwks = entry.get("jwks")
        try:
            if not isinstance(jwks, Mapping):
                raise ValueError("not a JSON object")
            found[party] = KeySet.from_jwks(jwks)
        except (ValueError, ProtocolError) as error:
            raise _refuted(
                ErrorCode.UNKNOWN_KEY, f"the JWKS of {party} is unusable: {error}", path + "/jwks"
            ) from None
    return found


def _instant(document: Mapping[str, Any], name: str, path: str) -> datetime:
    value = _string(document, name, path)
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, ProtocolError):
        raise _refuted(ErrorCode.SCHEMA_INVALID, f"{name} is not an instant", path) from None


def _claims(token: bytes, path: str) -> Mapping[str, Any]:
    """The payload of ``token`` read before verification: to know which key and
    which instant verify it (the signature is checked right after)."""
    try:
        payload = orjson.loads(b64url_decode(token.split(b".")[1]))
    except (IndexError, ValueError, ProtocolError):
        raise _refuted(ErrorCode.MALFORMED_JWS, "a message is not a compact JWS", path) from None
    if not isinstance(payload, dict):
        raise _refuted(ErrorCode.MALFORMED_JWS, "a message's payload is not an object", path)
    return payload


def _refs(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """Every ``{id, digest}`` object (a ``messageRef``) in ``value``, with its path."""
    if isinstance(value, Mapping):
        ident, digest = value.get("id"), value.get("digest")
        if isinstance(ident, str) and isinstance(digest, str) and digest.startswith("sha-256:"):
            yield ident, digest, path
        for name, member in value.items():
            yield from _refs(member, f"{path}/{name}")
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from _refs(member, f"{path}/{index}")


def verify_bundle(document: Any) -> BundleReport:
    """Check a bundle with nothing but its own contents (see the module docstring).

    Raises:
        RemoteProtocolError: SCHEMA_INVALID (not a bundle of this format, a
            message of another thread or between other parties),
            REFERENCE_MISMATCH (a digest, a link, the head, the seal's summary
            or a ``messageRef`` between bundled messages does not match),
            or the code of the first stage that refuses a message or the seal
            (MALFORMED_JWS, UNKNOWN_KEY, BAD_SIGNATURE, ...).
    """
    if not isinstance(document, Mapping) or document.get("format") != BUNDLE_FORMAT:
        raise _refuted(ErrorCode.SCHEMA_INVALID, f"not a {BUNDLE_FORMAT} document", "/format")
    thread = _string(document, "thread", "/thread")
    keys = _key_sets(_list(document, "keys"))
    entries = _list(document, "messages")
    if not entries or len(entries) > MAX_MESSAGES:
        raise _refuted(ErrorCode.SCHEMA_INVALID, "no messages, or too many", "/messages")
    previous: str | None = None
    digests: dict[str, str] = {}
    parties: set[str] = set()
    types: list[str] = []
    bodies: list[tuple[Any, str]] = []
    for index, entry in enumerate(entries):
        path = f"/messages/{index}"
        if not isinstance(entry, Mapping):
            raise _refuted(ErrorCode.SCHEMA_INVALID, "a message entry is an object", path)
        token = _string(entry, "token", path + "/token").encode("ascii", "replace")
        digest = message_digest(token)
        if entry.get("digest") != digest:
            raise _refuted(
                ErrorCode.REFERENCE_MISMATCH, "a message's digest is not its token's", path
            )
        receipt = entry.get("receipt")
        if receipt is not None and not isinstance(receipt, str):
            raise _refuted(ErrorCode.SCHEMA_INVALID, "a receipt is a compact JWS", path)
        receipt_token = receipt.encode("ascii", "replace") if receipt is not None else None
        receipt_digest = message_digest(receipt_token) if receipt_token is not None else None
        previous = chain_link(previous, digest, receipt_digest)
        if entry.get("chain") != previous:
            raise _refuted(ErrorCode.REFERENCE_MISMATCH, "the digest chain is broken", path)
        claims = _claims(token, path + "/token")
        sender = claims.get("from")
        created = _instant(claims, "created", path + "/token")
        try:
            received = decode(
                token,
                resolve_key=evidence_resolver(
                    keys.get(sender) if isinstance(sender, str) else None, created
                ),
                receiver=None,
                now=created,
            )
        except ProtocolError as error:
            raise _refuted(
                error.code, f"message {index} does not verify: {error.detail}", path
            ) from None
        message = received.message
        if message.thread != thread:
            raise _refuted(ErrorCode.SCHEMA_INVALID, f"message {index} is of another thread", path)
        parties.update([message.from_, *message.to])
        if len(parties) > 2:
            raise _refuted(
                ErrorCode.SCHEMA_INVALID, "the messages are not between two parties", path
            )
        if receipt_token is not None:
            _verify_receipt(receipt_token, keys, message.id, digest, message.from_, path)
        digests[message.id] = digest
        types.append(message.type)
        bodies.append((received.payload.get("body"), path))
    # Every reference between messages of the bundle binds the bytes bundled (spec §8.5).
    for body, path in bodies:
        for ident, digest, where in _refs(body, path + "/body"):
            if ident in digests and digests[ident] != digest:
                raise _refuted(
                    ErrorCode.REFERENCE_MISMATCH,
                    f"a reference to {ident} names another digest than the bundled message's",
                    where,
                )
    if document.get("head") != previous:
        raise _refuted(
            ErrorCode.REFERENCE_MISMATCH, "the head is not the chain's last link", "/head"
        )
    assert previous is not None
    sealed_by = _verify_seal(document, thread, previous, len(entries), parties)
    return BundleReport(
        thread, len(entries), previous, tuple(sorted(parties)), sealed_by, tuple(types)
    )


def _verify_receipt(
    token: bytes,
    keys: Mapping[str, KeySet],
    message_id: str,
    digest: str,
    sender: str,
    path: str,
) -> None:
    """A receipt kept with a message: signed by its receiver, naming exactly its bytes."""
    where = path + "/receipt"
    claims = _claims(token, where)
    signer = claims.get("from")
    created = _instant(claims, "created", where)
    try:
        received = decode(
            token,
            resolve_key=evidence_resolver(
                keys.get(signer) if isinstance(signer, str) else None, created
            ),
            receiver=None,
            now=created,
        )
    except ProtocolError as error:
        raise _refuted(error.code, f"a receipt does not verify: {error.detail}", where) from None
    receipt = received.message
    if not isinstance(receipt, ReceiptMessage) or receipt.from_ == sender:
        raise _refuted(ErrorCode.SCHEMA_INVALID, "a receipt is not its receiver's receipt", where)
    regarding = receipt.body.regarding
    if regarding.id != message_id or regarding.digest != digest:
        raise _refuted(
            ErrorCode.REFERENCE_MISMATCH, "a receipt names another message than its own", where
        )


def _verify_seal(
    document: Mapping[str, Any], thread: str, head: str, count: int, parties: set[str]
) -> str:
    seal = _string(document, "seal", "/seal").encode("ascii", "replace")
    try:
        verified = verify_compact(seal, resolve_key=key_resolver(None), typ=SEAL_TYP)
    except ProtocolError as error:
        raise _refuted(error.code, f"the seal does not verify: {error.detail}", "/seal") from None
    summary = verified.document or {}
    sealed_by = summary.get("sealedBy")
    if (
        not isinstance(sealed_by, str)
        or not sealed_by.startswith(DID_JWK_PREFIX)
        or sealed_by not in parties
        or verified.key.kid.split("#")[0] != sealed_by
    ):
        raise _refuted(
            ErrorCode.KEY_SENDER_MISMATCH,
            "the seal is not by the key of a pseudonym of the thread",
            "/seal",
        )
    expected = _seal_payload(thread, head, count, sealed_by, str(summary.get("sealedAt")))
    if dict(summary) != expected:
        raise _refuted(
            ErrorCode.REFERENCE_MISMATCH, "the seal is over another thread, head or count", "/seal"
        )
    return sealed_by
