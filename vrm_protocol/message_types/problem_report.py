"""problem-report: a refusal or failure reported as a message (spec §6.15)."""

from __future__ import annotations

from vrm_protocol.message_types._unit import MessageTypeSpec
from vrm_protocol.models import ProblemReportMessage
from vrm_protocol.vocabulary import MessageType

__all__ = ["SPEC"]

SPEC: MessageTypeSpec[ProblemReportMessage] = MessageTypeSpec(
    type=MessageType.PROBLEM_REPORT,
    model=ProblemReportMessage,
    section="6.15",
    steps=(),
    summary="A refusal decided after the receipt, or a failure to answer, with its code.",
    always_allowed=True,
)
