"""Routes of the provider webhooks under /webhooks/."""

from __future__ import annotations

urlpatterns: list = []
