"""Which key signs the vendor's directory listing (spec §11.10, VRM-DIR-001): a
strategy of :class:`~reference_vendor.faults.VendorStrategies`, so that the
suite's self-tests can start the vendor listing itself with a key it does not
publish."""

from __future__ import annotations

from typing import Final, Protocol

from vrm_protocol.keys import SigningKey

__all__ = ["OWN_KEY", "ForeignKey", "ListingKey", "OwnKey"]


class ListingKey(Protocol):
    """The key a listing is signed with."""

    def key(self, own: SigningKey) -> SigningKey:
        """The signing key, given the vendor's own (published) one."""
        ...


class OwnKey:
    """Production: the vendor's own key, the one its JWKS publishes."""

    def key(self, own: SigningKey) -> SigningKey:
        return own


class ForeignKey:
    """Fault only: a fresh key nobody publishes."""

    def key(self, own: SigningKey) -> SigningKey:
        return SigningKey.generate("EdDSA")


OWN_KEY: Final = OwnKey()
