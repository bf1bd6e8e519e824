"""Her access grants (spec §6.18, §6.19) and the read endpoint she serves (spec §11.9).

She lets a party read named items of her store, for named purposes, until a
time: the grant is a signed message to that party naming a read endpoint on
her agent (a random path segment per grant, so that no two relationships
share an address) and the thumbprint of the party's published key. The
party reads with ``GET`` and a proof signed by that key
(:mod:`vrm_protocol.read_proof`); her agent judges the proof, the grant, its
window, the method and URL, and the proof's ``jti`` (taken once, durably),
answers the items' values as her store holds them now, and logs every read,
answered or refused. She may revoke a grant at any time; from then on every
read is refused with ``grant-revoked`` (after ``until``: ``grant-expired``).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from reference_buyer.directory import Directory
from reference_buyer.faults import GrantRule
from reference_buyer.outgoing import Sender, build
from reference_buyer.pseudonyms import Pseudonyms
from reference_buyer.store import AccessGrantRecord, AccessRevoked, BuyerStore, GrantRead
from vrm_agent.clock import Clock
from vrm_agent.inbox import Sent
from vrm_agent.unit import outgoing, present
from vrm_protocol.canonical import b64url_decode
from vrm_protocol.errors import ErrorCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp, parse_timestamp
from vrm_protocol.models import AccessGrantBody, AccessRevocationBody
from vrm_protocol.read_proof import proof_from_authorization, verify_read_proof
from vrm_protocol.state_machine import Direction

__all__ = ["READ_PATH", "GrantOutcome", "Grants"]

#: Her read endpoints: ``{party id}/vrm/read/{tag}`` (spec §11.9).
READ_PATH: Final = "/vrm/read"
#: Random bytes of a read endpoint's tag (base64url: 22 characters).
TAG_BYTES: Final = 16


@dataclass(frozen=True, slots=True)
class GrantOutcome:
    """An answered read: the document served."""

    document: dict[str, Any]


class Grants:
    """Her grants (see the module docstring).

    Args:
        store: her store.
        pseudonyms, directory: her pseudonyms, and what parties publish (their keys).
        sender: how a message of hers goes out.
        clock: the one clock.
        party_id: her agent's base URL (read endpoints are under it); ``None``
            when she serves nothing, and then she can grant nothing.
        rule: whether ended grants are refused (only a test-mode fault says no).
    """

    def __init__(
        self,
        store: BuyerStore,
        pseudonyms: Pseudonyms,
        directory: Directory,
        sender: Sender,
        clock: Clock,
        *,
        party_id: str | None,
        rule: GrantRule | None = None,
    ) -> None:
        self.store = store
        self.pseudonyms = pseudonyms
        self.directory = directory
        self.sender = sender
        self.clock = clock
        self.party_id = party_id
        self.rule = rule if rule is not None else GrantRule()

    async def _thread_with(self, peer: str) -> tuple[str | None, str | None]:
        signed = [e for e in await self.store.history(peer=peer, include_refused=False) if e.token]
        last = signed[-1] if signed else None
        return (last.thread, last.message_id) if last is not None else (None, None)

    async def _signing_key(self, peer: str) -> str:
        """The thumbprint of the key ``peer`` signs with now: the key of the latest
        message she took from it (its signature was verified then), else its
        newest published key (spec §11.2).

        Raises:
            LocalProtocolError: UNKNOWN_KEY, it publishes no key.
        """
        keys = await self.directory.keys_of(peer)
        received = [
            e
            for e in await self.store.history(peer=peer, include_refused=False)
            if e.token is not None and e.direction is Direction.RECEIVED
        ]
        if received and received[-1].token is not None:
            kid = _kid(received[-1].token)
            if kid is not None and kid in keys:
                return keys.get(kid).thumbprint()
        published = list(keys)
        if not published:
            raise LocalProtocolError(ErrorCode.UNKNOWN_KEY, f"{peer} publishes no key to bind")
        return published[-1].thumbprint()

    async def grant(
        self,
        peer: str,
        *,
        items: Sequence[str],
        purposes: Sequence[str],
        until: datetime,
    ) -> tuple[Sent, AccessGrantRecord]:
        """Grant ``peer`` reads of ``items`` for ``purposes`` until ``until`` (spec §6.18).

        The key the grant names is the one ``peer`` publishes now (its newest
        current key, spec §11.2); the grant is recorded with the message, and
        only if ``peer`` takes it.

        Raises:
            LocalProtocolError: she serves no read endpoint, the party publishes
                no key, or the state machine refuses the grant.
            RemoteProtocolError: the party refused it.
        """
        if self.party_id is None:
            raise LocalProtocolError(
                ErrorCode.INVALID_REQUEST, "her agent serves no read endpoint: nothing to grant"
            )
        key = await self._signing_key(peer)
        pseudonym = await self.pseudonyms.ensure(peer)
        tag = secrets.token_urlsafe(TAG_BYTES)
        endpoint = f"{self.party_id}{READ_PATH}/{tag}"
        grant_id = f"urn:uuid:{uuid.uuid4()}"
        body = build(
            AccessGrantBody,
            id=grant_id,
            grantee=peer,
            items=tuple(items),
            purposes=tuple(purposes),
            until=format_timestamp(until),
            endpoint=endpoint,
            key=key,
        )
        thread, parent = await self._thread_with(peer)
        reply = outgoing(body, thread=thread, parent=parent)
        record = AccessGrantRecord(
            grant_id=grant_id,
            peer=peer,
            identifier=pseudonym.identifier,
            message_id=reply.id,
            items=tuple(items),
            purposes=tuple(purposes),
            until=format_timestamp(until),
            endpoint=endpoint,
            tag=tag,
            key=key,
            at=format_timestamp(self.clock.now()),
        )
        reply.writes.append(record)
        return await self.sender.send(peer, reply), record

    async def revoke(self, grant_id: str, *, reason: str | None = None) -> Sent:
        """Revoke a grant (spec §6.19): every later read under it is refused; the
        grantee is told.

        The grant is revoked at her agent first, at once: her read endpoint
        refuses it from then on even if the grantee cannot be told now (the
        revocation may be sent again, until the grantee has taken it).

        Raises:
            LocalProtocolError: no such grant of hers, or its revocation was
                taken already; or the revocation could not be sent (the grant
                stays revoked).
            RemoteProtocolError: the grantee refused the revocation (the grant
                stays revoked).
        """
        record = await self.store.access_grant(grant_id=grant_id)
        if record is None or record.revocation_id is not None:
            raise LocalProtocolError(
                ErrorCode.INVALID_REQUEST, f"no grant {grant_id} in force to revoke"
            )
        await self.store.revoke_grant(grant_id, format_timestamp(self.clock.now()))
        body = build(AccessRevocationBody, grant=grant_id, **present(reason=reason))
        entry = await self.store.entry(record.message_id)
        reply = outgoing(
            body,
            thread=entry.thread if entry is not None else None,
            parent=record.message_id,
        )
        reply.writes.append(AccessRevoked(grant_id, reply.id, format_timestamp(self.clock.now())))
        return await self.sender.send(record.peer, reply)

    async def read(self, tag: str, *, method: str, authorization: str | None) -> GrantOutcome:
        """Judge and answer one read at ``{READ_PATH}/{tag}`` (spec §11.9), in the
        order the spec gives; every read that names a grant of hers is logged,
        answered or refused (VRM-GRANT-007).

        Raises:
            RemoteProtocolError: AUTHENTICATION_REQUIRED, NOT_FOUND,
                GRANT_REVOKED, GRANT_EXPIRED, REPLAY, UNKNOWN_KEY,
                SCHEMA_INVALID, or a code of the signing profile.
        """
        token = proof_from_authorization(authorization)
        record = await self.store.access_grant(tag=tag)
        if record is None:
            raise RemoteProtocolError(ErrorCode.NOT_FOUND, "no such read endpoint")
        now = self.clock.now()
        at = format_timestamp(now)
        try:
            ended = self.rule.refuses_ended
            if ended and record.revoked_at is not None:
                # VRM-GRANT-005: revoked is revoked, whatever the proof.
                raise RemoteProtocolError(
                    ErrorCode.GRANT_REVOKED, f"grant {record.grant_id} was revoked"
                )
            if ended and now >= parse_timestamp(record.until):
                raise RemoteProtocolError(
                    ErrorCode.GRANT_EXPIRED, f"grant {record.grant_id} ended at {record.until}"
                )
            # The grantee's key set as she holds it (spec §11.2); the grant names one key of it.
            keys = await self.directory.keys_of(record.peer)
            proof = verify_read_proof(
                token,
                resolve_key=keys.get,
                key_thumbprint=record.key,
                grant=record.grant_id,
                method=method,
                url=record.endpoint,
                now=now,
            )
            profile = await self.store.profile()
            # VRM-GRANT-006: the values as her store holds them now, and only the
            # items the grant names.
            items = [
                {"item": item, "value": profile[item]} for item in record.items if item in profile
            ]
            taken = await self.store.log_read(
                GrantRead(record.grant_id, at, "answered", proof.jti, record.items)
            )
            if not taken:
                raise RemoteProtocolError(ErrorCode.REPLAY, "this proof's jti was taken before")
        except RemoteProtocolError as error:
            await self.store.log_read(
                GrantRead(record.grant_id, at, f"refused: {error.code.value}", None, ())
            )
            raise
        return GrantOutcome({"grant": record.grant_id, "at": at, "items": items})


def _kid(token: bytes) -> str | None:
    """The ``kid`` of a stored compact JWS (verified when it was taken)."""
    try:
        header = orjson.loads(b64url_decode(token.split(b".", 1)[0].decode("ascii")))
    except (ValueError, UnicodeDecodeError, ProtocolError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None
