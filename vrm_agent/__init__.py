"""The runtime both reference agents are built on (I/O allowed; imports :mod:`vrm_protocol` only).

Agents of one shape (ARCHITECTURE.md): every inbound message goes through the
same pipeline, handlers are registered per message type and checked complete
at start-up, one unit of work commits everything a message causes before its
receipt is answered, and the parts a conformance self-test must be able to
break are replaceable strategies.

* :mod:`vrm_agent.inbox` — the inbox pipeline (steps 2-8) and the agent's own actions;
* :mod:`vrm_agent.registry` — handlers by message type, the exhaustiveness check;
* :mod:`vrm_agent.unit` — the unit of work;
* :mod:`vrm_agent.store` — the protocol records' store interface (typed, async);
* :mod:`vrm_agent.sqlite` — its SQLite base: group commit, readers, migrations;
* :mod:`vrm_agent.outbox`, :mod:`vrm_agent.mailbox` — delivery (D6) and the mailbox (D5);
* :mod:`vrm_agent.http`, :mod:`vrm_agent.server` — problem details, bounded bodies,
  the inbox and mailbox routes, the socket with its timeouts and connection cap;
* :mod:`vrm_agent.net` — the delivery policy in the resolver, bounded fetches;
* :mod:`vrm_agent.clock` — the one clock; :mod:`vrm_agent.files` — data directories
  and private files (D10); :mod:`vrm_agent.locks` — per-key locks;
* :mod:`vrm_agent.strategies`, :mod:`vrm_agent.faults` — the replaceable parts, and
  the weakened ones test mode may install.
"""
