"""The suite's independent judge (conformance/judge.py).

It must agree with the library on every signing vector (valid and invalid),
and any disagreement between the two must end a check as a harness error,
never as a pass or as the target's failure.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from conformance.context import CheckContext, RunOptions
from conformance.judge import (
    POLL_TYP,
    SIGNING_STAGE_CODES,
    Judge,
    JudgeLimits,
    canonical_json,
    check_jwks,
    compare,
    judge_payload,
    verify_token,
)
from conformance.model import Level, Verdict
from conformance.protocol import attestation_refusal, decode_message, jwks_refusal, verify_poll
from conformance.registry import CheckRegistry
from conformance.results import ExitCode
from conformance.runner import run_suite
from conformance.vectors_index import VECTORS_DIR
from vrm_protocol.attestations import issue_attestation
from vrm_protocol.errors import ProtocolError
from vrm_protocol.http_binding import make_poll_token
from vrm_protocol.keys import KeySet, PairwiseIdentity, key_resolver
from vrm_protocol.limits import DEFAULT_LIMITS, Limits
from vrm_protocol.signing_profile import verify_compact
from vrm_protocol.vocabulary import Role

JOSE = sorted((VECTORS_DIR / "jose").glob("*.json"))
CANONICAL = sorted((VECTORS_DIR / "canonical").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


def _library_code(document: dict[str, Any]) -> str | None:
    """The library's verdict on a jose vector (as vectors_index runs it)."""
    declared = document.get("limits") or {}
    limits = Limits(
        max_message_bytes=int(declared.get("maxMessageBytes", 65536)),
        max_nesting_depth=int(declared.get("maxDepth", 16)),
    )
    jwks = document.get("jwks")
    try:
        key_set = KeySet.from_jwks(jwks) if isinstance(jwks, dict) else None
        verify_compact(
            str(document["token"]).encode("ascii"),
            resolve_key=key_resolver(key_set),
            typ=str(document["typ"]),
            limits=limits,
        )
    except ProtocolError as error:
        return error.code.value
    return None


def _opinion_of(document: dict[str, Any]) -> Any:
    declared = document.get("limits") or {}
    return verify_token(
        str(document["token"]).encode("ascii"),
        jwks=document.get("jwks"),
        typ=str(document["typ"]),
        limits=JudgeLimits(
            max_message_bytes=int(declared.get("maxMessageBytes", 65536)),
            max_depth=int(declared.get("maxDepth", 16)),
        ),
    )


def test_every_signing_vector_is_covered() -> None:
    assert len(JOSE) >= 40
    assert any(_load(path)["expected"]["valid"] for path in JOSE)


@pytest.mark.parametrize("path", JOSE, ids=lambda path: path.stem)
def test_the_judge_agrees_with_the_library_and_the_vector(path: Path) -> None:
    document = _load(path)
    expected = document["expected"]
    opinion = _opinion_of(document)
    library = _library_code(document)
    assert opinion.code == library == expected.get("error"), opinion.detail
    assert compare(opinion, library) is None
    if expected["valid"]:
        assert opinion.kid == expected["kid"]
        assert opinion.payload == expected["payload"]
        assert opinion.bound is True


@pytest.mark.parametrize("path", CANONICAL, ids=lambda path: path.stem)
def test_the_judges_payload_stage_follows_the_canonical_vectors(path: Path) -> None:
    document = _load(path)
    encoded = str(document["inputBase64url"])
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    expected = document["expected"]
    try:
        judge_payload(raw)
        code = None
    except Exception as error:  # the judge's refusal carries its code
        code = getattr(error, "code", repr(error))
    assert code == expected.get("error")
    wanted = expected.get("canonical")
    if isinstance(wanted, str):
        assert canonical_json(json.loads(raw)).decode("utf-8") == wanted


def test_a_disagreeing_library_verdict_is_recorded() -> None:
    judge = Judge()
    small_order = _load(VECTORS_DIR / "jose" / "key-small-order-did-jwk.json")
    token = str(small_order["token"]).encode("ascii")
    # A library that accepted the small-order key (the defect the judge is for).
    disagreement = judge.review(token, sender_jwks=None, library_code=None)
    assert disagreement is not None
    assert "unknown-key" in disagreement.reason
    assert (disagreement.library, disagreement.judge) == (None, "unknown-key")
    # A library refusing a valid token for a signing reason disagrees too.
    valid = _load(VECTORS_DIR / "jose" / "valid-eddsa.json")
    assert (
        judge.review(
            str(valid["token"]).encode("ascii"),
            sender_jwks=valid["jwks"],
            library_code="bad-signature",
        )
        is not None
    )
    # Refusals of later stages (schema, audience) are no disagreement; a
    # key-sender mismatch is one when the judge finds the key bound.
    for code, disagrees in (("schema-invalid", False), ("wrong-audience", False)):
        review = judge.review(
            str(valid["token"]).encode("ascii"), sender_jwks=valid["jwks"], library_code=code
        )
        assert (review is not None) is disagrees
    assert (
        judge.review(
            str(valid["token"]).encode("ascii"),
            sender_jwks=valid["jwks"],
            library_code="key-sender-mismatch",
        )
        is not None
    )
    assert len(judge.take()) == 3
    assert judge.take() == []


def test_the_decoder_runs_both_verifiers() -> None:
    judge = Judge()
    valid = _load(VECTORS_DIR / "jose" / "valid-did-jwk.json")
    payload = valid["expected"]["payload"]
    decoded = decode_message(
        str(valid["token"]).encode("ascii"),
        sender_jwks=None,
        receiver=payload["to"][0],
        now=datetime(2026, 11, 23, 12, tzinfo=UTC),
        judge=judge,
    )
    # The vector's payload is refused by a later stage (its schema); the
    # signing stages passed under both verifiers.
    assert decoded.error_code not in SIGNING_STAGE_CODES
    assert decoded.disagreement is None
    small_order = _load(VECTORS_DIR / "jose" / "key-small-order-did-jwk.json")
    refused = decode_message(
        str(small_order["token"]).encode("ascii"),
        sender_jwks=None,
        receiver=None,
        now=datetime(2026, 11, 23, 12, tzinfo=UTC),
        judge=judge,
    )
    assert refused.error_code == "unknown-key"
    assert refused.disagreement is None
    assert judge.disagreements == []


def test_jwks_import_is_judged_twice() -> None:
    judge = Judge()
    refused = _load(VECTORS_DIR / "jose" / "key-small-order-in-jwks.json")["jwks"]
    accepted = _load(VECTORS_DIR / "jose" / "valid-eddsa.json")["jwks"]
    assert check_jwks(refused) is not None
    assert check_jwks(accepted) is None
    assert jwks_refusal(refused, judge=judge, subject="JWKS refused") is not None
    assert jwks_refusal(accepted, judge=judge, subject="JWKS accepted") is None
    assert judge.disagreements == []
    # The library accepting the small-order key would be a disagreement.
    assert judge.review_jwks(refused, library_refusal=None, subject="JWKS") is not None


async def test_a_disagreement_makes_the_check_a_harness_error() -> None:
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target = f"http://127.0.0.1:{runner.addresses[0][1]}"
    small_order = _load(VECTORS_DIR / "jose" / "key-small-order-did-jwk.json")
    registry = CheckRegistry()
    both = (Role.VENDOR, Role.BUYER)

    @registry.check("T-JUDGE", title="disagrees", step="search", requirements=("R",), roles=both)
    async def disagrees(ctx: CheckContext) -> None:
        # The library's verdict injected as a parameter: it accepts the key.
        ctx.session.judge.review(
            str(small_order["token"]).encode("ascii"), sender_jwks=None, library_code=None
        )
        ctx.require(True, "the target's message was accepted")

    @registry.check("T-AFTER", title="agrees", step="negotiate", requirements=("R",), roles=both)
    async def agrees(ctx: CheckContext) -> None:
        ctx.require(True, "nothing to disagree about")

    try:
        run = await run_suite(
            RunOptions(role=Role.VENDOR, target=target),
            registry=registry,
            level_of=lambda check: Level.MUST,
        )
    finally:
        await runner.cleanup()
    by_id = {result.check_id: result for result in run.results}
    first = by_id["T-JUDGE"]
    assert first.verdict is Verdict.HARNESS_ERROR
    assert first.reason.startswith("judge disagreement")
    assert first.to_json()["judgeDisagreements"][0]["judge"] == "unknown-key"
    assert by_id["T-AFTER"].verdict is Verdict.PASS
    assert run.exit_code() is ExitCode.HARNESS_ERROR


def test_poll_tokens_are_judged_twice() -> None:
    judge = Judge()
    buyer = PairwiseIdentity.generate()
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    owner = "https://dealer.vrm-protocol.example"
    token = make_poll_token(
        buyer.key, poller=buyer.identifier, mailbox_owner=owner, after=3, now=now
    )
    assert verify_poll(token, mailbox_owner=owner, now=now, judge=judge) == (buyer.identifier, 3)
    with pytest.raises(ProtocolError):
        verify_poll(token, mailbox_owner="https://other.example", now=now, judge=judge)
    # A message is not a poll token (typ), for both verifiers.
    message = _load(VECTORS_DIR / "jose" / "valid-did-jwk.json")
    with pytest.raises(ProtocolError, match="typ"):
        verify_poll(str(message["token"]).encode(), mailbox_owner=owner, now=now, judge=judge)
    assert judge.disagreements == []
    # A library that let a message through as a poll token would disagree.
    assert (
        judge.review(
            str(message["token"]).encode(), sender_jwks=None, library_code=None, typ=POLL_TYP
        )
        is not None
    )


def test_attestation_tokens_are_judged_twice() -> None:
    judge = Judge()
    approver = PairwiseIdentity.generate()
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    attestation = issue_attestation(
        kind="approval",
        subject="did:jwk:subject",
        audience=["https://dealer.vrm-protocol.example"],
        claims={"approves": {"offer": "urn:uuid:7d1c3f4e-2b8a-4c55-9e61-0a3f5b2c9d10"}},
        issuer_key=approver.key,
        issuer_id=approver.identifier,
        now=now,
    )
    verdict = attestation_refusal(
        attestation,
        subject="did:jwk:subject",
        audience="https://dealer.vrm-protocol.example",
        now=now,
        judge=judge,
    )
    assert verdict is None
    # Addressed to someone else: the library refuses for the claims, not the
    # signature, and the judge (stages 3-7 only) has nothing to disagree with.
    elsewhere = attestation_refusal(
        attestation, subject="did:jwk:subject", audience="https://x.example", now=now, judge=judge
    )
    assert elsewhere is not None
    assert judge.disagreements == []
    # Its signature broken: both refuse it as bad-signature.
    head, payload, signature = attestation["token"].split(".")
    broken = {**attestation, "token": f"{head}.{payload}.{'A' * len(signature)}"}
    assert attestation_refusal(
        broken, subject="did:jwk:subject", audience="https://x.example", now=now, judge=judge
    )
    assert judge.disagreements == []


def test_the_judges_limits_are_the_suites() -> None:
    # The suite decodes with the library's default limits (and declares them
    # for its parties); the judge applies the same ones, from spec §11.6.
    limits = JudgeLimits()
    assert (
        limits.max_message_bytes,
        limits.max_depth,
        limits.max_array_items,
        limits.max_string_length,
    ) == (
        DEFAULT_LIMITS.max_message_bytes,
        DEFAULT_LIMITS.max_nesting_depth,
        DEFAULT_LIMITS.max_array_items,
        DEFAULT_LIMITS.max_string_length,
    )


def _signed(payload: bytes) -> bytes:
    """A token over exactly ``payload`` (canonical or not), by a did:jwk key."""
    identity = PairwiseIdentity.generate()
    header = json.dumps(
        {"alg": "EdDSA", "kid": identity.kid, "typ": "vrm+jws"}, separators=(",", ":")
    ).encode()
    signing_input = (
        base64.urlsafe_b64encode(header).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(payload).rstrip(b"=")
    )
    signature = identity.key.sign(signing_input)
    return signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")


PAYLOADS = {
    "canonical": b'{"a":[1,2,3],"b":"x"}',
    "string-at-limit": b'{"s":"' + b"x" * (16384 - 2) + b'"}',
    "string-over-limit": b'{"s":"' + b"x" * (16384 - 1) + b'"}',
    "array-at-limit": b'{"a":[' + b",".join([b"1"] * 256) + b"]}",
    "array-over-limit": b'{"a":[' + b",".join([b"1"] * 257) + b"]}",
    "depth-at-limit": b'{"a":' + b"[" * 15 + b"]" * 15 + b"}",
    "depth-over-limit": b'{"a":' + b"[" * 16 + b"]" * 16 + b"}",
    "escaped-quote": b'{"a":"\\"[[[[[[[[[[[[[[[[[[[["}',
    "float": b'{"n":1.5}',
    "float-non-canonical": b'{"n":1.50}',
    "exponent": b'{"n":1e+21}',
    "big-integer": b'{"n":9007199254740993}',
    "negative-zero": b'{"n":-0}',
    "unsorted": b'{"b":1,"a":2}',
    "utf16-order": '{"\U0001f600":1,"\uff61":2}'.encode(),
    "escapes": b'{"s":"\\u0001\\n\\u001f"}',
    "escape-not-needed": b'{"s":"\\u0041"}',
    "duplicate": b'{"a":1,"a":2}',
    "not-object": b"[1]",
    "nan": b'{"n":NaN}',
    "bom": b'\xef\xbb\xbf{"a":1}',
    "invalid-utf8": b'{"a":"\xff"}',
    "lone-surrogate": b'{"a":"\\ud800"}',
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_the_judge_agrees_with_the_library_on_payloads_and_limits(name: str) -> None:
    token = _signed(PAYLOADS[name])
    try:
        verify_compact(token, resolve_key=key_resolver(None))
        library = None
    except ProtocolError as error:
        library = error.code.value
    opinion = verify_token(token, jwks=None)
    assert opinion.code == library, opinion.detail


HEADERS = {
    "whitespace": b'{ "alg" : "EdDSA" , "kid" : "%s" , "typ" : "vrm+jws" }',
    "typ-first": b'{"typ":"vrm+jws","alg":"EdDSA","kid":"%s"}',
    "crit-empty": b'{"alg":"EdDSA","kid":"%s","typ":"vrm+jws","crit":[]}',
    "kid-empty": b'{"alg":"EdDSA","kid":"","typ":"vrm+jws","x":"%s"}',
    "kid-number": b'{"alg":"EdDSA","kid":5,"typ":"vrm+jws","y":"%s"}',
    "alg-null": b'{"alg":null,"kid":"%s","typ":"vrm+jws"}',
    "typ-case": b'{"alg":"EdDSA","kid":"%s","typ":"VRM+JWS"}',
    "not-json": b'{"alg":"EdDSA","kid":"%s",',
    "array": b'["%s"]',
}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_the_judge_agrees_with_the_library_on_headers(name: str) -> None:
    identity = PairwiseIdentity.generate()
    header = HEADERS[name].replace(b"%s", identity.kid.encode())
    payload = b'{"a":1}'
    signing_input = (
        base64.urlsafe_b64encode(header).rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(payload).rstrip(b"=")
    )
    token = (
        signing_input
        + b"."
        + base64.urlsafe_b64encode(identity.key.sign(signing_input)).rstrip(b"=")
    )
    try:
        verify_compact(token, resolve_key=key_resolver(None))
        library = None
    except ProtocolError as error:
        library = error.code.value
    opinion = verify_token(token, jwks=None)
    assert opinion.code == library, opinion.detail
