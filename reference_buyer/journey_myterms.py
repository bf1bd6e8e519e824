"""The demo's control after sharing: her own terms, programmes she joins,
notices that are what they say, and details that follow her (seed 000, 003).

Each function is one line of a step's summary in ``vrm demo``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from reference_buyer.agent import BuyerAgent
from reference_buyer.handlers_myterms import enrol, proffer, update_details, who_has
from reference_buyer.store import Entry
from vrm_protocol.models import TermsAgreementMessage, TermsAssertionMessage
from vrm_protocol.states import RelationshipState
from vrm_protocol.vocabulary import MessageType

__all__ = ["join_programme", "move_house", "proffer_to_all"]


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


class JourneyFailed(Exception):
    """A step did not go as the protocol says it must."""


def _terms_for(enrolment_id: str) -> Callable[[Entry], bool]:
    return lambda e: e.type is MessageType.TERMS_ASSERTION and e.parent == enrolment_id


async def join_programme(
    agent: BuyerAgent,
    peer: str,
    programme: str,
    notifications: Sequence[str],
    *,
    within: float,
) -> str:
    """She asks to join ``programme`` of ``peer`` (spec §6.72): the party's terms
    for the programme answer her enrolment, she answers them by her policy, and
    the relationship is in development; a line for the step's summary.

    Raises:
        JourneyFailed: the terms do not name her enrolment, or nothing was shared.
    """
    sent = await enrol(agent, peer, programme)
    entry = await agent.wait_for(_terms_for(sent.message.message_id), within=within)
    terms = entry.model()
    assert isinstance(terms, TermsAssertionMessage)
    bound = terms.body.programme
    if bound is None or bound.enrolment.id != sent.message.message_id:
        raise JourneyFailed("the programme's terms name her enrolment (spec §6.72)")
    _, decision = await agent.owning.answer_terms(entry.message_id, notifications=notifications)
    if decision is None:
        raise JourneyFailed("the party publishes the programme's terms on its origin (D12)")
    state = (await agent.core(peer)).state
    if state is not RelationshipState.DEVELOPMENT:
        raise JourneyFailed(f"her enrolment moved the relationship to development, not {state}")
    shared = sorted({item.item for item in decision.accepted})
    return (
        f"she asked to join {programme} (programme-enrolment; no offer pushed to her); its "
        f"terms {decision.decision.value}, sharing {shared}; relationship {state.value}"
    )


def _receipt_for(update_id: str) -> Callable[[Entry], bool]:
    return lambda e: e.type is MessageType.DETAILS_RECEIPT and e.parent == update_id


async def move_house(
    agent: BuyerAgent,
    changes: Mapping[str, str],
    names: Mapping[str, str],
    *,
    within: float,
) -> str:
    """She moves house (seed 003): one action sends her new details to every
    party that holds them under her consent, and to no other (spec §6.73); each
    receipts (§6.74); her store shows who has the new value. A summary line.

    Raises:
        JourneyFailed: nobody holds them, or a holder's receipt does not say so.
    """
    sent = await update_details(agent, changes, reason="She moved house.")
    if not sent:
        raise JourneyFailed("some party holds her address or phone under her consent")
    for update in sent.values():
        await agent.wait_for(_receipt_for(update.message.message_id), within=within)
    holders = {peer: await _held(agent, changes, peer) for peer in sent}
    if not all(holders.values()):
        raise JourneyFailed(f"every party sent her new details receipts them: {holders}")
    told = ", ".join(f"{names.get(p, p)} ({', '.join(items)})" for p, items in holders.items())
    return f"she moved house: new {' and '.join(changes)} sent to {told} and no other, receipted"


async def _held(agent: BuyerAgent, changes: Mapping[str, str], peer: str) -> list[str]:
    return [item for item in changes if (await who_has(agent, item)).get(peer)]
