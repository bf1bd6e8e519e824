"""The JOSE test vectors (conformance/vectors/jose): each yields its expected result
through :func:`verify_compact`, valid ones also verify under PyJWT (an independent
implementation), and the committed files are exactly what the generator makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from conformance.vectors.generate_jose import (
    JOSE_DIR,
    KEYS_FILE_NAME,
    build_vectors,
    vector_keys,
)
from vrm_protocol.canonical import message_digest
from vrm_protocol.errors import RemoteProtocolError
from vrm_protocol.keys import KeySet, key_resolver, resolve_did_jwk
from vrm_protocol.limits import DEFAULT_LIMITS, Limits
from vrm_protocol.signing_profile import verify_compact

VECTOR_FILES = sorted(JOSE_DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


def _limits(vector: dict[str, Any]) -> Limits:
    declared = vector.get("limits") or {}
    return Limits(
        max_message_bytes=declared.get("maxMessageBytes", DEFAULT_LIMITS.max_message_bytes),
        max_nesting_depth=declared.get("maxDepth", DEFAULT_LIMITS.max_nesting_depth),
    )


def test_there_are_vectors_of_both_outcomes() -> None:
    outcomes = [_load(path)["expected"]["valid"] for path in VECTOR_FILES]
    assert outcomes.count(True) >= 3
    assert outcomes.count(False) >= 25


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda path: path.stem)
def test_vector(path: Path) -> None:
    vector = _load(path)
    assert vector["id"] == f"jose-{path.stem}"
    assert vector["requirement"].startswith("VRM-")
    token = vector["token"].encode("ascii")
    expected = vector["expected"]

    def verify() -> Any:
        # Importing the receiver's key set is part of the judgement: a JWKS that
        # holds a key nobody owns is refused whole (VRM-SIG-022, unknown-key).
        resolve = key_resolver(KeySet.from_jwks(vector["jwks"]))
        return verify_compact(token, resolve_key=resolve, typ=vector["typ"], limits=_limits(vector))

    if expected["valid"]:
        verified = verify()
        assert verified.key.kid == expected["kid"]
        assert verified.document == expected["payload"]
        assert message_digest(token) == expected["digest"]
    else:
        with pytest.raises(RemoteProtocolError) as caught:
            verify()
        assert caught.value.code.value == expected["error"], caught.value.detail


@pytest.mark.parametrize(
    "path",
    [path for path in VECTOR_FILES if _load(path)["expected"]["valid"]],
    ids=lambda path: path.stem,
)
def test_valid_vectors_verify_under_pyjwt(path: Path) -> None:
    vector = _load(path)
    kid = vector["expected"]["kid"]
    if kid.startswith("did:jwk:"):
        jwk = resolve_did_jwk(kid).to_jwk()
    else:
        jwk = next(key for key in vector["jwks"]["keys"] if key["kid"] == kid)
    algorithm = OKPAlgorithm() if jwk["kty"] == "OKP" else ECAlgorithm(ECAlgorithm.SHA256)
    public = algorithm.from_jwk(json.dumps(jwk))
    assert isinstance(public, Ed25519PublicKey | EllipticCurvePublicKey)
    decoded = jwt.PyJWS().decode_complete(vector["token"], key=public, algorithms=[jwk["alg"]])
    assert json.loads(decoded["payload"]) == vector["expected"]["payload"]


def test_committed_vectors_are_what_the_generator_makes() -> None:
    vectors, key_document = build_vectors()
    committed = {path.name for path in VECTOR_FILES}
    assert committed == set(vectors), "run: python -m conformance.vectors.generate_jose"
    for name, vector in vectors.items():
        assert _load(JOSE_DIR / name) == vector, f"{name} is stale"
    assert _load(JOSE_DIR / KEYS_FILE_NAME) == key_document


def test_test_keys_file_holds_the_vector_keys() -> None:
    document = _load(JOSE_DIR / KEYS_FILE_NAME)
    assert "TEST ONLY" in document["description"]
    assert set(document["keys"]) == set(vector_keys())
