"""Tenants, who may manage them (memberships, platform admins only), and the audit trail."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from sis_sync.access import membership_set
from sis_sync.admin.scoping import TenantScopedAdmin, is_platform, may_use
from sis_sync.models import AdminRole, AuditEvent, Membership, Tenant
from sis_sync.seats import tenant_seats
from sis_sync.tenants import tenant_get_or_create, tenant_settings


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    """Districts. A district admin sees their own; a platform admin adds new ones."""

    tenant_path = "pk"
    list_display = ("slug", "name", "timezone", "seat_limit")
    search_fields = ("slug", "name")

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super(TenantScopedAdmin, self).get_queryset(request)
        if not may_use(request):
            return queryset.none()
        if is_platform(request):
            return queryset
        return queryset.filter(memberships__user=request.user).distinct()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_platform(request)

    def get_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        shown = ("slug", "name", "timezone", "seat_limit", "seats", "scim_target")
        return ("slug", "name") if obj is None else shown

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        return () if obj is None else self.get_fields(request, obj)

    @admin.display(description="Seats")
    def seats(self, tenant: Tenant) -> str:
        s = tenant_seats(tenant=tenant)
        if s["seatLimit"] is None:
            return f"no limit; {s['allocated']:,} students hold a seat"
        return (
            f"{s['allocated']:,} of {s['seatLimit']:,} allocated, {s['available']:,} free, "
            f"{s['waiting']:,} students waiting, {s['released']:,} released"
        )

    @admin.display(description="SCIM target")
    def scim_target(self, tenant: Tenant) -> str:
        scim = tenant_settings(tenant=tenant)["scim"]
        return f"{scim['baseUrl']} (token stored)" if scim else "none (no SCIM push)"

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        tenant = tenant_get_or_create(slug=obj.slug, name=obj.name)
        obj.pk = tenant.pk
        obj.refresh_from_db()
        obj._state.adding = False


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("user", "role", "tenant")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("role") == AdminRole.DISTRICT_ADMIN and not data.get("tenant"):
            self.add_error("tenant", "A district admin needs a district.")
        if data.get("role") == AdminRole.PLATFORM_ADMIN and data.get("tenant"):
            self.add_error("tenant", "A platform admin manages every district: leave it empty.")
        return data


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Who is a platform admin, and who administers which district. Platform admins only."""

    list_display = ("user", "role", "tenant", "created_at")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "tenant__slug")
    form = MembershipForm

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_platform(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_platform(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_platform(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_platform(request)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        membership = membership_set(user=obj.user, role=obj.role, tenant=obj.tenant)
        obj.pk = membership.pk
        obj.refresh_from_db()
        obj._state.adding = False


TARGET_PAGES = {"SisSyncRun": ("sissyncrun", "run"), "SisProvider": ("sisprovider", "provider")}


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdmin):
    """The audit trail, read-only: who did what, to which provider or run, and how it ended."""

    list_display = ("created_at", "actor", "action", "target", "outcome", "short_message")
    list_filter = ("action", "outcome")
    search_fields = ("actor", "action", "target_id", "message")
    date_hierarchy = "created_at"
    list_per_page = 50

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.opts.fields]

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        return [*shown[:2], "tenant", *shown[2:]] if is_platform(request) else shown

    @admin.display(description="Target")
    def target(self, event: AuditEvent) -> str:
        page = TARGET_PAGES.get(event.target_type)
        if page is None or not event.target_id.isdigit():
            return f"{event.target_type} {event.target_id}".strip() or "—"
        name, label = page
        url = reverse(f"admin:sis_sync_{name}_change", args=[event.target_id])
        return format_html('<a href="{}">{} {}</a>', url, label, event.target_id)

    @admin.display(description="Message")
    def short_message(self, event: AuditEvent) -> str:
        return Truncator(event.message).chars(90)
