"""Her own terms, on her side (IEEE 7012 "MyTerms"; spec §6.70, §6.71).

She proffers an agreement of the MyTerms roster to a party (:func:`proffer`):
her move, from her first RFI on. The party answers with a ``terms-agreement``
bound to her proffer by its digest; her agent takes it only when it names the
agreement she proffered (:class:`~reference_buyer.myterms_rules.
AgreementRule`, VRM-MYT-004). Both signed messages stay in her journal: the
pair is the record of her terms with that party (:func:`my_terms`).

She joins a programme by her request (:func:`enrol`, spec §6.72), one the
party's discovery document lists; the party's terms for the programme answer
her enrolment, and she answers them as any terms.

The handlers are registered on :data:`reference_buyer.handlers.HANDLERS`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from reference_buyer.handlers import HANDLERS, _journal
from reference_buyer.outgoing import build
from reference_buyer.store import BreachRecord, DetailReceipted, DetailUpdate
from vrm_agent.inbox import Inbound, Reception, Sent
from vrm_agent.unit import UnitOfWork, outgoing, present
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.message_types.details_update import HOLDING
from vrm_protocol.models import (
    AgreementRef,
    DataItem,
    DetailsReceiptMessage,
    DetailsUpdateBody,
    ProblemReportBody,
    ProblemSubject,
    ProgrammeEnrolmentBody,
    TermsAgreementMessage,
    TermsAssertionMessage,
    TermsProfferBody,
    TermsProfferMessage,
)
from vrm_protocol.myterms import agreement
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

log = logging.getLogger(__name__)

__all__ = [
    "MyTermsRecord",
    "enrol",
    "listed_programmes",
    "my_terms",
    "on_refusal",
    "proffer",
    "update_details",
    "who_has",
]


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


@HANDLERS.on(TermsAssertionMessage)
async def on_terms_assertion(
    buyer: BuyerAgent, inbound: Inbound[TermsAssertionMessage], work: UnitOfWork
) -> None:
    """Terms are kept for her to answer (spec §6.7); a programme's terms must name
    her enrolment by the digest of the token she signed (spec §6.72, VRM-MYT-005):
    the state machine found the enrolment, its digest is hers to compare."""
    programme = inbound.message.body.programme
    if programme is not None:
        sent = await buyer.store.entry(programme.enrolment.id, direction=Direction.SENT)
        if sent is None or sent.peer != inbound.peer or sent.digest != programme.enrolment.digest:
            raise RemoteProtocolError(
                ErrorCode.REFERENCE_MISMATCH,
                "the programme's terms name her enrolment with a digest other than that of "
                "the enrolment sent",
                path="/body/programme/enrolment/digest",
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


async def listed_programmes(agent: BuyerAgent, peer: str) -> list[str]:
    """The codes of the programmes ``peer``'s discovery document lists (spec §6.72).

    Raises:
        LocalProtocolError: TEMPORARILY_UNAVAILABLE, the document cannot be fetched.
    """
    published = await agent.directory.discover(peer)
    listed = published.discovered.document.get("programmes")
    if not isinstance(listed, list):
        return []
    return [str(p["code"]) for p in listed if isinstance(p, dict) and "code" in p]


async def enrol(agent: BuyerAgent, peer: str, programme: str) -> Sent:
    """She asks to join ``programme`` of ``peer`` (spec §6.72): one its discovery
    document lists, in the relationship's latest thread. The party's terms for
    the programme answer it; she answers them as any terms (``answer_terms``).

    Raises:
        LocalProtocolError: REFERENCE_MISMATCH, the party lists no such programme;
            ILLEGAL_TRANSITION, no relationship in service with ``peer``.
        RemoteProtocolError: the party refused the enrolment.
    """
    if programme not in await listed_programmes(agent, peer):
        raise LocalProtocolError(
            ErrorCode.REFERENCE_MISMATCH, f"{peer} lists no programme {programme!r}"
        )
    history = await agent.store.history(peer=peer, include_refused=False)
    if not history:
        raise LocalProtocolError(ErrorCode.ILLEGAL_TRANSITION, f"no relationship with {peer}")
    body = build(ProgrammeEnrolmentBody, programme=programme)
    return await agent.sender.send(peer, outgoing(body, thread=history[-1].thread, parent=None))


async def on_refusal(
    agent: BuyerAgent, token: bytes, reception: Reception | None, error: RemoteProtocolError
) -> None:
    """A message she refused that breaches her terms (a notice that is not what it
    says it is, spec §6.9, VRM-MYT-007): she tells the sender with a problem
    report naming it by its digest, and records the breach with the report.

    The refusal stands whatever happens here: a message that cannot be decoded
    again, or a report the sender will not take, is logged and left.
    """
    if not agent.strategies.breaches.is_breach(error.code):
        return
    try:
        received = await (reception or agent.reception).decode(
            token, agent.clock.now(), agent.strategies.runtime.verifier
        )
        message = received.message
        peer = message.from_
        body = build(
            ProblemReportBody,
            regarding=ProblemSubject(id=message.id, digest=received.digest),
            code=error.code.value,
            title=error.code.info.title,
            detail=(error.detail or error.code.info.title)[:4000],
        )
        breach = BreachRecord(
            peer=peer,
            message_id=message.id,
            digest=received.digest,
            code=error.code.value,
            detail=(error.detail or "")[:1000],
            report_id=None,
            at=format_timestamp(agent.clock.now()),
        )
        reply = outgoing(body, thread=message.thread, parent=None)
        reply.writes.append(replace(breach, report_id=reply.id))
        await agent.sender.send(peer, reply)
    except ProtocolError as failure:
        log.warning("breach of her terms not reported: %s", failure)


@HANDLERS.on(DetailsReceiptMessage)
async def on_details_receipt(
    buyer: BuyerAgent, inbound: Inbound[DetailsReceiptMessage], work: UnitOfWork
) -> None:
    """The party holds her new details: the receipt names her update by the digest
    of the token she signed (spec §6.74, VRM-MYT-008); her store records who has
    the new value of which item."""
    body = inbound.message.body
    sent = await buyer.store.entry(body.update.id, direction=Direction.SENT)
    if sent is None or sent.peer != inbound.peer or sent.digest != body.update.digest:
        raise RemoteProtocolError(
            ErrorCode.REFERENCE_MISMATCH,
            "the receipt names her update with a digest other than that of the update sent",
            path="/body/update/digest",
        )
    _journal(inbound, work)
    work.write(
        DetailReceipted(
            update_id=body.update.id,
            receipt_id=inbound.id,
            items=tuple(body.held),
            at=format_timestamp(inbound.now),
        )
    )


#: The states in which a party may hold her details (spec §6.73).
_HOLDING: Final = frozenset(HOLDING)


async def update_details(
    agent: BuyerAgent, changes: Mapping[str, str], *, reason: str | None = None
) -> dict[str, Sent]:
    """She changes her details in one action (spec §6.73, seed 003): her profile
    takes the new values, and every relationship not exited whose party holds a
    changed item under her consent (her sharing log) is sent a details update
    with only the items it holds; no other party is. The updates sent, by party.

    Raises:
        LocalProtocolError: SCHEMA_INVALID, not a valid update.
        StoreUnavailable: the store cannot be read or written.
    """
    for category, value in changes.items():
        await agent.store.set_profile(category, value)
    sent: dict[str, Sent] = {}
    at = format_timestamp(agent.clock.now())
    for relationship in await agent.store.relationships():
        if relationship.core.state not in _HOLDING:
            continue
        peer = relationship.peer
        held = {record.category for record in await agent.store.shared_with(peer)}
        items = agent.strategies.details.items_for(list(changes), held)
        if not items:
            continue
        history = await agent.store.history(peer=peer, include_refused=False)
        body = build(
            DetailsUpdateBody,
            items=tuple(DataItem(item=item, value=changes[item]) for item in items),
            **present(reason=reason),
        )
        reply = outgoing(body, thread=history[-1].thread if history else None, parent=None)
        reply.writes.extend(
            DetailUpdate(peer=peer, update_id=reply.id, item=item, at=at) for item in items
        )
        try:
            sent[peer] = await agent.sender.send(peer, reply)
        except ProtocolError as failure:
            log.warning("details update to %s not sent: %s", peer[:80], failure)
    return sent


async def who_has(agent: BuyerAgent, item: str) -> dict[str, bool]:
    """For ``item``: each party she sent its latest value to, and whether its
    receipt says it holds it (spec §6.74)."""
    found: dict[str, bool] = {}
    for update in await agent.store.detail_updates(item):
        found[update.peer] = update.receipt_id is not None
    return found
