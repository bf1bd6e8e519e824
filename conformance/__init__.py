"""The VRM protocol conformance suite.

Third-party buyer and vendor agents, written in any language, run this suite
against their product: ``vrm conformance run --role vendor --target URL``.
The suite judges only what crosses the wire — HTTP requests, responses and the
signed messages inside them — and imports :mod:`vrm_protocol` to do so, never
the reference agents.

Every report names :data:`SUITE_VERSION` (this suite) and the protocol version
it judges against (:data:`vrm_protocol.vocabulary.PROTOCOL_VERSION`).
"""

from __future__ import annotations

from vrm_protocol.vocabulary import PROTOCOL_VERSION

__all__ = ["SPEC_VERSION", "SUITE_NAME", "SUITE_VERSION"]

#: Version of the suite itself. Bumped whenever a check is added, removed or
#: changes what it accepts, so that two reports can be compared honestly.
SUITE_VERSION = "1.0.0"
SUITE_NAME = "vrm-conformance"
#: The protocol version the checks judge against.
SPEC_VERSION = PROTOCOL_VERSION
