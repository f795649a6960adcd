"""End-to-end CSV syncs on the database: counts, idempotency, soft delete, matching, safety."""

from __future__ import annotations

from pathlib import Path

import pytest

from loader.entities import IDENTITY, ORDER, PERSON_SCHOOL
from sis_sync.models import Classroom, Enrollment, Person, PersonSchool, RunStatus, School
from sis_sync.models.roster import EntityType
from tests import bundles
from tests.factories import PersonFactory, TenantFactory
from tests.sync_helpers import USER, changes, counts, entity_of, sync

pytestmark = pytest.mark.django_db


@pytest.fixture
def district(tmp_path: Path, sample_bundle: Path) -> Path:
    return bundles.copy(sample_bundle, tmp_path / "district")


def roster_snapshot() -> dict[str, list[tuple]]:
    return {
        "schools": list(School.objects.order_by("id").values_list("id", "name", "is_active")),
        "classes": list(Classroom.objects.order_by("id").values_list("id", "title", "is_active")),
        "people": list(
            Person.objects.order_by("id").values_list("id", "email", "family_name", "is_active")
        ),
        "enrollments": list(
            Enrollment.objects.order_by("id").values_list("id", "person_id", "is_active")
        ),
    }


def test_it_imports_a_generated_district_with_counts_equal_to_the_files(district: Path) -> None:
    run = sync(district)

    schools = [r for r in bundles.read(district, "orgs") if r["type"] == "school"]
    assert run.status == RunStatus.SUCCESS, run.error_message
    assert counts(run, "schools")["created"] == len(schools) == School.objects.count()
    assert counts(run, "classes")["created"] == len(bundles.read(district, "classes"))
    assert counts(run, "users")["created"] == len(bundles.read(district, "users"))
    assert counts(run, "enrollments")["created"] == len(bundles.read(district, "enrollments"))
    assert Person.objects.count() == len(bundles.read(district, "users"))
    assert Enrollment.objects.filter(is_active=True).count() == len(
        bundles.read(district, "enrollments")
    )


def test_it_keeps_names_numbers_and_schools_exactly(district: Path) -> None:
    sync(district)

    users = bundles.read(district, "users")
    hyphenated = next(u for u in users if "-" in u["familyName"] and u["role"] == "student")
    person = Person.objects.get(family_name=hyphenated["familyName"], email=hyphenated["email"])
    assert person.student_number == hyphenated["identifier"]
    assert person.given_name == hyphenated["givenName"]
    two_schools = next(u for u in users if u["orgSourcedIds"].count(",") == 1)
    teacher = Person.objects.get(username=two_schools["username"])
    assert PersonSchool.objects.filter(person=teacher).count() == 2
    assert Person.objects.filter(student_number__startswith="0").exists()


def test_it_changes_nothing_when_the_same_import_runs_again(district: Path) -> None:
    sync(district)
    before = roster_snapshot()

    again = sync(district)

    assert again.status == RunStatus.SUCCESS
    assert changes(again) == 0
    assert counts(again, "users")["unchanged"] == len(bundles.read(district, "users"))
    assert roster_snapshot() == before


def test_it_deactivates_students_missing_from_a_full_sync_with_their_enrollments(
    district: Path,
) -> None:
    sync(district)
    leaving = {s["sourcedId"] for s in bundles.students(district)[:10]}
    their_enrollments = [
        e for e in bundles.read(district, "enrollments") if e["userSourcedId"] in leaving
    ]
    bundles.drop_users(district, leaving)

    run = sync(district)

    assert run.status == RunStatus.SUCCESS, run.error_message
    assert counts(run, "users")["deactivated"] == 10
    assert counts(run, "enrollments")["deactivated"] == len(their_enrollments) > 0
    gone = Person.objects.filter(pk__in=[entity_of(run, USER, u) for u in leaving])
    assert all(not p.is_active and p.deactivated_at for p in gone)
    assert not Enrollment.objects.filter(person__in=gone, is_active=True).exists()
    assert Person.objects.filter(is_active=True).count() == len(bundles.read(district, "users"))


def test_it_reactivates_returning_students_with_the_same_ids_and_history(
    district: Path, tmp_path: Path, sample_bundle: Path
) -> None:
    first = sync(district)
    leaving = {s["sourcedId"] for s in bundles.students(district)[:10]}
    ids_before = {u: entity_of(first, USER, u) for u in leaving}
    created_before = dict(
        Person.objects.filter(pk__in=ids_before.values()).values_list("pk", "created_at")
    )
    bundles.drop_users(district, leaving)
    sync(district)

    back = sync(sample_bundle)

    assert back.status == RunStatus.SUCCESS
    assert counts(back, "users")["reactivated"] == 10
    assert counts(back, "users")["created"] == 0
    assert counts(back, "enrollments")["reactivated"] > 0
    assert {u: entity_of(back, USER, u) for u in leaving} == ids_before
    people = Person.objects.filter(pk__in=ids_before.values())
    assert all(p.is_active and p.deactivated_at is None for p in people)
    assert dict(people.values_list("pk", "created_at")) == created_before


def test_it_updates_exactly_the_people_whose_email_changed(district: Path) -> None:
    sync(district)
    changed = [s["sourcedId"] for s in bundles.students(district) if s["email"]][:5]

    def new_emails(rows: list[dict]) -> list[dict]:
        for row in rows:
            if row["sourcedId"] in changed:
                row["email"] = f"new.{row['sourcedId']}@example.org"
        return rows

    bundles.edit(district, "users", new_emails)
    run = sync(district)

    assert counts(run, "users")["updated"] == 5
    assert changes(run) == 5
    assert Person.objects.filter(email__startswith="new.").count() == 5


def test_it_links_an_existing_unlinked_person_by_email_case_insensitively(district: Path) -> None:
    tenant = TenantFactory(slug="lakeview")
    student = next(s for s in bundles.students(district) if s["email"])
    existing = PersonFactory(
        tenant=tenant, email=student["email"].upper(), given_name="Old", family_name="Name"
    )

    run = sync(district)

    assert entity_of(run, USER, student["sourcedId"]) == existing.pk
    existing.refresh_from_db()
    assert existing.given_name == student["givenName"]
    assert counts(run, "users")["updated"] == 1
    assert counts(run, "users")["created"] == len(bundles.read(district, "users")) - 1


def test_it_links_a_student_without_email_by_student_number(district: Path) -> None:
    tenant = TenantFactory(slug="lakeview")
    student = next(s for s in bundles.students(district) if not s["email"])
    existing = PersonFactory(
        tenant=tenant, email="", student_number=student["identifier"], role="student"
    )

    run = sync(district)

    assert entity_of(run, USER, student["sourcedId"]) == existing.pk
    assert Person.objects.filter(student_number=student["identifier"]).count() == 1


def test_it_does_not_match_an_email_shared_by_two_people(district: Path) -> None:
    tenant = TenantFactory(slug="lakeview")
    student = next(s for s in bundles.students(district) if s["email"])
    twins = [PersonFactory(tenant=tenant, email=student["email"]) for _ in range(2)]

    run = sync(district)

    assert entity_of(run, USER, student["sourcedId"]) not in {t.pk for t in twins}


def test_it_leaves_the_roster_unchanged_when_the_load_fails_midway(
    district: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(district)
    bundles.drop_users(district, {s["sourcedId"] for s in bundles.students(district)[:5]})
    bundles.edit(
        district,
        "classes",
        lambda rows: [{**r, "title": r["title"] + " (new)"} for r in rows[:5]] + rows[5:],
    )
    # A person changes too, so the users' update (where the failure is injected) has work.
    bundles.edit(district, "users", lambda rows: [{**rows[0], "familyName": "Renamed"}, *rows[1:]])
    before = roster_snapshot()
    import loader.applier

    real_update = loader.applier._update

    def failing_update(ctx, spec, now):  # type: ignore[no-untyped-def]
        if spec.name == "users":
            raise RuntimeError("injected failure")
        return real_update(ctx, spec, now)

    monkeypatch.setattr(loader.applier, "_update", failing_update)
    run = sync(district)

    assert run.status == RunStatus.FAILURE
    assert "injected failure" in run.error_message
    assert "nothing was changed" in run.error_message
    assert roster_snapshot() == before


def test_it_rejects_exactly_the_bad_rows_and_ends_partial(district: Path) -> None:
    users = bundles.read(district, "users")
    classes = bundles.read(district, "classes")

    def break_users(rows: list[dict]) -> list[dict]:
        rows[1]["role"] = "studnet"  # unknown role
        rows[2]["orgSourcedIds"] = "no-such-school"  # dangling school
        rows.append(dict(rows[3]))  # duplicate sourcedId
        return rows

    bundles.edit(district, "users", break_users)
    bundles.edit(
        district,
        "enrollments",
        lambda rows: rows + [{**rows[0], "sourcedId": "enr-dangling", "classSourcedId": "nope"}],
    )

    run = sync(district)

    assert run.status == RunStatus.PARTIAL
    rejects = {(r.entity, r.external_id): r.reason for r in run.rejects.all()}
    assert set(rejects) == {
        ("user", users[1]["sourcedId"]),
        ("user", users[2]["sourcedId"]),
        ("user", users[3]["sourcedId"]),
        ("enrollment", "enr-dangling"),
    } | {
        ("enrollment", e["sourcedId"])
        for e in bundles.read(district, "enrollments")
        if e["userSourcedId"] in (users[1]["sourcedId"], users[2]["sourcedId"])
    }
    assert "unknown role 'studnet'" in rejects[("user", users[1]["sourcedId"])]
    assert (
        'school "no-such-school" is not in the source data'
        in rejects[("user", users[2]["sourcedId"])]
    )
    assert "duplicate sourcedId" in rejects[("user", users[3]["sourcedId"])]
    assert 'class "nope"' in rejects[("enrollment", "enr-dangling")]
    assert counts(run, "users")["rejected"] == 3
    assert counts(run, "users")["created"] == len(users) - 2
    assert len(classes) == counts(run, "classes")["created"]


def test_it_holds_a_sync_that_would_deactivate_30_percent_of_students(district: Path) -> None:
    sync(district)
    students = bundles.students(district)
    leaving = {s["sourcedId"] for s in students[: len(students) * 3 // 10]}
    bundles.drop_users(district, leaving)
    before = roster_snapshot()

    run = sync(district)

    assert run.status == RunStatus.HELD
    assert "users: would deactivate" in run.error_message
    assert counts(run, "users")["deactivated"] == len(leaving)
    assert roster_snapshot() == before


def test_it_applies_exactly_the_held_plan_on_approval(district: Path) -> None:
    from sis_sync.runs import run_approve

    sync(district)
    students = bundles.students(district)
    leaving = {s["sourcedId"] for s in students[: len(students) * 3 // 10]}
    bundles.drop_users(district, leaving)
    held = sync(district)

    approved = run_approve(run=held, decided_by="admin@example.org")

    assert approved.status == RunStatus.SUCCESS
    assert approved.decided_by == "admin@example.org"
    assert approved.stats["users"] == held.stats["users"]
    assert Person.objects.filter(is_active=False).count() == len(leaving)
    inactive = Enrollment.objects.filter(is_active=False).count()
    assert inactive == held.stats["enrollments"]["deactivated"] > 0


def test_it_applies_nothing_when_a_held_run_is_discarded(district: Path) -> None:
    from sis_sync.runs import run_approve, run_discard

    sync(district)
    students = bundles.students(district)
    bundles.drop_users(district, {s["sourcedId"] for s in students[: len(students) // 2]})
    held = sync(district)
    before = roster_snapshot()

    discarded = run_discard(run=held, decided_by="admin")

    assert discarded.status == RunStatus.DISCARDED
    assert roster_snapshot() == before
    from sis_sync.errors import SyncError

    with pytest.raises(SyncError, match="not HELD"):
        run_approve(run=discarded, decided_by="admin")


def test_it_supersedes_a_held_plan_once_a_newer_sync_loads(
    district: Path, sample_bundle: Path
) -> None:
    from sis_sync.errors import SyncError
    from sis_sync.runs import run_approve

    sync(district)
    students = bundles.students(district)
    bundles.drop_users(district, {s["sourcedId"] for s in students[: len(students) // 2]})
    held = sync(district)
    sync(sample_bundle)

    held.refresh_from_db()
    assert held.status == RunStatus.DISCARDED
    assert held.error_message.startswith("Superseded: run ")
    with pytest.raises(SyncError, match="not HELD"):
        run_approve(run=held, decided_by="admin")
    assert Person.objects.filter(is_active=False).count() == 0


def test_it_holds_an_empty_collection_even_with_thresholds_off(district: Path) -> None:
    sync(district)
    bundles.edit(district, "enrollments", lambda rows: [])

    run = sync(district, options={"deletionThreshold": 1.0})

    assert run.status == RunStatus.HELD
    assert "sent no enrollments at all" in run.error_message
    assert not Enrollment.objects.filter(is_active=False).exists()


def test_it_deactivates_only_tobedeleted_rows_in_a_delta_bundle(
    district: Path, tmp_path: Path
) -> None:
    sync(district)
    delta = tmp_path / "delta"
    delta.mkdir()
    bundles.copy(district / "..", tmp_path / "unused") if False else None
    students = bundles.students(district)
    deleted, renamed = students[0], students[1]
    user_columns = bundles.header(district, "users")
    bundles.write(
        delta,
        "users",
        [
            {**deleted, "status": "tobedeleted", "dateLastModified": "2026-11-20T02:00:00.000Z"},
            {
                **renamed,
                "familyName": "Renamed",
                "status": "active",
                "dateLastModified": "2026-11-20T02:00:00.000Z",
            },
        ],
        user_columns,
    )
    bundles.write(
        delta,
        "manifest",
        [
            {"propertyName": "manifest.version", "value": "1.0"},
            {"propertyName": "oneroster.version", "value": "1.1"},
            {"propertyName": "file.users", "value": "delta"},
            {"propertyName": "file.orgs", "value": "absent"},
            {"propertyName": "file.classes", "value": "absent"},
            {"propertyName": "file.enrollments", "value": "absent"},
        ],
        ["propertyName", "value"],
    )

    run = sync(delta)

    assert run.status == RunStatus.SUCCESS, run.error_message
    assert counts(run, "users") == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "deactivated": 1,
        "reactivated": 0,
        "rejected": 0,
    }
    gone = Person.objects.get(pk=entity_of(run, USER, deleted["sourcedId"]))
    assert not gone.is_active
    assert not gone.enrollments.filter(is_active=True).exists()
    assert counts(run, "enrollments")["deactivated"] == gone.enrollments.count() > 0
    assert (
        Person.objects.get(pk=entity_of(run, USER, renamed["sourcedId"])).family_name == "Renamed"
    )
    assert Person.objects.filter(is_active=True).count() == len(bundles.read(district, "users")) - 1


def test_it_previews_a_dry_run_without_changing_anything(district: Path) -> None:
    run = sync(district, dry_run=True)

    assert run.status == RunStatus.SUCCESS
    assert run.dry_run
    assert counts(run, "users")["created"] == len(bundles.read(district, "users"))
    assert Person.objects.count() == 0
    assert School.objects.count() == 0


def test_it_syncs_only_the_named_entity_types(district: Path) -> None:
    sync(district)
    bundles.edit(
        district, "users", lambda rows: [{**r, "familyName": "X"} for r in rows[:3]] + rows[3:]
    )
    bundles.edit(district, "orgs", lambda rows: [{**r, "name": r["name"] + "!"} for r in rows])

    run = sync(district, entities=["schools"])

    assert counts(run, "schools")["updated"] == School.objects.count()
    assert counts(run, "users") == dict.fromkeys(counts(run, "users"), 0)
    assert not Person.objects.filter(family_name="X").exists()


def test_it_skips_schools_outside_the_school_filter(district: Path) -> None:
    schools = [r["sourcedId"] for r in bundles.read(district, "orgs") if r["type"] == "school"]

    run = sync(district, options={"schoolFilter": [schools[0]]})

    assert run.status == RunStatus.SUCCESS
    assert School.objects.count() == 1
    assert not Classroom.objects.exclude(school__name=School.objects.get().name).exists()
    assert all(
        p.schools.filter(pk=School.objects.get().pk).exists()
        for p in Person.objects.filter(role="student")
    )
    again = sync(district, options={"schoolFilter": [schools[0]]})
    assert changes(again) == 0


def test_it_syncs_only_the_chosen_roles(district: Path) -> None:
    run = sync(district, options={"roles": ["teacher"]})

    assert run.status == RunStatus.SUCCESS
    assert set(Person.objects.values_list("role", flat=True)) == {"teacher"}
    assert set(Enrollment.objects.values_list("role", flat=True)) == {"teacher"}


def test_it_rejects_new_users_when_create_users_is_off(district: Path) -> None:
    run = sync(district, options={"createUsers": False})

    assert run.status == RunStatus.PARTIAL
    assert Person.objects.count() == 0
    assert counts(run, "users")["rejected"] == len(bundles.read(district, "users"))
    assert "createUsers is off" in run.rejects.filter(entity="user").first().reason


def test_it_fails_a_broken_bundle_with_one_message_and_applies_nothing(district: Path) -> None:
    sync(district)
    before = roster_snapshot()
    bundles.edit(district, "users", lambda rows: rows)
    text = (district / "users.csv").read_text(encoding="utf-8")
    (district / "users.csv").write_text(text.replace("givenName", "given_name"), encoding="utf-8")

    run = sync(district)

    assert run.status == RunStatus.FAILURE
    assert run.error_message.startswith("users.csv is missing the required column givenName")
    assert roster_snapshot() == before


def test_it_rejects_a_value_too_long_for_its_column_instead_of_failing(district: Path) -> None:
    users = bundles.read(district, "users")
    bundles.edit(district, "users", lambda rows: [{**rows[0], "givenName": "A" * 200}] + rows[1:])

    run = sync(district)

    assert run.status == RunStatus.PARTIAL
    reject = run.rejects.get(entity="user")
    assert reject.external_id == users[0]["sourcedId"]
    assert reject.reason == "given_name is longer than 128 characters"
    assert counts(run, "users")["created"] == len(users) - 1


def test_it_rejects_an_overlong_sourced_id(district: Path) -> None:
    long_id = "x" * 300
    bundles.edit(district, "users", lambda rows: rows + [{**rows[0], "sourcedId": long_id}])

    run = sync(district)

    assert run.status == RunStatus.PARTIAL
    reject = run.rejects.get(entity="user")
    assert reject.reason == "sourcedId is longer than 255 characters"
    assert reject.external_id == long_id[:255]


def test_it_updates_a_teacher_whose_schools_changed(district: Path) -> None:
    sync(district)
    users = bundles.read(district, "users")
    moved = next(u for u in users if u["orgSourcedIds"].count(",") == 1)
    first, second = moved["orgSourcedIds"].split(",")
    single = next(u for u in users if u["role"] == "teacher" and "," not in u["orgSourcedIds"])
    other = first if single["orgSourcedIds"] != first else second

    def move(rows: list[dict]) -> list[dict]:
        for row in rows:
            if row["sourcedId"] == moved["sourcedId"]:
                row["orgSourcedIds"] = first  # leaves the second school
            if row["sourcedId"] == single["sourcedId"]:
                row["orgSourcedIds"] = f"{single['orgSourcedIds']},{other}"  # joins another
        return rows

    bundles.edit(district, "users", move)
    run = sync(district)

    assert counts(run, "users")["updated"] == 2
    assert changes(run) == 2
    assert (
        PersonSchool.objects.filter(person_id=entity_of(run, USER, moved["sourcedId"])).count() == 1
    )
    assert (
        PersonSchool.objects.filter(person_id=entity_of(run, USER, single["sourcedId"])).count()
        == 2
    )
    assert changes(sync(district)) == 0


def test_it_updates_a_person_who_swapped_one_school_for_another(district: Path) -> None:
    sync(district)
    users = bundles.read(district, "users")
    schools = [o["sourcedId"] for o in bundles.read(district, "orgs") if o["type"] == "school"]
    student = next(u for u in users if u["role"] == "student" and u["orgSourcedIds"] in schools)
    elsewhere = next(s for s in schools if s != student["orgSourcedIds"])

    def swap(rows: list[dict]) -> list[dict]:
        for row in rows:
            if row["sourcedId"] == student["sourcedId"]:
                row["orgSourcedIds"] = elsewhere  # as many schools as before, not the same one
        return rows

    bundles.edit(district, "users", swap)
    run = sync(district)

    assert counts(run, "users")["updated"] == 1
    linked = PersonSchool.objects.filter(person_id=entity_of(run, USER, student["sourcedId"]))
    assert [link.school_id for link in linked] == [entity_of(run, EntityType.SCHOOL, elsewhere)]
    assert changes(sync(district)) == 0


def test_it_updates_a_person_moved_to_a_school_this_sync_creates(district: Path) -> None:
    sync(district)
    orgs = bundles.read(district, "orgs")
    school = next(o for o in orgs if o["type"] == "school")
    new_school = dict(school, sourcedId="school-new-1", name="New Academy", identifier="NEW-1")
    bundles.write(district, "orgs", [*orgs, new_school], bundles.header(district, "orgs"))
    student = next(u for u in bundles.read(district, "users") if u["role"] == "student")

    def move(rows: list[dict]) -> list[dict]:
        for row in rows:
            if row["sourcedId"] == student["sourcedId"]:
                row["orgSourcedIds"] = f"{row['orgSourcedIds']},school-new-1"
        return rows

    bundles.edit(district, "users", move)
    run = sync(district)

    assert counts(run, "schools")["created"] == 1
    assert counts(run, "users")["updated"] == 1
    person = entity_of(run, USER, student["sourcedId"])
    names = set(
        PersonSchool.objects.filter(person_id=person).values_list("school__name", flat=True)
    )
    assert "New Academy" in names and len(names) == 2
    assert changes(sync(district)) == 0


ROSTER_TABLES = (*(spec.target for spec in ORDER), PERSON_SCHOOL, IDENTITY)


def test_a_resync_without_changes_sends_no_write_to_the_roster(district: Path) -> None:
    # The apply skips the statements of what the plan does not do (loader.applier._Planned).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sync(district)
    with CaptureQueriesContext(connection) as queries:
        run = sync(district)

    assert changes(run) == 0
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "WITH"))
        and any(f"INTO {t}" in q["sql"] or f"UPDATE {t} " in q["sql"] for t in ROSTER_TABLES)
    ]
    assert writes == []
