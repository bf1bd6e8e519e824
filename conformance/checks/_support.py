"""What many checks share: judging a rejection, and the probe channel.

A *probe* is a way to put a message in front of the target's inbox in a
state where a well-formed message would be legal, so that a rejection can
only be due to the one defect the check introduced:

* against a vendor, a fresh buyer persona sending a personal RFI (always
  legal: it starts a relationship);
* against a buyer, one of the suite's vendors answering the RFI the buyer
  sent it, with an offer.

After each rejection the probe sends the *legal* version of the message,
under the same message id, and expects it to be accepted as new: had the
rejected message changed anything (stored its id, advanced the
relationship), the target would now answer ``409 replay`` or refuse the
transition. Where the target has a test driver, its state summary before
and after the rejection is compared as well.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.context import CheckContext
from conformance.forge import JoseSigner
from conformance.peers import bodies
from conformance.peers.buyers import Persona, buyer_side
from conformance.peers.inbox import Inbound
from conformance.peers.messages import new_message_id, sign
from conformance.peers.posting import InboxReply
from conformance.peers.server import SuiteServer
from conformance.peers.vendors import SuiteVendor
from conformance.target import driver_state
from vrm_protocol.errors import ERROR_TYPE_BASE, ErrorCode
from vrm_protocol.http_binding import PROBLEM_MEDIA_TYPE
from vrm_protocol.vocabulary import Role

__all__ = [
    "CANARY_GRACE_SECONDS",
    "Probe",
    "describe_change",
    "expect_accepted",
    "expect_rejection",
    "open_probe",
    "relationship_view",
]

#: How long the suite waits, after a rejection, for a fetch of a planted URL
#: it must never see. A fetch started on receipt arrives well within it.
CANARY_GRACE_SECONDS = 1.0


def expect_rejection(
    ctx: CheckContext,
    reply: InboxReply,
    codes: ErrorCode | Collection[ErrorCode],
    *,
    what: str,
    requirement: str | None = None,
) -> None:
    """Require that the target refused ``what`` with one of ``codes`` (status and code).

    Raises:
        CheckFailed: the target accepted the message or named another code.
    """
    allowed = [codes] if isinstance(codes, ErrorCode) else list(codes)
    expected = " or ".join(f"{code.http_status} {code.value}" for code in allowed)
    ctx.require(
        not reply.accepted,
        f"the target rejects {what}",
        expected=expected,
        actual=reply.describe(),
        requirement=requirement,
    )
    ctx.require(
        any(
            reply.status == code.http_status and reply.problem_code == code.value
            for code in allowed
        ),
        f"the rejection of {what} names the right error code and HTTP status",
        expected=expected,
        actual=reply.describe(),
        requirement=requirement,
    )
    ctx.expect(
        reply.http.content_type == PROBLEM_MEDIA_TYPE,
        "the rejection is RFC 9457 problem details",
        expected=PROBLEM_MEDIA_TYPE,
        actual=reply.http.content_type or None,
        requirement="VRM-HTTP-013",
    )
    try:
        problem = reply.http.json()
    except ValueError:
        problem = None
    code = reply.problem_code
    wanted = {"type": ERROR_TYPE_BASE + (code or "<code>"), "status": reply.status}
    ctx.expect(
        isinstance(problem, dict)
        and problem.get("type") == wanted["type"]
        and problem.get("status") == reply.status
        and isinstance(problem.get("title"), str),
        "the problem details name the error type URI, the status and a title",
        expected=wanted,
        actual=None
        if not isinstance(problem, dict)
        else {name: problem.get(name) for name in ("type", "status", "title")},
        requirement="VRM-HTTP-013",
    )


def expect_accepted(
    ctx: CheckContext, reply: InboxReply, *, what: str, requirement: str | None = None
) -> None:
    """Require ``202`` and a receipt that verifies.

    Raises:
        CheckFailed: the target refused the message or its receipt is invalid.
    """
    ctx.require(
        reply.status == 202,
        f"the target accepts {what}",
        expected="202 with a signed receipt",
        actual=reply.describe() + _problem_detail(reply),
        requirement=requirement,
    )
    receipt = reply.receipt
    ctx.require(
        receipt is not None and receipt.ok,
        "the receipt is a valid signed message addressed to the sender",
        expected="a receipt passing the receiving pipeline",
        actual=None if receipt is None else receipt.error_code,
        requirement="VRM-HTTP-004",
    )


def _problem_detail(reply: InboxReply) -> str:
    try:
        document = reply.http.json()
    except ValueError:
        return ""
    detail = document.get("detail") if isinstance(document, dict) else None
    return f" ({detail})" if isinstance(detail, str) else ""


@dataclass(slots=True)
class Probe:
    """A channel for sending one kind of legal message to the target, and bad variants."""

    ctx: CheckContext
    #: The party id the suite sends as.
    sender: str
    signer: JoseSigner
    #: The party id of the target in this relationship (the ``to`` of a legal message).
    target_party: str
    #: The suite server that plays the sender (for canary URLs).
    server: SuiteServer
    persona: Persona | None = None
    vendor: SuiteVendor | None = None
    rfi: Inbound | None = None
    buyer_inbox: str | None = None

    def legal(self, *, message_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """A fresh, legal message from the sender to the target."""
        now = self.ctx.session.clock.now()
        identifier = message_id or new_message_id()
        if self.persona is not None:
            return self.persona.compose(
                "personal-rfi", bodies.personal_rfi_body(now), message_id=identifier, **fields
            )
        assert self.vendor is not None
        assert self.rfi is not None
        return self.vendor.reply_to(
            self.rfi, "offer", bodies.offer_body(now), message_id=identifier, **fields
        )

    async def post(self, token: bytes, *, note: str, content_type: str | None = None) -> InboxReply:
        """POST ``token`` to the target's inbox as the sender."""
        if self.persona is not None:
            if content_type is None:
                return await self.persona.post(token, note=note)
            return await self.persona.post(token, note=note, content_type=content_type)
        assert self.vendor is not None
        assert self.buyer_inbox is not None
        from conformance.peers.posting import post_to_inbox

        async def no_keys(kid: str) -> None:
            return None

        kwargs: dict[str, Any] = {}
        if content_type is not None:
            kwargs["content_type"] = content_type
        return await post_to_inbox(
            self.ctx.session,
            self.buyer_inbox,
            token,
            receiver=self.vendor.id,
            receipt_keys=no_keys,
            note=note,
            **kwargs,
        )

    async def state(self) -> Any:
        """What the target's state summary says of this probe's relationship
        (``None`` without a test driver).

        When the summary lists ``relationships`` (keyed by the buyer's pseudonym,
        or entries naming the ``peer``), only the probe's own relationship is
        compared: the target's other relationships may move meanwhile (a reply
        it owes from an earlier check), which says nothing of the probe's
        message. A summary of another shape is compared whole.
        """
        if self.ctx.session.driver_url is None:
            return None
        return relationship_view(await driver_state(self.ctx.session), self.sender)

    async def settled_state(self, *, interval: float = 0.3, attempts: int = 10) -> Any:
        """:meth:`state` once two readings ``interval`` seconds apart agree
        (or after ``attempts`` readings): the target has finished reacting."""
        previous = await self.state()
        for _ in range(attempts):
            if previous is None:
                return None
            await asyncio.sleep(interval)
            current = await self.state()
            if current == previous:
                return current
            previous = current
        return previous

    async def confirm_unchanged(self, rejected: Mapping[str, Any], state_before: Any) -> None:
        """Show that a rejected message changed nothing (see the module docstring).

        Raises:
            CheckFailed: the target's state moved, or the legal message was refused.
        """
        if state_before is not None:
            after = await self.state()
            self.ctx.require(
                after == state_before,
                "the rejected message changed nothing in the target's state (test driver)",
                expected="the same state summary as before",
                actual=describe_change(state_before, after),
                requirement="VRM-HTTP-006",
            )
        message_id = rejected.get("id")
        follow_up = self.legal(message_id=message_id if isinstance(message_id, str) else None)
        reply = await self.post(
            sign(follow_up, self.signer),
            note="follow-up: the legal message under the rejected one's id",
        )
        self.ctx.require(
            reply.status == 202,
            "after the rejection, the legal message under the same id is accepted as new "
            "(the rejected one was not stored)",
            expected="202",
            actual=reply.describe(),
            requirement="VRM-HTTP-006",
        )


def describe_change(before: Any, after: Any, *, limit: int = 600) -> str:
    """What differs between two state summaries, as observed: ``unchanged``, or
    each changed member's path with its value before and after (truncated)."""
    if before == after:
        return "unchanged"
    changes: list[str] = []

    def walk(path: str, old: Any, new: Any) -> None:
        if old == new:
            return
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new), key=str):
                walk(f"{path}/{key}", old.get(key, "<absent>"), new.get(key, "<absent>"))
            return
        changes.append(
            f"{path or '/'}: {json.dumps(old, default=str)} -> {json.dumps(new, default=str)}"
        )

    walk("", before, after)
    text = "; ".join(changes)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def relationship_view(state: Mapping[str, Any], party: str) -> Any:
    """The entries of a state summary about ``party`` (see :meth:`Probe.state`)."""
    relationships = state.get("relationships")
    if isinstance(relationships, dict):
        return {
            key: entry
            for key, entry in relationships.items()
            if key == party
            or (isinstance(entry, dict) and party in (entry.get("peer"), entry.get("party")))
        }
    if isinstance(relationships, list):
        return [
            entry
            for entry in relationships
            if isinstance(entry, dict) and party in (entry.get("peer"), entry.get("id"))
        ]
    return dict(state)


async def open_probe(ctx: CheckContext) -> Probe:
    """A probe for the target's role (see the module docstring).

    Raises:
        CheckFailed: the buyer under test never sent the RFI the probe needs.
        CheckSkipped, HarnessError: as the shared scenario ended.
    """
    if ctx.role is Role.VENDOR:
        side = await buyer_side(ctx)
        persona = side.new_persona()
        return Probe(ctx, persona.id, persona.signer, side.target_id, side.server, persona=persona)
    from conformance.checks.scenarios import buyer_rfi_to_one_vendor

    vendor, rfi, inbox = await ctx.use(buyer_rfi_to_one_vendor)
    return Probe(
        ctx,
        vendor.id,
        vendor.signer,
        str(rfi.field("from")),
        vendor.server,
        vendor=vendor,
        rfi=rfi,
        buyer_inbox=inbox,
    )
