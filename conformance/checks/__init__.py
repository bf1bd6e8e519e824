"""The suite's checks. Importing this package registers every one of them
in :data:`conformance.registry.REGISTRY`."""

from conformance.checks import (  # noqa: F401  (imported to register the checks)
    attestations,
    audit,
    binding_hardening,
    buyer_guard,
    buyer_lifecycle,
    buyer_obligations,
    clause_probes,
    conduct,
    discovery,
    keys,
    mailbox,
    security,
    vendor_deals,
    vendor_lifecycle,
    vendor_servicing,
)
