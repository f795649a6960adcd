"""Routes of the provider webhooks under /webhooks/ (SPEC §5). `tenantId`: id or slug."""

from __future__ import annotations

from django.urls import path

from sis_sync.webhooks.views import classlink_webhook, clever_webhook

urlpatterns = [
    path("clever/<str:tenant_id>", clever_webhook, name="webhook-clever"),
    path("classlink/<str:tenant_id>", classlink_webhook, name="webhook-classlink"),
]
