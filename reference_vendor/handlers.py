"""One handler per message type the vendor takes (spec §6).

Each handler runs after the runtime's pipeline has verified the message,
judged its replay and participation, and the state machine has decided it
(:mod:`vrm_agent.inbox`): it reads the typed model, adds the vendor's own
writes and the replies (typed bodies) to the unit of work, and may refuse
the message with a :class:`~vrm_protocol.errors.RemoteProtocolError` (an
untrusted attestation, consent to what was never asked), in which case
nothing of it is stored. The ledger (offers superseded, accepted, declined,
lapsed; requests opened and answered) is the state machine's effects, never
re-implemented here.

:data:`HANDLERS` is checked at start-up against
:func:`vrm_protocol.message_types.accepted_by` for the vendor role: a type
the vendor must take without a handler stops the agent from starting.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from reference_vendor import rules
from reference_vendor.catalogue import parse_duration
from reference_vendor.conversation import trim_question
from reference_vendor.evidence import credit_evidence
from reference_vendor.leaving import (
    LEFT_MARKET_SETTING,
    deletion_receipt,
    relationship_export,
)
from reference_vendor.store import (
    ConsentRow,
    DataRow,
    DealRow,
    ExitRow,
    NotificationsChosen,
    OfferTerms,
    Reengagement,
)
from vrm_agent.inbox import Inbound
from vrm_agent.registry import HandlerRegistry
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.ledger import Reengaged
from vrm_protocol.models import (
    DataExport,
    DataItem,
    Deal,
    DealConfirmationBody,
    DealDelivery,
    DealTradeIn,
    DeletionReceipt,
    ExitAcknowledgementBody,
    ExitAcknowledgementMessage,
    ExitNoticeMessage,
    MessageRef,
    OfferAcceptanceMessage,
    OfferBody,
    OfferDeclineMessage,
    OfferMessage,
    PersonalRfiMessage,
    PersonalRfpMessage,
    ProblemReportMessage,
    ServiceNoticeMessage,
    ServiceResponseMessage,
    SupportRequestMessage,
    SupportResolutionBody,
    TermsAssertionMessage,
    TermsResponseMessage,
    to_payload,
)
from vrm_protocol.vocabulary import Role

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = ["ACCEPTANCE_CATEGORIES", "DEAL_RECORD_BASIS", "HANDLERS", "export_digest"]

#: The vendor's handlers, by message model.
HANDLERS: Final[HandlerRegistry[VendorAgent]] = HandlerRegistry()

#: How long the vendor keeps deal records after an exit, and why (spec §6.14 ``retained``).
DEAL_RECORD_RETENTION: Final = timedelta(days=6 * 365)
DEAL_RECORD_BASIS: Final = "legal-obligation: sales and tax records are kept for six years"
#: Identity members of an acceptance and the data categories they disclose (spec §6.4).
ACCEPTANCE_CATEGORIES: Final[Mapping[str, str]] = {
    "name": "identity.name",
    "email": "contact.email",
    "phone": "contact.phone",
    "address": "contact.postal-address",
}


def export_digest(data: Mapping[str, Any]) -> str:
    """The digest of an export: over the RFC 8785 canonical JSON of ``data`` (spec §6.14)."""
    return message_digest(canonical_json(dict(data)))


def _too_late(response_by: str, now: datetime) -> bool:
    """Whether a request's ``responseBy`` has passed: an answer now would be one she
    no longer waits for (spec §6.1, §6.2)."""
    try:
        return parse_timestamp(response_by) < now
    except ValueError:
        return False


async def _left_market(vendor: VendorAgent) -> bool:
    """Whether the vendor left the market (:func:`reference_vendor.leaving.leave_market`)."""
    return await vendor.store.setting(LEFT_MARKET_SETTING) is not None


def _reengaged(inbound: Inbound[Any], work: UnitOfWork) -> None:
    """spec §7.5 (step 10): she re-engaged; the history is kept, her earlier choices
    no longer apply."""
    if any(isinstance(effect, Reengaged) for effect in inbound.transition.effects):
        work.write(Reengagement(inbound.peer))


def _offer(
    vendor: VendorAgent,
    inbound: Inbound[Any],
    work: UnitOfWork,
    offer: OfferBody,
    *,
    round_number: int,
) -> None:
    """Send ``offer`` answering ``inbound``, with what the vendor keeps of it."""
    answer = offer.model_copy(update={"in_response_to": inbound.ref()})
    reply = inbound.answer(work, answer)
    total = answer.price.total
    reply.writes.append(
        OfferTerms(inbound.peer, reply.id, round_number, total.amount, total.currency)
    )


# -- search and engagement (steps 1, 2, 10) ------------------------------------------------------


@HANDLERS.on(PersonalRfiMessage)
async def on_rfi(
    vendor: VendorAgent, inbound: Inbound[PersonalRfiMessage], work: UnitOfWork
) -> None:
    """An intentcast: an offer when the vendor has something within the budget; a
    third party serving the category presents its terms instead (spec §6.1, §6.7)."""
    body = inbound.message.body
    vendor.verified_claims(body.attestations, inbound, "ability-to-pay")
    _reengaged(inbound, work)
    catalogue = vendor.catalogue
    if not catalogue.sells:
        if catalogue.serves(body.intent.category) and catalogue.data_requests:
            inbound.answer(
                work,
                rules.terms_assertion_body(
                    catalogue,
                    vendor.party_id,
                    now=inbound.now,
                    attestations=vendor.party_attestations,
                ),
            )
        return
    if _too_late(body.response_by, inbound.now) or await _left_market(vendor):
        return
    offer = rules.indicative_offer(catalogue, body, now=inbound.now)
    if offer is not None:
        offer = vendor.strategies.pricing.price(offer, body.budget)
        # Step 10: what she kept and shared, verified with the key history.
        offer = credit_evidence(offer, vendor.strategies.evidence.read(vendor, body.evidence))
        _offer(vendor, inbound, work, offer, round_number=0)


@HANDLERS.on(PersonalRfpMessage)
async def on_rfp(
    vendor: VendorAgent, inbound: Inbound[PersonalRfpMessage], work: UnitOfWork
) -> None:
    """A request for proposal: a binding offer, with financing as far as verified
    ability-to-pay attestations cover it (spec §6.2, §10.1)."""
    body = inbound.message.body
    statements = vendor.verified_claims(body.attestations, inbound, "ability-to-pay")
    _reengaged(inbound, work)
    catalogue = vendor.catalogue
    if (
        not catalogue.sells
        or _too_late(body.response_by, inbound.now)
        or await _left_market(vendor)
    ):
        return
    # spec §6.30: a model sold in several trims: the vendor asks which trim she
    # means (a side exchange), and offers the nearest match meanwhile. Asked
    # first, so that the question reaches her before the offer (in order per peer).
    question = trim_question(catalogue, body, inbound.ref())
    if question is not None:
        inbound.answer(work, question)
    cover = rules.financing_cover(statements, catalogue.currency)
    offer = rules.binding_offer(catalogue, body, now=inbound.now, cover=cover)
    if offer is not None:
        offer = vendor.strategies.pricing.price(offer, body.budget)
        offer = credit_evidence(offer, vendor.strategies.evidence.read(vendor, body.evidence))
        _offer(vendor, inbound, work, offer, round_number=0)


# -- negotiation (step 3) ------------------------------------------------------------------------


@HANDLERS.on(OfferMessage)
async def on_counter_offer(
    vendor: VendorAgent, inbound: Inbound[OfferMessage], work: UnitOfWork
) -> None:
    """Her counter-offer (the state machine superseded ours): a new binding offer
    that supersedes it, towards her total but never below the floor (spec §6.3)."""
    body = inbound.message.body
    assert body.supersedes is not None  # the state machine refuses a counter naming none
    countered_id = body.supersedes.id
    # Only the vendor's own offers have a round (her counters are in the
    # ledger and their terms in her stored message).
    record = inbound.facts.offers.get(countered_id)
    if record is None or record.sender is not Role.VENDOR:
        return
    countered = await vendor.store.offer_terms(inbound.peer, countered_id)
    round_number = countered.round if countered is not None else 0
    previous = await vendor.sent(inbound, countered_id, OfferMessage)
    if previous is None:
        return
    outcome = rules.answer_counter(
        vendor.catalogue,
        previous.body,
        body,
        round_number=round_number + 1,
        now=inbound.now,
    )
    answer = outcome.body.model_copy(
        update={"supersedes": MessageRef(id=inbound.id, digest=inbound.digest)}
    )
    _offer(vendor, inbound, work, answer, round_number=round_number + 1)


HANDLERS.record_only(OfferDeclineMessage)


# -- transaction and welcome (steps 4, 5) --------------------------------------------------------


@HANDLERS.on(OfferAcceptanceMessage)
async def on_acceptance(
    vendor: VendorAgent, inbound: Inbound[OfferAcceptanceMessage], work: UnitOfWork
) -> None:
    """She accepted a live binding offer: the deal, confirmed; then the terms of
    sharing when the vendor asks for data (spec §6.4-§6.7; step 5)."""
    body = inbound.message.body
    offer_id = body.offer.id
    record = inbound.facts.offers[offer_id]  # the state machine found it live
    sent = await vendor.sent(inbound, offer_id, OfferMessage)
    if sent is None:
        raise RemoteProtocolError(
            ErrorCode.NOT_A_PARTICIPANT, "the offer was made to someone else", path="/body/offer"
        )
    offer = sent.body
    vendor.check_approvals(offer, record.digest, inbound)
    deal_id = "deal-" + uuid.uuid4().hex[:16]
    identity: dict[str, Any] = to_payload(body.identity) if body.identity is not None else {}
    # The data categories the deal record holds: what the acceptance disclosed.
    disclosed = body.identity
    categories = {
        category
        for member, category in ACCEPTANCE_CATEGORIES.items()
        if disclosed is not None and getattr(disclosed, member) is not None
    }
    if body.trade_in is not None:
        identity["tradeIn"] = to_payload(body.trade_in)
        categories.add("vehicle.registration")
    total = offer.price.total
    work.write(
        DealRow(
            deal_id,
            inbound.peer,
            offer_id,
            inbound.id,
            total.amount,
            total.currency,
            identity,
            format_timestamp(inbound.now),
            tuple(sorted(categories)),
        )
    )
    delivery_method = (
        offer.delivery.method if offer.delivery is not None else None
    ) or vendor.catalogue.delivery_method
    conditions = tuple(c for c in offer.conditions or () if c.kind != "approval-required")
    confirmation = DealConfirmationBody(
        deal=Deal(
            id=deal_id,
            offer=rules.message_ref(offer_id, record.digest),
            acceptance=inbound.id,
            total=total,
        ),
        delivery=DealDelivery(
            scheduled_for=format_timestamp(
                inbound.now + timedelta(days=vendor.catalogue.delivery_days)
            ),
            method=delivery_method,
        ),
        **present(
            # Seed 001: the old car and its papers change hands with the new one.
            trade_in=DealTradeIn(
                handover=offer.trade_in.handover,
                papers_handover=offer.trade_in.papers_handover or offer.trade_in.handover,
                valuation=offer.trade_in.valuation,
            )
            if offer.trade_in is not None
            else None,
            conditions=conditions or None,
        ),
    )
    inbound.answer(work, confirmation)
    if vendor.catalogue.data_requests:
        # spec §4 step 5: the welcome presents the terms of sharing, the paperwork of
        # the deal among them (VRM-PAP-001).
        asked = vendor.strategies.paperwork.requests(vendor.catalogue.data_requests)
        catalogue = replace(vendor.catalogue, data_requests=asked)
        inbound.answer(
            work,
            rules.terms_assertion_body(
                catalogue,
                vendor.party_id,
                now=inbound.now,
                attestations=vendor.party_attestations,
            ),
        )


@dataclass(frozen=True, slots=True)
class _Grant:
    """One accepted data request: the item, and what the answer narrowed."""

    item: str
    purposes: tuple[str, ...] | None
    period: str | None


@dataclass(frozen=True, slots=True)
class _Asked:
    """What the vendor asked for one item."""

    purposes: tuple[str, ...]
    period: str


def _record_consents(
    inbound: Inbound[Any],
    work: UnitOfWork,
    requested: Mapping[str, _Asked],
    granted: Sequence[_Grant],
    data: Sequence[DataItem],
    where: str,
) -> None:
    """Consents for the accepted requests and the data shared under them.

    Raises:
        RemoteProtocolError: NOT_ACCEPTED_BY_TERMS for an accepted item or purpose
            that was never requested, or data for an item not accepted (spec
            §12: only what was accepted may be shared).
    """
    now = inbound.now
    stamp = format_timestamp(now)
    deadlines: dict[str, tuple[str, tuple[str, ...]]] = {}
    for index, grant in enumerate(granted):
        asked = requested.get(grant.item)
        if asked is None:
            raise RemoteProtocolError(
                ErrorCode.NOT_ACCEPTED_BY_TERMS,
                f"{grant.item} was not requested",
                path=f"{where}/{index}/item",
            )
        purposes = grant.purposes or asked.purposes
        if not set(purposes) <= set(asked.purposes):
            raise RemoteProtocolError(
                ErrorCode.NOT_ACCEPTED_BY_TERMS,
                f"{grant.item} was not requested for {sorted(set(purposes) - set(asked.purposes))}",
                path=f"{where}/{index}/purposes",
            )
        period = grant.period or asked.period
        # Never keep longer than asked, nor longer than accepted.
        span = min(parse_duration(period), parse_duration(asked.period))
        retain_until = format_timestamp(now + span)
        deadlines[grant.item] = (retain_until, purposes)
        work.write(
            ConsentRow(inbound.peer, grant.item, purposes, period, retain_until, inbound.id, stamp)
        )
    for index, item in enumerate(data):
        if item.item not in deadlines:
            raise RemoteProtocolError(
                ErrorCode.NOT_ACCEPTED_BY_TERMS,
                f"data for {item.item}, which the response does not accept",
                path=f"/body/data/{index}/item",
            )
        retain_until, purposes = deadlines[item.item]
        value = item.value if isinstance(item.value, str) else to_payload(item.value)
        work.write(
            DataRow(inbound.peer, item.item, value, purposes, retain_until, inbound.id, stamp)
        )


@HANDLERS.on(TermsResponseMessage)
async def on_terms_response(
    vendor: VendorAgent, inbound: Inbound[TermsResponseMessage], work: UnitOfWork
) -> None:
    """Her answer to the terms: consents, the data shared under them, and the
    notification categories she allows (spec §6.8, §12)."""
    body = inbound.message.body
    assertion = await vendor.sent(inbound, body.assertion.id, TermsAssertionMessage)
    if assertion is None:
        raise RemoteProtocolError(
            ErrorCode.NOT_A_PARTICIPANT,
            "the terms assertion answered was not made to this party",
            path="/body/assertion",
        )
    stored = await vendor.store.message(vendor.party_id, body.assertion.id)
    if stored is None or body.assertion.digest != stored.digest:
        raise RemoteProtocolError(
            ErrorCode.NOT_ACCEPTED_BY_TERMS,
            "the response answers other terms than those asserted (digest differs)",
            path="/body/assertion/digest",
        )
    requested = {
        request.item: _Asked(tuple(request.purposes), request.retention.period)
        for request in assertion.body.requests
    }
    granted = [
        _Grant(
            accepted.item,
            tuple(accepted.purposes) if accepted.purposes else None,
            accepted.retention.period if accepted.retention is not None else None,
        )
        for accepted in body.accepted
    ]
    _record_consents(inbound, work, requested, granted, body.data or (), "/body/accepted")
    work.write(NotificationsChosen(inbound.peer, tuple(body.notification_preferences.allowed)))


# -- servicing and support (steps 6-8) -----------------------------------------------------------


@HANDLERS.on(ServiceResponseMessage)
async def on_service_response(
    vendor: VendorAgent, inbound: Inbound[ServiceResponseMessage], work: UnitOfWork
) -> None:
    """Her answer to a notice: consent to the scoped requests she accepted, and the
    data she shares under them (spec §6.10)."""
    body = inbound.message.body
    notice = await vendor.sent(inbound, body.notice.id, ServiceNoticeMessage)
    if notice is None:
        raise RemoteProtocolError(
            ErrorCode.NOT_A_PARTICIPANT,
            "the notice answered was not sent to this party",
            path="/body/notice",
        )
    requested = {
        request.item: _Asked(tuple(request.purposes), request.retention.period)
        for request in notice.body.data_requests or ()
    }
    accepted_items = body.accepted
    granted = (
        []
        if body.decision == "decline"
        else [
            _Grant(item, None, None)
            for item in requested
            if accepted_items is None or item in accepted_items
        ]
    )
    _record_consents(inbound, work, requested, granted, body.data or (), "/body/accepted")


@HANDLERS.on(SupportRequestMessage)
async def on_support_request(
    vendor: VendorAgent, inbound: Inbound[SupportRequestMessage], work: UnitOfWork
) -> None:
    """A support request: resolved; in progress when it is about safety, or severe
    enough to need a workshop's diagnosis first (spec §6.11, §6.12)."""
    severity = inbound.message.body.severity
    if severity == "safety":
        status, resolution = (
            "in-progress",
            "A technician will contact you today; do not use the vehicle meanwhile.",
        )
    elif severity == "high":
        status, resolution = (
            "in-progress",
            "Our workshop will diagnose the fault at your next visit; we cannot say more yet.",
        )
    else:
        status, resolution = (
            "resolved",
            "A software update fixes this; it is applied at your next service, "
            "or now at any of our workshops.",
        )
    inbound.answer(
        work, SupportResolutionBody(request=inbound.ref(), status=status, resolution=resolution)
    )


HANDLERS.record_only(ProblemReportMessage)


# -- exit (step 9) -------------------------------------------------------------------------------


@HANDLERS.on(ExitNoticeMessage)
async def on_exit(
    vendor: VendorAgent, inbound: Inbound[ExitNoticeMessage], work: UnitOfWork
) -> None:
    """Her exit: the export she asked for, the deletion with its receipt (what is
    kept on a legal basis named item by item), and nothing more sent to her
    after the acknowledgement (spec §6.13, §6.14, §7.5)."""
    peer, now = inbound.peer, inbound.now
    body = inbound.message.body
    stamp = format_timestamp(now)
    # Everything held, with the history the relationship produced (spec §6.14).
    export = await relationship_export(vendor.store, peer)
    export_data, digest = export.data, export.digest
    if body.deletion.requested:
        receipt = deletion_receipt(
            export, peer, work, now, categories=frozenset(body.deletion.categories or ())
        )
    else:
        receipt = DeletionReceipt(
            relationship=peer,
            deleted=tuple(sorted({d.item for d in export.earlier})),
            deleted_at=stamp,
        )
    acknowledgement = ExitAcknowledgementBody(
        notice=inbound.ref(),
        deletion_receipt=receipt,
        **present(
            export=DataExport(media_type="application/json", data=export_data, digest=digest)
            if body.export.requested
            else None
        ),
    )
    # Nothing queued earlier reaches her after the acknowledgement (spec §7.5).
    work.cancel_deliveries = True
    reply = inbound.answer(work, acknowledgement)
    reply.writes.append(
        ExitRow(
            peer,
            inbound.id,
            inbound.digest,
            digest if body.export.requested else None,
            to_payload(receipt),
            reply.id,
            stamp,
        )
    )


HANDLERS.record_only(ExitAcknowledgementMessage)
