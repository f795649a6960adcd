"""The roster's bulk tables carry no per-row foreign-key triggers (sis_sync.models.roster):
the loader checks the references set-based before its transaction commits, and the
enrollments keep their own identity (provider, external id) instead of the identity map."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from sis_sync.models import (
    Enrollment,
    EntityType,
    ExternalIdentity,
    Person,
    PersonSchool,
    RunStatus,
)
from tests import bundles
from tests.sync_helpers import entity_of, sync

pytestmark = pytest.mark.django_db


def roster() -> tuple[list[tuple], ...]:
    return (
        sorted(Person.objects.values_list("id", "is_active", "family_name")),
        sorted(Enrollment.objects.values_list("id", "person_id", "classroom_id", "is_active")),
        sorted(PersonSchool.objects.values_list("person_id", "school_id")),
    )


def point_at_nothing(entity_type: str, entity_id: int) -> None:
    """What a change made outside the sync can do: an identity left naming no entity."""
    ExternalIdentity.objects.filter(entity_type=entity_type, entity_id=entity_id).update(
        entity_id=987654321
    )


def test_enrollments_carry_their_provider_and_id_and_the_identity_map_holds_none(
    sample_bundle: Path,
) -> None:
    run = sync(sample_bundle)

    assert run.status == RunStatus.SUCCESS
    staged = {r["sourcedId"] for r in bundles.read(sample_bundle, "enrollments")}
    mine = Enrollment.objects.filter(provider_id=run.provider_id)
    assert set(mine.values_list("external_id", flat=True)) == staged
    assert mine.count() == Enrollment.objects.count() == len(staged)
    assert not ExternalIdentity.objects.filter(entity_type=EntityType.ENROLLMENT).exists()
    again = sync(sample_bundle)
    assert again.stats["enrollments"]["unchanged"] == len(staged)
    assert again.stats["enrollments"]["created"] == 0


def test_an_identity_pointing_at_nothing_fails_the_load_and_changes_nothing(
    sample_bundle: Path, tmp_path: Path
) -> None:
    district = bundles.copy(sample_bundle, tmp_path / "district")
    first = sync(district)
    student = bundles.students(district)[0]["sourcedId"]
    # Someone removed the person behind an identity outside the sync (no database trigger
    # stops it any more): the next enrollment of that student would point at nothing.
    person_id = entity_of(first, EntityType.USER, student)
    point_at_nothing("user", person_id)
    rows = bundles.read(district, "enrollments")
    taken = {r["classSourcedId"] for r in rows if r["userSourcedId"] == student}
    other = next(r for r in rows if r["classSourcedId"] not in taken)
    joined = {**other, "sourcedId": "enr-new-1", "userSourcedId": student, "role": "student"}
    bundles.edit(district, "enrollments", lambda rs: [*rs, joined])
    before = roster()

    run = sync(district, options={"deletionThreshold": 1.0})

    assert run.status == RunStatus.FAILURE
    # The student's enrollments would all point at the missing person (the new one too).
    assert "pointing at nothing: enrollment " in run.error_message
    assert "(user missing)" in run.error_message
    assert "nothing was applied" in run.error_message
    assert roster() == before
    assert not Enrollment.objects.filter(external_id="enr-new-1").exists()


def test_an_identity_pointing_at_nothing_that_no_load_uses_stops_nothing(
    sample_bundle: Path, tmp_path: Path
) -> None:
    district = bundles.copy(sample_bundle, tmp_path / "district")
    first = sync(district)
    leaver = bundles.students(district)[0]["sourcedId"]
    bundles.drop_users(district, {leaver})
    assert sync(district, options={"deletionThreshold": 1.0}).status == RunStatus.SUCCESS
    person_id = entity_of(first, EntityType.USER, leaver)
    point_at_nothing("user", person_id)
    bundles.edit(district, "classes", lambda rows: [{**rows[0], "title": "Renamed"}, *rows[1:]])

    run = sync(district)

    assert run.status == RunStatus.SUCCESS, run.error_message
    assert run.stats["classes"]["updated"] == 1


def test_the_enrollment_page_shows_its_provider_id_once(
    sample_bundle: Path, admin_client: Client
) -> None:
    sync(sample_bundle)
    enrollment = Enrollment.objects.exclude(external_id="").first()

    page = admin_client.get(f"/admin/sis_sync/enrollment/{enrollment.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Known to the providers as" in html
    assert html.count(f"<code>{enrollment.external_id}</code>") == 1
    assert "External id" not in html


def test_a_new_person_linked_to_a_school_that_is_gone_fails_the_load(
    sample_bundle: Path, tmp_path: Path
) -> None:
    district = bundles.copy(sample_bundle, tmp_path / "district")
    orgs = bundles.read(district, "orgs")
    school = "sch-empty"  # a school no class points at (classes keep a database foreign key)
    empty = {**next(o for o in orgs if o["type"] == "school"), "sourcedId": school}
    bundles.edit(district, "orgs", lambda rows: [*rows, {**empty, "identifier": "E-1"}])
    first = sync(district)
    student = {**bundles.students(district)[0], "orgSourcedIds": school}
    school_id = entity_of(first, EntityType.SCHOOL, school)
    point_at_nothing("school", school_id)
    newcomer = {**student, "sourcedId": "stu-new-1", "email": "", "identifier": "N-1"}
    bundles.edit(district, "users", lambda rows: [*rows, newcomer])
    before = roster()

    run = sync(district)

    assert run.status == RunStatus.FAILURE
    assert "(school missing)" in run.error_message
    assert roster() == before
