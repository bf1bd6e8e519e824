"""Ability to pay as an SD-JWT VC with holder key binding (spec §10.5; RFC 9901).

With the attestation of §10.1 the credit union signs one statement per
pseudonym and dealer, so it learns every dealer she asks. Here it issues, in
advance and once, a batch of credentials: each an SD-JWT VC (``typ``
``dc+sd-jwt``) bound to a holder key of its own (``cnf.jwk``), with no subject
and nothing that identifies her, stating a range (``range`` and ``purpose``
selectively disclosable) and never an amount. Her agent presents each
credential once, to one dealer: the presentation carries a key-binding JWT
(``typ`` ``kb+jwt``) whose ``aud`` is the dealer and whose ``nonce`` is her
pseudonym with that dealer (the message's ``from``), signed by that
credential's holder key. Two dealers see two credentials with two keys and
two signatures: nothing links them, and the credit union sees none of it.

The SD-JWT mechanics (disclosures, digests, the key-binding JWT) are the
OpenWallet reference implementation's (PyPI ``sd-jwt``); around it this module
holds the profile: ES256 only, the header ``typ``, the issuer's key known
beforehand (VRM-ATT-004), the lifetime, the key-binding JWT's freshness, and
the claims' shape. ``sd-jwt`` is imported when a credential is made or
judged, so the library stays importable without it (it comes with the
``agents`` and ``conformance`` extras).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from vrm_protocol.canonical import b64url_decode
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import DEFAULT_SKEW
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.models import MoneyRange

__all__ = [
    "ABILITY_TO_PAY_VCT",
    "KB_JWT_TYP",
    "KB_MAX_AGE",
    "SD_JWT_FORMAT",
    "SD_JWT_VC_TYP",
    "HeldCredential",
    "VerifiedCredential",
    "issue_batch",
    "key_binding_of",
    "present",
    "verify_presentation",
]

SD_JWT_VC_TYP: Final = "dc+sd-jwt"
#: The ``format`` of an attestation whose token is such a presentation (spec §10.5).
SD_JWT_FORMAT: Final = SD_JWT_VC_TYP
KB_JWT_TYP: Final = "kb+jwt"
#: The credential type of an ability to pay.
ABILITY_TO_PAY_VCT: Final = "https://vrm-protocol.example/vct/ability-to-pay/v1"
#: The only algorithm of the profile for these credentials (holder keys are P-256).
ALG: Final = "ES256"
#: How old a key-binding JWT may be when a dealer judges it.
KB_MAX_AGE: Final = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class HeldCredential:
    """One credential of a batch as she holds it: the issuance (the SD-JWT and
    all its disclosures) and its own holder key (private: kept like her keys)."""

    issuance: str
    holder_key: Mapping[str, str]

    def to_json(self) -> str:
        """Serialised for her store."""
        return json.dumps({"issuance": self.issuance, "holderKey": dict(self.holder_key)})

    @classmethod
    def from_json(cls, text: str) -> HeldCredential:
        """The credential :meth:`to_json` wrote."""
        document = json.loads(text)
        return cls(str(document["issuance"]), dict(document["holderKey"]))


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """A presentation a dealer verified: the issuer and the disclosed claims."""

    issuer: str
    range: Mapping[str, Any]
    purpose: str | None
    expires: datetime


def _invalid(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.ATTESTATION_INVALID, detail)


def _jwk(members: Mapping[str, str]) -> Any:
    from jwcrypto.jwk import JWK  # type: ignore[import-untyped]

    return JWK(**{k: v for k, v in members.items() if k not in ("alg", "use")})


def issue_batch(
    *,
    issuer_key: SigningKey,
    issuer_id: str,
    range_: Mapping[str, Any],
    purpose: str,
    now: datetime,
    count: int,
    lifetime: timedelta = timedelta(days=30),
) -> list[HeldCredential]:
    """``count`` single-use credentials, each with a fresh holder key (spec §10.5).

    Every credential of a batch has the same ``iat`` and ``exp`` (whole seconds)
    and no subject, so nothing but its own key and signature tells them apart.

    Raises:
        ValueError: ``issuer_key`` is not ES256, or ``count`` is not positive.
    """
    from sd_jwt.common import SDObj  # type: ignore[import-untyped]
    from sd_jwt.issuer import SDJWTIssuer  # type: ignore[import-untyped]

    if issuer_key.alg != ALG:
        raise ValueError("an SD-JWT VC issuer signs with ES256")
    if count < 1:
        raise ValueError("a batch holds at least one credential")
    issued = int(now.timestamp())
    signer = _jwk(issuer_key.to_private_jwk())
    batch: list[HeldCredential] = []
    for _ in range(count):
        holder = SigningKey.generate(ALG)
        claims = {
            "iss": issuer_id,
            "vct": ABILITY_TO_PAY_VCT,
            "iat": issued,
            "exp": issued + int(lifetime.total_seconds()),
            SDObj("range"): dict(range_),
            SDObj("purpose"): purpose,
        }
        made = SDJWTIssuer(
            claims,
            signer,
            holder_key=_jwk(holder.public().to_jwk()),
            sign_alg=ALG,
            extra_header_parameters={"typ": SD_JWT_VC_TYP, "kid": issuer_key.kid},
        )
        batch.append(HeldCredential(str(made.sd_jwt_issuance), holder.to_private_jwk()))
    return batch


def present(
    credential: HeldCredential, *, audience: str, nonce: str, now: datetime | None = None
) -> str:
    """The presentation of ``credential`` to ``audience``: the range and purpose
    disclosed, and a key-binding JWT over them (RFC 9901 §4.3) with ``aud``,
    ``nonce``, ``iat`` (``now``: the agent's clock, default the system's) and
    ``sd_hash``, signed by the credential's holder key."""
    from jwcrypto.jws import JWS  # type: ignore[import-untyped]
    from sd_jwt.holder import SDJWTHolder  # type: ignore[import-untyped]

    holder = SDJWTHolder(credential.issuance)
    # The disclosures chosen by the implementation; the key-binding JWT made here,
    # so that its iat is the agent's clock (the implementation reads the system's).
    holder.create_presentation({"range": True, "purpose": True})
    bare = str(holder.sd_jwt_presentation)  # "<jwt>~<disclosure>~...~"
    kb_payload = {
        "nonce": nonce,
        "aud": audience,
        "iat": int((now or datetime.now(UTC)).timestamp()),
        "sd_hash": _sd_hash(bare),
    }
    kb = JWS(payload=json.dumps(kb_payload))
    kb.add_signature(
        _jwk(credential.holder_key),
        alg=ALG,
        protected=json.dumps({"alg": ALG, "typ": KB_JWT_TYP}),
    )
    return bare + str(kb.serialize(compact=True))


def _sd_hash(text: str) -> str:
    """base64url(SHA-256(ASCII ``text``)), unpadded: an SD-JWT digest (RFC 9901 §4.2.3)."""
    return (
        base64.urlsafe_b64encode(hashlib.sha256(text.encode("ascii")).digest())
        .decode("ascii")
        .rstrip("=")
    )


def _segment_json(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except ValueError as error:
        raise _invalid(f"the {what} is not base64url JSON: {error}") from error
    if not isinstance(value, dict):
        raise _invalid(f"the {what} is not a JSON object")
    return value


def _instant(value: object, what: str) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"{what} is not a NumericDate")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise _invalid(f"{what} is out of range") from error


def verify_presentation(
    presentation: str,
    *,
    issuer: str,
    trusted_issuers: Mapping[str, KeySet | None],
    audience: str,
    nonce: str,
    now: datetime,
    skew: timedelta = DEFAULT_SKEW,
) -> VerifiedCredential:
    """Verify an ability-to-pay presentation for ``audience`` (spec §10.5).

    Checks, in order: ``issuer`` is trusted with keys known beforehand; the
    SD-JWT's header is exactly ES256, ``dc+sd-jwt`` and a ``kid`` of that
    issuer; it verifies (the OpenWallet implementation: signature, disclosures
    and their digests, the key-binding JWT under ``cnf.jwk`` with ``aud`` and
    ``nonce`` and its ``sd_hash``); ``iss`` is the issuer, ``vct`` an ability to
    pay, it is current; the key-binding JWT is ``kb+jwt``, ES256, issued within
    :data:`KB_MAX_AGE`; ``range`` is disclosed and no ``amount`` anywhere.

    Raises:
        RemoteProtocolError: UNTRUSTED_ISSUER for an issuer not trusted with
            keys; ATTESTATION_INVALID for every other fault.
    """
    key_set = trusted_issuers.get(issuer)
    if issuer not in trusted_issuers or key_set is None:
        raise RemoteProtocolError(
            ErrorCode.UNTRUSTED_ISSUER, f"the receiver does not trust issuer {issuer!r}"
        )
    parts = presentation.split("~")
    if len(parts) < 2 or not parts[-1]:
        raise _invalid("the presentation has no key-binding JWT (holder binding is required)")
    jwt_segments = parts[0].split(".")
    kb_segments = parts[-1].split(".")
    if len(jwt_segments) != 3 or len(kb_segments) != 3:
        raise _invalid("the SD-JWT and its key-binding JWT are compact JWS")
    header = _segment_json(jwt_segments[0], "SD-JWT header")
    if header.get("alg") != ALG or header.get("typ") != SD_JWT_VC_TYP:
        raise _invalid(f"the SD-JWT header must name alg {ALG} and typ {SD_JWT_VC_TYP}")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in key_set.kids:
        raise _invalid(f"kid {kid!r} is not a key of issuer {issuer!r}")
    kb_header = _segment_json(kb_segments[0], "key-binding JWT header")
    if kb_header.get("alg") != ALG or kb_header.get("typ") != KB_JWT_TYP:
        raise _invalid(f"the key-binding JWT header must name alg {ALG} and typ {KB_JWT_TYP}")
    # RFC 9901 §7.1: every disclosure is referenced by a digest the issuer signed,
    # once (the implementation ignores an unreferenced one).
    signed = _segment_json(jwt_segments[1], "SD-JWT payload").get("_sd")
    digests = [_sd_hash(d) for d in parts[1:-1]]
    if not isinstance(signed, list) or len(set(digests)) != len(digests):
        raise _invalid("the presentation repeats a disclosure, or the credential has no _sd")
    if not set(digests) <= set(signed):
        raise _invalid("a disclosure is not one the issuer signed")
    issuer_key = _jwk(key_set.get(kid).to_jwk())
    try:
        from sd_jwt.verifier import SDJWTVerifier  # type: ignore[import-untyped]

        verifier = SDJWTVerifier(
            presentation,
            lambda _iss, _header: issuer_key,
            expected_aud=audience,
            expected_nonce=nonce,
        )
        payload = verifier.get_verified_payload()
    except Exception as error:  # the implementation raises jwcrypto's and its own errors
        raise _invalid(f"the presentation does not verify: {error}") from error
    if not isinstance(payload, dict):  # pragma: no cover - the verifier returns the claims
        raise _invalid("the credential's claims are not an object")
    if payload.get("iss") != issuer:
        raise _invalid(f"the credential's iss {payload.get('iss')!r} is not {issuer!r}")
    if payload.get("vct") != ABILITY_TO_PAY_VCT:
        raise _invalid("the credential is not an ability to pay")
    issued = _instant(payload.get("iat"), "iat")
    expires = _instant(payload.get("exp"), "exp")
    if issued > now + skew or now >= expires + skew:
        raise _invalid("the credential is not current")
    kb = _segment_json(kb_segments[1], "key-binding JWT")
    bound_at = _instant(kb.get("iat"), "the key-binding JWT's iat")
    if bound_at > now + skew or now - bound_at > KB_MAX_AGE + skew:
        raise _invalid("the key-binding JWT is not fresh")
    range_ = payload.get("range")
    try:
        MoneyRange.model_validate(range_)
    except ValidationError as error:
        raise _invalid(f"the credential discloses no range: {error}"[:300]) from None
    assert isinstance(range_, dict)
    if "amount" in payload:
        raise _invalid("an ability to pay states a range, never an amount")
    purpose = payload.get("purpose")
    return VerifiedCredential(
        issuer, range_, purpose if isinstance(purpose, str) else None, expires
    )


def key_binding_of(presentation: str) -> tuple[str, str]:
    """The ``aud`` and ``nonce`` a presentation's key-binding JWT states (unverified:
    for logs and test faults; :func:`verify_presentation` judges them).

    Raises:
        RemoteProtocolError: ATTESTATION_INVALID, there is no readable key-binding JWT.
    """
    segments = presentation.split("~")[-1].split(".")
    if len(segments) != 3:
        raise _invalid("the presentation has no key-binding JWT")
    kb = _segment_json(segments[1], "key-binding JWT")
    return str(kb.get("aud")), str(kb.get("nonce"))
