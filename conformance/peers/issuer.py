"""The suite's test credit-union: an attestation issuer the target must trust.

A vendor judges a buyer's ability-to-pay attestation by its issuer (spec
§10.3). For the attestation checks the vendor under test must trust the
suite's issuer, so its key is kept in a file (``--issuer-key``), printed by
``vrm conformance issuer``, and configured in the target before the run
(trust in an issuer is configuration, never learnt from the wire).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from conformance.forge import JoseSigner, canonical_json, compact
from conformance.peers.identity import new_key, signer_from_private_jwk
from conformance.peers.messages import new_message_id, timestamp
from vrm_protocol.vocabulary import ATTESTATION_TYP

__all__ = ["DEFAULT_ISSUER_ID", "TestIssuer"]

#: The issuer's party id: stable across runs, so a target configured once
#: keeps trusting it. (A URL in the reserved ``.example`` domain: it is an
#: identifier, never fetched.)
DEFAULT_ISSUER_ID: Final = "https://credit-union.conformance.vrm-protocol.example"


@dataclass(frozen=True, slots=True)
class TestIssuer:
    """An issuer id and its signing key."""

    issuer_id: str
    signer: JoseSigner

    __test__ = False  # not a pytest test class, despite the name

    @classmethod
    def load_or_create(cls, key_file: Path, *, issuer_id: str = DEFAULT_ISSUER_ID) -> TestIssuer:
        """Load the issuer key from ``key_file``, creating it (mode 0600) if missing.

        Raises:
            OSError: the file cannot be read or created.
            ValueError: the file does not hold a usable private JWK.
        """
        if key_file.exists():
            document = json.loads(key_file.read_text("utf-8"))
            return cls(
                str(document.get("issuer", issuer_id)), signer_from_private_jwk(document["key"])
            )
        signer = new_key("ES256")
        key_file.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 from the start: a private key is never world-readable.
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"issuer": issuer_id, "key": dict(signer.private_jwk)}, handle, indent=2)
        return cls(issuer_id, signer)

    @classmethod
    def ephemeral(cls, issuer_id: str) -> TestIssuer:
        """A throw-away issuer no target trusts (for untrusted-issuer checks)."""
        return cls(issuer_id, new_key("ES256"))

    def jwks(self) -> dict[str, Any]:
        """The issuer's public keys as a JWKS (RFC 7517 §5)."""
        public = {
            **self.signer.public_jwk,
            "kid": self.signer.kid,
            "alg": self.signer.alg,
            "use": "sig",
        }
        return {"keys": [public]}

    def attest(
        self,
        *,
        kind: str,
        subject: str,
        audience: Sequence[str],
        now: datetime,
        claims: Mapping[str, Any],
        lifetime: timedelta = timedelta(days=30),
    ) -> dict[str, Any]:
        """An ``attestation`` value (kind, issuer, compact JWS token) about ``subject``.

        The token's claims bind it to the subject (the buyer's pseudonym) so
        that it cannot be lifted into another relationship (spec §10.3).
        """
        payload = {
            "iss": self.issuer_id,
            "sub": subject,
            "aud": list(audience),
            "jti": new_message_id(),
            "iat": timestamp(now),
            "exp": timestamp(now + lifetime),
            "kind": kind,
            "claims": dict(claims),
        }
        header = {"alg": self.signer.alg, "kid": self.signer.kid, "typ": ATTESTATION_TYP}
        token = compact(header, canonical_json(payload), self.signer)
        return {"kind": kind, "issuer": self.issuer_id, "token": token.decode("ascii")}
