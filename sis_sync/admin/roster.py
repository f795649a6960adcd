"""The synced roster, read-only: schools, classes, people, class membership.

Only syncs change the roster; the admin shows it, with search, filters, and which provider
calls each record by which id.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from sis_sync.admin.scoping import TenantScopedAdmin, is_platform, scoped_filter, tenants_of
from sis_sync.models import (
    Classroom,
    Enrollment,
    EntityType,
    ExternalIdentity,
    Person,
    School,
)


def _schools(request: HttpRequest) -> Any:
    schools = School.objects.filter(tenant__in=tenants_of(request)).select_related("tenant")
    platform = is_platform(request)
    return [
        (s.pk, f"{s.name} ({s.tenant.slug})" if platform else s.name)
        for s in schools.order_by("name")[:500]
    ]


ClassSchoolFilter = scoped_filter(
    title="school", parameter="school", field="school_id", choices=_schools
)
PersonSchoolFilter = scoped_filter(
    title="school", parameter="school", field="schools", choices=_schools
)
EnrollmentSchoolFilter = scoped_filter(
    title="school", parameter="school", field="classroom__school_id", choices=_schools
)


class RosterAdmin(TenantScopedAdmin):
    entity_type = ""
    list_per_page = 50

    class Media:
        css = {"all": ("sis_sync/admin.css",)}

    def get_list_display(self, request: HttpRequest) -> Any:
        shown = list(super().get_list_display(request))
        return [*shown, "tenant"] if is_platform(request) else shown

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # An enrollment's own provider and external id are shown as "Known to the providers as".
        hidden = ("id", "provider", "external_id")
        return [*(f.name for f in self.opts.fields if f.name not in hidden), "external_ids"]

    @admin.display(description="Known to the providers as")
    def external_ids(self, obj: Any) -> str:
        ids = ExternalIdentity.objects.filter(
            entity_type=self.entity_type, entity_id=obj.pk, tenant_id=obj.tenant_id
        ).select_related("provider")
        return (
            format_html_join(
                ", ", "{}: <code>{}</code>", ((i.provider.name, i.external_id) for i in ids)
            )
            or "—"
        )


@admin.register(School)
class SchoolAdmin(RosterAdmin):
    entity_type = EntityType.SCHOOL
    list_display = ("name", "school_number", "low_grade", "high_grade", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "school_number")
    ordering = ("name",)


@admin.register(Classroom)
class ClassroomAdmin(RosterAdmin):
    entity_type = EntityType.CLASS
    list_display = ("title", "class_code", "school", "course_title", "term_name", "is_active")
    list_filter = ("is_active", ClassSchoolFilter)
    list_select_related = ("school",)
    search_fields = ("title", "class_code", "course_title", "course_code")
    ordering = ("title",)


@admin.register(Person)
class PersonAdmin(RosterAdmin):
    entity_type = EntityType.USER
    list_display = (
        "family_name",
        "given_name",
        "role",
        "email",
        "student_number",
        "sis_id",
        "grades",
        "is_active",
    )
    list_filter = ("role", "is_active", PersonSchoolFilter)
    search_fields = (
        "family_name",
        "given_name",
        "email",
        "username",
        "student_number",
        "sis_id",
        "state_id",
        "teacher_number",
    )
    ordering = ("family_name", "given_name")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), "school_names", "contact_links"]

    @admin.display(description="Schools")
    def school_names(self, person: Person) -> str:
        return ", ".join(s.name for s in person.schools.all()) or "—"

    @admin.display(description="Contact of / contacts")
    def contact_links(self, person: Person) -> str:
        """A contact's students, or a student's contacts, with how they are related."""
        if person.role == "contact":
            links = person.student_links.select_related("student")
            people = [(link.student, link) for link in links]
        else:
            links = person.contact_links.select_related("contact")
            people = [(link.contact, link) for link in links]
        return (
            format_html_join(
                ", ",
                "{} ({})",
                ((str(p), link.relationship or link.type or "contact") for p, link in people),
            )
            or "—"
        )


@admin.register(Enrollment)
class EnrollmentAdmin(RosterAdmin):
    entity_type = EntityType.ENROLLMENT
    list_display = ("person", "classroom", "role", "primary", "is_active")
    list_filter = ("role", "is_active", "primary", EnrollmentSchoolFilter)
    list_select_related = ("person", "classroom")
    exclude = ("provider", "external_id")  # shown as "Known to the providers as"

    @admin.display(description="Known to the providers as")
    def external_ids(self, obj: Any) -> str:
        if obj.provider_id is None:
            return "—"
        return format_html("{}: <code>{}</code>", obj.provider.name, obj.external_id)

    search_fields = (
        "person__family_name",
        "person__given_name",
        "person__email",
        "classroom__title",
        "classroom__class_code",
    )
