"""The replaceable parts of the runtime: each step that a test-mode fault may weaken.

The runtime's pipeline calls a strategy object at each step whose judgement a
conformance self-test must be able to break on purpose (verify, judge a
replay, decide, receipt, charge a budget, handle, deliver, serve the
mailbox). :data:`PRODUCTION` holds the strategies every agent runs with;
:mod:`vrm_agent.faults` holds weakened ones that only test mode may install
(``--test-mode --fault NAME``). So the production path has no fault switch
in it: no ``if "name" in faults`` anywhere, only a call to whatever strategy
the agent was built with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Final, Protocol

from vrm_protocol.codec import Received, decode
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.http_binding import RateLimiter
from vrm_protocol.keys import KeyResolver
from vrm_protocol.ledger import LedgerFacts, RelationshipCore
from vrm_protocol.limits import Limits
from vrm_protocol.models import Message, MessageRef
from vrm_protocol.signing_profile import VerifiedJWS, verify_compact
from vrm_protocol.state_machine import Direction, Transition, decide
from vrm_protocol.vocabulary import MessageType, Role

if TYPE_CHECKING:
    from vrm_agent.registry import BoundHandler
    from vrm_agent.store import MailboxEntry

__all__ = [
    "PRODUCTION",
    "AddressBudget",
    "Admission",
    "Decider",
    "DeliveryOptions",
    "HandlerWrapper",
    "LibraryVerifier",
    "MailboxFilter",
    "Participation",
    "ReceiptPolicy",
    "ReplayPolicy",
    "ReplayVerdict",
    "StateMachine",
    "Strategies",
    "StrictReplay",
    "TrueReceipts",
    "Verifier",
]


# -- verification (pipeline step 3) ----------------------------------------------------------------


class Verifier(Protocol):
    """The signing profile and the inbound pipeline of the library."""

    def verify(self, token: bytes, *, resolve_key: KeyResolver, limits: Limits) -> VerifiedJWS:
        """Limits, header, key, signature, canonical payload (spec §8.4).

        Raises:
            RemoteProtocolError: the first stage that refused the token.
        """
        ...

    def decode(
        self,
        token: bytes,
        *,
        resolve_key: KeyResolver,
        receiver: str | None,
        now: datetime,
        limits: Limits,
    ) -> Received:
        """The whole inbound pipeline but replay (spec §8-§9.2).

        Raises:
            RemoteProtocolError: the first stage that refused the message.
        """
        ...


class LibraryVerifier:
    """The library's pipeline, unchanged: what every production agent runs."""

    def verify(self, token: bytes, *, resolve_key: KeyResolver, limits: Limits) -> VerifiedJWS:
        """:func:`vrm_protocol.signing_profile.verify_compact`."""
        return verify_compact(token, resolve_key=resolve_key, limits=limits)

    def decode(
        self,
        token: bytes,
        *,
        resolve_key: KeyResolver,
        receiver: str | None,
        now: datetime,
        limits: Limits,
    ) -> Received:
        """:func:`vrm_protocol.codec.decode` without a replay guard (replay is the store's)."""
        return decode(token, resolve_key=resolve_key, receiver=receiver, now=now, limits=limits)


# -- admission before verification (pipeline step 1) -----------------------------------------------


class Admission(Protocol):
    """What an inbound request is charged before anything of it is verified (spec §11.6)."""

    def before_body(self, remote: str | None, now: float, *, address: RateLimiter) -> None:
        """Charge what may be charged before the body is read (the peer's address).

        Raises:
            RemoteProtocolError: RATE_LIMITED.
        """
        ...

    def before_verification(self, token: bytes, now: float, *, sender: RateLimiter | None) -> None:
        """Charge what may be charged with the body read but nothing of it verified.

        Raises:
            RemoteProtocolError: RATE_LIMITED.
        """
        ...


class AddressBudget:
    """Only the peer's address is charged before the signature verified (spec
    §11.6, VRM-HTTP-018): a budget kept per key or sender is charged once the
    pipeline bound the key to ``from``, so junk naming a victim's key cannot
    spend the victim's budget. Nothing of the token is read here."""

    def before_body(self, remote: str | None, now: float, *, address: RateLimiter) -> None:
        """Charge the address.

        Raises:
            RemoteProtocolError: RATE_LIMITED.
        """
        address.check(remote or "unknown", now)

    def before_verification(self, token: bytes, now: float, *, sender: RateLimiter | None) -> None:
        """Nothing: the sender is charged once verified."""


# -- replay (pipeline step 4) ----------------------------------------------------------------------


class ReplayVerdict(Enum):
    """What to do with a message whose (sender, id) is already stored."""

    #: The identical message again: answer with the original receipt (spec §11.3).
    DUPLICATE = "duplicate"
    #: Another message under a used (sender, id): refuse it (spec §9.3).
    REPLAY = "replay"
    #: Process it as new without storing it (a test-mode fault only).
    PROCESS_UNSTORED = "process-unstored"


class ReplayPolicy(Protocol):
    """Judges a message whose (sender, id) the store already holds."""

    def judge(self, stored_digest: str, digest: str) -> ReplayVerdict:
        """The verdict for a message of ``digest`` whose (sender, id) holds ``stored_digest``."""
        ...


class StrictReplay:
    """spec §9.3: the same bytes are a resend; other bytes under a used id are a replay."""

    def judge(self, stored_digest: str, digest: str) -> ReplayVerdict:
        """DUPLICATE for the same digest, REPLAY for another."""
        return ReplayVerdict.DUPLICATE if stored_digest == digest else ReplayVerdict.REPLAY


# -- participation (pipeline step 4) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Participation:
    """Which relationship a message may act in (spec §7.3).

    A thread belongs to the relationship of whoever used it first; a parent,
    when the agent holds a message of that id, must be a message of this
    relationship. ``thread_must_be_known`` also refuses a thread the agent
    never saw (a buyer: vendors write only in threads she started, VRM-BUY-008);
    ``parent_in_same_thread`` requires the parent to be in the message's thread.
    ``checked`` false lets anything through (a test-mode fault only).
    """

    thread_must_be_known: bool = False
    parent_in_same_thread: bool = False
    checked: bool = True


# -- the decision (pipeline steps 5 and 7) ---------------------------------------------------------


class Decider(Protocol):
    """The state machine's decision (spec §7)."""

    def decide(
        self,
        core: RelationshipCore,
        message: Message,
        *,
        our_role: Role,
        our_id: str,
        peer_id: str,
        direction: Direction,
        facts: LedgerFacts,
        now: datetime,
        digest: str | None,
    ) -> Transition:
        """:func:`vrm_protocol.state_machine.decide`.

        Raises:
            LocalProtocolError, RemoteProtocolError: the message is refused.
        """
        ...


class StateMachine:
    """The library's state machine, unchanged."""

    def decide(
        self,
        core: RelationshipCore,
        message: Message,
        *,
        our_role: Role,
        our_id: str,
        peer_id: str,
        direction: Direction,
        facts: LedgerFacts,
        now: datetime,
        digest: str | None,
    ) -> Transition:
        """:func:`vrm_protocol.state_machine.decide`.

        Raises:
            LocalProtocolError, RemoteProtocolError: the message is refused.
        """
        return decide(
            core,
            message,
            our_role=our_role,
            our_id=our_id,
            peer_id=peer_id,
            direction=direction,
            facts=facts,
            now=now,
            digest=digest,
        )


# -- receipts (pipeline step 8) --------------------------------------------------------------------


class ReceiptPolicy(Protocol):
    """What a receipt says it acknowledges (spec §6.16, §11.3)."""

    def regarding(self, message_id: str, token: bytes, digest: str) -> MessageRef:
        """The ``messageRef`` the receipt binds."""
        ...


class TrueReceipts:
    """A receipt binds the id and the digest of the exact token received."""

    def regarding(self, message_id: str, token: bytes, digest: str) -> MessageRef:
        """``{id, digest}`` of the message received."""
        return MessageRef(id=message_id, digest=digest)


# -- handlers, delivery, mailbox -------------------------------------------------------------------

#: Wraps the handler of a message type (production: returns it unchanged).
HandlerWrapper = Callable[[MessageType, "BoundHandler"], "BoundHandler"]
#: Chooses the mailbox entries a poller is shown (production: all of them).
MailboxFilter = Callable[[Sequence["MailboxEntry"]], Sequence["MailboxEntry"]]


def _unwrapped(message_type: MessageType, handler: BoundHandler) -> BoundHandler:
    return handler


def _everything(entries: Sequence[MailboxEntry]) -> Sequence[MailboxEntry]:
    return entries


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """How the outbox POSTs (spec §11.8): a redirect is never followed."""

    follow_redirects: bool = False


def refuse_replay(message_id: str) -> RemoteProtocolError:
    """The refusal of another message under a used (sender, id) (spec §9.3)."""
    return RemoteProtocolError(
        ErrorCode.REPLAY,
        f"another message with id {message_id} was already received from this sender",
        path="/id",
    )


_LIBRARY_VERIFIER: Final = LibraryVerifier()
_ADDRESS_BUDGET: Final = AddressBudget()
_STRICT_REPLAY: Final = StrictReplay()
_PARTICIPATION: Final = Participation()
_STATE_MACHINE: Final = StateMachine()
_TRUE_RECEIPTS: Final = TrueReceipts()
_NO_REDIRECTS: Final = DeliveryOptions()


@dataclass(frozen=True, slots=True)
class Strategies:
    """The strategies an agent runs with (see the module docstring)."""

    verifier: Verifier = _LIBRARY_VERIFIER
    admission: Admission = _ADDRESS_BUDGET
    replay: ReplayPolicy = _STRICT_REPLAY
    participation: Participation = _PARTICIPATION
    decider: Decider = _STATE_MACHINE
    receipts: ReceiptPolicy = _TRUE_RECEIPTS
    wrap_handler: HandlerWrapper = _unwrapped
    delivery: DeliveryOptions = _NO_REDIRECTS
    mailbox: MailboxFilter = _everything

    def but(
        self,
        *,
        verifier: Verifier | None = None,
        admission: Admission | None = None,
        replay: ReplayPolicy | None = None,
        participation: Participation | None = None,
        decider: Decider | None = None,
        receipts: ReceiptPolicy | None = None,
        wrap_handler: HandlerWrapper | None = None,
        delivery: DeliveryOptions | None = None,
        mailbox: MailboxFilter | None = None,
    ) -> Strategies:
        """These strategies with the given ones replaced."""
        return replace(
            self,
            verifier=verifier or self.verifier,
            admission=admission or self.admission,
            replay=replay or self.replay,
            participation=participation or self.participation,
            decider=decider or self.decider,
            receipts=receipts or self.receipts,
            wrap_handler=wrap_handler or self.wrap_handler,
            delivery=delivery or self.delivery,
            mailbox=mailbox or self.mailbox,
        )


#: What every production agent runs with.
PRODUCTION: Strategies = Strategies()
