"""Data migrations keep a district's data: run forward and back on a populated database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("sis_sync", "0007_admin_names")]
AFTER = [("sis_sync", "0008_bulk_roster_without_row_triggers")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_enrollment_identities_move_into_the_enrollments_and_back() -> None:
    old = migrate(BEFORE).loader.project_state(BEFORE).apps
    now = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    tenant = old.get_model("sis_sync", "Tenant").objects.create(slug="t", name="T")
    provider = old.get_model("sis_sync", "SisProvider").objects.create(
        tenant=tenant, provider_type="ONEROSTER_CSV", name="csv"
    )
    school = old.get_model("sis_sync", "School").objects.create(tenant=tenant, name="S")
    classroom = old.get_model("sis_sync", "Classroom").objects.create(
        tenant=tenant, school=school, title="Math"
    )
    Person = old.get_model("sis_sync", "Person")
    people = [
        Person.objects.create(tenant=tenant, role="student", given_name="A", family_name=str(n))
        for n in range(3)
    ]
    Enrollment = old.get_model("sis_sync", "Enrollment")
    enrollments = [
        Enrollment.objects.create(tenant=tenant, classroom=classroom, person=p, role="student")
        for p in people
    ]
    Identity = old.get_model("sis_sync", "ExternalIdentity")
    for n, enrollment in enumerate(enrollments[:2]):  # the third was made by hand
        Identity.objects.create(
            tenant=tenant,
            provider=provider,
            entity_type="enrollment",
            external_id=f"enr-{n}",
            entity_id=enrollment.pk,
            created_at=now,
        )
    Identity.objects.create(
        tenant=tenant,
        provider=provider,
        entity_type="user",
        external_id="u-0",
        entity_id=people[0].pk,
        created_at=now,
    )

    new = migrate(AFTER).loader.project_state(AFTER).apps
    moved = new.get_model("sis_sync", "Enrollment").objects.order_by("pk")
    assert [(e.provider_id, e.external_id) for e in moved] == [
        (provider.pk, "enr-0"),
        (provider.pk, "enr-1"),
        (None, ""),
    ]
    kept = new.get_model("sis_sync", "ExternalIdentity").objects.all()
    assert [(i.entity_type, i.external_id) for i in kept] == [("user", "u-0")]

    back = migrate(BEFORE).loader.project_state(BEFORE).apps
    restored = back.get_model("sis_sync", "ExternalIdentity").objects.filter(
        entity_type="enrollment"
    )
    assert sorted((i.external_id, i.entity_id, i.provider_id) for i in restored) == [
        ("enr-0", enrollments[0].pk, provider.pk),
        ("enr-1", enrollments[1].pk, provider.pk),
    ]
    migrate([("sis_sync", max_leaf())])


def max_leaf() -> str:
    executor = MigrationExecutor(connection)
    return next(name for app, name in executor.loader.graph.leaf_nodes() if app == "sis_sync")
