"""The parties the suite plays: buyers (against a vendor), vendors and third
parties (against a buyer), a test credit-union issuer, and the canary that
catches a target fetching URLs it was handed.

The suite mints its own messages (keys from ``cryptography``, canonical JSON,
compact JWS) rather than through the library's encoder, so that a defect the
library shares with an agent built on it cannot hide itself. Everything the
target sends back is judged with the library's decoder, which is the
normative pipeline, and again by the suite's own verifier (conformance.judge).
"""
