"""The transaction carried through, on her side (spec §6.22-§6.24).

Her agent files the vendor's delivery notice and handover record as it files
any message (a journal line); what she sends, she decides: :func:`inspect`
judges a handover record by her guard (:class:`~reference_buyer.
transaction_rules.HandoverRule`) against the offer she accepted and the
acceptance she sent, and accepts it, or refuses it with her reasons and the
signed tokens as evidence, then raises the problem with the vendor (seed 001).

The handlers are registered on :data:`reference_buyer.handlers.HANDLERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reference_buyer.handlers import HANDLERS, _filed
from reference_buyer.outgoing import build, received
from vrm_agent.unit import outgoing
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.models import (
    DeliveryNoticeMessage,
    HandoverRecordMessage,
    InspectionEvidence,
    InspectionReason,
    InspectionResultBody,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent
    from reference_buyer.store import Entry

__all__ = ["Inspection", "inspect"]

for _model in (DeliveryNoticeMessage, HandoverRecordMessage):
    HANDLERS.on(_model)(_filed)


@dataclass(frozen=True, slots=True)
class Inspection:
    """Her inspection: the decision, the reasons, and what her agent sent."""

    decision: str
    reasons: tuple[str, ...]
    sent: tuple[str, ...]


def _evidence(entry: Entry) -> InspectionEvidence:
    assert entry.token is not None  # a signed message she received
    return build(InspectionEvidence, message=entry.ref(), token=entry.token.decode("ascii"))


async def inspect(agent: BuyerAgent, handover_id: str) -> Inspection:
    """She inspects the handover record ``handover_id`` (spec §6.24).

    Her guard judges it against the offer she accepted (does the deal have a
    trade-in?) and the acceptance she sent (by its digest). She accepts it, or
    refuses it with her reasons and, as evidence, the record's token and that
    of the offer she accepted; then she raises the problem with the vendor, a
    support request regarding the record (VRM-TRX-005).

    Raises:
        LocalProtocolError: no such record, no deal to inspect, or the move is illegal.
        RemoteProtocolError: the vendor refused what she sent.
    """
    store = agent.store
    entry = await received(store, handover_id, MessageType.HANDOVER_RECORD)
    message = entry.model()
    assert isinstance(message, HandoverRecordMessage)
    core = await agent.core(entry.peer)
    if core.accepted_offer is None:
        raise LocalProtocolError(ErrorCode.ILLEGAL_TRANSITION, "she has no deal with this party")
    accepted = await store.offer_view(core.accepted_offer)
    acceptance = (
        await store.entry(core.acceptance, direction=Direction.SENT)
        if core.acceptance is not None
        else None
    )
    reasons = agent.strategies.handovers.judge(
        message.body,
        trade_in=accepted is not None and accepted.body.trade_in is not None,
        acceptance_digest=acceptance.digest if acceptance is not None else None,
    )
    if not reasons:
        body = build(InspectionResultBody, handover=entry.ref(), decision="accept")
        sent = await agent.sender.send(
            entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
        )
        return Inspection("accept", (), (sent.message.message_id,))
    evidence = [_evidence(entry)]
    if accepted is not None and accepted.entry.token is not None:
        evidence.append(_evidence(accepted.entry))
    body = build(
        InspectionResultBody,
        handover=entry.ref(),
        decision="refuse",
        reasons=tuple(build(InspectionReason, code=code, text=text) for code, text in reasons),
        evidence=tuple(evidence),
    )
    refusal = await agent.sender.send(
        entry.peer, outgoing(body, thread=entry.thread, parent=entry.message_id)
    )
    problem = await agent.owning.support_request(
        entry.peer,
        subject="The handover is not the deal I accepted",
        description=" ".join(text for _, text in reasons)
        + f" My signed refusal {refusal.message.message_id} carries your record as evidence.",
        severity="high",
        regarding=entry.message_id,
    )
    return Inspection(
        "refuse",
        tuple(code for code, _ in reasons),
        (refusal.message.message_id, problem.message.message_id),
    )
