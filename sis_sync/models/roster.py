"""The platform roster: schools, classes, people, class membership, and who said so.

Rows are never deleted by a sync: an entity the SIS stops sending is deactivated
(`is_active=False`, `deactivated_at` set) and reactivated, with its history, if it comes back.
The loader writes these tables with set-based SQL (see loader/), so any field added here must
be added to the loader's column lists too.

Integrity: the tables a district's sync writes in bulk (people, their schools, enrollments,
the identity map) carry their references without per-row foreign-key triggers
(`db_constraint=False`). PostgreSQL checks a foreign key row by row; on a 100,000-student
district's first sync those checks cost more than writing the rows. The references stay
exact because only the loader writes these tables in bulk, from ids it just read in the same
transaction, and it checks them set-based before its transaction commits
(`loader.integrity.check_references`); nothing deletes roster rows (deactivation is a flag, the
admin deletes nothing, and Django's on_delete rules still run for ORM deletes). Small tables
(schools, classes) keep their database foreign keys, but for their tenant's.
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
    # A student's parent, guardian or emergency contact: only from Clever, and only when the
    # provider asks for them (option includeContacts). Never in classes, never holds a seat.
    CONTACT = "contact"


class RosterEntity(models.Model):
    tenant = models.ForeignKey("sis_sync.Tenant", on_delete=models.CASCADE, db_constraint=False)
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
    # Indexed by person_student_number (tenant, student_number): no index of its own.
    tenant = models.ForeignKey(
        "sis_sync.Tenant", on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    given_name = models.CharField(max_length=128)
    middle_name = models.CharField(max_length=128, blank=True, default="")
    family_name = models.CharField(max_length=128)
    email = models.CharField(max_length=254, blank=True, default="")
    username = models.CharField(max_length=254, blank=True, default="")
    student_number = models.CharField(max_length=64, blank=True, default="")
    grades = models.CharField(max_length=64, blank=True, default="")
    # The source's other ids for the person (Clever: `sis_id`, `state_id`, a teacher's
    # `teacher_number`); shown, never matched on: an SIS id is unique only within a district.
    sis_id = models.CharField(max_length=255, blank=True, default="")
    state_id = models.CharField(max_length=128, blank=True, default="")
    teacher_number = models.CharField(max_length=64, blank=True, default="")
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
    person = models.ForeignKey(
        Person, on_delete=models.CASCADE, db_index=False, db_constraint=False
    )
    school = models.ForeignKey(School, on_delete=models.CASCADE, db_constraint=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "school"], name="person_school_unique")
        ]


class ContactRelationship(models.Model):
    """A contact's link to a student (Clever's `student_relationships`), as the provider that
    knows both says. Kept set-based by the loader like PersonSchool: a changed contact's
    links to the students its provider knows are replaced by the source's."""

    contact = models.ForeignKey(
        Person, on_delete=models.CASCADE, related_name="student_links", db_index=False
    )
    student = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="contact_links")
    # Clever's enums (Parent, Grandparent, …; Parent/Guardian, Emergency, …), free text here.
    relationship = models.CharField(max_length=64, blank=True, default="")
    type = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        # Indexed by the unique (contact, student) constraint below; no second index.
        constraints = [
            models.UniqueConstraint(fields=["contact", "student"], name="contact_student_unique")
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} → {self.student_id} ({self.relationship or self.type})"


class Enrollment(RosterEntity):
    classroom = models.ForeignKey(
        Classroom, on_delete=models.PROTECT, related_name="enrollments", db_constraint=False
    )
    person = models.ForeignKey(
        Person, on_delete=models.PROTECT, related_name="enrollments", db_constraint=False
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    primary = models.BooleanField(default=False)
    begin_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    # Who knows this enrollment, by which id. Unlike people, an enrollment is matched on its
    # external id only, so one provider at most knows it: it keeps that identity itself
    # instead of a row in ExternalIdentity (a district has millions of enrollments).
    provider = models.ForeignKey(
        "sis_sync.SisProvider",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,  # the unique constraint below leads with it
    )
    external_id = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"], name="enrollment_external_unique"
            )
        ]


class ExternalIdentity(models.Model):
    """Which provider calls which platform entity by which id.

    One entity may be known to several providers of its tenant (a student in Clever and in a
    CSV feed is one person), but to each provider under one external id only.
    """

    # No index of their own: the unique constraints below lead with the provider, and a
    # tenant's identities are only looked up through its providers or its entities.
    tenant = models.ForeignKey(
        "sis_sync.Tenant", on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    provider = models.ForeignKey(
        "sis_sync.SisProvider", on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    entity_type = models.CharField(max_length=16, choices=EntityType.choices)
    external_id = models.CharField(max_length=255)
    entity_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "entity_type", "external_id"], name="identity_external_unique"
            ),
            # Entity first: it also serves "which providers know this entity" (admin, API).
            models.UniqueConstraint(
                fields=["entity_type", "entity_id", "provider"], name="identity_entity_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.external_id} → {self.entity_id}"
