"""vrm_protocol: the message library of the VRM/CRM protocol.

Sans-IO: it builds, validates, signs, verifies and sequences messages, and
leaves sockets, storage and clocks to the caller.
"""

from vrm_protocol.errors import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    VRMError,
)
from vrm_protocol.vocabulary import (
    MESSAGE_MEDIA_TYPE,
    MESSAGE_TYP,
    PROTOCOL_VERSION,
    LifecycleStep,
    MessageType,
    Role,
)

__version__ = "0.1.0"

__all__ = [
    "MESSAGE_MEDIA_TYPE",
    "MESSAGE_TYP",
    "PROTOCOL_VERSION",
    "ErrorCode",
    "LifecycleStep",
    "LocalProtocolError",
    "MessageType",
    "ProtocolError",
    "RemoteProtocolError",
    "Role",
    "VRMError",
    "__version__",
]
