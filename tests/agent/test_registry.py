"""The handler registry: one handler per message type, complete at start-up, and the
discovery document derived from the message-type registry."""

from __future__ import annotations

from typing import Any

import pytest

from vrm_agent.inbox import Inbound
from vrm_agent.registry import HandlerRegistry, IncompleteRegistry
from vrm_agent.unit import UnitOfWork
from vrm_protocol.message_types import accepted_by
from vrm_protocol.models import (
    OfferMessage,
    PersonalRfiBody,
    PersonalRfiMessage,
    ProblemReportMessage,
)
from vrm_protocol.vocabulary import MessageType, Role


async def _nothing(agent: object, inbound: Inbound[Any], work: UnitOfWork) -> None:
    return None


def test_a_type_the_role_takes_without_a_handler_stops_the_start() -> None:
    registry: HandlerRegistry[object] = HandlerRegistry()
    registry.on(PersonalRfiMessage)(_nothing)
    registry.record_only(ProblemReportMessage)
    with pytest.raises(IncompleteRegistry, match="offer-acceptance"):
        registry.check_complete(accepted_by(Role.VENDOR))
    registry.check_complete({MessageType.PERSONAL_RFI, MessageType.PROBLEM_REPORT})


def test_one_handler_per_type_and_only_for_message_models() -> None:
    registry: HandlerRegistry[object] = HandlerRegistry()
    registry.on(OfferMessage)(_nothing)
    with pytest.raises(ValueError, match="already has a handler"):
        registry.on(OfferMessage)(_nothing)
    with pytest.raises(TypeError):
        registry.on(PersonalRfiBody)  # type: ignore[type-var]
    bound = registry.bind(object())
    assert bound.types == {MessageType.OFFER}
    assert bound.get(MessageType.PERSONAL_RFI) is None
