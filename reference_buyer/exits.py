"""Checking an exit acknowledgement against what she shared (spec §6.14). Pure."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.errors import ProtocolError
from vrm_protocol.models import ExitAcknowledgementBody, MessageRef

__all__ = ["ExitCheck", "unaccounted", "verify_exit_acknowledgement"]


@dataclass(frozen=True, slots=True)
class ExitCheck:
    """How an exit acknowledgement's export and deletion receipt checked out."""

    verified: bool
    problems: tuple[str, ...]
    shared: tuple[str, ...]
    deleted: tuple[str, ...]
    #: The items she shared that a deletion receipt she asked for does not
    #: account for (neither deleted nor retained with a basis), VRM-BUY-014.
    unaccounted: tuple[str, ...] = ()


def unaccounted(
    shared: Iterable[str], deleted: Collection[str], retained: Mapping[str, str]
) -> list[str]:
    """The categories of ``shared`` that a receipt neither lists as ``deleted`` nor
    as ``retained`` (category -> basis) with a basis: what it fails to account for
    (spec §6.14, §6.21). Pure."""
    return [
        category
        for category in shared
        if category not in deleted and not retained.get(category, "").strip()
    ]


def verify_exit_acknowledgement(
    body: ExitAcknowledgementBody,
    *,
    notice: MessageRef,
    export_requested: bool,
    deletion_requested: bool,
    our_id: str,
    shared_categories: Iterable[str],
) -> ExitCheck:
    """Check an exit acknowledgement against what the individual shared (spec §6.14).

    Every category her sharing log says was disclosed must be listed as
    deleted, or as retained with a basis (the schema requires one); the
    receipt must be about her pseudonym and acknowledge her notice's exact
    bytes (``notice``); the export's digest must match its data, and an
    export she asked for must be there. Pure.
    """
    problems: list[str] = []
    if body.notice != notice:
        problems.append("the acknowledgement does not bind our exit notice's exact bytes")
    receipt = body.deletion_receipt
    shared = tuple(sorted(set(shared_categories)))
    deleted: tuple[str, ...] = ()
    missing: list[str] = []
    if receipt is None:
        # Present only when her notice asked for deletion (spec §6.14); the state
        # machine refuses an acknowledgement that lacks one she asked for.
        if deletion_requested:
            problems.append("a deletion was requested but no deletion receipt was given")
    else:
        if receipt.relationship != our_id:
            problems.append(f"the deletion receipt is about {receipt.relationship}, not us")
        deleted = tuple(receipt.deleted)
        retained = {item.item: item.basis for item in receipt.retained or ()}
        left_out = unaccounted(shared, deleted, retained)
        problems.extend(
            f"{category} was shared but is neither deleted nor retained with a basis"
            for category in left_out
        )
        if deletion_requested:
            missing = left_out
    export = body.export
    if export is not None:
        try:
            expected: str | None = message_digest(canonical_json(export.data))
        except (ProtocolError, TypeError, ValueError):
            expected = None
        if expected is None or export.digest != expected:
            problems.append("the export's digest does not match its data")
    elif export_requested:
        problems.append("an export was requested but none was given")
    return ExitCheck(not problems, tuple(problems), shared, deleted, tuple(missing))
