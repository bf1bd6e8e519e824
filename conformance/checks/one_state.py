"""One state per relationship, whatever its threads; a resolved problem returns
the relationship to where it was; a reply must answer a message of the type it
answers (spec §5.1, §5.3, VRM-STATE-012, VRM-STATE-013, VRM-STATE-020)."""

from __future__ import annotations

from typing import Any

from conformance.checks._support import expect_accepted, expect_rejection, relationship_view
from conformance.checks.scenarios import await_terms, run_deal, run_welcome
from conformance.context import CheckContext
from conformance.model import CheckFailed
from conformance.peers import bodies
from conformance.peers.messages import new_message_id
from conformance.registry import REGISTRY
from conformance.target import driver_state
from vrm_protocol.errors import ErrorCode
from vrm_protocol.vocabulary import LifecycleStep, Role

VENDOR = (Role.VENDOR,)
E = ErrorCode


@REGISTRY.check(
    "VEN-ONE-STATE",
    title="A new thread is judged against the relationship's one state",
    step=LifecycleStep.SERVICING,
    requirements=("VRM-STATE-012",),
    roles=VENDOR,
    needs=("accepts:support-request",),
)
async def one_state_across_threads(ctx: CheckContext) -> None:
    """After the deal and the welcome, a personal RFI opening a new thread is
    refused with ``illegal-transition`` (a relationship in service takes no
    RFI, though a new thread on its own would), while a support request
    opening another new thread is taken: both are judged against the one
    state of the relationship, not a state of their thread."""
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    persona = thread.persona
    rfi = persona.compose("personal-rfi", bodies.personal_rfi_body(persona.now()))
    reply = await persona.send(rfi, note="an RFI opening a new thread after the welcome")
    expect_rejection(
        ctx,
        reply,
        E.ILLEGAL_TRANSITION,
        what="an RFI in a new thread of a relationship in service",
        requirement="VRM-STATE-012",
    )
    request = persona.compose("support-request", bodies.support_request_body())
    reply = await persona.send(request, note="a support request opening a new thread")
    expect_accepted(
        ctx,
        reply,
        what="a support request in a new thread of a relationship in service",
        requirement="VRM-STATE-012",
    )


def _state_of(summary: dict[str, Any], party: str) -> Any:
    view = relationship_view(summary, party)
    entries = list(view.values()) if isinstance(view, dict) else list(view)
    entry = entries[0] if len(entries) == 1 else None
    return entry.get("state") if isinstance(entry, dict) else None


@REGISTRY.check(
    "VEN-PROBLEM-RESOLVED-RETURNS",
    title="Resolving the last open support request returns the relationship to its state",
    step=LifecycleStep.PROBLEMS,
    requirements=("VRM-STATE-013",),
    roles=VENDOR,
    needs=("test-driver", "accepts:support-request"),
)
async def resolution_returns(ctx: CheckContext) -> None:
    """In service, the relationship's state (test driver) is noted; a support
    request moves it to ``problem``; once the vendor resolves the request
    (status ``resolved``), the state is again the one noted."""
    if ctx.session.driver_url is None:
        ctx.skip("the target has no test driver to show its state")
    thread = await run_welcome(ctx.session, await run_deal(ctx.session))
    persona = thread.persona
    before = _state_of(await driver_state(ctx.session), persona.id)
    ctx.require(before is not None, "the driver shows the relationship's state", actual=before)
    request = persona.compose(
        "support-request", bodies.support_request_body(), thread=thread.thread
    )
    expect_accepted(ctx, await persona.send(request, note="a support request"), what="it")
    try:
        await persona.expect(
            lambda item: (
                item.type == "support-resolution"
                and item.body.get("status") == "resolved"
                and (item.body.get("request") or {}).get("id") == request["id"]
            ),
            description="the vendor resolves the support request",
        )
    except CheckFailed:
        ctx.skip("the vendor did not resolve the request within the reply timeout")
    after = _state_of(await driver_state(ctx.session), persona.id)
    ctx.require(
        after == before,
        "the resolution of the only open request returns the relationship to its state",
        expected=before,
        actual=after,
        requirement="VRM-STATE-013",
    )


@REGISTRY.check(
    "VEN-REPLY-ANSWERS-NOTHING",
    title="A terms response naming no terms assertion of the vendor is refused",
    step=LifecycleStep.WELCOME,
    requirements=("VRM-STATE-020",),
    roles=VENDOR,
    needs=("sends:terms-assertion",),
)
async def reply_answers_nothing(ctx: CheckContext) -> None:
    """After the deal, a terms-response naming an id of no message, then one
    naming the vendor's deal confirmation (a message, but not a terms
    assertion), are refused with ``illegal-transition``; the response naming
    the vendor's terms assertion, under the same id, is then taken."""
    thread = await run_deal(ctx.session)
    persona = thread.persona
    terms = await await_terms(thread)
    assert thread.deal is not None
    refused = [str(r["item"]) for r in terms.body.get("requests", []) if isinstance(r, dict)]
    message_id = new_message_id()
    for what, reference in (
        ("an id of no message", {"id": new_message_id(), "digest": terms.digest}),
        ("the deal confirmation", thread.deal.ref()),
    ):
        response = persona.compose(
            "terms-response",
            bodies.terms_response_body(reference, accepted=[], refused=refused),
            thread=str(terms.field("thread") or terms.id),
            parent=str(terms.id),
            message_id=message_id,
        )
        reply = await persona.send(response, note=f"a terms response naming {what}")
        expect_rejection(
            ctx,
            reply,
            E.ILLEGAL_TRANSITION,
            what=f"a terms response naming {what}",
            requirement="VRM-STATE-020",
        )
    lawful = persona.compose(
        "terms-response",
        bodies.terms_response_body(terms.ref(), accepted=[], refused=refused),
        thread=str(terms.field("thread") or terms.id),
        parent=str(terms.id),
        message_id=message_id,
    )
    expect_accepted(
        ctx,
        await persona.send(lawful, note="the response naming the terms assertion, same id"),
        what="the terms response naming the vendor's terms assertion",
    )
