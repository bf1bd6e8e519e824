"""What a check sees: the run's shared session and its own context.

A :class:`Session` lives for one run: the HTTP client, the transcript, the
clock shared with the target, the target's discovery document, the suite's
own servers (started on demand) and the memoised shared scenarios
(:class:`Fixture`). A :class:`CheckContext` lives for one check and collects
its expectations; the runner turns them into a verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar

from conformance.judge import Judge
from conformance.model import CheckFailed, CheckSkipped, Expectation, HarnessError, Level
from conformance.transcript import Transcript, scoped
from vrm_protocol.vocabulary import Role

if TYPE_CHECKING:
    import aiohttp

    from conformance.operator import Operator
    from conformance.registry import Check

__all__ = [
    "CheckContext",
    "Fixture",
    "RunOptions",
    "Session",
    "SuiteClock",
    "fixture",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Operator options that change how (not what) the suite judges."""

    role: Role
    target: str
    #: Seconds to wait for the target to send a message it owes.
    reply_timeout: float = 10.0
    #: Seconds an operator has to prompt a buyer agent that has no test driver.
    operator_timeout: float = 300.0
    #: Longest real wait the suite accepts where the target offers no clock control.
    max_real_wait: float = 3600.0
    #: Shell command that restarts the target (for replay-after-restart checks).
    restart_command: str | None = None
    #: Private JWK file of the suite's test credit-union issuer (created if missing).
    issuer_key_file: str | None = None
    #: How many vendor servers the suite starts when it plays vendors.
    vendor_count: int = 3
    #: Seconds the whole run may take; checks left when it is spent are harness
    #: errors (never blamed on the target). ``None``: no limit but each check's own.
    run_timeout: float | None = None


class SuiteClock:
    """The suite's view of the target's clock.

    When the target has a test driver the suite can move the target's clock;
    it then moves its own by the same amount, so that the messages it mints
    are fresh by the target's clock and the messages it judges are judged at
    the target's "now" (spec §9.3).
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """The current time as the target sees it (UTC, whole seconds)."""
        return (datetime.now(UTC) + self.offset).replace(microsecond=0)


class Fixture(Generic[T]):
    """A shared scenario: run at most once per run, its result (or failure) memoised.

    Several checks judge the same lifecycle run (e.g. one complete purchase);
    a fixture runs it once, under its own transcript scope, and every check
    that uses it cites its exchanges. If the scenario fails because the target
    misbehaved, every check that depends on it fails with that reason.
    """

    def __init__(self, name: str, build: Callable[[Session], Awaitable[T]]) -> None:
        self.name = name
        self.build = build

    @property
    def scope(self) -> str:
        """The transcript scope of the fixture's exchanges."""
        return f"fixture:{self.name}"


#: Every fixture name declared, with the function that builds it: the session
#: memoises fixtures by name, so two fixtures of one name would share a result.
_FIXTURE_NAMES: dict[str, str] = {}


def fixture(name: str) -> Callable[[Callable[[Session], Awaitable[T]]], Fixture[T]]:
    """Declare a shared scenario (decorator).

    Raises:
        ValueError: another function already declared a fixture of that name.
    """

    def wrap(build: Callable[[Session], Awaitable[T]]) -> Fixture[T]:
        where = f"{build.__module__}.{build.__qualname__}"
        if _FIXTURE_NAMES.setdefault(name, where) != where:
            raise ValueError(f"fixture {name!r} is declared twice: {_FIXTURE_NAMES[name]}, {where}")
        return Fixture(name, build)

    return wrap


@dataclass(slots=True)
class _Memo:
    future: asyncio.Future[Any]
    scopes: set[str] = field(default_factory=set)


class Session:
    """Everything shared by the checks of one run."""

    def __init__(
        self,
        options: RunOptions,
        http: aiohttp.ClientSession,
        *,
        transcript: Transcript | None = None,
        operator: Operator | None = None,
        requirement_levels: Mapping[str, Level] | None = None,
    ) -> None:
        self.options = options
        #: Requirement id -> level, from the requirements registry: an
        #: expectation citing a requirement is judged at its level.
        self.requirement_levels: Mapping[str, Level] = dict(requirement_levels or {})
        self.http = http
        self.transcript = transcript if transcript is not None else Transcript()
        self.clock = SuiteClock()
        self.operator = operator
        #: The target's discovery document, once fetched.
        self.discovery: dict[str, Any] | None = None
        self.discovery_error: str | None = None
        #: The suite's own verifier, the second opinion on every token the
        #: target sends; its disagreements with the library are harness errors.
        self.judge = Judge()
        #: Per-role environments and other lazily built services, by name.
        self.services: dict[str, Any] = {}
        self._memos: dict[str, _Memo] = {}
        #: Scopes entered (check, then nested scenarios): requests the target
        #: makes to the suite's servers are tagged with the innermost one.
        self.scope_stack: list[str] = []
        self._order = 0
        self._service_locks: dict[str, asyncio.Lock] = {}
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    def next_order(self) -> int:
        """A run-wide sequence number: orders what the suite sent and received."""
        self._order += 1
        return self._order

    @property
    def role(self) -> Role:
        """The role of the target."""
        return self.options.role

    @property
    def active_scope(self) -> str | None:
        """The innermost check or scenario running now."""
        return self.scope_stack[-1] if self.scope_stack else None

    @property
    def driver_url(self) -> str | None:
        """The target's test-driver base URL, when its discovery document lists one."""
        endpoints = (self.discovery or {}).get("endpoints")
        url = endpoints.get("testDriver") if isinstance(endpoints, dict) else None
        return url if isinstance(url, str) and url else None

    async def service(self, name: str, start: Callable[[Session], Awaitable[T]]) -> T:
        """Start a named service (a server of the suite's) once, and return it."""
        lock = self._service_locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self.services:
                self.services[name] = await start(self)
            value: T = self.services[name]
            return value

    def on_close(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run ``cleanup`` when the run ends (last registered, first run)."""
        self._cleanups.append(cleanup)

    async def close(self) -> None:
        """Stop every service the run started."""
        while self._cleanups:
            cleanup = self._cleanups.pop()
            await cleanup()

    async def use(self, shared: Fixture[T], *, cite: set[str] | None = None) -> T:
        """The fixture's value, building it on first use.

        The fixture's transcript scopes (its own and those of fixtures it
        used) are added to ``cite``, whatever the outcome.

        Raises:
            CheckFailed: the scenario failed because of the target.
            CheckSkipped: the scenario cannot run against this target.
            HarnessError: the scenario failed because of the suite.
        """
        outer_scopes = _fixture_scopes.get()
        memo = self._memos.get(shared.name)
        if memo is None:
            memo = _Memo(asyncio.get_running_loop().create_future(), {shared.scope})
            self._memos[shared.name] = memo
            scopes_token = _fixture_scopes.set(memo.scopes)
            self.scope_stack.append(shared.scope)
            try:
                with scoped(shared.scope):
                    value = await shared.build(self)
            except (CheckFailed, CheckSkipped, HarnessError) as outcome:
                memo.future.set_exception(outcome)
            except Exception as error:  # the suite's own bug: never the target's fault
                wrapped = HarnessError(f"scenario {shared.name!r} crashed: {error!r}")
                wrapped.__cause__ = error
                memo.future.set_exception(wrapped)
            except asyncio.CancelledError:
                # The check that started the scenario ran out of time; later
                # users get a verdict instead of waiting forever.
                memo.future.set_exception(
                    HarnessError(f"scenario {shared.name!r} was interrupted (check timeout)")
                )
                memo.future.exception()  # retrieved: no "never retrieved" warning
                raise
            else:
                memo.future.set_result(value)
            finally:
                self.scope_stack.pop()
                _fixture_scopes.reset(scopes_token)
        try:
            result: T = await asyncio.shield(memo.future)
        except CheckFailed as failed:
            raise CheckFailed(
                Expectation(
                    f"prerequisite scenario '{shared.name}' failed: "
                    f"{failed.expectation.description}",
                    passed=False,
                    level=failed.expectation.level,
                    expected=failed.expectation.expected,
                    actual=failed.expectation.actual,
                    requirement=failed.expectation.requirement,
                )
            ) from failed
        finally:
            for citing in (cite, outer_scopes):
                if citing is not None:
                    citing.update(memo.scopes)
        return result


#: While a fixture builds, the scope set of that fixture: a fixture used inside
#: another adds its scopes to the outer one's, so that a check citing the outer
#: scenario also cites the inner exchanges.
_fixture_scopes: ContextVar[set[str] | None] = ContextVar("fixture_scopes", default=None)


class CheckContext:
    """The running check's view: assertions, skips, notes and shared services."""

    def __init__(self, check: Check, session: Session, level: Level) -> None:
        self.check = check
        self.session = session
        self.level = level
        self.expectations: list[Expectation] = []
        self.notes: list[str] = []
        #: Transcript scopes whose exchanges this check cites.
        self.scopes: set[str] = {check.id}
        #: The runner's timeout for this check; waits for real time extend it.
        self.deadline: asyncio.Timeout | None = None

    def extend_deadline(self, seconds: float) -> None:
        """Give the check ``seconds`` more before the runner stops it.

        Used before waits the check cannot shorten: real time passing for a
        target with no test driver, an operator acting on an instruction.
        """
        if self.deadline is not None:
            when = self.deadline.when()
            if when is not None:
                self.deadline.reschedule(when + seconds)

    # -- shared state ------------------------------------------------------------------

    @property
    def role(self) -> Role:
        """The role of the target."""
        return self.session.role

    @property
    def options(self) -> RunOptions:
        """The run's options."""
        return self.session.options

    @property
    def discovery(self) -> dict[str, Any]:
        """The target's discovery document.

        Raises:
            HarnessError: it could not be fetched (the discovery checks say why).
        """
        if self.session.discovery is None:
            raise HarnessError(
                f"cannot judge without the target's discovery document: "
                f"{self.session.discovery_error or 'not fetched'}"
            )
        return self.session.discovery

    async def use(self, shared: Fixture[T]) -> T:
        """Use a shared scenario; its exchanges are cited by this check.

        Raises:
            CheckFailed, CheckSkipped, HarnessError: as the scenario ended.
        """
        return await self.session.use(shared, cite=self.scopes)

    # -- judging -----------------------------------------------------------------------

    def _record(
        self,
        condition: bool,
        description: str,
        level: Level,
        expected: Any,
        actual: Any,
        requirement: str | None,
    ) -> Expectation:
        # An expectation citing a requirement is judged at that requirement's
        # level when it is weaker than the check's: a SHOULD (spec §2, RFC 2119)
        # that does not hold makes a warning, even inside a MUST-level check.
        cited = self.session.requirement_levels.get(requirement) if requirement else None
        if cited is not None and cited.strength < level.strength:
            level = cited
        expectation = Expectation(
            description=description,
            passed=bool(condition),
            level=level,
            expected=expected,
            actual=actual,
            requirement=requirement,
        )
        return expectation

    def require(
        self,
        condition: bool,
        description: str,
        *,
        expected: Any = None,
        actual: Any = None,
        requirement: str | None = None,
    ) -> None:
        """Record an expectation at the check's level; stop the check if it failed.

        Raises:
            CheckFailed: ``condition`` is false.
        """
        expectation = self._record(
            condition, description, self.level, expected, actual, requirement
        )
        if not expectation.passed:
            raise CheckFailed(expectation)
        self.expectations.append(expectation)

    def expect(
        self,
        condition: bool,
        description: str,
        *,
        expected: Any = None,
        actual: Any = None,
        requirement: str | None = None,
    ) -> bool:
        """Record an expectation at the check's level and carry on either way."""
        expectation = self._record(
            condition, description, self.level, expected, actual, requirement
        )
        self.expectations.append(expectation)
        return expectation.passed

    def recommend(
        self,
        condition: bool,
        description: str,
        *,
        expected: Any = None,
        actual: Any = None,
        requirement: str | None = None,
    ) -> bool:
        """Record a SHOULD-level expectation: if it fails, the verdict is at worst a warning."""
        level = Level.SHOULD if self.level is Level.MUST else self.level
        expectation = self._record(condition, description, level, expected, actual, requirement)
        self.expectations.append(expectation)
        return expectation.passed

    def fail(
        self,
        description: str,
        *,
        expected: Any = None,
        actual: Any = None,
        requirement: str | None = None,
    ) -> NoReturn:
        """Fail the check now.

        Raises:
            CheckFailed: always.
        """
        raise CheckFailed(
            self._record(False, description, self.level, expected, actual, requirement)
        )

    def skip(self, reason: str) -> NoReturn:
        """End the check as skipped.

        Raises:
            CheckSkipped: always.
        """
        raise CheckSkipped(reason)

    def note(self, text: str) -> None:
        """Add a note to the report (context for a reader, never a verdict)."""
        self.notes.append(text)
