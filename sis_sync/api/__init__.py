"""The JSON API under /api/v1/ (SPEC §5)."""
