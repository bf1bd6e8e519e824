"""Re-engagement with what she kept (seed 003 step 10): the vendor relies on evidence
only when it verifies as its own signed message, with its key history (VRM-RET-005),
and names the earlier deal in its offer (VRM-RET-006)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from reference_vendor.agent import VendorAgent
from reference_vendor.evidence import credit_evidence, verified_evidence
from vrm_protocol.codec import encode
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey
from vrm_protocol.models import OfferBody, parse_message_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
DEALER = "https://dealer.example"


@dataclass
class _Vendor:
    """What verifying evidence needs of the agent: its id and its key history."""

    party_id: str
    key_set: KeySet


def _confirmation(key: SigningKey, *, created: datetime, deal: str = "deal-1") -> str:
    payload: dict[str, Any] = json.loads(
        (EXAMPLES / "deal-confirmation.prius-home-delivery.json").read_text()
    )
    payload["from"] = DEALER
    payload["to"] = [PairwiseIdentity.generate().identifier]
    payload["created"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["expires"] = (created + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    payload["body"]["deal"]["id"] = deal
    return encode(parse_message_dict(payload), key).decode()


def _vendor(keys: KeySet) -> VendorAgent:
    return cast(VendorAgent, _Vendor(DEALER, keys))


def test_its_own_confirmation_verifies_even_under_a_key_retired_since() -> None:
    key = SigningKey.generate("EdDSA")
    keys = KeySet([key.public()])
    then = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
    token = _confirmation(key, created=then)
    keys.add(SigningKey.generate("EdDSA").public())
    keys.retire(key.kid, at=then + timedelta(days=365))
    evidence = verified_evidence(_vendor(keys), [token])
    assert [m.body.deal.id for m in evidence.deals] == ["deal-1"]
    assert evidence.refused == ()


def test_a_confirmation_signed_by_another_key_is_not_relied_on() -> None:
    key = SigningKey.generate("EdDSA")
    forger = SigningKey.generate("EdDSA", kid=key.kid)
    token = _confirmation(forger, created=datetime(2027, 1, 10, 9, 0, tzinfo=UTC))
    evidence = verified_evidence(_vendor(KeySet([key.public()])), [token, "not.a.token"])
    assert evidence.verified == ()
    assert len(evidence.refused) == 2


def test_a_key_retired_before_the_message_proves_nothing() -> None:
    key = SigningKey.generate("EdDSA")
    keys = KeySet([key.public()])
    then = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
    keys.add(SigningKey.generate("EdDSA").public())
    keys.retire(key.kid, at=then - timedelta(days=1))
    evidence = verified_evidence(_vendor(keys), [_confirmation(key, created=then)])
    assert evidence.verified == ()


def test_the_offer_names_the_earlier_deal() -> None:
    key = SigningKey.generate("EdDSA")
    token = _confirmation(key, created=datetime(2027, 1, 10, 9, 0, tzinfo=UTC), deal="deal-7")
    evidence = verified_evidence(_vendor(KeySet([key.public()])), [token])
    offer = OfferBody.model_validate(
        json.loads((EXAMPLES / "offer.indicative.json").read_text())["body"]
    )
    credited = credit_evidence(offer, evidence)
    assert any("deal-7" in c.description for c in credited.conditions or ())
    assert credit_evidence(offer, verified_evidence(_vendor(KeySet()), [token])) == offer
