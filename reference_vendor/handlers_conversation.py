"""The vendor's handlers for conversation: her questions and her answers
(spec §6.30, §6.31), and her escalations (spec §6.32), registered on
:data:`reference_vendor.handlers.HANDLERS`.

Imported by :mod:`reference_vendor.agent` for its registrations. The state
machine has already opened (question) or closed (answer) the request; the
handlers only compose the vendor's answer, from its catalogue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reference_vendor.conversation import answer_body, escalation_answers
from reference_vendor.handlers import HANDLERS
from vrm_agent.inbox import Inbound
from vrm_agent.unit import UnitOfWork
from vrm_protocol.models import AnswerMessage, QuestionMessage, SupportEscalationMessage

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = ["on_escalation", "on_question"]


@HANDLERS.on(QuestionMessage)
async def on_question(
    vendor: VendorAgent, inbound: Inbound[QuestionMessage], work: UnitOfWork
) -> None:
    """Her question: answered at once from the catalogue, in its thread, naming it
    by its digest (VRM-CONV-003, VRM-CONV-004)."""
    body = answer_body(vendor.catalogue, inbound.message.body, inbound.ref())
    vendor.strategies.conversation.send_answer(inbound, work, body)


# Her answer to the vendor's question closes it (the state machine's effect);
# the vendor keeps the message itself.
HANDLERS.record_only(AnswerMessage)


@HANDLERS.on(SupportEscalationMessage)
async def on_escalation(
    vendor: VendorAgent, inbound: Inbound[SupportEscalationMessage], work: UnitOfWork
) -> None:
    """Her escalation: the level she named answers in its thread, naming the request
    and the escalation by their digests, before the deadline (VRM-CONV-008)."""
    answers = escalation_answers(vendor.catalogue, inbound.message.body, inbound.ref())
    for body in vendor.strategies.escalations.answers(answers):
        inbound.answer(work, body)
