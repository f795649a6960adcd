"""A first, read-mostly admin so `make demo` shows the synced roster and the runs.

The district-admin admin (tenant scoping, provider forms, actions) is built on top of this.
"""

from __future__ import annotations

from django.contrib import admin

from sis_sync.models import Classroom, Enrollment, Person, School, SisProvider, SisSyncRun, Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "timezone", "seat_limit")
    search_fields = ("slug", "name")


@admin.register(SisProvider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "provider_type", "enabled", "sync_schedule", "last_status")
    list_filter = ("provider_type", "enabled", "last_status")
    exclude = ("config_encrypted", "bundle_path")


@admin.register(SisSyncRun)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "provider", "status", "mode", "dry_run", "is_manual", "started_at")
    list_filter = ("status", "mode", "is_manual", "dry_run")
    readonly_fields = [f.name for f in SisSyncRun._meta.fields]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(School)
class SchoolAdmin(ReadOnlyAdmin):
    list_display = ("name", "school_number", "tenant", "is_active")
    list_filter = ("is_active", "tenant")
    search_fields = ("name", "school_number")


@admin.register(Classroom)
class ClassroomAdmin(ReadOnlyAdmin):
    list_display = ("title", "class_code", "school", "term_name", "is_active")
    list_filter = ("is_active", "tenant")
    search_fields = ("title", "class_code", "course_title")


@admin.register(Person)
class PersonAdmin(ReadOnlyAdmin):
    list_display = ("family_name", "given_name", "role", "email", "student_number", "is_active")
    list_filter = ("role", "is_active", "tenant")
    search_fields = ("family_name", "given_name", "email", "student_number")


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("person", "classroom", "role", "primary", "is_active")
    list_filter = ("role", "is_active", "tenant")
    list_select_related = ("person", "classroom")
