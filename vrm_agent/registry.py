"""The handler registry: one handler per message type an agent takes, checked at start-up.

An agent registers a handler for each message type by its generated model::

    HANDLERS: HandlerRegistry[VendorAgent] = HandlerRegistry()

    @HANDLERS.on(OfferAcceptanceMessage)
    async def on_acceptance(
        vendor: VendorAgent, inbound: Inbound[OfferAcceptanceMessage], work: UnitOfWork
    ) -> None: ...

    HANDLERS.record_only(ProblemReportMessage)   # filed, nothing more to do

and at start-up :meth:`HandlerRegistry.check_complete` compares the registry
with :func:`vrm_protocol.message_types.accepted_by` for the agent's role: a
type the agent must take without a handler is a defect found before the first
message, not a silent 500 (or a silent nothing) later. The discovery
document's ``accepts`` and ``sends`` come from the message-type registry, so
the registry of handlers, the discovery document and the state machine can
never disagree.

The handler's first argument is the agent (the registry's context type), so
handlers are plain module-level functions; :meth:`HandlerRegistry.bind` gives
the pipeline a registry bound to one agent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vrm_protocol.message_types import MESSAGE_TYPES
from vrm_protocol.models import BaseMessage
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from vrm_agent.inbox import Inbound
    from vrm_agent.unit import UnitOfWork

__all__ = [
    "BoundHandler",
    "BoundHandlers",
    "Handler",
    "HandlerRegistry",
    "IncompleteRegistry",
]

C = TypeVar("C")
M = TypeVar("M", bound=BaseMessage)

#: A handler: the agent, the message as it passed the pipeline, the unit of work.
Handler = Callable[[C, "Inbound[M]", "UnitOfWork"], Awaitable[None]]
#: A handler bound to its agent.
BoundHandler = Callable[["Inbound[Any]", "UnitOfWork"], Awaitable[None]]


class IncompleteRegistry(Exception):
    """The agent has no handler for a message type its role takes (a defect of the agent)."""


def _type_of(model: type[BaseMessage]) -> MessageType:
    for spec in MESSAGE_TYPES.values():
        if spec.model is model:
            return spec.type
    raise TypeError(f"{model.__name__} is not the model of a message type")


async def _record_only(context: object, inbound: Inbound[Any], work: UnitOfWork) -> None:
    """Nothing beyond what the runtime does: the message is stored, its effects applied."""


class HandlerRegistry(Generic[C]):
    """Handlers by message type, for agents of context type ``C``."""

    def __init__(self) -> None:
        self._handlers: dict[MessageType, Handler[C, Any]] = {}

    def on(self, model: type[M]) -> Callable[[Handler[C, M]], Handler[C, M]]:
        """Register the decorated function as the handler of ``model``'s message type.

        Raises:
            TypeError: ``model`` is not a message model.
            ValueError: the type already has a handler.
        """
        message_type = _type_of(model)

        def register(handler: Handler[C, M]) -> Handler[C, M]:
            if message_type in self._handlers:
                raise ValueError(f"{message_type.value} already has a handler")
            self._handlers[message_type] = handler
            return handler

        return register

    def record_only(self, *models: type[BaseMessage]) -> None:
        """Take messages of these types with no handling beyond the runtime's
        (stored, receipted, their effects applied).

        Raises:
            TypeError, ValueError: as :meth:`on`.
        """
        for model in models:
            self.on(model)(_record_only)

    @property
    def types(self) -> frozenset[MessageType]:
        """The message types with a handler."""
        return frozenset(self._handlers)

    def check_complete(self, required: Collection[MessageType]) -> None:
        """Require a handler for every type in ``required``.

        Raises:
            IncompleteRegistry: some have none (named in the message).
        """
        missing = sorted(t.value for t in set(required) - self._handlers.keys())
        if missing:
            raise IncompleteRegistry(f"no handler for message types it takes: {missing}")

    def bind(self, context: C) -> BoundHandlers:
        """The handlers bound to ``context`` (the agent)."""
        return BoundHandlers(
            MappingProxyType(
                {
                    message_type: _Bound(handler, context)
                    for message_type, handler in self._handlers.items()
                }
            )
        )


@dataclass(frozen=True, slots=True)
class _Bound(Generic[C]):
    handler: Handler[C, Any]
    context: C

    def __call__(self, inbound: Inbound[Any], work: UnitOfWork) -> Awaitable[None]:
        return self.handler(self.context, inbound, work)


@dataclass(frozen=True, slots=True)
class BoundHandlers:
    """Handlers bound to one agent, by message type."""

    by_type: Mapping[MessageType, BoundHandler]

    def get(self, message_type: MessageType) -> BoundHandler | None:
        """The handler of ``message_type``, if any."""
        return self.by_type.get(message_type)

    @property
    def types(self) -> frozenset[MessageType]:
        """The message types with a handler."""
        return frozenset(self.by_type)
