"""Runs the selected checks against one target and collects the verdicts.

The runner owns the order (discovery, lifecycle steps in order, wire checks,
then the audits of everything exchanged), the per-check timeout, the mapping
from a check's outcome to its :class:`~conformance.model.Verdict`, and the
expected-failures baseline. Checks run one at a time: several of them move
the target's clock, and an honest transcript needs one scope at a time.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import aiohttp

from conformance.baseline import Baseline
from conformance.client import TargetUnreachable
from conformance.context import CheckContext, RunOptions, Session
from conformance.model import (
    CheckFailed,
    CheckSkipped,
    Expectation,
    HarnessError,
    Level,
    Verdict,
)
from conformance.operator import Operator, SilentOperator
from conformance.registry import Check, CheckRegistry
from conformance.results import CheckResult, RunResult
from conformance.selection import Selection
from conformance.target import fetch_discovery, reset_clock
from conformance.transcript import scoped

__all__ = ["ProgressListener", "judge", "missing_capability", "run_suite"]


class ProgressListener(Protocol):
    """Receives progress events (the live terminal view implements it)."""

    def run_started(self, checks: Sequence[Check], options: RunOptions) -> None:
        """The selected checks are about to run."""

    def check_started(self, check: Check) -> None:
        """One check starts."""

    def check_finished(self, result: CheckResult) -> None:
        """One check has a verdict."""

    def run_finished(self, run: RunResult) -> None:
        """Every check has a verdict and the baseline is applied."""


def judge(expectations: Sequence[Expectation]) -> tuple[Verdict, str]:
    """The verdict and reason for a check that ran to its end (or failed early).

    Any failed MUST expectation fails the check; failed SHOULD or MAY
    expectations alone make it a warning. A check that recorded no
    expectation at all judged nothing — a defect of the suite, so it is a
    harness error rather than a silent pass.
    """
    if not expectations:
        return Verdict.HARNESS_ERROR, "the check recorded no expectation: it judged nothing"
    failed = [expectation for expectation in expectations if not expectation.passed]
    hard = [expectation for expectation in failed if expectation.level is Level.MUST]
    if hard:
        return Verdict.FAIL, hard[0].description
    if failed:
        return Verdict.WARNING, failed[0].description
    return Verdict.PASS, f"{len(expectations)} expectation(s) held"


def missing_capability(check: Check, session: Session) -> str | None:
    """Why the target cannot be judged by ``check``, or ``None`` when it can.

    Raises:
        HarnessError: the capability depends on a discovery document the
            suite could not fetch.
    """
    for need in sorted(check.needs):
        if need == "restart-command":
            if not session.options.restart_command:
                return "needs --restart-command to restart the target"
            continue
        if need == "test-driver":
            if session.driver_url is None:
                return "the target's discovery document lists no endpoints.testDriver"
            continue
        direction, _, message_type = need.partition(":")
        if session.discovery is None:
            raise HarnessError(
                f"cannot tell whether the target {direction} {message_type}: "
                f"{session.discovery_error or 'no discovery document'}"
            )
        declared = (session.discovery.get("messageTypes") or {}).get(direction) or []
        if message_type not in declared:
            return (
                f"the target's discovery document does not list {message_type!r} "
                f"in messageTypes.{direction}"
            )
    return None


def _not_run(check: Check, level: Level, limit: float | None) -> CheckResult:
    """The result of a check the run had no time left for (``--run-timeout``)."""
    return CheckResult(
        check_id=check.id,
        title=check.title,
        step=check.step,
        requirements=check.requirements,
        level=level,
        verdict=Verdict.HARNESS_ERROR,
        reason=f"not run: the run's time limit of {limit:.0f} s was spent",
    )


async def _run_one(
    check: Check, session: Session, level: Level, run_deadline: float | None = None
) -> CheckResult:
    context = CheckContext(check, session, level)
    result = CheckResult(
        check_id=check.id,
        title=check.title,
        step=check.step,
        requirements=check.requirements,
        level=level,
        verdict=Verdict.HARNESS_ERROR,
    )
    started = time.monotonic()
    session.scope_stack.append(check.id)
    with scoped(check.id):
        try:
            reason = missing_capability(check, session)
            if reason is not None:
                raise CheckSkipped(reason)
            limit = check.timeout
            if run_deadline is not None:
                limit = max(0.0, min(limit, run_deadline - time.monotonic()))
            async with asyncio.timeout(limit) as deadline:
                context.deadline = deadline
                await check.function(context)
        except CheckFailed as failed:
            context.expectations.append(failed.expectation)
            result.verdict, result.reason = judge(context.expectations)
        except CheckSkipped as skipped:
            result.verdict, result.reason = Verdict.SKIPPED, skipped.reason
        except TargetUnreachable as error:
            # A check that let an unreachable target escape still judged it:
            # a target that stops answering is not conformant.
            context.expectations.append(
                Expectation("the target answers HTTP requests", False, actual=error.reason)
            )
            result.verdict, result.reason = judge(context.expectations)
        except TimeoutError:
            # Every wait for the target is bounded by its own, shorter timeout
            # and fails the check; reaching this one means the suite hung (or
            # the run's own time limit ran out).
            result.verdict = Verdict.HARNESS_ERROR
            result.reason = f"the check did not finish within {limit:.0f} s"
        except HarnessError as error:
            result.verdict, result.reason = Verdict.HARNESS_ERROR, str(error)
            result.traceback = traceback.format_exc()
        except Exception as error:  # a bug in the suite: never the target's fault
            result.verdict = Verdict.HARNESS_ERROR
            result.reason = f"the suite crashed: {error!r}"
            result.traceback = traceback.format_exc()
        else:
            result.verdict, result.reason = judge(context.expectations)
    session.scope_stack.pop()
    _judge_disagreements(result, session)
    result.duration_seconds = time.monotonic() - started
    result.expectations = context.expectations
    result.notes = context.notes
    result.exchanges = [exchange.seq for exchange in session.transcript.in_scopes(context.scopes)]
    return result


def _judge_disagreements(result: CheckResult, session: Session) -> None:
    """Make the check a harness error when the suite's two verifiers disagreed
    while it ran (conformance.judge): the suite cannot tell which of them is
    wrong, so the target is neither passed nor failed on that evidence."""
    disagreements = session.judge.take()
    if not disagreements:
        return
    result.disagreements = [disagreement.to_json() for disagreement in disagreements]
    more = f" (and {len(disagreements) - 1} more)" if len(disagreements) > 1 else ""
    result.verdict = Verdict.HARNESS_ERROR
    result.reason = (
        f"judge disagreement: the library and the suite's own verifier differ on "
        f"{disagreements[0].describe()}{more}"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def run_suite(
    options: RunOptions,
    *,
    selection: Selection | None = None,
    baseline: Baseline | None = None,
    registry: CheckRegistry | None = None,
    level_of: Callable[[Check], Level] | None = None,
    listener: ProgressListener | None = None,
    operator: Operator | None = None,
    requirement_levels: Mapping[str, Level] | None = None,
) -> RunResult:
    """Run the selected checks against ``options.target`` and return the result.

    ``registry`` defaults to the suite's own checks, ``level_of`` to the
    levels of the cited requirements in the requirements registry, and
    ``requirement_levels`` (the level an expectation citing a requirement is
    judged at) to that registry's levels when ``level_of`` is not given.

    Raises:
        ValueError: the selection names unknown steps.
    """
    if registry is None:
        from conformance.catalog import default_registry

        registry = default_registry()
    levels: dict[str, Level] = dict(requirement_levels or {})
    if level_of is None:
        from conformance.catalog import check_level, requirements_index

        level_of = check_level
        if requirement_levels is None:
            levels = {
                requirement.id: requirement.level for requirement in requirements_index().values()
            }
    chosen = (selection or Selection()).select(registry, role=options.role, level_of=level_of)
    run = RunResult(role=options.role.value, target=options.target, started_at=_now())
    run.options = {
        "selection": (selection or Selection()).describe(),
        "restartCommand": options.restart_command is not None,
        "vendorCount": options.vendor_count,
    }
    if listener is not None:
        listener.run_started(chosen, options)
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as http:
        session = Session(
            options,
            http,
            transcript=run.transcript,
            operator=operator or SilentOperator(),
            requirement_levels=levels,
        )
        try:
            with scoped("run:discovery"):
                try:
                    await fetch_discovery(session)
                except TargetUnreachable as error:
                    session.discovery_error = error.reason
            run.discovery = session.discovery
            deadline = (
                time.monotonic() + options.run_timeout if options.run_timeout is not None else None
            )
            for check in chosen:
                if listener is not None:
                    listener.check_started(check)
                if deadline is not None and time.monotonic() >= deadline:
                    result = _not_run(check, level_of(check), options.run_timeout)
                else:
                    result = await _run_one(check, session, level_of(check), deadline)
                run.results.append(result)
                if listener is not None:
                    listener.check_finished(result)
        finally:
            with scoped("run:teardown"):
                await reset_clock(session)
                await session.close()
    if baseline is not None:
        run.stale_baseline = baseline.apply(
            run.results, role=run.role, known_checks={check.id for check in registry}
        )
    run.finished_at = _now()
    if listener is not None:
        listener.run_finished(run)
    return run
