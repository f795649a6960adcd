"""Run history: the list with badges and filters, one run's page (stats, rejects, the held plan
with Approve and Discard), and the rejects as CSV. Approve and discard are `run_approve` and
`run_discard`, as in the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from sis_sync.admin.display import (
    STAT_KEYS,
    STATUS_WORDS,
    badge,
    duration_text,
    progress_text,
    run_duration,
    stats_rows,
    trigger_text,
)
from sis_sync.admin.scoping import TenantScopedAdmin, is_platform, scoped_filter, tenants_of
from sis_sync.errors import SyncError
from sis_sync.exports import rejects_csv
from sis_sync.models import (
    Classroom,
    Person,
    PlannedDeactivation,
    RunStatus,
    School,
    SisProvider,
    SisSyncRun,
)
from sis_sync.models.runs import ACTIVE_STATUSES
from sis_sync.runs import run_approve, run_discard

REJECTS_PER_PAGE = 50
PLAN_SAMPLE = 20
PLANNED_MODELS = (("school", School, "schools"), ("class", Classroom, "classes"))


def _providers(request: HttpRequest) -> Any:
    providers = SisProvider.objects.filter(tenant__in=tenants_of(request)).select_related("tenant")
    platform = is_platform(request)
    return [(p.pk, f"{p.name} ({p.tenant.slug})" if platform else p.name) for p in providers]


ProviderFilter = scoped_filter(
    title="provider", parameter="provider", field="provider_id", choices=_providers
)


class TriggerFilter(admin.SimpleListFilter):
    title = "trigger"
    parameter_name = "trigger"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return (("manual", "Manual"), ("scheduled", "Scheduled"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("manual", "scheduled"):
            return queryset.filter(is_manual=self.value() == "manual")
        return queryset


@admin.register(SisSyncRun)
class RunAdmin(TenantScopedAdmin):
    tenant_path = "provider__tenant"
    list_display = (
        "run",
        "provider_name",
        "status_badge",
        "kind",
        "trigger",
        "started_at",
        "duration",
    )
    list_display_links = ("run",)
    list_filter = ("status", TriggerFilter, "dry_run", "mode", ProviderFilter)
    list_select_related = ("provider", "provider__tenant")
    search_fields = ("triggered_by", "error_message")
    date_hierarchy = "created_at"

    class Media:
        css = {"all": ("sis_sync/admin.css",)}

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        if is_platform(request):
            filters.append("provider__tenant")
        return filters

    @admin.display(description="Run", ordering="id")
    def run(self, run: SisSyncRun) -> str:
        return f"#{run.pk}"

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        return [*shown[:2], "tenant", *shown[2:]] if is_platform(request) else shown

    @admin.display(description="District", ordering="provider__tenant__slug")
    def tenant(self, run: SisSyncRun) -> str:
        return run.provider.tenant.slug

    @admin.display(description="Provider", ordering="provider__name")
    def provider_name(self, run: SisSyncRun) -> str:
        return run.provider.name

    @admin.display(description="Mode", ordering="mode")
    def kind(self, run: SisSyncRun) -> str:
        return f"{run.mode}, dry run" if run.dry_run else run.mode

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run: SisSyncRun) -> str:
        return badge(run.status)

    @admin.display(description="Trigger", ordering="is_manual")
    def trigger(self, run: SisSyncRun) -> str:
        return trigger_text(run)

    @admin.display(description="Duration")
    def duration(self, run: SisSyncRun) -> str:
        return duration_text(run_duration(run))

    # -- one run -------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/rejects.csv",
                view(self.rejects_csv_view),
                name="sis_sync_sissyncrun_rejects_csv",
            ),
            path(
                "<int:object_id>/approve/",
                view(self.approve_view),
                name="sis_sync_sissyncrun_approve",
            ),
            path(
                "<int:object_id>/discard/",
                view(self.discard_view),
                name="sis_sync_sissyncrun_discard",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """One run, read-only: not Django's form of its fields, a page a district admin reads."""
        run = self.get_object(request, object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        rejects = Paginator(run.rejects.order_by("id"), REJECTS_PER_PAGE)
        page = rejects.get_page(request.GET.get("rejects_page"))
        provider = run.provider
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Run #{run.pk} of {provider.name}",
            "subtitle": None,
            "run": run,
            "provider": provider,
            "provider_url": reverse("admin:sis_sync_sisprovider_change", args=[provider.pk]),
            "status_badge": badge(run.status),
            "status_words": STATUS_WORDS.get(run.status, ""),
            "is_active": run.status in ACTIVE_STATUSES,
            "progress": progress_text(run),
            "trigger": trigger_text(run),
            "duration": duration_text(run_duration(run)),
            "stat_keys": STAT_KEYS,
            "stats": stats_rows(run.stats or {}),
            "extra_stats": {
                k: v
                for k, v in (run.stats or {}).items()
                if k not in ("schools", "classes", "users", "enrollments", "durationSeconds")
            },
            "rejects_page": page,
            "rejects_total": rejects.count,
            "rejects_csv_url": reverse("admin:sis_sync_sissyncrun_rejects_csv", args=[run.pk]),
            "held": run.status == RunStatus.HELD,
            "hold_reasons": [line for line in run.hold_reason.splitlines() if line.strip()],
            "plan": self._plan_sample(run) if run.status == RunStatus.HELD else [],
            "may_decide": run.status == RunStatus.HELD and self.has_decide_permission(request, run),
            "approve_url": reverse("admin:sis_sync_sissyncrun_approve", args=[run.pk]),
            "discard_url": reverse("admin:sis_sync_sissyncrun_discard", args=[run.pk]),
        }
        return TemplateResponse(request, "admin/sis_sync/sissyncrun/detail.html", context)

    def _plan_sample(self, run: SisSyncRun) -> list[dict[str, Any]]:
        """Who a held plan would deactivate: a sample per entity type, with links."""
        sample = []
        for entity_type, model, label in (*PLANNED_MODELS, ("user", Person, "people")):
            ids = PlannedDeactivation.objects.filter(run_id=run.pk, entity_type=entity_type)
            count = ids.count()
            if not count:
                continue
            entities = model.objects.filter(
                pk__in=ids.values_list("entity_id", flat=True)[:PLAN_SAMPLE]
            )
            name = model._meta.model_name
            sample.append(
                {
                    "label": label,
                    "count": count,
                    "items": [
                        (str(e), reverse(f"admin:sis_sync_{name}_change", args=[e.pk]))
                        for e in entities
                    ],
                }
            )
        return sample

    def has_decide_permission(self, request: HttpRequest, run: SisSyncRun) -> bool:
        """Approving or discarding is a change to the tenant's roster: anyone with a role on
        the run's tenant (the queryset already stopped at the tenant's edge)."""
        return self.has_view_permission(request, run)

    def rejects_csv_view(self, request: HttpRequest, object_id: int) -> StreamingHttpResponse:
        run = self.get_object(request, str(object_id))
        response = StreamingHttpResponse(
            rejects_csv(run.rejects.order_by("id")), content_type="text/csv"
        )
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-rejects.csv"'
        return response

    def approve_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return require_POST(self._decide)(request, object_id, approve=True)

    def discard_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return require_POST(self._decide)(request, object_id, approve=False)

    def _decide(self, request: HttpRequest, object_id: int, *, approve: bool) -> HttpResponse:
        run = self.get_object(request, str(object_id))
        if not self.has_decide_permission(request, run):
            raise PermissionDenied
        decide = run_approve if approve else run_discard
        try:
            run = decide(run=run, decided_by=request.user.get_username())
        except SyncError as exc:
            messages.error(request, exc.message)
        else:
            if approve:
                messages.success(
                    request, format_html("Run #{} approved: its plan was applied.", run.pk)
                )
            else:
                messages.success(
                    request, format_html("Run #{} discarded: nothing was applied.", run.pk)
                )
        return redirect("admin:sis_sync_sissyncrun_change", run.pk)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip().lstrip("#")  # "#12" is how the list shows run 12
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        return super().get_search_results(request, queryset, search_term)
