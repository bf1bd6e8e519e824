"""How much the protocol pipeline costs on top of the signature it cannot avoid.

Prints, for one run on this machine:

* raw Ed25519 sign and verify operations per second over a signing input
  the size of a realistic offer: signing with ``cryptography`` (as the
  library signs), verifying with libsodium through PyNaCl (as the library
  verifies, spec §8.2) and, for comparison, with ``cryptography``;
* full outbound ``encode`` (schema validation, RFC 8785 canonical JSON,
  compact JWS) and full inbound ``decode`` (limits, JWS header, key,
  signature, canonical check, schema, model, key-sender binding, audience,
  freshness, replay) per second on that offer;
* the ratios outbound/raw-sign and inbound/raw-verify (1.0 would mean the
  pipeline is free; the overhead is 1/ratio - 1);
* where the time goes: microseconds per stage of each pipeline, each stage
  timed on its own with the library's public functions on the same offer,
  and the rest of ``encode``/``decode`` (calls between stages, caches the
  stages evict from each other, garbage collection) as "rest".

The last line is ``ratio <inbound/raw verify>``. Bounded: about ten seconds.
Figures only; nothing is asserted (tests never assert timings).

Run: ``python bench/pipeline.py``
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign_open

from vrm_protocol.canonical import (
    b64url_decode,
    b64url_encode,
    canonical_json,
    message_digest,
    parse_canonical,
    parse_json_object,
    strip_json_strings,
)
from vrm_protocol.codec import check_key_sender, decode, encode
from vrm_protocol.freshness import (
    MemoryReplayGuard,
    check_audience,
    check_freshness,
    check_replay,
    parse_timestamp,
)
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver
from vrm_protocol.limits import check_nesting, check_structure, check_token_size
from vrm_protocol.models import parse_message_dict
from vrm_protocol.schema_registry import default_registry

EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples"
OFFER = EXAMPLES / "offer.binding-with-trade-in.json"
SECONDS_PER_FIGURE = 1.0
SECONDS_PER_STAGE = 0.25
VENDOR_URL = "https://prius-dealer.london.example"


def rate(operation: Callable[[], Any], seconds: float = SECONDS_PER_FIGURE) -> float:
    """Operations per second of ``operation``, measured for about ``seconds``."""
    operation()  # warm caches (schema registry, compiled validators, models)
    count = 0
    batch = 16
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            operation()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def microseconds(operation: Callable[[], Any]) -> float:
    """Microseconds per call of ``operation`` (one stage)."""
    return 1e6 / rate(operation, SECONDS_PER_STAGE)


def print_breakdown(title: str, total: float, stages: dict[str, Callable[[], Any]]) -> None:
    """Print microseconds per stage, their share of ``total`` (µs) and the rest as glue."""
    print(f"{title}: {total:7.1f} µs per message")
    timed = {name: microseconds(operation) for name, operation in stages.items()}
    # The stages run here one at a time, hot in the caches; in the pipeline
    # they share the caches with each other and with the garbage collector
    # (which the objects each message allocates wake up). That, and the
    # calls and results between the stages, is the rest.
    timed["rest: glue, cold caches, GC"] = max(total - sum(timed.values()), 0.0)
    for name, cost in timed.items():
        print(f"  {name:34s} {cost:7.1f} µs  {100 * cost / total:5.1f} %")


def main() -> None:
    """Measure and print the figures."""
    buyer = PairwiseIdentity.generate()
    vendor_key = SigningKey.generate("EdDSA")
    resolve = key_resolver(KeySet([vendor_key.public()]))
    offer: dict[str, Any] = json.loads(OFFER.read_text("utf-8"))
    offer["from"] = VENDOR_URL
    offer["to"] = [buyer.identifier]
    now = parse_timestamp(offer["created"])

    token = encode(offer, vendor_key)
    signing_input = token.rsplit(b".", 1)[0]
    raw_key = Ed25519PrivateKey.generate()
    raw_public = raw_key.public_key()
    raw_signature = raw_key.sign(signing_input)
    raw_public_bytes = raw_public.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )

    def raw_sign() -> None:
        raw_key.sign(signing_input)

    def raw_verify() -> None:
        # What the library's verification costs at least: libsodium's.
        crypto_sign_open(raw_signature + signing_input, raw_public_bytes)

    def raw_verify_openssl() -> None:
        raw_public.verify(raw_signature, signing_input)

    def outbound() -> None:
        encode(offer, vendor_key)

    def inbound() -> None:
        # A fresh guard each time: every decode takes the full path including
        # the replay lookup, as a first delivery does.
        decode(
            token,
            resolve_key=resolve,
            receiver=buyer.identifier,
            now=now,
            replay=MemoryReplayGuard(),
        )

    sign_rate = rate(raw_sign)
    verify_rate = rate(raw_verify)
    openssl_verify_rate = rate(raw_verify_openssl)
    encode_rate = rate(outbound)
    decode_rate = rate(inbound)

    print(f"offer: {len(token)} bytes as a compact JWS ({len(signing_input)} signed)")
    print(f"raw Ed25519 sign      {sign_rate:10.0f} ops/s")
    print(f"raw Ed25519 verify    {verify_rate:10.0f} ops/s (libsodium, as the library)")
    print(f"  (OpenSSL, for scale {openssl_verify_rate:10.0f} ops/s)")
    print(f"encode (outbound)     {encode_rate:10.0f} ops/s")
    print(f"decode (inbound)      {decode_rate:10.0f} ops/s")
    print(f"outbound/raw sign     {encode_rate / sign_rate:10.3f}")
    print(f"inbound/raw verify    {decode_rate / verify_rate:10.3f}")

    # -- where the time goes: each stage of encode/decode on its own --
    registry = default_registry()
    header_segment, payload_segment, signature_segment = token.split(b".")
    header_bytes = b64url_decode(header_segment)
    payload_bytes = b64url_decode(payload_segment)
    signature = b64url_decode(signature_segment)
    document = parse_canonical(payload_bytes)
    kid = str(parse_json_object(header_bytes)["kid"])
    verifying_key = resolve(kid)
    message = parse_message_dict(document)
    header = {"alg": vendor_key.alg, "kid": vendor_key.kid, "typ": "vrm+jws"}

    def freshness() -> None:
        check_audience(message.to, buyer.identifier)
        check_freshness(parse_timestamp(message.created), parse_timestamp(message.expires), now)

    def framing() -> None:
        check_token_size(token)
        for segment in token.split(b"."):
            b64url_decode(segment)

    outside_strings = strip_json_strings(payload_bytes)

    def limits() -> None:
        check_nesting(header_bytes)
        check_structure(payload_bytes, outside_strings)

    def digest_and_replay() -> None:
        digest = message_digest(token)
        check_replay(
            MemoryReplayGuard(), sender=message.from_, message_id=message.id, digest=digest
        )

    def jws_framing_out() -> None:
        signing_input = f"{b64url_encode(canonical_json(header))}.{b64url_encode(payload_bytes)}"
        b64url_encode(signature)
        signing_input.encode("ascii")

    print()
    print_breakdown(
        "decode (inbound)",
        1e6 / decode_rate,
        {
            "size + base64url framing": framing,
            "payload stripped of strings (once)": lambda: strip_json_strings(payload_bytes),
            "nesting limits (header, payload)": limits,
            "protected header parse": lambda: parse_json_object(header_bytes),
            "key lookup": lambda: resolve(kid),
            "Ed25519 verify": lambda: verifying_key.verify(signing_input, signature),
            "canonical check + parse (orjson)": lambda: parse_canonical(
                payload_bytes, outside_strings=outside_strings
            ),
            "schema (compiled validator)": lambda: registry.validate_message(document),
            "model (pydantic)": lambda: parse_message_dict(document),
            "key belongs to sender": lambda: check_key_sender(kid, message.from_),
            "audience + freshness": freshness,
            "digest + replay lookup": digest_and_replay,
        },
    )
    print_breakdown(
        "encode (outbound)",
        1e6 / encode_rate,
        {
            "payload copy": lambda: dict(offer),
            "schema (compiled validator)": lambda: registry.validate_message(offer),
            "key belongs to sender": lambda: check_key_sender(vendor_key.kid, offer["from"]),
            "canonical JSON (RFC 8785)": lambda: canonical_json(offer),
            "header + base64url framing": jws_framing_out,
            "Ed25519 sign": lambda: vendor_key.sign(signing_input),
        },
    )
    print()
    print(f"ratio {decode_rate / verify_rate:.3f}")


if __name__ == "__main__":
    main()
