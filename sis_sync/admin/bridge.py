"""Seats and the SCIM outbox (SPEC §6), read-only: who holds a seat, who waits, what still
has to reach the tenant's SCIM server and why it has not yet."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sis_sync.admin.scoping import TenantScopedAdmin, is_platform
from sis_sync.models import ScimChange, SeatAssignment


class ReadOnlyTenantAdmin(TenantScopedAdmin):
    list_per_page = 50

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.opts.fields]

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        return [*shown, "tenant"] if is_platform(request) else shown


@admin.register(SeatAssignment)
class SeatAdmin(ReadOnlyTenantAdmin):
    """Seats in the order they are given: holders, then students waiting for one."""

    list_display = ("person", "state", "queued_at", "allocated_at", "released_at")
    list_filter = ("state",)
    search_fields = ("person__given_name", "person__family_name", "person__student_number")
    list_select_related = ("person",)
    ordering = ("state", "queued_at", "person_id")


@admin.register(ScimChange)
class ScimChangeAdmin(ReadOnlyTenantAdmin):
    """The SCIM outbox: each change a run made, until the SCIM server has it."""

    list_display = (
        "created_at", "resource", "entity_id", "status", "attempts", "next_attempt_at",
        "run", "last_error",
    )  # fmt: skip
    list_filter = ("status", "resource")
    search_fields = ("entity_id", "last_error")
    ordering = ("-id",)
