"""reference_vendor package."""
