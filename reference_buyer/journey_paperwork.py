"""The demo's paperwork of the deal (seed 000 step 4; spec §12.5, VRM-PAP-001).

The dealer's terms of sharing at the welcome ask for the registered keeper of
the car and her insurance policy, for the legal obligation alone; her policy
accepts them, and her agent shares them from her store in the terms response,
never retyped. This module checks, from her own record, that what went out is
what her store holds, under those terms and for that purpose, and says so in
a line of the step's summary.
"""

from __future__ import annotations

from reference_buyer.agent import BuyerAgent
from vrm_agent.inbox import Sent
from vrm_protocol.models import TermsResponseMessage

__all__ = ["PAPERWORK", "PaperworkFailed", "paperwork_shared"]

#: The paperwork categories of a deal (spec §16.8).
PAPERWORK = ("vehicle.registration-keeper", "insurance.policy")
LEGAL_OBLIGATION = "legal-obligation"


class PaperworkFailed(Exception):
    """The paperwork did not go as the protocol says it must."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise PaperworkFailed(what)


async def paperwork_shared(agent: BuyerAgent, dealer: str, response: Sent) -> str:
    """Check that her terms response ``response`` to ``dealer`` shared the paperwork
    from her store, for the legal obligation, logged as such; a line for the summary.

    Raises:
        PaperworkFailed: a paperwork item is missing, differs from her store, or
            was logged for another purpose.
    """
    message = response.model
    _expect(isinstance(message, TermsResponseMessage), "the response is a terms response")
    assert isinstance(message, TermsResponseMessage)
    profile = await agent.store.profile()
    shared = {item.item: item.value for item in message.body.data or ()}
    accepted = {item.item: tuple(item.purposes) for item in message.body.accepted}
    log = [
        record
        for record in await agent.store.shared_with(dealer)
        if record.message_id == response.message.message_id
    ]
    for category in PAPERWORK:
        _expect(category in shared, f"her {category} is shared with the dealer")
        _expect(
            shared[category] == profile.get(category), f"her {category} is her store's, not retyped"
        )
        _expect(
            accepted.get(category) == (LEGAL_OBLIGATION,),
            f"her {category} is accepted for the legal obligation alone ({accepted.get(category)})",
        )
        _expect(
            any(r.category == category and tuple(r.purposes) == (LEGAL_OBLIGATION,) for r in log),
            f"her sharing log records {category} for the legal obligation",
        )
    return "registration keeper and insurance policy shared from her store for legal-obligation"
