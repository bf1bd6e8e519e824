"""The individual's sharing policy, and the pure decisions taken from it.

The policy says what the buyer agent may disclose at each step (nothing that
identifies the individual before an acceptance, spec §12), which terms of
sharing it accepts on the individual's behalf (allowed purposes, recipient
roles, a maximum retention per data category, uses the counterparty must rule
out), which notifications the individual wants, and which proposed service
work the individual declines.

Everything here is a pure function of the policy and a typed message body
(the generated models of :mod:`vrm_protocol.models`): the agent decides, this
module only judges. A policy is read from TOML; the defaults ship with the
package (``default_policy.toml``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.freshness import parse_timestamp
from vrm_protocol.models import (
    DataRequest,
    Retention,
    ScopedDataRequest,
    TermsAssertionBody,
    VRMModel,
    to_payload,
)

__all__ = [
    "IDENTIFYING_CATEGORIES",
    "IDENTIFYING_MEMBERS",
    "Decision",
    "ItemDecision",
    "ServiceDecision",
    "SharingPolicy",
    "TermsDecision",
    "UnsafePolicyFile",
    "check_nothing_identifying",
    "check_private_config",
    "duration_days",
    "evaluate_data_requests",
    "evaluate_service_notice",
    "evaluate_terms",
    "is_identifying",
    "load_policy",
]

#: Envelope/body members that would identify the individual (spec §12): refused in
#: an RFI or RFP wherever they appear.
IDENTIFYING_MEMBERS = frozenset(
    {"identity", "personalDetails", "registration", "email", "phone", "address", "vin"}
)


#: Data categories that identify the individual (spec §12, "Identifying data"): a
#: category is identifying when it is one of these or lies under one of them.
#: None of them leaves her agent before she has accepted an offer of the party
#: that asks (VRM-PRIV-011).
IDENTIFYING_CATEGORIES = frozenset(
    {
        "identity",
        "contact",
        "location.home-area",
        "location.work-area",
        "location.address",
        "vehicle.registration",
        "vehicle.vin",
        "finance.account",
        "vehicle.registration-keeper",
        "insurance",
    }
)


def is_identifying(category: str, extra: frozenset[str] = frozenset()) -> bool:
    """Whether ``category`` identifies the individual (spec §12): it is, or lies
    under, a category of :data:`IDENTIFYING_CATEGORIES` or of ``extra``."""
    for rule in IDENTIFYING_CATEGORIES | extra:
        if category == rule or category.startswith(rule + "."):
            return True
    return False


class UnsafePolicyFile(ValueError):
    """A policy file that someone other than its owner could have written (spec D10)."""


class Decision(StrEnum):
    """The overall answer to a terms assertion (spec §6.8), plus ``ask``: the
    policy cannot decide and the individual must."""

    ACCEPT = "accept"
    ACCEPT_IN_PART = "accept-in-part"
    REFUSE = "refuse"
    ASK = "ask"


@dataclass(frozen=True, slots=True)
class SharingPolicy:
    """The individual's sharing policy (see ``default_policy.toml``)."""

    disclosure: Mapping[str, tuple[str, ...]]
    allowed_purposes: frozenset[str]
    allowed_recipient_roles: frozenset[str]
    forbidden_uses: tuple[str, ...]
    never_share: frozenset[str]
    max_retention: Mapping[str, str]
    notifications: tuple[str, ...]
    declined_service_work: Mapping[str, str] = field(default_factory=dict)
    #: Categories the individual counts as identifying besides the spec's own.
    identifying: frozenset[str] = frozenset()
    #: Her standing answers to a vendor's questions, by topic (spec §6.31).
    answers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any]) -> SharingPolicy:
        """Build a policy from a parsed TOML document.

        Raises:
            ValueError: a member has the wrong type or a retention is not an ISO 8601 period.
        """
        disclosure = document.get("disclosure", {})
        terms = document.get("terms", {})
        notifications = document.get("notifications", {})
        servicing = document.get("servicing", {})
        max_retention = {str(k): str(v) for k, v in terms.get("max_retention", {}).items()}
        for period in max_retention.values():
            duration_days(period)  # validate now, not when a vendor's terms arrive
        return cls(
            disclosure={
                str(step): tuple(map(str, items))
                for step, items in disclosure.items()
                if step != "identifying"
            },
            allowed_purposes=frozenset(map(str, terms.get("allowed_purposes", []))),
            allowed_recipient_roles=frozenset(map(str, terms.get("allowed_recipient_roles", []))),
            forbidden_uses=tuple(map(str, terms.get("forbidden_uses", []))),
            never_share=frozenset(map(str, terms.get("never_share", []))),
            max_retention=max_retention,
            notifications=tuple(map(str, notifications.get("allowed", []))),
            declined_service_work={str(k): str(v) for k, v in servicing.get("decline", {}).items()},
            identifying=frozenset(map(str, disclosure.get("identifying", []))),
            answers={str(k): str(v) for k, v in document.get("answers", {}).items()},
        )

    def may_disclose(self, step: str, category: str) -> bool:
        """Whether ``category`` may be disclosed at lifecycle ``step`` (``rfi``,
        ``rfp``, ``acceptance``)."""
        return category in self.disclosure.get(step, ())

    def is_identifying(self, category: str) -> bool:
        """Whether ``category`` identifies the individual (spec §12, plus her own list)."""
        return is_identifying(category, self.identifying)

    def retention_limit(self, category: str) -> str | None:
        """The longest retention the individual accepts for ``category``: the
        rule of its longest matching dotted prefix, else ``*``, else none."""
        parts = category.split(".")
        for length in range(len(parts), 0, -1):
            prefix = ".".join(parts[:length])
            if prefix in self.max_retention:
                return self.max_retention[prefix]
        return self.max_retention.get("*")


def load_policy(path: Path | None = None) -> SharingPolicy:
    """Load the policy from ``path``, or the packaged defaults when ``None``.

    A policy file that others can write is refused (spec D10): whoever can
    write it decides what her agent discloses.

    Raises:
        OSError: the file cannot be read.
        UnsafePolicyFile: the file is group- or world-writable, or not hers.
        tomllib.TOMLDecodeError: the file is not TOML.
        ValueError: the policy is malformed.
    """
    if path is None:
        text = resources.files("reference_buyer").joinpath("default_policy.toml").read_text("utf-8")
    else:
        check_private_config(path)
        text = path.read_text("utf-8")
    return SharingPolicy.from_mapping(tomllib.loads(text))


def check_private_config(path: Path) -> None:
    """Refuse configuration that someone other than the user could have written.

    Raises:
        OSError: the file cannot be examined.
        UnsafePolicyFile: it is group- or world-writable, or owned by another user.
    """
    status = path.stat()
    if status.st_mode & 0o022:
        raise UnsafePolicyFile(
            f"{path} is writable by others (mode {status.st_mode & 0o777:o}); "
            f"refusing it: chmod go-w {path}"
        )
    if hasattr(os, "getuid") and status.st_uid != os.getuid():
        raise UnsafePolicyFile(f"{path} belongs to another user; refusing it")


_DURATION = re.compile(
    r"P(?:(?P<y>\d+)Y)?(?:(?P<m>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<min>\d+)M)?(?:(?P<s>\d+)S)?)?"
)


def duration_days(period: str) -> float:
    """Length of an ISO 8601 period in days, months and years rounded up
    (31 and 366 days), so a comparison never accepts more than the limit.

    Raises:
        ValueError: ``period`` is not an ISO 8601 period.
    """
    match = _DURATION.fullmatch(period)
    if not match or period in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 period: {period!r}")
    value = {name: int(group or 0) for name, group in match.groupdict().items()}
    return (
        value["y"] * 366
        + value["m"] * 31
        + value["w"] * 7
        + value["d"]
        + (value["h"] * 3600 + value["min"] * 60 + value["s"]) / 86400
    )


@dataclass(frozen=True, slots=True)
class ItemDecision:
    """What the policy decided for one requested data item, and why."""

    item: str
    accepted: bool
    purposes: tuple[str, ...]
    retention: Retention | None
    reasons: tuple[str, ...]
    ask: bool = False


@dataclass(frozen=True, slots=True)
class TermsDecision:
    """The policy's answer to a terms assertion, item by item."""

    decision: Decision
    items: tuple[ItemDecision, ...]
    notifications: tuple[str, ...]
    reasons: tuple[str, ...] = ()

    @property
    def accepted(self) -> tuple[ItemDecision, ...]:
        """The items accepted."""
        return tuple(item for item in self.items if item.accepted)

    @property
    def refused(self) -> tuple[ItemDecision, ...]:
        """The items refused (or left to the individual)."""
        return tuple(item for item in self.items if not item.accepted)

    def withholding(self, withheld: Callable[[str], bool], reason: str) -> TermsDecision:
        """This decision with every item for which ``withheld(item)`` holds refused,
        for ``reason``, whatever was decided for it. Pure."""
        items = tuple(
            ItemDecision(i.item, False, (), None, (*i.reasons, reason)) if withheld(i.item) else i
            for i in self.items
        )
        if items == self.items:
            return self
        return TermsDecision(_overall(items), items, self.notifications, self.reasons)

    def resolved(self) -> TermsDecision:
        """This decision with every ``ask`` answered conservatively: refused.

        Used when the individual is not there to answer (test driver, batch runs).
        """
        if self.decision is not Decision.ASK:
            return self
        items = tuple(
            ItemDecision(i.item, False, (), None, (*i.reasons, "not decided: refused by default"))
            if i.ask
            else i
            for i in self.items
        )
        return TermsDecision(_overall(items), items, self.notifications, self.reasons)


def _overall(items: Sequence[ItemDecision]) -> Decision:
    if any(item.ask for item in items):
        return Decision.ASK
    accepted = sum(1 for item in items if item.accepted)
    if accepted == len(items) and items:
        return Decision.ACCEPT
    return Decision.ACCEPT_IN_PART if accepted else Decision.REFUSE


def _mentions(commitments: Iterable[str], use: str) -> bool:
    needle = use.lower()
    return any(needle in text.lower() for text in commitments)


def evaluate_terms(
    assertion: TermsAssertionBody, policy: SharingPolicy, *, now: datetime | None = None
) -> TermsDecision:
    """Judge a terms assertion's body (spec §6.7) against the policy.

    Rules, each with its reason in the result:

    * every use the policy forbids must be ruled out in ``commitments.willNotDo``,
      else everything is refused (there is no safe part to accept);
    * an assertion past its ``validUntil`` (when ``now`` is given) is refused;
    * per item: a category the policy never shares is refused; purposes are cut
      down to the allowed ones (none left: refused); any recipient of a role the
      policy does not allow refuses the item; a retention longer than the
      category's limit refuses it; a category with no limit at all is left to
      the individual (``ask``).

    Pure: no I/O, no clock of its own.
    """
    wanted = assertion.notification_categories
    notifications = tuple(
        category for category in policy.notifications if wanted is None or category in wanted
    )
    global_reasons: list[str] = [
        f"the terms do not rule out '{use}' in willNotDo"
        for use in policy.forbidden_uses
        if not _mentions(assertion.commitments.will_not_do, use)
    ]
    if now is not None:
        try:
            expired = parse_timestamp(assertion.valid_until) <= now
        except ValueError:
            global_reasons.append(f"validUntil {assertion.valid_until!r} is not a timestamp")
        else:
            if expired:
                global_reasons.append(f"the terms expired at {assertion.valid_until}")
    if global_reasons:
        items = tuple(
            ItemDecision(request.item, False, (), None, tuple(global_reasons))
            for request in assertion.requests
        )
        return TermsDecision(Decision.REFUSE, items, notifications, tuple(global_reasons))
    items = tuple(_evaluate_item(request, policy) for request in assertion.requests)
    return TermsDecision(_overall(items), items, notifications)


def _evaluate_item(request: DataRequest | ScopedDataRequest, policy: SharingPolicy) -> ItemDecision:
    item = request.item
    if item in policy.never_share:
        return ItemDecision(item, False, (), None, (f"{item} is never shared",))
    asked = list(request.purposes)
    purposes = tuple(p for p in asked if p in policy.allowed_purposes)
    reasons = [f"purpose '{p}' not accepted" for p in asked if p not in policy.allowed_purposes]
    if not purposes:
        return ItemDecision(item, False, (), None, (*reasons, "no acceptable purpose left"))
    recipients = request.recipients if isinstance(request, DataRequest) else None
    for recipient in recipients or ():
        if recipient.role not in policy.allowed_recipient_roles:
            return ItemDecision(
                item,
                False,
                (),
                None,
                (*reasons, f"recipient {recipient.name} ({recipient.role}) not accepted"),
            )
    period = request.retention.period
    limit = policy.retention_limit(item)
    if limit is None:
        return ItemDecision(
            item, False, (), None, (*reasons, f"no retention rule for {item}"), ask=True
        )
    try:
        too_long = duration_days(period) > duration_days(limit)
    except ValueError:
        return ItemDecision(item, False, (), None, (*reasons, f"retention {period!r} unreadable"))
    if too_long:
        return ItemDecision(
            item, False, (), None, (*reasons, f"retention {period} exceeds {limit}")
        )
    return ItemDecision(item, True, purposes, Retention(period=period), tuple(reasons))


def evaluate_data_requests(
    requests: Sequence[ScopedDataRequest], policy: SharingPolicy
) -> tuple[ItemDecision, ...]:
    """Judge scoped data requests of a service notice (spec §6.9, e.g. a programme
    asking for travel dates) by the same per-item rules as terms.  Pure."""
    return tuple(_evaluate_item(request, policy) for request in requests)


@dataclass(frozen=True, slots=True)
class ServiceDecision:
    """The policy's answer to a service notice (spec §6.10)."""

    decision: str
    accepted: tuple[str, ...]
    declined: tuple[tuple[str, str], ...]


def evaluate_service_notice(work_items: Sequence[str], policy: SharingPolicy) -> ServiceDecision:
    """Split the work a service notice proposes into what the individual accepts
    and what they decline (with the reason the policy records).

    Pure.  ``decision`` is ``accept`` when nothing is declined, ``decline`` when
    nothing is accepted, else ``accept-in-part``.
    """
    declined = tuple(
        (item, policy.declined_service_work[item])
        for item in work_items
        if item in policy.declined_service_work
    )
    refused = {item for item, _ in declined}
    accepted = tuple(item for item in work_items if item not in refused)
    if not declined:
        decision = "accept"
    elif not accepted:
        decision = "decline"
    else:
        decision = "accept-in-part"
    return ServiceDecision(decision, accepted, declined)


def check_nothing_identifying(body: VRMModel | Any, *, where: str = "/body") -> None:
    """Refuse to send an RFI or RFP body that carries identifying members (spec §12).

    ``body`` is a body model (judged in its wire form) or a JSON value.

    Raises:
        LocalProtocolError: ``SCHEMA_INVALID`` naming, as a JSON Pointer, the
            first identifying member found.
    """
    if isinstance(body, VRMModel):
        body = to_payload(body)
    if isinstance(body, Mapping):
        for name, value in body.items():
            path = f"{where}/{_pointer_token(str(name))}"
            if name in IDENTIFYING_MEMBERS:
                raise LocalProtocolError(
                    ErrorCode.SCHEMA_INVALID,
                    f"{path} would identify the individual before an acceptance",
                    path=path,
                )
            check_nothing_identifying(value, where=path)
    elif isinstance(body, list):
        for index, value in enumerate(body):
            check_nothing_identifying(value, where=f"{where}/{index}")


def _pointer_token(name: str) -> str:
    # RFC 6901 §3: "~" and "/" are escaped in a reference token.
    return name.replace("~", "~0").replace("/", "~1")
