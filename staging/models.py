"""Staging tables: every record a run extracted, as the source said it, before loading.

Written in bulk (COPY on PostgreSQL) by staging.writer, read by the loader with SQL. `run_id`
and `provider_id` are plain columns without foreign-key constraints so COPY stays fast; rows
are removed when their run no longer needs them (staging.writer.discard_run: TRUNCATE when the
run had the table to itself, so no dead rows pile up). On PostgreSQL the tables are UNLOGGED:
a crash loses staging, which a re-run rebuilds.

Processing columns, set by the loader's plan step: `rejected` (a validation failed: see the
run's rejects), `skipped` (outside the provider's schoolFilter / roles), `entity_id` (the
platform entity it matched), `action` (create, update, reactivate, deactivate, ignore; NULL on
a record the provider sent before that changes nothing, which the plan leaves untouched),
`matched_by` (external_id, email, student_number, new) and `reason` (why validation rejected
it). The parent-id columns hold the parent's platform id once known.
"""

from __future__ import annotations

from django.db import models


class RawRecord(models.Model):
    id = models.BigAutoField(primary_key=True)
    run_id = models.BigIntegerField()
    provider_id = models.BigIntegerField()
    line = models.IntegerField(default=0)
    external_id = models.TextField()  # unbounded here: an overlong id becomes a reject, not a crash
    status = models.CharField(max_length=16)
    raw = models.TextField(default="{}")
    rejected = models.BooleanField(db_default=False)
    skipped = models.BooleanField(db_default=False)
    entity_id = models.BigIntegerField(null=True)
    action = models.CharField(max_length=16, null=True)
    matched_by = models.CharField(max_length=16, null=True)
    reason = models.TextField(null=True)  # why the loader rejected it

    class Meta:
        abstract = True


class RawSchool(RawRecord):
    name = models.TextField()
    school_number = models.TextField()
    low_grade = models.TextField()
    high_grade = models.TextField()

    class Meta:
        db_table = "sis_raw_schools"
        indexes = [models.Index(fields=["run_id", "external_id"], name="raw_school_run_ext")]


class RawClass(RawRecord):
    title = models.TextField()
    school_external_id = models.TextField()
    class_code = models.TextField()
    class_type = models.TextField()
    location = models.TextField()
    course_title = models.TextField()
    course_code = models.TextField()
    term_name = models.TextField()
    term_start = models.DateField(null=True)
    term_end = models.DateField(null=True)
    subjects = models.TextField()
    grades = models.TextField()
    periods = models.TextField()
    school_id = models.BigIntegerField(null=True)

    class Meta:
        db_table = "sis_raw_classes"
        indexes = [models.Index(fields=["run_id", "external_id"], name="raw_class_run_ext")]


class RawUser(RawRecord):
    role = models.TextField()
    given_name = models.TextField()
    middle_name = models.TextField()
    family_name = models.TextField()
    email = models.TextField()
    username = models.TextField()
    student_number = models.TextField()
    grades = models.TextField()
    enabled = models.BooleanField()
    school_external_ids = models.TextField()  # a JSON array of school external ids
    # e.g. Clever's legacy_id; a database default too, for rows written by plain SQL
    previous_external_id = models.TextField(default="", db_default="")
    sis_id = models.TextField(default="", db_default="")
    state_id = models.TextField(default="", db_default="")
    teacher_number = models.TextField(default="", db_default="")
    # a JSON array of {"student", "relationship", "type"} (a contact's students)
    student_relationships = models.TextField(default="[]", db_default="[]")

    class Meta:
        db_table = "sis_raw_users"
        indexes = [models.Index(fields=["run_id", "external_id"], name="raw_user_run_ext")]


class RawEnrollment(RawRecord):
    class_external_id = models.TextField()
    school_external_id = models.TextField()
    user_external_id = models.TextField()
    role = models.TextField()
    primary = models.BooleanField()
    begin_date = models.DateField(null=True)
    end_date = models.DateField(null=True)
    classroom_id = models.BigIntegerField(null=True)
    person_id = models.BigIntegerField(null=True)

    class Meta:
        db_table = "sis_raw_enrollments"
        indexes = [models.Index(fields=["run_id", "external_id"], name="raw_enr_run_ext")]


class RunReject(models.Model):
    """A record a run did not load, and why, in words a district admin understands."""

    run = models.ForeignKey("sis_sync.SisSyncRun", on_delete=models.CASCADE, related_name="rejects")
    entity = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255, blank=True, default="")
    reason = models.TextField()
    raw = models.TextField(default="{}")
    line = models.IntegerField(default=0)

    class Meta:
        db_table = "sis_rejects"
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "entity", "external_id"], name="reject_run_entity")]

    def __str__(self) -> str:
        return f"{self.entity} {self.external_id}: {self.reason}"


STAGING_MODELS = {
    "schools": RawSchool,
    "classes": RawClass,
    "users": RawUser,
    "enrollments": RawEnrollment,
}
