"""Reads behind the API's lists: runs, rejects, the audit trail and the synced roster.

Each returns a queryset in a stable order (an `id` tie-breaker last) so limit/offset pages
neither skip nor repeat rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from sis_sync.errors import BadRequest
from sis_sync.models import (
    AuditEvent,
    Classroom,
    Enrollment,
    EntityType,
    ExternalIdentity,
    Person,
    School,
    SisProvider,
    SisSyncRun,
    Tenant,
)
from staging.models import RunReject


def tenant_providers(*, tenant: Tenant) -> QuerySet[SisProvider]:
    return SisProvider.objects.filter(tenant=tenant).select_related("tenant").order_by("name", "id")


def provider_runs(*, provider: SisProvider) -> QuerySet[SisSyncRun]:
    return provider.runs.order_by("-created_at", "-id")


def tenant_runs(*, tenant: Tenant) -> QuerySet[SisSyncRun]:
    return SisSyncRun.objects.filter(provider__tenant=tenant).order_by("-created_at", "-id")


def run_rejects(*, run: SisSyncRun, entity: str | None = None) -> QuerySet[RunReject]:
    rejects = RunReject.objects.filter(run=run)
    if entity:
        rejects = rejects.filter(entity=entity)
    return rejects.order_by("id")


def tenant_audit(*, tenant: Tenant, action: str | None = None) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(tenant=tenant).select_related("tenant")
    if action:
        events = events.filter(action=action)
    return events.order_by("-id")


# ------------------------------------------------------------------ roster


@dataclass(frozen=True)
class RosterFilter:
    active: bool | None = None
    updated_since: dt.datetime | None = None
    search: str = ""
    ordering: str = ""
    role: str = ""
    school: int | None = None
    class_id: int | None = None
    user_id: int | None = None


@dataclass(frozen=True)
class _Listing:
    model: type
    entity_type: str
    # API name → model field, for ?ordering=
    order_fields: dict[str, str]
    search_fields: tuple[str, ...]
    exact_search_fields: tuple[str, ...] = ()


_COMMON_ORDER = {"id": "id", "updatedAt": "updated_at", "createdAt": "created_at"}
LISTINGS = {
    "schools": _Listing(
        School,
        EntityType.SCHOOL,
        {**_COMMON_ORDER, "name": "name", "schoolNumber": "school_number"},
        ("name", "school_number"),
    ),
    "classes": _Listing(
        Classroom,
        EntityType.CLASS,
        {**_COMMON_ORDER, "title": "title", "classCode": "class_code", "schoolId": "school_id"},
        ("title", "class_code", "course_title", "course_code"),
    ),
    "users": _Listing(
        Person,
        EntityType.USER,
        {
            **_COMMON_ORDER,
            "familyName": "family_name",
            "givenName": "given_name",
            "email": "email",
            "role": "role",
            "studentNumber": "student_number",
        },
        ("given_name", "family_name", "email", "username"),
        ("student_number", "sis_id", "state_id", "teacher_number"),
    ),
    "enrollments": _Listing(
        Enrollment,
        EntityType.ENROLLMENT,
        {**_COMMON_ORDER, "role": "role", "classId": "classroom_id", "userId": "person_id"},
        (),
    ),
}


def roster_list(*, tenant: Tenant, entity: str, filters: RosterFilter) -> QuerySet:
    """One tenant's schools, classes, users or enrollments, filtered and ordered."""
    listing = LISTINGS[entity]
    rows = listing.model.objects.filter(tenant=tenant)
    if filters.active is not None:
        rows = rows.filter(is_active=filters.active)
    if filters.updated_since is not None:
        rows = rows.filter(updated_at__gte=filters.updated_since)
    if filters.role:
        rows = rows.filter(role=filters.role)
    if filters.school is not None:
        school_field = {
            "classes": "school_id",
            "users": "schools",
            "enrollments": "classroom__school_id",
        }
        rows = rows.filter(**{school_field[entity]: filters.school})
    if filters.class_id is not None:
        rows = rows.filter(classroom_id=filters.class_id)
    if filters.user_id is not None:
        rows = rows.filter(person_id=filters.user_id)
    if filters.search.strip():
        rows = rows.filter(_search(listing, filters.search.strip()))
    if entity == "users":
        rows = rows.prefetch_related("schools", "student_links")
    return rows.order_by(*_ordering(listing, filters.ordering))


def _search(listing: _Listing, text: str) -> Q:
    query = Q()
    for word in text.split():
        any_field = Q()
        for field in listing.search_fields:
            any_field |= Q(**{f"{field}__icontains": word})
        for field in listing.exact_search_fields:
            any_field |= Q(**{field: word})
        query &= any_field
    return query


def _ordering(listing: _Listing, ordering: str) -> list[str]:
    fields: list[str] = []
    for item in (part.strip() for part in ordering.split(",")):
        if not item:
            continue
        descending, name = item.startswith("-"), item.lstrip("-")
        if name not in listing.order_fields:
            raise BadRequest(
                f"ordering: {name!r} is not one of {', '.join(sorted(listing.order_fields))}"
            )
        fields.append(("-" if descending else "") + listing.order_fields[name])
    if not any(f.lstrip("-") == "id" for f in fields):
        fields.append("id")
    return fields


def external_ids(*, entity: str, ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Per entity id: {provider id: the external id that provider knows it by}."""
    found: dict[int, dict[str, str]] = defaultdict(dict)
    if entity == "enrollments":  # an enrollment keeps its one identity itself
        for entity_id, provider_id, external_id in Enrollment.objects.filter(
            pk__in=list(ids), provider__isnull=False
        ).values_list("id", "provider_id", "external_id"):
            found[entity_id][str(provider_id)] = external_id
        return dict(found)
    for entity_id, provider_id, external_id in ExternalIdentity.objects.filter(
        entity_type=LISTINGS[entity].entity_type, entity_id__in=list(ids)
    ).values_list("entity_id", "provider_id", "external_id"):
        found[entity_id][str(provider_id)] = external_id
    return dict(found)
