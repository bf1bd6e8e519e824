"""receipt: the signed acknowledgement of a message, in the inbox's answer (spec §6.16)."""

from __future__ import annotations

from vrm_protocol.message_types._unit import MessageTypeSpec
from vrm_protocol.models import ReceiptMessage
from vrm_protocol.vocabulary import MessageType

__all__ = ["SPEC"]

SPEC: MessageTypeSpec[ReceiptMessage] = MessageTypeSpec(
    type=MessageType.RECEIPT,
    model=ReceiptMessage,
    section="6.16",
    steps=(),
    summary="The receiver's signed acknowledgement, returned in the answer to the POST.",
    always_allowed=True,
    in_response=True,
)
