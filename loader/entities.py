"""What the loader knows of each entity type: its tables, its fields, its references."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    column: str  # staging column holding the parent's external id
    entity: str  # the parent's entity name ("schools")
    id_column: str | None = None  # staging column receiving the parent's platform id


@dataclass(frozen=True)
class EntitySpec:
    name: str  # "users"
    type: str  # identity-map entity type, "user"
    label: str  # how an admin reads it: "user"
    staging: str
    target: str
    fields: tuple[str, ...]  # target columns, copied from staging columns of the same name
    references: tuple[Reference, ...] = ()
    # The target row carries its provider and external id itself, instead of a row in the
    # identity map: for an entity only one provider can know (matched on external id only,
    # never across providers) and of which a district has millions (enrollments).
    own_identity: bool = False

    @property
    def identities(self) -> str:
        """A FROM item with the identity map's columns, holding this type's identities."""
        if not self.own_identity:
            return IDENTITY
        return (
            f"(SELECT id, tenant_id, provider_id, '{self.type}' AS entity_type, external_id, "
            f"id AS entity_id, created_at FROM {self.target} WHERE provider_id IS NOT NULL)"
        )

    @property
    def max_lengths(self) -> dict[str, int]:
        """The target's bounded text columns and their limits, from the roster models."""
        from django.apps import apps

        model = next(m for m in apps.get_models() if m._meta.db_table == self.target)
        return {
            f.column: f.max_length
            for f in model._meta.concrete_fields
            if getattr(f, "max_length", None) and f.get_internal_type() == "CharField"
        }


SCHOOLS = EntitySpec(
    name="schools",
    type="school",
    label="school",
    staging="sis_raw_schools",
    target="sis_sync_school",
    fields=("name", "school_number", "low_grade", "high_grade"),
)
CLASSES = EntitySpec(
    name="classes",
    type="class",
    label="class",
    staging="sis_raw_classes",
    target="sis_sync_classroom",
    fields=(
        "school_id",
        "title",
        "class_code",
        "class_type",
        "location",
        "course_title",
        "course_code",
        "term_name",
        "term_start",
        "term_end",
        "subjects",
        "grades",
        "periods",
    ),
    references=(Reference("school_external_id", "schools", "school_id"),),
)
USERS = EntitySpec(
    name="users",
    type="user",
    label="user",
    staging="sis_raw_users",
    target="sis_sync_person",
    fields=(
        "role",
        "given_name",
        "middle_name",
        "family_name",
        "email",
        "username",
        "student_number",
        "grades",
        "enabled",
        "sis_id",
        "state_id",
        "teacher_number",
    ),
)
ENROLLMENTS = EntitySpec(
    name="enrollments",
    type="enrollment",
    label="enrollment",
    staging="sis_raw_enrollments",
    target="sis_sync_enrollment",
    fields=("classroom_id", "person_id", "role", "primary", "begin_date", "end_date"),
    references=(
        Reference("class_external_id", "classes", "classroom_id"),
        Reference("user_external_id", "users", "person_id"),
    ),
    own_identity=True,
)

SPECS = {s.name: s for s in (SCHOOLS, CLASSES, USERS, ENROLLMENTS)}
ORDER = (SCHOOLS, CLASSES, USERS, ENROLLMENTS)
IDENTITY = "sis_sync_externalidentity"
PLANNED = "sis_planned_deactivations"
REJECTS = "sis_rejects"
PERSON_SCHOOL = "sis_sync_personschool"
CONTACTS = "sis_sync_contactrelationship"
