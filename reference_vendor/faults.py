"""Named fault switches, for the conformance suite's negative self-tests.

A conformance suite that never fails proves nothing: the suite's own tests
start the reference vendor with one of these faults (``vendor serve
--test-mode --fault NAME``) and show that the check named here fails. They
are refused outside test mode, so a production agent cannot be started
broken by accident.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Final

from vrm_protocol.canonical import b64url_decode, b64url_encode
from vrm_protocol.keys import KeyResolver, VerifyingKey

__all__ = [
    "FAULTS",
    "FaultError",
    "announces_alg_none",
    "check_faults",
    "header_kid",
    "reframed_with_key_alg",
    "signature_not_checked",
]

#: Fault name -> what the agent then does wrong (and the check that must catch it).
FAULTS: Final[dict[str, str]] = {
    "accept-expired-offer": (
        "honours an acceptance of an offer past its validUntil (VEN-ACCEPT-EXPIRED)"
    ),
    "skip-audience-check": ("accepts messages addressed to another party (SEC-AUDIENCE)"),
    "keep-data-after-retention": ("never deletes data whose retention has ended (VEN-RETENTION)"),
    "ignore-exit": (
        "acknowledges an exit and receipts the deletion, but keeps the data (VEN-EXIT-FINAL)"
    ),
    "wrong-receipt-digest": (
        "receipts name a digest other than the message's (VEN-RFI-RECEIPT, AUD-RECEIPTS)"
    ),
    "offer-over-budget": (
        "answers RFIs and RFPs with a total above the buyer's budget (VEN-RFI-OFFER)"
    ),
    "accept-alg-none": (
        "takes a message whose JWS header says alg none, in any letter case, as if it were "
        "signed with the sender's key (SEC-ALG-NONE)"
    ),
    "skip-signature-check": (
        "accepts a message whose signature does not verify (SEC-SIG-TAMPERED)"
    ),
    "no-replay-guard": (
        "processes another message under a used (sender, id) as new (SEC-REPLAY-DIFFERENT)"
    ),
    "key-budget-before-verification": (
        "charges the per-key rate budget by the header's kid before the signature is verified, "
        "so junk naming a victim's key locks the victim out (BIND-KID-LOCKOUT)"
    ),
    "follow-redirects": ("follows a redirect in answer to the POST of a reply (BIND-NO-REDIRECT)"),
    "mailbox-only-without-reply-to": (
        "keeps in the mailbox only the messages that were not POSTed to a replyTo inbox "
        "(MBX-KEPT-WITH-REPLY-TO)"
    ),
}


class FaultError(ValueError):
    """A fault switch was asked for where it is not allowed, or does not exist."""


def check_faults(names: Iterable[str], *, test_mode: bool) -> frozenset[str]:
    """Validate fault names.

    Raises:
        FaultError: an unknown name, or any fault outside test mode.
    """
    chosen = frozenset(names)
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise FaultError(f"unknown fault(s) {unknown}; known: {sorted(FAULTS)}")
    if chosen and not test_mode:
        raise FaultError("fault switches are allowed only with --test-mode")
    return chosen


# -- the deliberately weakened receiving paths ----------------------------------------------------
#
# Used ONLY when the fault of the same name is switched on (test mode). The
# normal pipeline (vrm_protocol.codec.decode) is never changed: each fault
# feeds it something that makes exactly one stage let the defect through, so
# every other stage still judges the message.


class _AnySignatureKey(VerifyingKey):
    """A public key whose ``verify`` accepts any signature (faults only)."""

    def verify(self, signing_input: bytes, signature: bytes) -> None:
        """Accept every signature: the signature stage (spec §8.4 stage 5) is skipped."""
        return None


def signature_not_checked(resolve: KeyResolver) -> KeyResolver:
    """``resolve``, but every key it finds accepts any signature.

    For the ``skip-signature-check`` and ``accept-alg-none`` faults only.
    Key lookup itself (``unknown-key``) still applies.
    """

    def resolve_without_checking(kid: str) -> VerifyingKey:
        key = resolve(kid)
        members = {item.name: getattr(key, item.name) for item in dataclasses.fields(key)}
        return _AnySignatureKey(**members)

    return resolve_without_checking


def _header(token: bytes) -> dict[str, object] | None:
    segment = token.split(b".", 1)[0]
    try:
        header = json.loads(b64url_decode(segment))
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def header_kid(token: bytes) -> str | None:
    """FAULT ONLY (``key-budget-before-verification``): the header's ``kid``, read
    before the pipeline, as the agent once did to pick a rate-limit bucket."""
    header = _header(token)
    kid = header.get("kid") if header is not None else None
    return kid if isinstance(kid, str) else None


def announces_alg_none(token: bytes) -> bool:
    """Whether the token's protected header names ``alg`` none, in any letter case."""
    header = _header(token)
    alg = header.get("alg") if header is not None else None
    return isinstance(alg, str) and alg.lower() == "none"


def reframed_with_key_alg(token: bytes, resolve: KeyResolver) -> bytes:
    """For the ``accept-alg-none`` fault: ``token`` with its header's ``alg`` replaced by
    the algorithm of the key its ``kid`` names, so that the rest of the pipeline
    (with :func:`signature_not_checked`) judges it as a signed message.

    Raises:
        RemoteProtocolError: UNKNOWN_KEY (from ``resolve``).
        ValueError: the token has no JSON object header or no string ``kid``.
    """
    header = _header(token)
    if header is None or not isinstance(header.get("kid"), str):
        raise ValueError("the token has no header with a kid")
    key = resolve(str(header["kid"]))
    header["alg"] = key.alg
    _, rest = token.split(b".", 1)
    return b64url_encode(json.dumps(header).encode()).encode("ascii") + b"." + rest
