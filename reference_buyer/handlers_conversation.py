"""Her agent and conversation: questions and answers (spec §6.30, §6.31).

The handlers, registered on :data:`reference_buyer.handlers.HANDLERS` (imported
by :mod:`reference_buyer.agent`), file a vendor's question and answer for her
(the state machine opened or closed the request). Her agent answers nothing
on its own: :func:`answer` sends her answer when she (or the journey, or the
test driver on her behalf) asks it to, in her words or, when she gives none,
her policy's standing answer for the topic. :func:`ask` sends her question;
:func:`escalate` takes an open problem higher (spec §6.32).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from reference_buyer.handlers import HANDLERS, _filed
from vrm_agent.inbox import Inbound, Sent
from vrm_agent.unit import UnitOfWork, outgoing, present
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import (
    AnswerBody,
    AnswerMessage,
    EscalationLevel,
    QuestionBody,
    QuestionMessage,
    SupportEscalationBody,
    SupportEscalationMessage,
    SupportResolutionMessage,
)
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = ["answer", "ask", "escalate", "on_resolution", "open_questions"]

# A vendor's question waits for her; its answer to hers is kept for her to read.
for _model in (QuestionMessage, AnswerMessage):
    HANDLERS.on(_model)(_filed)


@HANDLERS.on(SupportResolutionMessage)
async def on_resolution(
    buyer: BuyerAgent, inbound: Inbound[SupportResolutionMessage], work: UnitOfWork
) -> None:
    """A resolution, kept for her; one answering her escalation must name the request
    that escalation escalated (spec §6.32, VRM-CONV-010): the state machine checked
    that both are hers and open, her own record says which goes with which."""
    body = inbound.message.body
    if body.escalation is not None:
        sent = await buyer.store.entry(body.escalation.id, direction=Direction.SENT)
        escalation = sent.model() if sent is not None and sent.token is not None else None
        if isinstance(escalation, SupportEscalationMessage):
            buyer.strategies.escalations.check(body.request.id, escalation.body.request.id)
    await _filed(buyer, inbound, work)


async def ask(
    agent: BuyerAgent,
    peer: str,
    text: str,
    *,
    topic: str | None = None,
    about: str | None = None,
) -> Sent:
    """Her question to ``peer`` (spec §6.30), in the thread of the message it is
    ``about`` (one she sent or received), else in a thread of its own.

    Raises:
        LocalProtocolError: the relationship is in no state for a question, or
            ``about`` is not a signed message of that relationship.
        RemoteProtocolError: the vendor refused it.
    """
    entry = await agent.store.entry(about) if about is not None else None
    if about is not None and (entry is None or entry.peer != peer or entry.token is None):
        raise LocalProtocolError(
            ErrorCode.INVALID_REQUEST, f"{about} is no signed message of this relationship"
        )
    body = QuestionBody.model_validate(
        present(topic=topic, text=text, about=entry.ref() if entry is not None else None)
    )
    reply = outgoing(
        body,
        thread=entry.thread if entry is not None else None,
        parent=entry.message_id if entry is not None else None,
    )
    return await agent.sender.send(peer, reply)


async def answer(agent: BuyerAgent, question_id: str, text: str | None = None) -> Sent:
    """Her answer to the vendor's question ``question_id`` (spec §6.31): in the
    question's thread, naming it by the digest of the bytes received
    (VRM-CONV-003). Without ``text``, her policy's standing answer for the topic.

    Raises:
        LocalProtocolError: no such question was received, her policy has no
            answer for its topic and she gave none, or the state machine refuses
            it (the question is already answered).
        RemoteProtocolError: the vendor refused it.
    """
    entry = await agent.store.entry(question_id, direction=Direction.RECEIVED)
    if entry is None or entry.type is not MessageType.QUESTION or entry.token is None:
        raise LocalProtocolError(ErrorCode.INVALID_REQUEST, f"no question {question_id} received")
    question = entry.model()
    assert isinstance(question, QuestionMessage)
    if text is None:
        text = agent.policy.answers.get(question.body.topic or "")
    if not text:
        raise LocalProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"her policy has no answer on {question.body.topic or 'this question'}: she answers it",
        )
    reply = outgoing(
        AnswerBody(question=entry.ref(), text=text), thread=entry.thread, parent=entry.message_id
    )
    return await agent.sender.send(entry.peer, reply)


async def open_questions(agent: BuyerAgent, peer: str | None = None) -> list[str]:
    """The vendors' questions she has not answered yet, oldest first."""
    answered = set()
    for sent in await agent.store.history(peer=peer, type=MessageType.ANSWER):
        model = sent.model() if sent.direction is Direction.SENT else None
        if isinstance(model, AnswerMessage):
            answered.add(model.body.question.id)
    return [
        entry.message_id
        for entry in await agent.store.history(peer=peer, type=MessageType.QUESTION)
        if entry.direction is Direction.RECEIVED and entry.message_id not in answered
    ]


async def escalate(
    agent: BuyerAgent,
    request_id: str,
    *,
    level: str,
    name: str,
    within: timedelta = timedelta(days=14),
    reason: str | None = None,
) -> Sent:
    """Take her open support request ``request_id`` to the vendor's ``level``
    (``name``), expecting its answer ``within`` from now (spec §6.32). The
    history carried is the request and every answer the vendor gave to it,
    each bound to its bytes (VRM-CONV-009); the escalation is sent in the
    request's thread, after the last answer.

    Raises:
        LocalProtocolError: she sent no such request, or the state machine
            refuses the escalation (the request is resolved, the deadline...).
        RemoteProtocolError: the vendor refused it.
    """
    request = await agent.store.entry(request_id, direction=Direction.SENT)
    if request is None or request.type is not MessageType.SUPPORT_REQUEST or request.token is None:
        raise LocalProtocolError(
            ErrorCode.INVALID_REQUEST, f"she sent no support request {request_id}"
        )
    history = [request]
    for entry in await agent.store.history(
        peer=request.peer, type=MessageType.SUPPORT_RESOLUTION, include_refused=False
    ):
        resolution = entry.model() if entry.token is not None else None
        if (
            isinstance(resolution, SupportResolutionMessage)
            and resolution.body.request.id == request_id
        ):
            history.append(entry)
    body = SupportEscalationBody.model_validate(
        {
            "request": request.ref(),
            "to": EscalationLevel(level=level, name=name),
            "deadline": format_timestamp(agent.clock.now() + within),
            "history": tuple(entry.ref() for entry in history),
            **({"reason": reason} if reason is not None else {}),
        }
    )
    reply = outgoing(body, thread=request.thread, parent=history[-1].message_id)
    return await agent.sender.send(request.peer, reply)
