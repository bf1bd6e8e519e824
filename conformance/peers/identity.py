"""Keys and identifiers of the parties the suite plays.

* A buyer persona is a pairwise pseudonym: a fresh Ed25519 key whose
  identifier is ``did:jwk:<base64url(JWK)>`` and whose ``kid`` is that
  identifier followed by ``#0`` (spec §4.2; did:jwk method).
* A vendor, third party or attestation issuer is identified by a URL and
  publishes a JWKS whose ``kid`` values are RFC 7638 thumbprints.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from conformance.forge import JoseSigner, b64url, canonical_json

__all__ = [
    "new_key",
    "new_pairwise",
    "non_canonical_did_jwk",
    "signer_from_private_jwk",
    "thumbprint",
]

#: RFC 7638 §3.2: the required members of each key type, in the hash input.
_THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}


def thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an OKP or EC key.

    Raises:
        ValueError: the key type is neither OKP nor EC.
    """
    members = _THUMBPRINT_MEMBERS.get(str(public_jwk.get("kty")))
    if members is None:
        raise ValueError(f"no thumbprint rule for key type {public_jwk.get('kty')!r}")
    required = {name: public_jwk[name] for name in members}
    return b64url(hashlib.sha256(canonical_json(required)).digest())


def _private_jwk(alg: str) -> dict[str, Any]:
    if alg == "EdDSA":
        jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate()))
    elif alg == "ES256":
        jwk = json.loads(ECAlgorithm.to_jwk(generate_private_key(SECP256R1())))
    else:
        raise ValueError(f"the suite makes EdDSA or ES256 keys, not {alg!r}")
    return {name: value for name, value in jwk.items() if name in {"kty", "crv", "x", "y", "d"}}


def new_key(alg: str = "EdDSA") -> JoseSigner:
    """A fresh key published under its RFC 7638 thumbprint.

    Raises:
        ValueError: ``alg`` is not EdDSA or ES256.
    """
    private = _private_jwk(alg)
    public = {name: value for name, value in private.items() if name != "d"}
    return JoseSigner(alg, thumbprint(public), private)


def signer_from_private_jwk(private_jwk: Mapping[str, Any]) -> JoseSigner:
    """A signer for a stored private JWK (``kid`` = thumbprint).

    Raises:
        ValueError: the key is neither Ed25519 nor P-256.
    """
    kty = private_jwk.get("kty")
    alg = "EdDSA" if kty == "OKP" else "ES256" if kty == "EC" else None
    if alg is None or "d" not in private_jwk:
        raise ValueError("expected an Ed25519 or P-256 private JWK")
    public = {name: value for name, value in private_jwk.items() if name != "d"}
    return JoseSigner(alg, thumbprint(public), dict(private_jwk))


def new_pairwise(alg: str = "EdDSA") -> tuple[str, JoseSigner]:
    """A fresh pairwise pseudonym: its ``did:jwk`` identifier and its signer.

    The identifier encodes the public JWK with only its required members, so
    that nothing but the key itself is in it (no ``kid``, no ``use``), in
    RFC 8785 form: the one spelling of a did:jwk (spec §3.1).

    Raises:
        ValueError: ``alg`` is not EdDSA or ES256.
    """
    private = _private_jwk(alg)
    members = _THUMBPRINT_MEMBERS["OKP" if alg == "EdDSA" else "EC"]
    public = {name: private[name] for name in members}
    identifier = "did:jwk:" + b64url(canonical_json(public))
    return identifier, JoseSigner(alg, identifier + "#0", private)


def non_canonical_did_jwk(identifier: str) -> str:
    """The same key under another did:jwk spelling: members reversed, with spaces.

    A receiver must refuse it (spec §3.1, VRM-SIG-026): one key, one identifier.

    Raises:
        ValueError: ``identifier`` is not a did:jwk.
    """
    if not identifier.startswith("did:jwk:"):
        raise ValueError(f"{identifier!r} is not a did:jwk")
    encoded = identifier[len("did:jwk:") :]
    members = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    spelled = json.dumps(dict(reversed(list(members.items())))).encode()
    return "did:jwk:" + b64url(spelled)
