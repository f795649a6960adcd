"""Provider webhooks (SPEC §6)."""
