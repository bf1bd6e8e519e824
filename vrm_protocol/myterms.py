"""The MyTerms roster (IEEE 7012-2025; spec §6.70): the individual's own terms.

The roster is a small registry of agreements that an individual may proffer
to a party as *her* terms, rather than answering the party's (spec §6.7).
Each agreement has an id, a version, a title, its text, and the digest of the
text (``sha-256:`` + base64url of the SHA-256 of its UTF-8 bytes), so that a
``terms-proffer`` and a ``terms-agreement`` can name exactly one text by
``{id, version, digest}`` (spec §6.70, §6.71). One source of truth:
``schemas/registries/myterms-roster.json`` (package data); the spec's roster
table is generated from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Final

from vrm_protocol.canonical import b64url_encode

__all__ = ["Agreement", "agreement", "roster", "text_digest"]

_FILE: Final = "myterms-roster.json"


def text_digest(text: str) -> str:
    """``sha-256:`` + base64url (unpadded) of the SHA-256 of ``text`` in UTF-8."""
    return "sha-256:" + b64url_encode(hashlib.sha256(text.encode("utf-8")).digest())


@dataclass(frozen=True, slots=True)
class Agreement:
    """One agreement of the roster."""

    id: str
    version: str
    title: str
    text: str
    digest: str

    @property
    def key(self) -> tuple[str, str]:
        """``(id, version)``: an agreement's key in the roster."""
        return (self.id, self.version)


@cache
def roster() -> Mapping[tuple[str, str], Agreement]:
    """Every agreement of the roster by ``(id, version)``, in roster order.

    Raises:
        ValueError, OSError: the roster file is missing or malformed, or an
            entry's digest is not the digest of its text.
    """
    path = resources.files("vrm_protocol") / "schemas" / "registries" / _FILE
    document = json.loads(path.read_text("utf-8"))
    entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"schemas/registries/{_FILE} is not a registry document")
    found: dict[tuple[str, str], Agreement] = {}
    for entry in entries:
        item = Agreement(
            str(entry["id"]),
            str(entry["version"]),
            str(entry["title"]),
            str(entry["text"]),
            str(entry["digest"]),
        )
        # The roster's own promise (spec §6.70): the digest is that of the text.
        if item.digest != text_digest(item.text):
            raise ValueError(f"roster agreement {item.id} {item.version}: digest is not the text's")
        found[item.key] = item
    return MappingProxyType(found)


def agreement(agreement_id: str, version: str) -> Agreement | None:
    """The roster agreement ``agreement_id`` at ``version``, or ``None``."""
    return roster().get((agreement_id, version))
