"""The OpenAPI 3.1 description of the HTTP binding (spec §11).

Built, not written: the paths and media types come from
:mod:`vrm_protocol.http_binding` and :mod:`vrm_protocol.vocabulary`, the
problem-details ``code`` enumeration and the per-status descriptions from the
error registry (:mod:`vrm_protocol.errors`), and the message shapes from the
normative JSON Schemas, embedded as components (one per schema file, named by
its file stem).  Their references are rewritten from file-relative form
(``common.schema.json#/$defs/money``) to component pointers, and their
``$id`` is kept as ``x-schema-id``: OpenAPI tools resolve references within
the document but do not honour embedded ``$id`` bases, and would otherwise
try to fetch the schemas, which the protocol never does.

The body of an inbox request is a compact JWS, not JSON: OpenAPI can only say
that it is a string of three base64url segments.  The member
``x-vrm-payload-schema`` names the schema its payload must satisfy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Final

from reference_buyer.grants import READ_PATH
from vrm_protocol import directory
from vrm_protocol.approval_requests import (
    APPROVAL_REFUSAL_TYP,
    APPROVAL_REPLIES_PATH,
    APPROVAL_REQUEST_TYP,
    APPROVALS_PATH,
)
from vrm_protocol.errors import ErrorCode
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
    EXPORTS_PATH_PREFIX,
    INBOX_PATH,
    JWKS_PATH,
    MAILBOX_PATH,
    MAX_CURSOR,
    POLL_AUTH_SCHEME,
    POLL_TYP,
    PROBLEM_MEDIA_TYPE,
    TERMS_PATH_PREFIX,
    TERMS_TEXT_MEDIA_TYPE,
    TEST_DRIVER_PREFIX,
)
from vrm_protocol.read_proof import READ_AUTH_SCHEME, READ_TYP
from vrm_protocol.schema_registry import BINDING_FOLDER
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MESSAGE_TYP, PROTOCOL_VERSION, MessageType

__all__ = ["OPENAPI_VERSION", "build_openapi"]

OPENAPI_VERSION: Final = "3.1.0"
_SCHEMA_SUFFIX: Final = ".schema.json"
_COMPACT_JWS_PATTERN: Final = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$"
_JSON: Final = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _component_pointer(ref: str, stem: str) -> str:
    """Rewrite a schema-file reference into a pointer into ``#/components/schemas``.

    A binding schema (``schemas/binding/``) refers to the message schemas as
    ``../common.schema.json``; every file is one component named by its stem.
    """
    target, _, fragment = ref.partition("#")
    target_stem = target.removeprefix("../").removesuffix(_SCHEMA_SUFFIX) if target else stem
    return f"#/components/schemas/{target_stem}{fragment}"


def _as_component(value: Any, stem: str) -> Any:
    """A copy of a schema with its references rewritten (see the module docstring)."""
    if isinstance(value, dict):
        copied: dict[str, Any] = {}
        for key, member in value.items():
            if key == "$ref" and isinstance(member, str):
                copied[key] = _component_pointer(member, stem)
            elif key == "$id":
                copied["x-schema-id"] = member
            elif key == "$schema":
                continue  # the document's jsonSchemaDialect says it once
            else:
                copied[key] = _as_component(member, stem)
        return copied
    if isinstance(value, list):
        return [_as_component(member, stem) for member in value]
    return value


def _load_schemas(schemas_dir: Path | None) -> dict[str, Any]:
    """Schema file stem -> schema document, sorted by stem: the message schemas,
    then the HTTP binding's (``schemas/binding/``; their stems differ from every
    message schema's, which the build checks)."""
    documents: dict[str, Any] = {}
    binding: dict[str, Any] = {}
    if schemas_dir is not None:
        for path in sorted(schemas_dir.glob("*" + _SCHEMA_SUFFIX)):
            documents[path.name.removesuffix(_SCHEMA_SUFFIX)] = json.loads(path.read_text("utf-8"))
        for path in sorted((schemas_dir / BINDING_FOLDER).glob("*" + _SCHEMA_SUFFIX)):
            binding[path.name.removesuffix(_SCHEMA_SUFFIX)] = json.loads(path.read_text("utf-8"))
    else:
        package = resources.files("vrm_protocol") / "schemas"
        for folder, found in ((package, documents), (package / BINDING_FOLDER, binding)):
            for entry in sorted(folder.iterdir(), key=lambda item: item.name):
                if entry.name.endswith(_SCHEMA_SUFFIX):
                    found[entry.name.removesuffix(_SCHEMA_SUFFIX)] = json.loads(
                        entry.read_text("utf-8")
                    )
    clash = sorted(set(documents) & set(binding))
    if clash:
        raise ValueError(f"binding schemas named as message schemas: {clash}")
    return {**documents, **binding}


def _problem_responses(codes: Iterable[ErrorCode]) -> dict[str, Any]:
    by_status: dict[int, list[ErrorCode]] = {}
    for code in codes:
        by_status.setdefault(code.http_status, []).append(code)
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        listed = ", ".join(f"`{code.value}`" for code in by_status[status])
        response: dict[str, Any] = {
            "description": f"Rejected: {listed}. Nothing of the message was applied.",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _ref("ProblemDetails")}},
        }
        if status in (
            ErrorCode.RATE_LIMITED.http_status,
            ErrorCode.TEMPORARILY_UNAVAILABLE.http_status,
        ):
            response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
        elif status == ErrorCode.METHOD_NOT_ALLOWED.http_status:
            response["headers"] = {"Allow": {"$ref": "#/components/headers/Allow"}}
        elif status == ErrorCode.AUTHENTICATION_REQUIRED.http_status:
            response["headers"] = {
                "WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}
            }
        responses[str(status)] = response
    return responses


#: What any route may answer (spec §11.5, VRM-HTTP-013): no such path, a method
#: the route does not take, an agent over capacity or whose store is unavailable.
_ANY_ROUTE: Final = (
    ErrorCode.NOT_FOUND,
    ErrorCode.METHOD_NOT_ALLOWED,
    ErrorCode.INTERNAL_ERROR,
    ErrorCode.TEMPORARILY_UNAVAILABLE,
)
#: What a route that reads a JSON body may answer besides (spec §11.5, §11.6).
_JSON_BODY: Final = (
    ErrorCode.INVALID_REQUEST,
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.NESTING_TOO_DEEP,
    ErrorCode.REQUEST_TIMEOUT,
)


def _driver(definition: str) -> dict[str, str]:
    """A reference to a definition of ``schemas/binding/test-driver.schema.json``."""
    return {"$ref": f"#/components/schemas/test-driver/$defs/{definition}"}


def _driver_operation(
    summary: str,
    description: str,
    body: dict[str, Any] | None,
    *,
    answer: dict[str, Any] | None = None,
    refusals: Iterable[ErrorCode] = (),
    tag: str = "test-driver",
    pending: bool = False,
) -> dict[str, Any]:
    codes = [*_ANY_ROUTE, *(_JSON_BODY if body is not None else ()), *refusals]
    responses: dict[str, Any] = {
        "200": {
            "description": "Done; the answer describes the outcome.",
            "content": {_JSON: {"schema": answer or {"type": "object"}}},
        },
    }
    if pending:
        responses["202"] = {
            "description": "The agent waits for the individual's decision; nothing sent yet.",
            "content": {_JSON: {"schema": answer or {"type": "object"}}},
        }
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "description": description
        + (" Served only in test mode (spec §14.3)." if tag == "test-driver" else ""),
        # 404 also when the agent does not run in test mode.
        "responses": {**responses, **_problem_responses(codes)},
    }
    if tag == "test-driver":
        operation["x-test-mode-only"] = True
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
    return operation


def _test_driver_paths() -> dict[str, Any]:
    prefix = TEST_DRIVER_PREFIX
    paths: dict[str, Any] = {
        f"{prefix}/clock": {
            "post": _driver_operation(
                "Set the agent's clock offset",
                "From now on the agent's clock runs `offsetSeconds` ahead of real time; the "
                "offset replaces any earlier one and 0 restores real time.",
                _driver("ClockInstruction"),
                answer=_driver("ClockAnswer"),
            )
        },
        f"{prefix}/state": {
            "get": _driver_operation(
                "The agent's relationships and held data",
                "A summary of the agent's relationships, their states and the personal data it "
                "holds, which a refused message leaves unchanged (VRM-CONF-006).",
                None,
                answer=_driver("State"),
            )
        },
        f"{prefix}/service-notice": {
            "post": _driver_operation(
                "Vendor agents: send a service notice",
                "Send a service notice or programme offer to one relationship, if the "
                "individual's preferences and the relationship's state allow it; refused with "
                "the code of the rule that forbids it, and nothing sent, when they do not.",
                _driver("ServiceNoticeInstruction"),
                answer=_driver("InstructionAnswer"),
                refusals=(ErrorCode.ILLEGAL_TRANSITION, ErrorCode.NOT_ACCEPTED_BY_TERMS),
            )
        },
    }
    paths[f"{prefix}/handover"] = {
        "post": _driver_operation(
            "Vendor agents: deliver the latest deal",
            "Send the relationship a delivery notice and the handover record of its latest deal "
            "(spec §6.22, §6.23); refused, and nothing sent, when there is no deal or the "
            "relationship's state forbids it. Optional.",
            _driver("HandoverInstruction"),
            answer=_driver("InstructionAnswer"),
            refusals=(ErrorCode.ILLEGAL_TRANSITION, ErrorCode.NOT_FOUND),
        )
    }
    paths[f"{prefix}/invoice"] = {
        "post": _driver_operation(
            "Vendor agents: invoice the latest deal",
            "Send the relationship the invoice of its latest deal (spec §6.25); refused, and "
            "nothing sent, when there is no deal or she has accepted no handover of it. "
            "Optional.",
            _driver("InvoiceInstruction"),
            answer=_driver("InstructionAnswer"),
            refusals=(ErrorCode.ILLEGAL_TRANSITION, ErrorCode.NOT_FOUND),
        )
    }
    paths[f"{prefix}/read-grant"] = {
        "post": _driver_operation(
            "Vendor agents: read under an access grant",
            "Read the items of an access grant the vendor holds from the individual's agent, "
            "now; refused with `grant-revoked` or `grant-expired`, and nothing sent, once the "
            "grant has ended. Optional.",
            _driver("ReadGrantInstruction"),
            answer=_driver("ReadGrantAnswer"),
            refusals=(ErrorCode.GRANT_REVOKED, ErrorCode.GRANT_EXPIRED, ErrorCode.UNKNOWN_KEY),
        )
    }
    paths[f"{prefix}/appointment"] = {
        "post": _driver_operation(
            "Vendor agents: propose an appointment",
            "Send the relationship a proposal of slots for a test drive, a service or a "
            "handover (spec §6.40); refused, and nothing sent, when the relationship's state "
            "allows no appointment. Optional.",
            _driver("AppointmentInstruction"),
            answer=_driver("InstructionAnswer"),
            refusals=(ErrorCode.ILLEGAL_TRANSITION, ErrorCode.NOT_FOUND),
        )
    }
    paths[f"{prefix}/cancel-appointment"] = {
        "post": _driver_operation(
            "Vendor agents: cancel an appointment",
            "Send the relationship the cancellation of an appointment, its confirmation or her "
            "booking (spec §6.43); refused, and nothing sent, when it is done or cancelled. "
            "Optional.",
            _driver("CancelAppointmentInstruction"),
            answer=_driver("InstructionAnswer"),
            refusals=(ErrorCode.ILLEGAL_TRANSITION, ErrorCode.NOT_FOUND),
        )
    }
    paths[f"{prefix}/service-record"] = {
        "post": _driver_operation(
            "Vendor agents: record the work done",
            "Send the relationship the service record of the work her service response "
            "accepted, at the appointment confirmed (spec §6.44); refused, and nothing sent, "
            "when the relationship's state allows none. Optional.",
            _driver("ServiceRecordInstruction"),
            answer=_driver("InstructionAnswer"),
            refusals=(ErrorCode.ILLEGAL_TRANSITION, ErrorCode.NOT_FOUND),
        )
    }
    paths[f"{prefix}/addons"] = {
        "post": _driver_operation(
            "Vendor agents: propose extras for the latest deal",
            "Send the relationship the vendor's add-on offer for its latest deal (spec "
            "§6.45); refused, and nothing sent, when there is no deal or the relationship's "
            "state forbids it. Optional.",
            _driver("AddonsInstruction"),
            answer=_driver("InstructionAnswer"),
            refusals=(ErrorCode.ILLEGAL_TRANSITION, ErrorCode.NOT_FOUND),
        )
    }
    paths[f"{prefix}/list"] = {
        "post": _driver_operation(
            "Vendor agents: list the vendor in a directory",
            "Sign a listing of the vendor's categories and areas and post it to the directory "
            "named (spec §11.9); refused when the directory refuses it or cannot be reached. "
            "Optional.",
            _driver("ListInstruction"),
            answer=_driver("InstructionAnswer"),
            refusals=(ErrorCode.TEMPORARILY_UNAVAILABLE,),
        )
    }
    paths[f"{prefix}/touchpoints"] = {
        "post": _driver_operation(
            "Vendor agents: run the retention touchpoints",
            "Run the vendor's retention touchpoints for the relationship (seed 004, spec §6.9): "
            "each sent within her notification preferences and the data she shared, or "
            "recorded as not sent with its reason. Optional.",
            _driver("TouchpointsInstruction"),
            answer=_driver("TouchpointsAnswer"),
            refusals=(ErrorCode.NOT_FOUND,),
        )
    }
    paths[f"{prefix}/leave-market"] = {
        "post": _driver_operation(
            "Vendor agents: leave the market",
            "Give every relationship not already ending (with `buyer`, that one only) an exit "
            "notice of reason vendor-leaving-market carrying her export and the receipt of the "
            "deletion done with it (seed 003 step 9, spec §6.13). Optional.",
            _driver("LeaveMarketInstruction"),
            answer=_driver("InstructionAnswer"),
        )
    }
    for action, summary, description in (
        ("sweep", "Vendor agents: run the retention sweep", "Delete what is due now."),
        ("deliver", "Vendor agents: attempt due deliveries", "Attempt every due delivery now."),
    ):
        paths[f"{prefix}/{action}"] = {
            "post": _driver_operation(summary, description + " Optional.", None)
        }
    for action, definition, summary, pending in (
        ("rfi", "RfiInstruction", "Send a personal RFI", False),
        ("rfp", "RfpInstruction", "Send a personal RFP", False),
        ("accept", "AcceptInstruction", "Accept an offer", False),
        ("decline", "DeclineInstruction", "Decline offers", False),
        ("exit", "ExitInstruction", "Exit a relationship", False),
        ("terms", "TermsInstruction", "Answer a terms assertion", True),
        ("service", "ServiceInstruction", "Answer a service notice", True),
        ("inspect", "InspectInstruction", "Inspect a handover record", False),
        ("pay", "PayInstruction", "Pay an invoice", False),
        ("question", "QuestionInstruction", "Ask a vendor a question", False),
        ("answer", "AnswerInstruction", "Answer a vendor's question", False),
        ("support", "SupportInstruction", "Report a problem", False),
        ("escalate", "EscalateInstruction", "Escalate a problem", False),
        ("grant", "GrantInstruction", "Grant access to items of her store", False),
        ("revoke", "RevokeInstruction", "Revoke an access grant", False),
        ("consent", "ConsentInstruction", "Change her consent to items", False),
        ("book", "BookInstruction", "Book a slot of an appointment proposal", False),
        ("addons", "AnswerAddonsInstruction", "Answer an add-on offer", False),
        ("search", "SearchInstruction", "Look for vendors in a directory", False),
        ("proffer", "ProfferInstruction", "Proffer her own terms", False),
        ("enrol", "EnrolInstruction", "Ask to join a programme", False),
        ("update-details", "UpdateDetailsInstruction", "Change her details", False),
        ("materials", "MaterialsInstruction", "Ask for printed material by post", False),
    ):
        operation = _driver_operation(
            f"Buyer agents: {summary.lower()}",
            f"{summary} as if the individual had instructed it (buyer agents only). An "
            "instruction the agent refuses is answered with problem details carrying the code "
            "of the rule that refuses it, and nothing is sent (spec §14.3).",
            _driver(definition),
            answer=_driver("InstructionAnswer"),
            pending=pending,
        )
        # A buyer's driver answers a bad instruction, a refused move, a peer's
        # refusal or a store that cannot write with problem details (spec D9, D11).
        operation["responses"].update(_problem_responses(_BUYER_DRIVER_CODES))
        paths[f"{prefix}/{action}"] = {"post": operation}
    return paths


def _codecision_paths(jws_content: dict[str, Any]) -> dict[str, Any]:
    """A co-decision-maker's approvals between two buyer agents (spec §10.2, §11.11)."""
    answer = {"type": "object"}
    paths: dict[str, Any] = {
        APPROVALS_PATH: {
            "post": {
                "tags": ["approvals"],
                "operationId": "postApprovalRequest",
                "summary": "Ask a co-decision-maker's agent for an approval",
                "description": (
                    f"A compact JWS with `typ` `{APPROVAL_REQUEST_TYP}` signed by the "
                    "requester's pseudonym (spec §11.9). An enrolment (no `offer`) is answered "
                    "`200` with the identifier the co-decision-maker approves under; a request "
                    "is kept for his decision (`202`)."
                ),
                "requestBody": {"required": True, "content": jws_content},
                "responses": {
                    "200": {"description": "Enrolment", "content": {_JSON: {"schema": answer}}},
                    "202": {"description": "Kept", "content": {_JSON: {"schema": answer}}},
                    # A token judged under the signing profile: any of its codes.
                    **_problem_responses(tuple(ErrorCode)),
                },
            }
        },
        APPROVAL_REPLIES_PATH + "/{replyPath}": {
            "post": {
                "tags": ["approvals"],
                "operationId": "postApprovalAnswer",
                "summary": "A co-decision-maker's answer to one approval request",
                "description": (
                    "The approval attestation (`vrm-attestation+jws`) or a refusal "
                    f"(`{APPROVAL_REFUSAL_TYP}`), at the reply inbox the request named "
                    "(spec §11.9)."
                ),
                "parameters": [
                    {
                        "name": "replyPath",
                        "in": "path",
                        "required": True,
                        "description": "The random segment the requester chose for the request.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                    }
                ],
                "requestBody": {"required": True, "content": jws_content},
                "responses": {
                    "202": {"description": "Taken", "content": {_JSON: {"schema": answer}}},
                    **_problem_responses(tuple(ErrorCode)),
                },
            }
        },
    }
    for action, summary in (
        ("approval-enrol", "Ask a co-decision-maker's agent for his identifier"),
        ("approval-request", "Ask a co-decision-maker's agent to approve an offer"),
        ("approvals", "List the approval requests asked and received"),
        ("approve", "Approve or refuse a request received"),
    ):
        operation = _driver_operation(
            f"Buyer agents: {summary.lower()}",
            f"{summary} (spec §10.2, §11.9), as if the individual had instructed it.",
            {"type": "object"},
            answer=answer,
        )
        operation["responses"].update(_problem_responses(_BUYER_DRIVER_CODES))
        paths[f"{TEST_DRIVER_PREFIX}/{action}"] = {"post": operation}
    paths[f"{TEST_DRIVER_PREFIX}/party-attestation"] = {
        "post": _driver_operation(
            "Vendor agents: carry a party attestation",
            "Carry this attestation about the party itself (`{attestation: {kind, issuer, "
            "token}}`, e.g. a terms registry's `terms-signatory`, spec §10.4) in the terms "
            "assertions sent from now on. Optional.",
            {"type": "object"},
            answer=answer,
        )
    }
    return paths


#: What a buyer's test driver may answer besides 200 (spec D9): a bad instruction,
#: a move the protocol or the individual's guards refuse, a counterparty's refusal
#: relayed, a store that cannot write (D11).
_BUYER_DRIVER_CODES: tuple[ErrorCode, ...] = tuple(
    code
    for code in ErrorCode
    if code
    not in (
        ErrorCode.AUTHENTICATION_REQUIRED,
        ErrorCode.NOT_FOUND,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.REQUEST_TIMEOUT,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    )
)


def _directory_paths() -> dict[str, Any]:
    """A directory's two routes (spec §11.9): it serves these, and nothing else here."""
    listing = {
        "title": "Listing (compact JWS)",
        "description": f"A compact JWS, `typ` `{directory.LISTING_TYP}`, whose payload is "
        "schemas/binding/listing.schema.json, signed with a key of the listed vendor's JWKS.",
        "type": "string",
        "pattern": _COMPACT_JWS_PATTERN,
        "maxLength": directory.LISTING_MAX_BYTES,
        "x-vrm-payload-schema": _ref("listing"),
    }
    taken = {
        "type": "object",
        "properties": {
            "party": {"type": "string", "description": "The listed vendor."},
            "expires": {"type": "string", "description": "When the listing stops being served."},
        },
        "required": ["party", "expires"],
    }
    return {
        directory.LISTINGS_PATH: {
            "post": {
                "tags": ["directory"],
                "operationId": "postListing",
                "summary": "A vendor lists itself",
                "description": "The directory verifies the listing against the JWKS named by "
                "the discovery document on the listed vendor's own origin, and keeps it only "
                "then (spec §11.9, VRM-DIR-002).",
                "requestBody": {
                    "required": True,
                    "content": {directory.LISTING_MEDIA_TYPE: {"schema": listing}},
                },
                "responses": {
                    "201": {
                        "description": "The listing is kept.",
                        "content": {_JSON: {"schema": taken}},
                    },
                    **_problem_responses(list(ErrorCode)),
                },
            }
        },
        directory.SEARCH_PATH: {
            "get": {
                "tags": ["directory"],
                "operationId": "searchDirectory",
                "summary": "The vendors serving a category in an area",
                "description": "No authentication and no other parameter: the directory "
                "learns a category and a coarse area, not who asks (spec §11.9, VRM-DIR-003, "
                "VRM-DIR-004).",
                "parameters": [
                    {
                        "name": "category",
                        "in": "query",
                        "required": True,
                        "description": "A product category, e.g. `vehicles.cars`.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                    },
                    {
                        "name": "area",
                        "in": "query",
                        "required": True,
                        "description": "A country, or a country and postcode area: `GB-NW`.",
                        "schema": {"type": "string", "minLength": 2, "maxLength": 7},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The listings, each token unchanged.",
                        "content": {_JSON: {"schema": _ref("directory-search")}},
                    },
                    **_problem_responses(
                        [*_ANY_ROUTE, ErrorCode.INVALID_REQUEST, ErrorCode.RATE_LIMITED]
                    ),
                },
            }
        },
    }


def build_openapi(*, schemas_dir: Path | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the HTTP binding, as a JSON-ready dict.

    ``schemas_dir`` defaults to the schemas shipped as package data. The
    result is deterministic: the same inputs give an equal dict with the
    same member order.

    Raises:
        OSError: a schema file cannot be read.
        ValueError: a schema file is not JSON.
    """
    schemas = _load_schemas(schemas_dir)
    payload_schema = (
        _ref("message")
        if "message" in schemas
        else {"type": "object", "description": "A message (spec §5)."}
    )
    compact_jws = {
        "title": "Compact JWS",
        "description": (
            "A message (or receipt) signed under the signing profile (spec §8): a JWS in "
            f"compact serialization with protected header typ `{MESSAGE_TYP}`; its payload "
            "is the RFC 8785 canonical JSON of a message."
        ),
        "type": "string",
        "pattern": _COMPACT_JWS_PATTERN,
        "x-vrm-payload-schema": payload_schema,
    }
    jws_content = {MESSAGE_MEDIA_TYPE: {"schema": _ref("CompactJws")}}
    components_schemas: dict[str, Any] = {
        "CompactJws": compact_jws,
        # The binding's documents are the normative schemas of schemas/binding/,
        # referred to, not restated (spec §11, §14.3).
        "ProblemDetails": _ref("problem-details"),
        "MessageType": {
            "title": "Message type",
            "type": "string",
            "enum": [message_type.value for message_type in MessageType],
        },
        "Discovery": _ref("discovery"),
        "Jwks": _ref("jwks"),
        "MailboxPage": _ref("mailbox-page"),
        "PollToken": _ref("poll-token"),
        **{stem: _as_component(document, stem) for stem, document in schemas.items()},
    }
    # An inbox may answer with any code of the registry: every stage runs there
    # (but a granted read's codes, which only her read endpoint answers).
    read_only = (ErrorCode.GRANT_REVOKED, ErrorCode.GRANT_EXPIRED)
    inbox_codes = [code for code in ErrorCode if code not in read_only]
    read_codes = [
        *_ANY_ROUTE,
        ErrorCode.AUTHENTICATION_REQUIRED,
        ErrorCode.MALFORMED_JWS,
        ErrorCode.UNSUPPORTED_ALGORITHM,
        ErrorCode.INVALID_TYP,
        ErrorCode.INVALID_HEADER,
        ErrorCode.UNKNOWN_KEY,
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.SCHEMA_INVALID,
        ErrorCode.REPLAY,
        *read_only,
    ]
    mailbox_codes = [
        *_ANY_ROUTE,
        ErrorCode.AUTHENTICATION_REQUIRED,
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_HEADER,
        ErrorCode.MALFORMED_JWS,
        ErrorCode.UNSUPPORTED_ALGORITHM,
        ErrorCode.INVALID_TYP,
        ErrorCode.UNKNOWN_KEY,
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.WRONG_AUDIENCE,
        ErrorCode.MESSAGE_EXPIRED,
        ErrorCode.MESSAGE_NOT_YET_VALID,
        ErrorCode.LIFETIME_TOO_LONG,
        ErrorCode.SCHEMA_INVALID,
        ErrorCode.KEY_SENDER_MISMATCH,
        ErrorCode.DUPLICATE_MEMBER,
        ErrorCode.UNSUPPORTED_CRITICAL,
        ErrorCode.NESTING_TOO_DEEP,
        ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.MALFORMED_JSON,
        ErrorCode.NON_CANONICAL_PAYLOAD,
        ErrorCode.RATE_LIMITED,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.TEMPORARILY_UNAVAILABLE,
    ]
    paths: dict[str, Any] = {
        **_directory_paths(),
        DISCOVERY_PATH: {
            "get": {
                "tags": ["discovery"],
                "operationId": "getDiscovery",
                "summary": "Discovery document",
                "description": "Versions, endpoints, message types, limits (spec §11.1).",
                "responses": {
                    "200": {
                        "description": "The discovery document.",
                        "content": {_JSON: {"schema": _ref("Discovery")}},
                    },
                    **_problem_responses(_ANY_ROUTE),
                },
            }
        },
        JWKS_PATH: {
            "get": {
                "tags": ["keys"],
                "operationId": "getJwks",
                "summary": "Public signing keys",
                "description": "The party's JWKS (spec §11.2). Buyers' keys are in their did:jwk.",
                "responses": {
                    "200": {
                        "description": "The JWKS.",
                        "content": {
                            "application/jwk-set+json": {"schema": _ref("Jwks")},
                            _JSON: {"schema": _ref("Jwks")},
                        },
                    },
                    **_problem_responses(_ANY_ROUTE),
                },
            }
        },
        TERMS_PATH_PREFIX + "/{id}/{version}": {
            "get": {
                "tags": ["terms"],
                "operationId": "getTermsDocument",
                "summary": "A terms document the party asserts",
                "description": (
                    "The exact bytes whose digest the discovery document and every "
                    "`termsReference` of the party name (spec §11.7)."
                ),
                "parameters": [
                    {
                        "name": name,
                        "in": "path",
                        "required": True,
                        "description": f"The terms document's {name}, one path segment.",
                        "schema": {"type": "string", "minLength": 1},
                    }
                    for name in ("id", "version")
                ],
                "responses": {
                    "200": {
                        "description": "The terms document.",
                        "content": {TERMS_TEXT_MEDIA_TYPE: {"schema": {"type": "string"}}},
                    },
                    **_problem_responses(_ANY_ROUTE),
                },
            }
        },
        EXPORTS_PATH_PREFIX + "/{id}": {
            "get": {
                "tags": ["mailbox"],
                "operationId": "getExport",
                "summary": "An exit's export too large to embed",
                "description": (
                    "The export an exit acknowledgement publishes at `export.url` instead of "
                    "embedding it: the RFC 8785 JSON whose digest is `export.digest`, served to a "
                    f"`{POLL_TYP}` token of the relationship's pseudonym only, for 30 days "
                    "(spec §6.14)."
                ),
                "security": [{"VRMPoll": []}],
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "The export's identifier, as `export.url` names it.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The export.",
                        "content": {_JSON: {"schema": {"type": "object"}}},
                    },
                    **_problem_responses(mailbox_codes),
                },
            }
        },
        INBOX_PATH: {
            "post": {
                "tags": ["inbox"],
                "operationId": "postMessage",
                "summary": "Deliver one message",
                "description": (
                    "The body is one signed message. The receiver applies its checks in order "
                    "(spec §8) and answers 202 with a signed receipt once the message is "
                    "durably stored, 200 with the original receipt for an identical resend, "
                    "or problem details (spec §11.3). Replies are separate messages."
                ),
                "requestBody": {"required": True, "content": jws_content},
                "responses": {
                    "202": {
                        "description": "Stored durably; the body is the signed receipt.",
                        "content": jws_content,
                    },
                    "200": {
                        "description": "An identical resend; the body is the original receipt.",
                        "content": jws_content,
                    },
                    **_problem_responses(inbox_codes),
                },
            }
        },
        INBOX_PATH + "/{replyPath}": {
            "post": {
                "tags": ["inbox"],
                "operationId": "postMessageToReplyAddress",
                "summary": "Deliver one message to a relationship's reply address",
                "description": (
                    "A buyer agent's `replyTo` inbox: the inbox followed by a random segment of "
                    "its own per relationship (spec §12). It answers as the inbox does, and "
                    "takes only that relationship's messages; any other is answered as a "
                    "message addressed to no pseudonym of the agent's."
                ),
                "parameters": [
                    {
                        "name": "replyPath",
                        "in": "path",
                        "required": True,
                        "description": "The random segment the agent chose for the relationship.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                    }
                ],
                "requestBody": {"required": True, "content": jws_content},
                "responses": {
                    "202": {
                        "description": "Stored durably; the body is the signed receipt.",
                        "content": jws_content,
                    },
                    "200": {
                        "description": "An identical resend; the body is the original receipt.",
                        "content": jws_content,
                    },
                    **_problem_responses(inbox_codes),
                },
            }
        },
        MAILBOX_PATH: {
            "get": {
                "tags": ["mailbox"],
                "operationId": "getMailbox",
                "summary": "Collect waiting messages",
                "description": (
                    "Every message the agent sent the polling party, until it expires, after "
                    f"cursor `after` (spec §11.4). Authorised by a `{POLL_TYP}` token."
                ),
                "security": [{"VRMPoll": []}],
                "parameters": [
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "Return messages after this cursor (0: from the start).",
                        "schema": {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": MAX_CURSOR,
                            "default": 0,
                        },
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The waiting messages and the next cursor.",
                        "content": {_JSON: {"schema": _ref("MailboxPage")}},
                    },
                    **_problem_responses(mailbox_codes),
                },
            }
        },
        READ_PATH + "/{readPath}": {
            "get": {
                "tags": ["grants"],
                "operationId": "getGrantedItems",
                "summary": "Buyer agents: read the items of an access grant",
                "description": (
                    "The granted items' current values, for the grantee only: authorised by "
                    f"`{READ_AUTH_SCHEME}` and a `{READ_TYP}` proof signed by the key the grant "
                    "names, bound to the grant, the method, the URL and the time (spec §11.9). "
                    "Refused with `grant-revoked` or `grant-expired` once the grant has ended."
                ),
                "security": [{"VRMProof": []}],
                "parameters": [
                    {
                        "name": "readPath",
                        "in": "path",
                        "required": True,
                        "description": "The random segment her agent chose for the grant.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The grant's id, the time of the read and the items.",
                        "content": {_JSON: {"schema": {"type": "object"}}},
                    },
                    **_problem_responses(read_codes),
                },
            }
        },
        **_test_driver_paths(),
        **_codecision_paths(jws_content),
        "/vrm/operator/service-notice": {
            "post": {
                **_driver_operation(
                    "Vendor agents: the operator sends a service notice",
                    "The test driver's service-notice instruction for the operator, outside "
                    "test mode; served when the agent has an operator token, authorised by "
                    "`Authorization: Bearer <token>`.",
                    _driver("ServiceNoticeInstruction"),
                    answer=_driver("InstructionAnswer"),
                    refusals=(ErrorCode.AUTHENTICATION_REQUIRED, ErrorCode.ILLEGAL_TRANSITION),
                    tag="operator",
                ),
                "security": [{"OperatorBearer": []}],
            }
        },
        "/vrm/operator/leave-market": {
            "post": {
                **_driver_operation(
                    "Vendor agents: the operator leaves the market",
                    "The test driver's leave-market instruction for the operator, outside test "
                    "mode; served when the agent has an operator token, authorised by "
                    "`Authorization: Bearer <token>`.",
                    _driver("LeaveMarketInstruction"),
                    answer=_driver("InstructionAnswer"),
                    refusals=(ErrorCode.AUTHENTICATION_REQUIRED,),
                    tag="operator",
                ),
                "security": [{"OperatorBearer": []}],
            }
        },
    }
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "VRM/CRM protocol HTTP binding",
            "version": PROTOCOL_VERSION,
            "summary": "How a buyer's agent and a vendor's agent exchange signed messages.",
            "description": (
                "A vendor agent serves these endpoints on its origin; a buyer agent serves "
                "only its per-relationship reply inboxes and, in test mode, a discovery "
                "document naming no party and its test driver (spec §11, VRM-HTTP-027). "
                "Generated from vrm_protocol (http_binding, errors) and the JSON Schemas of "
                "schemas/ and schemas/binding/; see the specification, section 11."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [
            {
                "url": "{agent}",
                "description": "An agent's base URL (its identifier, for vendors).",
                "variables": {"agent": {"default": "http://127.0.0.1:8080"}},
            }
        ],
        "tags": [
            {"name": "discovery", "description": "Discovery document (spec §11.1)."},
            {"name": "keys", "description": "JWKS (spec §11.2)."},
            {"name": "inbox", "description": "Message delivery and receipts (spec §11.3)."},
            {"name": "mailbox", "description": "Replies for parties without an inbox (§11.4)."},
            {"name": "terms", "description": "Terms documents (spec §11.7)."},
            {"name": "grants", "description": "Reads under access grants (spec §11.9)."},
            {"name": "test-driver", "description": "Test mode only (spec §14.3)."},
            {
                "name": "directory",
                "description": "Served by a directory, not by an agent: listings and "
                "anonymous searches (spec §11.9).",
            },
            {"name": "operator", "description": "The operator's own routes."},
            {"name": "approvals", "description": "A co-decision-maker's approval (§11.11)."},
        ],
        "paths": paths,
        "components": {
            "schemas": components_schemas,
            "headers": {
                "RetryAfter": {
                    "description": "Seconds to wait before retrying (RFC 9110, section 10.2.3).",
                    "schema": {"type": "integer", "minimum": 1},
                },
                "Allow": {
                    "description": "The methods the route takes (RFC 9110, section 10.2.1).",
                    "schema": {"type": "string"},
                },
                "WWWAuthenticate": {
                    "description": "The authentication scheme the route wants (RFC 9110, "
                    "section 11.6.1).",
                    "schema": {"type": "string"},
                },
            },
            "securitySchemes": {
                "OperatorBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The operator token the agent was started with.",
                },
                "VRMPoll": {
                    "type": "http",
                    "scheme": POLL_AUTH_SCHEME,
                    "description": (
                        f"`Authorization: {POLL_AUTH_SCHEME} <token>`: a JWS signed by the polling "
                        f"party's key, typ `{POLL_TYP}`, naming the mailbox's agent in `to`, "
                        "fresh, with the cursor `after` (spec §11.4)."
                    ),
                },
                "VRMProof": {
                    "type": "http",
                    "scheme": READ_AUTH_SCHEME,
                    "description": (
                        f"`Authorization: {READ_AUTH_SCHEME} <proof>`: a JWS signed by the "
                        f"grantee's key the grant names, typ `{READ_TYP}`, binding the grant, "
                        "the method, the URL, the time and a unique jti (spec §11.9)."
                    ),
                },
            },
        },
    }
