"""Clever providers end to end: the real pipeline against a local Clever-like server.

The server (tests/fake_clever_server.py) serves a generated district in Clever v3.0 shapes, so
every count can be compared with the generated bundle exactly.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count, Q

from connectors.clever import client as clever_client
from sis_sync.connections import provider_test_connection
from sis_sync.district_generator import generate_district
from sis_sync.models import (
    Classroom,
    ContactRelationship,
    Enrollment,
    ExternalIdentity,
    Person,
    PersonSchool,
    ProviderType,
    RunStatus,
    School,
    SisProvider,
    SisSyncRun,
)
from sis_sync.sync import sync_run_inline, sync_start
from tests import bundles
from tests.factories import ProviderFactory
from tests.fake_clever_server import FakeClever
from tests.sync_helpers import changes

pytestmark = pytest.mark.django_db

PAGE_SIZE = 50  # small pages: every collection spans several


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clever") / "district"
    generate_district(out, students=400, seed=7)
    return out


@pytest.fixture(autouse=True)
def _local_and_quick(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS = True
    monkeypatch.setattr(clever_client, "BACKOFF", 0.01)


class Quirks:
    """What the test district adds to the bundle, the way real Clever data looks."""

    multi_role_teacher = "tch-1"  # also staff at the other school: still one person
    two_school_student = "stu-1"  # at both schools
    no_teacher_section = ""  # a section whose only teacher was removed
    no_grade_school = "sch-2"  # low_grade and high_grade ""
    parent_teacher = "tch-4"  # a teacher who is a contact too: still one person, a teacher
    contacts: tuple[str, ...] = ()  # the Clever ids of the two contacts ("Guardian 1", "2")


@pytest.fixture
def clever(district: Path) -> Iterator[FakeClever]:
    fake = FakeClever.from_bundle(district)
    schools = list(fake.records["schools"])
    teacher = fake.id_of(Quirks.multi_role_teacher)
    fake.get("users", teacher)["roles"]["staff"] = {"schools": [schools[1]], "staff_id": "S-1"}
    student = fake.get("users", fake.id_of(Quirks.two_school_student))
    student["roles"]["student"]["schools"] = schools[:2]
    fake.update("schools", fake.id_of(Quirks.no_grade_school), event=False, low_grade="")
    fake.update("schools", fake.id_of(Quirks.no_grade_school), event=False, high_grade="")
    solo = next(s for s in fake.records["sections"].values() if len(s["teachers"]) == 1)
    solo.update(teacher=None, teachers=[], subject="")
    Quirks.no_teacher_section = solo["sis_id"]
    # Contacts: people of this roster only when the provider asks (includeContacts).
    guardians = [
        {
            "name": {"last": "Guardian 1"},  # Clever puts a contact's whole name here
            "email": "guardian.one@example.org",
            "roles": {"contact": {"sis_id": "G-1", "phone": "555-0101", "phone_type": "Cell",
                                  "student_relationships": [{"student": student["id"],
                                                             "relationship": "Parent",
                                                             "type": "Parent/Guardian"}]}},
        },
        {
            "name": {"last": "Guardian 2"},
            "roles": {"contact": {"sis_id": "G-2",
                                  "student_relationships": [{"student": student["id"]}]}},
        },
    ]  # fmt: skip
    Quirks.contacts = tuple(fake.add("users", g, event=False) for g in guardians)
    parent = fake.get("users", fake.id_of(Quirks.parent_teacher))
    parent["roles"]["contact"] = {"sis_id": "G-3", "student_relationships": []}
    fake.event("districts", "updated", fake.get("districts", fake.district_id))
    with fake:
        yield fake


def make_provider(
    fake: FakeClever, *, options: dict[str, Any] | None = None, **config: Any
) -> SisProvider:
    settings = {
        "districtId": fake.district_id,
        "clientId": fake.client_id,
        "clientSecret": fake.client_secret,
        "baseUrl": fake.base_url,
        "pageSize": PAGE_SIZE,
        **config,
    }
    return ProviderFactory(
        provider_type=ProviderType.CLEVER, config=settings, options=options or {}
    )


def run(provider: SisProvider, mode: str = "full") -> SisSyncRun:
    return sync_run_inline(run_id=sync_start(provider=provider, is_manual=True, mode=mode).pk)


def person(provider: SisProvider, clever_id: str) -> Person:
    identity = ExternalIdentity.objects.get(
        provider=provider, entity_type="user", external_id=clever_id
    )
    return Person.objects.get(pk=identity.entity_id)


def classroom(provider: SisProvider, clever_id: str) -> Classroom:
    identity = ExternalIdentity.objects.get(
        provider=provider, entity_type="class", external_id=clever_id
    )
    return Classroom.objects.get(pk=identity.entity_id)


def created(run: SisSyncRun) -> dict[str, int]:
    return {entity: run.stats[entity]["created"] for entity in ("schools", "classes", "users")} | {
        "enrollments": run.stats["enrollments"]["created"]
    }


# -- full syncs -----------------------------------------------------------------------------


def test_it_syncs_a_district_with_counts_equal_to_the_bundle(
    clever: FakeClever, district: Path
) -> None:
    # Faults on the way: a rate limit with a plain-text body, a server error.
    clever.fail(
        "/v3.0/users",
        429,
        times=2,
        body="Too Many Requests",
        headers={"X-RateLimit-Reset": str(int(time.time()))},
    )
    clever.fail("/v3.0/sections", 500, body='{"message": "Internal Server Error"}')
    provider = make_provider(clever)

    first = run(provider)

    assert first.status == RunStatus.SUCCESS, first.error_message
    users = bundles.read(district, "users")
    schools = [o for o in bundles.read(district, "orgs") if o["type"] == "school"]
    assert created(first) == {
        "schools": len(schools),
        "classes": len(bundles.read(district, "classes")),
        "users": len(users),
        # the quirk section lost its only teacher
        "enrollments": len(bundles.read(district, "enrollments")) - 1,
    }
    assert first.stats["users"]["rejected"] == first.stats["enrollments"]["rejected"] == 0
    for role in ("student", "teacher", "administrator"):
        expected = sum(1 for u in users if u["role"] == role)
        assert Person.objects.filter(role=role, is_active=True).count() == expected
    assert School.objects.count() == len(schools)
    assert not Person.objects.filter(role="contact").exists()  # contacts were not asked for
    assert Enrollment.objects.filter(is_active=True).count() == created(first)["enrollments"]

    # The quirks, as they landed.
    teacher = person(provider, clever.id_of(Quirks.multi_role_teacher))
    assert teacher.role == "teacher"
    assert PersonSchool.objects.filter(person=teacher).count() == 2  # teacher + staff schools
    student = person(provider, clever.id_of(Quirks.two_school_student))
    assert PersonSchool.objects.filter(person=student).count() == 2
    school = School.objects.get(name=clever.get("schools", clever.id_of("sch-2"))["name"])
    assert (school.low_grade, school.high_grade) == ("", "")
    solo = classroom(provider, clever.id_of(Quirks.no_teacher_section))
    assert not solo.enrollments.filter(role="teacher").exists()
    teachers = Count("enrollments", filter=Q(enrollments__role="teacher"))
    assert Classroom.objects.annotate(n=teachers).filter(n__gte=2).exists()  # co-teachers
    assert (
        Enrollment.objects.filter(role="teacher", primary=True).count()
        == len(bundles.read(district, "classes")) - 1
    )
    no_email = [u for u in users if u["role"] == "student" and not u["email"]]
    assert no_email and Person.objects.filter(role="student", email="").count() == len(no_email)

    # How it asked: one token fetch, the configured page size, every list paged.
    assert clever.paths("/oauth/tokens") == ["/oauth/tokens"]
    lists = [r for r in clever.requests if r["path"] != "/oauth/tokens"]
    assert {r["query"].get("limit") for r in lists if "ending_before" not in r["query"]} == {
        str(PAGE_SIZE)
    }
    assert len(clever.paths("/v3.0/users")) > 10
    assert first.state_after["cleverEventId"] == clever.events[-1]["id"]

    second = run(provider)

    assert second.status == RunStatus.SUCCESS, second.error_message
    assert changes(second) == 0
    assert second.stats["enrollments"]["unchanged"] == created(first)["enrollments"]


IDS = ("sis_id", "student_number", "state_id", "teacher_number")


def stored_ids(provider: SisProvider) -> dict[str, tuple[str, ...]]:
    """Each person this provider knows, by Clever id: their ids as stored."""
    people = {p.pk: p for p in Person.objects.all()}
    return {
        i.external_id: tuple(getattr(people[i.entity_id], f) for f in IDS)
        for i in ExternalIdentity.objects.filter(provider=provider, entity_type="user")
    }


def test_it_stores_each_person_s_sis_state_and_teacher_ids(
    clever: FakeClever, district: Path
) -> None:
    provider = make_provider(clever)

    assert run(provider).status == RunStatus.SUCCESS

    expected = {}
    for u in bundles.read(district, "users"):
        number = u["identifier"]
        expected[clever.id_of(u["sourcedId"])] = {
            "student": (u["sourcedId"], number, f"ST{number}", ""),
            "teacher": (u["sourcedId"], "", f"TS{number}", number),
            "administrator": ("", "", "", ""),  # Clever district admins have no such ids
        }[u["role"]]
    assert stored_ids(provider) == expected
    # The multi-role teacher keeps the teacher role's sis_id, not the staff role's staff_id.
    assert person(provider, clever.id_of(Quirks.multi_role_teacher)).sis_id == "tch-1"
    staff_only = clever.add(
        "users",
        {"name": {"first": "Sol", "last": "Staff"}, "roles": {"staff": {"staff_id": "STF-77"}}},
    )
    assert run(provider).status == RunStatus.SUCCESS
    assert stored_ids(provider)[staff_only] == ("STF-77", "", "", "")


def test_a_state_id_changed_by_an_event_updates_exactly_that_person(clever: FakeClever) -> None:
    provider = make_provider(clever)
    assert run(provider).status == RunStatus.SUCCESS
    before = stored_ids(provider)
    student_id, teacher_id = clever.id_of("stu-5"), clever.id_of("tch-3")
    roles = copy.deepcopy(clever.get("users", student_id)["roles"])
    roles["student"]["state_id"] = "ST-NEW-5"
    clever.update("users", student_id, roles=roles)
    roles = copy.deepcopy(clever.get("users", teacher_id)["roles"])
    roles["teacher"]["teacher_number"] = "T-NEW-3"
    clever.update("users", teacher_id, roles=roles)

    delta = run(provider, mode="delta")

    assert delta.status == RunStatus.SUCCESS, delta.error_message
    assert delta.mode == "delta"
    assert delta.stats["users"]["updated"] == 2 and changes(delta) == 2
    after = stored_ids(provider)
    assert after[student_id] == (*before[student_id][:2], "ST-NEW-5", "")
    assert after[teacher_id] == (*before[teacher_id][:3], "T-NEW-3")
    assert {k: v for k, v in after.items() if k not in (student_id, teacher_id)} == {
        k: v for k, v in before.items() if k not in (student_id, teacher_id)
    }
    again = run(provider)  # a full sync agrees with what the delta stored
    assert again.status == RunStatus.SUCCESS and changes(again) == 0, again.stats


def test_the_connection_test_checks_the_token_and_district_and_counts(
    clever: FakeClever, district: Path
) -> None:
    result = provider_test_connection(provider=make_provider(clever))

    users = bundles.read(district, "users")
    students, teachers, admins = (
        sum(1 for u in users if u["role"] == role)
        for role in ("student", "teacher", "administrator")
    )
    assert result.success, result.message
    assert result.message == (
        f"Clever district Lakeview Unified School District ({clever.district_id}): the token "
        f"works; 2 schools, {len(bundles.read(district, 'classes'))} sections, {students} "
        f"students, {teachers} teachers, 1 staff, {admins} district admins; events are on"
    )

    wrong = provider_test_connection(provider=make_provider(clever, districtId="someone-else"))
    assert not wrong.success
    assert wrong.message == (
        "Clever has no token for district someone-else: the district has not connected this "
        "app, or has disconnected it"
    )


# -- contacts -------------------------------------------------------------------------------


def test_contacts_sync_as_people_when_the_provider_asks_for_them(
    clever: FakeClever, district: Path
) -> None:
    provider = make_provider(clever, options={"includeContacts": True})
    # A teacher another provider brought in, with the first contact's email: not the contact.
    elsewhere = Person.objects.create(
        tenant=provider.tenant, role="teacher", given_name="Pat", family_name="Parent",
        email="guardian.one@example.org",
    )  # fmt: skip
    untouched = elsewhere.updated_at

    first = run(provider)

    assert first.status == RunStatus.SUCCESS, first.error_message
    users = bundles.read(district, "users")
    assert first.stats["users"]["created"] == len(users) + 2  # the two contacts
    contacts = Person.objects.filter(role="contact").order_by("family_name")
    assert [(p.given_name, p.family_name, p.sis_id, p.email) for p in contacts] == [
        ("", "Guardian 1", "G-1", "guardian.one@example.org"),
        ("", "Guardian 2", "G-2", ""),
    ]
    assert [person(provider, c).pk for c in Quirks.contacts] == [p.pk for p in contacts]
    assert not PersonSchool.objects.filter(person__role="contact").exists()
    assert not Enrollment.objects.filter(person__role="contact").exists()
    parent_teacher = person(provider, clever.id_of(Quirks.parent_teacher))
    assert (parent_teacher.role, parent_teacher.sis_id) == ("teacher", Quirks.parent_teacher)
    elsewhere.refresh_from_db()
    assert elsewhere.role == "teacher" and elsewhere.updated_at == untouched
    assert not ExternalIdentity.objects.filter(entity_type="user", entity_id=elsewhere.pk)
    assert Person.objects.count() == len(users) + 2 + 1
    assert clever.paths("/v3.0/users").count("/v3.0/users") > 0
    assert any(r["query"].get("role") == "contact" for r in clever.requests)
    tested = provider_test_connection(provider=provider)
    admins = sum(1 for u in users if u["role"] == "administrator")
    # The parent teacher is listed among the contacts too (one person all the same).
    assert tested.success and f"{admins} district admins, 3 contacts;" in tested.message

    # Events: a contact created, one renamed, one deleted.
    new = clever.add(
        "users",
        {"name": {"last": "Guardian 3"}, "roles": {"contact": {"sis_id": "G-9"}}},
    )
    clever.update("users", Quirks.contacts[1], name={"last": "Guardian Two"})
    clever.delete("users", Quirks.contacts[0])

    delta = run(provider, mode="delta")

    assert delta.status == RunStatus.SUCCESS, delta.error_message
    assert delta.mode == "delta"
    assert {k: v for k, v in delta.stats["users"].items() if k != "unchanged"} == {
        "created": 1,
        "updated": 1,
        "deactivated": 1,
        "reactivated": 0,
        "rejected": 0,
    }
    assert changes(delta) == 3
    assert (person(provider, new).role, person(provider, new).sis_id) == ("contact", "G-9")
    assert person(provider, Quirks.contacts[1]).family_name == "Guardian Two"
    assert not person(provider, Quirks.contacts[0]).is_active
    assert Person.objects.filter(role="contact", is_active=True).count() == 2
    again = run(provider)
    assert again.status == RunStatus.SUCCESS and changes(again) == 0, again.stats


def links(provider: SisProvider) -> set[tuple[str, str, str, str]]:
    """Every contact's links, as (contact's Clever id, student's, relationship, type)."""
    ids = dict(
        ExternalIdentity.objects.filter(provider=provider, entity_type="user").values_list(
            "entity_id", "external_id"
        )
    )
    return {
        (ids[r.contact_id], ids[r.student_id], r.relationship, r.type)
        for r in ContactRelationship.objects.all()
    }


def relationships(*links: tuple[str, str, str]) -> dict[str, Any]:
    return {"student_relationships": [
        {"student": s, "relationship": r, "type": t} for s, r, t in links
    ]}  # fmt: skip


def test_a_contact_s_links_to_students_follow_the_source(clever: FakeClever) -> None:
    provider = make_provider(clever, options={"includeContacts": True})
    guardian_1, guardian_2 = Quirks.contacts
    child = clever.id_of(Quirks.two_school_student)

    assert run(provider).status == RunStatus.SUCCESS
    assert links(provider) == {
        (guardian_1, child, "Parent", "Parent/Guardian"),
        (guardian_2, child, "", ""),
    }

    # Guardian 2 now has a new student (created in the same delta) and another one as an
    # emergency contact; guardian 1's links change and nothing else; a new contact links up.
    school = clever.get("users", child)["roles"]["student"]["school"]
    baby = clever.add(
        "users",
        {"name": {"first": "Baby", "last": "New"}, "roles": {"student": {"school": school}}},
    )
    sibling = clever.id_of("stu-5")
    clever.update(
        "users",
        guardian_2,
        roles={"contact": relationships((baby, "Parent", "Parent/Guardian"),
                                        (sibling, "Aunt/Uncle", "Emergency"))},
    )  # fmt: skip
    clever.update(
        "users", guardian_1, roles={"contact": relationships((child, "Grandparent", "Family"))}
    )
    new = clever.add(
        "users",
        {"name": {"last": "Guardian 3"},
         "roles": {"contact": relationships((sibling, "Parent", "Primary"),
                                            ("no-such-student", "Parent", ""))}},
    )  # fmt: skip

    delta = run(provider, mode="delta")

    assert delta.status == RunStatus.SUCCESS, delta.error_message
    assert delta.stats["users"]["created"] == 2 and delta.stats["users"]["updated"] == 2
    assert links(provider) == {
        (guardian_1, child, "Grandparent", "Family"),
        (guardian_2, baby, "Parent", "Parent/Guardian"),
        (guardian_2, sibling, "Aunt/Uncle", "Emergency"),
        (new, sibling, "Parent", "Primary"),  # a student nobody sent is no link
    }
    # A full sync agrees with what the delta stored; links nobody changed stay as they are.
    again = run(provider)
    assert again.status == RunStatus.SUCCESS and changes(again) == 0, again.stats
    clever.update("users", new, event=False, roles={"contact": relationships()})
    emptied = run(provider)
    assert emptied.stats["users"]["updated"] == 1 and changes(emptied) == 1
    assert {link[0] for link in links(provider)} == {guardian_1, guardian_2}


def test_the_roles_option_can_leave_contacts_out_or_take_only_them(clever: FakeClever) -> None:
    only = make_provider(clever, options={"includeContacts": True, "roles": ["contact"]})

    done = run(only)

    assert done.status == RunStatus.SUCCESS, done.error_message
    assert done.stats["users"]["created"] == 2
    assert set(Person.objects.values_list("role", flat=True)) == {"contact"}
    asked = {r["query"].get("role") for r in clever.requests if r["path"] == "/v3.0/users"}
    assert asked == {"contact"}


# -- tokens and failures --------------------------------------------------------------------


def test_a_rejected_token_fails_the_run_with_an_admin_message_and_no_token(
    clever: FakeClever,
) -> None:
    stale = "f" * 40
    provider = make_provider(clever, accessToken=stale, clientId="", clientSecret="")

    failed = run(provider)

    assert failed.status == RunStatus.FAILURE
    assert failed.error_message == (
        "Clever rejected the token: the district may have disconnected the app, or the "
        "configured accessToken is wrong or was rotated (Clever said: Invalid token)"
    )
    assert stale not in failed.error_message
    assert Person.objects.count() == 0


def test_a_rotated_token_is_fetched_again_and_the_run_goes_on(clever: FakeClever) -> None:
    provider = make_provider(clever, accessToken=clever.token)
    old = clever.token
    new = clever.rotate_token()

    done = run(provider)

    assert done.status == RunStatus.SUCCESS, done.error_message
    assert clever.paths("/oauth/tokens") == ["/oauth/tokens"]
    used = [r["auth"] for r in clever.requests if r["path"].startswith("/v3.0")]
    assert used[0] == f"Bearer {old}" and set(used[1:]) == {f"Bearer {new}"}


def test_wrong_app_credentials_fail_the_run_without_showing_the_secret(clever: FakeClever) -> None:
    provider = make_provider(clever, clientSecret="not-the-secret-at-all")

    failed = run(provider)

    assert failed.status == RunStatus.FAILURE
    assert failed.error_message.startswith(
        "Clever rejected the app's clientId/clientSecret when asked for the district token"
    )
    assert "not-the-secret-at-all" not in failed.error_message


# -- deltas ---------------------------------------------------------------------------------


def sections_with(fake: FakeClever, user_id: str) -> list[dict[str, Any]]:
    return [s for s in fake.records["sections"].values() if user_id in s["students"]]


def test_a_delta_applies_exactly_the_events(clever: FakeClever) -> None:
    provider = make_provider(clever)
    assert run(provider).status == RunStatus.SUCCESS
    provider.refresh_from_db()
    cursor = provider.sync_state["cleverEventId"]
    sections = list(clever.records["sections"].values())
    school = sections[0]["school"]

    # A new student, put into a class.
    new_student = clever.add(
        "users",
        {
            "name": {"first": "Ana", "last": "Núñez"},
            "roles": {"student": {"school": school, "schools": [school], "grade": "1"}},
        },
    )
    target = sections[0]
    clever.update("sections", target["id"], students=[*target["students"], new_student])
    # A teacher's new name.
    renamed = clever.id_of("tch-2")
    clever.update("users", renamed, name={"first": "Renamed", "middle": "", "last": "Teacher"})
    # A student who leaves: out of every class, then deleted.
    leaver = clever.id_of("stu-9")
    leaver_classes = sections_with(clever, leaver)
    for section in leaver_classes:
        clever.update(
            "sections", section["id"], students=[u for u in section["students"] if u != leaver]
        )
    clever.delete("users", leaver)
    # A student who moves from one class to another of the same period.
    mover = sections[3]["students"][0]
    source = sections[3]
    dest = next(
        s
        for s in sections
        if s["period"] == source["period"]
        and s["school"] == source["school"]
        and mover not in s["students"]
    )
    clever.update("sections", source["id"], students=source["students"][1:])
    clever.update("sections", dest["id"], students=[*dest["students"], mover])
    # A new section with a teacher and two students; a deleted one; a renamed one.
    teacher = sections[5]["teacher"]
    pair = sections[5]["students"][:2]
    new_section = clever.add(
        "sections",
        {
            "name": "Robotics Club",
            "school": sections[5]["school"],
            "subject": "technology and engineering",
            "grade": "",
            "teacher": teacher,
            "teachers": [teacher],
            "students": pair,
        },
    )
    dropped = sections[10]
    clever.delete("sections", dropped["id"])
    clever.update("sections", sections[11]["id"], name="Renamed Section")
    # Contacts come and change: nothing to this provider, which did not ask for them.
    contact = clever.add("users", {"name": {"last": "New Guardian"}, "roles": {"contact": {}}})
    clever.update("users", Quirks.contacts[0], name={"last": "Renamed Guardian"})

    delta = run(provider, mode="delta")

    assert delta.status == RunStatus.SUCCESS, delta.error_message
    assert delta.mode == "delta" and set(delta.entity_modes.values()) == {"delta"}
    dropped_members = len(dropped["students"]) + len(dropped["teachers"])
    assert {k: v for k, v in delta.stats["users"].items() if k not in ("unchanged",)} == {
        "created": 1,
        "updated": 1,
        "deactivated": 1,
        "reactivated": 0,
        "rejected": 0,
    }
    assert {k: v for k, v in delta.stats["classes"].items() if k not in ("unchanged",)} == {
        "created": 1,
        "updated": 1,
        "deactivated": 1,
        "reactivated": 0,
        "rejected": 0,
    }
    assert {k: v for k, v in delta.stats["enrollments"].items() if k not in ("unchanged",)} == {
        "created": 1 + 1 + 3,  # the new student, the mover, the new section
        "updated": 0,
        "deactivated": len(leaver_classes) + 1 + dropped_members,  # leaver, mover, dropped
        "reactivated": 0,
        "rejected": 0,
    }
    assert changes(delta) == 3 + 3 + 5 + len(leaver_classes) + 1 + dropped_members
    assert delta.notes and delta.notes[0].startswith(f"Read {len(clever.events) - 1} Clever events")
    assert not ExternalIdentity.objects.filter(external_id__in=[contact, *Quirks.contacts])

    assert person(provider, new_student).is_active
    assert person(provider, renamed).given_name == "Renamed"
    assert not person(provider, leaver).is_active
    moved = person(provider, mover)
    assert moved.enrollments.get(classroom=classroom(provider, dest["id"])).is_active
    assert not moved.enrollments.get(classroom=classroom(provider, source["id"])).is_active
    assert classroom(provider, new_section).enrollments.filter(is_active=True).count() == 3
    assert not classroom(provider, dropped["id"]).is_active
    assert classroom(provider, sections[11]["id"]).title == "Renamed Section"
    provider.refresh_from_db()
    assert provider.sync_state["cleverEventId"] == clever.events[-1]["id"] != cursor

    # Idempotent: the same events again change nothing; so does a full sync of the result.
    provider.sync_state = {**provider.sync_state, "cleverEventId": cursor}
    provider.save(update_fields=["sync_state"])
    again = run(provider, mode="delta")
    assert again.mode == "delta" and changes(again) == 0, again.stats
    full = run(provider)
    assert full.status == RunStatus.SUCCESS and changes(full) == 0, full.stats


def test_an_expired_event_cursor_falls_back_to_a_full_sync_and_says_so(
    clever: FakeClever,
) -> None:
    provider = make_provider(clever)
    assert run(provider).status == RunStatus.SUCCESS
    leaver = clever.id_of("stu-3")
    for section in sections_with(clever, leaver):
        clever.update(
            "sections", section["id"], students=[u for u in section["students"] if u != leaver]
        )
    clever.delete("users", leaver)
    clever.expire_events()  # the stored cursor drops out of the feed
    clever.event("districts", "updated", clever.get("districts", clever.district_id))

    fallback = run(provider, mode="delta")

    assert fallback.status == RunStatus.SUCCESS, fallback.error_message
    assert fallback.mode == "full" and set(fallback.entity_modes.values()) == {"full"}
    assert fallback.notes == [
        "Clever no longer has the event this provider last synced to (Clever keeps events 30 "
        "days): ran a full sync instead"
    ]
    assert fallback.stats["users"]["deactivated"] == 1  # the full sync saw the leaver go
    provider.refresh_from_db()
    assert provider.sync_state["cleverEventId"] == clever.events[-1]["id"]

    # A cursor older than the retention window is not even tried.
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    provider.sync_state = {**provider.sync_state, "cleverEventAt": old.isoformat()}
    provider.save(update_fields=["sync_state"])
    aged = run(provider, mode="delta")
    assert aged.mode == "full" and changes(aged) == 0
    assert aged.notes == [
        "The stored Clever event cursor is 40 days old, older than the 30 days Clever keeps "
        "events: ran a full sync instead"
    ]


def test_without_events_enabled_every_delta_runs_as_a_full_sync(clever: FakeClever) -> None:
    clever.events_enabled = False
    provider = make_provider(clever)

    first = run(provider)
    second = run(provider, mode="delta")

    assert first.status == second.status == RunStatus.SUCCESS
    assert first.notes == [
        "Clever events are not enabled for this app (Clever dashboard: the app's Settings, "
        "Integrations, Enable events): delta syncs will run as full syncs"
    ]
    assert second.mode == "full"
    assert second.notes[0].startswith("No Clever event cursor is stored")
    assert changes(second) == 0


def test_a_teacher_clever_gave_a_new_id_stays_the_same_person(clever: FakeClever) -> None:
    """Clever's v2 → v3 move gave teachers new ids, the old one in roles.teacher.legacy_id
    (reference/clever.md): the person is re-keyed, not deactivated and created again."""
    provider = make_provider(clever)
    assert run(provider).status == RunStatus.SUCCESS
    old_id = clever.id_of("tch-2")
    before = person(provider, old_id)
    people = Person.objects.count()
    with clever.lock:
        record = clever.records["users"].pop(old_id)
        new_id = clever.new_id()
        record["id"] = new_id
        record["roles"]["teacher"]["legacy_id"] = old_id
        clever.records["users"][new_id] = record
        for section in clever.records["sections"].values():
            section["teachers"] = [new_id if t == old_id else t for t in section["teachers"]]
            if section.get("teacher") == old_id:
                section["teacher"] = new_id

    again = run(provider)

    assert again.status == RunStatus.SUCCESS, again.error_message
    after = person(provider, new_id)
    assert after.pk == before.pk and after.is_active
    assert Person.objects.count() == people
    assert again.stats["users"]["deactivated"] == 0 and again.stats["users"]["created"] == 0
    assert not ExternalIdentity.objects.filter(
        provider=provider, entity_type="user", external_id=old_id
    ).exists()
    assert Enrollment.objects.filter(person=after, is_active=True).exists()
    # Another sync with the new id changes nothing more.
    third = run(provider)
    assert third.stats["users"]["updated"] == 0 and third.stats["users"]["created"] == 0


def test_an_old_id_claimed_by_two_users_re_keys_neither(clever: FakeClever) -> None:
    provider = make_provider(clever)
    assert run(provider).status == RunStatus.SUCCESS
    old_id = clever.id_of("tch-2")
    before = person(provider, old_id)
    with clever.lock:
        record = clever.records["users"].pop(old_id)
        for n in (1, 2):
            twin = {**record, "id": clever.new_id(), "email": f"twin{n}@example.org"}
            twin["roles"] = {"teacher": {**record["roles"]["teacher"], "legacy_id": old_id}}
            clever.records["users"][twin["id"]] = twin

    again = run(provider, mode="full")

    assert again.stats["users"]["created"] == 2  # ambiguous: no one inherits the old person
    before.refresh_from_db()
    # PARTIAL: the sections still name the old id, whose enrollments are now rejected.
    assert again.status in (RunStatus.SUCCESS, RunStatus.PARTIAL), again.error_message
    assert again.stats["users"]["deactivated"] == 1 and not before.is_active
