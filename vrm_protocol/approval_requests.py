"""A co-decision-maker's approval, asked of his own agent (spec §10.2, §11.11).

Her agent never holds his key (VRM-BUY-011): it asks his agent for the
approval of one offer, and his agent, once he decided, signs the approval
attestation (kind ``approval``, §10) with his own key and posts it back. Two
compact JWS travel between the agents, both under the signing profile (§8):

* the *approval request*, ``typ`` ``vrm-approval-request+jws``, signed by her
  pseudonym with the vendor (a ``did:jwk``, so it proves she is the subject the
  approval will name), POSTed to ``{his agent}/vrm/approvals``::

      {"iss": her pseudonym, "aud": his agent's party id, "jti": "urn:uuid:...",
       "iat": ..., "exp": ..., "vendor": the vendor's party id,
       "offer": {"id", "digest"}, "summary": "...", "replyTo": "https://..."}

  Without ``offer`` (and ``summary``) it is an *enrolment*: his agent answers
  with the identifier he will approve under in that relationship (his own
  pairwise ``did:jwk``), which her RFP names in its ``approval-required``
  condition (spec §6.2) before any offer exists;
* the *answer*, POSTed by his agent to ``replyTo``: the approval attestation
  (``vrm-attestation+jws``, subject her pseudonym, audience the vendor,
  ``claims.approves.offer`` the request's offer), or a refusal, ``typ``
  ``vrm-approval-refusal+jws`` signed by the same key::

      {"iss": his identifier, "sub": her pseudonym, "request": the request's jti,
       "offer": {"id", "digest"}, "iat": ..., "reason": "..."}
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from vrm_protocol.attestations import VerifiedAttestation, issue_attestation, verify_attestation
from vrm_protocol.canonical import b64url_decode, canonical_json
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import DEFAULT_SKEW, format_timestamp, later, parse_timestamp
from vrm_protocol.keys import (
    DID_JWK_KEY_FRAGMENT,
    DID_JWK_PREFIX,
    KeyResolver,
    SigningKey,
    VerifyingKey,
    resolve_did_jwk,
)
from vrm_protocol.signing_profile import sign_compact, verify_compact

__all__ = [
    "APPROVALS_PATH",
    "APPROVAL_REFUSAL_TYP",
    "APPROVAL_REPLIES_PATH",
    "APPROVAL_REQUEST_LIFETIME",
    "APPROVAL_REQUEST_TYP",
    "ApprovalAnswer",
    "ApprovalRequest",
    "issue_approval",
    "issue_approval_refusal",
    "issue_approval_request",
    "verify_approval_answer",
    "verify_approval_request",
]

APPROVAL_REQUEST_TYP: Final = "vrm-approval-request+jws"
APPROVAL_REFUSAL_TYP: Final = "vrm-approval-refusal+jws"
#: His agent's endpoint for approval requests (spec §11.11).
APPROVALS_PATH: Final = "/vrm/approvals"
#: Her agent's reply inboxes for answers: one unguessable segment per request follows.
APPROVAL_REPLIES_PATH: Final = "/vrm/approvals/replies"
#: How long a request (and so the approval of it) stays valid unless said otherwise.
APPROVAL_REQUEST_LIFETIME: Final = timedelta(days=2)
#: The longest summary a request carries (it is read by a person).
MAX_SUMMARY_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A verified approval request (or enrolment, when ``offer`` is ``None``)."""

    requester: str
    agent: str
    vendor: str
    jti: str
    issued: datetime
    expires: datetime
    reply_to: str | None
    offer: Mapping[str, str] | None
    summary: str | None


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    """His answer to a request: the approval (``approval`` set) or a refusal."""

    approved: bool
    approval: dict[str, str] | None
    reason: str | None


def _invalid(detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.INVALID_REQUEST, detail)


def _did_jwk_resolver(issuer: str) -> KeyResolver:
    def resolve(kid: str) -> VerifyingKey:
        # A did:jwk signs only under its own "#0" key: another kid would let
        # anyone sign in its name.
        if kid != issuer + DID_JWK_KEY_FRAGMENT:
            raise RemoteProtocolError(
                ErrorCode.UNKNOWN_KEY, f"kid {kid!r} is not the key of {issuer!r}"
            )
        return resolve_did_jwk(kid)

    return resolve


def _offer_ref(value: object) -> dict[str, str]:
    if (
        not isinstance(value, Mapping)
        or set(value) != {"id", "digest"}
        or not all(isinstance(value[k], str) and value[k] for k in ("id", "digest"))
    ):
        raise _invalid("'offer' is a messageRef {id, digest}")
    return {"id": value["id"], "digest": value["digest"]}


def issue_approval_request(
    *,
    key: SigningKey,
    requester: str,
    agent: str,
    vendor: str,
    now: datetime,
    reply_to: str | None = None,
    offer: Mapping[str, str] | None = None,
    summary: str | None = None,
    lifetime: timedelta = APPROVAL_REQUEST_LIFETIME,
) -> tuple[str, bytes]:
    """Sign an approval request (with ``offer``) or an enrolment (without):
    ``(jti, token)``. ``key`` is the key of her pseudonym ``requester``.

    Raises:
        ValueError: an approval request without a summary or a reply address.
    """
    if offer is not None and (not summary or not reply_to):
        raise ValueError("an approval request carries a summary and a reply address")
    jti = f"urn:uuid:{uuid.uuid4()}"
    payload: dict[str, Any] = {
        "iss": requester,
        "aud": agent,
        "jti": jti,
        "iat": format_timestamp(now),
        "exp": format_timestamp(now + lifetime),
        "vendor": vendor,
    }
    if offer is not None:
        payload |= {"offer": _offer_ref(offer), "summary": summary, "replyTo": reply_to}
    return jti, sign_compact(canonical_json(payload), key, typ=APPROVAL_REQUEST_TYP)


def _instant(payload: Mapping[str, Any], name: str) -> datetime:
    try:
        return parse_timestamp(payload.get(name), path=f"/{name}")  # type: ignore[arg-type]
    except ValueError as error:
        raise _invalid(f"{name!r}: {error}") from error


def _string(payload: Mapping[str, Any], name: str, *, limit: int = 2048) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _invalid(f"{name!r} is a non-empty string of at most {limit} characters")
    return value


def verify_approval_request(
    token: bytes, *, agent: str, now: datetime, skew: timedelta = DEFAULT_SKEW
) -> ApprovalRequest:
    """Verify a request POSTed to the approvals endpoint of ``agent`` (spec §10.2).

    Checks: the profile with ``typ`` ``vrm-approval-request+jws``; the signer
    is ``iss``, a ``did:jwk`` (her pseudonym, the subject of any approval);
    ``aud`` is this agent (a request for another co-decision-maker's agent is
    not replayed here); it is current; the members have their types.

    Raises:
        RemoteProtocolError: the profile's codes for a token that does not
            verify; INVALID_REQUEST for a payload that is not a request for
            this agent now.
    """
    verified = verify_compact(
        token, resolve_key=_requester_resolver(token), typ=APPROVAL_REQUEST_TYP
    )
    payload = verified.document
    if payload is None:  # pragma: no cover - verify_compact parses by default
        raise _invalid("the request payload was not parsed")
    requester = _string(payload, "iss")
    if verified.key.kid != requester + DID_JWK_KEY_FRAGMENT:
        raise _invalid("the request is not signed by the pseudonym it names")
    if payload.get("aud") != agent:
        raise _invalid(f"the request is addressed to {payload.get('aud')!r}, not this agent")
    issued, expires = _instant(payload, "iat"), _instant(payload, "exp")
    if issued > later(now, skew) or now >= later(expires, skew) or expires <= issued:
        raise _invalid("the request is not current")
    offer = payload.get("offer")
    return ApprovalRequest(
        requester=requester,
        agent=agent,
        vendor=_string(payload, "vendor"),
        jti=_string(payload, "jti", limit=128),
        issued=issued,
        expires=expires,
        reply_to=_string(payload, "replyTo") if offer is not None else None,
        offer=_offer_ref(offer) if offer is not None else None,
        summary=_string(payload, "summary", limit=MAX_SUMMARY_CHARS) if offer is not None else None,
    )


def _requester_resolver(token: bytes) -> KeyResolver:
    """Resolve the signer as the ``did:jwk`` its ``kid`` names; whether that is
    ``iss`` is checked once the payload is read."""

    def resolve(kid: str) -> VerifyingKey:
        if not kid.startswith(DID_JWK_PREFIX) or not kid.endswith(DID_JWK_KEY_FRAGMENT):
            raise RemoteProtocolError(ErrorCode.UNKNOWN_KEY, "a request is signed by a did:jwk")
        return resolve_did_jwk(kid)

    del token
    return resolve


def issue_approval(
    request: ApprovalRequest,
    *,
    key: SigningKey,
    approver: str,
    now: datetime,
    relation: str | None = None,
) -> dict[str, str]:
    """His approval of ``request``'s offer: the attestation ``{kind, issuer, token}``
    (spec §10.2), signed with his own key, about her pseudonym, for the vendor.

    Raises:
        ValueError: ``request`` is an enrolment, or has expired at ``now``.
    """
    if request.offer is None or request.summary is None:
        raise ValueError("an enrolment approves nothing")
    if now >= request.expires:
        raise ValueError("the request has expired")
    claims: dict[str, Any] = {
        "approves": {"offer": dict(request.offer), "summary": request.summary}
    }
    if relation is not None:
        claims["relation"] = relation
    return issue_attestation(
        kind="approval",
        subject=request.requester,
        audience=[request.vendor],
        claims=claims,
        issuer_key=key,
        issuer_id=approver,
        now=now,
        lifetime=request.expires - now,
    )


def issue_approval_refusal(
    request: ApprovalRequest, *, key: SigningKey, approver: str, now: datetime, reason: str
) -> bytes:
    """His refusal of ``request``, signed with the key he would have approved with."""
    payload = {
        "iss": approver,
        "sub": request.requester,
        "request": request.jti,
        "offer": dict(request.offer or {}),
        "iat": format_timestamp(now),
        "reason": reason[:MAX_SUMMARY_CHARS],
    }
    return sign_compact(canonical_json(payload), key, typ=APPROVAL_REFUSAL_TYP)


def verify_approval_answer(
    token: bytes,
    *,
    approver: str,
    requester: str,
    vendor: str,
    offer: Mapping[str, str],
    request_jti: str,
    now: datetime,
) -> ApprovalAnswer:
    """Judge his answer posted to her reply inbox (spec §10.2, VRM-CODEC-004).

    An approval must verify as an ``approval`` attestation by ``approver``
    (the identifier her condition named), about ``requester``, for
    ``vendor``, approving exactly ``offer``; a refusal must be signed by
    ``approver`` and name the request.

    Raises:
        RemoteProtocolError: ATTESTATION_INVALID (or the profile's codes) for
            an answer she cannot use.
    """
    try:
        header_typ = _typ_of(token)
    except ValueError as error:
        raise RemoteProtocolError(ErrorCode.ATTESTATION_INVALID, str(error)) from error
    if header_typ == APPROVAL_REFUSAL_TYP:
        verified = verify_compact(
            token, resolve_key=_did_jwk_resolver(approver), typ=APPROVAL_REFUSAL_TYP
        )
        payload = verified.document or {}
        if (payload.get("iss"), payload.get("sub"), payload.get("request")) != (
            approver,
            requester,
            request_jti,
        ):
            raise RemoteProtocolError(
                ErrorCode.ATTESTATION_INVALID, "the refusal names another request"
            )
        reason = payload.get("reason")
        return ApprovalAnswer(False, None, reason if isinstance(reason, str) else None)
    approval = {"kind": "approval", "issuer": approver, "token": token.decode("ascii")}
    statement: VerifiedAttestation = verify_attestation(
        approval,
        trusted_issuers={approver: None},
        subject=requester,
        audience=vendor,
        now=now,
        kind="approval",
    )
    approves = statement.claims.get("approves")
    approved = approves.get("offer") if isinstance(approves, Mapping) else None
    if approved != dict(offer):
        raise RemoteProtocolError(
            ErrorCode.ATTESTATION_INVALID, "the approval approves another offer"
        )
    return ApprovalAnswer(True, approval, None)


def _typ_of(token: bytes) -> str:
    """The ``typ`` of a compact JWS's protected header (read before verifying,
    to choose how to verify it; the verification checks it again).

    Raises:
        ValueError: it is no compact JWS.
    """
    head = token.split(b".", 1)[0]
    try:
        header = json.loads(b64url_decode(head.decode("ascii")))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"the answer is no compact JWS: {error}") from error
    typ = header.get("typ") if isinstance(header, dict) else None
    if not isinstance(typ, str):
        raise ValueError("the answer's header has no typ")
    return typ
