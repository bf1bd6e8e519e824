"""Proof of possession for a granted read (spec §11.9). Sans-IO.

A party she granted access to (``access-grant``, spec §6.18) reads the
granted items from her agent with ``GET {endpoint}`` and the header::

    Authorization: VRM-Proof <compact JWS>

The JWS has ``typ`` ``vrm-read+jws`` and is signed under the signing profile
(spec §8: EdDSA or ES256, exactly ``alg``, ``kid``, ``typ``) by the grantee's
published key whose RFC 7638 thumbprint the grant names. Its payload is the
canonical JSON object ``{grant, htm, htu, iat, jti}``: the grant's id, the
method and the URL of the request, when it was made (a NumericDate, RFC 7519
§2) and a unique id, as a DPoP proof binds a request to a key (RFC 9449 §4.2,
in spirit). A copy of the header is worth nothing to whoever intercepts it:
it is bound to one method, one URL and one instant, and its ``jti`` is taken
once.

:func:`sign_read_proof` makes one (the grantee); :func:`verify_read_proof`
judges one (her agent), in the order of spec §11.9.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from vrm_protocol.canonical import canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import KeyResolver, SigningKey
from vrm_protocol.signing_profile import sign_compact, verify_compact

__all__ = [
    "PROOF_MAX_AGE",
    "READ_AUTH_SCHEME",
    "READ_TYP",
    "ReadProof",
    "proof_from_authorization",
    "sign_read_proof",
    "verify_read_proof",
]

#: The ``typ`` of a read proof (spec §16.2).
READ_TYP: Final = "vrm-read+jws"
#: The HTTP authentication scheme of a granted read (spec §16.4).
READ_AUTH_SCHEME: Final = "VRM-Proof"
#: How far a proof's ``iat`` may be from the reader's clock, either way (spec §11.9).
PROOF_MAX_AGE: Final = timedelta(seconds=120)

_MEMBERS: Final = frozenset({"grant", "htm", "htu", "iat", "jti"})
_JTI: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
_NUMERIC_DATE_MAX: Final = 253402300799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True, slots=True)
class ReadProof:
    """A verified read proof: what it binds, and the thumbprint of the key that signed it."""

    grant: str
    htm: str
    htu: str
    iat: int
    jti: str
    key: str


def sign_read_proof(
    key: SigningKey,
    *,
    grant: str,
    method: str,
    url: str,
    now: datetime,
    jti: str | None = None,
) -> str:
    """A read proof for ``method url`` under ``grant``, signed by ``key`` (the
    grantee's published key); the value of ``Authorization`` is
    ``f"VRM-Proof {proof}"``.

    Raises:
        LocalProtocolError: the key cannot sign under the profile.
    """
    payload = {
        "grant": grant,
        "htm": method.upper(),
        "htu": url,
        "iat": int(now.timestamp()),
        "jti": jti if jti is not None else secrets.token_urlsafe(18),
    }
    return sign_compact(canonical_json(payload), key, typ=READ_TYP).decode("ascii")


def proof_from_authorization(value: str | None) -> bytes:
    """The compact JWS of an ``Authorization: VRM-Proof <jws>`` header value.

    Raises:
        RemoteProtocolError: AUTHENTICATION_REQUIRED, when there is none or
            another scheme (spec §11.9).
    """
    if value is None:
        raise RemoteProtocolError(
            ErrorCode.AUTHENTICATION_REQUIRED, "a granted read needs Authorization: VRM-Proof"
        )
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != READ_AUTH_SCHEME.lower() or not token or " " in token:
        raise RemoteProtocolError(
            ErrorCode.AUTHENTICATION_REQUIRED,
            f"a granted read is authorised by the {READ_AUTH_SCHEME} scheme only",
        )
    try:
        return token.encode("ascii")
    except UnicodeEncodeError:
        raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, "the proof is not ASCII") from None


def _unauthenticated(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.AUTHENTICATION_REQUIRED, detail)


def _claims(document: Mapping[str, Any] | None) -> tuple[str, str, str, int, str]:
    if document is None or set(document) != _MEMBERS:
        raise RemoteProtocolError(
            ErrorCode.SCHEMA_INVALID,
            f"a read proof's payload has exactly the members {sorted(_MEMBERS)}",
        )
    grant, htm, htu, iat, jti = (document[name] for name in ("grant", "htm", "htu", "iat", "jti"))
    if not all(isinstance(value, str) for value in (grant, htm, htu, jti)):
        raise RemoteProtocolError(ErrorCode.SCHEMA_INVALID, "grant, htm, htu and jti are strings")
    if isinstance(iat, bool) or not isinstance(iat, int) or not 0 <= iat <= _NUMERIC_DATE_MAX:
        raise RemoteProtocolError(ErrorCode.SCHEMA_INVALID, "iat is a NumericDate (seconds)")
    if not _JTI.fullmatch(jti):
        raise RemoteProtocolError(ErrorCode.SCHEMA_INVALID, "jti is 16 to 64 base64url characters")
    return grant, htm, htu, iat, jti


def verify_read_proof(
    token: bytes,
    *,
    resolve_key: KeyResolver,
    key_thumbprint: str,
    grant: str,
    method: str,
    url: str,
    now: datetime,
    max_age: timedelta = PROOF_MAX_AGE,
) -> ReadProof:
    """Judge a read proof for the request ``method url`` under the grant ``grant``
    whose key is ``key_thumbprint`` (spec §11.9). ``resolve_key`` finds the
    grantee's published keys (its key set). Whether the grant is still in force
    and whether the ``jti`` was seen before are the caller's (it holds the
    grant and the durable record of proofs taken).

    Raises:
        RemoteProtocolError: the signing profile's codes (MALFORMED_JWS,
            INVALID_TYP, UNKNOWN_KEY, BAD_SIGNATURE, ...); SCHEMA_INVALID for a
            payload not of the proof's shape; UNKNOWN_KEY when the signing key
            is not the grant's; AUTHENTICATION_REQUIRED when the proof names
            another grant, method or URL, or its ``iat`` is not within
            ``max_age`` of ``now``.
    """
    verified = verify_compact(token, resolve_key=resolve_key, typ=READ_TYP)
    if verified.key.thumbprint() != key_thumbprint:
        # spec §11.9: the grant names the one key that may read; another key of
        # the same party (or of anyone) is not the grantee's proof.
        raise RemoteProtocolError(
            ErrorCode.UNKNOWN_KEY, "the proof is not signed by the key the grant names"
        )
    proof_grant, htm, htu, iat, jti = _claims(verified.document)
    if proof_grant != grant:
        raise _unauthenticated("the proof names another grant")
    if htm != method.upper() or htu != url:
        raise _unauthenticated(f"the proof is for {htm} {htu}, not {method.upper()} {url}")
    if abs(now.timestamp() - iat) > max_age.total_seconds():
        raise _unauthenticated(
            f"the proof's iat is more than {int(max_age.total_seconds())} s from now"
        )
    return ReadProof(proof_grant, htm, htu, iat, jti, verified.key.thumbprint())
