"""Shared scenarios: lifecycle runs that several checks judge.

Each scenario runs at most once per run (see :class:`conformance.context.Fixture`)
and in its own transcript scope. Against a vendor the suite drives every
step itself; against a buyer it prompts the buyer — through the test driver
when the buyer lists one, otherwise through the operator — and then plays
the vendors' side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.context import Session, fixture
from conformance.model import CheckFailed, Expectation
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.messages import message_ref
from conformance.peers.posting import Sent
from conformance.peers.vendors import SuiteVendor, vendor_side
from conformance.target import call_driver

__all__ = [
    "BuyerRelationships",
    "VendorThread",
    "acceptable_offer",
    "await_terms",
    "buyer_rfi_to_one_vendor",
    "buyer_rfis",
    "disclosed_categories",
    "fresh_relationships",
    "instructions",
    "prompt_buyer",
    "record_instruction",
    "reply_inbox",
    "run_deal",
    "run_welcome",
    "vendor_deal",
    "vendor_exit",
    "vendor_negotiation",
    "vendor_rfi",
    "vendor_welcome",
]

# -- against a vendor: the suite is the buyer --------------------------------------------------


@dataclass(slots=True)
class VendorThread:
    """One relationship the suite ran with the vendor under test, step by step."""

    persona: Persona
    rfi: Sent
    offers: list[Inbound] = field(default_factory=list)
    rfp: Sent | None = None
    counter: Sent | None = None
    acceptance: Sent | None = None
    accepted_offer: Inbound | None = None
    deal: Inbound | None = None
    terms: Inbound | None = None
    terms_response: Sent | None = None
    shared_categories: list[str] = field(default_factory=list)
    refused_categories: list[str] = field(default_factory=list)
    exit_notice: Sent | None = None
    exit_ack: Inbound | None = None

    @property
    def thread(self) -> str:
        """The thread id: the RFI's id."""
        return str(self.rfi.payload["id"])


def _require(condition: bool, description: str, **details: Any) -> None:
    if not condition:
        raise CheckFailed(Expectation(description, False, **details))


async def _send_accepted(persona: Persona, payload: dict[str, Any], what: str) -> Sent:
    reply = await persona.send(payload, note=what)
    _require(
        reply.status == 202,
        f"the vendor accepts {what}",
        expected="202",
        actual=reply.describe(),
    )
    return persona.sent[-1]


def _offer_in_thread(thread: str, *, after: set[str] | None = None) -> Any:
    seen = after or set()

    def predicate(item: Inbound) -> bool:
        return item.type == "offer" and item.field("thread") == thread and item.id not in seen

    return predicate


@fixture("vendor-rfi")
async def vendor_rfi(session: Session) -> VendorThread:
    """A fresh persona sends a personal RFI; the vendor answers with an offer."""
    side = await buyer_side(session)
    persona = side.new_persona()
    now = session.clock.now()
    rfi = await _send_accepted(
        persona, persona.compose("personal-rfi", bodies.personal_rfi_body(now)), "a personal RFI"
    )
    thread = VendorThread(persona, rfi)
    offer = await persona.expect(
        _offer_in_thread(thread.thread),
        description="the vendor answers the personal RFI with an offer",
        requirement="VRM-MSG-002",
    )
    thread.offers.append(offer)
    return thread


@fixture("vendor-negotiation")
async def vendor_negotiation(session: Session) -> VendorThread:
    """RFI, then an RFP in the same thread, then a counter-offer to the vendor's offer."""
    side = await buyer_side(session)
    persona = side.new_persona()
    now = session.clock.now()
    rfi = await _send_accepted(
        persona, persona.compose("personal-rfi", bodies.personal_rfi_body(now)), "a personal RFI"
    )
    thread = VendorThread(persona, rfi)
    first = await persona.expect(
        _offer_in_thread(thread.thread), description="the vendor answers the RFI with an offer"
    )
    thread.offers.append(first)
    rfp_payload = persona.compose(
        "personal-rfp",
        bodies.personal_rfp_body(session.clock.now(), trade_in=True),
        thread=thread.thread,
        parent=thread.thread,
    )
    thread.rfp = await _send_accepted(persona, rfp_payload, "a personal RFP after the RFI")
    answer = await persona.expect(
        _offer_in_thread(thread.thread, after={str(first.id)}),
        description="the vendor answers the personal RFP with an offer",
        requirement="VRM-MSG-004",
    )
    thread.offers.append(answer)
    lower = _lower_total(answer.body)
    counter_payload = persona.compose(
        "offer",
        bodies.counter_offer_body(answer.body, answer.ref(), now=session.clock.now(), total=lower),
        thread=thread.thread,
        parent=str(answer.id),
    )
    thread.counter = await _send_accepted(persona, counter_payload, "a counter-offer")
    return thread


def _lower_total(offer_body: dict[str, Any]) -> str:
    """Five per cent below the offer's total, as a decimal string."""
    try:
        amount = float(offer_body["price"]["total"]["amount"])
    except (KeyError, TypeError, ValueError):
        amount = 28500.0
    return f"{int(amount * 0.95)}"


#: Data categories an acceptance's ``identity`` discloses (spec §6.4): the vendor
#: holds these from the deal on, under the transaction, not under the terms of sharing.
IDENTITY_CATEGORIES = {
    "name": "identity.name",
    "email": "contact.email",
    "phone": "contact.phone",
    "address": "contact.postal-address",
}


def disclosed_categories(acceptance: Sent | None) -> list[str]:
    """Data categories the buyer disclosed in its acceptance's ``identity``."""
    if acceptance is None:
        return []
    identity = acceptance.payload.get("body", {}).get("identity") or {}
    return sorted(category for name, category in IDENTITY_CATEGORIES.items() if name in identity)


async def acceptable_offer(persona: Persona, thread: VendorThread, offer: Inbound) -> Inbound:
    """A binding offer in the thread: ``offer`` itself, or the answer to an RFP.

    Only a binding offer may be accepted (spec §7): when the vendor answered
    the RFI indicatively, the persona follows up with a personal RFP, which
    the vendor answers with a binding offer (VRM-MSG-004).

    Raises:
        CheckFailed: the vendor refused the RFP or did not answer it.
    """
    if offer.body.get("basis") != "indicative":
        return offer
    rfp = persona.compose(
        "personal-rfp",
        bodies.personal_rfp_body(persona.now()),
        thread=thread.thread,
        parent=str(offer.id),
    )
    await _send_accepted(persona, rfp, "a personal RFP after an indicative offer")
    binding = await persona.expect(
        lambda item: item.type == "offer" and item.field("parent") == rfp["id"],
        description="the vendor answers the personal RFP with an offer",
        requirement="VRM-MSG-004",
    )
    thread.offers.append(binding)
    return binding


async def run_deal(session: Session) -> VendorThread:
    """A fresh relationship: RFI, offer, acceptance of exactly that offer, deal confirmation.

    Raises:
        CheckFailed: the vendor refused a step or did not answer.
    """
    side = await buyer_side(session)
    persona = side.new_persona()
    now = session.clock.now()
    rfi = await _send_accepted(
        persona, persona.compose("personal-rfi", bodies.personal_rfi_body(now)), "a personal RFI"
    )
    thread = VendorThread(persona, rfi)
    first = await persona.expect(
        _offer_in_thread(thread.thread), description="the vendor answers the RFI with an offer"
    )
    thread.offers.append(first)
    offer = await acceptable_offer(persona, thread, first)
    acceptance = persona.compose(
        "offer-acceptance",
        bodies.offer_acceptance_body(message_ref(offer.token, str(offer.id))),
        thread=thread.thread,
        parent=str(offer.id),
    )
    thread.acceptance = await _send_accepted(persona, acceptance, "the acceptance of its offer")
    thread.accepted_offer = offer
    thread.deal = await persona.expect(
        lambda item: item.type == "deal-confirmation" and item.field("thread") == thread.thread,
        description="the vendor confirms the deal",
        requirement="VRM-MSG-014",
    )
    return thread


@fixture("vendor-deal")
async def vendor_deal(session: Session) -> VendorThread:
    """RFI, offer, acceptance of exactly that offer, deal confirmation."""
    return await run_deal(session)


async def await_terms(thread: VendorThread) -> Inbound:
    """The vendor's terms assertion in a relationship that reached a deal.

    Raises:
        CheckFailed: none arrived in time.
    """
    if thread.terms is None:
        thread.terms = await thread.persona.expect(
            lambda item: item.type == "terms-assertion",
            description="the vendor presents its terms of sharing after the deal",
            requirement="VRM-VEN-001",
        )
    return thread.terms


async def run_welcome(
    session: Session,
    thread: VendorThread,
    *,
    notifications: Sequence[str] = ("safety", "recall", "maintenance"),
) -> VendorThread:
    """After the deal: answer the vendor's terms of sharing in part, with data.

    Raises:
        CheckFailed: the vendor sent no terms, asked for nothing, or refused the answer.
    """
    persona = thread.persona
    terms = await await_terms(thread)
    requests = [r for r in terms.body.get("requests", []) if isinstance(r, dict)]
    _require(bool(requests), "the terms assertion asks for at least one data category")
    # Accept every request but the last (when there are two or more): the
    # vendor must then hold only what was accepted.
    accepted = requests[:-1] if len(requests) > 1 else requests
    refused = requests[-1:] if len(requests) > 1 else []
    thread.shared_categories = [str(r["item"]) for r in accepted]
    thread.refused_categories = [str(r["item"]) for r in refused]
    response = persona.compose(
        "terms-response",
        bodies.terms_response_body(
            message_ref(terms.token, str(terms.id)),
            accepted=[
                {"item": r["item"], "purposes": r["purposes"], "retention": r["retention"]}
                for r in accepted
            ],
            refused=thread.refused_categories,
            data=[{"item": r["item"], "value": _sample_value(str(r["item"]))} for r in accepted],
            notifications=notifications,
        ),
        thread=str(terms.field("thread") or terms.id),
        parent=str(terms.id),
    )
    thread.terms_response = await _send_accepted(persona, response, "the terms response")
    return thread


@fixture("vendor-welcome")
async def vendor_welcome(session: Session) -> VendorThread:
    """After the deal: the vendor's terms of sharing, answered in part with data."""
    return await run_welcome(session, await session.use(vendor_deal))


def _sample_value(category: str) -> str:
    # terms-response data values are strings (spec §6.8): structured data is
    # the sender's to serialise, never an open object the schema cannot close.
    samples: dict[str, str] = {
        "identity.name": "Sally Example",
        "contact.email": "sally@example.org",
        "contact.phone": "+44 20 7946 0000",
        "contact.postal-address": "1 Example Street, London SW1A 1AA, GB",
        "vehicle.vin": "JTDKB20U093000000",
        "vehicle.model": "Toyota Prius",
    }
    return samples.get(category, f"conformance sample for {category}")


@fixture("vendor-exit")
async def vendor_exit(session: Session) -> VendorThread:
    """After the welcome: the individual exits, asking for export and deletion.

    The exit gets a relationship of its own, welcomed just before: checks that
    run earlier move the target's clock (retention), and data that retention
    already swept could not show whether the exit deleted it.
    """
    thread = await run_welcome(session, await run_deal(session))
    persona = thread.persona
    notice = persona.compose(
        "exit-notice",
        # Re-engagement allowed for safety notices only: the individual may
        # still come back (VEN-REENGAGE-BY-INDIVIDUAL) under any reading of §7.5.
        bodies.exit_notice_body(
            session.clock.now(), reengagement_allowed=True, topics=("safety", "recall")
        ),
        thread=thread.thread,
    )
    thread.exit_notice = await _send_accepted(persona, notice, "the exit notice")
    thread.exit_ack = await persona.expect(
        lambda item: item.type == "exit-acknowledgement",
        description="the vendor acknowledges the exit",
        requirement="VRM-MSG-024",
    )
    return thread


# -- against a buyer: the suite plays the vendors ----------------------------------------------


def record_instruction(session: Session, action: str, payload: dict[str, Any]) -> None:
    """Remember that the suite told the buyer to act (for VRM-BUY-001's audit)."""
    given = session.services.setdefault("buyer-instructions", [])
    given.append({"action": action, **payload})


def instructions(session: Session) -> list[dict[str, Any]]:
    """Every instruction the suite gave the buyer in this run, in order."""
    given = session.services.get("buyer-instructions")
    return list(given) if isinstance(given, list) else []


async def prompt_buyer(
    session: Session, action: str, payload: dict[str, Any], *, instruction: str
) -> Any:
    """Make the buyer act: through its test driver, else through the operator.

    Returns the driver's answer (``None`` when the operator was asked).

    Raises:
        CheckFailed: the driver refused the instruction.
    """
    record_instruction(session, action, payload)
    if session.driver_url is not None:
        return await call_driver(session, "POST", f"/{action}", payload)
    if session.operator is not None:
        session.operator.instruct(instruction, timeout_seconds=session.options.operator_timeout)
    return None


def prompt_wait(session: Session) -> float:
    """How long to wait for a message the buyer was prompted to send."""
    if session.driver_url is not None:
        return session.options.reply_timeout
    return session.options.operator_timeout


@dataclass(slots=True)
class BuyerRelationships:
    """The buyer's RFIs to each of the suite's vendors."""

    vendors: list[SuiteVendor]
    rfis: dict[str, Inbound]

    def delivery_inbox(self, vendor: SuiteVendor) -> str | None:
        """Where this vendor delivers its messages to the buyer: the RFI's
        ``replyTo`` inbox, or ``None`` — the vendor's mailbox (spec §11.4)."""
        return reply_inbox(self.rfis[vendor.id])

    def inbox_for(self, vendor: SuiteVendor, session: Session) -> str | None:
        """Where this vendor delivers to the buyer: the RFI's replyTo, else the
        buyer's published inbox."""
        return _buyer_inbox(self.rfis[vendor.id], session)


def reply_inbox(message: Inbound) -> str | None:
    """The ``replyTo`` inbox a message names, if any."""
    reply_to = message.field("replyTo")
    if isinstance(reply_to, dict) and isinstance(reply_to.get("inbox"), str):
        return str(reply_to["inbox"])
    return None


def _buyer_inbox(rfi: Inbound, session: Session) -> str | None:
    reply_to = rfi.field("replyTo")
    if isinstance(reply_to, dict) and isinstance(reply_to.get("inbox"), str):
        return str(reply_to["inbox"])
    endpoints = (session.discovery or {}).get("endpoints") or {}
    inbox = endpoints.get("inbox") if isinstance(endpoints, dict) else None
    return inbox if isinstance(inbox, str) else None


@fixture("buyer-rfis")
async def buyer_rfis(session: Session) -> BuyerRelationships:
    """The buyer sends a personal RFI to every vendor the suite plays."""
    side = await vendor_side(session)
    urls = [vendor.id for vendor in side.vendors]
    await prompt_buyer(
        session,
        "rfi",
        {"vendors": urls},
        instruction="Make the buyer agent send a personal RFI (any car) to each of these "
        "vendors:\n" + "\n".join(f"  {url}" for url in urls),
    )
    rfis: dict[str, Inbound] = {}
    for vendor in side.vendors:
        rfis[vendor.id] = await vendor.expect(
            lambda item: item.type == "personal-rfi",
            description=f"the buyer sends a personal RFI to {vendor.id}",
            within=prompt_wait(session),
        )
    return BuyerRelationships(list(side.vendors), rfis)


async def fresh_relationships(session: Session, *names: str) -> BuyerRelationships:
    """New vendors of the suite's, each sent a personal RFI by the buyer.

    For checks that need a relationship in a known state: an acceptance
    elsewhere may have closed the older ones (a buyer declines every other
    open offer once its owner accepts one, spec §6.5).

    Raises:
        CheckFailed: the driver refused the instruction, or an RFI did not arrive.
        HarnessError: a vendor server could not start.
    """
    side = await vendor_side(session)
    vendors = [await side.add_vendor(name) for name in names]
    urls = [vendor.id for vendor in vendors]
    await prompt_buyer(
        session,
        "rfi",
        {"vendors": urls},
        instruction="Make the buyer agent send a personal RFI (any car) to each of these "
        "vendors:\n" + "\n".join(f"  {url}" for url in urls),
    )
    rfis: dict[str, Inbound] = {}
    for vendor in vendors:
        rfis[vendor.id] = await vendor.expect(
            lambda item: item.type == "personal-rfi",
            description=f"the buyer sends a personal RFI to {vendor.id}",
            within=prompt_wait(session),
        )
    return BuyerRelationships(vendors, rfis)


async def buyer_rfi_to_new_vendor(
    session: Session, name: str, *, alg: str = "EdDSA"
) -> tuple[SuiteVendor, Inbound]:
    """A vendor the suite adds now (named ``name``, signing with ``alg``) and the
    personal RFI the buyer sends it at the test driver's ``rfi`` instruction.

    Raises:
        CheckFailed: no RFI arrived in time.
    """
    side = await vendor_side(session)
    vendor = await side.add_vendor(name, alg=alg)
    await prompt_buyer(
        session,
        "rfi",
        {"vendors": [vendor.id]},
        instruction=f"Make the buyer agent send a personal RFI (any car) to {vendor.id}",
    )
    rfi = await vendor.expect(
        lambda item: item.type == "personal-rfi",
        description=f"the buyer sends a personal RFI to {vendor.id}",
        within=prompt_wait(session),
    )
    return vendor, rfi


@fixture("buyer-probe-relationship")
async def buyer_rfi_to_one_vendor(session: Session) -> tuple[SuiteVendor, Inbound, str]:
    """A relationship reserved for negative cases: the buyer's RFI to one more vendor."""
    vendor, rfi = await buyer_rfi_to_new_vendor(session, "Conformance Probe Motors")
    inbox = _buyer_inbox(rfi, session)
    _require(
        inbox is not None,
        "the buyer's RFI names a replyTo inbox, or its discovery document an inbox",
    )
    assert inbox is not None
    return vendor, rfi, inbox
