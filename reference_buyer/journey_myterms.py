"""The demo's control after sharing: her own terms, programmes she joins,
notices that are what they say, and details that follow her (seed 000, 003).

Each function is one line of a step's summary in ``vrm demo``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from reference_buyer.agent import BuyerAgent
from reference_buyer.handlers_myterms import proffer
from reference_buyer.store import Entry
from vrm_protocol.models import TermsAgreementMessage
from vrm_protocol.vocabulary import MessageType

__all__ = ["proffer_to_all"]


def _answering(message_id: str) -> Callable[[Entry], bool]:
    return lambda e: e.type is MessageType.TERMS_AGREEMENT and e.parent == message_id


async def proffer_to_all(
    agent: BuyerAgent,
    peers: Sequence[str],
    agreement_id: str,
    names: Mapping[str, str],
    *,
    within: float,
) -> tuple[dict[str, str], str]:
    """She proffers the roster agreement ``agreement_id`` to each of ``peers``
    (spec §6.70) and waits for each answer (§6.71): the decisions by peer, and
    a line for the step's summary."""
    decisions: dict[str, str] = {}
    for peer in peers:
        sent = await proffer(agent, peer, agreement_id)
        proffer_id = sent.message.message_id
        entry = await agent.wait_for(_answering(proffer_id), within=within)
        answer = entry.model()
        assert isinstance(answer, TermsAgreementMessage)
        decisions[peer] = answer.body.decision
    said = ", ".join(f"{names.get(p, p)} {d}s" for p, d in decisions.items())
    return decisions, f"her terms {agreement_id} proffered: {said}"
