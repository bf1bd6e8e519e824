"""The party's own attestations: what a registry says about it (spec §10.4).

A terms registry attests that this party signed the standard agreement it
asserts (``terms-signatory``); the agent carries every such attestation in its
terms assertions, so that the individual's agent can verify who signed before
it shares (VRM-ATT-012). They come from the operator (``vrm vendor serve
--party-attestation FILE``, read at start) or, in test mode, from the test
driver (``POST /vrm/test-driver/party-attestation``), e.g. once the registry
issued one for the address the agent was given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from vrm_agent.http import json_object
from vrm_protocol.canonical import b64url_decode
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.models import Attestation
from vrm_protocol.party_attestations import PARTY_ATTESTATION_KINDS

__all__ = ["PartyAttestationError", "about", "load_party_attestation", "parse_party_attestation"]


class PartyAttestationError(ValueError):
    """An attestation that is not one of this party's own."""


def about(attestation: Attestation) -> str | None:
    """The ``sub`` of an attestation's token (read, not verified: the agent only
    chooses what to carry; the receiver verifies it)."""
    try:
        payload = json.loads(b64url_decode(attestation.token.split(".")[1]))
    except (ValueError, IndexError):
        return None
    subject = payload.get("sub") if isinstance(payload, dict) else None
    return subject if isinstance(subject, str) else None


def parse_party_attestation(document: Any, party_id: str) -> Attestation:
    """``document`` as an attestation of a party kind about ``party_id``.

    Raises:
        PartyAttestationError: it is not one.
    """
    try:
        attestation = Attestation.model_validate(document)
    except ValidationError as error:
        raise PartyAttestationError(f"not an attestation: {error}"[:300]) from None
    if attestation.kind not in PARTY_ATTESTATION_KINDS:
        raise PartyAttestationError(f"{attestation.kind!r} is not a party attestation kind")
    if about(attestation) != party_id:
        raise PartyAttestationError(f"the attestation is not about {party_id}")
    return attestation


def load_party_attestation(path: Path, party_id: str) -> Attestation:
    """The attestation in the JSON file ``path``.

    Raises:
        PartyAttestationError: it cannot be read, or is not one of the party's.
    """
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise PartyAttestationError(f"{path}: {error}") from error
    return parse_party_attestation(document, party_id)


async def driver_party_attestation(request: web.Request) -> web.Response:
    """``POST /party-attestation {"attestation": {kind, issuer, token}}`` (test mode):
    carry it in the terms assertions from now on."""
    # The application's key is defined with the application, which imports this module.
    from reference_vendor.app import AGENT

    agent = request.app[AGENT]
    document = await json_object(request, agent.config.limits, agent.config.body_timeout)
    try:
        attestation = parse_party_attestation(document.get("attestation"), agent.party_id)
    except PartyAttestationError as error:
        raise RemoteProtocolError(ErrorCode.INVALID_REQUEST, str(error)) from error
    agent.party_attestations.append(attestation)
    return web.json_response({"attestations": len(agent.party_attestations)})
