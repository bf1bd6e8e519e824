"""Her own terms, on the vendor's side (IEEE 7012 "MyTerms"; spec §6.70, §6.71).

She proffers an agreement of the MyTerms roster; the vendor answers at once
with a ``terms-agreement`` bound to the proffer by its digest, agreeing
exactly to the agreements its discovery document lists under ``agreements``
(its catalogue's ``[myterms]``), as the :class:`~reference_vendor.
myterms_rules.MyTermsPolicy` strategy says (VRM-MYT-003). Both messages are
kept as signed in the vendor's store, like every message: the pair is the
record of her terms with it.

She joins a programme by her request (``programme-enrolment``, spec §6.72):
the vendor answers with its terms for the programme (the programme's data
requests under its terms of sharing), bound to her enrolment by its digest,
as the :class:`~reference_vendor.myterms_rules.ProgrammeBinding` strategy
says; a programme it does not list is refused.

Her new details (``details-update``, spec §6.73) replace the values it holds
under her consent, and only those; its ``details-receipt`` lists them.

The handlers are registered on :data:`reference_vendor.handlers.HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from reference_vendor import rules
from reference_vendor.catalogue import Catalogue, Programme
from reference_vendor.handlers import ACCEPTANCE_CATEGORIES, HANDLERS
from reference_vendor.store import DataRow, DealIdentityUpdated
from vrm_agent.inbox import Inbound
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import (
    DataRequest,
    DetailsReceiptBody,
    DetailsUpdateMessage,
    ProgrammeEnrolmentMessage,
    Retention,
    TermsAgreementBody,
    TermsAssertionBody,
    TermsProfferMessage,
    to_payload,
)
from vrm_protocol.myterms import agreement

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = [
    "agreement_refs",
    "on_details_update",
    "on_enrolment",
    "on_proffer",
    "programme_terms",
]


def agreement_refs(catalogue: Catalogue) -> list[Mapping[str, str]]:
    """The ``agreements`` of its discovery document (spec §11.1, §6.71): each
    roster agreement it agrees to, by id, version and digest."""
    refs: list[Mapping[str, str]] = []
    for agreement_id, version in catalogue.agreements:
        known = agreement(agreement_id, version)
        if known is not None:
            refs.append({"id": known.id, "version": known.version, "digest": known.digest})
    return refs


@HANDLERS.on(TermsProfferMessage)
async def on_proffer(
    vendor: VendorAgent, inbound: Inbound[TermsProfferMessage], work: UnitOfWork
) -> None:
    """Her proffer, answered with the vendor's agreement or its decline (spec
    §6.71): the same agreement, her proffer by the digest of its bytes as received."""
    proffered = inbound.message.body.agreement
    answer = vendor.strategies.myterms.answer(proffered, vendor.catalogue.agreements)
    inbound.answer(
        work,
        TermsAgreementBody(
            proffer=inbound.ref(),
            agreement=proffered,
            decision=answer.decision,
            **present(reason=answer.reason),
        ),
    )


def programme_terms(vendor: VendorAgent, programme: Programme, now: datetime) -> TermsAssertionBody:
    """The vendor's terms for ``programme`` (spec §6.72): its terms of sharing,
    asking for the programme's data only, for the programme's purposes."""
    general = rules.terms_assertion_body(
        vendor.catalogue, vendor.party_id, now=now, attestations=vendor.party_attestations
    )
    requests = tuple(
        DataRequest(
            item=str(request["item"]),
            purposes=tuple(str(p) for p in request["purposes"]),
            retention=Retention.model_validate(request["retention"]),
            required=False,
        )
        for request in programme.data_requests
    )
    return general.model_copy(update={"requests": requests or general.requests})


@HANDLERS.on(ProgrammeEnrolmentMessage)
async def on_enrolment(
    vendor: VendorAgent, inbound: Inbound[ProgrammeEnrolmentMessage], work: UnitOfWork
) -> None:
    """She asks to join a programme: one the discovery document lists is answered
    with the programme's terms, bound to her enrolment by its digest (spec §6.72,
    VRM-MYT-006); any other is refused, and nothing of it is kept."""
    code = inbound.message.body.programme
    programme = vendor.catalogue.programme(code)
    if programme is None:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            f"no programme {code!r} is listed in the discovery document",
            path="/body/programme",
        )
    body = programme_terms(vendor, programme, inbound.now)
    bound = vendor.strategies.programmes.bind(code, inbound.ref())
    inbound.answer(work, body.model_copy(update={"programme": bound}) if bound else body)


@HANDLERS.on(DetailsUpdateMessage)
async def on_details_update(
    vendor: VendorAgent, inbound: Inbound[DetailsUpdateMessage], work: UnitOfWork
) -> None:
    """Her new details (spec §6.73): each item it holds under her consent takes
    the new value, under the purposes and deadline it was held under; nothing
    else is kept. The receipt lists what it holds (spec §6.74, VRM-MYT-009)."""
    held = {row.item: row for row in await vendor.store.data_for(inbound.peer)}
    deals = await vendor.store.deals_for(inbound.peer)
    deal = deals[-1] if deals else None
    identity = dict(deal.identity) if deal is not None else {}
    members = {category: member for member, category in ACCEPTANCE_CATEGORIES.items()}
    stamp = format_timestamp(inbound.now)
    updated: list[str] = []
    for item in inbound.message.body.items:
        if item.item in updated:
            continue
        value = item.value if isinstance(item.value, str) else to_payload(item.value)
        row = held.get(item.item)
        member = members.get(item.item)
        in_deal = deal is not None and item.item in deal.categories and member in identity
        if row is None and not in_deal:
            continue  # not held under her consent: not kept
        if row is not None:
            kept = DataRow(
                inbound.peer, item.item, value, row.purposes, row.retain_until, inbound.id, stamp
            )
            work.write(kept)
        if in_deal and member is not None:
            # The identity she disclosed at acceptance, held in the deal's record.
            identity[member] = value
        updated.append(item.item)
    if deal is not None and identity != dict(deal.identity):
        work.write(DealIdentityUpdated(deal.id, identity))
    asked = [item.item for item in inbound.message.body.items]
    inbound.answer(
        work,
        DetailsReceiptBody(
            update=inbound.ref(), held=vendor.strategies.details.held(updated, asked)
        ),
    )
