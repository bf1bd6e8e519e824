"""The worked example (spec §17) signed with published test keys.

The example payloads of ``schemas/examples`` carry placeholder pseudonyms and
digests. For the specification they are re-keyed to deterministic TEST keys,
one per party, and signed in ``created`` order, so that every byte of every
message (and every ``messageRef`` digest, spec §8.5) can be reproduced by
another implementation from the published keys:

* each party's Ed25519 private key is the 32 bytes
  ``SHA-256("vrm-protocol spec test key:" + label)`` (a seed for
  ``cryptography``'s Ed25519; nothing else is derived by hand);
* a buyer's pseudonym becomes the ``did:jwk`` of its test key (spec §3.1),
  a party identified by URL keeps its URL and signs with ``kid`` = RFC 7638
  thumbprint (spec §3.2, §8.4);
* attestation tokens inside bodies are re-issued with the issuer's test key
  (same claims, re-keyed; spec §10);
* every ``{id, digest}`` that names an earlier example message gets the
  digest of that message's token (spec §8.5).

Ed25519 signatures are deterministic (RFC 8032), so the output is
byte-stable. :func:`verify_journey` runs every token through the inbound
pipeline (:func:`vrm_protocol.codec.decode`) and every attestation through
:func:`vrm_protocol.attestations.verify_attestation`; the build fails on any
error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tools.specgen.errors import SpecBuildError
from tools.specgen.schema_docs import Example
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.canonical import b64url_decode, b64url_encode, canonical_json, message_digest
from vrm_protocol.codec import decode, encode
from vrm_protocol.errors import ProtocolError
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.keys import (
    DID_JWK_PREFIX,
    KeyResolver,
    KeySet,
    PairwiseIdentity,
    SigningKey,
    key_resolver,
)
from vrm_protocol.signing_profile import sign_compact
from vrm_protocol.vocabulary import ATTESTATION_TYP

__all__ = [
    "SEED_PREFIX",
    "TEST_KEYS_FILE",
    "SignedExample",
    "SignedJourney",
    "TestParty",
    "journey_order",
    "sign_journey",
    "test_signing_key",
    "verify_journey",
]

#: Prefix of the seed of every test key: ``SHA-256(SEED_PREFIX + label)``.
SEED_PREFIX: Final = b"vrm-protocol spec test key:"
#: Where the build writes the published test keys (repository-relative).
TEST_KEYS_FILE: Final = "spec/test-keys.json"
#: The warning every rendering of the test keys carries.
TEST_ONLY_WARNING: Final = (
    "TEST ONLY. These private keys are published so that other implementations can "
    "reproduce every byte of the worked example (spec §17). Never use them for anything else."
)

_DID_JWK: Final = re.compile(r"did:jwk:[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class TestParty:
    """One party of the worked example and its published test key.

    Attributes:
        label: the seed label (``SHA-256(SEED_PREFIX + label)`` is the key).
        identifier: the party's id in the signed example (did:jwk or URL).
        replaces: the id the unsigned examples use for it (same for URLs).
        key: the signing key; ``kid`` is ``<did>#0`` or the thumbprint.
    """

    __test__ = False  # not a pytest class, whatever its name says

    label: str
    identifier: str
    replaces: str
    key: SigningKey


@dataclass(frozen=True, slots=True)
class SignedExample:
    """One example message, re-keyed and signed.

    Attributes:
        example: the unsigned example it comes from.
        payload: the payload as signed (re-keyed, digests rewritten).
        token: the compact JWS.
        digest: its message digest (spec §8.5).
    """

    example: Example
    payload: Mapping[str, Any]
    token: bytes
    digest: str


@dataclass(frozen=True, slots=True)
class SignedJourney:
    """The whole worked example signed, with the parties' test keys."""

    parties: tuple[TestParty, ...]
    messages: tuple[SignedExample, ...]

    def party(self, identifier: str) -> TestParty:
        """The party whose (new) identifier is ``identifier``.

        Raises:
            KeyError: no party has that identifier.
        """
        for party in self.parties:
            if party.identifier == identifier:
                return party
        raise KeyError(identifier)

    def test_keys_document(self) -> dict[str, Any]:
        """The published test keys (``spec/test-keys.json``): public and PRIVATE JWKs."""
        return {
            "warning": TEST_ONLY_WARNING,
            "derivation": (
                "Ed25519 private key = SHA-256(UTF-8 'vrm-protocol spec test key:' + label)"
            ),
            "parties": [
                {
                    "label": party.label,
                    "id": party.identifier,
                    "kid": party.key.kid,
                    "publicJwk": party.key.public().to_jwk(),
                    "privateJwk": party.key.to_private_jwk(),
                }
                for party in self.parties
            ],
            "jwks": KeySet(party.key.public() for party in self.parties).to_jwks(),
        }


def test_signing_key(label: str) -> SigningKey:
    """The Ed25519 test key of ``label``: seed ``SHA-256(SEED_PREFIX + label)``.

    The ``kid`` is the RFC 7638 thumbprint (a pseudonym re-kids it).
    """
    seed = hashlib.sha256(SEED_PREFIX + label.encode("utf-8")).digest()
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public), "d": b64url_encode(seed)}
    return SigningKey.from_private_jwk(jwk)


test_signing_key.__test__ = False  # type: ignore[attr-defined]


def journey_order(examples: Sequence[Example]) -> list[Example]:
    """The examples in the order of the journey: ``created``, then file name."""
    return sorted(examples, key=lambda e: (str(e.payload.get("created", "")), e.name))


# -- walking JSON ---------------------------------------------------------------------------------


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {key: _map_strings(member, change) for key, member in value.items()}
    if isinstance(value, list):
        return [_map_strings(member, change) for member in value]
    return value


def _objects(value: Any) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    if isinstance(value, Mapping):
        found.append(value)
        for member in value.values():
            found.extend(_objects(member))
    elif isinstance(value, list):
        for member in value:
            found.extend(_objects(member))
    return found


def _attestation_payload(wrapper: Mapping[str, Any]) -> dict[str, Any] | None:
    """The payload of an attestation wrapper's token; None when it is not one."""
    token = wrapper.get("token")
    if not isinstance(token, str) or not isinstance(wrapper.get("issuer"), str):
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("typ") != ATTESTATION_TYP:
        return None
    return claims if isinstance(claims, dict) else None


# -- parties --------------------------------------------------------------------------------------


def _unique(label: str, taken: set[str]) -> str:
    candidate, number = label, 2
    while candidate in taken:
        candidate, number = f"{label} {number}", number + 1
    taken.add(candidate)
    return candidate


def _discover_parties(journey: Sequence[Example]) -> list[TestParty]:
    """One test party per pseudonym, URL party and attestation issuer, in journey order."""
    labels: dict[str, str] = {}  # old id -> label
    taken: set[str] = set()
    dids_seen: list[str] = []
    approval_issuers: set[str] = set()
    for example in journey:
        payload = example.payload
        envelope_ids = [str(payload.get("from", "")), *(str(t) for t in payload.get("to", []))]
        for identifier in envelope_ids:
            if identifier.startswith(DID_JWK_PREFIX) and identifier not in labels:
                counterparty = next(
                    (i for i in envelope_ids if not i.startswith(DID_JWK_PREFIX)), "?"
                )
                labels[identifier] = _unique(f"buyer pseudonym for {counterparty}", taken)
            elif identifier and identifier not in labels:
                labels[identifier] = _unique(identifier, taken)
        for wrapper in _objects(payload.get("body")):
            claims = _attestation_payload(wrapper)
            if claims is None:
                continue
            issuer = str(wrapper["issuer"])
            if issuer.startswith(DID_JWK_PREFIX):
                if claims.get("kind") == "approval":
                    approval_issuers.add(issuer)
            elif issuer not in labels:
                labels[issuer] = _unique(issuer, taken)
            dids_seen.extend(_DID_JWK.findall(str(canonical_json(claims), "utf-8")))
        dids_seen.extend(_DID_JWK.findall(str(canonical_json(payload), "utf-8")))
    for did in dids_seen:
        if did not in labels:
            role = "co-decision-maker" if did in approval_issuers else "pseudonymous party"
            labels[did] = _unique(role, taken)
    parties: list[TestParty] = []
    for old, label in labels.items():
        key = test_signing_key(label)
        if old.startswith(DID_JWK_PREFIX):
            identity = PairwiseIdentity.from_signing_key(key)
            parties.append(TestParty(label, identity.identifier, old, identity.signing_key))
        else:
            parties.append(TestParty(label, old, old, key))
    return parties


# -- signing --------------------------------------------------------------------------------------


def _rekey(value: Any, id_map: Mapping[str, str]) -> Any:
    # Placeholder did:jwk ids are unique strings, so a substring replacement
    # also re-keys them where they are embedded (e.g. a kid "<did>#0").
    def change(text: str) -> str:
        return _DID_JWK.sub(lambda match: id_map.get(match.group(0), match.group(0)), text)

    return _map_strings(value, change)


def _rewrite_refs(value: Any, digests: Mapping[str, str]) -> Any:
    """Every ``{id, digest}`` naming an earlier message gets that message's digest (spec §8.5)."""
    if isinstance(value, Mapping):
        rewritten = {key: _rewrite_refs(member, digests) for key, member in value.items()}
        if "digest" in rewritten and rewritten.get("id") in digests:
            rewritten["digest"] = digests[str(rewritten["id"])]
        return rewritten
    if isinstance(value, list):
        return [_rewrite_refs(member, digests) for member in value]
    return value


def _reissue_attestations(
    value: Any,
    id_map: Mapping[str, str],
    digests: Mapping[str, str],
    keys: Mapping[str, SigningKey],
) -> Any:
    """Re-sign every attestation token with its issuer's test key (spec §10)."""
    if isinstance(value, list):
        return [_reissue_attestations(member, id_map, digests, keys) for member in value]
    if not isinstance(value, Mapping):
        return value
    rewritten = {
        key: _reissue_attestations(member, id_map, digests, keys) for key, member in value.items()
    }
    claims = _attestation_payload(value)
    if claims is not None:
        issuer = str(rewritten["issuer"])
        if issuer not in keys:
            raise SpecBuildError(f"attestation issuer {issuer!r} has no test key")
        new_claims = _rewrite_refs(_rekey(claims, id_map), digests)
        token = sign_compact(canonical_json(new_claims), keys[issuer], typ=ATTESTATION_TYP)
        rewritten["token"] = token.decode("ascii")
    return rewritten


def sign_journey(examples: Sequence[Example]) -> SignedJourney:
    """Re-key and sign every example in journey order (see the module docstring).

    Raises:
        SpecBuildError: an example cannot be signed (a party without a key,
            or the codec refuses the payload; the message says which).
    """
    journey = journey_order(examples)
    parties = _discover_parties(journey)
    id_map = {p.replaces: p.identifier for p in parties if p.replaces != p.identifier}
    keys = {party.identifier: party.key for party in parties}
    digests: dict[str, str] = {}
    signed: list[SignedExample] = []
    for example in journey:
        payload = _rekey(dict(example.payload), id_map)
        payload = _rewrite_refs(payload, digests)
        payload = _reissue_attestations(payload, id_map, digests, keys)
        sender = str(payload.get("from", ""))
        if sender not in keys:
            raise SpecBuildError(f"example {example.name}: sender {sender!r} has no test key")
        try:
            token = encode(payload, keys[sender])
        except ProtocolError as error:
            raise SpecBuildError(f"example {example.name} cannot be signed: {error}") from error
        digest = message_digest(token)
        signed.append(SignedExample(example, payload, token, digest))
        digests[str(payload["id"])] = digest
    return SignedJourney(tuple(parties), tuple(signed))


# -- verification ---------------------------------------------------------------------------------


def _resolver_for(journey: SignedJourney, sender: str) -> KeyResolver:
    # Only the sender's own published keys: a URL party's kid must be found in
    # its JWKS (spec §8.4); a did:jwk resolves from the identifier itself.
    if sender.startswith(DID_JWK_PREFIX):
        return key_resolver(None)
    return key_resolver(KeySet([journey.party(sender).key.public()]))


def _trusted(journey: SignedJourney, issuer: str) -> dict[str, KeySet | None]:
    if issuer.startswith(DID_JWK_PREFIX):
        return {issuer: None}
    return {issuer: KeySet([journey.party(issuer).key.public()])}


def verify_journey(journey: SignedJourney) -> None:
    """Verify every signed example as its first receiver would, at its ``created`` time.

    Each token goes through :func:`vrm_protocol.codec.decode` (keys from the
    published test keys; receiver = first ``to``; now = ``created``), must
    decode to the payload that was signed, and every attestation inside it
    must verify for that receiver with subject = the sender; every
    ``{id, digest}`` naming an earlier message must carry that message's digest.

    Raises:
        SpecBuildError: the first message (or attestation) that fails, and why.
    """
    digests: dict[str, str] = {}
    for signed in journey.messages:
        name = signed.example.name
        sender = str(signed.payload.get("from", ""))
        receiver = str(signed.payload["to"][0])
        now = parse_timestamp(str(signed.payload["created"]))
        try:
            received = decode(
                signed.token,
                resolve_key=_resolver_for(journey, sender),
                receiver=receiver,
                now=now,
            )
            for wrapper in _objects(signed.payload.get("body")):
                if _attestation_payload(wrapper) is None:
                    continue
                issuer = str(wrapper["issuer"])
                verify_attestation(
                    wrapper,
                    trusted_issuers=_trusted(journey, issuer),
                    subject=sender,
                    audience=receiver,
                    now=now,
                )
        except (ProtocolError, KeyError) as error:
            raise SpecBuildError(f"signed example {name} does not verify: {error}") from error
        if dict(received.payload) != dict(signed.payload) or received.digest != signed.digest:
            raise SpecBuildError(f"signed example {name} decodes to another payload")
        for reference in _objects(received.payload):
            target = reference.get("id")
            stale = target in digests and reference.get("digest") != digests[str(target)]
            if "digest" in reference and stale:
                raise SpecBuildError(
                    f"signed example {name}: the reference to {target} has a stale digest"
                )
        digests[str(received.payload["id"])] = received.digest
