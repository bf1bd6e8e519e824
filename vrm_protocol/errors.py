"""The protocol's error-code registry and exception hierarchy.

Every rejection anywhere in the protocol (library, HTTP binding, signed
``problem-report`` messages, conformance verdicts) names one of the codes
below.  The codes are stable identifiers: they are never renamed or reused,
only added.  The specification's error registry is generated from this
module, so the text a reader sees and the code an agent sends cannot drift.

The exception design follows h11: one root (:class:`VRMError`), and a split
between :class:`LocalProtocolError` (*we* were about to do something the
protocol forbids) and :class:`RemoteProtocolError` (the *peer* sent something
the protocol forbids).  Both carry an :class:`ErrorCode`, and through it the
HTTP status an HTTP binding should answer with.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "ERROR_TYPE_BASE",
    "ErrorCode",
    "ErrorInfo",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "VRMError",
    "error_info",
]

#: Problem-details ``type`` URIs are this base followed by the code (RFC 9457 §3.1.1).
#: The ``vrm-protocol.example`` namespace is a placeholder until the standards
#: group assigns one; identifiers are compared as strings and never dereferenced.
ERROR_TYPE_BASE = "https://vrm-protocol.example/errors/"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What the registry says about one code."""

    code: str
    http_status: int
    title: str
    description: str
    spec_section: str


class ErrorCode(StrEnum):
    """Stable error codes (spec §16, "Error codes").

    Grouped by the pipeline stage that raises them; the stage order is the
    order in which a receiver applies its checks (spec §8), so a message with
    several faults is rejected with the code of the earliest stage.
    """

    # -- Stage 1: transport and limits, before any parsing (spec §11.6) --
    PAYLOAD_TOO_LARGE = "payload-too-large"
    NESTING_TOO_DEEP = "nesting-too-deep"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    RATE_LIMITED = "rate-limited"
    # -- HTTP requests that are not messages: routes, methods, parameters (spec §11) --
    INVALID_REQUEST = "invalid-request"
    AUTHENTICATION_REQUIRED = "authentication-required"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    REQUEST_TIMEOUT = "request-timeout"
    # -- Stage 2: JWS framing and protected header (spec §8.2) --
    MALFORMED_JWS = "malformed-jws"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"
    INVALID_TYP = "invalid-typ"
    INVALID_HEADER = "invalid-header"
    UNSUPPORTED_CRITICAL = "unsupported-critical-header"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    # -- Stage 3: payload bytes (spec §8.3) --
    MALFORMED_JSON = "malformed-json"
    DUPLICATE_MEMBER = "duplicate-member"
    NON_CANONICAL_PAYLOAD = "non-canonical-payload"
    # -- Stage 4: shape (spec §5, §6) --
    UNSUPPORTED_VERSION = "unsupported-version"
    UNKNOWN_MESSAGE_TYPE = "unknown-message-type"
    SCHEMA_INVALID = "schema-invalid"
    # -- Stage 5: binding of key, sender and audience; freshness (spec §9) --
    KEY_SENDER_MISMATCH = "key-sender-mismatch"
    WRONG_AUDIENCE = "wrong-audience"
    MESSAGE_EXPIRED = "message-expired"
    MESSAGE_NOT_YET_VALID = "message-not-yet-valid"
    LIFETIME_TOO_LONG = "lifetime-too-long"
    REPLAY = "replay"
    # -- Stage 6: relationship state (spec §7) --
    NOT_A_PARTICIPANT = "not-a-participant"
    ILLEGAL_TRANSITION = "illegal-transition"
    UNKNOWN_OFFER = "unknown-offer"
    OFFER_EXPIRED = "offer-expired"
    OFFER_SUPERSEDED = "offer-superseded"
    OFFER_CLOSED = "offer-closed"
    OFFER_NOT_BINDING = "offer-not-binding"
    REFERENCE_MISMATCH = "reference-mismatch"
    RELATIONSHIP_EXITED = "relationship-exited"
    REENGAGEMENT_NOT_PERMITTED = "reengagement-not-permitted"
    # -- Stage 7: content rules an agent applies (spec §6, §10) --
    ATTESTATION_INVALID = "attestation-invalid"
    UNTRUSTED_ISSUER = "untrusted-issuer"
    APPROVAL_MISSING = "approval-missing"
    ATTESTATION_MISSING = "attestation-missing"
    NOT_ACCEPTED_BY_TERMS = "not-accepted-by-terms"
    EXIT_INCOMPLETE = "exit-incomplete"
    MISLABELLED_NOTICE = "mislabelled-notice"
    GRANT_REVOKED = "grant-revoked"
    GRANT_EXPIRED = "grant-expired"
    # -- Any stage --
    INTERNAL_ERROR = "internal-error"
    TEMPORARILY_UNAVAILABLE = "temporarily-unavailable"

    @property
    def info(self) -> ErrorInfo:
        """The registry entry for this code."""
        return _REGISTRY[self]

    @property
    def http_status(self) -> int:
        """The HTTP status an HTTP binding answers with (spec §11.5)."""
        return _REGISTRY[self].http_status

    @property
    def type_uri(self) -> str:
        """The RFC 9457 problem ``type`` URI for this code."""
        return ERROR_TYPE_BASE + self.value


def _entry(code: ErrorCode, status: int, title: str, section: str, description: str) -> ErrorInfo:
    return ErrorInfo(code.value, status, title, description, section)


_E = ErrorCode
_REGISTRY: dict[ErrorCode, ErrorInfo] = {
    _E.PAYLOAD_TOO_LARGE: _entry(
        _E.PAYLOAD_TOO_LARGE,
        413,
        "Payload too large",
        "11.6",
        "The message, or one of its segments, is larger than the receiver's limit. "
        "Checked before any decoding.",
    ),
    _E.NESTING_TOO_DEEP: _entry(
        _E.NESTING_TOO_DEEP,
        400,
        "Nesting too deep",
        "11.6",
        "The JSON payload nests arrays and objects deeper than the receiver's limit. "
        "Checked on the raw bytes before parsing.",
    ),
    _E.UNSUPPORTED_MEDIA_TYPE: _entry(
        _E.UNSUPPORTED_MEDIA_TYPE,
        415,
        "Unsupported media type",
        "11.3",
        "The HTTP request body is not declared as application/vrm+jws.",
    ),
    _E.RATE_LIMITED: _entry(
        _E.RATE_LIMITED,
        429,
        "Rate limited",
        "11.6",
        "The sender has sent more messages than the receiver accepts in the current window. "
        "Retry after the interval in the Retry-After header.",
    ),
    _E.INVALID_REQUEST: _entry(
        _E.INVALID_REQUEST,
        400,
        "Invalid request",
        "11.5",
        "An HTTP request that carries no message is malformed: a query parameter out of its "
        "range or type, or a test-driver or operator instruction that is not the JSON its "
        "route describes.",
    ),
    _E.AUTHENTICATION_REQUIRED: _entry(
        _E.AUTHENTICATION_REQUIRED,
        401,
        "Authentication required",
        "11.4",
        "The route needs credentials (a VRM-Poll token for the mailbox, a bearer token for an "
        "operator route) and the request carries none, or carries them in the wrong scheme.",
    ),
    _E.NOT_FOUND: _entry(
        _E.NOT_FOUND,
        404,
        "Not found",
        "11.5",
        "No route, or no resource of the route, has this path.",
    ),
    _E.METHOD_NOT_ALLOWED: _entry(
        _E.METHOD_NOT_ALLOWED,
        405,
        "Method not allowed",
        "11.5",
        "The route exists but does not take this HTTP method; the Allow header lists those it "
        "takes.",
    ),
    _E.REQUEST_TIMEOUT: _entry(
        _E.REQUEST_TIMEOUT,
        408,
        "Request timeout",
        "11.6",
        "The request's headers or body did not arrive within the receiver's time limit.",
    ),
    _E.MALFORMED_JWS: _entry(
        _E.MALFORMED_JWS,
        400,
        "Malformed JWS",
        "8.2",
        "The message is not a JWS in compact serialization of three base64url segments, "
        "or a segment is not valid unpadded base64url, or the header is not a JSON object.",
    ),
    _E.UNSUPPORTED_ALGORITHM: _entry(
        _E.UNSUPPORTED_ALGORITHM,
        400,
        "Unsupported algorithm",
        "8.2",
        "The 'alg' header parameter is missing or not on the allow-list (EdDSA with "
        "Ed25519, ES256). 'none' in any letter case and every HMAC algorithm are refused.",
    ),
    _E.INVALID_TYP: _entry(
        _E.INVALID_TYP,
        400,
        "Invalid typ",
        "8.2",
        "The 'typ' header parameter is missing or is not the media type the context requires "
        "(vrm+jws for messages, vrm-attestation+jws for attestations).",
    ),
    _E.INVALID_HEADER: _entry(
        _E.INVALID_HEADER,
        400,
        "Invalid protected header",
        "8.2",
        "The protected header lacks 'kid' (or it is not a non-empty string), or carries a "
        "parameter other than alg, kid, typ and crit (jku, jwk, x5u, x5c, x5t, b64, zip, ...). "
        "A repeated member is duplicate-member, 'crit' is unsupported-critical-header.",
    ),
    _E.UNSUPPORTED_CRITICAL: _entry(
        _E.UNSUPPORTED_CRITICAL,
        400,
        "Unsupported critical header",
        "8.2",
        "The 'crit' header parameter names an extension this profile does not define. "
        "The profile defines none, so any 'crit' is refused (RFC 7515 §4.1.11).",
    ),
    _E.UNKNOWN_KEY: _entry(
        _E.UNKNOWN_KEY,
        401,
        "Unknown key",
        "8.4",
        "The 'kid' does not name a key the receiver knows for the sender, or names a key "
        "whose type does not match 'alg'.",
    ),
    _E.BAD_SIGNATURE: _entry(
        _E.BAD_SIGNATURE,
        401,
        "Bad signature",
        "8.2",
        "The signature does not verify over the bytes as received.",
    ),
    _E.MALFORMED_JSON: _entry(
        _E.MALFORMED_JSON,
        400,
        "Malformed JSON",
        "8.3",
        "The payload is not UTF-8 JSON text whose top level is an object.",
    ),
    _E.DUPLICATE_MEMBER: _entry(
        _E.DUPLICATE_MEMBER,
        400,
        "Duplicate member",
        "8.3",
        "An object in the payload or protected header repeats a member name "
        "(RFC 8259 §4 leaves the meaning undefined; this profile refuses it).",
    ),
    _E.NON_CANONICAL_PAYLOAD: _entry(
        _E.NON_CANONICAL_PAYLOAD,
        400,
        "Non-canonical payload",
        "8.3",
        "The payload is valid JSON but not in the RFC 8785 canonical form the profile requires.",
    ),
    _E.UNSUPPORTED_VERSION: _entry(
        _E.UNSUPPORTED_VERSION,
        422,
        "Unsupported protocol version",
        "15",
        "The message declares a protocol version the receiver does not support.",
    ),
    _E.UNKNOWN_MESSAGE_TYPE: _entry(
        _E.UNKNOWN_MESSAGE_TYPE,
        422,
        "Unknown message type",
        "6",
        "The message 'type' is not one the declared protocol version defines.",
    ),
    _E.SCHEMA_INVALID: _entry(
        _E.SCHEMA_INVALID,
        422,
        "Schema invalid",
        "5",
        "The message does not validate against the schema of its type. The problem "
        "details carry the JSON path of each fault.",
    ),
    _E.KEY_SENDER_MISMATCH: _entry(
        _E.KEY_SENDER_MISMATCH,
        401,
        "Key does not belong to sender",
        "8.4",
        "The signing key is not one of the keys published for, or derived from, the "
        "envelope's 'from' identifier.",
    ),
    _E.WRONG_AUDIENCE: _entry(
        _E.WRONG_AUDIENCE,
        421,
        "Wrong audience",
        "9.2",
        "The receiver's identifier is not in the envelope's 'to' list.",
    ),
    _E.MESSAGE_EXPIRED: _entry(
        _E.MESSAGE_EXPIRED,
        400,
        "Message expired",
        "9.1",
        "The envelope's 'expires' is in the past, beyond the allowed clock skew.",
    ),
    _E.MESSAGE_NOT_YET_VALID: _entry(
        _E.MESSAGE_NOT_YET_VALID,
        400,
        "Message not yet valid",
        "9.1",
        "The envelope's 'created' is in the future beyond the allowed clock skew.",
    ),
    _E.LIFETIME_TOO_LONG: _entry(
        _E.LIFETIME_TOO_LONG,
        400,
        "Lifetime too long",
        "9.1",
        "The message lives ('expires' minus 'created') longer than the receiver's maximum "
        "lifetime (a poll token: longer than five minutes).",
    ),
    _E.REPLAY: _entry(
        _E.REPLAY,
        409,
        "Replay",
        "9.3",
        "A different message with this (sender, id) was already received. An identical "
        "resend is not an error: it is answered with the original receipt.",
    ),
    _E.NOT_A_PARTICIPANT: _entry(
        _E.NOT_A_PARTICIPANT,
        403,
        "Not a participant",
        "7.3",
        "The sender is not a party to the relationship or thread the message refers to.",
    ),
    _E.ILLEGAL_TRANSITION: _entry(
        _E.ILLEGAL_TRANSITION,
        409,
        "Illegal transition",
        "7.2",
        "The message type may not be sent by this role in the relationship's current state.",
    ),
    _E.UNKNOWN_OFFER: _entry(
        _E.UNKNOWN_OFFER,
        409,
        "Unknown offer",
        "7.4",
        "The message refers to an offer the relationship has never seen.",
    ),
    _E.OFFER_EXPIRED: _entry(
        _E.OFFER_EXPIRED,
        409,
        "Offer expired",
        "7.4",
        "The offer referred to is past its 'validUntil'.",
    ),
    _E.OFFER_SUPERSEDED: _entry(
        _E.OFFER_SUPERSEDED,
        409,
        "Offer superseded",
        "7.4",
        "The offer referred to has been superseded by a later offer or counter-offer.",
    ),
    _E.OFFER_CLOSED: _entry(
        _E.OFFER_CLOSED,
        409,
        "Offer closed",
        "7.4",
        "The offer referred to was already accepted, declined or refused, or lapsed (another "
        "offer was accepted, the negotiation closed, the relationship was exited).",
    ),
    _E.OFFER_NOT_BINDING: _entry(
        _E.OFFER_NOT_BINDING,
        409,
        "Offer not binding",
        "7.4",
        "The acceptance names an indicative offer, which is answered by a personal RFP, "
        "never accepted as it stands.",
    ),
    _E.REFERENCE_MISMATCH: _entry(
        _E.REFERENCE_MISMATCH,
        409,
        "Reference mismatch",
        "8.5",
        "A message refers to another message or document (an offer, an acceptance, a terms "
        "assertion, a terms document) by an id and a digest that do not match it as the "
        "receiver holds it.",
    ),
    _E.RELATIONSHIP_EXITED: _entry(
        _E.RELATIONSHIP_EXITED,
        410,
        "Relationship exited",
        "7.5",
        "An exit notice was given in this relationship (it is exiting or exited), and the "
        "transition table allows no such message after it: only the exit's acknowledgement, "
        "the individual's re-engagement and what her re-engagement preferences allow.",
    ),
    _E.REENGAGEMENT_NOT_PERMITTED: _entry(
        _E.REENGAGEMENT_NOT_PERMITTED,
        403,
        "Re-engagement not permitted",
        "7.5",
        "The individual's re-engagement preferences do not allow this contact.",
    ),
    _E.ATTESTATION_INVALID: _entry(
        _E.ATTESTATION_INVALID,
        422,
        "Attestation invalid",
        "10.3",
        "An attached attestation does not verify, is expired, or is not bound to the sender.",
    ),
    _E.UNTRUSTED_ISSUER: _entry(
        _E.UNTRUSTED_ISSUER,
        422,
        "Untrusted issuer",
        "10.3",
        "An attached attestation is signed by an issuer the receiver does not trust.",
    ),
    _E.APPROVAL_MISSING: _entry(
        _E.APPROVAL_MISSING,
        422,
        "Approval missing",
        "6.4",
        "The accepted offer's conditions require a co-decision-maker's approval and the "
        "acceptance does not carry one.",
    ),
    _E.ATTESTATION_MISSING: _entry(
        _E.ATTESTATION_MISSING,
        422,
        "Attestation missing",
        "6.4",
        "The acceptance chooses a financing plan marked requiresAttestation and carries no "
        "ability-to-pay attestation.",
    ),
    _E.NOT_ACCEPTED_BY_TERMS: _entry(
        _E.NOT_ACCEPTED_BY_TERMS,
        403,
        "Not covered by accepted terms",
        "6.8",
        "The message asks for, or carries, data the individual has not accepted under the "
        "terms of sharing in force, or is a notice in a category she did not allow.",
    ),
    _E.MISLABELLED_NOTICE: _entry(
        _E.MISLABELLED_NOTICE,
        422,
        "Mislabelled notice",
        "6.9",
        "The service notice's category is not one its kind may be sent in: it is not what it "
        "says it is.",
    ),
    _E.EXIT_INCOMPLETE: _entry(
        _E.EXIT_INCOMPLETE,
        422,
        "Exit incomplete",
        "6.14",
        "The exit acknowledgement lacks what the exit notice asked for: the export, or the "
        "deletion receipt, or an item the individual shared that its export or its deletion "
        "receipt does not account for.",
    ),
    _E.GRANT_REVOKED: _entry(
        _E.GRANT_REVOKED,
        403,
        "Grant revoked",
        "11.9",
        "The access grant a read names was revoked by the individual (spec §6.19): nothing is "
        "read under it any more.",
    ),
    _E.GRANT_EXPIRED: _entry(
        _E.GRANT_EXPIRED,
        403,
        "Grant expired",
        "11.9",
        "The access grant a read names ended at its `until` (spec §6.18): nothing is read under "
        "it any more.",
    ),
    _E.INTERNAL_ERROR: _entry(
        _E.INTERNAL_ERROR,
        500,
        "Internal error",
        "11.5",
        "The receiver failed for a reason of its own. Nothing was applied; the sender may retry.",
    ),
    _E.TEMPORARILY_UNAVAILABLE: _entry(
        _E.TEMPORARILY_UNAVAILABLE,
        503,
        "Temporarily unavailable",
        "11.5",
        "The receiver cannot take messages now. Nothing was applied; retry later.",
    ),
}
del _E

# The registry is complete by construction: every code has exactly one entry.
assert set(_REGISTRY) == set(ErrorCode), "every ErrorCode needs a registry entry"


def error_info(code: ErrorCode | str) -> ErrorInfo:
    """Return the registry entry for ``code``.

    Raises:
        ValueError: ``code`` is not a registered error code.
    """
    return _REGISTRY[ErrorCode(code)]


class VRMError(Exception):
    """Root of every exception this library raises."""


class ProtocolError(VRMError):
    """A violation of the protocol, carrying a stable :class:`ErrorCode`.

    Attributes:
        code: the registry code.
        detail: a human-readable explanation of this occurrence.
        path: JSON path of the offending member, where one exists (JSON Pointer: ``/body/budget``).
        extra: further members for RFC 9457 problem details (e.g. every schema fault).
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        path: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.code = code
        self.detail = detail
        self.path = path
        self.extra: dict[str, Any] = dict(extra or {})

    @property
    def http_status(self) -> int:
        """Status hint for an HTTP binding (as h11's ``error_status_hint``)."""
        return self.code.http_status

    def to_problem(self, *, instance: str | None = None) -> dict[str, Any]:
        """Render as an RFC 9457 problem details object.

        The ``code`` extension member repeats the registry code so that clients
        need not parse the ``type`` URI.
        """
        problem: dict[str, Any] = {
            "type": self.code.type_uri,
            "title": self.code.info.title,
            "status": self.http_status,
            "detail": self.detail,
            "code": self.code.value,
        }
        if instance is not None:
            problem["instance"] = instance
        if self.path is not None:
            problem["path"] = self.path
        problem.update(self.extra)
        return problem


class LocalProtocolError(ProtocolError):
    """We were about to violate the protocol (e.g. sign an invalid message,
    or make a transition our role may not make).  Nothing was sent or changed."""


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol.  The message was rejected and nothing
    it asked for was applied."""
