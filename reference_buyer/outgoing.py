"""How one message of hers goes out, and what her actions read to compose it.

:class:`Sender` sends one message she decided to send (:mod:`reference_buyer.buying`,
:mod:`reference_buyer.owning`): under the pseudonym she uses with that party
(made on first contact, :mod:`reference_buyer.pseudonyms`), to the inbox the
party publishes (:mod:`reference_buyer.directory`), through the runtime
(:meth:`vrm_agent.inbox.Pipeline.send`: signed, decided by the state machine
as SENT, delivered by :mod:`reference_buyer.courier` or printed as a letter,
committed with its effects only once the party took it). Her journal line and,
for an exit notice, the exit awaiting its acknowledgement are committed with
it; an attempt the party refused is kept in her journal as what she tried.
Copies to several parties are decorrelated (spec §12): a random pause before
each, and distinct backdating offsets for their ``created``.

The functions below read her store for an action (the latest message of a
kind, an offer or a request she received) and build typed bodies (a model
that refuses what she would send is a ``schema-invalid`` refusal, never a
crash).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

from reference_buyer.config import BuyerConfig
from reference_buyer.courier import Courier
from reference_buyer.directory import Directory
from reference_buyer.letters import Letter, PostalRecipient, render_letter, write_letter
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.store import (
    BuyerStore,
    Channel,
    Entry,
    ExitRecord,
    Journal,
    OfferView,
    SharingRecord,
)
from vrm_agent.clock import Clock
from vrm_agent.files import DataDirError
from vrm_agent.inbox import Delivered, Pipeline, Sent
from vrm_agent.store import StoredMessage
from vrm_agent.unit import DomainWrite, Reply
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.ledger import RelationshipCore
from vrm_protocol.models import ExitNoticeMessage, PersonalRfpMessage, VRMModel
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

__all__ = [
    "LetterTo",
    "Sender",
    "build",
    "core",
    "has_deal",
    "journal_out",
    "latest",
    "received",
    "received_offer",
    "revise",
    "sharing_records",
]

T = TypeVar("T", bound=VRMModel)


def build(cls: type[T], /, **fields: Any) -> T:
    """``cls`` built from ``fields`` (Python names or wire names), validated.

    Raises:
        LocalProtocolError: SCHEMA_INVALID, what she would send is not valid.
    """
    try:
        return cls.model_validate(fields)
    except ValidationError as error:
        raise LocalProtocolError(
            ErrorCode.SCHEMA_INVALID, f"not a valid {cls.__name__}: {error}"[:500]
        ) from None


def revise(model: T, /, **changes: Any) -> T:
    """``model`` with ``changes``, validated again.

    Raises:
        LocalProtocolError: SCHEMA_INVALID.
    """
    current = {name: value for name, value in model if value is not None}
    return build(type(model), **{**current, **changes})


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "letter"


@dataclass(frozen=True, slots=True)
class LetterTo:
    """Where a letter goes (her RFP to a vendor that is not online), and where the
    printed letter is handed back."""

    recipient: PostalRecipient
    printed: dict[str, Letter]


def journal_out(
    stored: StoredMessage, channel: str, status: str, receipt: bytes | None = None
) -> Journal:
    """Her journal line for a message she sent."""
    return Journal(
        peer=stored.peer,
        sender=stored.sender,
        message_id=stored.message_id,
        type=stored.type,
        direction=Direction.SENT,
        channel=channel,
        status=status,
        thread=stored.thread,
        parent=stored.parent,
        at=stored.at,
        receipt=receipt,
    )


def sharing_records(
    clock: Clock,
    peer: str,
    identifier: str,
    categories: Iterable[str],
    message_id: str,
    terms: str | None,
    purposes: Sequence[str],
) -> list[DomainWrite]:
    """Her sharing log's lines: ``categories`` disclosed to ``peer`` in ``message_id``."""
    at = format_timestamp(clock.now())
    return [
        SharingRecord(peer, identifier, category, message_id, terms, tuple(purposes), at)
        for category in categories
    ]


class Sender:
    """Sends one message of hers (see the module docstring).

    Args:
        config: the agent's configuration (decorrelation, letters).
        store, pseudonyms, directory, courier, pipeline: her agent's parts.
        clock: the one clock.
    """

    def __init__(
        self,
        config: BuyerConfig,
        store: BuyerStore,
        pseudonyms: Pseudonyms,
        directory: Directory,
        courier: Courier,
        pipeline: Pipeline,
        clock: Clock,
    ) -> None:
        self.config = config
        self.store = store
        self.pseudonyms = pseudonyms
        self.directory = directory
        self.courier = courier
        self.pipeline = pipeline
        self.clock = clock
        self._rng = random.SystemRandom()

    async def send(
        self,
        peer: str,
        reply: Reply,
        *,
        backdate: int = 0,
        letter: LetterTo | None = None,
    ) -> Sent:
        """Sign, decide, deliver (POST, or print a letter) and commit one message.

        Raises:
            LocalProtocolError: the state machine refuses it, it is not valid, or
                ``peer`` cannot be reached as it publishes itself (D7).
            RemoteProtocolError: the peer refused it or did not take it.
            StoreUnavailable: the store cannot be read or written.
        """
        await self.pseudonyms.ensure(peer)
        if letter is None:
            await self.directory.discover(peer)

        async def deliver(stored: StoredMessage, model: Any) -> Delivered:
            if letter is not None:
                await self._print(letter, stored, model)
                return Delivered(None, self._sent_writes(stored, model, Channel.LETTER, "printed"))
            try:
                receipt = await self.courier.deliver(stored)
            except RemoteProtocolError as refusal:
                # Not part of the relationship, but part of what she tried.
                await self.store.record_refusal(
                    journal_out(stored, Channel.HTTP, f"refused:{refusal.code.value}"),
                    stored.token,
                )
                raise
            return Delivered(
                receipt, self._sent_writes(stored, model, Channel.HTTP, "delivered", receipt)
            )

        return await self.pipeline.send(
            peer, reply, deliver=deliver, backdate=timedelta(seconds=backdate)
        )

    def _sent_writes(
        self,
        stored: StoredMessage,
        model: Any,
        channel: str,
        status: str,
        receipt: bytes | None = None,
    ) -> tuple[DomainWrite, ...]:
        """Her records of a message the peer took: the journal line, and for an
        exit notice the exit awaiting its acknowledgement."""
        writes: list[DomainWrite] = [journal_out(stored, channel, status, receipt)]
        if isinstance(model, ExitNoticeMessage):
            writes.append(
                ExitRecord(
                    peer=stored.peer,
                    notice_id=stored.message_id,
                    notice_digest=stored.digest,
                    preferences=model.body.reengagement.model_dump(
                        mode="json", by_alias=True, exclude_none=True
                    ),
                    at=stored.at,
                )
            )
        return tuple(writes)

    async def _print(self, letter: LetterTo, stored: StoredMessage, model: Any) -> None:
        """Render and write the letter carrying ``stored`` (a personal RFP).

        Raises:
            LocalProtocolError: ILLEGAL_TRANSITION, only an RFP goes by post;
                TEMPORARILY_UNAVAILABLE, the letter cannot be written.
        """
        if not isinstance(model, PersonalRfpMessage):
            raise LocalProtocolError(
                ErrorCode.ILLEGAL_TRANSITION, "only a personal RFP is sent by post"
            )
        rendered = render_letter(
            model,
            stored.token,
            recipient=letter.recipient,
            reply_address=self.config.reply_address,
            date=self.clock.now().date().isoformat(),
        )
        try:
            await asyncio.to_thread(
                write_letter, rendered, self.config.letters, _slug(letter.recipient.name)
            )
        except (OSError, DataDirError) as error:
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"the letter cannot be written: {error}"
            ) from error
        letter.printed[letter.recipient.party_id] = rendered

    async def pause(self) -> None:
        """A random pause before one copy of a message sent to several parties
        (spec §12: copies are not sent in the same instant)."""
        spread = self.config.decorrelation.spread_seconds
        if spread > 0:
            await asyncio.sleep(self._rng.uniform(0, spread))

    def offsets(self, count: int) -> list[int]:
        return self.config.decorrelation.offsets(count, self._rng)


# -- what her actions read ---------------------------------------------------------------------


async def core(store: BuyerStore, peer: str) -> RelationshipCore:
    """The relationship's core with ``peer`` (a new one's when there is none).

    Raises:
        StoreUnavailable: the store cannot be read.
    """
    record = await store.relationship(peer)
    return record.core if record is not None else RelationshipCore()


async def has_deal(store: BuyerStore, peer: str) -> bool:
    """Whether she has accepted an offer of ``peer`` (and not exited since)."""
    return (await core(store, peer)).accepted_offer is not None


async def latest(
    store: BuyerStore, peer: str, message_type: MessageType, direction: Direction
) -> Entry | None:
    """The latest message of ``message_type`` sent or received with ``peer``."""
    found = [
        entry
        for entry in await store.history(peer=peer, type=message_type, include_refused=False)
        if entry.direction is direction
    ]
    return found[-1] if found else None


async def received_offer(store: BuyerStore, offer_id: str) -> OfferView:
    """The offer ``offer_id`` she received.

    Raises:
        LocalProtocolError: UNKNOWN_OFFER, she received none of that id.
    """
    view = await store.offer_view(offer_id)
    if view is None or view.entry.direction is not Direction.RECEIVED:
        raise LocalProtocolError(ErrorCode.UNKNOWN_OFFER, f"no offer {offer_id} was received")
    return view


async def received(store: BuyerStore, message_id: str, message_type: MessageType) -> Entry:
    """The signed message ``message_id`` of ``message_type`` she received.

    Raises:
        LocalProtocolError: ILLEGAL_TRANSITION, she received none.
    """
    entry = await store.entry(message_id, direction=Direction.RECEIVED)
    if entry is None or entry.type is not message_type or entry.token is None:
        raise LocalProtocolError(
            ErrorCode.ILLEGAL_TRANSITION, f"no {message_type.value} {message_id} was received"
        )
    return entry
