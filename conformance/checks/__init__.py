"""The suite's checks. Importing this package registers every one of them
in :data:`conformance.registry.REGISTRY`."""

from conformance.checks import (  # noqa: F401  (imported to register the checks)
    audit,
    buyer_lifecycle,
    discovery,
    security,
    vendor_lifecycle,
)
