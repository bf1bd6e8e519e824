"""Verified terms signatories (spec §10.4): the party binding of a terms registry's
attestation, and her agent sharing with Road Warrior only once it verified one."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve as serve_buyer
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.policy import load_policy
from reference_buyer.scenario import audio_rfi_body, sally_profile
from reference_vendor.app import serve as serve_vendor
from reference_vendor.catalogue import load_catalogue
from reference_vendor.config import VendorConfig
from vrm_protocol.attestations import issue_attestation, verify_attestation
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.keys import KeySet, SigningKey
from vrm_protocol.models import ProblemReportMessage
from vrm_protocol.party_attestations import issue_party_attestation, verify_terms_signatory
from vrm_protocol.vocabulary import MessageType

REGISTRY = "https://terms-registry.example"
PARTY = "https://soundworks.example"
TERMS = {"id": "standard-terms", "version": "1.0", "digest": "sha-256:" + "B" * 43}
NOW = datetime(2027, 2, 21, 18, 0, tzinfo=UTC)


@pytest.fixture
def registry_key() -> SigningKey:
    return SigningKey.generate("ES256")


def _signatory(key: SigningKey, party: str = PARTY, **terms: str) -> dict[str, str]:
    return issue_party_attestation(
        kind="terms-signatory",
        party=party,
        claims={"terms": {**TERMS, **terms}},
        issuer_key=key,
        issuer_id=REGISTRY,
        now=NOW,
    )


def test_a_party_attestation_is_about_the_party_and_has_no_audience(
    registry_key: SigningKey,
) -> None:
    attestation = _signatory(registry_key)
    registries = {REGISTRY: KeySet([registry_key.public()])}
    verified = verify_terms_signatory(
        attestation, trusted_registries=registries, party=PARTY, terms=TERMS, now=NOW
    )
    assert verified.subject == PARTY
    assert verified.audience == ()
    for party, terms, code in (
        ("https://another.example", TERMS, ErrorCode.ATTESTATION_INVALID),
        (PARTY, {**TERMS, "digest": "sha-256:" + "C" * 43}, ErrorCode.ATTESTATION_INVALID),
        (PARTY, {**TERMS, "version": "2.0"}, ErrorCode.ATTESTATION_INVALID),
    ):
        with pytest.raises(RemoteProtocolError) as refused:
            verify_terms_signatory(
                attestation, trusted_registries=registries, party=party, terms=terms, now=NOW
            )
        assert refused.value.code is code
    with pytest.raises(RemoteProtocolError) as untrusted:
        verify_terms_signatory(
            attestation, trusted_registries={}, party=PARTY, terms=TERMS, now=NOW
        )
    assert untrusted.value.code is ErrorCode.UNTRUSTED_ISSUER
    with pytest.raises(RemoteProtocolError) as expired:
        verify_terms_signatory(
            attestation,
            trusted_registries=registries,
            party=PARTY,
            terms=TERMS,
            now=NOW + timedelta(days=400),
        )
    assert expired.value.code is ErrorCode.ATTESTATION_INVALID


def test_an_attestation_without_audience_is_never_one_about_a_pseudonym(
    registry_key: SigningKey,
) -> None:
    # Verified for a receiver (§10.3), an attestation must name it in aud.
    attestation = _signatory(registry_key)
    with pytest.raises(RemoteProtocolError) as refused:
        verify_attestation(
            attestation,
            trusted_issuers={REGISTRY: KeySet([registry_key.public()])},
            subject=PARTY,
            audience="https://dealer.example",
            now=NOW,
        )
    assert refused.value.code is ErrorCode.ATTESTATION_INVALID
    # And an attestation about a pseudonym is no signatory of a party.
    pseudonymous = issue_attestation(
        kind="terms-signatory",
        subject=PARTY,
        audience=["did:jwk:x"],
        claims={"terms": TERMS},
        issuer_key=registry_key,
        issuer_id=REGISTRY,
        now=NOW,
    )
    verified = verify_terms_signatory(
        pseudonymous,
        trusted_registries={REGISTRY: KeySet([registry_key.public()])},
        party=PARTY,
        terms=TERMS,
        now=NOW,
    )
    assert verified.subject == PARTY
    with pytest.raises(ValueError, match="party attestation kind"):
        issue_party_attestation(
            kind="approval",
            party=PARTY,
            claims={},
            issuer_key=registry_key,
            issuer_id=REGISTRY,
            now=NOW,
        )


def _socket() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def audio_and_sally(
    tmp_path: Path, registry_key: SigningKey
) -> AsyncIterator[tuple[str, BuyerAgent]]:
    vendor_sock, audio = _socket()
    vendor = await serve_vendor(
        VendorConfig(
            catalogue=load_catalogue("road-warrior"),
            data_dir=tmp_path / "audio",
            public_url=audio,
            test_mode=True,
            reply_delay=0.0,
        ),
        vendor_sock,
    )
    sock, base = _socket()
    config = BuyerConfig(
        data_dir=tmp_path / "sally",
        public_url=base,
        test_mode=True,
        decorrelation=Decorrelation(spread_seconds=0.0),
        terms_registries={REGISTRY: KeySet([registry_key.public()])},
    )
    agent = await BuyerAgent.open(config, load_policy())
    for category, value in sally_profile().items():
        await agent.store.set_profile(category, value)
    serving = await serve_buyer(agent, sock)
    try:
        yield audio, agent
    finally:
        await serving.close()
        await vendor.close()
        await agent.close()


async def _terms_assertion(audio: str, agent: BuyerAgent) -> str:
    await agent.buying.send_rfis([audio], audio_rfi_body(agent.clock.now()), attest=False)
    entry = await agent.wait_for(lambda e: e.type is MessageType.TERMS_ASSERTION, within=10)
    return entry.message_id


async def test_without_a_signatory_the_third_party_gets_nothing(
    audio_and_sally: tuple[str, BuyerAgent],
) -> None:
    audio, agent = audio_and_sally
    # A third party's word alone: she shares nothing (VRM-ATT-013).
    sent, decision = await agent.owning.answer_terms(await _terms_assertion(audio, agent))
    assert decision is None
    problem = sent.model
    assert isinstance(problem, ProblemReportMessage)
    assert problem.body.code == ErrorCode.ATTESTATION_MISSING.value
    assert await agent.store.shared_with(audio) == []


async def test_she_shares_with_the_sound_system_maker_once_its_signatory_verifies(
    audio_and_sally: tuple[str, BuyerAgent], registry_key: SigningKey
) -> None:
    audio, agent = audio_and_sally
    # The registry attests the terms Road Warrior publishes, for Road Warrior itself.
    async with aiohttp.ClientSession() as http:
        async with http.get(audio + "/.well-known/vrm") as answer:
            terms = (await answer.json())["terms"][0]
        lifted = issue_party_attestation(
            kind="terms-signatory",
            party="https://someone-else.example",
            claims={"terms": terms},
            issuer_key=registry_key,
            issuer_id=REGISTRY,
            now=agent.clock.now(),
        )
        async with http.post(
            audio + TEST_DRIVER_PREFIX + "/party-attestation", json={"attestation": lifted}
        ) as answer:
            assert answer.status == 400  # not about this party: the vendor never carries it
        attestation = issue_party_attestation(
            kind="terms-signatory",
            party=audio,
            claims={"terms": terms},
            issuer_key=registry_key,
            issuer_id=REGISTRY,
            now=agent.clock.now(),
        )
        async with http.post(
            audio + TEST_DRIVER_PREFIX + "/party-attestation", json={"attestation": attestation}
        ) as answer:
            assert answer.status == 200
    _, decision = await agent.owning.answer_terms(await _terms_assertion(audio, agent))
    assert decision is not None
    assert {r.category for r in await agent.store.shared_with(audio)}
