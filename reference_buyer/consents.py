"""Her consent changes (spec §6.20) and the check of their receipts (spec §6.21).

She withdraws, narrows or widens her consent to items at any time in a
relationship, in one signed message; the party answers with a signed consent
receipt, which her agent reads against her sharing log as it reads an exit's
deletion receipt (:func:`reference_buyer.exits.unaccounted`): a withdrawn item
she shared must be deleted or retained with a basis, and no item may keep a
purpose her change did not leave (VRM-GRANT-012).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reference_buyer.exits import unaccounted
from reference_buyer.outgoing import Sender, build
from reference_buyer.store import BuyerStore, ConsentChangeRecord
from vrm_agent.clock import Clock
from vrm_agent.inbox import Sent
from vrm_agent.unit import outgoing, present
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.models import (
    ConsentChangeBody,
    ConsentChangeItem,
    ConsentReceiptBody,
    MessageRef,
    to_payload,
)

__all__ = ["ConsentCheck", "Consents", "verify_consent_receipt"]


@dataclass(frozen=True, slots=True)
class ConsentCheck:
    """How a consent receipt checked out."""

    verified: bool
    problems: tuple[str, ...]


def verify_consent_receipt(
    body: ConsentReceiptBody,
    *,
    change: ConsentChangeBody,
    change_ref: MessageRef,
    shared_categories: Iterable[str],
) -> ConsentCheck:
    """Check a consent receipt against her change and what she shared (spec §6.21). Pure.

    The receipt must bind her change's exact bytes, account for every item she
    changed, leave no purpose on a withdrawn item and none beyond those a
    narrowing named, and delete, or retain with a basis, every withdrawn item
    her sharing log says she disclosed to the party.
    """
    problems: list[str] = []
    if body.change != change_ref:
        problems.append("the receipt does not bind our consent change's exact bytes")
    applied = {item.item: item for item in body.applied}
    retained = {item.item: item.basis for item in body.retained}
    shared = set(shared_categories)
    for wanted in change.changes:
        item = wanted.item
        done = applied.get(item)
        if done is None and item not in retained:
            problems.append(f"{item}: the receipt does not account for it")
            continue
        purposes = set(done.purposes) if done is not None else set()
        if wanted.action == "withdraw":
            if purposes:
                problems.append(f"{item}: withdrawn, yet still used for {sorted(purposes)}")
            deleted = {item} if done is not None and done.deleted else set()
            problems.extend(
                f"{category}: shared and withdrawn, but neither deleted nor retained with a basis"
                for category in unaccounted([item] if item in shared else [], deleted, retained)
            )
        elif wanted.action == "narrow" and not purposes <= set(wanted.purposes or ()):
            extra = sorted(purposes - set(wanted.purposes or ()))
            problems.append(f"{item}: narrowed, yet still used for {extra}")
    return ConsentCheck(not problems, tuple(problems))


class Consents:
    """Her consent changes (see the module docstring).

    Args:
        store: her store.
        sender: how a message of hers goes out.
        clock: the one clock.
    """

    def __init__(self, store: BuyerStore, sender: Sender, clock: Clock) -> None:
        self.store = store
        self.sender = sender
        self.clock = clock

    async def change(
        self,
        peer: str,
        changes: Sequence[ConsentChangeItem | dict[str, Any]],
        *,
        reason: str | None = None,
    ) -> Sent:
        """Withdraw, narrow or widen her consent to items held by ``peer`` (spec §6.20).
        The receipt is checked when it arrives (``store.consent_changes()``).

        Raises:
            LocalProtocolError: the change is not valid, or the relationship is
                in no engaged state.
            RemoteProtocolError: the party refused it.
        """
        items = tuple(
            c if isinstance(c, ConsentChangeItem) else build(ConsentChangeItem, **c)
            for c in changes
        )
        body = build(ConsentChangeBody, changes=items, **present(reason=reason))
        signed = [e for e in await self.store.history(peer=peer, include_refused=False) if e.token]
        last = signed[-1] if signed else None
        reply = outgoing(
            body,
            thread=last.thread if last is not None else None,
            parent=last.message_id if last is not None else None,
        )
        reply.writes.append(
            ConsentChangeRecord(
                change_id=reply.id,
                peer=peer,
                changes=tuple(to_payload(item) for item in items),
                at=format_timestamp(self.clock.now()),
            )
        )
        return await self.sender.send(peer, reply)
