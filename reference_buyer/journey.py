"""``vrm demo``: Sally buys a car, end to end, between real agents (seed 000).

Three vendor agents run as separate processes (``vrm vendor serve``), each
with its own SQLite store: Mayfair Motors (her local dealer), Prius Direct
(online only) and Road Warrior Audio (the sound-system maker, a third party).
A fourth dealer is not online and is reached by a printed letter.  Sally's
buyer agent runs here, with its own inbox server on 127.0.0.1 and its own
personal data store.  A credit union is an attestation issuer created for the
run; the dealers are told to trust it.

The ten steps of the engagement framework run in order, each printed as it
completes; every message is written to ``transcript.md`` and
``transcript.json`` with whether its signature verified.  The exit code is 0
only if every step succeeded and every verification passed.  The vendor
processes are stopped whatever happens (errors, Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import aiohttp
import click
import orjson
from rich.console import Console
from rich.markup import escape

from reference_buyer import evidence
from reference_buyer import handlers_conversation as conversation
from reference_buyer import journey_story as story
from reference_buyer.agent import BuyerAgent
from reference_buyer.app import serve as serve_agent
from reference_buyer.app_codecision import summary_of
from reference_buyer.config import BuyerConfig, Decorrelation
from reference_buyer.dashboard import listen_dashboard, serve_dashboard
from reference_buyer.handlers_living import offer_warnings
from reference_buyer.journey_living import (
    book_service,
    book_test_drive,
    record_service,
    take_extras,
)
from reference_buyer.journey_materials import brochure_by_post
from reference_buyer.journey_myterms import join_programme, move_house, proffer_to_all
from reference_buyer.journey_paperwork import paperwork_shared
from reference_buyer.journey_retention import (
    MANUFACTURER_CATALOGUE,
    register_and_run_touchpoints,
    vendor_leaves,
)
from reference_buyer.journey_transaction import deliver_and_pay
from reference_buyer.letters import PostalRecipient
from reference_buyer.policy import load_policy
from reference_buyer.scenario import (
    audio_rfi_body,
    counter_total,
    reengagement_rfi_body,
    sally_profile,
    sally_rfi_body,
    sally_rfp_body,
)
from reference_buyer.store import BuyerStore, Channel, Entry
from reference_buyer.vendor_search import search_directory
from reference_buyer.wallet import WALLET_FILE, CredentialWallet
from vrm_agent.clock import AgentClock
from vrm_agent.net import LOOPBACK
from vrm_protocol.canonical import b64url_decode, message_digest
from vrm_protocol.codec import decode
from vrm_protocol.errors import ProtocolError
from vrm_protocol.evidence import verify_bundle
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.http_binding import TEST_DRIVER_PREFIX
from vrm_protocol.keys import KeySet, SigningKey, key_resolver
from vrm_protocol.models import (
    DealConfirmationMessage,
    Message,
    OfferDeclineMessage,
    OfferMessage,
    QuestionMessage,
    ReceiptMessage,
    ServiceNoticeMessage,
    SupportResolutionMessage,
    TermsAssertionMessage,
    parse_message_dict,
    to_payload,
)
from vrm_protocol.party_attestations import TERMS_SIGNATORY, issue_party_attestation
from vrm_protocol.sd_jwt_vc import SD_JWT_FORMAT, issue_batch
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import LifecycleStep, MessageType

__all__ = ["demo", "run_demo"]

#: How long a vendor may take to announce its address.
START_TIMEOUT_SECONDS = 30.0
#: How long the buyer waits for any one reply.
REPLY_TIMEOUT_SECONDS = 15.0
CREDIT_UNION_ID = "https://credit-union.example"
#: How many single-use ability-to-pay credentials the credit union issues for the run.
CREDENTIAL_BATCH = 12
#: The registry of the standard terms of sharing, which her agent trusts (spec §10.4).
TERMS_REGISTRY_ID = "https://terms-registry.example"
_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:\d+)")
POSTAL_DEALER = PostalRecipient(
    "https://hampstead-motors.example",
    "Hampstead Motors",
    ("12 Heath Street", "London NW3 6TE"),
)


#: How her husband's approval is given (said in the transcript).
APPROVAL_NOTE = (
    "Seed 000 has Sally confirm the deal with her husband. He runs his own buyer agent "
    "(his own process, store and keys). Her RFP names, per dealer, the identifier his agent "
    "approves under in that relationship (spec §10.2); her agent asks his for the approval "
    "of the improved offer, bound to its digest (spec §11.11); he approves from his agent, "
    "which signs the approval with his key and posts it to her reply inbox; her acceptance "
    "carries it and the dealer verifies it. Her agent never holds his key (VRM-BUY-011)."
)
#: The husband's agent in ``Journey.vendors`` (a buyer agent, run like the vendors).
HUSBAND = "husband"


#: The directory process's name among the demo's processes.
DIRECTORY = "directory"
#: What Sally looks for, and where (her home area NW3, coarsened to its postcode area).
SEARCH_CATEGORY, SEARCH_AREA = "vehicles.cars", "GB-NW"
#: The areas each vendor lists (default: its catalogue's countries).
_AREAS: dict[str, tuple[str, ...]] = {
    "dealer-mayfair": ("--area", "GB-NW", "--area", "GB-W", "--area", "GB-SW"),
}


class DemoFailed(Exception):
    """A step of the journey did not go as the protocol says it must."""


@dataclass
class VendorProcess:
    """A vendor agent started as a subprocess."""

    catalogue: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""


@dataclass
class StepResult:
    """One lifecycle step of the run."""

    number: int
    step: LifecycleStep
    title: str
    ok: bool = False
    summary: str = ""
    error: str | None = None
    first_seq: int = 0
    last_seq: int = 0


@dataclass
class Journey:
    """Everything the run has: processes, the buyer, the steps."""

    out: Path
    console: Console
    vendors: dict[str, VendorProcess] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    directory: VendorProcess | None = None
    #: The terms registry's key (spec §10.4): it attests who signed which terms.
    registry_key: SigningKey = field(default_factory=lambda: SigningKey.generate("ES256"))


# -- processes -----------------------------------------------------------------------------------


def _start_vendor(
    catalogue: str, out: Path, trust_file: Path, listing: tuple[str, ...] = ()
) -> VendorProcess:
    data_dir = out / catalogue
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "agent.log"
    # The `vrm` command, run by this very interpreter: works from a checkout and
    # from an installed wheel alike.
    argv = [
        sys.executable,
        "-c",
        "from vrm_protocol.cli import main; main()",
        "vendor",
        "serve",
        "--catalogue",
        catalogue,
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--test-mode",
        "--trust-issuer",
        str(trust_file),
        "--reply-delay",
        "0.05",
        *listing,
    ]
    if catalogue == DIRECTORY:
        # The directory (spec §11.10): `vrm directory serve`, loopback allowed.
        argv = [*argv[:3], "directory", "serve", "--port", "0", "--test-mode"]
    elif catalogue == HUSBAND:
        # Her husband, the co-decision-maker: a buyer agent of his own (seed 000
        # step 3), driven through its test driver as he would use his app.
        argv[3:] = ["buyer", "serve", "--port", "0", "--data-dir", str(data_dir), "--test-mode"]
    with log.open("wb") as handle:
        # Own session: a Ctrl-C in the terminal reaches the demo, which then
        # stops the vendors itself (in order, and always).
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv, stdout=handle, stderr=handle, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return VendorProcess(catalogue, process, log)


async def _await_listening(vendor: VendorProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        match = _LISTENING.search(vendor.log.read_bytes())
        if match is not None:
            vendor.url = match.group(1).decode()
            return
        if vendor.process.poll() is not None:
            raise DemoFailed(
                f"vendor {vendor.catalogue} exited ({vendor.process.returncode}):\n"
                + vendor.log.read_text(errors="replace")[-2000:]
            )
        if time.monotonic() > deadline:
            raise DemoFailed(f"vendor {vendor.catalogue} did not start within 30 s")
        await asyncio.sleep(0.05)


def _stop(vendor: VendorProcess) -> None:
    if vendor.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        vendor.process.send_signal(signal.SIGTERM)
    try:
        vendor.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        vendor.process.kill()
        vendor.process.wait(timeout=5)


@contextlib.asynccontextmanager
async def running_vendors(
    catalogues: list[str], out: Path, trust_file: Path, journey: Journey
) -> AsyncIterator[dict[str, VendorProcess]]:
    """Start the vendor agents; stop every one of them on the way out, whatever happened.

    Raises:
        DemoFailed: a vendor did not start.
    """
    try:
        # The directory first: each dealer lists itself there as it starts (§11.10).
        journey.directory = _start_vendor(DIRECTORY, out, trust_file)
        await _await_listening(journey.directory)
        for catalogue in catalogues:
            listing = ("--list-at", journey.directory.url, *_AREAS.get(catalogue, ()))
            journey.vendors[catalogue] = _start_vendor(catalogue, out, trust_file, listing)
        for vendor in journey.vendors.values():
            await _await_listening(vendor)
        yield journey.vendors
    finally:
        for vendor in journey.vendors.values():
            _stop(vendor)
        if journey.directory is not None:
            _stop(journey.directory)


# -- the credit union ----------------------------------------------------------------------------


def _credit_union(out: Path) -> tuple[SigningKey, Path]:
    key = SigningKey.generate("ES256")
    directory = out / "credit-union"
    directory.mkdir(parents=True, exist_ok=True)
    trust_file = directory / "issuer.json"
    trust_file.write_text(
        json.dumps({"issuer": CREDIT_UNION_ID, "jwks": KeySet([key.public()]).to_jwks()}, indent=2)
    )
    return key, trust_file


# -- the journey ---------------------------------------------------------------------------------


M = TypeVar("M", bound=Message)


def _model(entry: Entry, model: type[M]) -> M:
    """The message of a journal line, as the model it must be.

    Raises:
        DemoFailed: it is another message (or a paper answer).
    """
    message = entry.model()
    if not isinstance(message, model):
        raise DemoFailed(f"{entry.message_id} is not a {model.__name__}")
    return message


async def _max_seq(store: BuyerStore) -> int:
    entries = await store.history()
    return entries[-1].seq if entries else 0


async def _step(
    journey: Journey,
    store: BuyerStore,
    number: int,
    step: LifecycleStep,
    title: str,
    action: Callable[[], Awaitable[str]],
) -> None:
    # A message that arrived between two steps (a reply of the last one, under
    # load) belongs to the next: the steps' ranges leave no gap.
    first = journey.steps[-1].last_seq + 1 if journey.steps else await _max_seq(store) + 1
    result = StepResult(number, step, title, first_seq=first)
    journey.steps.append(result)
    console = journey.console
    status = console.status(f"{number:>2}. {title}…") if console.is_terminal else None
    try:
        if status is not None:
            status.start()
        result.summary = await action()
        result.ok = True
    except Exception as error:  # any failure of a step is reported, not raised
        # The transcript is written whatever went wrong; the step says what.
        result.error = f"{type(error).__name__}: {error}"
    finally:
        if status is not None:
            status.stop()
        result.last_seq = await _max_seq(store)
    mark = "[green]✔[/]" if result.ok else "[red]✘[/]"
    detail = result.summary if result.ok else result.error
    console.print(f"{mark} {number:>2}. {escape(title)}: {escape(detail or '')}", highlight=False)
    if not result.ok:
        raise DemoFailed(f"step {number} ({step}) failed: {result.error}")


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


async def _driver(http: aiohttp.ClientSession, base: str, path: str, body: Any) -> Any:
    async with http.post(base + TEST_DRIVER_PREFIX + path, json=body) as response:
        answer = await response.json(content_type=None)
        if response.status != 200:
            raise DemoFailed(f"{base} test driver {path} answered {response.status}: {answer}")
        return answer


#: Her phone number, which she withdraws from the dealer once the car is delivered.
PHONE: Final = "contact.phone"
#: Her travel dates, which the Road Warrior programme reads by grant (seed 000 step 7).
TRAVEL_DATES: Final = "travel.dates"
#: How long she grants the programme, at most (she revokes it before).
GRANT_DAYS: Final = 30
#: Her travel dates once the first trip moved a day.
MOVED_TRIP: Final = "2027-04-11/2027-04-18 (Cornwall), 2027-08-02/2027-08-09 (Highlands)"


async def _read_grant(
    http: aiohttp.ClientSession, vendor: str, grant: str, *, expect_ok: bool = True
) -> dict[str, Any]:
    """The vendor, told by its test driver to read under ``grant`` now (spec §11.9):
    her agent's answer, or (``expect_ok=False``) the vendor's own refusal."""
    async with http.post(
        vendor + TEST_DRIVER_PREFIX + "/read-grant", json={"grant": grant}
    ) as response:
        answer = await response.json(content_type=None)
    if not isinstance(answer, dict):
        raise DemoFailed(f"{vendor} answered the read instruction with {answer!r}")
    if not expect_ok:
        return answer
    if response.status != 200 or answer.get("status") != 200:
        raise DemoFailed(f"the granted read failed: {answer}")
    document = answer.get("answer")
    return document if isinstance(document, dict) else {}


def _granted_value(document: Mapping[str, Any]) -> Any:
    return next(
        (
            item.get("value")
            for item in document.get("items", ())
            if item.get("item") == TRAVEL_DATES
        ),
        None,
    )


async def _journey(journey: Journey, agent: BuyerAgent, http: aiohttp.ClientSession) -> None:
    store = agent.store
    mayfair = journey.vendors["dealer-mayfair"].url
    online = journey.vendors["dealer-online"].url
    audio = journey.vendors["road-warrior"].url
    husband = journey.vendors[HUSBAND].url
    dealers = [mayfair, online]
    names = {
        mayfair: "Mayfair Motors",
        online: "Prius Direct",
        audio: "Road Warrior Audio",
        journey.vendors[MANUFACTURER_CATALOGUE].url: "Toyota GB",
        POSTAL_DEALER.party_id: POSTAL_DEALER.name,
    }
    journey.notes["names"] = names
    state: dict[str, Any] = {}

    def after(seq: int, kind: MessageType, sender: str) -> Callable[[Entry], bool]:
        return lambda m: m.seq > seq and m.type is kind and m.peer == sender

    async def search() -> str:
        at = format_timestamp(agent.clock.now())
        await store.add_note(
            "Credit union: eligible for a new-car loan up to GBP 30000", source="visit", at=at
        )
        await store.add_note(
            "Short list: Toyota Prius; hybrid; ISOFIX; MP3 sound", source="research", at=at
        )
        assert journey.directory is not None
        search = await search_directory(
            agent, journey.directory.url, category=SEARCH_CATEGORY, area=SEARCH_AREA
        )
        _expect(
            sorted(search.vendors) == sorted(dealers),
            f"the directory names the two dealers serving her area (found {search.vendors})",
        )
        journey.notes.setdefault("story", {})[str(LifecycleStep.SEARCH)] = [
            f"Sally's agent → the directory: a search for {SEARCH_CATEGORY} in {SEARCH_AREA} "
            "(a plain GET: no pseudonym, no key, no cookie); it names "
            + ", ".join(names[v] for v in search.vendors)
            + ", each listing verified against the dealer's own published keys"
        ]
        seq = await _max_seq(store)
        await agent.buying.send_rfis(search.vendors, sally_rfi_body(agent.clock.now()))
        for dealer in dealers:
            await agent.wait_for(
                after(seq, MessageType.OFFER, dealer), within=REPLY_TIMEOUT_SECONDS
            )
        ranked = await agent.ranked_offers()
        _expect(len(ranked) >= 2, "both dealers answered the intentcast with an offer")
        # Her own terms, her first move (IEEE 7012, spec §6.70): data used only
        # for this transaction. Mayfair lists the agreement; Prius Direct does not.
        decisions, myterms = await proffer_to_all(
            agent, dealers, "myterms-sd-bb", names, within=REPLY_TIMEOUT_SECONDS
        )
        _expect(
            decisions == {mayfair: "agree", online: "decline"},
            f"one dealer agrees to her terms, the other declines ({decisions})",
        )
        return (
            f"directory search ({SEARCH_CATEGORY} in {SEARCH_AREA}, nothing identifying her): "
            f"{', '.join(names[v] for v in search.vendors)}, listings verified; "
            f"personal RFI to {len(dealers)} dealers under {len(dealers)} unlinkable "
            f"pseudonyms; {len(ranked)} offers, best total cost "
            f"{ranked[0].currency} {ranked[0].total_cost}; {myterms}"
        )

    async def engage() -> str:
        seq = await _max_seq(store)
        chosen = sorted({row.vendor for row in (await agent.ranked_offers())[:2]})
        # Her husband is the co-decision-maker (seed 000 step 3), with his own
        # agent: it names the identifier he approves under with each dealer (one
        # per relationship: one id in every copy would link them, VRM-PRIV-002).
        approvers = {dealer: await agent.codecision.enrol(dealer, husband) for dealer in chosen}
        _, letters = await agent.buying.send_rfp(
            chosen, sally_rfp_body(agent.clock.now()), postal=[POSTAL_DEALER], approver=approvers
        )
        for dealer in chosen:
            await agent.wait_for(
                after(seq, MessageType.OFFER, dealer), within=REPLY_TIMEOUT_SECONDS
            )
        asked = await _answer_questions(agent, chosen, seq, names)
        letter = letters[POSTAL_DEALER.party_id]
        # Hampstead Motors answers by post; Sally types the offer in (unsigned).
        paper = paper_offer(agent, letter.message_id)
        await agent.buying.enter_paper_answer(
            POSTAL_DEALER.party_id, paper, in_reply_to=letter.message_id
        )
        presented = [
            a.token
            for entry in await store.history(type=MessageType.PERSONAL_RFP, after=seq)
            for a in getattr(entry.model().body, "attestations", None) or ()
            if a.format == SD_JWT_FORMAT
        ]
        _expect(
            len(presented) == len(chosen) + 1  # the dealers online, and the letter
            and len({token.split("~")[0] for token in presented}) == len(presented),
            "each copy of the RFP carries its own SD-JWT credential (none shown twice)",
        )
        state["chosen"], state["approvers"] = chosen, approvers
        journey.notes["approval"] = APPROVAL_NOTE
        # Seed 000 step 2: a test drive with the local dealer.
        test_drive = await book_test_drive(
            agent,
            mayfair,
            await pseudonym_with(mayfair),
            lambda path, body: _driver(http, mayfair, path, body),
            within=REPLY_TIMEOUT_SECONDS,
        )
        # Seed 000 step 2: Prius Direct's brochure by post, her address for that alone.
        brochure = await brochure_by_post(
            agent, online, names[online], within=REPLY_TIMEOUT_SECONDS
        )
        # Seed 001: her agent flags an offer that takes the old car before delivery.
        flagged = await offer_warnings(agent)
        state["flagged"] = flagged
        _expect(bool(flagged), "her agent flags the offer that takes her old car first")
        notes = []
        for offer_id, warnings in flagged.items():
            view = await store.offer_view(offer_id)
            who = names.get(view.peer, view.peer) if view is not None else offer_id
            notes.append(
                f"{who}: {'; '.join(warnings)} (seed 001): flagged, never accepted by her "
                "standing policy"
            )
        journey.notes["flagged"] = notes
        return (
            f"personal RFP (trade-in with delivery; ability to pay as one single-use SD-JWT "
            f"credential per dealer, unlinkable, {ability_left()} left in her batch; her "
            f"husband's approval required: his agent named {len(set(approvers.values()))} "
            f"unlinkable identifiers) to {len(chosen)} dealers + a letter to "
            f"{POSTAL_DEALER.name} "
            f"({journey.out.name}/letters/); {len(await agent.ranked_offers())} offers ranked, "
            f"one typed in from paper{asked}; {len(flagged)} flagged: takes her old car before "
            f"delivery (see the notes); {test_drive} with {names[mayfair]}; {brochure}"
        )

    async def negotiate() -> str:
        signed = []
        for row in await agent.ranked_offers():
            offer = await store.offer_view(row.offer_id)
            if (
                row.vendor in state["chosen"]
                and row.offer_id not in state["flagged"]  # her standing policy (seed 001)
                and offer is not None
                and offer.verified
                and offer.basis == "binding"
            ):
                signed.append((row, offer))
        _expect(bool(signed), "a signed binding offer answered the RFP")
        best, offer = signed[0]
        total = offer.body.price.total.amount
        seq = await _max_seq(store)
        counter = await agent.buying.counter(best.offer_id, counter_total(total))
        improved = _model(
            await agent.wait_for(
                after(seq, MessageType.OFFER, best.vendor), within=REPLY_TIMEOUT_SECONDS
            ),
            OfferMessage,
        )
        _expect(
            improved.body.basis == "binding",
            "the dealer answers the counter with a binding offer",
        )
        state["dealer"], state["offer"] = best.vendor, improved.id
        assert isinstance(counter.model, OfferMessage)
        countered = counter.model.body.price.total.amount
        return (
            f"counter-offer at GBP {countered}"
            f" to {names[best.vendor]} (was {total}); improved binding offer GBP "
            f"{improved.body.price.total.amount}"
        )

    async def transact() -> str:
        dealer = state["dealer"]
        # The offer requires her husband's approval: her agent asks his agent,
        # he approves from it, and his agent posts the approval back (spec §10.2).
        approval = await ask_husband(dealer, state["offer"])
        seq = await _max_seq(store)
        acceptance = await agent.buying.accept(state["offer"], approvals=[approval])
        deal = _model(
            await agent.wait_for(
                after(seq, MessageType.DEAL_CONFIRMATION, dealer), within=REPLY_TIMEOUT_SECONDS
            ),
            DealConfirmationMessage,
        )
        trade_in = deal.body.trade_in
        _expect(
            trade_in is not None and trade_in.handover == "with-delivery",
            "the old car is handed over when the new one is delivered (seed 001)",
        )
        issuers = [a.issuer for a in getattr(acceptance.model.body, "approvals", None) or ()]
        _expect(
            issuers == [state["approvers"][dealer]]
            and await agent.pseudonyms.by_identifier(issuers[0]) is None,
            "the acceptance carries his approval, signed by his key, never hers (VRM-BUY-011)",
        )
        # The acceptance declines the other dealer's live offers (spec §6.5).
        declined = [
            offer_id
            for entry in await store.history(type=MessageType.OFFER_DECLINE, after=seq)
            for offer_id in _model(entry, OfferDeclineMessage).body.offers
        ]
        _expect(bool(declined), "the other dealer's offers are declined")
        return (
            f"his agent approved the offer (bound to its digest) and her acceptance carries "
            f"his approval; acceptance with identity; deal "
            f"{deal.body.deal.id} for {deal.body.deal.total.currency} "
            f"{deal.body.deal.total.amount}, trade-in "
            f"{trade_in.handover if trade_in is not None else None}; "
            f"{len(declined)} offer(s) of the other dealer declined"
        )

    async def welcome() -> str:
        dealer = state["dealer"]
        assertion = await agent.wait_for(
            lambda m: m.type is MessageType.TERMS_ASSERTION and m.peer == dealer,
            within=REPLY_TIMEOUT_SECONDS,
        )
        # Seed 000, step 5: emergency and technical notifications only, and the
        # online maintenance record she activates (the dealer's reminders).
        terms_response, dealer_decision = await agent.owning.answer_terms(
            assertion.message_id, notifications=("safety", "technical", "maintenance")
        )
        _expect(
            dealer_decision is not None,
            f"{names[dealer]} publishes the terms it asserts on its own origin, with the "
            "digest it asserts (spec D12); otherwise she shares nothing",
        )
        assert dealer_decision is not None
        # Seed 000 step 4: the paperwork of the deal, from her store (VRM-PAP-001).
        paperwork = await paperwork_shared(agent, dealer, terms_response)
        # Seed 000 step 5: the registry attests that Road Warrior signed the terms it
        # publishes; Road Warrior carries that in its terms assertion (spec §10.4).
        await register_signatory(audio)
        seq = await _max_seq(store)
        await agent.buying.send_rfis([audio], audio_rfi_body(agent.clock.now()), attest=False)
        audio_terms = await agent.wait_for(
            after(seq, MessageType.TERMS_ASSERTION, audio), within=REPLY_TIMEOUT_SECONDS
        )
        # She signs up for the programme herself (seed 000, step 7): news of it is welcome.
        _, audio_decision = await agent.owning.answer_terms(
            audio_terms.message_id, notifications=("safety", "technical", "new-products")
        )
        signatories = [
            a.issuer
            for a in _model(audio_terms, TermsAssertionMessage).body.attestations or ()
            if a.kind == TERMS_SIGNATORY
        ]
        _expect(
            audio_decision is not None and signatories == [TERMS_REGISTRY_ID],
            "Road Warrior publishes the terms it asserts on its own origin (spec D12), and "
            "shows the registry's attestation that it signed them, verified before she shares "
            "(spec §10.4)",
        )
        assert audio_decision is not None
        _expect(
            set(audio_decision.notifications) <= {"safety", "technical", "new-products"},
            "notifications: safety, technical and the programme's news only",
        )
        # Seed 000 step 4: extras proposed at the transaction; she takes one.
        extras = await take_extras(
            agent,
            dealer,
            await pseudonym_with(dealer),
            lambda path, body: _driver(http, dealer, path, body),
            within=REPLY_TIMEOUT_SECONDS,
        )
        # Seed 000 steps 4-5, seed 001: delivery with the trade-in, invoice, her loan pays.
        transaction = await deliver_and_pay(
            agent,
            dealer,
            await pseudonym_with(dealer),
            lambda path, body: _driver(http, dealer, path, body),
            within=REPLY_TIMEOUT_SECONDS,
        )
        # The car is delivered: she withdraws the phone number she gave at acceptance
        # (spec §6.20); the dealer's signed receipt says what it did (spec §6.21).
        seq = await _max_seq(store)
        change = await agent.consents.change(
            dealer,
            [{"item": PHONE, "action": "withdraw"}],
            reason="The car is delivered; e-mail is enough from now on.",
        )
        await agent.wait_for(
            after(seq, MessageType.CONSENT_RECEIPT, dealer), within=REPLY_TIMEOUT_SECONDS
        )
        changed = next(
            c
            for c in await store.consent_changes(dealer)
            if c.change_id == change.message.message_id
        )
        _expect(
            changed.receipt_verified is True,
            f"the consent receipt accounts for her phone number: {list(changed.problems)}",
        )
        receipt = changed.receipt or {}
        deleted = [a["item"] for a in receipt.get("applied", ()) if a.get("deleted")]
        _expect(PHONE in deleted, f"{names[dealer]} deleted her phone number ({receipt})")
        return (
            f"phone number withdrawn from {names[dealer]}: its signed receipt says deleted "
            f"(checked against her sharing log); "
            f"terms of {names[dealer]}: {dealer_decision.decision.value} "
            f"({len(dealer_decision.accepted)} accepted, {len(dealer_decision.refused)} "
            f"refused; {paperwork}); "
            f"terms of Road Warrior (signatory verified with the terms registry): "
            f"{audio_decision.decision.value}, notifications "
            f"{' + '.join(audio_decision.notifications)}; {extras}; {transaction}"
        )

    async def ask_husband(dealer: str, offer_id: str) -> Any:
        vendor, ref, summary = await summary_of(agent, offer_id)
        request = await agent.codecision.ask(ref, vendor=vendor, agent=husband, summary=summary)
        listed = await _driver(http, husband, "/approvals", {})
        pending = [r for r in listed["received"] if r["request"] == request]
        _expect(
            len(pending) == 1 and pending[0]["offer"] == ref,
            "his agent shows him the request, bound to the offer's digest",
        )
        await _driver(http, husband, "/approve", {"request": request, "decision": "approve"})
        approvals = await agent.codecision.approvals_for(offer_id)
        _expect(len(approvals) == 1, "his agent posted his approval to her reply inbox")
        return approvals[0]

    async def register_signatory(party: str) -> None:
        async with http.get(party + "/.well-known/vrm") as answer:
            discovery = await answer.json(content_type=None)
        terms = discovery["terms"][0]
        attestation = issue_party_attestation(
            kind=TERMS_SIGNATORY,
            party=party,
            claims={"terms": terms},
            issuer_key=journey.registry_key,
            issuer_id=TERMS_REGISTRY_ID,
            now=agent.clock.now(),
        )
        await _driver(http, party, "/party-attestation", {"attestation": attestation})

    def ability_left() -> int:
        source = agent.ability_to_pay
        return source.remaining() if isinstance(source, CredentialWallet) else 0

    async def pseudonym_with(party: str) -> str:
        pseudonym = await agent.pseudonyms.known(party)
        assert pseudonym is not None
        return pseudonym.identifier

    async def servicing() -> str:
        dealer = state["dealer"]
        seq = await _max_seq(store)
        await _driver(
            http,
            dealer,
            "/service-notice",
            {
                "peer": await pseudonym_with(dealer),
                "kind": "maintenance-reminder",
                "category": "maintenance",
                "summary": "Annual service due; manufacturer tyre under-inflation warning",
                "proposals": [
                    {"code": "scheduled-maintenance", "description": "Annual service"},
                    {
                        "code": "tyre-replacement",
                        "description": "Replace all four tyres",
                        "price": {"amount": "480", "currency": "GBP"},
                        "reason": "manufacturer under-inflation warning",
                    },
                ],
            },
        )
        notice = await agent.wait_for(
            after(seq, MessageType.SERVICE_NOTICE, dealer), within=REPLY_TIMEOUT_SECONDS
        )
        proposed = [p.code for p in _model(notice, ServiceNoticeMessage).body.proposals or ()]
        _expect(
            "tyre-replacement" in proposed,
            f"the dealer's notice proposes the tyre replacement (proposals: {proposed})",
        )
        # Seed 000 step 6: the service is booked before the notice is answered.
        appointment, confirmation = await book_service(
            agent,
            dealer,
            await pseudonym_with(dealer),
            notice.message_id,
            lambda path, body: _driver(http, dealer, path, body),
            within=REPLY_TIMEOUT_SECONDS,
        )
        answered = await agent.owning.answer_service_notice(notice.message_id)
        response = answered.model.body
        decision = getattr(response, "decision", None)
        _expect(decision == "accept-in-part", "the scheduled service only is accepted")
        record = await record_service(
            agent,
            dealer,
            await pseudonym_with(dealer),
            answered.message.message_id,
            confirmation,
            lambda path, body: _driver(http, dealer, path, body),
            within=REPLY_TIMEOUT_SECONDS,
        )
        return (
            f"{appointment}; maintenance notice answered {decision}: accepted "
            f"{list(getattr(response, 'accepted', None) or [])}, declined "
            f"{[d.item for d in getattr(response, 'declined', None) or []]}; {record}"
        )

    async def development() -> str:
        # Seed 000 step 7: she asks to join Road Warrior herself (spec §6.72), a
        # programme its discovery document lists; nothing is pushed to her.
        joined = await join_programme(
            agent,
            audio,
            "road-warrior",
            ("safety", "technical", "new-products"),
            within=REPLY_TIMEOUT_SECONDS,
        )
        # Her travel dates go by an access grant, not as a copy (spec §6.18): the
        # programme reads them from her agent while the grant is in force.
        _, grant = await agent.grants.grant(
            audio,
            items=(TRAVEL_DATES,),
            purposes=("programme-membership",),
            until=agent.clock.now() + timedelta(days=GRANT_DAYS),
        )
        first = await _read_grant(http, audio, grant.grant_id)
        # The trip moves a day: nothing is pushed; the programme's next read sees it.
        profile = await store.profile()
        moved = MOVED_TRIP
        await store.set_profile(TRAVEL_DATES, moved)
        second = await _read_grant(http, audio, grant.grant_id)
        _expect(
            _granted_value(first) == profile.get(TRAVEL_DATES) and _granted_value(second) == moved,
            "each read answers her travel dates as her store holds them then",
        )
        await agent.grants.revoke(grant.grant_id, reason="The trips are booked; no more reads.")
        refused = await _read_grant(http, audio, grant.grant_id, expect_ok=False)
        _expect(
            refused.get("code") == "grant-revoked",
            f"Road Warrior's read after her revocation is refused (got {refused})",
        )
        reads = await store.grant_reads(grant.grant_id)
        # Seed 004: the manufacturer, its own agent, within the notices she chose.
        manufacturer = journey.vendors[MANUFACTURER_CATALOGUE].url
        retention = await register_and_run_touchpoints(
            agent,
            manufacturer,
            lambda path, body: _driver(http, manufacturer, path, body),
            within=REPLY_TIMEOUT_SECONDS,
        )
        _expect(
            bool(retention.sent) and bool(retention.refused),
            "touchpoints within her choices sent, one outside them not sent",
        )
        journey.notes["touchpoints"] = retention.lines()
        journey.notes.setdefault("grant-refusals", []).append(
            f"after her revocation, {names[audio]} refused itself the next read under grant "
            f"`{grant.grant_id}` ({refused.get('code')}): nothing reached her agent"
        )
        return (
            f"{joined}; travel dates by "
            f"grant, read {sum(r.outcome == 'answered' for r in reads)}x over HTTP with a "
            "proof of its key (the moved trip seen on the 2nd read), revoked; next read "
            f"refused ({refused.get('code')}); {retention.summary()}"
        )

    async def problems() -> str:
        dealer = state["dealer"]
        seq = await _max_seq(store)
        deal = (await store.history(peer=dealer, type=MessageType.DEAL_CONFIRMATION))[-1]
        await agent.owning.support_request(
            dealer,
            subject="Sound system restarts",
            description="The sound system restarts every few minutes while driving.",
            regarding=deal.message_id,
        )
        resolution = _model(
            await agent.wait_for(
                after(seq, MessageType.SUPPORT_RESOLUTION, dealer), within=REPLY_TIMEOUT_SECONDS
            ),
            SupportResolutionMessage,
        )
        said = textwrap.shorten(resolution.body.resolution, 70, placeholder="…")
        escalated = await _escalated_problem(agent, dealer, deal, journey.out, names)
        # Seed 003, "my suppliers follow me": she moves house (spec §6.73).
        moved = await move_house(
            agent,
            {
                "contact.postal-address": "7 Harbour Row, Falmouth TR11 3XX",
                "contact.phone": "+44 7700 900123",
            },
            names,
            within=REPLY_TIMEOUT_SECONDS,
        )
        return f"support request answered: {resolution.body.status} ({said}); {escalated}; {moved}"

    async def exit_step() -> str:
        dealer = state["dealer"]
        seq = await _max_seq(store)
        notice = await agent.owning.exit(
            dealer,
            reason="circumstances-changed",
            explanation="Moving abroad; please export and delete what you hold.",
            reengagement={
                "allowed": True,
                "topics": ["safety", "recall"],
                "channel": "intentcast-only",
            },
        )
        await agent.wait_for(
            after(seq, MessageType.EXIT_ACKNOWLEDGEMENT, dealer), within=REPLY_TIMEOUT_SECONDS
        )
        record = next(
            e for e in await store.exits(dealer) if e.notice_id == notice.message.message_id
        )
        shared = sorted({r.category for r in await store.shared_with(dealer)})
        _expect(
            record.receipt_verified is True,
            f"the deletion receipt covers everything shared: {list(record.problems)}",
        )
        # Seed 003 step 9: the online dealer leaves the market, with her export.
        online_exit = await vendor_leaves(
            agent,
            online,
            lambda path, body: _driver(http, online, path, body),
            within=REPLY_TIMEOUT_SECONDS,
        )
        _expect(online_exit.verified, f"the leaving dealer's exit: {online_exit.problems}")
        return (
            f"exit acknowledged with export; deletion receipt verified against the "
            f"{len(shared)} categories shared ({', '.join(shared)}); "
            f"{online_exit.summary(names[online])}"
        )

    async def reengage() -> str:
        dealer = state["dealer"]
        seq = await _max_seq(store)
        rfi = await agent.buying.reengage(dealer, reengagement_rfi_body(agent.clock.now()))
        offer = _model(
            await agent.wait_for(
                after(seq, MessageType.OFFER, dealer), within=REPLY_TIMEOUT_SECONDS
            ),
            OfferMessage,
        )
        history = getattr(rfi.model.body, "history", None) or ()
        evidence = getattr(rfi.model.body, "evidence", None) or ()
        deal = (await store.history(peer=dealer, type=MessageType.DEAL_CONFIRMATION))[-1]
        deal_id = _model(deal, DealConfirmationMessage).body.deal.id
        # Seed 003 step 10: the dealer deleted its copy; it verified hers and uses it.
        _expect(
            any(deal_id in c.description for c in offer.body.conditions or ()),
            f"the dealer's new offer names the earlier deal {deal_id} from her evidence",
        )
        return (
            f"new RFI carrying {len(history)} messages of kept history and {len(evidence)} "
            f"signed messages as evidence; the dealer, its copy deleted, verified them and "
            f"offers again naming the earlier deal {deal_id}"
        )

    plan: list[tuple[LifecycleStep, str, Callable[[], Awaitable[str]]]] = [
        (LifecycleStep.SEARCH, "Search", search),
        (LifecycleStep.ENGAGE, "Engage", engage),
        (LifecycleStep.NEGOTIATE, "Negotiate", negotiate),
        (LifecycleStep.TRANSACT, "Transact", transact),
        (LifecycleStep.WELCOME, "Welcome", welcome),
        (LifecycleStep.SERVICING, "Relationship servicing", servicing),
        (LifecycleStep.DEVELOPMENT, "Relationship development", development),
        (LifecycleStep.PROBLEMS, "Manage problems", problems),
        (LifecycleStep.EXIT, "Manage exits", exit_step),
        (LifecycleStep.REENGAGEMENT, "Re-engagement", reengage),
    ]
    for number, (step, title, action) in enumerate(plan, start=1):
        await _step(journey, store, number, step, title, action)


async def _escalated_problem(
    agent: BuyerAgent, dealer: str, deal: Entry, out: Path, names: Mapping[str, str]
) -> str:
    """Step 8, seeds 002/003: a problem the first answer does not settle goes to the
    dealer's customer relations with a deadline and its history (spec §6.32); once
    it is resolved, the thread is written as an evidence bundle and verified offline."""
    seq = await _max_seq(agent.store)
    request = await agent.owning.support_request(
        dealer,
        subject="Hybrid system warning",
        description="The hybrid system warning light comes on after every cold start.",
        severity="high",
        regarding=deal.message_id,
    )
    first = _model(
        await agent.wait_for(
            lambda m: m.seq > seq and m.type is MessageType.SUPPORT_RESOLUTION and m.peer == dealer,
            within=REPLY_TIMEOUT_SECONDS,
        ),
        SupportResolutionMessage,
    )
    _expect(first.body.status == "in-progress", "the dealer's first answer settles nothing")
    seq = await _max_seq(agent.store)
    await conversation.escalate(
        agent,
        request.message.message_id,
        level="customer-relations",
        name=f"{names[dealer]} customer relations",
        reason="The workshop could not say when the fault will be diagnosed.",
    )

    def settled(entry: Entry) -> bool:
        if entry.seq <= seq or entry.type is not MessageType.SUPPORT_RESOLUTION:
            return False
        message = entry.model()
        return isinstance(message, SupportResolutionMessage) and message.body.status == "resolved"

    await agent.wait_for(settled, within=REPLY_TIMEOUT_SECONDS)
    statuses = [
        _model(entry, SupportResolutionMessage).body.status
        for entry in await agent.store.history(
            peer=dealer, type=MessageType.SUPPORT_RESOLUTION, after=seq
        )
    ]
    bundle = await evidence.evidence_bundle(agent, request.message.thread)
    path = out / "evidence-bundle.json"
    evidence.write_bundle(bundle, path)
    report = verify_bundle(json.loads(path.read_bytes()))
    return (
        f"a second problem, answered {first.body.status}, escalated to customer relations "
        f"({' then '.join(statuses)}); evidence bundle {out.name}/{path.name}: "
        f"{report.count} messages verified offline, sealed by her pseudonym"
    )


async def _answer_questions(
    agent: BuyerAgent, dealers: list[str], seq: int, names: Mapping[str, str]
) -> str:
    """Step 2 (spec §6.30): a dealer that sells her model in several trims asks which
    she means; her agent answers with her standing answer (her policy). The
    question comes with the offer, so it is here once the offer is."""
    said = []
    for dealer in dealers:
        questions = [
            entry
            for entry in await agent.store.history(peer=dealer, type=MessageType.QUESTION)
            if entry.seq > seq and entry.direction is Direction.RECEIVED
        ]
        for question in questions:
            await conversation.answer(agent, question.message_id)
            text = _model(question, QuestionMessage).body.text
            said.append(
                f'{names[dealer]} asked "{textwrap.shorten(text, 48, placeholder="…")}": '
                "she answered with her standing answer"
            )
    return "; " + "; ".join(said) if said else ""


def paper_offer(agent: BuyerAgent, letter_id: str) -> dict[str, Any]:
    """The offer Hampstead Motors sent by post, as Sally types it in."""
    now = agent.clock.now()
    total = "30450"
    return {
        "basis": "binding",
        "validUntil": format_timestamp(now + timedelta(days=14)),
        "items": [
            {
                "sku": "PRIUS-2026",
                "description": "Toyota Prius hybrid (from our letter)",
                "quantity": 1,
                "unitPrice": {"amount": total, "currency": "GBP"},
            }
        ],
        "price": {
            "subtotal": {"amount": total, "currency": "GBP"},
            "total": {"amount": total, "currency": "GBP"},
        },
        "terms": {
            "id": "hampstead-motors-conditions-of-sale",
            "version": "2019",
            "url": "https://hampstead-motors.example/conditions",
            "digest": "sha-256:" + "B" * 43,
        },
        # Seed 001: this dealer wants the old car (and its papers) before it
        # delivers the new one; her agent flags it and never accepts it by policy.
        "tradeIn": {
            "item": {"description": "2019 Toyota Auris hybrid", "make": "Toyota", "model": "Auris"},
            "valuation": {"amount": "9000", "currency": "GBP"},
            "handover": "before-delivery",
            "papersHandover": "before-delivery",
        },
    }


# -- transcript ----------------------------------------------------------------------------------


def _payload_model(token: bytes) -> Message:
    """A token she stored (her own evidence), read back as its model."""
    return parse_message_dict(orjson.loads(b64url_decode(token.split(b".")[1])))


async def _keys(store: BuyerStore, party: str) -> KeySet | None:
    known = await store.counterparty(party)
    return KeySet.from_jwks(known.jwks) if known is not None else None


async def _verify(entry: Entry, store: BuyerStore) -> tuple[bool | None, str]:
    """Re-verify a stored message's signature for the transcript (``None``: nothing signed)."""
    if entry.token is None:
        return None, "unsigned (typed in from paper)"
    message = entry.model()
    if entry.direction is Direction.SENT:
        resolver = key_resolver(None)
        receiver = entry.peer
    else:
        resolver = key_resolver(await _keys(store, entry.peer))
        receiver = message.to[0]
    try:
        decode(
            entry.token,
            resolve_key=resolver,
            receiver=receiver,
            now=parse_timestamp(message.created),
        )
    except ProtocolError as error:
        return False, f"NOT verified: {error.code.value}"
    return True, "verified"


async def _receipt_ok(entry: Entry, store: BuyerStore) -> bool | None:
    """Verify the receipt of a message: the counterparty's for what she sent, hers
    for what she received (``None``: a letter or a paper answer has none)."""
    if entry.channel in (Channel.LETTER, Channel.PAPER):
        return None
    if entry.receipt is None:
        return False
    if entry.direction is Direction.SENT:
        resolver = key_resolver(await _keys(store, entry.peer))
    else:
        resolver = key_resolver(None)  # she signed it, as her did:jwk pseudonym
    try:
        created = _payload_model(entry.receipt).created
        receipt = decode(
            entry.receipt,
            resolve_key=resolver,
            receiver=entry.sender,
            now=parse_timestamp(created),
        )
    except (ProtocolError, IndexError, ValueError):
        return False
    message = receipt.message
    return isinstance(message, ReceiptMessage) and (
        message.body.regarding.id == entry.message_id
        and message.body.regarding.digest == entry.digest
    )


async def write_transcript(journey: Journey, store: BuyerStore) -> tuple[bool, dict[str, Any]]:
    """Write ``transcript.md`` and ``transcript.json``; say whether every check passed."""
    names: Mapping[str, str] = journey.notes.get("names", {})
    step_of: dict[int, StepResult] = {}
    for step in journey.steps:
        for seq in range(step.first_seq, step.last_seq + 1):
            step_of[seq] = step
    entries: list[dict[str, Any]] = []
    all_verified = True
    for entry in await store.history():
        verified, how = await _verify(entry, store)
        receipt = await _receipt_ok(entry, store)
        if verified is False or receipt is False:
            all_verified = False
        counterparty = names.get(entry.peer, entry.peer)
        sent = entry.direction is Direction.SENT
        in_step = step_of.get(entry.seq)
        model = entry.model() if entry.paper is None else None
        body = entry.paper if entry.paper is not None else getattr(model, "body", None)
        entries.append(
            {
                "seq": entry.seq,
                "step": str(in_step.step) if in_step else None,
                "direction": "out" if sent else "in",
                "channel": entry.channel,
                "type": entry.type.value,
                "id": entry.message_id,
                "sender": entry.sender,
                "senderName": "Sally" if sent else counterparty,
                "recipient": counterparty if sent else "Sally",
                "status": entry.status,
                "verified": verified,
                "verification": how,
                "receiptVerified": receipt,
                # The signed receipt: the one she got (sent) or gave (received).
                "receiptDigest": message_digest(entry.receipt) if entry.receipt else None,
                "digest": entry.digest,
                "body": to_payload(body) if body is not None else None,
                "gist": story.gist(entry.type, model, entry.paper),
            }
        )
    exits = [
        {"counterparty": e.peer, "verified": e.receipt_verified, "problems": list(e.problems)}
        for e in await store.exits()
    ]
    # Reads under her grants are no messages: her store logs each (spec §11.9).
    granted_reads = [
        {
            "grant": grant.grant_id,
            "grantee": names.get(grant.peer, grant.peer),
            "items": list(grant.items),
            "at": read.at,
            "outcome": read.outcome,
        }
        for grant in await store.access_grants()
        for read in await store.grant_reads(grant.grant_id)
    ]
    ok = (
        all_verified
        and len(journey.steps) == 10
        and all(step.ok for step in journey.steps)
        and all(e["verified"] for e in exits)
    )
    document = {
        "ok": ok,
        "steps": [
            {
                "number": s.number,
                "step": str(s.step),
                "title": s.title,
                "ok": s.ok,
                "summary": s.summary,
                "error": s.error,
            }
            for s in journey.steps
        ],
        "exits": exits,
        "grantedReads": granted_reads,
        "touchpoints": journey.notes.get("touchpoints", []),
        "notes": ([journey.notes["approval"]] if journey.notes.get("approval") else [])
        + list(journey.notes.get("flagged", [])),
        "messages": entries,
    }
    (journey.out / "transcript.json").write_text(json.dumps(document, indent=2, ensure_ascii=False))
    lines = [
        "# Sally buys a car: transcript",
        "",
        f"Outcome: {'every step succeeded and every signature verified' if ok else 'FAILED'}.",
        "",
        *story.story_lines(
            entries,
            {str(s.step): f"{s.number}. {s.title}" for s in journey.steps},
            journey.notes.get("story", {}),
        ),
        "## The steps",
        "",
        "| # | step | outcome |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {s.number} | {s.title} | {'ok' if s.ok else 'FAILED'}: {s.summary or s.error} |"
        for s in journey.steps
    ]
    notes = [f"- Flagged offer: {note}" for note in journey.notes.get("flagged", [])]
    if journey.notes.get("approval"):
        notes.insert(0, f"- Co-decision-maker: {journey.notes['approval']}")
    if notes:
        lines += ["", "## Notes", "", *notes]
    if granted_reads:
        lines += ["", "## Reads under her access grants", ""]
        lines += [
            f"- {read['at']}: {read['grantee']} read {', '.join(read['items'])} "
            f"under grant `{read['grant']}`: {read['outcome']}"
            for read in granted_reads
        ]
        lines += [f"- {refusal}" for refusal in journey.notes.get("grant-refusals", ())]
    if journey.notes.get("touchpoints"):
        # Seed 004: every touchpoint, sent or not (what was not sent has no message).
        lines += ["", "## The manufacturer's touchpoints", ""]
        lines += [f"- {line}" for line in journey.notes["touchpoints"]]
    lines.append("")
    lines += ["", "## The messages", ""]
    current = None
    for item in entries:
        if item["step"] != current:
            current = item["step"]
            lines += [f"### {current or 'before the steps'}", ""]
        receipt_note = {True: ", receipt verified", False: ", RECEIPT NOT VERIFIED", None: ""}[
            item["receiptVerified"]
        ]
        lines += [
            f"#### {item['seq']}. {item['type']}: {item['senderName']} → {item['recipient']}",
            "",
            f"- direction: {item['direction']} ({item['channel']})",
            f"- sender: `{item['sender']}`",
            f"- verified: {'yes' if item['verified'] else 'no'} ({item['verification']}"
            f"{receipt_note})",
            f"- digest: `{item['digest'] or '-'}`",
            f"- receipt: `{item['receiptDigest'] or '-'}`",
            "",
            "```json",
            json.dumps(item["body"], indent=2, ensure_ascii=False),
            "```",
            "",
        ]
    (journey.out / "transcript.md").write_text("\n".join(lines), "utf-8")
    return ok, document


# -- entry points --------------------------------------------------------------------------------


async def run_demo(out: Path, console: Console, *, keep: bool = False) -> bool:
    """Run the whole journey in ``out``; True when everything succeeded and verified.

    Raises:
        DemoFailed: the vendor agents could not be started.
    """
    journey = Journey(out, console)
    # Ctrl-C or SIGTERM cancels the run, so that every `finally` below runs and
    # the vendor processes (in sessions of their own) are always stopped.
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, main.cancel)
    issuer_key, trust_file = _credit_union(out)
    catalogues = [
        "dealer-mayfair",
        "dealer-online",
        "road-warrior",
        MANUFACTURER_CATALOGUE,
        HUSBAND,
    ]
    async with running_vendors(catalogues, out, trust_file, journey):
        console.print(
            "Vendor agents and her husband's: "
            + ", ".join(f"{name} at {v.url}" for name, v in journey.vendors.items())
            + (f"; directory at {journey.directory.url}" if journey.directory else ""),
            highlight=False,
        )
        return await _run_buyer(journey, issuer_key, keep=keep)


async def _run_buyer(journey: Journey, issuer_key: SigningKey, *, keep: bool) -> bool:
    clock = AgentClock()

    # The credit union issues, once and in advance, a batch of single-use SD-JWT
    # credentials stating a range, never the amount (seed 000 step 2, spec §10.5):
    # it never learns which dealers she asks, and no two dealers see one credential.
    (journey.out / "buyer").mkdir(parents=True, exist_ok=True)
    ability_to_pay = CredentialWallet(
        journey.out / "buyer" / WALLET_FILE, CREDIT_UNION_ID, clock=clock
    )
    ability_to_pay.add(
        issue_batch(
            issuer_key=issuer_key,
            issuer_id=CREDIT_UNION_ID,
            range_={
                "min": {"amount": "20000", "currency": "GBP"},
                "max": {"amount": "30000", "currency": "GBP"},
            },
            purpose="new car loan",
            now=clock.now(),
            count=CREDENTIAL_BATCH,
        )
    )

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # The demo runs every agent on loopback (D6: allow-listed), and sends its
    # copies without pauses (decorrelated by `created` still).
    config = BuyerConfig(
        data_dir=journey.out / "buyer",
        public_url=base,
        allow_delivery_to=LOOPBACK,
        decorrelation=Decorrelation(spread_seconds=0.0),
        letters_dir=journey.out / "letters",
        terms_registries={TERMS_REGISTRY_ID: KeySet([journey.registry_key.public()])},
    )
    agent = await BuyerAgent.open(config, load_policy(), clock=clock, ability_to_pay=ability_to_pay)
    try:
        for category, value in sally_profile().items():
            await agent.store.set_profile(category, value)
        running = await serve_agent(agent, sock)
        journey.console.print(f"Sally's buyer agent: {base}", highlight=False)
        timeout = aiohttp.ClientTimeout(total=20)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                with contextlib.suppress(DemoFailed):
                    await _journey(journey, agent, http)
            ok, _ = await write_transcript(journey, agent.store)
            if keep:
                journey.console.print("Agents keep running (--keep); Ctrl-C stops them.")
                # Her dashboard on her store as the journey left it (loopback only).
                opened, board = await serve_dashboard(agent, listen_dashboard("127.0.0.1", 0))
                try:
                    journey.console.print(f"Sally's dashboard: {opened.open_url}", highlight=False)
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.Event().wait()
                finally:
                    await board.close()
                # The cancellation ended the wait as asked: the run's outcome stands.
                main = asyncio.current_task()
                if main is not None:
                    main.uncancel()
        finally:
            await running.close()
    finally:
        await agent.close()
    return ok


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/demo"),
    show_default=True,
    help="Where the agents' stores, the letters and the transcript go.",
)
@click.option(
    "--keep", is_flag=True, help="Leave the agents running after the journey, until Ctrl-C."
)
def demo(out: Path, keep: bool) -> None:
    """Run Sally's car-buying journey end to end between real agents."""
    # soft_wrap: one line per step even when the output is a file or a pipe.
    console = Console(highlight=False, soft_wrap=True)
    if out.exists() and any(out.iterdir()):
        # A fresh run each time (the stores are the run's evidence), but never
        # at the cost of a directory that is not an earlier run's output.
        if not (out / "transcript.json").exists() and not (out / "buyer").is_dir():
            raise click.UsageError(f"{out} is not empty and holds no earlier demo run")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        ok = asyncio.run(run_demo(out, console, keep=keep))
    except DemoFailed as error:
        console.print(f"[red]demo failed:[/] {escape(str(error))}")
        sys.exit(1)
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("interrupted; agents stopped")
        sys.exit(130)
    elapsed = time.monotonic() - started
    where = out / "transcript.md"
    if ok:
        console.print(
            f"[green]All ten steps done, every signature verified[/] "
            f"({elapsed:.1f} s). Transcript: {where}"
        )
    else:
        console.print(f"[red]The journey did not complete.[/] Transcript: {where}")
        sys.exit(1)
