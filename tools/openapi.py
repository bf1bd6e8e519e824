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

from vrm_protocol.errors import ERROR_TYPE_BASE, ErrorCode
from vrm_protocol.http_binding import (
    DISCOVERY_PATH,
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
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE, MESSAGE_TYP, PROTOCOL_VERSION, MessageType

__all__ = ["OPENAPI_VERSION", "build_openapi"]

OPENAPI_VERSION: Final = "3.1.0"
_SCHEMA_SUFFIX: Final = ".schema.json"
_COMPACT_JWS_PATTERN: Final = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$"
_JSON: Final = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _component_pointer(ref: str, stem: str) -> str:
    """Rewrite a schema-file reference into a pointer into ``#/components/schemas``."""
    target, _, fragment = ref.partition("#")
    target_stem = target.removesuffix(_SCHEMA_SUFFIX) if target else stem
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
    """Schema file stem -> schema document, sorted by stem."""
    documents: dict[str, Any] = {}
    if schemas_dir is not None:
        paths = sorted(schemas_dir.glob("*" + _SCHEMA_SUFFIX))
        for path in paths:
            documents[path.name.removesuffix(_SCHEMA_SUFFIX)] = json.loads(path.read_text("utf-8"))
        return documents
    package = resources.files("vrm_protocol") / "schemas"
    for entry in sorted(package.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(_SCHEMA_SUFFIX):
            documents[entry.name.removesuffix(_SCHEMA_SUFFIX)] = json.loads(
                entry.read_text("utf-8")
            )
    return documents


def _problem_details_schema() -> dict[str, Any]:
    return {
        "title": "Problem details",
        "description": (
            "RFC 9457 problem details of a rejection (spec §11.5). `type` is "
            f"`{ERROR_TYPE_BASE}` followed by `code`; `code` repeats the stable "
            "error code so that clients need not parse the URI."
        ),
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": "Problem type URI."},
            "title": {"type": "string", "description": "The registry title of the code."},
            "status": {
                "type": "integer",
                "minimum": 400,
                "maximum": 599,
                "description": "The HTTP status, as the error registry assigns it.",
            },
            "detail": {"type": "string", "description": "This occurrence, for people."},
            "instance": {"type": "string", "description": "This occurrence, as a URI."},
            "code": {
                "type": "string",
                "enum": [code.value for code in ErrorCode],
                "description": "The stable error code (spec §16).",
            },
            "path": {
                "type": "string",
                "description": "JSON path of the offending member, when there is one.",
            },
            "errors": {
                "type": "array",
                "description": "Every schema fault, for `schema-invalid`.",
                "items": {"type": "object"},
            },
            "retry_after": {
                "type": "integer",
                "minimum": 1,
                "description": "Seconds until a retry may succeed, for `rate-limited`.",
            },
        },
    }


def _discovery_schema() -> dict[str, Any]:
    endpoint = {"type": "string", "format": "uri"}
    return {
        "title": "Discovery document",
        "description": "What a peer needs to talk to this agent (spec §11.1).",
        "type": "object",
        "required": ["versions", "id", "role", "endpoints", "messageTypes", "algorithms", "limits"],
        "properties": {
            "versions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "id": {"type": "string", "description": "The party's identifier."},
            "role": {"type": "string", "enum": ["buyer", "vendor"]},
            "name": {"type": "string"},
            "endpoints": {
                "type": "object",
                "required": ["inbox", "jwks", "mailbox"],
                "properties": {
                    "inbox": endpoint,
                    "jwks": endpoint,
                    "mailbox": endpoint,
                    "testDriver": {
                        **endpoint,
                        "description": "Present only in test mode (spec §14.3).",
                    },
                },
            },
            "messageTypes": {
                "type": "object",
                "required": ["accepts", "sends"],
                "properties": {
                    "accepts": {"type": "array", "items": _ref("MessageType")},
                    "sends": {"type": "array", "items": _ref("MessageType")},
                },
            },
            "algorithms": {
                "type": "array",
                "items": {"type": "string", "enum": ["EdDSA", "ES256"]},
            },
            "terms": {"type": "array", "items": {"type": "object"}},
            "categories": {"type": "array", "items": {"type": "string"}},
            "limits": {
                "type": "object",
                "required": ["maxMessageBytes", "maxDepth", "ratePerMinute"],
                "properties": {
                    "maxMessageBytes": {"type": "integer", "minimum": 1},
                    "maxDepth": {"type": "integer", "minimum": 1},
                    "ratePerMinute": {"type": "integer", "minimum": 1},
                },
            },
        },
    }


def _jwks_schema() -> dict[str, Any]:
    return {
        "title": "JSON Web Key Set",
        "description": (
            "The party's public signing keys (RFC 7517, section 5); each `kid` is the "
            "key's RFC 7638 thumbprint (spec §11.2)."
        ),
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "kid"],
                    "properties": {
                        "kty": {"type": "string", "enum": ["OKP", "EC"]},
                        "kid": {"type": "string"},
                        "crv": {"type": "string", "enum": ["Ed25519", "P-256"]},
                        "x": {"type": "string"},
                        "y": {"type": "string"},
                        "alg": {"type": "string", "enum": ["EdDSA", "ES256"]},
                        "use": {"type": "string", "const": "sig"},
                    },
                    "not": {"anyOf": [{"required": ["d"]}]},
                },
            }
        },
    }


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


def _driver_operation(
    summary: str,
    description: str,
    body: dict[str, Any] | None,
    *,
    refusals: Iterable[ErrorCode] = (),
    tag: str = "test-driver",
) -> dict[str, Any]:
    codes = [*_ANY_ROUTE, *(_JSON_BODY if body is not None else ()), *refusals]
    operation: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "description": description
        + (" Served only in test mode (spec §14.3)." if tag == "test-driver" else ""),
        "responses": {
            "200": {
                "description": "Done; the answer describes the outcome.",
                "content": {_JSON: {"schema": {"type": "object"}}},
            },
            # 404 also when the agent does not run in test mode.
            **_problem_responses(codes),
        },
    }
    if tag == "test-driver":
        operation["x-test-mode-only"] = True
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {_JSON: {"schema": body}}}
    return operation


def _test_driver_paths() -> dict[str, Any]:
    prefix = TEST_DRIVER_PREFIX
    instruction = {"type": "object", "description": "What the individual instructs."}
    paths: dict[str, Any] = {
        f"{prefix}/clock": {
            "post": _driver_operation(
                "Set the agent's clock offset",
                "From now on the agent's clock runs `offsetSeconds` ahead of real time; the "
                "offset replaces any earlier one and 0 restores real time.",
                {
                    "type": "object",
                    "required": ["offsetSeconds"],
                    "properties": {"offsetSeconds": {"type": "integer"}},
                },
            )
        },
        f"{prefix}/state": {
            "get": _driver_operation(
                "The agent's relationships and held data",
                "A JSON summary of the agent's relationships, their states and the personal "
                "data it holds, for checks that must see inside the agent.",
                None,
            )
        },
    }
    notice = {
        "type": "object",
        "description": "The relationship (`buyer` or `peer`: a party id) and, optionally, "
        "`kind`, `category`, `programme`, `summary` and `proposals`.",
    }
    for action, summary, description, body, refusals in (
        (
            "service-notice",
            "Vendor agents: send a service notice",
            "Send a service notice or programme offer to one relationship, if the "
            "individual's preferences allow it; refused (`illegal-transition`, with "
            "`sent: false` and the `reason`) when they do not.",
            notice,
            (ErrorCode.ILLEGAL_TRANSITION,),
        ),
        ("sweep", "Vendor agents: run the retention sweep", "Delete what is due now.", None, ()),
        (
            "deliver",
            "Vendor agents: attempt due deliveries",
            "Attempt every delivery that is due now.",
            None,
            (),
        ),
    ):
        paths[f"{prefix}/{action}"] = {
            "post": _driver_operation(summary, description, body, refusals=refusals)
        }
    for action, summary in (
        ("rfi", "Send a personal RFI"),
        ("rfp", "Send a personal RFP"),
        ("accept", "Accept an offer"),
        ("decline", "Decline offers"),
        ("exit", "Exit a relationship"),
        ("terms", "Answer a terms assertion"),
        ("service", "Answer a service notice"),
    ):
        operation = _driver_operation(
            f"Buyer agents: {summary.lower()}",
            f"{summary} as if the individual had instructed it (buyer agents only).",
            instruction,
        )
        # A buyer's driver answers a bad instruction, a refused move, a peer's
        # refusal or a store that cannot write with problem details (spec D9, D11).
        operation["responses"].update(_problem_responses(_BUYER_DRIVER_CODES))
        paths[f"{prefix}/{action}"] = {"post": operation}
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
        "ProblemDetails": _problem_details_schema(),
        "MessageType": {
            "title": "Message type",
            "type": "string",
            "enum": [message_type.value for message_type in MessageType],
        },
        "Discovery": _discovery_schema(),
        "Jwks": _jwks_schema(),
        "MailboxPage": {
            "title": "Mailbox page",
            "description": "Messages after the cursor, oldest first, and the next cursor.",
            "type": "object",
            "required": ["messages", "next"],
            "properties": {
                "messages": {"type": "array", "items": _ref("CompactJws")},
                "next": {"type": "integer", "minimum": 0},
            },
        },
        **{stem: _as_component(document, stem) for stem, document in schemas.items()},
    }
    # An inbox may answer with any code of the registry: every stage runs there.
    inbox_codes = list(ErrorCode)
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
        ErrorCode.RATE_LIMITED,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.TEMPORARILY_UNAVAILABLE,
    ]
    paths: dict[str, Any] = {
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
        **_test_driver_paths(),
        "/vrm/operator/service-notice": {
            "post": {
                **_driver_operation(
                    "Vendor agents: the operator sends a service notice",
                    "The test driver's service-notice instruction for the operator, outside "
                    "test mode; served when the agent has an operator token, authorised by "
                    "`Authorization: Bearer <token>`.",
                    {"type": "object"},
                    refusals=(ErrorCode.AUTHENTICATION_REQUIRED, ErrorCode.ILLEGAL_TRANSITION),
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
                "Every agent (buyer or vendor) serves these endpoints at its own base URL. "
                "Generated from vrm_protocol (http_binding, errors, schemas); see the "
                "specification, section 11."
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
            {"name": "test-driver", "description": "Test mode only (spec §14.3)."},
            {"name": "operator", "description": "The operator's own routes."},
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
            },
        },
    }
