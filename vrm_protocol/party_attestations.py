"""Party attestations: statements about a party itself, not a buyer's pseudonym (spec §10.4).

A terms registry attests that a vendor or third party signed a standard
agreement (kind ``terms-signatory``). Such a statement is public: it is about
the party's own identifier, not one of the individual's pseudonyms, and any
receiver may verify it, so it has its own binding: ``sub`` is the attested
party's id and there is no ``aud``. A receiver binds it to the party that
presents it instead: ``sub`` must be the party asserting the terms (the
message's ``from`` and ``body.party.id``), and ``claims.terms`` the terms it
asserts (``id``, ``version`` and ``digest``), so it cannot be lifted by
another party, nor to other terms.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from vrm_protocol.attestations import VerifiedAttestation, verify_attestation
from vrm_protocol.canonical import canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import DEFAULT_SKEW, format_timestamp
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.signing_profile import sign_compact
from vrm_protocol.vocabulary import ATTESTATION_TYP

__all__ = [
    "PARTY_ATTESTATION_KINDS",
    "TERMS_SIGNATORY",
    "issue_party_attestation",
    "verify_terms_signatory",
]

TERMS_SIGNATORY: Final = "terms-signatory"
#: The kinds whose binding is the party's (spec §10.4); every other is a pseudonym's (§10.3).
PARTY_ATTESTATION_KINDS: Final = frozenset({TERMS_SIGNATORY})
#: A party attestation's default lifetime (a registry renews it yearly).
PARTY_ATTESTATION_LIFETIME: Final = timedelta(days=365)


def issue_party_attestation(
    *,
    kind: str,
    party: str,
    claims: Mapping[str, Any],
    issuer_key: SigningKey,
    issuer_id: str,
    now: datetime,
    lifetime: timedelta = PARTY_ATTESTATION_LIFETIME,
) -> dict[str, str]:
    """A party attestation ``{"kind", "issuer", "token"}`` about ``party`` (spec §10.4):
    ``sub`` the party's own id, no ``aud``.

    Raises:
        ValueError: ``kind`` is not a party kind, or ``lifetime`` is not positive.
    """
    if kind not in PARTY_ATTESTATION_KINDS:
        raise ValueError(f"{kind!r} is not a party attestation kind")
    if lifetime <= timedelta(0):
        raise ValueError("lifetime must be positive")
    payload = {
        "iss": issuer_id,
        "sub": party,
        "jti": f"urn:uuid:{uuid.uuid4()}",
        "iat": format_timestamp(now),
        "exp": format_timestamp(now + lifetime),
        "kind": kind,
        "claims": dict(claims),
    }
    token = sign_compact(canonical_json(payload), issuer_key, typ=ATTESTATION_TYP)
    return {"kind": kind, "issuer": issuer_id, "token": token.decode("ascii")}


def verify_terms_signatory(
    attestation: Mapping[str, Any],
    *,
    trusted_registries: Mapping[str, KeySet],
    party: str,
    terms: Mapping[str, str],
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> VerifiedAttestation:
    """Verify that ``party`` signed ``terms`` (``{id, version, digest, ...}``) by a
    ``terms-signatory`` attestation (spec §10.4, VRM-ATT-012).

    The token is verified as any attestation (§10.3: trusted issuer, profile,
    ``typ``, lifetime), with the party binding: ``sub`` is ``party`` and no
    audience is asked for.

    Raises:
        RemoteProtocolError: UNTRUSTED_ISSUER for a registry not trusted;
            ATTESTATION_INVALID for every other fault (another party, other
            terms, a bad signature, expired).
    """
    verified = verify_attestation(
        attestation,
        trusted_issuers=dict(trusted_registries),
        subject=party,
        audience=None,
        now=now,
        kind=TERMS_SIGNATORY,
        skew=skew,
    )
    signed = verified.claims.get("terms")
    fields = ("id", "version", "digest")
    if not isinstance(signed, Mapping) or any(signed.get(f) != terms.get(f) for f in fields):
        raise RemoteProtocolError(
            ErrorCode.ATTESTATION_INVALID,
            "the attestation names other terms than the ones asserted",
        )
    return verified
