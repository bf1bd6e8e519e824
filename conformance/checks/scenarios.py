"""Shared scenarios: lifecycle runs that several checks judge.

Each scenario runs at most once per run (see :class:`conformance.context.Fixture`)
and in its own transcript scope. Against a vendor the suite drives every
step itself; against a buyer it prompts the buyer — through the test driver
when the buyer lists one, otherwise through the operator — and then plays
the vendors' side.
"""

from __future__ import annotations

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
    "buyer_rfi_to_one_vendor",
    "buyer_rfis",
    "prompt_buyer",
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
        requirement="LIFE-RFI-ANSWER",
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
        bodies.personal_rfp_body(session.clock.now()),
        thread=thread.thread,
        parent=thread.thread,
    )
    thread.rfp = await _send_accepted(persona, rfp_payload, "a personal RFP after the RFI")
    answer = await persona.expect(
        _offer_in_thread(thread.thread, after={str(first.id)}),
        description="the vendor answers the personal RFP with an offer",
        requirement="LIFE-RFP-ANSWER",
    )
    thread.offers.append(answer)
    lower = _lower_total(answer.body)
    counter_payload = persona.compose(
        "offer",
        bodies.counter_offer_body(
            answer.body, str(answer.id), now=session.clock.now(), total=lower
        ),
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


@fixture("vendor-deal")
async def vendor_deal(session: Session) -> VendorThread:
    """RFI, offer, acceptance of exactly that offer, deal confirmation."""
    side = await buyer_side(session)
    persona = side.new_persona()
    now = session.clock.now()
    rfi = await _send_accepted(
        persona, persona.compose("personal-rfi", bodies.personal_rfi_body(now)), "a personal RFI"
    )
    thread = VendorThread(persona, rfi)
    offer = await persona.expect(
        _offer_in_thread(thread.thread), description="the vendor answers the RFI with an offer"
    )
    thread.offers.append(offer)
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
        requirement="LIFE-DEAL-CONFIRM",
    )
    return thread


@fixture("vendor-welcome")
async def vendor_welcome(session: Session) -> VendorThread:
    """After the deal: the vendor's terms of sharing, answered in part with data."""
    thread = await session.use(vendor_deal)
    persona = thread.persona
    terms = await persona.expect(
        lambda item: item.type == "terms-assertion",
        description="the vendor presents its terms of sharing after the deal",
        requirement="LIFE-WELCOME-TERMS",
    )
    thread.terms = terms
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
        ),
        thread=str(terms.field("thread") or terms.id),
        parent=str(terms.id),
    )
    thread.terms_response = await _send_accepted(persona, response, "the terms response")
    return thread


def _sample_value(category: str) -> str | dict[str, Any]:
    samples: dict[str, str | dict[str, Any]] = {
        "identity.name": "Sally Example",
        "contact.email": "sally@example.org",
        "contact.phone": "+44 20 7946 0000",
        "contact.postal-address": {
            "lines": ["1 Example Street"],
            "postcode": "SW1A 1AA",
            "country": "GB",
        },
        "vehicle.vin": "JTDKB20U093000000",
        "vehicle.model": "Toyota Prius",
    }
    return samples.get(category, f"conformance sample for {category}")


@fixture("vendor-exit")
async def vendor_exit(session: Session) -> VendorThread:
    """After the welcome: the individual exits, asking for export and deletion."""
    thread = await session.use(vendor_welcome)
    persona = thread.persona
    notice = persona.compose(
        "exit-notice",
        bodies.exit_notice_body(session.clock.now()),
        thread=thread.thread,
    )
    thread.exit_notice = await _send_accepted(persona, notice, "the exit notice")
    thread.exit_ack = await persona.expect(
        lambda item: item.type == "exit-acknowledgement",
        description="the vendor acknowledges the exit",
        requirement="LIFE-EXIT-ACK",
    )
    return thread


# -- against a buyer: the suite plays the vendors ----------------------------------------------


async def prompt_buyer(
    session: Session, action: str, payload: dict[str, Any], *, instruction: str
) -> Any:
    """Make the buyer act: through its test driver, else through the operator.

    Returns the driver's answer (``None`` when the operator was asked).

    Raises:
        CheckFailed: the driver refused the instruction.
    """
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

    def inbox_for(self, vendor: SuiteVendor, session: Session) -> str | None:
        """Where this vendor delivers to the buyer: the RFI's replyTo, else the
        buyer's published inbox."""
        return _buyer_inbox(self.rfis[vendor.id], session)


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


@fixture("buyer-probe-relationship")
async def buyer_rfi_to_one_vendor(session: Session) -> tuple[SuiteVendor, Inbound, str]:
    """A relationship reserved for negative cases: the buyer's RFI to one more vendor."""
    side = await vendor_side(session)
    vendor = await side.add_vendor("Conformance Probe Motors")
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
    inbox = _buyer_inbox(rfi, session)
    _require(
        inbox is not None,
        "the buyer's RFI names a replyTo inbox, or its discovery document an inbox",
    )
    assert inbox is not None
    return vendor, rfi, inbox
