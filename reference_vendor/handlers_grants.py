"""Access grants the vendor holds (spec §6.18, §6.19) and its reads under them (spec §11.9).

The individual lets the vendor read named items of her store from her own
agent: the vendor keeps the grant (with the message), reads at the grant's
endpoint with a proof signed by its own key (never a bearer copy), and stops
reading the moment she revokes the grant or its ``until`` passes
(VRM-GRANT-003): a read it would make then is refused here, before anything
is sent. Importing this module registers its handlers on
:data:`reference_vendor.handlers.HANDLERS`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import orjson

from reference_vendor.handlers import HANDLERS
from reference_vendor.store import GrantRevokedRow, GrantRow
from vrm_agent.inbox import Inbound
from vrm_agent.net import DeliveryRefused, FetchRefused, policy_refusal, read_bounded
from vrm_agent.store import RelationshipRecord
from vrm_agent.unit import UnitOfWork
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.models import AccessGrantMessage, AccessRevocationMessage
from vrm_protocol.read_proof import READ_AUTH_SCHEME, sign_read_proof

if TYPE_CHECKING:
    from reference_vendor.agent import VendorAgent

__all__ = ["MAX_READ_BYTES", "GrantedRead", "read_granted"]

#: The largest answer to a granted read it takes (what a peer sends is untrusted, D7).
MAX_READ_BYTES: Final = 64 * 1024
#: How long a granted read may take.
READ_TIMEOUT_SECONDS: Final = 5.0


@HANDLERS.on(AccessGrantMessage)
async def on_access_grant(
    vendor: VendorAgent, inbound: Inbound[AccessGrantMessage], work: UnitOfWork
) -> None:
    """Keep the grant: what it may read, where, with which key, until when (spec §6.18).
    The state machine checked that the grant is to this vendor."""
    body = inbound.message.body
    work.write(
        GrantRow(
            grant_id=body.id,
            peer=inbound.peer,
            message_id=inbound.id,
            items=tuple(body.items),
            purposes=tuple(body.purposes),
            until=body.until,
            endpoint=body.endpoint,
            key=body.key,
            created_at=format_timestamp(inbound.now),
        )
    )


@HANDLERS.on(AccessRevocationMessage)
async def on_access_revocation(
    vendor: VendorAgent, inbound: Inbound[AccessRevocationMessage], work: UnitOfWork
) -> None:
    """She revoked a grant: nothing is read under it again (spec §6.19, VRM-GRANT-003).
    A revocation of a grant it does not hold changes nothing."""
    work.write(
        GrantRevokedRow(inbound.message.body.grant, inbound.peer, format_timestamp(inbound.now))
    )


@dataclass(frozen=True, slots=True)
class GrantedRead:
    """The answer to one read: its HTTP status and the JSON document (her items,
    or problem details)."""

    status: int
    document: dict[str, Any]


async def read_granted(vendor: VendorAgent, grant_id: str) -> GrantedRead:
    """Read the items of ``grant_id`` from her agent, now (spec §11.9).

    Raises:
        LookupError: it holds no such grant.
        LocalProtocolError: GRANT_REVOKED or GRANT_EXPIRED (nothing is sent:
            VRM-GRANT-003); UNKNOWN_KEY when the grant names a key it does not
            hold; TEMPORARILY_UNAVAILABLE when her agent cannot be reached or
            answers out of bounds; the delivery policy's refusal as
            INVALID_REQUEST.
    """
    grant = await vendor.store.grant(grant_id)
    if grant is None:
        raise LookupError(f"no grant {grant_id}")
    now = vendor.clock.now()
    if grant.revoked_at is not None and vendor.strategies.grants.honours_revocation:
        raise LocalProtocolError(ErrorCode.GRANT_REVOKED, f"grant {grant_id} was revoked")
    if now >= parse_timestamp(grant.until) and vendor.strategies.grants.honours_revocation:
        raise LocalProtocolError(ErrorCode.GRANT_EXPIRED, f"grant {grant_id} ended {grant.until}")
    if vendor.key.thumbprint() != grant.key:
        raise LocalProtocolError(
            ErrorCode.UNKNOWN_KEY, "the grant names a key this vendor does not sign with"
        )
    proof = sign_read_proof(vendor.key, grant=grant_id, method="GET", url=grant.endpoint, now=now)
    policy = vendor.config.delivery_policy
    try:
        # Her endpoint is an address a buyer's agent chose: read under the
        # delivery policy, as a replyTo is posted to (spec §11.8), bounded (D7).
        policy.check_url(grant.endpoint)
        async with asyncio.timeout(READ_TIMEOUT_SECONDS):
            async with vendor.outbox.session.get(
                grant.endpoint,
                allow_redirects=False,
                headers={"Authorization": f"{READ_AUTH_SCHEME} {proof}"},
            ) as response:
                data = await read_bounded(response, MAX_READ_BYTES, grant.endpoint)
                status = response.status
    except DeliveryRefused as error:
        raise LocalProtocolError(ErrorCode.INVALID_REQUEST, str(error)) from error
    except FetchRefused as error:
        raise LocalProtocolError(ErrorCode.TEMPORARILY_UNAVAILABLE, str(error)) from error
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        refusal = policy_refusal(error) if isinstance(error, aiohttp.ClientError) else None
        if refusal is not None:
            raise LocalProtocolError(ErrorCode.INVALID_REQUEST, str(refusal)) from error
        raise LocalProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE, f"{grant.endpoint}: {error or 'timed out'}"
        ) from error
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise LocalProtocolError(
            ErrorCode.TEMPORARILY_UNAVAILABLE, f"{grant.endpoint} answered no JSON object"
        )
    if status == 403 and document.get("code") == ErrorCode.GRANT_REVOKED.value:
        # Her agent says she revoked it (her revocation may not have reached us
        # yet): we stop reading under it all the same (spec §6.19).
        async def revoked(record: RelationshipRecord, work: UnitOfWork) -> None:
            work.write(GrantRevokedRow(grant_id, grant.peer, format_timestamp(now)))

        await vendor.pipeline.act(grant.peer, revoked)
    return GrantedRead(status, document)
