"""Providers: create, read, change, disable; their syncs, runs, uploads and connection test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from sis_sync.api.access import provider_for, tenant_for
from sis_sync.api.serializers import (
    ConnectionTestOut,
    ProviderCreateIn,
    ProviderOut,
    ProviderUpdateIn,
    RunOut,
    SyncIn,
    SyncStatusOut,
    TenantProviderCreateIn,
    UploadIn,
)
from sis_sync.api.views.base import (
    PAGE_PARAMETERS,
    TENANT_PARAMETER,
    ApiView,
    TenantScoped,
    errors,
    page_of,
    parse,
    refusals_audited,
)
from sis_sync.audit import audit_record
from sis_sync.connections import provider_test_connection
from sis_sync.errors import AlreadyRunning
from sis_sync.listings import provider_runs, tenant_providers
from sis_sync.manual_syncs import sync_trigger
from sis_sync.models import SisProvider, Tenant
from sis_sync.providers import provider_create, provider_disable, provider_update
from sis_sync.runs import sync_cancel
from sis_sync.selectors import provider_sync_status
from sis_sync.sync import sync_upload

TAG = ["providers"]
SYNC_TAG = ["syncs"]


def _create(view: ApiView, tenant: Tenant, data: dict[str, Any]) -> Response:
    with refusals_audited(
        "provider.created",
        actor=view.actor,
        tenant=tenant,
        details={"providerType": data["providerType"], "name": data["name"]},
    ):
        provider = provider_create(
            tenant=tenant,
            provider_type=data["providerType"],
            name=data["name"],
            config=data["config"],
            options=data.get("options") or {},
            sync_schedule=data.get("syncSchedule"),
            enabled=data.get("enabled", True),
            actor=view.actor,
        )
    return Response(ProviderOut(provider).data, status=status.HTTP_201_CREATED)


class ProviderCreateView(ApiView):
    @extend_schema(
        tags=TAG,
        summary="Create a provider",
        request=ProviderCreateIn,
        responses={201: ProviderOut, **errors()},
    )
    def post(self, request: Request) -> Response:
        data = parse(ProviderCreateIn, request.data)
        return _create(self, tenant_for(request, data["tenantId"]), data)


class TenantProvidersView(TenantScoped):
    @extend_schema(
        tags=TAG,
        summary="List a tenant's providers",
        operation_id="tenants_providers_list",
        parameters=[TENANT_PARAMETER, *PAGE_PARAMETERS],
        responses={200: page_of(ProviderOut), **errors()},
    )
    def get(self, request: Request, tenantId: str) -> Response:
        return self.paginated(tenant_providers(tenant=self.tenant), ProviderOut)

    @extend_schema(
        tags=TAG,
        summary="Create a provider of this tenant (seed 003 path)",
        parameters=[TENANT_PARAMETER],
        request=TenantProviderCreateIn,
        responses={201: ProviderOut, **errors()},
    )
    def post(self, request: Request, tenantId: str) -> Response:
        return _create(self, self.tenant, parse(TenantProviderCreateIn, request.data))


class ProviderDetailView(ApiView):
    """GET, PATCH and DELETE of /providers/{id}; the seed-003 path adds PUT (same as PATCH)."""

    def provider(self, providerId: int) -> SisProvider:
        return provider_for(self.request, providerId)

    @extend_schema(tags=TAG, summary="Read a provider", responses={200: ProviderOut, **errors()})
    def get(self, request: Request, providerId: int, **kwargs: Any) -> Response:
        return Response(ProviderOut(self.provider(providerId)).data)

    @extend_schema(
        tags=TAG,
        summary="Change a provider",
        description="Only the fields sent change. A secret left out of `config` keeps its "
        "stored value. Keeps the provider's beat schedule in step.",
        request=ProviderUpdateIn,
        responses={200: ProviderOut, **errors()},
    )
    def patch(self, request: Request, providerId: int, **kwargs: Any) -> Response:
        provider = self.provider(providerId)
        data = parse(ProviderUpdateIn, request.data)
        changes: dict[str, Any] = {
            "name": data.get("name"),
            "config": data.get("config"),
            "options": data.get("options"),
            "enabled": data.get("enabled"),
        }
        if "syncSchedule" in data:
            changes["sync_schedule"] = data["syncSchedule"]
        with refusals_audited(
            "provider.updated",
            actor=self.actor,
            target=provider,
            details={"changed": sorted(data)},
        ):
            provider = provider_update(provider=provider, actor=self.actor, **changes)
        return Response(ProviderOut(provider).data)

    @extend_schema(
        tags=TAG,
        summary="Remove a provider",
        description="Disables the provider (it never syncs again) and keeps its runs, roster "
        "links and audit history. Answers the disabled provider.",
        responses={200: ProviderOut, **errors()},
    )
    def delete(self, request: Request, providerId: int, **kwargs: Any) -> Response:
        provider = provider_disable(provider=self.provider(providerId), actor=self.actor)
        return Response(ProviderOut(provider).data)


class TenantProviderDetailView(TenantScoped, ProviderDetailView):
    """/tenants/{tenantId}/providers/{id} (seed 003): the provider must be the tenant's."""

    def provider(self, providerId: int) -> SisProvider:
        return provider_for(self.request, providerId, tenant=self.tenant)

    @extend_schema(
        tags=TAG,
        summary="Change a provider (seed 003 PUT: same as PATCH)",
        request=ProviderUpdateIn,
        responses={200: ProviderOut, **errors()},
    )
    def put(self, request: Request, providerId: int, **kwargs: Any) -> Response:
        return self.patch(request, providerId)


class ProviderSyncView(ApiView):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Start a manual sync",
        description="202 with the run (PENDING when workers take it; finished already in the "
        "embedded mode without Redis). 409 with `details.runId` if one is running.",
        request=SyncIn,
        responses={202: RunOut, **errors(409)},
    )
    def post(self, request: Request, providerId: int) -> Response:
        provider = provider_for(request, providerId)
        data = parse(SyncIn, request.data)
        # sync_start records its own refusal when a sync is already running.
        with refusals_audited(
            "sync.started", actor=self.actor, target=provider, unless=(AlreadyRunning,)
        ):
            run = sync_trigger(
                provider=provider,
                triggered_by=self.actor,
                mode=data["mode"],
                dry_run=data["dryRun"],
                entities=data.get("entities"),
            )
        return Response(RunOut(run).data, status=status.HTTP_202_ACCEPTED)


class ProviderSyncCancelView(ApiView):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Cancel the running sync",
        description="Ends the active run CANCELLED; nothing of it is applied. 409 if none runs.",
        request=None,
        responses={200: RunOut, **errors(409)},
    )
    def post(self, request: Request, providerId: int) -> Response:
        provider = provider_for(request, providerId)
        with refusals_audited("sync.cancelled", actor=self.actor, target=provider):
            run = sync_cancel(provider=provider, cancelled_by=self.actor)
        return Response(RunOut(run).data)


class ProviderSyncStatusView(ApiView):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Sync status",
        description="`currentRun` (with its phase and progress) is the active run, if any.",
        responses={200: SyncStatusOut, **errors()},
    )
    def get(self, request: Request, providerId: int) -> Response:
        provider = provider_for(request, providerId)
        return Response(SyncStatusOut(provider_sync_status(provider=provider)).data)


class ProviderRunsView(ApiView):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Run history, newest first",
        parameters=PAGE_PARAMETERS,
        responses={200: page_of(RunOut), **errors()},
    )
    def get(self, request: Request, providerId: int) -> Response:
        provider = provider_for(request, providerId)
        return self.paginated(provider_runs(provider=provider), RunOut)


@contextmanager
def _saved_upload(upload: UploadedFile) -> Iterator[Path]:
    """The uploaded file in a private temporary file under SIS_SYNC_DATA_DIR, removed after."""
    folder = Path(settings.SIS_SYNC_DATA_DIR) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


class ProviderUploadView(ApiView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        tags=SYNC_TAG,
        summary="Upload a OneRoster CSV bundle and sync it",
        description="For an ONEROSTER_CSV provider without SFTP. The .zip is checked (size, "
        "paths, symlinks, zip bombs), kept as the provider's bundle, and its sync started.",
        request={"multipart/form-data": UploadIn},
        responses={202: RunOut, **errors(409, 415)},
    )
    def post(self, request: Request, providerId: int) -> Response:
        provider = provider_for(request, providerId)
        data = parse(UploadIn, request.data)
        upload: UploadedFile = data["file"]
        details = {"file": upload.name[:200], "bytes": upload.size}
        with (
            refusals_audited(
                "provider.uploaded", actor=self.actor, target=provider, details=details
            ),
            _saved_upload(upload) as path,
        ):
            run = sync_upload(
                provider=provider, source=path, triggered_by=self.actor, dry_run=data["dryRun"]
            )
        audit_record("provider.uploaded", actor=self.actor, target=provider, details=details)
        run.refresh_from_db()
        return Response(RunOut(run).data, status=status.HTTP_202_ACCEPTED)


class ProviderTestView(ApiView):
    @extend_schema(
        tags=TAG,
        summary="Test the connection",
        description="Checks credentials and reachability; changes no data. A failed test is "
        "200 with success false and the reason.",
        request=None,
        responses={200: ConnectionTestOut, **errors()},
    )
    def post(self, request: Request, providerId: int) -> Response:
        provider = provider_for(request, providerId)
        result = provider_test_connection(provider=provider, actor=self.actor)
        return Response(ConnectionTestOut(result._asdict()).data)
