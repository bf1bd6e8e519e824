"""The individual's decisions as the test driver carries them (spec §14.3, VRM-CONF-008).

A ``terms`` instruction may carry her decision (``TermsDecision`` of
``schemas/binding/test-driver.schema.json``): the agent then answers as she
decided, not by her standing policy. Pure, apart from reading the assertion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reference_buyer.outgoing import received
from reference_buyer.policy import Decision, ItemDecision, TermsDecision
from reference_buyer.store import BuyerStore
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.models import TermsAssertionMessage
from vrm_protocol.vocabulary import MessageType

__all__ = ["decided_terms"]

_DECISIONS = {d.value: d for d in (Decision.ACCEPT, Decision.ACCEPT_IN_PART, Decision.REFUSE)}


def _invalid(detail: str, path: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.INVALID_REQUEST, detail, path=path)


async def decided_terms(
    store: BuyerStore, assertion_id: str, document: Mapping[str, Any]
) -> TermsDecision | None:
    """Her decision on the terms assertion ``assertion_id``, from the driver's
    ``decision`` member; ``None`` when the instruction carries none.

    ``accept`` takes every item the assertion asks for, ``accept-in-part`` the
    items listed in ``accept`` (the others are refused), ``refuse`` none;
    ``notifications`` are the categories she allows (none by default).

    Raises:
        RemoteProtocolError: INVALID_REQUEST, a decision not of the driver's schema.
        LocalProtocolError: ILLEGAL_TRANSITION, she received no such assertion.
    """
    raw = document.get("decision")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _invalid("'decision' must be a JSON object", "/decision")
    decision = _DECISIONS.get(str(raw.get("decision")))
    if decision is None:
        raise _invalid("'decision.decision' must be accept, accept-in-part or refuse", "/decision")
    chosen = raw.get("accept", [])
    notifications = raw.get("notifications", [])
    for name, value in (("accept", chosen), ("notifications", notifications)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid(f"'decision.{name}' must be a list of strings", f"/decision/{name}")
    entry = await received(store, assertion_id, MessageType.TERMS_ASSERTION)
    message = entry.model()
    assert isinstance(message, TermsAssertionMessage)
    items = []
    for request in message.body.requests:
        taken = decision is Decision.ACCEPT or (
            decision is Decision.ACCEPT_IN_PART and request.item in chosen
        )
        items.append(
            ItemDecision(
                request.item,
                taken,
                tuple(request.purposes) if taken else (),
                request.retention if taken else None,
                () if taken else ("she refused it",),
            )
        )
    return TermsDecision(decision, tuple(items), tuple(notifications))
