"""How much the protocol pipeline costs on top of the signature it cannot avoid.

Prints, for one run on this machine:

* raw Ed25519 sign and verify operations per second (``cryptography``
  directly, over a signing input the size of a realistic offer);
* full outbound ``encode`` (schema validation, RFC 8785 canonical JSON,
  compact JWS) and full inbound ``decode`` (limits, JWS header, key,
  signature, canonical check, schema, model, key-sender binding, audience,
  freshness, replay) per second on that offer;
* the ratios outbound/raw-sign and inbound/raw-verify (1.0 would mean the
  pipeline is free; the overhead is 1/ratio - 1).

The last line is ``ratio <inbound/raw verify>``. Bounded: about five seconds.
Figures only; nothing is asserted (tests never assert timings).

Run: ``python bench/pipeline.py``
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vrm_protocol.codec import decode, encode
from vrm_protocol.freshness import MemoryReplayGuard, parse_timestamp
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver

EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples"
OFFER = EXAMPLES / "offer.binding-with-trade-in.json"
SECONDS_PER_FIGURE = 1.0
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

    def raw_sign() -> None:
        raw_key.sign(signing_input)

    def raw_verify() -> None:
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
    encode_rate = rate(outbound)
    decode_rate = rate(inbound)

    print(f"offer: {len(token)} bytes as a compact JWS ({len(signing_input)} signed)")
    print(f"raw Ed25519 sign      {sign_rate:10.0f} ops/s")
    print(f"raw Ed25519 verify    {verify_rate:10.0f} ops/s")
    print(f"encode (outbound)     {encode_rate:10.0f} ops/s")
    print(f"decode (inbound)      {decode_rate:10.0f} ops/s")
    print(f"outbound/raw sign     {encode_rate / sign_rate:10.3f}")
    print(f"inbound/raw verify    {decode_rate / verify_rate:10.3f}")
    print(f"ratio {decode_rate / verify_rate:.3f}")


if __name__ == "__main__":
    main()
