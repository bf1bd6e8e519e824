"""A co-decision-maker's approval asked of his own agent (``--role buyer``; spec §10.2, §11.11).

Two parts of one exchange, both played against a buyer agent:

* ``BUY-CODECISION-ASKS``: the target is *her* agent. The suite plays a vendor
  whose offer requires the approval of a co-decision-maker, and his agent (a
  server of the suite's at ``/vrm/approvals``). Told to ask him, the target
  must send a request signed by its pseudonym with that vendor, bound to the
  offer's digest (VRM-CODEC-001); its reply address must refuse answers that
  are not his approval of that offer (VRM-CODEC-004); with his approval, the
  acceptance carries exactly it.
* ``BUY-CODECISION-APPROVES``: the target is *his* agent. The suite plays her
  agent: requests for another agent, stale, or signed by a key other than the
  requester's are refused (VRM-CODEC-002); a good one is kept, unanswered,
  until he decides; told to approve, the target posts to the suite's reply
  address an approval signed by the identifier it named, about her pseudonym,
  for the vendor, of that offer (VRM-CODEC-003).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import timedelta
from typing import Any

from aiohttp import web

from conformance.checks._support import expect_accepted
from conformance.checks.scenarios import fresh_relationships, record_instruction
from conformance.client import request as http_request
from conformance.context import CheckContext
from conformance.peers import bodies
from conformance.peers.identity import new_pairwise
from conformance.peers.messages import message_ref, new_message_id, sign, timestamp
from conformance.peers.server import SuiteServer
from conformance.registry import REGISTRY
from conformance.target import call_driver_raw
from vrm_protocol.approval_requests import (
    APPROVAL_REQUEST_TYP,
    APPROVALS_PATH,
    ApprovalRequest,
    verify_approval_request,
)
from vrm_protocol.attestations import verify_attestation
from vrm_protocol.errors import ProtocolError
from vrm_protocol.vocabulary import ATTESTATION_TYP, MESSAGE_MEDIA_TYPE, LifecycleStep, Role

BUYER = (Role.BUYER,)
#: How long the suite waits for the target to ask, or to answer once told.
WAIT_SECONDS = 10.0
#: How long the suite watches for an answer nobody decided.
QUIET_SECONDS = 1.0


def _approval(
    signer: Any, approver: str, *, subject: str, vendor: str, offer: dict[str, str], now: Any
) -> bytes:
    payload = {
        "iss": approver,
        "sub": subject,
        "aud": [vendor],
        "jti": new_message_id(),
        "iat": timestamp(now),
        "exp": timestamp(now + timedelta(days=1)),
        "kind": "approval",
        "claims": {"approves": {"offer": offer, "summary": "Go ahead"}},
    }
    return sign(payload, signer, typ=ATTESTATION_TYP)


async def _post(ctx: CheckContext, url: str, token: bytes, note: str) -> int:
    reply = await http_request(
        ctx.session.http,
        ctx.session.transcript,
        "POST",
        url,
        headers={"Content-Type": MESSAGE_MEDIA_TYPE},
        body=token,
        note=note,
    )
    return reply.status


@REGISTRY.check(
    "BUY-CODECISION-ASKS",
    title="Her agent asks his agent for the approval of one offer, and takes only his",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-CODEC-001", "VRM-CODEC-004", "VRM-BUY-011"),
    roles=BUYER,
)
async def asks_his_agent(ctx: CheckContext) -> None:
    """A binding offer requires the approval of a co-decision-maker whose agent
    the suite runs. Told to ask him, the buyer sends a request signed by its
    pseudonym with the vendor and bound to the offer's digest; its reply
    address refuses an approval by anyone else and his approval of another
    offer; it takes his approval of this one, and its acceptance carries it."""
    if ctx.session.driver_url is None:
        ctx.skip("asking a co-decision-maker is instructed through the test driver")
    relationships = await fresh_relationships(ctx.session, "Conformance Household Motors")
    vendor = relationships.vendors[0]
    rfi = relationships.rfis[vendor.id]
    pseudonym = str(rfi.field("from"))
    approver, his_key = new_pairwise()
    his_agent = SuiteServer(ctx.session, "Conformance Co-decision-maker")
    asked: list[ApprovalRequest] = []
    refused: list[str] = []
    arrived = asyncio.Event()

    async def approvals(request: web.Request, body: bytes) -> web.Response:
        try:
            verified = verify_approval_request(
                body.strip(), agent=his_agent.base_url, now=ctx.session.clock.now()
            )
        except ProtocolError as error:
            refused.append(str(error))
            arrived.set()
            return web.json_response({"code": error.code.value}, status=400)
        asked.append(verified)
        arrived.set()
        status = 200 if verified.offer is None else 202
        return web.json_response({"approver": approver, "request": verified.jti}, status=status)

    his_agent.route("POST", APPROVALS_PATH, approvals)
    await his_agent.start()

    previous_offer = vendor.reply_to(
        rfi, "offer", bodies.offer_body(ctx.session.clock.now(), basis="binding")
    )
    previous_token = sign(previous_offer, vendor.signer)
    inbox = relationships.delivery_inbox(vendor)
    reply = await vendor.deliver_token(previous_token, to=pseudonym, inbox=inbox, note="offer")
    if reply is not None:
        expect_accepted(ctx, reply, what="a binding offer")
    body = bodies.offer_body(
        ctx.session.clock.now(),
        basis="binding",
        supersedes=message_ref(previous_token, str(previous_offer["id"])),
    )
    body["conditions"] = [
        {"kind": "approval-required", "description": "Her partner approves", "party": approver}
    ]
    offer = vendor.reply_to(rfi, "offer", body)
    offer_token = sign(offer, vendor.signer)
    reply = await vendor.deliver_token(
        offer_token, to=pseudonym, inbox=inbox, note="offer requiring his approval"
    )
    if reply is not None:
        expect_accepted(ctx, reply, what="an offer requiring a co-decision-maker's approval")
    offer_ref = message_ref(offer_token, str(offer["id"]))

    instruction = {"offer": offer["id"], "agent": his_agent.base_url}
    record_instruction(ctx.session, "approval-request", instruction)
    status, answer = await call_driver_raw(ctx.session, "POST", "/approval-request", instruction)
    if status == 404:
        ctx.skip("the buyer's driver takes no approval-request instruction")
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            await arrived.wait()
    ctx.require(
        not refused and len(asked) == 1,
        "the buyer sends one approval request that verifies under the did:jwk it names",
        expected="one request signed by its iss",
        actual=refused or [a.jti for a in asked] or f"nothing (driver answered {status} {answer})",
        requirement="VRM-CODEC-001",
    )
    request = asked[0]
    ctx.require(
        (request.requester, request.vendor, request.offer) == (pseudonym, vendor.id, offer_ref)
        and bool(request.summary)
        and request.reply_to is not None,
        "the request is signed by her pseudonym with the vendor, names the vendor, the "
        "offer by its digest, a summary and a reply address",
        expected={"iss": pseudonym, "vendor": vendor.id, "offer": offer_ref},
        actual={
            "iss": request.requester,
            "vendor": request.vendor,
            "offer": request.offer,
            "replyTo": request.reply_to,
        },
        requirement="VRM-CODEC-001",
    )
    assert request.reply_to is not None
    now = ctx.session.clock.now()
    stranger, stranger_key = new_pairwise()
    forged = _approval(
        stranger_key, stranger, subject=pseudonym, vendor=vendor.id, offer=offer_ref, now=now
    )
    other_offer = {"id": new_message_id(), "digest": offer_ref["digest"][:-4] + "AAAA"}
    wrong_offer = _approval(
        his_key, approver, subject=pseudonym, vendor=vendor.id, offer=other_offer, now=now
    )
    for token, what in ((forged, "an approval by someone else"), (wrong_offer, "another offer")):
        status = await _post(ctx, request.reply_to, token, f"answer: {what}")
        ctx.require(
            400 <= status < 500,
            f"the reply address refuses {what}",
            expected="4xx",
            actual=status,
            requirement="VRM-CODEC-004",
        )
    good = _approval(
        his_key, approver, subject=pseudonym, vendor=vendor.id, offer=offer_ref, now=now
    )
    status = await _post(ctx, request.reply_to, good, "answer: his approval of the offer")
    ctx.require(
        200 <= status < 300,
        "the reply address takes his approval of the offer",
        expected="2xx",
        actual=status,
        requirement="VRM-CODEC-004",
    )
    record_instruction(ctx.session, "accept", {"vendor": vendor.id, "offer": offer["id"]})
    await call_driver_raw(ctx.session, "POST", "/accept", {"offer": offer["id"]})
    acceptance = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            while acceptance is None:
                acceptance = next(
                    (
                        item
                        for item in vendor.received()
                        if item.type == "offer-acceptance"
                        and (item.body.get("offer") or {}).get("id") == offer["id"]
                    ),
                    None,
                )
                await asyncio.sleep(0.1)
    carried = (
        [a.get("token") for a in (acceptance.body.get("approvals") or [])] if acceptance else []
    )
    ctx.require(
        carried == [good.decode("ascii")],
        "the acceptance carries his approval, and nothing it refused",
        expected="his approval of this offer only",
        actual=carried or "no acceptance",
        requirement="VRM-CODEC-004",
    )


@REGISTRY.check(
    "BUY-CODECISION-APPROVES",
    title="His agent verifies a request, waits for him, and signs his approval itself",
    step=LifecycleStep.TRANSACT,
    requirements=("VRM-CODEC-002", "VRM-CODEC-003"),
    roles=BUYER,
)
async def approves_for_him(ctx: CheckContext) -> None:
    """The suite plays her agent and posts approval requests to the target's
    ``/vrm/approvals``: one addressed to another agent, a stale one and one
    signed by a key that is not the requester's are refused; a good one is
    kept, and nothing is posted back until he decides; told to approve, the
    target posts an approval signed by the identifier it named, about her
    pseudonym, for the vendor, of that offer."""
    if ctx.session.driver_url is None:
        ctx.skip("a co-decision-maker's decision is instructed through the test driver")
    target = ctx.session.options.target.rstrip("/")
    her, her_key = new_pairwise()
    _, other_key = new_pairwise()
    vendor = "https://dealer.example"
    offer = {"id": new_message_id(), "digest": "sha-256:" + "A" * 43}
    her_agent = SuiteServer(ctx.session, "Conformance Individual")
    answers: list[bytes] = []
    answered = asyncio.Event()
    tag = secrets.token_urlsafe(16)

    async def reply(request: web.Request, body: bytes) -> web.Response:
        answers.append(body.strip())
        answered.set()
        return web.json_response({}, status=202)

    her_agent.route("POST", f"/vrm/approvals/replies/{tag}", reply)
    await her_agent.start()
    now = ctx.session.clock.now()

    def request(signer: Any, *, agent: str, at: Any) -> tuple[str, bytes]:
        jti = new_message_id()
        payload = {
            "iss": her,
            "aud": agent,
            "jti": jti,
            "iat": timestamp(at),
            "exp": timestamp(at + timedelta(days=1)),
            "vendor": vendor,
            "offer": offer,
            "summary": "A car: GBP 19000",
            "replyTo": f"{her_agent.base_url}/vrm/approvals/replies/{tag}",
        }
        return jti, sign(payload, signer, typ=APPROVAL_REQUEST_TYP)

    for (_, token), what in (
        (request(her_key, agent="https://someone-else.example", at=now), "for another agent"),
        (request(her_key, agent=target, at=now - timedelta(days=3)), "that has expired"),
        (request(other_key, agent=target, at=now), "signed by a key not the requester's"),
    ):
        status = await _post(ctx, target + APPROVALS_PATH, token, f"approval request {what}")
        ctx.require(
            400 <= status < 500,
            f"the target refuses an approval request {what}",
            expected="4xx",
            actual=status,
            requirement="VRM-CODEC-002",
        )
    jti, token = request(her_key, agent=target, at=now)
    reply_status = await http_request(
        ctx.session.http,
        ctx.session.transcript,
        "POST",
        target + APPROVALS_PATH,
        headers={"Content-Type": MESSAGE_MEDIA_TYPE},
        body=token,
        note="a good approval request",
    )
    try:
        approver = reply_status.json().get("approver")
    except ValueError:
        approver = None
    ctx.require(
        reply_status.status == 202 and isinstance(approver, str),
        "the target keeps a good request and names the identifier he approves under",
        expected="202 {approver}",
        actual=f"{reply_status.status} {reply_status.body[:200]!r}",
        requirement="VRM-CODEC-002",
    )
    await asyncio.sleep(QUIET_SECONDS)
    ctx.require(
        not answers,
        "nothing is signed or posted before he decides",
        expected="no answer",
        actual=len(answers),
        requirement="VRM-CODEC-002",
    )
    record_instruction(ctx.session, "approve", {"request": jti})
    await call_driver_raw(ctx.session, "POST", "/approve", {"request": jti, "decision": "approve"})
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            await answered.wait()
    ctx.require(
        len(answers) == 1,
        "once he approves, the target posts one answer to the reply address",
        expected="one answer",
        actual=len(answers),
        requirement="VRM-CODEC-003",
    )
    try:
        verified = verify_attestation(
            {"kind": "approval", "issuer": str(approver), "token": answers[0].decode("ascii")},
            trusted_issuers={str(approver): None},
            subject=her,
            audience=vendor,
            now=ctx.session.clock.now(),
            kind="approval",
        )
        approves = verified.claims.get("approves") or {}
        problem = None if approves.get("offer") == offer else "it approves another offer"
    except (ProtocolError, UnicodeDecodeError, AttributeError) as error:
        problem = str(error)
    ctx.require(
        problem is None,
        "the answer is an approval signed by the identifier he named, about her "
        "pseudonym, for the vendor, of that offer",
        expected="a verifying approval",
        actual=problem,
        requirement="VRM-CODEC-003",
    )
