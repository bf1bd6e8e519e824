"""The unit of work: everything one event changes, committed all or nothing.

One inbound message (or one operator action) makes one :class:`UnitOfWork`:
the inbound message's token and its receipt, the relationship's new core, the
ledger effects of every transition (the inbound message's and each reply's),
the agent's domain writes, the threads it touches, and the messages it sends
(each in the outbox: the addressee's mailbox, and a POST to the ``replyTo``
inbox when one was named). The store commits it in one transaction; only
then is the receipt answered (spec §11.3: nothing acknowledged is lost,
nothing rejected leaves a trace).

Handlers see the unit and add to it: :meth:`UnitOfWork.reply` a typed body
(the runtime signs it, passes it through the state machine as SENT and
queues it) and :meth:`UnitOfWork.write` a :class:`DomainWrite` of the agent's
own store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from vrm_agent.store import RelationshipRecord, StoredMessage
from vrm_protocol.codec import new_message_id
from vrm_protocol.ledger import Effect, RelationshipCore
from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.models import VRMModel
from vrm_protocol.vocabulary import MessageType

__all__ = [
    "BODY_TYPES",
    "DomainWrite",
    "Outbound",
    "Reply",
    "UnitOfWork",
    "outgoing",
    "present",
]


def _body_types() -> Mapping[type[VRMModel], MessageType]:
    found: dict[type[VRMModel], MessageType] = {}
    for spec in MESSAGE_TYPES.values():
        body = spec.model.model_fields["body"].annotation
        assert isinstance(body, type), spec.type
        assert issubclass(body, VRMModel), spec.type
        found[body] = spec.type
    return MappingProxyType(found)


#: The message type of each body model (``OfferBody`` -> ``offer``): a reply is
#: given as its typed body, and its type follows.
BODY_TYPES: Final[Mapping[type[VRMModel], MessageType]] = _body_types()


def present(**members: Any) -> dict[str, Any]:
    """The members given a value: an optional member of a protocol model is either
    present with a value or absent, never ``null`` (the models refuse an explicit
    ``None``). ``Model(required=..., **present(optional=maybe))``."""
    return {name: value for name, value in members.items() if value is not None}


class DomainWrite:
    """Base of an agent's own writes (a deal, a consent, data held, a deletion).

    Agents subclass it with frozen dataclasses; their store applies each in
    the same transaction as the rest of the unit.
    """

    __slots__ = ()


@dataclass(slots=True)
class Reply:
    """A message a handler wants sent, before the runtime signs it.

    Attributes:
        body: the typed body; its model names the message type.
        type: the message type (from the body's model).
        id: the message id, assigned now so that domain writes can name it.
        thread: the thread it is sent in.
        parent: the message it answers, if any.
        writes: domain writes kept only if the reply is sent (dropped with it
            when the state machine or the schema refuses it).
    """

    body: VRMModel
    type: MessageType
    id: str
    thread: str
    parent: str | None
    writes: list[DomainWrite] = field(default_factory=list)


def outgoing(
    body: VRMModel,
    *,
    thread: str | None,
    parent: str | None,
    writes: Iterable[DomainWrite] = (),
) -> Reply:
    """A message the agent starts itself (not an answer made inside a unit of work):
    ``body`` in ``thread`` (``None`` starts one: the message's own id, spec §5.2),
    answering ``parent``; ``writes`` are kept only if it is sent. Its ``id`` is
    assigned now, so that writes can name it
    (:meth:`vrm_agent.inbox.Pipeline.send` sends it).

    Raises:
        TypeError: ``body`` is not the body model of a message type.
    """
    message_type = BODY_TYPES.get(type(body))
    if message_type is None:
        raise TypeError(f"{type(body).__name__} is not the body of a message type")
    message_id = new_message_id()
    return Reply(body, message_type, message_id, thread or message_id, parent, list(writes))


@dataclass(frozen=True, slots=True)
class Outbound:
    """A message sent: stored, in the mailbox, and POSTed to ``deliver_to`` if set.

    ``delivered_at`` (a protocol timestamp): the peer's inbox already took it
    (the agent delivered it itself before the commit), so nothing is owed.
    """

    message: StoredMessage
    deliver_to: str | None
    delivered_at: str | None = None


@dataclass(slots=True)
class UnitOfWork:
    """Everything one event changes (see the module docstring).

    Attributes:
        peer: the relationship's other party.
        relationship: the relationship as it will stand after the unit (the
            runtime sets its core once every transition is decided).
        inbound: the inbound message to store (``None`` for an operator's
            action, or a replay processed by a test-mode fault).
        receipt: the signed receipt answering ``inbound``.
        effects: the ledger effects of every transition, in order.
        writes: the agent's domain writes, in order.
        replies: messages handlers asked for, not yet signed.
        outbound: messages signed and decided, to store and queue.
        cancel_deliveries: withdraw every message still queued for ``peer``
            (nothing reaches her after an exit's acknowledgement, spec §7.5).
        deliver_at: wall time at which the first attempt of each POST is due.
    """

    peer: str
    relationship: RelationshipRecord
    inbound: StoredMessage | None = None
    receipt: bytes | None = None
    effects: list[Effect] = field(default_factory=list)
    writes: list[DomainWrite] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    outbound: list[Outbound] = field(default_factory=list)
    cancel_deliveries: bool = False
    deliver_at: float = 0.0

    @property
    def core(self) -> RelationshipCore:
        """The relationship's core as it stands so far."""
        return self.relationship.core

    def reply(
        self,
        body: VRMModel,
        *,
        thread: str | None,
        parent: str | None,
        writes: Iterable[DomainWrite] = (),
    ) -> Reply:
        """Ask for ``body`` to be sent to the peer in ``thread``, answering ``parent``.

        ``thread`` ``None`` starts a thread: the message's own id (spec §5.2).
        Returns the reply, whose ``id`` is already assigned.

        Raises:
            TypeError: ``body`` is not the body model of a message type.
        """
        reply = outgoing(body, thread=thread, parent=parent, writes=writes)
        self.replies.append(reply)
        return reply

    def write(self, *writes: DomainWrite) -> None:
        """Add domain writes, applied in the same transaction."""
        self.writes.extend(writes)
