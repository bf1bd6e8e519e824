"""The reference vendor agent: a dealer (or a third party) speaking the protocol over HTTP.

Built on the runtime both reference agents share (:mod:`vrm_agent`: the inbox
pipeline, the unit of work, the stores' SQLite base, the outbox, the mailbox,
the clock, the files, the network edge, the fault strategies):

* :mod:`reference_vendor.app` — the aiohttp application (``create_app``): discovery,
  JWKS, terms, inbox, mailbox, and in test mode the conformance test driver;
* :mod:`reference_vendor.agent` — the runtime put together for a vendor, and what
  the vendor starts itself (notices, the retention sweep);
* :mod:`reference_vendor.handlers` — one handler per message type it takes;
* :mod:`reference_vendor.rules` — the business rules (offers, counter-offers, terms),
  typed bodies in and out;
* :mod:`reference_vendor.catalogue` — what a party sells and on which terms (TOML);
* :mod:`reference_vendor.store` — the CRM store (the protocol records and the vendor's own);
* :mod:`reference_vendor.faults` — the faults the suite's self-tests start it with;
* :mod:`reference_vendor.cli` — ``vrm vendor serve`` and operator commands.

It imports :mod:`vrm_protocol` and :mod:`vrm_agent` only (ARCHITECTURE.md).
"""
