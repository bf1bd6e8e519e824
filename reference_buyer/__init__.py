"""reference_buyer package."""
