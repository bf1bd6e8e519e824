"""Delivery of her messages: a POST to the inbox the counterparty publishes, and its receipt.

Her agent delivers each message it sends at once and commits it only once
the counterparty took it (:meth:`vrm_agent.inbox.Pipeline.send`): a message
the counterparty refused, or that never reached it, leaves her relationship
as it was. :class:`Courier` makes the delivery under the rules every
connection of hers follows:

* the inbox is the one the counterparty's discovery document names on its
  own origin (D7), never an address a message named;
* the delivery policy of spec §11.8 (D6), applied by the runtime's HTTP client
  in its resolver: ``https``, or ``http`` to allow-listed hosts; no redirect
  is followed (a 3xx is a failed attempt);
* a retry budget (:class:`~vrm_agent.outbox.DeliveryBudget`): a few attempts
  per message, and a relationship whose counterparty holds no deal with her
  stops costing attempts after a run of failures (renewed once it has been
  left alone for :data:`BUDGET_WINDOW_SECONDS`): a party that never answers
  cannot make her agent hammer it. A resend of the same bytes is answered
  with the first receipt (spec §11.3), so retrying is safe;
* the answer is bounded in size, and must be the counterparty's signed
  receipt for exactly the bytes sent (spec §6.16); a refusal is its problem
  details' code.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from reference_buyer.directory import Directory
from vrm_agent.clock import Clock
from vrm_agent.net import (
    ATTEMPT_TIMEOUT_SECONDS,
    RECEIPT_MAX_BYTES,
    FetchRefused,
    post_message,
)
from vrm_agent.outbox import DeliveryBudget
from vrm_agent.store import ProtocolStore, StoredMessage
from vrm_protocol.codec import decode
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.http_binding import PROBLEM_MEDIA_TYPE, DeliveryPolicy, DeliveryRefused
from vrm_protocol.keys import key_resolver
from vrm_protocol.models import ReceiptMessage

__all__ = ["BUDGET_WINDOW_SECONDS", "BUYER_BUDGET", "RETRY_PAUSES_SECONDS", "Courier"]

#: Her agent's budget: three attempts per message, and twelve failures in a row
#: for a relationship whose counterparty holds no deal with her.
BUYER_BUDGET: Final = DeliveryBudget(attempts=3, stranger_attempts=3, stranger_failures=12)
#: How long a spent budget lasts: after this long without an attempt, the
#: relationship may cost attempts again (D6).
BUDGET_WINDOW_SECONDS: Final = 600.0
#: Pauses between the attempts of one message.
RETRY_PAUSES_SECONDS: Final = (0.2, 0.6)


def _refusal_of(peer: str, status: int, content_type: str, answer: bytes) -> RemoteProtocolError:
    """The error a counterparty's problem details name (``internal-error`` when unreadable)."""
    code, detail = ErrorCode.INTERNAL_ERROR, answer[:300].decode(errors="replace")
    if content_type.startswith(PROBLEM_MEDIA_TYPE):
        try:
            problem = json.loads(answer)
            code = ErrorCode(problem.get("code"))
            detail = str(problem.get("detail", detail))
        except (ValueError, TypeError, AttributeError, RecursionError):
            pass
    return RemoteProtocolError(code, f"{peer} refused the message ({status}): {detail}"[:500])


def _unavailable(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, detail[:500])


@dataclass
class Courier:
    """Delivers her messages (see the module docstring).

    Args:
        store: her store (whether a deal was made in the relationship).
        directory: where each counterparty's inbox and keys are.
        session: the HTTP client (every connection passes ``policy``).
        policy: where her agent may connect (D6).
        clock: the agent's clock.
        budget: the retry budget.
        attempt_timeout: the time bound of one attempt, answer included.
    """

    store: ProtocolStore
    directory: Directory
    session: aiohttp.ClientSession
    policy: DeliveryPolicy
    clock: Clock
    budget: DeliveryBudget = BUYER_BUDGET
    attempt_timeout: float = ATTEMPT_TIMEOUT_SECONDS
    #: Per counterparty: failed attempts in a row, and when the last one was.
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)

    async def deliver(self, message: StoredMessage) -> bytes:
        """POST ``message`` to its counterparty's inbox; its verified receipt.

        Raises:
            RemoteProtocolError: the counterparty refused it (its problem code);
                TEMPORARILY_UNAVAILABLE, it did not answer within the attempts
                and bounds, its answer is not its receipt for these bytes, the
                policy forbids its inbox, or the relationship's budget is spent.
            LocalProtocolError: TEMPORARILY_UNAVAILABLE, what it publishes
                cannot be fetched or is refused (D7).
            StoreUnavailable: the store cannot be read.
        """
        peer = message.peer
        inbox = await self.directory.inbox_of(peer)
        failures, last = self._failures.get(peer, (0, 0.0))
        if self.clock.monotonic() - last > BUDGET_WINDOW_SECONDS:
            failures = 0  # renewed once the peer has been left alone a while
        deal = (await self.store.delivery_standing(peer)).deal_seen
        if not deal and failures >= self.budget.stranger_failures:
            raise _unavailable(f"{peer} failed {failures} deliveries in a row: its budget is spent")
        limit = self.budget.attempts if deal else self.budget.stranger_attempts
        last_error = "no attempt"
        for attempt in range(limit):
            if attempt:
                await asyncio.sleep(
                    RETRY_PAUSES_SECONDS[min(attempt, len(RETRY_PAUSES_SECONDS)) - 1]
                )
            try:
                outcome = await post_message(
                    self.session,
                    self.policy,
                    inbox,
                    message.token,
                    time_bound=self.attempt_timeout,
                    max_answer_bytes=RECEIPT_MAX_BYTES,
                )
            except DeliveryRefused as refused:
                # spec §11.8: the policy forbids the inbox or its addresses.
                self._failures[peer] = (failures + attempt + 1, self.clock.monotonic())
                raise _unavailable(f"{inbox} may not be contacted: {refused}") from refused
            except FetchRefused as error:
                last_error = f"{inbox} did not answer: {error}"
                continue
            if outcome.status in (200, 202):
                break
            if (
                300 <= outcome.status < 400
                or outcome.status in (408, 425, 429)
                or (outcome.status >= 500)
            ):
                # A redirect is never followed: a failed attempt, like a busy inbox.
                last_error = f"{inbox} answered {outcome.status}"
                continue
            self._failures.pop(peer, None)
            raise _refusal_of(peer, outcome.status, outcome.content_type, outcome.body)
        else:
            self._failures[peer] = (failures + limit, self.clock.monotonic())
            raise _unavailable(last_error)
        self._failures.pop(peer, None)
        receipt = outcome.body.strip()
        await self._check_receipt(message, receipt)
        return receipt

    async def _check_receipt(self, message: StoredMessage, receipt: bytes) -> None:
        """The receipt must verify with the counterparty's keys, be addressed to her
        pseudonym, and bind exactly the bytes sent (spec §6.16, §11.3).

        Raises:
            RemoteProtocolError: it does not.
        """
        peer = message.peer
        for attempt in range(2):
            keys = await self.directory.keys_of(peer)
            try:
                received = decode(
                    receipt,
                    resolve_key=key_resolver(keys),
                    receiver=message.sender,
                    now=self.clock.now(),
                )
                break
            except RemoteProtocolError as error:
                # The counterparty may have rotated its keys: re-read them (bounded), once.
                if attempt or error.code is not ErrorCode.UNKNOWN_KEY:
                    raise
                if not await self.directory.refresh([peer]):
                    raise
        receipt_message = received.message
        if (
            not isinstance(receipt_message, ReceiptMessage)
            or receipt_message.from_ != peer
            or receipt_message.body.regarding.id != message.message_id
            or receipt_message.body.regarding.digest != message.digest
        ):
            raise RemoteProtocolError(
                ErrorCode.SCHEMA_INVALID,
                "the answer is not the counterparty's receipt for the exact bytes sent",
            )
