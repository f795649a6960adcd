"""Tenant-level views: all of a tenant's syncs (seed 003), its audit trail, its synced roster.

New tenant endpoints subclass `TenantScoped`: `self.tenant` is the path's tenant, already
checked against the caller's role (another tenant's answers 404).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from sis_sync.api.serializers import (
    AuditEventOut,
    AuditQuery,
    ClassOut,
    ClassQuery,
    EnrollmentOut,
    EnrollmentQuery,
    RunOut,
    SchoolOut,
    SchoolQuery,
    SyncIn,
    TenantSeatsOut,
    TenantSettingsIn,
    TenantSettingsOut,
    TenantStopOut,
    TenantSyncOut,
    TenantSyncStatusOut,
    UserOut,
    UserQuery,
)
from sis_sync.api.views.base import (
    PAGE_PARAMETERS,
    TENANT_PARAMETER,
    TenantScoped,
    errors,
    page_of,
    parse,
    refusals_audited,
)
from sis_sync.errors import AlreadyRunning
from sis_sync.listings import (
    LISTINGS,
    RosterFilter,
    external_ids,
    roster_list,
    tenant_audit,
    tenant_runs,
)
from sis_sync.manual_syncs import tenant_sync_start, tenant_sync_status, tenant_sync_stop
from sis_sync.seats import tenant_seats
from sis_sync.tenants import UNSET, tenant_configure, tenant_settings

SYNC_TAG = ["tenant syncs"]


class TenantSettingsView(TenantScoped):
    @extend_schema(
        tags=["tenants"],
        summary="The tenant's settings: time zone, seat limit, SCIM target",
        parameters=[TENANT_PARAMETER],
        responses={200: TenantSettingsOut, **errors()},
    )
    def get(self, request: Request, tenantId: str) -> Response:
        return Response(TenantSettingsOut(tenant_settings(tenant=self.tenant)).data)

    @extend_schema(
        tags=["tenants"],
        summary="Change the tenant's settings",
        description="Changes the fields sent. A new time zone moves the providers' schedules; "
        "a seat limit gives free seats to waiting students at once; a new SCIM target gets "
        "a full reconcile pushed. The SCIM token is never returned.",
        parameters=[TENANT_PARAMETER],
        request=TenantSettingsIn,
        responses={200: TenantSettingsOut, **errors()},
    )
    def patch(self, request: Request, tenantId: str) -> Response:
        data = parse(TenantSettingsIn, request.data)
        with refusals_audited("tenant.configured", actor=self.actor, target=self.tenant):
            tenant_configure(
                tenant=self.tenant,
                actor=self.actor,
                timezone=data.get("timezone", UNSET),
                seat_limit=data.get("seatLimit", UNSET),
                scim=data.get("scim", UNSET),
            )
        return Response(TenantSettingsOut(tenant_settings(tenant=self.tenant)).data)


class TenantSeatsView(TenantScoped):
    @extend_schema(
        tags=["tenants"],
        summary="The tenant's seats: limit, allocated, available, waiting, released",
        parameters=[TENANT_PARAMETER],
        responses={200: TenantSeatsOut, **errors()},
    )
    def get(self, request: Request, tenantId: str) -> Response:
        return Response(TenantSeatsOut(tenant_seats(tenant=self.tenant)).data)


class TenantSyncView(TenantScoped):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Start a sync of every enabled provider of the tenant",
        description="202 with the runs started and the providers skipped (already running, "
        "or an upload provider with no bundle yet). 409 if every provider is already running.",
        parameters=[TENANT_PARAMETER],
        request=SyncIn,
        responses={202: TenantSyncOut, **errors(409)},
    )
    def post(self, request: Request, tenantId: str) -> Response:
        data = parse(SyncIn, request.data)
        # sync_start records each provider's own refusal when it is already running.
        with refusals_audited(
            "sync.started", actor=self.actor, target=self.tenant, unless=(AlreadyRunning,)
        ):
            started = tenant_sync_start(
                tenant=self.tenant,
                triggered_by=self.actor,
                mode=data["mode"],
                dry_run=data["dryRun"],
                entities=data.get("entities"),
            )
        body = {
            "runs": started.runs,
            "skipped": [
                {"providerId": s.provider.pk, "name": s.provider.name, "reason": s.reason,
                 "runId": s.run_id}
                for s in started.skipped
            ],
        }  # fmt: skip
        return Response(TenantSyncOut(body).data, status=status.HTTP_202_ACCEPTED)


class TenantSyncStatusView(TenantScoped):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Sync status of all of the tenant's providers",
        parameters=[TENANT_PARAMETER],
        responses={200: TenantSyncStatusOut, **errors()},
    )
    def get(self, request: Request, tenantId: str) -> Response:
        return Response(TenantSyncStatusOut(tenant_sync_status(tenant=self.tenant)).data)


class TenantSyncStopView(TenantScoped):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Cancel every running sync of the tenant",
        parameters=[TENANT_PARAMETER],
        request=None,
        responses={200: TenantStopOut, **errors(409)},
    )
    def post(self, request: Request, tenantId: str) -> Response:
        with refusals_audited("sync.cancelled", actor=self.actor, target=self.tenant):
            cancelled = tenant_sync_stop(tenant=self.tenant, cancelled_by=self.actor)
        return Response(TenantStopOut({"cancelled": cancelled}).data)


class TenantSyncHistoryView(TenantScoped):
    @extend_schema(
        tags=SYNC_TAG,
        summary="Runs of all of the tenant's providers, newest first",
        parameters=[TENANT_PARAMETER, *PAGE_PARAMETERS],
        responses={200: page_of(RunOut), **errors()},
    )
    def get(self, request: Request, tenantId: str) -> Response:
        return self.paginated(tenant_runs(tenant=self.tenant), RunOut)


class TenantAuditView(TenantScoped):
    @extend_schema(
        tags=["audit"],
        summary="The tenant's audit trail, newest first",
        parameters=[TENANT_PARAMETER, AuditQuery, *PAGE_PARAMETERS],
        responses={200: page_of(AuditEventOut), **errors()},
    )
    def get(self, request: Request, tenantId: str) -> Response:
        query = parse(AuditQuery, request.query_params)
        events = tenant_audit(tenant=self.tenant, action=query.get("action"))
        return self.paginated(events, AuditEventOut)


class RosterView(TenantScoped):
    """GET /tenants/{tenantId}/<entity>: one view class per entity, made by `roster_view`."""

    entity = ""
    query: type[serializers.Serializer]
    output: type[serializers.Serializer]

    def get(self, request: Request, tenantId: str) -> Response:
        query = parse(self.query, request.query_params)
        filters = RosterFilter(
            active=query.get("active"),
            updated_since=query.get("updatedSince"),
            search=query.get("search", ""),
            ordering=query.get("ordering", ""),
            role=query.get("role", ""),
            school=query.get("school"),
            class_id=query.get("classId"),
            user_id=query.get("userId"),
        )
        rows = roster_list(tenant=self.tenant, entity=self.entity, filters=filters)
        return self.paginated(rows, self.output, context=self._external_ids)

    def _external_ids(self, page: list[Any]) -> dict[str, Any]:
        return {"external_ids": external_ids(entity=self.entity, ids=[row.pk for row in page])}


def roster_view(
    entity: str, query: type[serializers.Serializer], output: type[serializers.Serializer]
) -> Any:
    view = type(
        f"Tenant{entity.title()}View",
        (RosterView,),
        {"entity": entity, "query": query, "output": output, "__module__": __name__},
    )
    return extend_schema(
        methods=["GET"],
        tags=["roster"],
        summary=f"The tenant's synced {entity}",
        description="Filter with the query parameters. `ordering` is a comma-separated list "
        f"of {', '.join(sorted(LISTINGS[entity].order_fields))}; `-` first for descending.",
        parameters=[TENANT_PARAMETER, query, *PAGE_PARAMETERS],
        responses={200: page_of(output), **errors()},
    )(view)


SchoolsView = roster_view("schools", SchoolQuery, SchoolOut)
ClassesView = roster_view("classes", ClassQuery, ClassOut)
UsersView = roster_view("users", UserQuery, UserOut)
EnrollmentsView = roster_view("enrollments", EnrollmentQuery, EnrollmentOut)
