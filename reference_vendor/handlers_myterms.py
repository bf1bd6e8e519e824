"""Her own terms, on the vendor's side (IEEE 7012 "MyTerms"; spec §6.70, §6.71).

She proffers an agreement of the MyTerms roster; the vendor answers at once
with a ``terms-agreement`` bound to the proffer by its digest, agreeing
exactly to the agreements its discovery document lists under ``agreements``
(its catalogue's ``[myterms]``), as the :class:`~reference_vendor.
myterms_rules.MyTermsPolicy` strategy says (VRM-MYT-003). Both messages are
kept as signed in the vendor's store, like every message: the pair is the
record of her terms with it.

The handlers are registered on :data:`reference_vendor.handlers.HANDLERS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from reference_vendor.catalogue import Catalogue
from reference_vendor.handlers import HANDLERS
from vrm_agent.inbox import Inbound
from vrm_agent.unit import UnitOfWork, present
from vrm_protocol.models import TermsAgreementBody, TermsProfferMessage
from vrm_protocol.myterms import agreement

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = ["agreement_refs", "on_proffer"]


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
