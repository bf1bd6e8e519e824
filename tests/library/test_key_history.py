"""Key history (spec §13.4): a retired key stays published, verifies as evidence the
messages signed before it was retired, and never verifies a message taken now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import InvalidKeyError, KeySet, SigningKey, evidence_resolver, key_resolver

DEALER = "https://dealer.example"
SALLY = (
    "did:jwk:eyJjcnYiOiJFZDI1NTE5Iiwia3R5IjoiT0tQIiwieCI6"
    "IjExcVlBWUt4Q3JmVlNfN1R5V1FIT2c3aGN2UGFwaU1scndJYWFQY0hVUm8ifQ"
)
T0 = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def _offer_token(key: SigningKey, now: datetime) -> bytes:
    body = {
        "basis": "binding",
        "validUntil": "2027-02-01T00:00:00Z",
        "items": [{"sku": "X", "description": "X", "quantity": 1,
                   "unitPrice": {"amount": "1", "currency": "GBP"}}],
        "price": {"subtotal": {"amount": "1", "currency": "GBP"},
                  "total": {"amount": "1", "currency": "GBP"}},
        "terms": {"id": "t", "version": "1", "url": f"{DEALER}/vrm/terms/t/1",
                  "digest": "sha-256:" + "A" * 43},
    }  # fmt: skip
    message = build_message("offer", body, sender=DEALER, to=[SALLY], now=now)
    return encode(message, key)


def test_a_retired_key_verifies_evidence_but_not_new_messages() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    keys = KeySet([old.public(), new.public()])
    token = _offer_token(old, T0)
    retired_at = T0 + timedelta(days=30)
    keys.retire(old.kid, at=retired_at)
    published = keys.to_jwks()
    assert [jwk["kid"] for jwk in published["keys"]] == [new.kid]
    assert published["retired"][0]["kid"] == old.kid
    assert published["retired"][0]["retiredAt"] == "2027-02-09T09:00:00Z"
    imported = KeySet.from_jwks(published)
    assert imported.retired_at(old.kid) == retired_at
    # A receiver taking the message now: the retired key is unknown.
    with pytest.raises(RemoteProtocolError) as refused:
        decode(token, resolve_key=key_resolver(imported), receiver=SALLY, now=T0)
    assert refused.value.code is ErrorCode.UNKNOWN_KEY
    # As evidence, at its creation: verified.
    received = decode(token, resolve_key=evidence_resolver(imported, T0), receiver=SALLY, now=T0)
    assert received.signer_kid == old.kid
    # A message claiming a creation after the retirement is not evidence.
    with pytest.raises(RemoteProtocolError) as late:
        evidence_resolver(imported, retired_at)(old.kid)
    assert late.value.code is ErrorCode.UNKNOWN_KEY


def test_a_retired_key_is_never_published_again_and_needs_its_instant() -> None:
    key = SigningKey.generate()
    keys = KeySet([key.public()])
    keys.retire(key.kid, at=T0)
    with pytest.raises(InvalidKeyError):
        keys.add(key.public())
    entry = keys.to_jwks()["retired"][0]
    for broken in ({k: v for k, v in entry.items() if k != "retiredAt"},
                   entry | {"retiredAt": "yesterday"}):  # fmt: skip
        with pytest.raises(InvalidKeyError):
            KeySet.from_jwks({"keys": [], "retired": [broken]})
    with pytest.raises(InvalidKeyError):
        KeySet.from_jwks({"keys": [key.public().to_jwk()], "retired": [entry]})


def test_retiring_without_an_instant_unpublishes_as_before() -> None:
    key = SigningKey.generate()
    keys = KeySet([key.public()])
    keys.retire(key.kid)
    assert keys.to_jwks() == {"keys": []}
