"""The target as the suite reaches it: discovery document, test driver, clock.

The test driver (spec §14.3) is optional. A target in test mode lists it as
``endpoints.testDriver`` in its discovery document, and offers:

* ``POST {driver}/clock {"offsetSeconds": N}`` — the agent's clock runs N
  seconds ahead of real time from now on (the offset is absolute, not added
  to an earlier one; ``0`` restores real time);
* ``GET {driver}/state`` — a JSON summary of the agent's relationships and of
  the data it holds;
* a buyer agent also takes instructions: ``POST {driver}/rfi``, ``/rfp``,
  ``/accept``, ``/decline``, ``/exit`` (see :mod:`conformance.peers.driver`).

Without a driver the suite waits for real time to pass and asks the operator
to act; checks that need to see inside the agent are skipped with the reason.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from conformance.client import HttpReply, TargetUnreachable, request
from conformance.context import Session
from conformance.model import CheckFailed, CheckSkipped, Expectation
from vrm_protocol.http_binding import DISCOVERY_PATH

__all__ = [
    "advance_clock",
    "call_driver",
    "call_driver_raw",
    "discovery_url",
    "driver_state",
    "fetch_discovery",
    "reset_clock",
]


def discovery_url(target: str) -> str:
    """The discovery document's URL for a target base URL."""
    return target.rstrip("/") + DISCOVERY_PATH


async def fetch_discovery(session: Session) -> HttpReply:
    """GET the target's discovery document and keep it on the session.

    A failure is remembered on the session (``discovery_error``) rather than
    raised: the discovery checks judge it, the others report that they could
    not run.

    Raises:
        TargetUnreachable: the target did not answer at all.
    """
    reply = await request(
        session.http, session.transcript, "GET", discovery_url(session.options.target)
    )
    try:
        document = reply.json() if reply.status == 200 else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        session.discovery = document
        session.discovery_error = None
    else:
        session.discovery_error = (
            f"GET {reply.exchange.url} answered {reply.status} "
            f"({reply.content_type or 'no content type'}), not a JSON object"
        )
    return reply


async def call_driver(
    session: Session,
    method: str,
    path: str,
    body: Any = None,
    *,
    time_limit: float = 10.0,
) -> Any:
    """Call the target's test driver and return its JSON answer (``None`` if empty).

    Raises:
        CheckSkipped: the target has no test driver.
        CheckFailed: the driver refused the call or did not answer.
    """
    driver = session.driver_url
    if driver is None:
        raise CheckSkipped("the target's discovery document lists no endpoints.testDriver")
    url = driver.rstrip("/") + path
    try:
        reply = await request(
            session.http,
            session.transcript,
            method,
            url,
            json_body=body,
            time_limit=time_limit,
            note="test driver",
        )
    except TargetUnreachable as error:
        raise CheckFailed(
            Expectation(f"the test driver answers {method} {path}", False, actual=error.reason)
        ) from error
    if not 200 <= reply.status < 300:
        raise CheckFailed(
            Expectation(
                f"the test driver accepts {method} {path}",
                False,
                expected="2xx",
                actual=f"{reply.status} {reply.body[:500].decode(errors='replace')}",
            )
        )
    if not reply.body:
        return None
    try:
        return reply.json()
    except ValueError as error:
        raise CheckFailed(
            Expectation(f"the test driver answers {method} {path} with JSON", False)
        ) from error


async def call_driver_raw(
    session: Session, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """Call the test driver and return its status and JSON answer, whatever the status.

    For checks that expect the driver to *refuse* an instruction (accepting an
    expired offer, say).

    Raises:
        CheckSkipped: the target has no test driver.
        CheckFailed: the driver did not answer.
    """
    driver = session.driver_url
    if driver is None:
        raise CheckSkipped("the target's discovery document lists no endpoints.testDriver")
    try:
        reply = await request(
            session.http,
            session.transcript,
            method,
            driver.rstrip("/") + path,
            json_body=body,
            note="test driver",
        )
    except TargetUnreachable as error:
        raise CheckFailed(
            Expectation(f"the test driver answers {method} {path}", False, actual=error.reason)
        ) from error
    try:
        answer = reply.json() if reply.body else None
    except ValueError:
        answer = reply.body.decode(errors="replace")
    return reply.status, answer


async def driver_state(session: Session) -> dict[str, Any]:
    """The target's state summary from ``GET {driver}/state``.

    Raises:
        CheckSkipped: the target has no test driver.
        CheckFailed: the driver did not answer with a JSON object.
    """
    state = await call_driver(session, "GET", "/state")
    if not isinstance(state, dict):
        raise CheckFailed(Expectation("the test driver's state is a JSON object", False))
    return state


async def advance_clock(session: Session, seconds: float) -> None:
    """Let ``seconds`` pass for the target.

    With a test driver the target's clock (and the suite's view of it) jumps
    ahead at once. Without one the suite waits for real: slower, but never
    skipped.

    Raises:
        CheckSkipped: the wait would exceed ``--max-real-wait``.
        CheckFailed: the test driver refused to move the clock.
    """
    if session.driver_url is not None:
        offset = session.clock.offset + timedelta(seconds=seconds)
        await call_driver(session, "POST", "/clock", {"offsetSeconds": int(offset.total_seconds())})
        session.clock.offset = timedelta(seconds=int(offset.total_seconds()))
        return
    if seconds > session.options.max_real_wait:
        # Not the target's fault and not the suite's: the check cannot be judged
        # in the time the operator allowed, so it is skipped with the reason.
        raise CheckSkipped(
            f"this check needs {seconds:.0f} s to pass on the target's clock; the target has "
            f"no test driver and --max-real-wait is {session.options.max_real_wait:.0f} s"
        )
    await asyncio.sleep(seconds)


async def reset_clock(session: Session) -> None:
    """Put the target's clock back to real time (best effort, at the end of a run)."""
    if session.driver_url is None or not session.clock.offset:
        return
    try:
        await call_driver(session, "POST", "/clock", {"offsetSeconds": 0})
    except (CheckFailed, CheckSkipped):
        return
    session.clock.offset = timedelta(0)
