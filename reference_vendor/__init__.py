"""The reference vendor agent: a dealer (or a third party) speaking the protocol over HTTP.

* :mod:`reference_vendor.app` — the aiohttp application (``create_app``): discovery,
  JWKS, inbox, mailbox, and in test mode the conformance test driver;
* :mod:`reference_vendor.agent` — from a received token to one committed decision;
* :mod:`reference_vendor.rules` — the business rules (offers, counter-offers, terms);
* :mod:`reference_vendor.catalogue` — what a party sells and on which terms (TOML);
* :mod:`reference_vendor.store` — the CRM store (SQLite; the durable replay guard);
* :mod:`reference_vendor.outbox` — delivering replies to the buyers' inboxes;
* :mod:`reference_vendor.cli` — ``vrm vendor serve`` and operator commands.

It imports :mod:`vrm_protocol` and :mod:`vrm_agent` (its files and its server) only
(ARCHITECTURE.md, dependency rule).
"""
