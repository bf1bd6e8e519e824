"""Fault strategies: deliberately weakened parts, for the conformance suite's self-tests.

A conformance suite that never fails proves nothing: its own tests start a
reference agent with one fault (``serve --test-mode --fault NAME``) and show
that the check named for it fails. Each fault here is a *strategy* that
replaces one part of :class:`~vrm_agent.strategies.Strategies` (a verifier
whose keys accept any signature, a replay policy that lets a replay through,
a decider whose clock runs back, ...). The production pipeline calls
whichever strategy it was built with and never asks whether a fault is on.

Each weakened part feeds the library's normal pipeline something that lets
exactly one defect through, so every other stage still judges the message.

An agent lists its faults in a :class:`FaultCatalogue` (name, description,
how it changes the agent's strategies); :meth:`FaultCatalogue.apply` refuses
every fault outside test mode, so a production agent cannot be started
broken by accident.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from vrm_agent.store import MailboxEntry
from vrm_agent.strategies import (
    Admission,
    Decider,
    ReplayVerdict,
    Verifier,
)
from vrm_protocol.canonical import b64url_decode, b64url_encode, message_digest
from vrm_protocol.codec import Received
from vrm_protocol.errors import ErrorCode, ProtocolError, RemoteProtocolError
from vrm_protocol.http_binding import RateLimiter
from vrm_protocol.keys import KeyResolver, VerifyingKey
from vrm_protocol.ledger import LedgerFacts, RelationshipCore
from vrm_protocol.limits import Limits
from vrm_protocol.models import Message, MessageRef, OfferAcceptanceMessage
from vrm_protocol.signing_profile import VerifiedJWS
from vrm_protocol.state_machine import Direction, Transition
from vrm_protocol.vocabulary import MessageType, Role

__all__ = [
    "AlgNoneAccepted",
    "AudienceUnchecked",
    "ExpiredOffersHonoured",
    "Fault",
    "FaultCatalogue",
    "FaultError",
    "FreshnessWaived",
    "KeyBudgetBeforeVerification",
    "RefusalsWaived",
    "ReplaysProcessed",
    "UncheckedSignatures",
    "WrongReceiptDigest",
    "announces_alg_none",
    "header_kid",
    "only_never_posted",
    "reframed_with_key_alg",
    "signature_not_checked",
]

S = TypeVar("S")


class FaultError(ValueError):
    """A fault was asked for where it is not allowed, or does not exist."""


@dataclass(frozen=True, slots=True)
class Fault(Generic[S]):
    """One fault of an agent: what it does wrong (and the check that must catch it,
    named in the description), and how it changes the agent's strategies ``S``."""

    name: str
    description: str
    apply: Callable[[S], S]


class FaultCatalogue(Generic[S]):
    """The faults an agent offers, by name."""

    def __init__(self, faults: Iterable[Fault[S]]) -> None:
        self._faults = {fault.name: fault for fault in faults}

    @property
    def descriptions(self) -> Mapping[str, str]:
        """Fault name -> what the agent then does wrong."""
        return {name: fault.description for name, fault in self._faults.items()}

    def check(self, names: Iterable[str], *, test_mode: bool) -> frozenset[str]:
        """Validate fault names.

        Raises:
            FaultError: an unknown name, or any fault outside test mode.
        """
        chosen = frozenset(names)
        unknown = sorted(chosen - self._faults.keys())
        if unknown:
            raise FaultError(f"unknown fault(s) {unknown}; known: {sorted(self._faults)}")
        if chosen and not test_mode:
            raise FaultError("fault switches are allowed only with --test-mode")
        return chosen

    def apply(self, strategies: S, names: Iterable[str], *, test_mode: bool) -> S:
        """``strategies`` with each named fault applied (in name order).

        Raises:
            FaultError: as :meth:`check`.
        """
        for name in sorted(self.check(names, test_mode=test_mode)):
            strategies = self._faults[name].apply(strategies)
        return strategies


# -- weakened verification ----------------------------------------------------------------------


class _AnySignatureKey(VerifyingKey):
    """A public key whose ``verify`` accepts any signature (faults only)."""

    def verify(self, signing_input: bytes, signature: bytes) -> None:
        """Accept every signature: the signature stage (spec §8.4) is skipped."""
        return None


def signature_not_checked(resolve: KeyResolver) -> KeyResolver:
    """``resolve``, but every key it finds accepts any signature. Key lookup
    itself (``unknown-key``) still applies."""

    def resolve_without_checking(kid: str) -> VerifyingKey:
        key = resolve(kid)
        members = {item.name: getattr(key, item.name) for item in dataclasses.fields(key)}
        return _AnySignatureKey(**members)

    return resolve_without_checking


def _header(token: bytes) -> dict[str, object] | None:
    segment = token.split(b".", 1)[0]
    try:
        header = json.loads(b64url_decode(segment))
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def header_kid(token: bytes) -> str | None:
    """The header's ``kid``, read before the pipeline (what a fault does wrong)."""
    header = _header(token)
    kid = header.get("kid") if header is not None else None
    return kid if isinstance(kid, str) else None


def announces_alg_none(token: bytes) -> bool:
    """Whether the token's protected header names ``alg`` none, in any letter case."""
    header = _header(token)
    alg = header.get("alg") if header is not None else None
    return isinstance(alg, str) and alg.lower() == "none"


def reframed_with_key_alg(token: bytes, resolve: KeyResolver) -> bytes:
    """``token`` with its header's ``alg`` replaced by the algorithm of the key its
    ``kid`` names, so that the rest of the pipeline judges it as a signed message.

    Raises:
        RemoteProtocolError: UNKNOWN_KEY (from ``resolve``).
        ValueError: the token has no JSON object header or no string ``kid``.
    """
    header = _header(token)
    if header is None or not isinstance(header.get("kid"), str):
        raise ValueError("the token has no header with a kid")
    key = resolve(str(header["kid"]))
    header["alg"] = key.alg
    _, rest = token.split(b".", 1)
    return b64url_encode(json.dumps(header).encode()).encode("ascii") + b"." + rest


@dataclass(frozen=True, slots=True)
class UncheckedSignatures:
    """Takes a message whose signature does not verify (every other stage judges it)."""

    inner: Verifier

    def verify(self, token: bytes, *, resolve_key: KeyResolver, limits: Limits) -> VerifiedJWS:
        """The inner verification with keys that accept any signature."""
        resolve = signature_not_checked(resolve_key)
        return self.inner.verify(token, resolve_key=resolve, limits=limits)

    def decode(
        self,
        token: bytes,
        *,
        resolve_key: KeyResolver,
        receiver: str | None,
        now: datetime,
        limits: Limits,
    ) -> Received:
        """The inner pipeline with keys that accept any signature."""
        return self.inner.decode(
            token,
            resolve_key=signature_not_checked(resolve_key),
            receiver=receiver,
            now=now,
            limits=limits,
        )


@dataclass(frozen=True, slots=True)
class AlgNoneAccepted:
    """Takes a token whose header says ``alg`` none (any letter case) as if signed
    with the sender's key; any other token goes to the inner verifier."""

    inner: Verifier

    def _reframed(self, token: bytes, resolve_key: KeyResolver) -> bytes:
        try:
            return reframed_with_key_alg(token, resolve_key)
        except ValueError as error:
            raise RemoteProtocolError(ErrorCode.MALFORMED_JWS, str(error)) from error

    def verify(self, token: bytes, *, resolve_key: KeyResolver, limits: Limits) -> VerifiedJWS:
        """alg none: reframed and checked without the signature; else the inner verifier."""
        if not announces_alg_none(token):
            return self.inner.verify(token, resolve_key=resolve_key, limits=limits)
        return self.inner.verify(
            self._reframed(token, resolve_key),
            resolve_key=signature_not_checked(resolve_key),
            limits=limits,
        )

    def decode(
        self,
        token: bytes,
        *,
        resolve_key: KeyResolver,
        receiver: str | None,
        now: datetime,
        limits: Limits,
    ) -> Received:
        """alg none: reframed and decoded without the signature; else the inner pipeline.

        The digest stays that of the token as received."""
        if not announces_alg_none(token):
            return self.inner.decode(
                token, resolve_key=resolve_key, receiver=receiver, now=now, limits=limits
            )
        received = self.inner.decode(
            self._reframed(token, resolve_key),
            resolve_key=signature_not_checked(resolve_key),
            receiver=receiver,
            now=now,
            limits=limits,
        )
        return dataclasses.replace(received, token=token, digest=message_digest(token))


@dataclass(frozen=True, slots=True)
class AudienceUnchecked:
    """Takes messages addressed to another party (the audience stage is skipped)."""

    inner: Verifier

    def verify(self, token: bytes, *, resolve_key: KeyResolver, limits: Limits) -> VerifiedJWS:
        """The inner verification."""
        return self.inner.verify(token, resolve_key=resolve_key, limits=limits)

    def decode(
        self,
        token: bytes,
        *,
        resolve_key: KeyResolver,
        receiver: str | None,
        now: datetime,
        limits: Limits,
    ) -> Received:
        """The inner pipeline without an audience."""
        return self.inner.decode(
            token, resolve_key=resolve_key, receiver=None, now=now, limits=limits
        )


# -- weakened judgements ------------------------------------------------------------------------


class ReplaysProcessed:
    """Processes another message under a used (sender, id) as new (and does not keep it)."""

    def judge(self, stored_digest: str, digest: str) -> ReplayVerdict:
        """DUPLICATE for the same digest, PROCESS_UNSTORED for another."""
        if stored_digest == digest:
            return ReplayVerdict.DUPLICATE
        return ReplayVerdict.PROCESS_UNSTORED


class WrongReceiptDigest:
    """Receipts name a digest other than the message's."""

    def regarding(self, message_id: str, token: bytes, digest: str) -> MessageRef:
        """The id, with the digest of other bytes."""
        return MessageRef(id=message_id, digest=message_digest(b"not " + token))


@dataclass(frozen=True, slots=True)
class KeyBudgetBeforeVerification:
    """Charges the per-key budget by the header's ``kid`` before the signature is
    verified, so junk naming a victim's key spends the victim's budget."""

    inner: Admission

    def before_body(self, remote: str | None, now: float, *, address: RateLimiter) -> None:
        """The inner charge.

        Raises:
            RemoteProtocolError: RATE_LIMITED.
        """
        self.inner.before_body(remote, now, address=address)

    def before_verification(self, token: bytes, now: float, *, sender: RateLimiter | None) -> None:
        """The inner charge, then the header's kid's budget.

        Raises:
            RemoteProtocolError: RATE_LIMITED.
        """
        self.inner.before_verification(token, now, sender=sender)
        kid = header_kid(token)
        if kid is not None and sender is not None:
            sender.check(kid, now)


@dataclass(frozen=True, slots=True)
class ExpiredOffersHonoured:
    """Honours an acceptance of an offer past its ``validUntil``: the decision
    about an acceptance is taken as of just before the offer ended."""

    inner: Decider

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
        """The inner decision, its clock turned back for an acceptance.

        Raises:
            LocalProtocolError, RemoteProtocolError: as the inner decider.
        """
        if isinstance(message, OfferAcceptanceMessage):
            record = facts.offers.get(message.body.offer.id)
            if record is not None:
                now = min(now, record.valid_until)
        return self.inner.decide(
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


def only_never_posted(entries: Sequence[MailboxEntry]) -> Sequence[MailboxEntry]:
    """A mailbox that keeps only what was not POSTed to a ``replyTo`` inbox."""
    return [entry for entry in entries if entry.inbox is None]


@dataclass(frozen=True, slots=True)
class RefusalsWaived:
    """Takes (or sends) a message of ``message_type`` that the state machine
    refuses with one of ``codes``, as if the move were allowed, changing nothing."""

    inner: Decider
    message_type: MessageType
    codes: frozenset[ErrorCode]

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
        try:
            return self.inner.decide(
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
        except ProtocolError as error:
            # ``message.type`` is the wire string; the registry's enum equals it.
            if message.type != self.message_type or error.code not in self.codes:
                raise
            return Transition(
                message_type=self.message_type,
                message_id=message.id,
                direction=direction,
                before=core.state,
                state=core.state,
                core=core,
                effects=(),
                row=None,
            )


def _created(token: bytes) -> datetime | None:
    """The ``created`` instant a token's payload claims (read unverified), if any."""
    try:
        payload = json.loads(b64url_decode(token.split(b".")[1].decode("ascii")))
        return datetime.fromisoformat(str(payload["created"]).replace("Z", "+00:00"))
    except (IndexError, KeyError, TypeError, ValueError, UnicodeDecodeError):
        return None


@dataclass(frozen=True, slots=True)
class FreshnessWaived:
    """Takes a message the inner pipeline refuses with one of ``codes``
    (``message-expired``, ``message-not-yet-valid``) as if the clock stood at
    the message's own ``created``: every other check still applies."""

    inner: Verifier
    codes: frozenset[ErrorCode]

    def verify(self, token: bytes, *, resolve_key: KeyResolver, limits: Limits) -> VerifiedJWS:
        """The inner verifier (freshness is not judged here)."""
        return self.inner.verify(token, resolve_key=resolve_key, limits=limits)

    def decode(
        self,
        token: bytes,
        *,
        resolve_key: KeyResolver,
        receiver: str | None,
        now: datetime,
        limits: Limits,
    ) -> Received:
        """The inner pipeline; refused for freshness, again at the message's ``created``.

        Raises:
            RemoteProtocolError: as the inner pipeline, freshness aside.
        """
        try:
            return self.inner.decode(
                token, resolve_key=resolve_key, receiver=receiver, now=now, limits=limits
            )
        except RemoteProtocolError as error:
            created = _created(token)
            if error.code not in self.codes or created is None:
                raise
            return self.inner.decode(
                token, resolve_key=resolve_key, receiver=receiver, now=created, limits=limits
            )
