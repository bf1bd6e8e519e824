"""The message-type registry: every message type of the protocol as one unit.

Each module of this package is one message type (its transition rows, the
guard that checks the ledger, the records it reads, its spec section,
lifecycle steps and summary; its schema and model are found by its name).
:data:`MESSAGE_TYPES` collects them. Everything that used to list message
types derives from it: the state machine's table, the discovery document's
``accepts``/``sends`` (:func:`accepted_by`, :func:`sent_by`), the spec's
message sections and the conformance suite's peers. It is complete by
construction: importing the package fails if a type of
:class:`~vrm_protocol.vocabulary.MessageType` has no unit, or a unit's rows
clash with another's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from vrm_protocol.message_types import (
    access_grant,
    access_revocation,
    consent_change,
    consent_receipt,
    deal_confirmation,
    deal_refusal,
    exit_acknowledgement,
    exit_notice,
    offer,
    offer_acceptance,
    offer_decline,
    personal_rfi,
    personal_rfp,
    problem_report,
    receipt,
    service_notice,
    service_response,
    support_request,
    support_resolution,
    terms_assertion,
    terms_response,
)
from vrm_protocol.message_types._unit import (
    Draft,
    Guard,
    GuardRule,
    MessageTypeSpec,
    Move,
    QueryFor,
    Refusal,
    TransitionRow,
    rows_by_key,
)
from vrm_protocol.models import BaseMessage
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "MESSAGE_TYPES",
    "Draft",
    "Guard",
    "GuardRule",
    "MessageTypeSpec",
    "Move",
    "QueryFor",
    "Refusal",
    "TransitionRow",
    "accepted_by",
    "message_type_spec",
    "sent_by",
]

_UNITS = (
    personal_rfi,
    personal_rfp,
    offer,
    offer_acceptance,
    offer_decline,
    deal_confirmation,
    terms_assertion,
    terms_response,
    service_notice,
    service_response,
    support_request,
    support_resolution,
    exit_notice,
    exit_acknowledgement,
    problem_report,
    receipt,
    deal_refusal,
    access_grant,
    access_revocation,
    consent_change,
    consent_receipt,
)

#: Every message type's unit, in the order of the specification's sections.
MESSAGE_TYPES: Final[Mapping[MessageType, MessageTypeSpec[BaseMessage]]] = MappingProxyType(
    {unit.SPEC.type: unit.SPEC for unit in _UNITS}
)


def _check_registry() -> None:
    missing = set(MessageType) - set(MESSAGE_TYPES)
    if missing:
        raise ImportError(f"message types without a unit: {sorted(missing)}")
    sections = [spec.section for spec in MESSAGE_TYPES.values()]
    if len(set(sections)) != len(sections):
        raise ImportError("two message types claim the same spec section")
    for spec in MESSAGE_TYPES.values():
        declared = spec.model.model_fields["type"].annotation
        if getattr(declared, "__args__", None) != (spec.type.value,):
            raise ImportError(f"{spec.type}: its model {spec.model.__name__} is of another type")
    rows_by_key(MESSAGE_TYPES)  # raises on a clash


_check_registry()


def message_type_spec(message_type: MessageType | str) -> MessageTypeSpec[BaseMessage]:
    """The unit of ``message_type``.

    Raises:
        ValueError: not a message type of this protocol version.
    """
    return MESSAGE_TYPES[MessageType(message_type)]


def _types(role: Role, *, sells: bool, inbox: bool) -> frozenset[MessageType]:
    return frozenset(
        spec.type
        for spec in MESSAGE_TYPES.values()
        if role in spec.senders and (sells or not spec.sale) and not (inbox and spec.in_response)
    )


def accepted_by(role: Role, *, sells: bool = True) -> frozenset[MessageType]:
    """The types an agent of ``role`` takes in its inbox: what the other role may
    send it (spec §6, §11.1). ``sells=False`` for a party that makes no offers
    (a third party presenting terms)."""
    return _types(role.peer, sells=sells, inbox=True)


def sent_by(role: Role, *, sells: bool = True) -> frozenset[MessageType]:
    """The types an agent of ``role`` may send (receipts included)."""
    return _types(role, sells=sells, inbox=False)
