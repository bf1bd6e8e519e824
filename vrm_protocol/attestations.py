"""Third-party attestations carried inside messages (spec §10).

An attestation is a statement by an issuer about a subject: a credit union
that the buyer's pseudonym can pay up to a range (spec §10.1), a
co-decision-maker that they approve an acceptance (spec §10.2). On the wire
it is ``{"kind", "issuer", "token"}`` where ``token`` is a compact JWS with
``typ`` ``vrm-attestation+jws`` signed under the same profile as messages
(spec §8) and a canonical JSON payload::

    {"iss": issuer, "sub": subject, "aud": [receiver, ...], "jti": "urn:uuid:...",
     "iat": "2026-11-23T10:00:00Z", "exp": "2026-12-23T10:00:00Z",
     "kind": "ability-to-pay", "claims": {...}}

Binding the token to ``sub`` (the buyer's pairwise pseudonym) and ``aud``
(the receiving party) keeps it from being lifted into another relationship
(spec §10.3). Issuers are trusted only when the receiver lists them
(``trusted_issuers``); an issuer identified by a ``did:jwk`` (a
co-decision-maker) is listed with ``None`` and its key is the one its
identifier encodes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from vrm_protocol.canonical import canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import DEFAULT_SKEW, format_timestamp, later, parse_timestamp
from vrm_protocol.keys import (
    DID_JWK_KEY_FRAGMENT,
    DID_JWK_PREFIX,
    KeyResolver,
    KeySet,
    SigningKey,
    VerifyingKey,
    resolve_did_jwk,
)
from vrm_protocol.signing_profile import sign_compact, verify_compact
from vrm_protocol.vocabulary import ATTESTATION_TYP

__all__ = [
    "DEFAULT_ATTESTATION_LIFETIME",
    "VerifiedAttestation",
    "issue_attestation",
    "verify_attestation",
]

#: How long an attestation is valid unless the issuer says otherwise.
DEFAULT_ATTESTATION_LIFETIME: Final = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    """An attestation whose issuer is trusted and whose token verified and binds.

    Attributes:
        issuer: the issuer's identifier (URL or did:jwk).
        subject: the subject it is about (the buyer's pseudonym).
        kind: the attestation kind (e.g. ``ability-to-pay``, ``approval``).
        claims: the issuer's claims.
        expires: when the attestation stops being valid.
        issued: when it was issued.
        jti: its unique identifier.
        audience: every party it is addressed to.
        key_id: the ``kid`` of the key that signed it.
    """

    issuer: str
    subject: str
    kind: str
    claims: Mapping[str, Any]
    expires: datetime
    issued: datetime
    jti: str
    audience: tuple[str, ...]
    key_id: str = field(default="")


def issue_attestation(
    *,
    kind: str,
    subject: str,
    audience: Sequence[str],
    claims: Mapping[str, Any],
    issuer_key: SigningKey,
    issuer_id: str,
    now: datetime,
    lifetime: timedelta = DEFAULT_ATTESTATION_LIFETIME,
) -> dict[str, str]:
    """Issue an attestation: ``{"kind", "issuer", "token"}`` (spec §10).

    Raises:
        ValueError: ``audience`` is empty or a string, ``lifetime`` is not
            positive, or ``now`` is naive.
        LocalProtocolError: the payload cannot be signed under the profile
            (e.g. ``claims`` holds a value with no canonical JSON form).
    """
    if isinstance(audience, str) or not audience:
        raise ValueError("audience is a non-empty list of party identifiers")
    if lifetime <= timedelta(0):
        raise ValueError("lifetime must be positive")
    payload = {
        "iss": issuer_id,
        "sub": subject,
        "aud": list(audience),
        "jti": f"urn:uuid:{uuid.uuid4()}",
        "iat": format_timestamp(now),
        "exp": format_timestamp(now + lifetime),
        "kind": kind,
        "claims": dict(claims),
    }
    token = sign_compact(canonical_json(payload), issuer_key, typ=ATTESTATION_TYP)
    return {"kind": kind, "issuer": issuer_id, "token": token.decode("ascii")}


def _invalid(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.ATTESTATION_INVALID, detail)


def _issuer_resolver(issuer: str, key_set: KeySet | None) -> KeyResolver:
    def resolve(kid: str) -> VerifyingKey:
        if key_set is not None:
            return key_set.get(kid)
        # A did:jwk issuer has exactly one key, named issuer + "#0": any other
        # kid (another did:jwk's key) would let anyone sign as this issuer.
        if kid != issuer + DID_JWK_KEY_FRAGMENT:
            raise RemoteProtocolError(
                ErrorCode.UNKNOWN_KEY, f"kid {kid!r} is not the key of issuer {issuer!r}"
            )
        return resolve_did_jwk(kid)

    return resolve


def _timestamp_claim(payload: Mapping[str, Any], name: str) -> datetime:
    """A claim that must name an instant (spec §9.1, VRM-FRESH-012)."""
    try:
        return parse_timestamp(payload.get(name), path=f"/{name}")  # type: ignore[arg-type]
    except ValueError as error:
        raise _invalid(f"attestation claim {name!r}: {error}") from error


def verify_attestation(
    attestation: Mapping[str, Any],
    *,
    trusted_issuers: Mapping[str, KeySet | None],
    subject: str,
    audience: str | None,
    now: datetime,
    kind: str | None = None,
    skew: timedelta = DEFAULT_SKEW,
) -> VerifiedAttestation:
    """Verify an attestation for a receiver (spec §10.3).

    Checks, in order: the issuer is listed in ``trusted_issuers`` (a ``None``
    entry trusts a ``did:jwk`` issuer's own key); the token verifies under
    the signing profile with ``typ`` ``vrm-attestation+jws`` and a key of
    that issuer; its payload names the same issuer and kind as the wrapper;
    ``sub`` is ``subject``; ``aud`` contains ``audience`` (``None``: a party
    attestation, spec §10.4, verified without an audience); ``kind`` is the
    expected one (when given); it was issued no later than ``now + skew``
    and has not expired (``now < exp + skew``).

    Raises:
        RemoteProtocolError: UNTRUSTED_ISSUER if the issuer is not trusted;
            ATTESTATION_INVALID for every other fault (the detail names the
            underlying profile error where there is one).
        ValueError: ``now`` is naive.
    """
    if not isinstance(attestation, Mapping):
        raise _invalid("an attestation is an object {kind, issuer, token}")
    issuer = attestation.get("issuer")
    wrapper_kind = attestation.get("kind")
    token = attestation.get("token")
    if (
        not isinstance(issuer, str)
        or not isinstance(wrapper_kind, str)
        or not isinstance(token, str)
    ):
        raise _invalid("an attestation has string members kind, issuer and token")
    if issuer not in trusted_issuers:
        raise RemoteProtocolError(
            ErrorCode.UNTRUSTED_ISSUER, f"the receiver does not trust issuer {issuer!r}"
        )
    key_set = trusted_issuers[issuer]
    if key_set is None and not issuer.startswith(DID_JWK_PREFIX):
        raise RemoteProtocolError(
            ErrorCode.UNTRUSTED_ISSUER, f"no keys are configured for issuer {issuer!r}"
        )
    try:
        verified = verify_compact(
            token.encode("ascii"),
            resolve_key=_issuer_resolver(issuer, key_set),
            typ=ATTESTATION_TYP,
        )
    except UnicodeEncodeError:
        raise _invalid("the attestation token is not ASCII") from None
    except RemoteProtocolError as error:
        raise _invalid(f"the attestation token does not verify: {error}") from error
    payload = verified.document
    if payload is None:  # pragma: no cover - verify_compact parses by default
        raise _invalid("the attestation payload was not parsed")
    if payload.get("iss") != issuer:
        raise _invalid(f"the token's iss {payload.get('iss')!r} is not the issuer {issuer!r}")
    token_kind = payload.get("kind")
    if token_kind != wrapper_kind:
        raise _invalid(f"the token's kind {token_kind!r} is not the stated {wrapper_kind!r}")
    if kind is not None and token_kind != kind:
        raise _invalid(f"expected a {kind!r} attestation, got {token_kind!r}")
    if payload.get("sub") != subject:
        raise _invalid("the attestation is about someone else (sub does not match the sender)")
    aud = payload.get("aud", [] if audience is None else None)
    if not isinstance(aud, list) or not all(isinstance(item, str) for item in aud):
        raise _invalid("the token's aud is not a list of party identifiers")
    if audience is not None and audience not in aud:
        raise _invalid(f"the attestation is not addressed to {audience!r}")
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _invalid("the token has no jti")
    claims = payload.get("claims")
    if not isinstance(claims, dict):
        raise _invalid("the token's claims are not an object")
    issued = _timestamp_claim(payload, "iat")
    expires = _timestamp_claim(payload, "exp")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if expires <= issued:
        raise _invalid("the attestation expires before it is issued")
    # later(): an instant beyond year 9999 is the far future, never an overflow
    # (spec §9.1, VRM-FRESH-013).
    if issued > later(now, skew):
        raise _invalid(f"the attestation is issued in the future ({format_timestamp(issued)})")
    if now >= later(expires, skew):
        raise _invalid(f"the attestation expired at {format_timestamp(expires)}")
    return VerifiedAttestation(
        issuer=issuer,
        subject=subject,
        kind=token_kind,
        claims=claims,
        expires=expires,
        issued=issued,
        jti=jti,
        audience=tuple(aud),
        key_id=verified.key.kid,
    )
