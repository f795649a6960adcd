"""Tenant actions."""

from __future__ import annotations

from sis_sync.models import Tenant


def tenant_get_or_create(*, slug: str, name: str | None = None) -> Tenant:
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    return tenant
