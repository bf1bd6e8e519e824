"""Her agent when a vendor leaves the market (seed 003 step 9; spec §6.13, VRM-RET-004).

The vendor's exit notice carries her export and the receipt of the deletion
it did. Her agent checks both against her sharing log
(:func:`reference_buyer.exits.verify_vendor_exit`) when the notice arrives and
records the outcome with the notice (``store.exits()``). Then, outside the
unit that took the notice (the buyer agent sends only through its sender, one
message at a time), it acknowledges the notice by digest, and reports the
shortfall with a ``problem-report`` of code ``exit-incomplete`` when the export
or the receipt does not account for everything she shared.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from reference_buyer.handlers import HANDLERS, _journal
from reference_buyer.store import ExitRecord
from vrm_agent.inbox import Inbound
from vrm_agent.unit import DomainWrite, UnitOfWork
from vrm_protocol.errors import ErrorCode, ProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import ExitNoticeMessage, to_payload
from vrm_protocol.state_machine import Direction
from vrm_protocol.vocabulary import MessageType

if TYPE_CHECKING:
    from reference_buyer.agent import BuyerAgent

__all__ = ["VENDOR_EXIT", "answer_vendor_exits"]

log = logging.getLogger(__name__)

#: The mark her exit record of a vendor's notice carries (``preferences.by``).
VENDOR_EXIT: Final = "vendor"


@HANDLERS.on(ExitNoticeMessage)
async def on_vendor_exit(
    buyer: BuyerAgent, inbound: Inbound[ExitNoticeMessage], work: UnitOfWork
) -> None:
    """A vendor leaves the market: its export and deletion receipt checked against
    what she shared with it, and recorded (spec §6.13, VRM-RET-004)."""
    _journal(inbound, work)
    body = inbound.message.body
    shared = [record.category for record in await buyer.store.shared_with(inbound.peer)]
    check = buyer.strategies.vendor_exits.check(
        body, our_id=inbound.us.party_id, shared_categories=shared
    )
    preferences = body.reengagement.model_dump(mode="json", by_alias=True, exclude_none=True)
    work.write(
        ExitRecord(
            peer=inbound.peer,
            notice_id=inbound.id,
            notice_digest=inbound.digest,
            preferences={**preferences, "by": VENDOR_EXIT, "reason": body.reason},
            at=format_timestamp(inbound.now),
            deletion_receipt=(
                to_payload(body.deletion_receipt) if body.deletion_receipt is not None else None
            ),
            receipt_verified=check.verified,
            problems=check.problems,
        )
    )


def answer_vendor_exits(buyer: BuyerAgent, writes: list[DomainWrite]) -> list[asyncio.Task[None]]:
    """After the commit: acknowledge each vendor exit the unit recorded, and report
    its shortfall (tasks the agent keeps until they end)."""
    return [
        asyncio.get_running_loop().create_task(_answer(buyer, write))
        for write in writes
        if isinstance(write, ExitRecord) and write.preferences.get("by") == VENDOR_EXIT
    ]


async def _answer(buyer: BuyerAgent, record: ExitRecord) -> None:
    try:
        if record.problems:
            entry = await buyer.store.entry(record.notice_id, direction=Direction.RECEIVED)
            if entry is not None and entry.type is MessageType.EXIT_NOTICE:
                await buyer.owning.report_problem(
                    entry, ErrorCode.EXIT_INCOMPLETE, "; ".join(record.problems)
                )
        await buyer.owning.acknowledge_exit(record.notice_id)
    except (ProtocolError, LookupError) as error:
        log.warning("the vendor's exit %s was not acknowledged: %s", record.notice_id, error)
    except Exception:
        log.exception("acknowledging the vendor's exit %s failed", record.notice_id)
