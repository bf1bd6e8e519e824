"""Her pseudonyms: one pairwise identity per counterparty (spec §3.1), their keys and
reply addresses.

For every counterparty she deals with, her agent makes a fresh key pair; the
pseudonym is its ``did:jwk`` identifier, so two vendors comparing notes find
nothing in common (not a key, not an identifier, not a reply address). This
module owns them:

* the private key of each pseudonym lives in a file of its own under
  ``<data-dir>/keys/`` (0600 in a 0700 directory, never in the database),
  written atomically (temporary file, fsync, rename, fsync of the directory,
  D10) on a worker thread, never on the event loop, and before the pseudonym
  is recorded or used: a message signed by a key she could lose is never sent;
* each relationship's reply address is her inbox followed by a random segment
  (128 bits and more from the OS's CSPRNG, never derived from the pseudonym):
  it neither links two vendors' pseudonyms nor lets anyone guess where to
  write as if to a relationship (spec §12, VRM-PRIV-013);
* :class:`Pseudonyms` is the runtime's :class:`~vrm_agent.inbox.Identities`:
  who she is towards each peer. It never makes a pseudonym for a sender
  (only :meth:`Pseudonyms.ensure`, for a party she chose to contact, does),
  and it holds keys for her pseudonyms only (VRM-BUY-011).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from reference_buyer.store import BuyerStore, PseudonymRecord
from vrm_agent.clock import Clock
from vrm_agent.files import prepare_data_dir, write_private_atomically
from vrm_agent.inbox import Us
from vrm_agent.locks import KeyedLocks
from vrm_protocol.errors import ErrorCode, RemoteProtocolError
from vrm_protocol.freshness import format_timestamp
from vrm_protocol.keys import InvalidKeyError, PairwiseIdentity

__all__ = ["KEYS_DIR", "Pseudonym", "Pseudonyms"]

#: Where her pseudonyms' private keys live, inside the data directory.
KEYS_DIR: Final = "keys"
#: Random bytes in a reply address's last segment (192 bits: 32 base64url characters).
REPLY_TAG_BYTES: Final = 24


@dataclass(frozen=True, slots=True)
class Pseudonym:
    """A pseudonym with its key: who she is towards one counterparty."""

    record: PseudonymRecord
    identity: PairwiseIdentity

    @property
    def identifier(self) -> str:
        """The ``did:jwk`` the counterparty knows her by."""
        return self.record.identifier

    @property
    def peer(self) -> str:
        """The counterparty."""
        return self.record.peer


def _read_key(path: Path) -> PairwiseIdentity:
    """The pseudonym whose private key is in ``path``.

    Raises:
        OSError: the file cannot be read.
        InvalidKeyError, ValueError: it holds no usable key.
    """
    return PairwiseIdentity.from_private_jwk(json.loads(path.read_text("utf-8")))


class Pseudonyms:
    """Her pseudonyms (see the module docstring), cached in memory once loaded.

    Args:
        store: her store (the pseudonym rows).
        keys_dir: the directory of the key files (created 0700).
        clock: the agent's clock.
        inbox: her inbox URL, or ``None`` when she has none (replies then wait
            in the counterparties' mailboxes and she polls them, spec §11.4).
    """

    def __init__(
        self, store: BuyerStore, keys_dir: Path, clock: Clock, *, inbox: str | None = None
    ) -> None:
        self.store = store
        self.keys_dir = keys_dir
        self.clock = clock
        self.inbox = inbox
        # Loaded pseudonyms, by party and by reply tag: a reply to her message
        # finds its relationship without a read (a few hundred bytes each).
        self._by_peer: dict[str, Pseudonym] = {}
        self._by_tag: dict[str, Pseudonym] = {}
        self._creating = KeyedLocks()

    def prepare(self) -> None:
        """Create the keys directory (0700) if missing.

        Raises:
            DataDirError: it cannot be created or made private.
        """
        prepare_data_dir(self.keys_dir)

    def reply_address(self, record: PseudonymRecord) -> str | None:
        """The reply address of the relationship of ``record`` (``None`` without an inbox)."""
        if self.inbox is None:
            return None
        return f"{self.inbox.rstrip('/')}/{record.reply_tag}"

    async def _load(self, record: PseudonymRecord) -> Pseudonym:
        """The pseudonym of ``record`` with its key (read off the event loop).

        Raises:
            RemoteProtocolError: INTERNAL_ERROR, its key file is missing or unusable.
        """
        cached = self._by_peer.get(record.peer)
        if cached is not None:
            return cached
        try:
            identity = await asyncio.to_thread(_read_key, self.keys_dir / record.key_file)
        except (OSError, ValueError, InvalidKeyError) as error:
            raise RemoteProtocolError(
                ErrorCode.INTERNAL_ERROR, f"the key of a pseudonym cannot be read: {error}"
            ) from error
        if identity.identifier != record.identifier:
            raise RemoteProtocolError(
                ErrorCode.INTERNAL_ERROR, "a pseudonym's key file holds another key"
            )
        return self._remember(Pseudonym(record, identity))

    def _remember(self, pseudonym: Pseudonym) -> Pseudonym:
        self._by_peer[pseudonym.peer] = pseudonym
        self._by_tag[pseudonym.record.reply_tag] = pseudonym
        return pseudonym

    async def known(self, peer: str) -> Pseudonym | None:
        """The pseudonym she uses with ``peer``, if she has one (never a new one).

        Raises:
            RemoteProtocolError: INTERNAL_ERROR, its key file is unusable.
            StoreUnavailable: the store cannot be read.
        """
        cached = self._by_peer.get(peer)
        if cached is not None:
            return cached
        record = await self.store.pseudonym_for(peer)
        return await self._load(record) if record is not None else None

    async def by_tag(self, tag: str) -> Pseudonym | None:
        """The pseudonym whose reply address ends in ``tag``.

        Raises:
            RemoteProtocolError: INTERNAL_ERROR, its key file is unusable.
            StoreUnavailable: the store cannot be read.
        """
        cached = self._by_tag.get(tag)
        if cached is not None:
            return cached
        record = await self.store.pseudonym_by_tag(tag)
        return await self._load(record) if record is not None else None

    async def by_identifier(self, identifier: str) -> Pseudonym | None:
        """Her pseudonym ``identifier`` (with whichever counterparty).

        Raises:
            RemoteProtocolError: INTERNAL_ERROR, its key file is unusable.
            StoreUnavailable: the store cannot be read.
        """
        record = await self.store.pseudonym_by_identifier(identifier)
        return await self._load(record) if record is not None else None

    async def ensure(self, peer: str) -> Pseudonym:
        """The pseudonym she uses with ``peer``: a fresh one on first contact.

        Only for a party she chose to contact. The key file is durable before
        the pseudonym is recorded, and the pseudonym before it signs anything.

        Raises:
            OSError: the key file cannot be written.
            StoreUnavailable: the store cannot be read or written.
        """
        known = await self.known(peer)
        if known is not None:
            return known
        async with self._creating.hold(peer):
            known = await self.known(peer)
            if known is not None:
                return known
            identity = PairwiseIdentity.generate()
            # The file name says nothing about the pseudonym or the peer.
            stem = hashlib.sha256(identity.identifier.encode()).hexdigest()[:32]
            path = self.keys_dir / f"{stem}.jwk"
            data = json.dumps(identity.signing_key.to_private_jwk()).encode("utf-8")
            await asyncio.to_thread(write_private_atomically, path, data)
            record = PseudonymRecord(
                peer=peer,
                identifier=identity.identifier,
                key_file=path.name,
                reply_tag=secrets.token_urlsafe(REPLY_TAG_BYTES),
                created=format_timestamp(self.clock.now()),
            )
            await self.store.add_pseudonym(record)
            return self._remember(Pseudonym(record, identity))

    # -- vrm_agent.inbox.Identities --

    async def for_peer(self, peer: str) -> Us:
        """Who she is towards ``peer``: her pseudonym, its key, its reply address.

        Raises:
            RemoteProtocolError: NOT_A_PARTICIPANT, she has no pseudonym with
                ``peer`` (she never contacted it); INTERNAL_ERROR, its key file
                is unusable.
            StoreUnavailable: the store cannot be read.
        """
        pseudonym = await self.known(peer)
        if pseudonym is None:
            raise RemoteProtocolError(
                ErrorCode.NOT_A_PARTICIPANT, "she is in no relationship with this party"
            )
        return Us(
            pseudonym.identifier,
            pseudonym.identity.signing_key,
            self.reply_address(pseudonym.record),
        )
