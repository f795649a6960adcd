"""The synced roster through HTTP: filters, search, ordering, pagination, external ids."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sis_sync.models import (
    Classroom,
    ContactRelationship,
    Enrollment,
    Person,
    PersonSchool,
    School,
)
from tests import bundles
from tests.api_helpers import (
    assert_error,
)
from tests.sync_helpers import sync


@pytest.fixture
def synced(north, south, sample_bundle: Path, tmp_path: Path):
    district = bundles.copy(sample_bundle, tmp_path / "district")
    sync(sample_bundle, tenant="south")  # the same district in another tenant: never listed
    leaving = [s["sourcedId"] for s in bundles.students(district)[:4]]
    sync(district, tenant="north")
    bundles.drop_users(district, set(leaving))
    run = sync(district, tenant="north")
    return {"run": run, "leaving": leaving, "district": district}


def get(client, path: str) -> dict:
    response = client.get(f"/api/v1/tenants/north/{path}")
    assert response.status_code == 200, response.content
    return response.json()


def test_it_lists_users_with_filters_and_external_ids(north_admin, north, synced) -> None:
    people = Person.objects.filter(tenant=north)
    pages = [get(north_admin, f"users?limit=500&offset={offset}") for offset in (0, 500)]
    assert pages[0]["count"] == people.count() > 500
    listed = [u["id"] for page in pages for u in page["results"]]
    assert sorted(listed) == sorted(people.values_list("pk", flat=True))

    inactive = get(north_admin, "users?active=false")
    assert inactive["count"] == 4
    provider = str(synced["run"].provider_id)
    assert {u["externalIds"][provider] for u in inactive["results"]} == set(synced["leaving"])
    assert all(not u["isActive"] and u["deactivatedAt"] for u in inactive["results"])
    assert get(north_admin, "users?active=true")["count"] == people.count() - 4

    students = get(north_admin, "users?role=student&limit=1")
    assert students["count"] == people.filter(role="student").count()
    assert students["results"][0]["role"] == "student"

    one = people.filter(role="student").exclude(student_number="").exclude(email="")
    one = one.order_by("id").first()
    by_email = get(north_admin, f"users?search={one.email.upper()}")
    assert [u["id"] for u in by_email["results"]] == [one.pk]
    by_number = get(north_admin, f"users?search={one.student_number}")
    assert one.pk in [u["id"] for u in by_number["results"]]
    by_name = get(north_admin, f"users?search={one.given_name}+{one.family_name}")
    assert one.pk in [u["id"] for u in by_name["results"]]
    assert all(
        one.given_name.lower() in (u["givenName"] + u["email"] + u["username"]).lower()
        for u in by_name["results"]
    )

    school = School.objects.filter(tenant=north).first()
    at_school = get(north_admin, f"users?school={school.pk}&limit=500")
    assert at_school["count"] == PersonSchool.objects.filter(school=school).count()
    assert all(school.pk in u["schoolIds"] for u in at_school["results"])

    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat().replace("+", "%2B")
    assert get(north_admin, f"users?updatedSince={future}")["count"] == 0


def test_it_orders_and_pages_stably(north_admin, north, synced) -> None:
    by_name = get(north_admin, "users?ordering=familyName,givenName&limit=500")["results"]
    keys = [(u["familyName"], u["givenName"], u["id"]) for u in by_name]
    assert keys == sorted(keys)
    newest = get(north_admin, "users?ordering=-id&limit=3")["results"]
    assert [u["id"] for u in newest] == sorted((u["id"] for u in newest), reverse=True)

    pages = [get(north_admin, f"schools?limit=2&offset={offset}") for offset in (0, 2, 4, 6)]
    seen = [s["id"] for page in pages for s in page["results"]]
    assert len(seen) == len(set(seen)) == min(8, School.objects.filter(tenant=north).count())
    assert get(north_admin, "users?limit=5000")["results"].__len__() == 500  # capped

    bad = north_admin.get("/api/v1/tenants/north/users?ordering=password")
    assert "ordering" in assert_error(bad, 400, "bad_request")["message"]
    bad_date = north_admin.get("/api/v1/tenants/north/users?updatedSince=yesterday")
    assert "updatedSince" in assert_error(bad_date, 400, "invalid")["details"]
    bad_role = north_admin.get("/api/v1/tenants/north/enrollments?role=parent")
    assert "role" in assert_error(bad_role, 400, "invalid")["details"]


def test_it_lists_schools_classes_and_enrollments(north_admin, north, synced) -> None:
    school = School.objects.filter(tenant=north).order_by("id").first()
    schools = get(north_admin, f"schools?search={school.name[:6]}")
    assert school.pk in [s["id"] for s in schools["results"]]
    first = next(s for s in schools["results"] if s["id"] == school.pk)
    assert first["name"] == school.name and first["externalIds"]

    classes = get(north_admin, f"classes?school={school.pk}&limit=500")
    assert classes["count"] == Classroom.objects.filter(school=school).count() > 0
    some_class = classes["results"][0]
    assert some_class["schoolId"] == school.pk and some_class["title"]

    enrolled = get(north_admin, f"enrollments?classId={some_class['id']}&limit=500")
    assert enrolled["count"] == Enrollment.objects.filter(classroom_id=some_class["id"]).count()
    person = enrolled["results"][0]["userId"]
    theirs = get(north_admin, f"enrollments?userId={person}&limit=500")
    assert theirs["count"] == Enrollment.objects.filter(person_id=person).count()
    teachers = get(north_admin, "enrollments?role=teacher")
    assert teachers["count"] == Enrollment.objects.filter(tenant=north, role="teacher").count()
    inactive = get(north_admin, "enrollments?active=false")
    assert inactive["count"] == Enrollment.objects.filter(tenant=north, is_active=False).count() > 0


def test_a_page_costs_the_same_queries_whatever_its_size(north_admin, synced) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    provider = synced["run"].provider_id
    for path in ("tenants/north/schools", "tenants/north/classes", "tenants/north/users",
                 "tenants/north/enrollments", "tenants/north/providers",
                 f"providers/{provider}/runs", "tenants/north/audit",
                 "tenants/north/sync/history"):  # fmt: skip
        counts = []
        for limit in (1, 200):
            with CaptureQueriesContext(connection) as queries:
                page = north_admin.get(f"/api/v1/{path}?limit={limit}").json()
            assert len(page["results"]) == min(limit, page["count"])
            counts.append(len(queries))
        assert counts[0] == counts[1] <= 10, (path, counts)


def test_a_person_shows_their_ids_and_a_contact_their_students(north_admin, north) -> None:
    student = Person.objects.create(
        tenant=north, role="student", given_name="Kim", family_name="Lee",
        student_number="S-1", sis_id="SIS-1", state_id="ST-1",
    )  # fmt: skip
    teacher = Person.objects.create(
        tenant=north, role="teacher", given_name="Ada", family_name="Ray", teacher_number="T-9"
    )
    parent = Person.objects.create(
        tenant=north, role="contact", given_name="", family_name="Jo Lee", sis_id="C-1"
    )
    ContactRelationship.objects.create(
        contact=parent, student=student, relationship="Parent", type="Parent/Guardian"
    )

    listed = {u["id"]: u for u in get(north_admin, "users?limit=500")["results"]}

    assert {k: listed[student.pk][k] for k in ("studentNumber", "sisId", "stateId")} == {
        "studentNumber": "S-1",
        "sisId": "SIS-1",
        "stateId": "ST-1",
    }
    assert listed[teacher.pk]["teacherNumber"] == "T-9" and listed[teacher.pk]["students"] == []
    assert listed[parent.pk]["role"] == "contact"
    assert listed[parent.pk]["students"] == [
        {"studentId": student.pk, "relationship": "Parent", "type": "Parent/Guardian"}
    ]
    assert [u["id"] for u in get(north_admin, "users?role=contact")["results"]] == [parent.pk]
    for exact in ("SIS-1", "ST-1"):
        assert [u["id"] for u in get(north_admin, f"users?search={exact}")["results"]] == [
            student.pk
        ]
    assert [u["id"] for u in get(north_admin, "users?search=T-9")["results"]] == [teacher.pk]
