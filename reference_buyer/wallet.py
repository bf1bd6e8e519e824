"""Her ability-to-pay credentials: a batch issued in advance, one used per presentation
(spec §10.5).

The credit union issues a batch of SD-JWT VCs once, each bound to a holder key
of its own (:func:`vrm_protocol.sd_jwt_vc.issue_batch`); the batch is kept in a
private file of her data directory (0600, written atomically, like her
pseudonyms' keys). Each time a message of hers carries an ability to pay, the
wallet takes one credential never used before, presents it to that party only
(the key-binding JWT's ``aud``) and bound to her pseudonym with it (its
``nonce``), and forgets it: no credential, key or signature is shown twice, so
two dealers cannot link her, and the credit union learns nothing of where she
shops. :class:`CredentialWallet` is an
:data:`~reference_buyer.buying.AttestationSource`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from vrm_agent.clock import Clock
from vrm_agent.files import write_private_atomically
from vrm_protocol.errors import ErrorCode, LocalProtocolError
from vrm_protocol.sd_jwt_vc import SD_JWT_FORMAT, HeldCredential, present

__all__ = ["WALLET_FILE", "CredentialWallet"]

#: The wallet's file in her data directory.
WALLET_FILE: Final = "ability-to-pay.json"


class CredentialWallet:
    """Single-use ability-to-pay credentials of one issuer (see the module docstring).

    Args:
        path: the private file the unused credentials are kept in.
        issuer: the credit union's party id.
        clock: the agent's clock (the key-binding JWT's ``iat``).
    """

    def __init__(self, path: Path, issuer: str, *, clock: Clock | None = None) -> None:
        self.path = path
        self.issuer = issuer
        self.clock = clock

    @classmethod
    def from_file(cls, path: Path, *, clock: Clock | None = None) -> CredentialWallet:
        """The wallet kept in ``path`` (its issuer is recorded in it).

        Raises:
            OSError, ValueError, KeyError: the file cannot be read as a wallet.
        """
        issuer = json.loads(path.read_text("utf-8"))["issuer"]
        if not isinstance(issuer, str):
            raise ValueError(f"{path}: the wallet names no issuer")
        return cls(path, issuer, clock=clock)

    def _read(self) -> list[HeldCredential]:
        if not self.path.exists():
            return []
        document = json.loads(self.path.read_text("utf-8"))
        return [HeldCredential.from_json(item) for item in document["credentials"]]

    def _write(self, credentials: Sequence[HeldCredential]) -> None:
        document = {"issuer": self.issuer, "credentials": [c.to_json() for c in credentials]}
        write_private_atomically(self.path, json.dumps(document).encode("utf-8"))

    def add(self, batch: Sequence[HeldCredential]) -> None:
        """Keep a batch the issuer made for her.

        Raises:
            OSError: the file cannot be written.
        """
        self._write([*self._read(), *batch])

    def remaining(self) -> int:
        """How many credentials were never presented."""
        return len(self._read())

    def __call__(self, subject: str, audience: str) -> Mapping[str, str]:
        """A presentation of one unused credential to ``audience``, bound to the
        pseudonym ``subject``; the credential is gone from the wallet once taken.

        Raises:
            LocalProtocolError: ATTESTATION_MISSING, the batch is used up.
            OSError: the file cannot be written.
        """
        credentials = self._read()
        if not credentials:
            raise LocalProtocolError(
                ErrorCode.ATTESTATION_MISSING,
                "every ability-to-pay credential of the batch was used: ask the issuer for more",
            )
        credential, rest = credentials[0], credentials[1:]
        # Forgotten before it is shown: a crash after this never shows it twice.
        self._write(rest)
        return {
            "kind": "ability-to-pay",
            "issuer": self.issuer,
            "format": SD_JWT_FORMAT,
            "token": present(
                credential,
                audience=audience,
                nonce=subject,
                now=self.clock.now() if self.clock is not None else None,
            ),
        }
