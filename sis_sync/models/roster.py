"""The platform roster: schools, classes, people, class membership, and who said so.

Rows are never deleted by a sync: an entity the SIS stops sending is deactivated
(`is_active=False`, `deactivated_at` set) and reactivated, with its history, if it comes back.
The loader writes these tables with set-based SQL (see loader/), so any field added here must
be added to the loader's column lists too.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower


class EntityType(models.TextChoices):
    SCHOOL = "school"
    CLASS = "class"
    USER = "user"
    ENROLLMENT = "enrollment"


class Role(models.TextChoices):
    STUDENT = "student"
    TEACHER = "teacher"
    ADMINISTRATOR = "administrator"


class RosterEntity(models.Model):
    tenant = models.ForeignKey("sis_sync.Tenant", on_delete=models.CASCADE)
    is_active = models.BooleanField(default=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class School(RosterEntity):
    name = models.CharField(max_length=255)
    school_number = models.CharField(max_length=64, blank=True, default="")
    low_grade = models.CharField(max_length=16, blank=True, default="")
    high_grade = models.CharField(max_length=16, blank=True, default="")

    def __str__(self) -> str:
        return self.name


class Classroom(RosterEntity):
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="classes")
    title = models.CharField(max_length=255)
    class_code = models.CharField(max_length=128, blank=True, default="")
    class_type = models.CharField(max_length=32, blank=True, default="")
    location = models.CharField(max_length=128, blank=True, default="")
    course_title = models.CharField(max_length=255, blank=True, default="")
    course_code = models.CharField(max_length=128, blank=True, default="")
    term_name = models.CharField(max_length=255, blank=True, default="")
    term_start = models.DateField(null=True, blank=True)
    term_end = models.DateField(null=True, blank=True)
    subjects = models.CharField(max_length=255, blank=True, default="")
    grades = models.CharField(max_length=128, blank=True, default="")
    periods = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        verbose_name = "class"
        verbose_name_plural = "classes"

    def __str__(self) -> str:
        return self.title


class Person(RosterEntity):
    role = models.CharField(max_length=16, choices=Role.choices)
    given_name = models.CharField(max_length=128)
    middle_name = models.CharField(max_length=128, blank=True, default="")
    family_name = models.CharField(max_length=128)
    email = models.CharField(max_length=254, blank=True, default="")
    username = models.CharField(max_length=254, blank=True, default="")
    student_number = models.CharField(max_length=64, blank=True, default="")
    grades = models.CharField(max_length=64, blank=True, default="")
    enabled = models.BooleanField(default=True)
    schools = models.ManyToManyField(School, through="PersonSchool", related_name="people")

    class Meta:
        verbose_name_plural = "people"
        indexes = [
            models.Index(Lower("email"), "tenant", name="person_email_ci"),
            models.Index(fields=["tenant", "student_number"], name="person_student_number"),
        ]

    def __str__(self) -> str:
        return f"{self.given_name} {self.family_name}"


class PersonSchool(models.Model):
    # Indexed by the unique (person, school) constraint below; no second index.
    person = models.ForeignKey(Person, on_delete=models.CASCADE, db_index=False)
    school = models.ForeignKey(School, on_delete=models.CASCADE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "school"], name="person_school_unique")
        ]


class Enrollment(RosterEntity):
    classroom = models.ForeignKey(Classroom, on_delete=models.PROTECT, related_name="enrollments")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="enrollments")
    role = models.CharField(max_length=16, choices=Role.choices)
    primary = models.BooleanField(default=False)
    begin_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)


class ExternalIdentity(models.Model):
    """Which provider calls which platform entity by which id.

    One entity may be known to several providers of its tenant (a student in Clever and in a
    CSV feed is one person), but to each provider under one external id only.
    """

    tenant = models.ForeignKey("sis_sync.Tenant", on_delete=models.CASCADE)
    provider = models.ForeignKey("sis_sync.SisProvider", on_delete=models.CASCADE)
    entity_type = models.CharField(max_length=16, choices=EntityType.choices)
    external_id = models.CharField(max_length=255)
    entity_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "entity_type", "external_id"], name="identity_external_unique"
            ),
            models.UniqueConstraint(
                fields=["provider", "entity_type", "entity_id"], name="identity_entity_unique"
            ),
        ]
        indexes = [models.Index(fields=["entity_type", "entity_id"], name="identity_entity")]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.external_id} → {self.entity_id}"
