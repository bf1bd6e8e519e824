"""The reference directory (spec §11.10): where vendors list what they serve and
where, and where an individual's agent finds vendors she does not know yet
without saying who she is.

``vrm directory serve`` runs it. It keeps only signed listings, each verified
against the keys the vendor publishes on its own origin; it never sees an RFI.
"""
