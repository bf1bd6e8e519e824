"""A co-decision-maker with his own agent (spec §10.2, §11.11; seed 000 step 3).

Every reference buyer agent plays both parts:

* *asking* (her agent): :meth:`CoDecision.enrol` asks his agent, once per
  vendor, for the identifier he approves under in that relationship (his own
  pairwise ``did:jwk``: one id in every copy of her RFP would link them,
  VRM-PRIV-002), which her RFP names in its ``approval-required`` condition;
  :meth:`CoDecision.ask` sends him the request for one offer (bound to the
  offer's digest) with a reply inbox of its own; :meth:`CoDecision.take_answer`
  judges what comes back there (VRM-CODEC-004) and keeps the approval for the
  acceptance (:meth:`CoDecision.approvals_for`). Her agent never holds his key
  and never signs for him (VRM-BUY-011);
* *approving* (his agent): :meth:`CoDecision.receive` verifies a request
  POSTed to ``/vrm/approvals`` and keeps it for him (VRM-CODEC-002);
  :meth:`CoDecision.decide` signs his approval (or refusal) with his own key
  for that relationship and posts it to her reply inbox (VRM-CODEC-003).

Every POST goes through the delivery policy of spec §11.8 and is bounded in
time and in the size of the answer read (D6, D7), as every delivery is.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson

from reference_buyer.approval_answers import VERIFIED_ANSWERS, AnswerJudge
from reference_buyer.config import BuyerConfig
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.store import SqliteBuyerStore
from vrm_agent.clock import Clock
from vrm_agent.net import FetchRefused, post_message
from vrm_protocol.approval_requests import (
    APPROVAL_REPLIES_PATH,
    APPROVALS_PATH,
    ApprovalRequest,
    issue_approval,
    issue_approval_refusal,
    issue_approval_request,
    verify_approval_request,
)
from vrm_protocol.errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.http_binding import DeliveryRefused

__all__ = ["APPROVER_PREFIX", "CoDecision", "Decision"]

#: His pairwise identities are kept with the pseudonyms, under this prefix and
#: her pseudonym: never a counterparty of his own (no relationship, no inbox).
APPROVER_PREFIX: Final = "co-decision:"
#: An answer to a request or an enrolment is a few hundred bytes.
ANSWER_MAX_BYTES: Final = 16 * 1024


@dataclass(frozen=True, slots=True)
class Decision:
    """What his agent did with a request: approved or refused, and where it went."""

    request: str
    approved: bool
    delivered: bool


class CoDecision:
    """Both parts of the co-decision exchange (see the module docstring)."""

    def __init__(
        self,
        config: BuyerConfig,
        store: SqliteBuyerStore,
        pseudonyms: Pseudonyms,
        session: aiohttp.ClientSession,
        clock: Clock,
        *,
        answers: AnswerJudge = VERIFIED_ANSWERS,
        approve_at_once: bool = False,
    ) -> None:
        self.answers = answers
        self.approve_at_once = approve_at_once
        self._tasks: set[asyncio.Task[Decision]] = set()
        self.config = config
        self.store = store
        self.pseudonyms = pseudonyms
        self.session = session
        self.clock = clock

    # -- asking (her agent) ----------------------------------------------------------------------

    async def _post(self, url: str, token: bytes) -> dict[str, Any]:
        """POST ``token`` under the delivery policy; the JSON answer (bounded).

        Raises:
            LocalProtocolError: TEMPORARILY_UNAVAILABLE, the agent cannot be
                reached or refused the request.
        """
        try:
            outcome = await post_message(
                self.session,
                self.config.delivery_policy,
                url,
                token,
                time_bound=self.config.fetch_timeout,
                max_answer_bytes=ANSWER_MAX_BYTES,
            )
        except (DeliveryRefused, FetchRefused) as error:
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, f"{url} cannot be reached: {error}"
            ) from error
        try:
            answer = orjson.loads(outcome.body) if outcome.body else {}
        except orjson.JSONDecodeError:
            answer = {}
        if outcome.status not in (200, 202) or not isinstance(answer, dict):
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                f"{url} answered {outcome.status}: {str(answer)[:300]}",
            )
        return answer

    async def enrol(self, vendor: str, agent: str) -> str:
        """His identifier for her relationship with ``vendor``, asked of his agent
        at ``agent`` (to be named in her RFP's ``approval-required`` condition).

        Raises:
            LocalProtocolError: his agent cannot be reached, or answered no
                ``did:jwk``.
        """
        pseudonym = await self.pseudonyms.ensure(vendor)
        _, token = issue_approval_request(
            key=pseudonym.identity.signing_key,
            requester=pseudonym.identifier,
            agent=agent.rstrip("/"),
            vendor=vendor,
            now=self.clock.now(),
        )
        answer = await self._post(agent.rstrip("/") + APPROVALS_PATH, token)
        approver = answer.get("approver")
        if not isinstance(approver, str) or not approver.startswith("did:jwk:"):
            raise LocalProtocolError(
                ErrorCode.TEMPORARILY_UNAVAILABLE, "his agent named no did:jwk to approve under"
            )
        return approver

    async def ask(self, offer: Mapping[str, str], *, vendor: str, agent: str, summary: str) -> str:
        """Ask his agent at ``agent`` to approve the offer ``offer`` (a messageRef)
        of ``vendor``; the request's id. His answer arrives at the reply inbox.

        Raises:
            LocalProtocolError: INVALID_REQUEST without an inbox of her own;
                TEMPORARILY_UNAVAILABLE, his agent cannot be reached.
        """
        party = self.config.party_id
        if party is None:
            raise LocalProtocolError(
                ErrorCode.INVALID_REQUEST, "her agent has no address for his answer"
            )
        pseudonym = await self.pseudonyms.ensure(vendor)
        tag = secrets.token_urlsafe(24)
        jti, token = issue_approval_request(
            key=pseudonym.identity.signing_key,
            requester=pseudonym.identifier,
            agent=agent.rstrip("/"),
            vendor=vendor,
            now=self.clock.now(),
            reply_to=f"{party}{APPROVAL_REPLIES_PATH}/{tag}",
            offer=offer,
            summary=summary,
        )
        data = {
            "vendor": vendor,
            "agent": agent.rstrip("/"),
            "requester": pseudonym.identifier,
            "offer": dict(offer),
            "summary": summary,
        }
        await self.store.add_approval_request(
            jti=jti, side="asked", reply_tag=tag, data=data, at=format_timestamp(self.clock.now())
        )
        answer = await self._post(agent.rstrip("/") + APPROVALS_PATH, token)
        approver = answer.get("approver")
        if isinstance(approver, str):
            data["approver"] = approver
            await self._remember_approver(jti, approver)
        return jti

    async def _remember_approver(self, jti: str, approver: str) -> None:
        rows = await self.store.approval_requests(side="asked", jti=jti)
        if rows and "approver" not in rows[0]["data"]:
            # The identifier he will sign with, kept with the request: his
            # answer is judged against it (and against her condition).
            await self.store.update_approval_request_data(
                jti, {**rows[0]["data"], "approver": approver}
            )

    async def take_answer(self, tag: str, token: bytes) -> dict[str, Any]:
        """His answer POSTed to the reply inbox ``tag`` (spec §10.2, VRM-CODEC-004).

        Raises:
            RemoteProtocolError: NOT_FOUND for an unknown inbox; ATTESTATION_INVALID
                (or the profile's codes) for an answer she cannot use;
                INVALID_REQUEST for an answer other than the one already taken.
        """
        rows = await self.store.approval_requests(side="asked", reply_tag=tag)
        if not rows:
            raise RemoteProtocolError(ErrorCode.NOT_FOUND, "no approval request answers here")
        row = rows[0]
        data = row["data"]
        approver = data.get("approver")
        if not isinstance(approver, str):
            raise RemoteProtocolError(
                ErrorCode.ATTESTATION_INVALID, "she does not know whose answer this would be"
            )
        answer = self.answers.judge(
            token,
            approver=approver,
            requester=data["requester"],
            vendor=data["vendor"],
            offer=data["offer"],
            request_jti=row["jti"],
            now=self.clock.now(),
        )
        status = "approved" if answer.approved else "refused"
        recorded = {"approval": answer.approval} if answer.approved else {"reason": answer.reason}
        if not await self.store.answer_approval_request(row["jti"], status=status, answer=recorded):
            if row["status"] == status:
                return {"request": row["jti"], "status": status}
            raise RemoteProtocolError(
                ErrorCode.INVALID_REQUEST, f"the request was {row['status']} already"
            )
        return {"request": row["jti"], "status": status}

    async def asked(self, jti: str | None = None) -> list[dict[str, Any]]:
        """The requests she sent and their answers."""
        return await self.store.approval_requests(side="asked", jti=jti)

    async def approvals_for(self, offer_id: str) -> list[dict[str, str]]:
        """The approvals he gave of the offer ``offer_id`` (to carry in her acceptance)."""
        return [
            row["answer"]["approval"]
            for row in await self.asked()
            if row["status"] == "approved" and row["data"]["offer"]["id"] == offer_id
        ]

    # -- approving (his agent) -------------------------------------------------------------------

    async def _identity(self, requester: str) -> Any:
        return await self.pseudonyms.ensure(APPROVER_PREFIX + requester)

    async def receive(self, token: bytes) -> tuple[int, dict[str, Any]]:
        """A request POSTed to his ``/vrm/approvals`` (spec §11.11, VRM-CODEC-002):
        ``(status, answer)``. An enrolment is answered with his identifier (200);
        a request is kept for him to decide (202).

        Raises:
            RemoteProtocolError: the request does not verify, or is not for him.
        """
        party = self.config.party_id
        if party is None:  # pragma: no cover - served agents have an address
            raise RemoteProtocolError(ErrorCode.NOT_FOUND, "this agent takes no requests")
        request = verify_approval_request(token, agent=party, now=self.clock.now())
        identity = await self._identity(request.requester)
        if request.offer is None:
            return 200, {"approver": identity.identifier}
        if request.reply_to is not None:
            # The address he will answer to must be one he may reach (spec §11.8):
            # judged now, so a request he could never answer is refused at once.
            try:
                self.config.delivery_policy.check_url(request.reply_to)
            except DeliveryRefused as error:
                raise RemoteProtocolError(
                    ErrorCode.INVALID_REQUEST, f"replyTo is refused: {error}"
                ) from error
        await self.store.add_approval_request(
            jti=request.jti,
            side="received",
            reply_tag=None,
            data={"token": token.decode("ascii"), "summary": request.summary, "agent": party},
            at=format_timestamp(self.clock.now()),
        )
        if self.approve_at_once:  # a fault (test mode only): he is never asked
            task = asyncio.create_task(self.decide(request.jti, approve=True))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return 202, {"approver": identity.identifier, "request": request.jti}

    async def pending(self) -> list[dict[str, Any]]:
        """The requests waiting for his decision: ``{request, summary, vendor, offer}``."""
        rows = await self.store.approval_requests(side="received")
        out = []
        for row in rows:
            request = self._request(row)
            out.append(
                {
                    "request": row["jti"],
                    "status": row["status"],
                    "summary": request.summary,
                    "vendor": request.vendor,
                    "offer": dict(request.offer or {}),
                    "expires": format_timestamp(request.expires),
                }
            )
        return out

    def _request(self, row: Mapping[str, Any]) -> ApprovalRequest:
        # Verified when it arrived; read again (time aside) from the token kept.
        token = str(row["data"]["token"]).encode("ascii")
        # The address it was verified for (a command run beside the serving agent
        # has none of its own).
        return verify_approval_request(
            token,
            agent=str(row["data"].get("agent") or self.config.party_id or ""),
            now=parse_timestamp(row["created"], path="/created"),
        )

    async def decide(self, jti: str, *, approve: bool, reason: str = "") -> Decision:
        """His decision on request ``jti``: signed with his own key for that
        relationship and posted to her reply inbox (VRM-CODEC-003).

        Raises:
            LocalProtocolError: NOT_FOUND, no such pending request; OFFER_EXPIRED,
                it has expired; TEMPORARILY_UNAVAILABLE, her agent cannot be
                reached (the decision is kept undone: he may decide again).
        """
        rows = await self.store.approval_requests(side="received", jti=jti)
        if not rows or rows[0]["status"] != "pending":
            raise LocalProtocolError(ErrorCode.NOT_FOUND, f"no pending approval request {jti}")
        request = self._request(rows[0])
        now = self.clock.now()
        if now >= request.expires:
            raise LocalProtocolError(ErrorCode.OFFER_EXPIRED, "the request has expired")
        identity = await self._identity(request.requester)
        if approve:
            approval = issue_approval(
                request, key=identity.identity.signing_key, approver=identity.identifier, now=now
            )
            token = approval["token"].encode("ascii")
        else:
            token = issue_approval_refusal(
                request,
                key=identity.identity.signing_key,
                approver=identity.identifier,
                now=now,
                reason=reason or "not approved",
            )
        assert request.reply_to is not None  # a request (not an enrolment) has one
        await self._post(request.reply_to, token)
        status = "approved" if approve else "refused"
        await self.store.answer_approval_request(
            jti, status=status, answer={"token": token.decode("ascii"), "at": format_timestamp(now)}
        )
        return Decision(jti, approve, True)
