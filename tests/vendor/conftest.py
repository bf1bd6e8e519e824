"""Fixtures for the reference vendor's tests: the real app on a real SQLite file,
real keys, and buyers that sign with the library (pairwise did:jwk pseudonyms).

Replies are collected from the vendor's mailbox with a signed poll token (no
``replyTo``), or from a real buyer inbox server when a test sets one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance.peers import bodies
from reference_vendor.app import AGENT, create_app
from reference_vendor.catalogue import TrustedIssuer, load_catalogue
from reference_vendor.config import VendorConfig
from vrm_protocol.attestations import issue_attestation
from vrm_protocol.canonical import canonical_json, message_digest
from vrm_protocol.codec import build_message, decode, encode
from vrm_protocol.http_binding import POLL_AUTH_SCHEME, POLL_TYP
from vrm_protocol.keys import KeySet, PairwiseIdentity, SigningKey, key_resolver
from vrm_protocol.signing_profile import sign_compact
from vrm_protocol.vocabulary import MESSAGE_MEDIA_TYPE

VENDOR_ID = "http://vendor.test:8080"
ISSUER_ID = "https://credit-union.test"


def stamp(moment: datetime) -> str:
    """A protocol timestamp."""
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Issuer:
    """A credit union the vendor trusts."""

    id: str
    key: SigningKey

    def ability_to_pay(self, subject: str, now: datetime, up_to: str) -> dict[str, str]:
        return issue_attestation(
            kind="ability-to-pay",
            subject=subject,
            audience=[VENDOR_ID],
            claims={"range": {"max": bodies.money(up_to)}},
            issuer_key=self.key,
            issuer_id=self.id,
            now=now,
        )


@dataclass
class Reply:
    """A message the vendor sent, verified with its published keys."""

    token: bytes
    payload: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.payload["type"])

    @property
    def body(self) -> dict[str, Any]:
        return dict(self.payload["body"])

    @property
    def id(self) -> str:
        return str(self.payload["id"])

    def ref(self) -> dict[str, str]:
        return {"id": self.id, "digest": message_digest(self.token)}


@dataclass
class Buyer:
    """One pseudonymous buyer talking to the vendor under test."""

    client: TestClient[web.Request, web.Application]
    identity: PairwiseIdentity = field(default_factory=PairwiseIdentity.generate)
    cursor: int = 0
    received: list[Reply] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.identity.identifier

    def now(self) -> datetime:
        agent = self.client.server.app[AGENT]
        return agent.clock.now()

    def compose(
        self,
        message_type: str,
        body: Mapping[str, Any],
        *,
        thread: str | None = None,
        parent: str | None = None,
        message_id: str | None = None,
        reply_inbox: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        payload = build_message(
            message_type,
            body,
            sender=self.id,
            to=[VENDOR_ID],
            now=self.now(),
            thread=thread,
            parent=parent,
            reply_inbox=reply_inbox,
            message_id=message_id,
        )
        payload.update(overrides)
        return payload

    def sign(self, payload: Mapping[str, Any]) -> bytes:
        return encode(dict(payload), self.identity.signing_key)

    async def post(
        self, token: bytes, *, content_type: str = MESSAGE_MEDIA_TYPE
    ) -> tuple[int, bytes, str]:
        response = await self.client.post(
            "/vrm/inbox", data=token, headers={"Content-Type": content_type}
        )
        return response.status, await response.read(), response.content_type

    async def send(self, payload: Mapping[str, Any]) -> tuple[int, bytes, str]:
        return await self.post(self.sign(payload))

    async def poll(self) -> list[Reply]:
        """Collect new replies from the mailbox (spec §11.4)."""
        now = self.now()
        token = sign_compact(
            canonical_json(
                {
                    "from": self.id,
                    "to": [VENDOR_ID],
                    "created": stamp(now),
                    "expires": stamp(now + timedelta(minutes=4)),
                    "after": self.cursor,
                }
            ),
            self.identity.signing_key,
            typ=POLL_TYP,
        )
        response = await self.client.get(
            f"/vrm/mailbox?after={self.cursor}",
            headers={"Authorization": f"{POLL_AUTH_SCHEME} {token.decode()}"},
        )
        assert response.status == 200, await response.text()
        document = await response.json()
        jwks = await (await self.client.get("/vrm/jwks.json")).json()
        fresh = []
        for item in document["messages"]:
            raw = item.encode()
            received = decode(
                raw,
                resolve_key=key_resolver(KeySet.from_jwks(jwks)),
                receiver=self.id,
                now=self.now(),
            )
            fresh.append(Reply(raw, dict(received.payload)))
        self.cursor = int(document["next"])
        self.received.extend(fresh)
        return fresh

    async def expect(self, message_type: str) -> Reply:
        """The next reply of ``message_type`` (polls the mailbox; no timing assumption
        beyond the commit having happened before the 202)."""
        for reply in self.received:
            if reply.type == message_type:
                self.received.remove(reply)
                return reply
        fresh = await self.poll()
        for reply in fresh:
            if reply.type == message_type:
                self.received.remove(reply)
                return reply
        raise AssertionError(f"no {message_type} in the mailbox; got {[r.type for r in fresh]}")


def receipt_payload(body: bytes) -> dict[str, Any]:
    """The payload of a receipt the inbox answered with (verification is separate)."""
    import json

    from vrm_protocol.canonical import b64url_decode

    return dict(json.loads(b64url_decode(body.split(b".")[1])))


@pytest.fixture
def issuer() -> Issuer:
    return Issuer(ISSUER_ID, SigningKey.generate("ES256"))


@pytest.fixture
def make_config(tmp_path: Path, issuer: Issuer) -> Callable[..., VendorConfig]:
    def make(catalogue: str = "dealer-mayfair", **options: Any) -> VendorConfig:
        loaded = load_catalogue(catalogue).with_trusted_issuers(
            (TrustedIssuer(issuer.id, KeySet([issuer.key.public()]).to_jwks()),)
        )
        options.setdefault("reply_delay", 0.0)
        options.setdefault("test_mode", True)
        options.setdefault("public_url", VENDOR_ID)
        return VendorConfig(catalogue=loaded, data_dir=tmp_path / "vendor", **options)

    return make


@pytest.fixture
async def vendor(
    aiohttp_client: Any, make_config: Callable[..., VendorConfig]
) -> TestClient[web.Request, web.Application]:
    client = await aiohttp_client(create_app(make_config()))
    return client


@pytest.fixture
def new_buyer(
    vendor: TestClient[web.Request, web.Application],
) -> Callable[[], Buyer]:
    return lambda: Buyer(vendor)
