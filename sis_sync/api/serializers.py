"""What the API reads and writes, in camelCase (SPEC §5 "Resources").

Input serializers (`…In`) only check the shape of a request; the domain functions check the
meaning (config per provider type, schedules, options) and raise BadRequest. Output serializers
(`…Out`) never see a secret: a provider's config is always passed through `masked`.
"""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sis_sync.models import EntityType, ProviderType, Role, RunMode, RunStatus
from sis_sync.provider_config import masked
from staging.records import ENTITIES

BIGINT = 2**63 - 1


def _no_nul(value: Any, where: str) -> None:
    """PostgreSQL stores no NUL character; refuse one anywhere in a JSON value up front."""
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError(f"{where} may not contain NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key, where)
            _no_nul(item, where)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item, where)


class JsonObjectField(serializers.DictField):
    """A JSON object, any keys, no NUL characters."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        _no_nul(value, self.field_name or "value")
        return value


class StrictInput(serializers.Serializer):
    """Refuses fields it does not know, so a misspelt field is an error, not silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        # Here rather than in validate(): a nested StrictInput is checked as well.
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


# ------------------------------------------------------------------ errors


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, bad_request, not_found, …")
    message = serializers.CharField(help_text="What was wrong, in plain words.")
    details = serializers.DictField(
        help_text="Per-field problems for `invalid`; `runId` for `already_running`; "
        "`retryAfter` (seconds) for `throttled`."
    )


class ErrorOut(serializers.Serializer):
    error = ErrorDetailOut()


# ------------------------------------------------------------------ providers

CONFIG_HELP = (
    "Provider-specific config (SPEC §2). CLEVER: districtId, accessToken* or clientId + "
    "clientSecret*, baseUrl. CLASSLINK: clientId, clientSecret*, baseUrl, authMethod "
    "oauth1|proxy. ONEROSTER_API: baseUrl, clientId, clientSecret*, authMethod oauth2|oauth1, "
    "tokenUrl, scope, signatureMethod, pageSize. ONEROSTER_CSV: {} for uploads, or sftp {host, "
    "port, username, privateKey* or password*, hostKey} and remotePath. Secrets (*) are "
    'write-only: read back as "********" with has<Name>: true.'
)
OPTIONS_HELP = (
    "createUsers, deactivateMissing, deletionThreshold, updateThreshold (a fraction, or an "
    "object per entity type), schoolFilter, roles, includeContacts (Clever: contacts as people)."
)
SCHEDULE_HELP = (
    "A 5-field cron expression in the tenant's time zone, a preset (daily, twice-daily, "
    "every-6-hours, weekdays, hourly, weekly), or null for manual syncs only."
)


class ProviderCreateIn(StrictInput):
    tenantId = serializers.CharField(max_length=64, help_text="The tenant's slug.")
    providerType = serializers.ChoiceField(choices=ProviderType.choices)
    name = serializers.CharField(max_length=200)
    config = JsonObjectField(help_text=CONFIG_HELP)
    syncSchedule = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True, help_text=SCHEDULE_HELP
    )
    enabled = serializers.BooleanField(required=False, default=True)
    options = JsonObjectField(required=False, default=dict, help_text=OPTIONS_HELP)


class TenantProviderCreateIn(ProviderCreateIn):
    """The same, under /tenants/{tenantId}/providers: the tenant comes from the path."""

    tenantId = None


class ProviderUpdateIn(StrictInput):
    name = serializers.CharField(max_length=200, required=False)
    config = JsonObjectField(
        required=False,
        help_text='The whole config; a secret left out (or sent back as "********") keeps '
        "its stored value.",
    )
    syncSchedule = serializers.CharField(
        max_length=100, required=False, allow_null=True, allow_blank=True, help_text=SCHEDULE_HELP
    )
    enabled = serializers.BooleanField(required=False)
    options = JsonObjectField(required=False, help_text=OPTIONS_HELP)


class ProviderOut(serializers.Serializer):
    id = serializers.IntegerField()
    tenantId = serializers.CharField(source="tenant.slug")
    providerType = serializers.ChoiceField(choices=ProviderType.choices, source="provider_type")
    name = serializers.CharField()
    config = serializers.SerializerMethodField(help_text=CONFIG_HELP)
    enabled = serializers.BooleanField()
    syncSchedule = serializers.CharField(source="sync_schedule", allow_null=True)
    lastSyncAt = serializers.DateTimeField(source="last_sync_at", allow_null=True)
    lastStatus = serializers.SerializerMethodField()
    options = serializers.DictField(help_text=OPTIONS_HELP)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_config(self, provider: Any) -> dict[str, Any]:
        return masked(provider.config)

    @extend_schema_field(serializers.ChoiceField(choices=RunStatus.choices, allow_null=True))
    def get_lastStatus(self, provider: Any) -> str | None:
        return provider.last_status or None


# ------------------------------------------------------------------ runs


class EntityCountsDoc(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    deactivated = serializers.IntegerField()
    reactivated = serializers.IntegerField()
    rejected = serializers.IntegerField()


class RunStatsDoc(serializers.Serializer):
    """Documentation of `stats`; empty until the run has planned its load."""

    schools = EntityCountsDoc(required=False)
    classes = EntityCountsDoc(required=False)
    users = EntityCountsDoc(required=False)
    enrollments = EntityCountsDoc(required=False)
    durationSeconds = serializers.FloatField(required=False)


@extend_schema_field(RunStatsDoc)
class RunStatsField(serializers.JSONField):
    pass


class SyncIn(StrictInput):
    dryRun = serializers.BooleanField(
        required=False, default=False, help_text="Extract, stage and plan; apply nothing."
    )
    mode = serializers.ChoiceField(choices=RunMode.values, required=False, default=RunMode.FULL)
    entities = serializers.ListField(
        child=serializers.ChoiceField(choices=list(ENTITIES)),
        required=False,
        allow_empty=True,
        max_length=len(ENTITIES),
        help_text="Only these entity types (all when left out).",
    )


class UploadIn(StrictInput):
    file = serializers.FileField(help_text="A OneRoster 1.1 CSV bundle (.zip).")
    dryRun = serializers.BooleanField(required=False, default=False)


class RunOut(serializers.Serializer):
    id = serializers.IntegerField()
    providerId = serializers.IntegerField(source="provider_id")
    status = serializers.ChoiceField(choices=RunStatus.choices)
    mode = serializers.ChoiceField(choices=RunMode.values)
    dryRun = serializers.BooleanField(source="dry_run")
    entities = serializers.ListField(child=serializers.CharField())
    isManual = serializers.BooleanField(source="is_manual")
    triggeredBy = serializers.CharField(source="triggered_by")
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)
    phase = serializers.CharField()
    progress = serializers.DictField(help_text="While running: the entity and rows staged.")
    stats = RunStatsField()
    errorMessage = serializers.CharField(source="error_message")
    holdReason = serializers.CharField(source="hold_reason")
    decidedBy = serializers.CharField(source="decided_by")
    notes = serializers.ListField(child=serializers.CharField())


class SyncStatusOut(serializers.Serializer):
    isRunning = serializers.SerializerMethodField()
    lastSync = serializers.DateTimeField(source="last_sync_at", allow_null=True)
    lastStatus = serializers.SerializerMethodField()
    currentRun = RunOut(source="current", allow_null=True)

    def get_isRunning(self, status: Any) -> bool:
        return status.current is not None

    @extend_schema_field(serializers.ChoiceField(choices=RunStatus.choices, allow_null=True))
    def get_lastStatus(self, status: Any) -> str | None:
        return status.last_status or None


class ConnectionTestOut(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()


class RejectsQuery(serializers.Serializer):
    entity = serializers.ChoiceField(choices=EntityType.choices, required=False)
    format = serializers.ChoiceField(
        choices=["json", "csv"], required=False, help_text="csv: every reject, streamed."
    )


class RejectOut(serializers.Serializer):
    entity = serializers.CharField()
    externalId = serializers.CharField(source="external_id")
    reason = serializers.CharField()
    line = serializers.IntegerField(help_text="The line in the source file, 0 if none.")
    raw = serializers.SerializerMethodField(help_text="The record as the source sent it.")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_raw(self, reject: Any) -> dict[str, Any]:
        try:
            value = json.loads(reject.raw)
        except ValueError:
            return {"text": reject.raw}
        return value if isinstance(value, dict) else {"value": value}


# ------------------------------------------------------------------ tenant-wide syncs


class SkippedProviderOut(serializers.Serializer):
    providerId = serializers.IntegerField()
    name = serializers.CharField()
    reason = serializers.CharField()
    runId = serializers.IntegerField(allow_null=True, help_text="The run already going, if any.")


class TenantSyncOut(serializers.Serializer):
    runs = RunOut(many=True, help_text="The runs started, one per provider.")
    skipped = SkippedProviderOut(many=True)


class ProviderSyncStatusOut(SyncStatusOut):
    providerId = serializers.IntegerField(source="provider.pk")
    name = serializers.CharField(source="provider.name")
    enabled = serializers.BooleanField(source="provider.enabled")


class TenantSyncStatusOut(serializers.Serializer):
    isRunning = serializers.BooleanField(source="is_running")
    lastSync = serializers.DateTimeField(source="last_sync_at", allow_null=True)
    lastStatus = serializers.SerializerMethodField()
    currentRuns = RunOut(many=True, source="current_runs")
    providers = ProviderSyncStatusOut(many=True)

    @extend_schema_field(serializers.ChoiceField(choices=RunStatus.choices, allow_null=True))
    def get_lastStatus(self, status: Any) -> str | None:
        return status.last_status or None


class TenantStopOut(serializers.Serializer):
    cancelled = RunOut(many=True)


# ------------------------------------------------------------------ tenant settings and seats


class ScimTargetIn(StrictInput):
    baseUrl = serializers.CharField(help_text="The SCIM 2.0 service provider's base URL (https).")
    token = serializers.CharField(
        required=False,
        write_only=True,
        help_text="Bearer token, stored encrypted. Left out (or sent back masked): kept.",
    )


class TenantSettingsIn(StrictInput):
    timezone = serializers.CharField(
        required=False, help_text="IANA time zone of the tenant's schedules."
    )
    seatLimit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, help_text="null: no limit."
    )
    scim = ScimTargetIn(required=False, allow_null=True, help_text="null: stop pushing.")


class ScimTargetOut(serializers.Serializer):
    baseUrl = serializers.CharField()
    token = serializers.CharField(help_text="Always masked.")
    hasToken = serializers.BooleanField()


class TenantSettingsOut(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    timezone = serializers.CharField()
    seatLimit = serializers.IntegerField(allow_null=True)
    scim = ScimTargetOut(allow_null=True)


class TenantSeatsOut(serializers.Serializer):
    tenantId = serializers.IntegerField()
    seatLimit = serializers.IntegerField(allow_null=True)
    allocated = serializers.IntegerField(help_text="Active students holding a seat.")
    available = serializers.IntegerField(allow_null=True, help_text="null when no limit.")
    waiting = serializers.IntegerField(help_text="Active students past the limit, in line.")
    released = serializers.IntegerField(help_text="Seats given back by withdrawn students.")


# ------------------------------------------------------------------ audit


class AuditQuery(serializers.Serializer):
    action = serializers.CharField(
        max_length=40, required=False, help_text="Only this action, e.g. provider.updated."
    )


class AuditEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    createdAt = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField(help_text="A username, or scheduler / system / webhook.")
    tenantId = serializers.CharField(source="tenant.slug")
    action = serializers.CharField(help_text="provider.created, sync.started, run.approved, …")
    targetType = serializers.CharField(source="target_type")
    targetId = serializers.CharField(source="target_id")
    outcome = serializers.CharField(help_text="success, failure, refused, or a run status.")
    message = serializers.CharField()
    details = serializers.DictField()


# ------------------------------------------------------------------ roster


class RosterQuery(serializers.Serializer):
    active = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Only active (or inactive) rows."
    )
    updatedSince = serializers.DateTimeField(
        required=False, help_text="Only rows changed at or after this time (ISO 8601)."
    )
    search = serializers.CharField(required=False, max_length=200)
    ordering = serializers.CharField(
        required=False, max_length=200, help_text="Comma-separated fields; - for descending."
    )


class SchoolQuery(RosterQuery):
    search = serializers.CharField(
        required=False, max_length=200, help_text="Part of the name or school number."
    )


class ClassQuery(RosterQuery):
    school = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT)
    search = serializers.CharField(
        required=False, max_length=200, help_text="Part of the title, class or course code."
    )


class UserQuery(RosterQuery):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    school = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT)
    search = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Part of the name, email, username, or the exact student number.",
    )


class EnrollmentQuery(RosterQuery):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    school = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT)
    classId = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT)
    userId = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT)
    search = None


class RosterOut(serializers.Serializer):
    id = serializers.IntegerField()
    externalIds = serializers.SerializerMethodField(
        help_text="Per provider id: the id that provider knows this entity by."
    )
    isActive = serializers.BooleanField(source="is_active")
    deactivatedAt = serializers.DateTimeField(source="deactivated_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_externalIds(self, entity: Any) -> dict[str, str]:
        return self.context.get("external_ids", {}).get(entity.pk, {})


class SchoolOut(RosterOut):
    name = serializers.CharField()
    schoolNumber = serializers.CharField(source="school_number")
    lowGrade = serializers.CharField(source="low_grade")
    highGrade = serializers.CharField(source="high_grade")


class ClassOut(RosterOut):
    schoolId = serializers.IntegerField(source="school_id")
    title = serializers.CharField()
    classCode = serializers.CharField(source="class_code")
    classType = serializers.CharField(source="class_type")
    location = serializers.CharField()
    courseTitle = serializers.CharField(source="course_title")
    courseCode = serializers.CharField(source="course_code")
    termName = serializers.CharField(source="term_name")
    termStart = serializers.DateField(source="term_start", allow_null=True)
    termEnd = serializers.DateField(source="term_end", allow_null=True)
    subjects = serializers.CharField()
    grades = serializers.CharField()
    periods = serializers.CharField()


class UserOut(RosterOut):
    role = serializers.ChoiceField(choices=Role.choices)
    givenName = serializers.CharField(source="given_name")
    middleName = serializers.CharField(source="middle_name")
    familyName = serializers.CharField(source="family_name")
    email = serializers.CharField()
    username = serializers.CharField()
    studentNumber = serializers.CharField(source="student_number")
    sisId = serializers.CharField(source="sis_id", help_text="The person's id in the SIS.")
    stateId = serializers.CharField(source="state_id", help_text="The state's id of the person.")
    teacherNumber = serializers.CharField(source="teacher_number")
    grades = serializers.CharField()
    enabled = serializers.BooleanField()
    schoolIds = serializers.SerializerMethodField()
    students = serializers.SerializerMethodField(
        help_text="A contact's students: [{studentId, relationship, type}] (Clever contacts)."
    )

    def get_schoolIds(self, person: Any) -> list[int]:
        return sorted(school.pk for school in person.schools.all())

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_students(self, person: Any) -> list[dict[str, Any]]:
        return [
            {"studentId": link.student_id, "relationship": link.relationship, "type": link.type}
            for link in sorted(person.student_links.all(), key=lambda link: link.student_id)
        ]


class EnrollmentOut(RosterOut):
    classId = serializers.IntegerField(source="classroom_id")
    userId = serializers.IntegerField(source="person_id")
    role = serializers.ChoiceField(choices=Role.choices)
    primary = serializers.BooleanField()
    beginDate = serializers.DateField(source="begin_date", allow_null=True)
    endDate = serializers.DateField(source="end_date", allow_null=True)
