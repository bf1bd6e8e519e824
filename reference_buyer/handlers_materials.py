"""Her agent and printed material by post (spec §6.60, §6.61; seed 000 step 2).

:func:`request_material` asks a vendor for a brochure by post: the material,
her postal address as her store holds it (never retyped), and the one-purpose
consent it goes under (`delivery`, until sent; VRM-MAT-001). The handler,
registered on :data:`reference_buyer.handlers.HANDLERS` (imported by
:mod:`reference_buyer.agent`), takes the vendor's dispatch only when it lists
material she asked for (VRM-MAT-003); the state machine checked that it names
her open request; her handler checks the digest against the request as
sent (VRM-MAT-002).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reference_buyer.handlers import HANDLERS, _journal
from reference_buyer.outgoing import build
from vrm_agent.inbox import Inbound, Sent
from vrm_agent.unit import UnitOfWork, outgoing, present
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.models import (
    DeliveryConsent,
    MaterialDispatchMessage,
    MaterialItem,
    MaterialRequestBody,
    MaterialRequestMessage,
    PostalAddress,
)
from vrm_protocol.state_machine import Direction

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = ["POSTAL_ADDRESS", "on_dispatch", "request_material"]

#: The data category her address is kept under in her store (spec §16.8).
POSTAL_ADDRESS = "contact.postal-address"


async def request_material(
    agent: BuyerAgent, peer: str, materials: Sequence[str], *, product: str | None = None
) -> Sent:
    """Her request to ``peer`` for ``materials`` (codes, e.g. ``brochure``) by post
    (spec §6.60): her address from her store, for delivery only, until sent.

    Raises:
        LocalProtocolError: her store holds no postal address, or the
            relationship is in no state for it (only before the deal).
        RemoteProtocolError: the vendor refused it.
    """
    profile = await agent.store.profile()
    address = profile.get(POSTAL_ADDRESS)
    if not isinstance(address, dict):
        raise LocalProtocolError(ErrorCode.INVALID_REQUEST, "her store holds no postal address")
    body = build(
        MaterialRequestBody,
        materials=tuple(
            build(MaterialItem, code=code, **present(product=product)) for code in materials
        ),
        address=PostalAddress.model_validate(address),
        consent=build(DeliveryConsent, purpose="delivery", retention="until-sent"),
    )
    return await agent.sender.send(peer, outgoing(body, thread=None, parent=None))


@HANDLERS.on(MaterialDispatchMessage)
async def on_dispatch(
    buyer: BuyerAgent, inbound: Inbound[MaterialDispatchMessage], work: UnitOfWork
) -> None:
    """The vendor's dispatch: kept for her when it lists only material she asked
    for (VRM-MAT-003), with its word that the address was deleted."""
    body = inbound.message.body
    sent = await buyer.store.entry(body.request.id, direction=Direction.SENT)
    request = sent.model() if sent is not None and sent.token is not None else None
    if not isinstance(request, MaterialRequestMessage) or sent is None or sent.peer != inbound.peer:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the dispatch names no material request of hers to this party",
            path="/body/request/id",
        )
    if sent.digest != body.request.digest:
        # spec §8.5 (VRM-MAT-002): the state machine knows only the digests it received.
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            f"{body.request.id} is named with a digest other than that of the request as sent",
            path="/body/request/digest",
        )
    buyer.strategies.materials.check(
        [item.code for item in request.body.materials], list(body.materials)
    )
    _journal(inbound, work)
