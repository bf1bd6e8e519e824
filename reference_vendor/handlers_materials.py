"""The vendor's handler for printed material by post (spec §6.60, §6.61),
registered on :data:`reference_vendor.handlers.HANDLERS`.

Imported by :mod:`reference_vendor.agent` for its registration. The state
machine has opened her request; the handler posts the material, forgets the
address (VRM-MAT-004) and answers with the dispatch, in her request's thread,
naming it by its digest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference_vendor.handlers import HANDLERS
from reference_vendor.materials_rules import dispatch_body
from vrm_agent.inbox import Inbound
from vrm_agent.unit import UnitOfWork
from vrm_protocol.models import MaterialRequestMessage

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = ["on_material_request"]


@HANDLERS.on(MaterialRequestMessage)
async def on_material_request(
    vendor: VendorAgent, inbound: Inbound[MaterialRequestMessage], work: UnitOfWork
) -> None:
    """Her request: the material posted at once to the address she gave, the
    address deleted with it, and the dispatch saying both (spec §6.61)."""
    body = inbound.message.body
    vendor.strategies.materials.after_posting(inbound.peer, inbound.id, body, work, inbound.now)
    inbound.answer(work, dispatch_body(inbound.ref(), body, inbound.now))
