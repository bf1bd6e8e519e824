"""How her inbox decodes a message: from verified bytes to the pseudonym it is for.

The runtime's pipeline (:mod:`vrm_agent.inbox`) asks a
:class:`~vrm_agent.inbox.Reception` to run the library's pipeline on each
token (step 3). A vendor has one identity; she has one pseudonym per
counterparty and answers every stranger alike (spec §12, VRM-PRIV-012), so
:class:`BuyerReception` decides the keys and the audience like this:

1. nothing of the token is read before the library's limit-checked signing
   profile verified it (D8): the signature is verified with the keys of every
   party she contacted (:meth:`~reference_buyer.directory.Directory.contacted_resolver`;
   a key a known party rotated in is re-read, within bounds), and only the
   verified payload says who claims to have sent it;
2. the whole pipeline then runs in its order (spec §8, VRM-ENV-015) with the
   keys of that claimed sender only (spec §9.1) and, as audience, the
   pseudonym she uses with that sender if the message is addressed to it:
   for any other pseudonym (hers with someone else, or nobody's) the audience
   is one that matches nothing, so the answer is the same ``wrong-audience``
   whichever it was (:class:`UniformStrangers`);
3. a message POSTed to one relationship's reply address
   (``/vrm/inbox/{tag}``) is taken only for that relationship: for any other
   it is answered as for a stranger. Such a message, and one collected from
   a counterparty's mailbox, is first decoded directly with that
   counterparty's keys and that pseudonym (one signature verification); when
   that does not succeed, the answer is the one steps 1-2 give.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from reference_buyer.directory import Directory
from reference_buyer.pseudonyms import Pseudonym, Pseudonyms
from vrm_agent.inbox import Reception
from vrm_agent.strategies import Verifier
from vrm_protocol.codec import Received
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.keys import KeySet, key_resolver
from vrm_protocol.limits import Limits

__all__ = [
    "NO_SUCH_PSEUDONYM",
    "BuyerReception",
    "StrangerAnswer",
    "Strangers",
    "UniformStrangers",
]

#: The audience of a message addressed to none of her pseudonyms with its sender:
#: it matches nothing, so the pipeline answers ``wrong-audience`` (spec §9.2)
#: alike for every such message.
NO_SUCH_PSEUDONYM: Final = "urn:vrm:buyer-agent:no-such-pseudonym"


@dataclass(frozen=True, slots=True)
class StrangerAnswer:
    """How to judge a message addressed to none of her pseudonyms with its sender:
    the audience to decode it with, and a refusal to give once it decoded."""

    audience: str
    refusal: RemoteProtocolError | None = None


class Strangers(Protocol):
    """Answers a message addressed to none of her pseudonyms with its sender."""

    async def answer(self, to: Sequence[str], pseudonyms: Pseudonyms) -> StrangerAnswer:
        """How to judge it (``to``: the addressees it claims, from verified bytes).

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        ...


class UniformStrangers:
    """spec §12 (VRM-PRIV-012): such a message is answered alike whether it names
    her pseudonym with another party or a pseudonym nobody has, so no one learns
    which pseudonyms are hers."""

    async def answer(self, to: Sequence[str], pseudonyms: Pseudonyms) -> StrangerAnswer:
        """The audience that matches nothing, and no other refusal."""
        return StrangerAnswer(NO_SUCH_PSEUDONYM)


#: The parties she is in a relationship with (whose keys may be re-read).
Parties = Callable[[], Awaitable[Iterable[str]]]


class BuyerReception:
    """Her inbox's :class:`~vrm_agent.inbox.Reception` (see the module docstring).

    Args:
        directory: the keys of the parties she contacted.
        pseudonyms: her pseudonyms.
        limits: the receiving limits.
        strangers: how a message for none of her pseudonyms with its sender is
            answered (production: :class:`UniformStrangers`).
        in_relationship: the parties whose keys an unknown kid may re-read.
    """

    def __init__(
        self,
        directory: Directory,
        pseudonyms: Pseudonyms,
        limits: Limits,
        strangers: Strangers,
        in_relationship: Parties,
    ) -> None:
        self.directory = directory
        self.pseudonyms = pseudonyms
        self.limits = limits
        self.strangers = strangers
        self.in_relationship = in_relationship

    async def decode(self, token: bytes, now: datetime, verifier: Verifier) -> Received:
        """Steps 1 and 2 of the module docstring (her bare inbox).

        Raises:
            RemoteProtocolError: the first stage that refused the message.
            StoreUnavailable: the store cannot be read.
        """
        return await self._routed(token, now, verifier, tag=None)

    def tagged(self, tag: str) -> Reception:
        """The reception of one relationship's reply address (step 3)."""
        return _Tagged(self, tag)

    def mailbox_of(self, party: str) -> Reception:
        """The reception of what ``party``'s mailbox held for her (step 3)."""
        return _FromMailbox(self, party)

    async def direct(
        self, token: bytes, now: datetime, verifier: Verifier, pseudonym: Pseudonym
    ) -> Received | None:
        """The message decoded with ``pseudonym``'s counterparty's keys and as
        addressed to ``pseudonym``, if that succeeds and that counterparty sent
        it; else ``None`` (the routed answer is then the one to give).

        Raises:
            StoreUnavailable: the store cannot be read.
        """
        keys = await self.directory.keys_of(pseudonym.peer)
        try:
            received = verifier.decode(
                token,
                resolve_key=key_resolver(keys),
                receiver=pseudonym.identifier,
                now=now,
                limits=self.limits,
            )
        except RemoteProtocolError:
            return None
        return received if received.message.from_ == pseudonym.peer else None

    async def _routed(
        self, token: bytes, now: datetime, verifier: Verifier, *, tag: str | None
    ) -> Received:
        missing: list[str] = []
        try:
            verified = verifier.verify(
                token, resolve_key=self.directory.contacted_resolver(missing), limits=self.limits
            )
        except RemoteProtocolError as error:
            # A party she contacted may hold keys not in memory, or have rotated.
            if error.code is not ErrorCode.UNKNOWN_KEY or not missing:
                raise
            if not await self.directory.find(missing, in_relationship=self.in_relationship):
                raise
            verified = verifier.verify(
                token, resolve_key=self.directory.contacted_resolver([]), limits=self.limits
            )
        claimed = verified.document or {}
        sender, to = claimed.get("from"), claimed.get("to")
        addressees = [name for name in to if isinstance(name, str)] if isinstance(to, list) else []
        receiver = await self.pseudonyms.known(sender) if isinstance(sender, str) else None
        if receiver is not None and (
            receiver.identifier not in addressees
            or (tag is not None and receiver.record.reply_tag != tag)
        ):
            # Another relationship's address, or another pseudonym: a stranger's answer.
            receiver = None
        answer = (
            StrangerAnswer(receiver.identifier)
            if receiver is not None
            else await self.strangers.answer(addressees, self.pseudonyms)
        )
        keys = await self.directory.keys_of(sender) if isinstance(sender, str) else KeySet()
        received = verifier.decode(
            token,
            resolve_key=key_resolver(keys),
            receiver=answer.audience,
            now=now,
            limits=self.limits,
        )
        if answer.refusal is not None:
            raise answer.refusal
        return received


@dataclass(frozen=True, slots=True)
class _Tagged:
    """One relationship's reply address: its own messages only."""

    reception: BuyerReception
    tag: str

    async def decode(self, token: bytes, now: datetime, verifier: Verifier) -> Received:
        pseudonym = await self.reception.pseudonyms.by_tag(self.tag)
        if pseudonym is not None:
            received = await self.reception.direct(token, now, verifier, pseudonym)
            if received is not None:
                return received
        return await self.reception._routed(token, now, verifier, tag=self.tag)


@dataclass(frozen=True, slots=True)
class _FromMailbox:
    """What one counterparty's mailbox held for her."""

    reception: BuyerReception
    party: str

    async def decode(self, token: bytes, now: datetime, verifier: Verifier) -> Received:
        pseudonym = await self.reception.pseudonyms.known(self.party)
        if pseudonym is not None:
            received = await self.reception.direct(token, now, verifier, pseudonym)
            if received is not None:
                return received
        return await self.reception._routed(token, now, verifier, tag=None)
