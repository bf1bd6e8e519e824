"""Ability to pay as single-use SD-JWT VCs (spec §10.5): the profile around the
OpenWallet implementation, her wallet, and a real dealer taking a presentation."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve as serve_buyer
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.policy import load_policy
from reference_buyer.scenario import sally_profile, sally_rfi_body
from reference_buyer.wallet import CredentialWallet
from reference_vendor.app import serve as serve_vendor
from reference_vendor.catalogue import TrustedIssuer, load_catalogue
from reference_vendor.config import VendorConfig
from vrm_protocol.canonical import b64url_decode
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.models import PersonalRfiMessage
from vrm_protocol.sd_jwt_vc import HeldCredential, issue_batch, present, verify_presentation
from vrm_protocol.vocabulary import MessageType

ISSUER = "https://credit-union.example"
DEALER = "https://dealer.example"
HER = "did:jwk:her-pseudonym-with-the-dealer"
RANGE = {
    "min": {"amount": "20000", "currency": "GBP"},
    "max": {"amount": "30000", "currency": "GBP"},
}


@pytest.fixture
def issuer_key() -> SigningKey:
    return SigningKey.generate("ES256")


def _batch(key: SigningKey, count: int = 2, now: datetime | None = None) -> list[HeldCredential]:
    return issue_batch(
        issuer_key=key,
        issuer_id=ISSUER,
        range_=RANGE,
        purpose="new car loan",
        now=now or datetime.now(UTC),
        count=count,
    )


def _verify(key: SigningKey, token: str, **overrides: object) -> object:
    arguments: dict[str, object] = {
        "issuer": ISSUER,
        "trusted_issuers": {ISSUER: KeySet([key.public()])},
        "audience": DEALER,
        "nonce": HER,
        "now": datetime.now(UTC),
        **overrides,
    }
    return verify_presentation(token, **arguments)  # type: ignore[arg-type]


def _payload(segment: str) -> dict[str, object]:
    value = json.loads(b64url_decode(segment))
    assert isinstance(value, dict)
    return value


def test_a_presentation_bound_to_the_dealer_and_her_pseudonym_verifies(
    issuer_key: SigningKey,
) -> None:
    [credential, _] = _batch(issuer_key)
    token = present(credential, audience=DEALER, nonce=HER)
    verified = _verify(issuer_key, token)
    assert verified.range == RANGE  # type: ignore[attr-defined]
    assert verified.purpose == "new car loan"  # type: ignore[attr-defined]
    claims = _payload(token.split("~")[0].split(".")[1])
    # No subject, no amount, a holder key of its own; range and purpose are disclosures.
    assert "sub" not in claims
    assert "range" not in claims
    assert "amount" not in json.dumps(claims)
    assert isinstance(claims["cnf"], dict)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"audience": "https://another-dealer.example"}, ErrorCode.ATTESTATION_INVALID),
        ({"nonce": "did:jwk:someone-else"}, ErrorCode.ATTESTATION_INVALID),
        ({"trusted_issuers": {}}, ErrorCode.UNTRUSTED_ISSUER),
        ({"trusted_issuers": {ISSUER: None}}, ErrorCode.UNTRUSTED_ISSUER),
        ({"now": datetime.now(UTC) + timedelta(minutes=30)}, ErrorCode.ATTESTATION_INVALID),
        ({"now": datetime.now(UTC) + timedelta(days=40)}, ErrorCode.ATTESTATION_INVALID),
    ],
)
def test_a_presentation_for_another_party_pseudonym_or_time_is_refused(
    issuer_key: SigningKey, overrides: dict[str, object], code: ErrorCode
) -> None:
    [credential, _] = _batch(issuer_key)
    token = present(credential, audience=DEALER, nonce=HER)
    with pytest.raises(RemoteProtocolError) as refused:
        _verify(issuer_key, token, **overrides)
    assert refused.value.code is code


def test_without_holder_binding_or_with_a_forged_one_it_is_refused(
    issuer_key: SigningKey,
) -> None:
    [credential, other] = _batch(issuer_key)
    token = present(credential, audience=DEALER, nonce=HER)
    unbound = token.rsplit("~", 1)[0] + "~"
    # Another credential's holder key signing this one's key-binding JWT.
    foreign_kb = present(other, audience=DEALER, nonce=HER).rsplit("~", 1)[1]
    forged = token.rsplit("~", 1)[0] + "~" + foreign_kb
    # A disclosure dropped after the key-binding JWT was made (sd_hash no longer covers it).
    parts = token.split("~")
    trimmed = "~".join([parts[0], *parts[2:]])
    # A disclosure the issuer never signed for this credential, with a fresh binding.
    foreign = present(other, audience=DEALER, nonce=HER).split("~")[1]
    extra = _rebound(credential, [parts[0], *parts[1:-1], foreign])
    repeated = _rebound(credential, [parts[0], *parts[1:-1], parts[1]])
    for bad in (unbound, forged, trimmed, extra, repeated):
        with pytest.raises(RemoteProtocolError) as refused:
            _verify(issuer_key, bad)
        assert refused.value.code is ErrorCode.ATTESTATION_INVALID


def _rebound(credential: HeldCredential, parts: list[str]) -> str:
    """``parts`` (an SD-JWT and disclosures) with a valid key-binding JWT over them."""
    from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
    from jwcrypto.jws import JWS  # type: ignore[import-untyped]

    bare = "~".join(parts) + "~"
    digest = base64.urlsafe_b64encode(hashlib.sha256(bare.encode()).digest()).decode()
    payload = {
        "nonce": HER,
        "aud": DEALER,
        "iat": int(datetime.now(UTC).timestamp()),
        "sd_hash": digest.rstrip("="),
    }
    kb = JWS(payload=json.dumps(payload))
    key = {k: v for k, v in credential.holder_key.items() if k not in ("alg", "use")}
    kb.add_signature(
        JWK(**key), alg="ES256", protected=json.dumps({"alg": "ES256", "typ": "kb+jwt"})
    )
    return bare + kb.serialize(compact=True)


def test_two_presentations_share_nothing_that_links_them(issuer_key: SigningKey) -> None:
    first, second = _batch(issuer_key)
    one = present(first, audience=DEALER, nonce=HER)
    two = present(second, audience="https://another-dealer.example", nonce="did:jwk:other")
    one_parts, two_parts = (
        set(one.replace(".", "~").split("~")),
        set(two.replace(".", "~").split("~")),
    )
    # Only the two headers (the issuer's alg, typ, kid; the key-binding JWT's alg,
    # typ) are common: no key, salt, digest or signature.
    assert one_parts & two_parts == {one.split(".")[0], one.split("~")[-1].split(".")[0]}
    claims = [_payload(t.split("~")[0].split(".")[1]) for t in (one, two)]
    assert claims[0]["cnf"] != claims[1]["cnf"]
    assert (claims[0]["iat"], claims[0]["exp"]) == (claims[1]["iat"], claims[1]["exp"])


def test_her_wallet_presents_each_credential_once(tmp_path: Path, issuer_key: SigningKey) -> None:
    wallet = CredentialWallet(tmp_path / "wallet.json", ISSUER)
    wallet.add(_batch(issuer_key, count=2))
    assert (tmp_path / "wallet.json").stat().st_mode & 0o777 == 0o600
    first = wallet(HER, DEALER)
    second = wallet("did:jwk:other", "https://another-dealer.example")
    assert first["format"] == "dc+sd-jwt"
    assert first["token"].split("~")[0] != second["token"].split("~")[0]
    assert wallet.remaining() == 0
    with pytest.raises(LocalProtocolError) as used_up:
        wallet(HER, DEALER)
    assert used_up.value.code is ErrorCode.ATTESTATION_MISSING


def _socket() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_two_real_dealers_take_her_presentations(
    tmp_path: Path, issuer_key: SigningKey
) -> None:
    trusted = (TrustedIssuer(ISSUER, KeySet([issuer_key.public()]).to_jwks()),)
    servings = []
    dealers = []
    for name in ("dealer-mayfair", "dealer-online"):
        sock, url = _socket()
        servings.append(
            await serve_vendor(
                VendorConfig(
                    catalogue=load_catalogue(name).with_trusted_issuers(trusted),
                    data_dir=tmp_path / name,
                    public_url=url,
                    test_mode=True,
                    reply_delay=0.0,
                ),
                sock,
            )
        )
        dealers.append(url)
    wallet = CredentialWallet(tmp_path / "wallet.json", ISSUER)
    wallet.add(_batch(issuer_key, count=3))
    sock, base = _socket()
    config = BuyerConfig(
        data_dir=tmp_path / "sally",
        public_url=base,
        test_mode=True,
        decorrelation=Decorrelation(spread_seconds=0.0),
    )
    agent = await BuyerAgent.open(config, load_policy(), ability_to_pay=wallet)
    for category, value in sally_profile().items():
        await agent.store.set_profile(category, value)
    serving = await serve_buyer(agent, sock)
    try:
        await agent.buying.send_rfis(dealers, sally_rfi_body(agent.clock.now()))
        for dealer in dealers:
            await agent.wait_for(
                lambda e, d=dealer: e.type is MessageType.OFFER and e.peer == d,  # type: ignore[misc]
                within=10,
            )
        tokens = []
        for entry in await agent.store.history(type=MessageType.PERSONAL_RFI):
            message = entry.model()
            assert isinstance(message, PersonalRfiMessage)
            [attestation] = message.body.attestations or ()
            assert attestation.format == "dc+sd-jwt"
            tokens.append(attestation.token.split("~")[0])
        assert len(set(tokens)) == 2
        assert wallet.remaining() == 1
    finally:
        await serving.close()
        for running in servings:
            await running.close()
        await agent.close()


def test_the_wallet_file_names_its_issuer(tmp_path: Path, issuer_key: SigningKey) -> None:
    wallet = CredentialWallet(tmp_path / "wallet.json", ISSUER)
    wallet.add(_batch(issuer_key, count=1))
    reopened = CredentialWallet.from_file(tmp_path / "wallet.json")
    assert reopened.issuer == ISSUER
    assert reopened.remaining() == 1
