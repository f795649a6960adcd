"""Routes of the JSON API under /api/v1/ (SPEC §5): the seed-000 paths and the seed-003
tenant-level ones. Anything else under /api/v1/ answers a JSON 404."""

from __future__ import annotations

from django.urls import path, re_path

from sis_sync.api.errors import not_found_view
from sis_sync.api.views import providers, runs, tenants

T = "tenants/<str:tenantId>"

urlpatterns = [
    # Providers
    path("providers", providers.ProviderCreateView.as_view(), name="provider-create"),
    path("providers/<int:providerId>", providers.ProviderDetailView.as_view(), name="provider"),
    path(f"{T}/providers", providers.TenantProvidersView.as_view(), name="tenant-providers"),
    path(
        f"{T}/providers/<int:providerId>",
        providers.TenantProviderDetailView.as_view(),
        name="tenant-provider",
    ),
    # One provider's syncs
    path("providers/<int:providerId>/sync", providers.ProviderSyncView.as_view(), name="sync"),
    path(
        "providers/<int:providerId>/sync/cancel",
        providers.ProviderSyncCancelView.as_view(),
        name="sync-cancel",
    ),
    path(
        "providers/<int:providerId>/sync/status",
        providers.ProviderSyncStatusView.as_view(),
        name="sync-status",
    ),
    path("providers/<int:providerId>/runs", providers.ProviderRunsView.as_view(), name="runs"),
    path(
        "providers/<int:providerId>/upload", providers.ProviderUploadView.as_view(), name="upload"
    ),
    path("providers/<int:providerId>/test", providers.ProviderTestView.as_view(), name="test"),
    # Runs
    path("runs/<int:runId>", runs.RunDetailView.as_view(), name="run"),
    path("runs/<int:runId>/rejects", runs.RunRejectsView.as_view(), name="run-rejects"),
    path("runs/<int:runId>/approve", runs.RunApproveView.as_view(), name="run-approve"),
    path("runs/<int:runId>/discard", runs.RunDiscardView.as_view(), name="run-discard"),
    # A tenant's settings and seats (SPEC §6)
    path(T, tenants.TenantSettingsView.as_view(), name="tenant"),
    path(f"{T}/seats", tenants.TenantSeatsView.as_view(), name="tenant-seats"),
    # A tenant's syncs (seed 003: /sync/{tenant_id}/start|status|stop|history)
    path(f"{T}/sync", tenants.TenantSyncView.as_view(), name="tenant-sync"),
    path(f"{T}/sync/start", tenants.TenantSyncView.as_view(), name="tenant-sync-start"),
    path(f"{T}/sync/status", tenants.TenantSyncStatusView.as_view(), name="tenant-sync-status"),
    path(f"{T}/sync/stop", tenants.TenantSyncStopView.as_view(), name="tenant-sync-stop"),
    path(f"{T}/sync/history", tenants.TenantSyncHistoryView.as_view(), name="tenant-sync-history"),
    path("sync/<str:tenantId>/start", tenants.TenantSyncView.as_view(), name="seed-sync-start"),
    path(
        "sync/<str:tenantId>/status",
        tenants.TenantSyncStatusView.as_view(),
        name="seed-sync-status",
    ),
    path("sync/<str:tenantId>/stop", tenants.TenantSyncStopView.as_view(), name="seed-sync-stop"),
    path(
        "sync/<str:tenantId>/history",
        tenants.TenantSyncHistoryView.as_view(),
        name="seed-sync-history",
    ),
    # Audit and roster
    path(f"{T}/audit", tenants.TenantAuditView.as_view(), name="tenant-audit"),
    path(f"{T}/schools", tenants.SchoolsView.as_view(), name="tenant-schools"),
    path(f"{T}/classes", tenants.ClassesView.as_view(), name="tenant-classes"),
    path(f"{T}/users", tenants.UsersView.as_view(), name="tenant-users"),
    path(f"{T}/enrollments", tenants.EnrollmentsView.as_view(), name="tenant-enrollments"),
    re_path(r"^[\s\S]*$", not_found_view, name="not-found"),  # newlines in paths too
]
