"""How her agent judges a co-decision-maker's answer, and when his agent answers
(spec §10.2, §11.11): her guard and his, as strategies the faults can weaken."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Final, Protocol

from vrm_protocol.approval_requests import (
    APPROVAL_REFUSAL_TYP,
    ApprovalAnswer,
    verify_approval_answer,
)
from vrm_protocol.canonical import b64url_decode

__all__ = ["ANY_ANSWER", "VERIFIED_ANSWERS", "AnswerJudge"]


class AnswerJudge(Protocol):
    """Judges an answer at her reply address (VRM-CODEC-004)."""

    def judge(
        self,
        token: bytes,
        *,
        approver: str,
        requester: str,
        vendor: str,
        offer: Mapping[str, str],
        request_jti: str,
        now: datetime,
    ) -> ApprovalAnswer:
        """The answer, verified.

        Raises:
            RemoteProtocolError: ATTESTATION_INVALID (or the profile's codes).
        """
        ...


class VerifiedAnswers:
    """His approval, signed by the identifier he named, of that offer only."""

    def judge(
        self,
        token: bytes,
        *,
        approver: str,
        requester: str,
        vendor: str,
        offer: Mapping[str, str],
        request_jti: str,
        now: datetime,
    ) -> ApprovalAnswer:
        """See :class:`AnswerJudge`."""
        return verify_approval_answer(
            token,
            approver=approver,
            requester=requester,
            vendor=vendor,
            offer=offer,
            request_jti=request_jti,
            now=now,
        )


class _AnyAnswer:
    """Fault only: whatever is posted is taken as his answer, unverified."""

    def judge(
        self,
        token: bytes,
        *,
        approver: str,
        requester: str,
        vendor: str,
        offer: Mapping[str, str],
        request_jti: str,
        now: datetime,
    ) -> ApprovalAnswer:
        try:
            header = json.loads(b64url_decode(token.split(b".")[0].decode("ascii")))
        except ValueError:
            header = {}
        if isinstance(header, dict) and header.get("typ") == APPROVAL_REFUSAL_TYP:
            return ApprovalAnswer(False, None, "refused")
        approval = {"kind": "approval", "issuer": approver, "token": token.decode("ascii")}
        return ApprovalAnswer(True, approval, None)


VERIFIED_ANSWERS: Final = VerifiedAnswers()
ANY_ANSWER: Final = _AnyAnswer()
