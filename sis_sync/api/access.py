"""Who may call the API, and which tenant's objects they may see (SPEC §5 "Roles").

Unauthenticated → 401; authenticated without a role → 403; a district admin who names another
tenant's tenant, provider or run gets 404, exactly as if it did not exist, so ids of other
districts cannot be probed. A platform admin sees everything.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

from sis_sync.access import has_role, visible_tenants
from sis_sync.models import SisProvider, SisSyncRun, Tenant

SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


class HasAdminRole(BasePermission):
    message = (
        "Your account has no SIS Sync role; a platform admin can give you one "
        "(manage.py create_api_user USERNAME --role DISTRICT_ADMIN --tenant SLUG)"
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        return has_role(request.user)


class ApiUserThrottle(UserRateThrottle):
    """Per-user request rate, read from settings on each request (so tests can change it)."""

    def get_rate(self) -> str:
        return settings.SIS_SYNC_API_THROTTLE_RATE


def _tenants(request: Request) -> QuerySet[Tenant]:
    cached = getattr(request, "_sis_visible_tenants", None)
    if cached is None:
        cached = visible_tenants(request.user)
        request._sis_visible_tenants = cached
    return cached


def tenant_for(request: Request, tenant_id: str) -> Tenant:
    """The tenant named by `tenantId` (its slug), if the user may see it; else 404."""
    tenant = None
    if SLUG.match(tenant_id):
        tenant = _tenants(request).filter(slug=tenant_id).first()
    if tenant is None:
        raise NotFound(f"No tenant {tenant_id!r}")
    return tenant


def provider_for(
    request: Request, provider_id: int, *, tenant: Tenant | None = None
) -> SisProvider:
    providers = SisProvider.objects.select_related("tenant").filter(tenant__in=_tenants(request))
    if tenant is not None:
        providers = providers.filter(tenant=tenant)
    provider = providers.filter(pk=provider_id).first()
    if provider is None:
        raise NotFound(f"No provider {provider_id}")
    return provider


def run_for(request: Request, run_id: int) -> SisSyncRun:
    run = (
        SisSyncRun.objects.select_related("provider__tenant")
        .filter(provider__tenant__in=_tenants(request), pk=run_id)
        .first()
    )
    if run is None:
        raise NotFound(f"No run {run_id}")
    return run
