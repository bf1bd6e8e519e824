"""Her guards for the transaction carried through (spec §6.23, §6.24): strategies.

Strategies, so that the suite's self-tests can start her agent with a guard
weakened (:mod:`reference_buyer.faults`) without a branch in production code.
"""

from __future__ import annotations

from typing import Final, Protocol

from vrm_protocol.message_types.handover_record import one_sided
from vrm_protocol.models import HandoverRecordBody

__all__ = ["BOTH_OR_NEITHER", "AnyHandover", "BothOrNeither", "HandoverRule", "Reason"]

#: A reason for refusing a handover: its code and its words (spec §6.24).
Reason = tuple[str, str]


class HandoverRule(Protocol):
    """Which handover records she accepts (spec §6.24, VRM-TRX-005)."""

    def judge(
        self, record: HandoverRecordBody, *, trade_in: bool, acceptance_digest: str | None
    ) -> list[Reason]:
        """Her reasons for refusing ``record``, none when she accepts it.
        ``trade_in`` says whether the offer she accepted has a trade-in;
        ``acceptance_digest`` is the digest of the acceptance she sent."""
        ...


class BothOrNeither:
    """The record names her acceptance by its bytes, and when her deal has a
    trade-in, the new item comes to her and the trade-in goes, together, whatever
    the record says of the deal (seed 001)."""

    def judge(
        self, record: HandoverRecordBody, *, trade_in: bool, acceptance_digest: str | None
    ) -> list[Reason]:
        """Refuse a record bound to another acceptance, or one-sided by her deal."""
        reasons: list[Reason] = []
        if acceptance_digest is not None and record.deal.acceptance.digest != acceptance_digest:
            reasons.append(
                ("not-her-deal", "The record names my acceptance with a digest other than mine.")
            )
        why = one_sided(record.items, trade_in=trade_in)
        if why is not None:
            code = "trade-in-not-taken" if trade_in else "not-as-described"
            reasons.append(
                (code, f"One-sided handover: {why}, but my accepted offer says otherwise.")
            )
        return reasons


class AnyHandover:
    """Fault only: accepts whatever the vendor records."""

    def judge(
        self, record: HandoverRecordBody, *, trade_in: bool, acceptance_digest: str | None
    ) -> list[Reason]:
        """No reason, ever."""
        return []


BOTH_OR_NEITHER: Final = BothOrNeither()
