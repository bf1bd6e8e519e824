"""The demo's brochure by post (seed 000 step 2; spec §6.60, §6.61).

While she compares offers, Sally asks Prius Direct for its brochure by post:
her agent sends her postal address as her store holds it, for that delivery
alone and until it is sent; the dealer posts it, deletes the address and says
so in its dispatch, which her agent checks against what she asked for.
"""

from __future__ import annotations

from reference_buyer.agent import BuyerAgent
from reference_buyer.handlers_materials import request_material
from vrm_protocol.models import MaterialDispatchMessage
from vrm_protocol.vocabulary import MessageType

__all__ = ["MaterialsFailed", "brochure_by_post"]


class MaterialsFailed(Exception):
    """The brochure did not go as the protocol says it must."""


async def brochure_by_post(agent: BuyerAgent, vendor: str, name: str, *, within: float) -> str:
    """She asks ``vendor`` for its brochure by post; a line for the step's summary.

    Raises:
        MaterialsFailed: the dispatch did not come, or does not say the address was deleted.
        LocalProtocolError, RemoteProtocolError: a move was refused.
    """
    sent = await request_material(agent, vendor, ["brochure"], product="Toyota Prius")
    request_id = sent.message.message_id
    entry = await agent.wait_for(
        lambda e: (
            e.type is MessageType.MATERIAL_DISPATCH and e.peer == vendor and e.parent == request_id
        ),
        within=within,
    )
    dispatch = entry.model()
    if not isinstance(dispatch, MaterialDispatchMessage) or dispatch.body.request.id != request_id:
        raise MaterialsFailed(f"{name} sent no dispatch of her brochure request")
    if dispatch.body.address_deleted is not True:
        raise MaterialsFailed(f"{name} does not say her address was deleted")
    return (
        f"brochure by post from {name} (her address only, for delivery until sent): "
        f"posted {dispatch.body.sent_at}, address deleted"
    )
