"""The check registry: every check is a registered async function with metadata.

A check is declared with the :meth:`CheckRegistry.check` decorator::

    @REGISTRY.check(
        "SEC-ALG-NONE",
        title="Messages signed with alg 'none' are rejected",
        step=WIRE_STEP,
        requirements=("VRM-SIG-002",),
        roles=(Role.VENDOR, Role.BUYER),
    )
    async def alg_none_rejected(ctx: CheckContext) -> None:
        ...

``roles`` names the role of the *target* the check applies to. ``needs``
names capabilities the target must declare in its discovery document for the
check to apply (``test-driver``, ``accepts:personal-rfp``, ...); a check whose
needs are not met is skipped with the reason. ``audit`` checks judge the
whole transcript and run after every other check.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from conformance.model import ALL_STEPS, Level
from vrm_protocol.vocabulary import Role

if TYPE_CHECKING:
    from conformance.context import CheckContext

__all__ = [
    "CHECK_ID_PATTERN",
    "REGISTRY",
    "Check",
    "CheckFunction",
    "CheckRegistry",
]

CheckFunction = Callable[["CheckContext"], Awaitable[None]]

#: Check ids are stable, upper-case and hyphenated ("SEC-ALG-NONE"), like
#: requirement ids, so that baselines and reports survive suite upgrades.
CHECK_ID_PATTERN: Final = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")

#: Capabilities a check may need (see :mod:`conformance.capabilities`).
_CAPABILITY_PATTERN: Final = re.compile(
    r"^(test-driver|restart-command|(accepts|sends):[a-z][a-z-]*)$"
)


@dataclass(frozen=True, slots=True)
class Check:
    """One registered check and what it cites."""

    id: str
    title: str
    step: str
    requirements: tuple[str, ...]
    roles: frozenset[Role]
    function: CheckFunction = field(repr=False, compare=False)
    #: Declared level; ``None`` means "the strongest level among the cited
    #: requirements", looked up in the requirements registry.
    level: Level | None = None
    needs: frozenset[str] = frozenset()
    audit: bool = False
    #: Seconds the check may take before the runner stops it. Checks that
    #: wait for real time to pass extend it through the context's clock.
    timeout: float = 30.0

    @property
    def description(self) -> str:
        """The check function's docstring: what is checked and why."""
        return (self.function.__doc__ or self.title).strip()

    def applies_to(self, role: Role) -> bool:
        """Whether the check judges a target of ``role``."""
        return role in self.roles


class CheckRegistry:
    """An ordered collection of checks, keyed by id."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def check(
        self,
        check_id: str,
        *,
        title: str,
        step: str,
        requirements: Iterable[str],
        roles: Iterable[Role],
        level: Level | None = None,
        needs: Iterable[str] = (),
        audit: bool = False,
        timeout: float = 30.0,
    ) -> Callable[[CheckFunction], CheckFunction]:
        """Register the decorated async function as a check.

        Raises:
            ValueError: the id is malformed or already registered, the step or a
                capability is unknown, or no requirement or role is given.
        """

        def register(function: CheckFunction) -> CheckFunction:
            self.add(
                Check(
                    id=check_id,
                    title=title,
                    step=step,
                    requirements=tuple(requirements),
                    roles=frozenset(roles),
                    function=function,
                    level=level,
                    needs=frozenset(needs),
                    audit=audit,
                    timeout=timeout,
                )
            )
            return function

        return register

    def add(self, check: Check) -> None:
        """Add a check.

        Raises:
            ValueError: as for :meth:`check`.
        """
        if not CHECK_ID_PATTERN.fullmatch(check.id):
            raise ValueError(f"check id {check.id!r} does not match {CHECK_ID_PATTERN.pattern}")
        if check.id in self._checks:
            raise ValueError(f"check {check.id!r} is registered twice")
        if check.step not in ALL_STEPS:
            raise ValueError(f"check {check.id!r}: unknown step {check.step!r}")
        if not check.requirements:
            raise ValueError(f"check {check.id!r} cites no requirement")
        if not check.roles:
            raise ValueError(f"check {check.id!r} applies to no role")
        for need in check.needs:
            if not _CAPABILITY_PATTERN.fullmatch(need):
                raise ValueError(f"check {check.id!r}: unknown capability {need!r}")
        self._checks[check.id] = check

    def get(self, check_id: str) -> Check:
        """The check with this id.

        Raises:
            KeyError: no such check.
        """
        return self._checks[check_id]

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def __iter__(self) -> Iterator[Check]:
        return iter(self._checks.values())

    def __len__(self) -> int:
        return len(self._checks)


#: The suite's own checks (filled by importing :mod:`conformance.checks`).
REGISTRY: Final = CheckRegistry()
