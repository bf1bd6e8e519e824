"""Her own terms, on her side (IEEE 7012 "MyTerms"; spec §6.70, §6.71).

She proffers an agreement of the MyTerms roster to a party (:func:`proffer`):
her move, from her first RFI on. The party answers with a ``terms-agreement``
bound to her proffer by its digest; her agent takes it only when it names the
agreement she proffered (:class:`~reference_buyer.myterms_rules.
AgreementRule`, VRM-MYT-004). Both signed messages stay in her journal: the
pair is the record of her terms with that party (:func:`my_terms`).

The handlers are registered on :data:`reference_buyer.handlers.HANDLERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reference_buyer.handlers import HANDLERS, _journal
from reference_buyer.outgoing import build
from vrm_agent.inbox import Inbound, Sent
from vrm_agent.unit import UnitOfWork, outgoing
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.models import (
    AgreementRef,
    TermsAgreementMessage,
    TermsProfferBody,
    TermsProfferMessage,
)
from vrm_protocol.myterms import agreement
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = ["MyTermsRecord", "my_terms", "proffer"]


@HANDLERS.on(TermsAgreementMessage)
async def on_terms_agreement(
    buyer: BuyerAgent, inbound: Inbound[TermsAgreementMessage], work: UnitOfWork
) -> None:
    """The party's answer names the agreement she proffered (spec §6.71,
    VRM-MYT-004); the state machine checked it names her proffer by its digest."""
    answer = inbound.message.body
    sent = await buyer.store.entry(answer.proffer.id, direction=Direction.SENT)
    if sent is None or sent.peer != inbound.peer or sent.digest != answer.proffer.digest:
        # spec §6.71 (VRM-MYT-002): her proffer by the digest of the token she signed.
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the answer names her proffer with a digest other than that of the proffer sent",
            path="/body/proffer/digest",
        )
    message = sent.model()
    buyer.strategies.myterms.check(
        answer, message.body if isinstance(message, TermsProfferMessage) else None
    )
    _journal(inbound, work)


async def proffer(agent: BuyerAgent, peer: str, agreement_id: str, version: str = "1.0") -> Sent:
    """She proffers the roster agreement ``agreement_id`` to ``peer`` (spec
    §6.70), in the relationship's latest thread.

    Raises:
        LocalProtocolError: SCHEMA_INVALID, not an agreement of the roster;
            ILLEGAL_TRANSITION, no relationship with ``peer`` (or she left it).
        RemoteProtocolError: the party refused the proffer.
    """
    known = agreement(agreement_id, version)
    if known is None:
        raise LocalProtocolError(
            ErrorCode.SCHEMA_INVALID, f"{agreement_id} {version} is not in the MyTerms roster"
        )
    history = await agent.store.history(peer=peer, include_refused=False)
    if not history:
        raise LocalProtocolError(ErrorCode.ILLEGAL_TRANSITION, f"no relationship with {peer}")
    body = build(
        TermsProfferBody,
        agreement=AgreementRef(id=known.id, version=known.version, digest=known.digest),
    )
    return await agent.sender.send(peer, outgoing(body, thread=history[-1].thread, parent=None))


@dataclass(frozen=True, slots=True)
class MyTermsRecord:
    """One proffer of hers and the party's answer, as her journal holds them."""

    peer: str
    agreement: str
    version: str
    proffer: str
    answer: str | None
    decision: str | None


async def my_terms(agent: BuyerAgent, peer: str | None = None) -> list[MyTermsRecord]:
    """Her proffers (to ``peer``, or to everyone) and the answers she took."""
    store = agent.store
    answers: dict[str, tuple[str, str]] = {}
    for entry in await store.history(
        peer=peer, type=MessageType.TERMS_AGREEMENT, include_refused=False
    ):
        message = entry.model()
        if entry.direction is Direction.RECEIVED and isinstance(message, TermsAgreementMessage):
            answers[message.body.proffer.id] = (message.id, message.body.decision)
    records = []
    for entry in await store.history(
        peer=peer, type=MessageType.TERMS_PROFFER, include_refused=False
    ):
        message = entry.model()
        if entry.direction is Direction.SENT and isinstance(message, TermsProfferMessage):
            answered = answers.get(message.id)
            records.append(
                MyTermsRecord(
                    peer=entry.peer,
                    agreement=message.body.agreement.id,
                    version=message.body.agreement.version,
                    proffer=message.id,
                    answer=answered[0] if answered else None,
                    decision=answered[1] if answered else None,
                )
            )
    return records
