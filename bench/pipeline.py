"""What the library's pipelines cost on top of the signature they cannot avoid.

Every figure is interleaved (``bench/interleaved.py``): the things compared
alternate in short rounds (at least 20 by default), and the median over the
rounds is printed with its spread, so that a neighbour's burst on a shared
machine spoils a round, not the figure. Printed:

1. inbound ``decode`` of a realistic signed offer against a raw Ed25519
   verify of the same token with ``cryptography`` (the target's baseline),
   and with libsodium (how the library verifies, spec §8.2);
2. outbound ``encode`` of an offer message model already validated (what an
   agent sends: ``build_message`` of body models) against a raw Ed25519 sign
   of the same signing input with ``cryptography`` (the target's baseline)
   and with libsodium; and ``encode`` of a plain payload dict, which is
   validated once;
3. where the time goes: microseconds per stage of each pipeline, each stage
   run on its own with the library's functions, interleaved with the whole
   pipeline in the same rounds; "rest" is the whole minus its stages (calls
   between stages, caches the stages evict from each other, garbage
   collection);
4. decode time against message size (tokens of about 2, 14 and 42 KB);
5. the cost of ``decide`` (the state machine) for message 1, 4, 100, 101,
   199 and 200 of one relationship (her RFIs and the vendor's offers
   alternate; from message 4 on each offer revises the last), decided as an
   agent decides (core + the ledger records the message names): it must
   not grow with the relationship's age.

The last two lines are the two ratios against their targets (issue 14):
``decode/raw verify >= 0.6`` and ``encode/raw sign >= 0.75``, both against
``cryptography``. Figures only; nothing is asserted (tests never assert on
time; ``--tiny`` only proves that the script runs).

Run: ``python bench/pipeline.py [--rounds 41] [--wall] [--tiny]``  (about half a minute)
"""

from __future__ import annotations

import argparse
import copy
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from interleaved import Comparison, Sample, Settings, compare, measure
from nacl import bindings as sodium

from vrm_protocol.canonical import (
    b64url_decode,
    b64url_encode,
    canonical_json,
    canonical_json_fast,
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
    format_timestamp,
    parse_timestamp,
)
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver
from vrm_protocol.ledger import LedgerFacts, MemoryLedger, OfferStatus, RelationshipCore
from vrm_protocol.limits import check_nesting, check_structure, check_token_size
from vrm_protocol.models import Message, parse_message_dict, to_payload
from vrm_protocol.state_machine import Direction, decide, ledger_query
from vrm_protocol.vocabulary import Role

EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples"
OFFER = EXAMPLES / "offer.binding-with-trade-in.json"
RFI = EXAMPLES / "personal-rfi.sally-family-car.json"
VENDOR_URL = "https://prius-dealer.london.example"
#: Token sizes of the size sweep, in bytes.
SIZES = (2_000, 14_000, 42_000)
#: Messages of one relationship whose decision is timed (1-based).
AGES = (1, 4, 100, 101, 199, 200)
DECODE_TARGET = 0.6
ENCODE_TARGET = 0.75


def load(path: Path) -> dict[str, Any]:
    """A JSON example."""
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


@dataclass(frozen=True)
class Signed:
    """One signed offer and everything the raw baselines need for the same bytes."""

    payload: dict[str, Any]
    message: Message
    token: bytes
    signing_input: bytes
    signature: bytes


class Fixture:
    """The parties, keys and raw-crypto baselines shared by every section."""

    def __init__(self) -> None:
        self.buyer = PairwiseIdentity.generate()
        self.vendor_key = SigningKey.generate("EdDSA")
        self.resolve = key_resolver(KeySet([self.vendor_key.public()]))
        # The vendor's key as raw key objects: the baselines sign and verify
        # the same bytes with the same key, without the library around them.
        seed = b64url_decode(self.vendor_key.to_private_jwk()["d"])
        self.raw_private = Ed25519PrivateKey.from_private_bytes(seed)
        self.raw_public = self.raw_private.public_key()
        self.raw_public_bytes = self.raw_public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.sodium_secret = sodium.crypto_sign_seed_keypair(seed)[1]

    def sign(self, payload: dict[str, Any]) -> Signed:
        """Encode ``payload`` and keep the pieces of its token."""
        token = encode(payload, self.vendor_key)
        signing_input, _, signature = token.rpartition(b".")
        return Signed(
            payload, parse_message_dict(payload), token, signing_input, b64url_decode(signature)
        )

    def offer(self) -> dict[str, Any]:
        """The realistic offer: a binding offer with a trade-in, to our buyer."""
        offer = load(OFFER)
        offer["from"] = VENDOR_URL
        offer["to"] = [self.buyer.identifier]
        return offer

    def now(self, payload: Mapping[str, Any]) -> datetime:
        """A receiving time inside the message's window."""
        return parse_timestamp(str(payload["created"]))

    def decode_once(self, signed: Signed) -> Callable[[], Any]:
        """A first delivery of ``signed``: the whole inbound pipeline, replay lookup included."""
        now = self.now(signed.payload)

        def inbound() -> None:
            decode(
                signed.token,
                resolve_key=self.resolve,
                receiver=self.buyer.identifier,
                now=now,
                replay=MemoryReplayGuard(),
            )

        return inbound

    def raw_verify(self, signed: Signed) -> Callable[[], Any]:
        """``cryptography``'s Ed25519 verify of the same token."""

        def verify() -> None:
            self.raw_public.verify(signed.signature, signed.signing_input)

        return verify

    def raw_verify_sodium(self, signed: Signed) -> Callable[[], Any]:
        """libsodium's Ed25519 verify of the same token (via PyNaCl)."""

        def verify() -> None:
            sodium.crypto_sign_open(signed.signature + signed.signing_input, self.raw_public_bytes)

        return verify


# -- 1, 2: the headline comparisons ---------------------------------------------------------------


def headline(fixture: Fixture, signed: Signed, settings: Settings) -> tuple[Comparison, Comparison]:
    """Decode against raw verify, encode against raw sign; print them."""
    model = signed.message
    key = fixture.vendor_key

    def encode_model() -> None:
        encode(model, key)

    def encode_payload() -> None:
        encode(signed.payload, key)

    def raw_sign() -> None:
        fixture.raw_private.sign(signed.signing_input)

    def raw_sign_sodium() -> None:
        sodium.crypto_sign(signed.signing_input, fixture.sodium_secret)

    print(f"offer: {len(signed.token)} bytes as a compact JWS ({len(signed.signing_input)} signed)")
    print("inbound:")
    decode_vs_verify = compare(
        "decode", fixture.decode_once(signed), "raw verify (cryptography)",
        fixture.raw_verify(signed), settings,
    )  # fmt: skip
    print("  " + decode_vs_verify.line())
    print("  " + compare(
        "decode", fixture.decode_once(signed), "raw verify (libsodium)",
        fixture.raw_verify_sodium(signed), settings,
    ).line())  # fmt: skip
    print("outbound:")
    encode_vs_sign = compare(
        "encode(model)", encode_model, "raw sign (cryptography)", raw_sign, settings
    )
    print("  " + encode_vs_sign.line())
    print("  " + compare(
        "encode(model)", encode_model, "raw sign (libsodium)", raw_sign_sodium, settings
    ).line())  # fmt: skip
    print("  " + compare(
        "encode(dict)", encode_payload, "raw sign (cryptography)", raw_sign, settings
    ).line())  # fmt: skip
    return decode_vs_verify, encode_vs_sign


# -- 3: stages ------------------------------------------------------------------------------------


def print_stages(title: str, samples: Mapping[str, Sample], whole: str) -> None:
    """Each stage's median and share of the whole; the rest is the whole minus the stages."""
    total = samples[whole].median
    print(f"{title}: {samples[whole].micros()} per message (median, p25-p75)")
    accounted = 0.0
    for name, sample in samples.items():
        if name == whole:
            continue
        accounted += sample.median
        print(f"  {name:38s} {sample.micros()}  {100 * sample.median / total:5.1f} %")
    rest = max(total - accounted, 0.0)
    share = 100 * rest / total
    print(f"  {'rest: glue, cold caches, GC':38s} {1e6 * rest:8.1f} µs {'':14s} {share:5.1f} %")


def stages(fixture: Fixture, signed: Signed, settings: Settings) -> None:
    """Print what each stage of decode and of encode costs."""
    token, payload = signed.token, signed.payload
    header_segment, payload_segment, signature_segment = token.split(b".")
    header_bytes = b64url_decode(header_segment)
    payload_bytes = b64url_decode(payload_segment)
    signature = b64url_decode(signature_segment)
    outside_strings = strip_json_strings(payload_bytes)
    document = parse_canonical(payload_bytes)
    kid = str(parse_json_object(header_bytes)["kid"])
    verifying_key = fixture.resolve(kid)
    message = signed.message
    receiver = fixture.buyer.identifier
    now = fixture.now(payload)
    header = {"alg": fixture.vendor_key.alg, "kid": fixture.vendor_key.kid, "typ": "vrm+jws"}

    def framing() -> None:
        check_token_size(token)
        for segment in token.split(b"."):
            b64url_decode(segment)

    def limits() -> None:
        check_nesting(header_bytes)
        check_structure(payload_bytes, strip_json_strings(payload_bytes))

    def freshness() -> None:
        check_audience(message.to, receiver)
        check_freshness(parse_timestamp(message.created), parse_timestamp(message.expires), now)

    def digest_and_replay() -> None:
        check_replay(
            MemoryReplayGuard(),
            sender=message.from_,
            message_id=message.id,
            digest=message_digest(token),
        )

    decode_stages: dict[str, Callable[[], Any]] = {
        "decode (whole)": fixture.decode_once(signed),
        "size + base64url framing": framing,
        "limits (strings stripped, nesting)": limits,
        "protected header parse": lambda: parse_json_object(header_bytes),
        "key lookup": lambda: fixture.resolve(kid),
        "Ed25519 verify": lambda: verifying_key.verify(signed.signing_input, signature),
        "canonical check + parse (orjson)": lambda: parse_canonical(
            payload_bytes, outside_strings=outside_strings
        ),
        "validation: the model built (once)": lambda: parse_message_dict(document),
        "key belongs to sender": lambda: check_key_sender(kid, message.from_),
        "audience + freshness": freshness,
        "digest + replay lookup": digest_and_replay,
    }
    print_stages("decode (inbound)", measure(decode_stages, settings), "decode (whole)")

    key = fixture.vendor_key
    dumped = to_payload(message)
    canonical = canonical_json_fast(dumped, numbers_checked=True)
    assert canonical is not None
    header_bytes = canonical_json(header)

    def framing_out() -> None:
        signing_input = b64url_encode(header_bytes) + "." + b64url_encode(canonical)
        b64url_encode(signature)
        signing_input.encode("ascii")

    encode_stages: dict[str, Callable[[], Any]] = {
        "encode(model) (whole)": lambda: encode(message, key),
        "key belongs to sender": lambda: check_key_sender(key.kid, message.from_),
        "model to payload (no validation)": lambda: to_payload(message),
        "canonical JSON (RFC 8785)": lambda: canonical_json_fast(dumped, numbers_checked=True),
        "header + base64url framing": framing_out,
        "Ed25519 sign": lambda: key.sign(signed.signing_input),
    }
    print_stages("encode (outbound)", measure(encode_stages, settings), "encode(model) (whole)")


# -- 4: size --------------------------------------------------------------------------------------


def grown_offer(fixture: Fixture, size: int) -> dict[str, Any]:
    """An offer whose token is about ``size`` bytes: items and options added, then longer text."""
    offer = fixture.offer()
    body = offer["body"]
    body["items"] = body["items"][:1]
    for member in ("options", "financing", "tradeIn", "conditions", "delivery"):
        body.pop(member, None)
    total = body["items"][0]["unitPrice"]
    body["price"] = {"subtotal": total, "total": total}
    words = "A well-kept example line describing one more thing on offer, with its details"
    length = 120
    while len(fixture.sign(offer).token) < size:
        index = len(body["items"]) + len(body.get("options", ()))
        text = (words + " ") * (length // len(words) + 1)
        if len(body["items"]) < 50:
            body["items"].append(
                {"sku": f"SKU-{index}", "description": text[:length].strip(), "quantity": 1,
                 "unitPrice": {"amount": "10", "currency": "GBP"}}
            )  # fmt: skip
        elif len(body.setdefault("options", [])) < 50:
            body["options"].append(
                {"code": f"option-{index}", "description": text[:length].strip(),
                 "price": {"amount": "10", "currency": "GBP"}}
            )  # fmt: skip
        else:
            length += 10
            for line in (*body["items"], *body["options"]):
                line["description"] = ((words + " ") * 8)[: min(length, 500)].strip()
    return offer


def sizes(fixture: Fixture, settings: Settings) -> None:
    """Decode time against token size, each size against a raw verify of its own token."""
    print("decode against message size (each against a raw verify of the same token):")
    for size in SIZES:
        signed = fixture.sign(grown_offer(fixture, size))
        result = compare(
            "decode", fixture.decode_once(signed), "raw verify (cryptography)",
            fixture.raw_verify(signed), settings,
        )  # fmt: skip
        kilobytes = len(signed.token) / 1000
        print(
            f"  {kilobytes:5.1f} KB: decode {1e6 * result.subject.median:7.1f} µs "
            f"({1e6 * result.subject.median / kilobytes:5.1f} µs/KB), raw verify "
            f"{1e6 * result.baseline.median:6.1f} µs, ratio {result.ratio:.3f} "
            f"(p25-p75 {result.spread[0]:.3f}-{result.spread[1]:.3f})"
        )


# -- 5: decide against the relationship's age ----------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Everything one call of :func:`decide` takes, captured before the message."""

    number: int
    core: RelationshipCore
    message: Message
    direction: Direction
    facts: LedgerFacts
    now: datetime
    digest: str


def relationship(fixture: Fixture, length: int) -> list[Decision]:
    """One relationship, from the vendor's side: her RFIs and its revised offers alternate.

    Message 1 is her RFI; every even message is the vendor's offer revising
    (superseding) the last. Each message is decided as an agent decides:
    the ledger records its type's :func:`ledger_query` names, looked up by id
    or by status as a store's index would, then :func:`decide`, then the
    effects applied. The inputs of every decision are kept.
    """
    buyer, vendor = fixture.buyer.identifier, VENDOR_URL
    start = datetime.fromisoformat("2027-01-10T09:00:00+00:00")
    core, ledger = RelationshipCore(), MemoryLedger()
    rfi, offer = load(RFI), fixture.offer()
    thread = f"urn:uuid:{uuid.uuid4()}"
    previous_offer: dict[str, str] | None = None  # the messageRef of the last offer
    decisions: list[Decision] = []
    for number in range(1, length + 1):
        now = start + timedelta(minutes=number)
        theirs = number % 2 == 1
        payload = copy.deepcopy(rfi if theirs else offer)
        payload.update(
            id=f"urn:uuid:{uuid.uuid4()}", thread=thread,
            created=format_timestamp(now), expires=format_timestamp(now + timedelta(days=1)),
        )  # fmt: skip
        payload["from"], payload["to"] = (buyer, [vendor]) if theirs else (vendor, [buyer])
        digest = "sha-256:" + b64url_encode(uuid.uuid4().bytes * 2)[:43]
        if theirs:
            payload["body"]["responseBy"] = format_timestamp(now + timedelta(days=2))
        else:
            payload["body"]["validUntil"] = format_timestamp(now + timedelta(days=7))
            payload["body"].pop("supersedes", None)
            if previous_offer is not None:
                payload["body"]["supersedes"] = previous_offer
            previous_offer = {"id": payload["id"], "digest": digest}
        message = parse_message_dict(payload)
        direction = Direction.RECEIVED if theirs else Direction.SENT
        sender = Role.BUYER if theirs else Role.VENDOR
        query = ledger_query(message, sender=sender)
        offers = [ledger.offers[i] for i in query.offers if i in ledger.offers]
        if query.open_offers_of is not None:
            offers += [
                record
                for record in ledger.offers.values()
                if record.sender is query.open_offers_of and record.status is OfferStatus.OPEN
            ]
        requests = [ledger.requests[i] for i in query.requests if i in ledger.requests]
        facts = LedgerFacts.of(query, offers, requests)
        decisions.append(Decision(number, core, message, direction, facts, now, digest))
        transition = decide(
            core, message, our_role=Role.VENDOR, our_id=vendor, peer_id=buyer,
            direction=direction, facts=facts, now=now, digest=digest,
        )  # fmt: skip
        ledger.apply(transition.effects)
        core = transition.core
    return decisions


def ages(fixture: Fixture, settings: Settings) -> None:
    """Print the cost of deciding message 1, 4, 100, 101, 199 and 200 of one relationship."""
    decisions = {d.number: d for d in relationship(fixture, max(AGES))}

    def deciding(decision: Decision) -> Callable[[], Any]:
        def run() -> None:
            decide(
                decision.core, decision.message, our_role=Role.VENDOR, our_id=VENDOR_URL,
                peer_id=fixture.buyer.identifier, direction=decision.direction,
                facts=decision.facts, now=decision.now, digest=decision.digest,
            )  # fmt: skip

        return run

    samples = measure({f"message {n}": deciding(decisions[n]) for n in AGES}, settings)
    print("decide (state machine) against the relationship's age (her RFIs and revised offers):")
    for number in AGES:
        decision = decisions[number]
        print(f"  message {number:3d} ({decision.message.type:12s}) "
              f"{samples[f'message {number}'].micros()}")  # fmt: skip
    for first, last in ((1, 199), (4, 100), (4, 200)):
        ratio = samples[f"message {last}"].median / samples[f"message {first}"].median
        print(f"  message {last} costs {ratio:.2f} x message {first} (same type)")


# -- main -----------------------------------------------------------------------------------------


def verdict(name: str, result: Comparison, target: float) -> str:
    """The closing line of one target."""
    low, high = result.spread
    met = "met" if result.ratio >= target else "NOT met"
    return (
        f"{name}: ratio {result.ratio:.3f} (p25-p75 {low:.3f}-{high:.3f}, "
        f"{len(result.ratios)} rounds); target >= {target}: {met}"
    )


def main(argv: list[str] | None = None) -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=Settings().rounds)
    parser.add_argument(
        "--wall", action="store_true", help="measure wall time, not this thread's CPU time"
    )
    parser.add_argument("--tiny", action="store_true", help="prove it runs (figures meaningless)")
    arguments = parser.parse_args(argv)
    clock = "wall" if arguments.wall else "cpu"
    settings = Settings.tiny() if arguments.tiny else Settings(rounds=arguments.rounds, clock=clock)
    print(
        f"{settings.rounds} interleaved rounds of {1e3 * settings.seconds_per_turn:.0f} ms turns, "
        f"{settings.clock} time"
    )
    fixture = Fixture()
    signed = fixture.sign(fixture.offer())
    decode_result, encode_result = headline(fixture, signed, settings)
    print()
    stages(fixture, signed, settings)
    print()
    sizes(fixture, settings)
    print()
    ages(fixture, settings)
    print()
    print(verdict("decode / raw verify (cryptography)", decode_result, DECODE_TARGET))
    print(verdict("encode / raw sign (cryptography)", encode_result, ENCODE_TARGET))


if __name__ == "__main__":
    main()
