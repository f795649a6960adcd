"""The provider pages: the config form per type, and Run sync now / Dry run / Test connection.

Every button calls the domain function the API and the commands call (`provider_create`,
`provider_update`, `provider_disable`, `provider_store_bundle`, `sync_trigger`,
`sync_cancel`, `provider_test_connection`); this module only turns requests into those calls
and their results into messages.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from sis_sync.admin.display import badge, duration_text, run_duration, run_json, trigger_text
from sis_sync.admin.forms import CONFIG_FIELDS, ProviderForm, clear_name, field_name, uploaded_path
from sis_sync.admin.scoping import TenantScopedAdmin, is_platform, tenants_of
from sis_sync.connections import provider_test_connection
from sis_sync.errors import SyncError
from sis_sync.manual_syncs import sync_trigger
from sis_sync.models import ProviderType, RunStatus, SisProvider, SisSyncRun
from sis_sync.models.runs import ACTIVE_STATUSES
from sis_sync.provider_config import merged
from sis_sync.providers import (
    provider_create,
    provider_disable,
    provider_store_bundle,
    provider_update,
)
from sis_sync.runs import sync_cancel
from sis_sync.selectors import provider_sync_status
from sis_sync.sync import sync_upload

RECENT_RUNS = 8


def actor(request: HttpRequest) -> str:
    return request.user.get_username()


@admin.register(SisProvider)
class ProviderAdmin(TenantScopedAdmin):
    editable = True
    form = ProviderForm
    change_form_template = "admin/sis_sync/sisprovider/change_form.html"
    list_display = ("name", "provider_type", "enabled", "schedule", "last_run", "last_sync_at")
    list_filter = ("provider_type", "enabled", "last_status")
    search_fields = ("name",)
    actions = ("disable_selected",)

    class Media:
        css = {"all": ("sis_sync/admin.css",)}
        js = ("sis_sync/provider.js",)

    # -- list ------------------------------------------------------------------------------------

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        return [shown[0], "tenant", *shown[1:]] if is_platform(request) else shown

    @admin.display(description="Schedule", ordering="sync_schedule")
    def schedule(self, provider: SisProvider) -> str:
        return provider.sync_schedule or "manual only"

    @admin.display(description="Last sync", ordering="last_status")
    def last_run(self, provider: SisProvider) -> str:
        return badge(provider.last_status)

    @admin.action(description="Disable the selected providers (they stop syncing)")
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[SisProvider]) -> None:
        for provider in queryset:
            provider_disable(provider=provider, actor=actor(request))
        self.message_user(request, f"{len(queryset)} provider(s) disabled.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # -- the form --------------------------------------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: SisProvider | None = None) -> Any:
        return ("tenant", "provider_type") if obj is not None else ()

    def get_fieldsets(self, request: HttpRequest, obj: SisProvider | None = None) -> Any:
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (None, {"fields": ["tenant", "name", "provider_type", "enabled"]}),
            ("Schedule", {"fields": ["schedule_preset", "schedule_cron"]}),
        ]
        stored = obj.config if obj is not None else {}
        types = [obj.provider_type] if obj is not None else list(CONFIG_FIELDS)
        for provider_type in types:
            names = []
            for spec in CONFIG_FIELDS[provider_type]:
                names.append(field_name(provider_type, spec.key))
                if spec.secret and _stored(stored, spec.key):
                    names.append(clear_name(provider_type, spec.key))
            label = ProviderType(provider_type).label
            classes = ["sis-config", f"sis-config-{provider_type}"]
            fieldsets.append((f"{label} connection", {"fields": names, "classes": classes}))
        if ProviderType.ONEROSTER_CSV in types:
            fieldsets.append(
                (
                    "Upload a OneRoster bundle",
                    {"fields": ["bundle"], "classes": ["sis-config", "sis-config-ONEROSTER_CSV"]},
                )
            )
        fieldsets.append(
            (
                "Sync options",
                {
                    "fields": [
                        "create_users",
                        "deactivate_missing",
                        "deletion_threshold",
                        "update_threshold",
                        "school_filter",
                        "roles",
                        "include_contacts",
                    ],
                    "classes": ["collapse"],
                },
            )
        )
        return fieldsets

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        tenants = list(tenants_of(request)[:2])
        if len(tenants) == 1:
            initial.setdefault("tenant", tenants[0].pk)
        return initial

    def save_model(self, request: HttpRequest, obj: SisProvider, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            # Only what changed, so the audit trail names the fields that really did.
            config = form.config_value
            changes: dict[str, Any] = {
                "name": data["name"] if "name" in form.changed_data else None,
                "enabled": data["enabled"] if "enabled" in form.changed_data else None,
                "config": config if merged(obj.config, config) != obj.config else None,
                "options": form.options_value if form.options_value != obj.options else None,
            }
            if form.schedule_value != obj.sync_schedule:
                changes["sync_schedule"] = form.schedule_value
            provider = obj
            if any(value is not None for value in changes.values()) or "sync_schedule" in changes:
                provider = provider_update(provider=obj, actor=actor(request), **changes)
        else:
            provider = provider_create(
                tenant=data["tenant"],
                provider_type=data["provider_type"],
                name=data["name"],
                config=form.config_value,
                options=form.options_value,
                sync_schedule=form.schedule_value,
                enabled=data["enabled"],
                actor=actor(request),
            )
            # The admin logs and redirects by the object it passed in.
            obj.pk = provider.pk
            obj.refresh_from_db()
            obj._state.adding = False
        if data.get("bundle"):
            with uploaded_path(data["bundle"]) as source:
                provider_store_bundle(provider=provider, source=source)
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: SisProvider) -> None:  # never called
        provider_disable(provider=obj, actor=actor(request))

    # -- the provider page -------------------------------------------------------------------------

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        provider = self.get_object(request, object_id)
        context = {**(extra_context or {}), "sis": self._panel(request, provider)}
        return super().change_view(request, object_id, form_url, context)

    def _panel(self, request: HttpRequest, provider: SisProvider) -> dict[str, Any]:
        status = provider_sync_status(provider=provider)
        runs = list(provider.runs.order_by("-id")[:RECENT_RUNS])
        shown = status.current or (runs[0] if runs else None)
        return {
            "provider": provider,
            "current": status.current,
            # The running sync if any, else the latest run (a dry run included).
            "shown_json": run_json(shown),
            "shown_badge": badge(shown.status) if shown else badge(""),
            "last_status_badge": badge(status.last_status),
            "last_sync_at": status.last_sync_at,
            "is_upload": provider.provider_type == ProviderType.ONEROSTER_CSV
            and not provider.config.get("sftp"),
            "has_bundle": bool(provider.bundle_path),
            "runs": [
                {
                    "run": run,
                    "badge": badge(run.status),
                    "trigger": trigger_text(run),
                    "duration": duration_text(run_duration(run)),
                }
                for run in runs
            ],
            "all_runs_url": reverse("admin:sis_sync_sissyncrun_changelist")
            + f"?provider={provider.pk}",
            "urls": {
                name: reverse(f"admin:sis_sync_sisprovider_{name}", args=[provider.pk])
                for name in ("sync", "test", "cancel", "status", "upload")
            },
            "may_act": self.has_change_permission(request, provider),
        }

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/sync/", view(self.sync_view), name="sis_sync_sisprovider_sync"),
            path("<int:object_id>/test/", view(self.test_view), name="sis_sync_sisprovider_test"),
            path(
                "<int:object_id>/cancel/",
                view(self.cancel_view),
                name="sis_sync_sisprovider_cancel",
            ),
            path(
                "<int:object_id>/upload/",
                view(self.upload_view),
                name="sis_sync_sisprovider_upload",
            ),
            path(
                "<int:object_id>/status/",
                view(self.status_view),
                name="sis_sync_sisprovider_status",
            ),
            *super().get_urls(),
        ]

    def _acting_on(self, request: HttpRequest, object_id: int) -> SisProvider:
        provider = self.get_object(request, str(object_id))  # 404 outside the user's tenants
        if not self.has_change_permission(request, provider):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        return provider

    def _back(self, provider: SisProvider) -> HttpResponseRedirect:
        return redirect("admin:sis_sync_sisprovider_change", provider.pk)

    @staticmethod
    def _run_link(run: SisSyncRun) -> Any:
        return format_html('<a href="{}">run {}</a>', run_json(run)["url"], run.pk)

    def sync_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return require_POST(self._sync)(request, object_id)

    def _sync(self, request: HttpRequest, object_id: int) -> HttpResponse:
        provider = self._acting_on(request, object_id)
        dry_run = request.POST.get("dry_run") == "1"
        what = "Dry run" if dry_run else "Sync"
        try:
            # With workers this queues the run; embedded (no Redis) it runs here, now.
            run = sync_trigger(provider=provider, triggered_by=actor(request), dry_run=dry_run)
        except SyncError as exc:
            messages.error(request, f"{what} not started: {exc.message}")
            return self._back(provider)
        self._report_run(request, run, what)
        return self._back(provider)

    def _report_run(self, request: HttpRequest, run: SisSyncRun, what: str) -> None:
        """A message for a run just started: queued, or (embedded mode) already finished."""
        run.refresh_from_db()
        link = self._run_link(run)
        if run.status in ACTIVE_STATUSES:
            messages.info(
                request, format_html("{} started: {}. Its progress shows below.", what, link)
            )
        elif run.status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
            messages.success(request, format_html("{} finished: {} {}", what, link, run.status))
        else:
            level = messages.WARNING if run.status == RunStatus.HELD else messages.ERROR
            messages.add_message(
                request,
                level,
                format_html("{} ended {}: {} {}", what, run.status, link, run.error_message),
            )

    def upload_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return require_POST(self._upload)(request, object_id)

    def _upload(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """A new bundle, kept and synced in one step: what the API's upload endpoint does."""
        provider = self._acting_on(request, object_id)
        upload = request.FILES.get("bundle")
        if upload is None:
            messages.error(request, "Choose the bundle (.zip) to upload first.")
            return self._back(provider)
        try:
            with uploaded_path(upload) as source:
                run = sync_upload(
                    provider=provider,
                    source=source,
                    triggered_by=actor(request),
                    dry_run=request.POST.get("dry_run") == "1",
                )
        except SyncError as exc:
            messages.error(request, f"Upload refused: {exc.message}")
            return self._back(provider)
        self._report_run(request, run, "Upload and sync")
        return self._back(provider)

    def test_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return require_POST(self._test)(request, object_id)

    def _test(self, request: HttpRequest, object_id: int) -> HttpResponse:
        provider = self._acting_on(request, object_id)
        result = provider_test_connection(provider=provider, actor=actor(request))
        if result.success:
            messages.success(request, f"Connection test passed: {result.message}")
        else:
            messages.error(request, f"Connection test failed: {result.message}")
        return self._back(provider)

    def cancel_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return require_POST(self._cancel)(request, object_id)

    def _cancel(self, request: HttpRequest, object_id: int) -> HttpResponse:
        provider = self._acting_on(request, object_id)
        try:
            run = sync_cancel(provider=provider, cancelled_by=actor(request))
        except SyncError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, format_html("{} cancelled.", self._run_link(run)))
        return self._back(provider)

    def status_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return require_GET(self._status)(request, object_id)

    def _status(self, request: HttpRequest, object_id: int) -> JsonResponse:
        """The provider's sync status, polled by the provider page while a sync runs."""
        provider = self.get_object(request, str(object_id))
        status = provider_sync_status(provider=provider)
        latest = provider.runs.order_by("-id").first()
        return JsonResponse(
            {
                "isRunning": status.current is not None,
                "lastSync": status.last_sync_at.isoformat() if status.last_sync_at else None,
                "lastStatus": status.last_status,
                "currentRun": run_json(status.current),
                "latestRun": run_json(latest),
            }
        )


def _stored(config: dict[str, Any], key: str) -> bool:
    if key.startswith("sftp."):
        block = config.get("sftp")
        return isinstance(block, dict) and bool(block.get(key[5:]))
    return bool(config.get(key))
