"""What the vendor asks for the paperwork of a deal (spec §12.5, §16.8): its strategies.

The paperwork of a deal (the registered keeper, her insurance policy) is asked
for in the terms assertion of the welcome, for the purpose `legal-obligation`
only (VRM-PAP-001), and shared from her store under those terms. A strategy, so
that the suite's self-tests can start the vendor asking for it for marketing as
well (:mod:`reference_vendor.faults`) without a branch in the production code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol

from reference_vendor.catalogue import DataRequest

__all__ = [
    "AS_CATALOGUED",
    "PAPERWORK",
    "PAPERWORK_PURPOSE",
    "AsCatalogued",
    "ForMarketingToo",
    "Paperwork",
    "is_paperwork",
]

#: The data categories of a deal's paperwork (spec §16.8), and every category under them.
PAPERWORK: Final = ("vehicle.registration-keeper", "insurance.policy")
#: The one purpose paperwork is asked for (spec §16.7; VRM-PAP-001).
PAPERWORK_PURPOSE: Final = "legal-obligation"


def is_paperwork(item: str) -> bool:
    """Whether ``item`` is, or lies under, a paperwork category."""
    return any(item == name or item.startswith(name + ".") for name in PAPERWORK)


class Paperwork(Protocol):
    """The data requests a terms assertion carries."""

    def requests(self, catalogued: Sequence[DataRequest]) -> tuple[DataRequest, ...]:
        """The catalogue's requests as the assertion asks them."""
        ...


@dataclass(frozen=True, slots=True)
class AsCatalogued:
    """Production: the catalogue's requests, paperwork for `legal-obligation` only."""

    def requests(self, catalogued: Sequence[DataRequest]) -> tuple[DataRequest, ...]:
        return tuple(catalogued)


@dataclass(frozen=True, slots=True)
class ForMarketingToo:
    """A fault: the paperwork is asked for marketing as well (VRM-PAP-001 broken)."""

    def requests(self, catalogued: Sequence[DataRequest]) -> tuple[DataRequest, ...]:
        return tuple(
            replace(request, purposes=(*request.purposes, "marketing"))
            if is_paperwork(request.item)
            else request
            for request in catalogued
        )


AS_CATALOGUED: Final[Paperwork] = AsCatalogued()
