"""OneRoster REST objects -> records, with the quirks real servers send."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors.oneroster_api.mapping import Lookups, to_record
from staging.records import (
    ACTIVE,
    DELETED,
    ClassRecord,
    EnrollmentRecord,
    Reject,
    SchoolRecord,
    UserRecord,
)

ELSEWHERE = "https://certs-nj-v2.rosterserver.com/ims/oneroster/v1p1"


def ref(sourced_id: str, kind: str = "org") -> dict[str, str]:
    return {"href": f"{ELSEWHERE}/x/{sourced_id}", "sourcedId": sourced_id, "type": kind}


def lookups() -> Lookups:
    return Lookups(
        courses={"crs-1": ("Algebra I", "ALG1")},
        sessions={
            "t1": ("Fall", dt.date(2025, 8, 25), dt.date(2025, 12, 19)),
            "t2": ("Spring", dt.date(2026, 1, 5), dt.date(2026, 6, 12)),
        },
        non_school_orgs={"dst-1"},
        has_courses=True,
        has_sessions=True,
    )


def record(entity: str, obj: Any) -> Any:
    return to_record(entity, obj, position=7, lookups=lookups(), source=f"/{entity}")


def user(**fields: Any) -> dict[str, Any]:
    obj = {
        "sourcedId": "stu-1",
        "status": "active",
        "dateLastModified": "2025-08-01",  # date only
        "role": "student",
        "givenName": " Zoë ",
        "familyName": "O'Brien-Smith",
        "orgs": [ref("sch-1", "school"), ref("dst-1", "district")],
        "enabledUser": "true",
        "grades": ["2"],
        "identifier": "00012345",
        "password": "p4ss",
        "metadata": {"ext": 1},
        "x_unknown": True,
    }
    return obj | fields


def test_it_maps_a_user_leniently_and_keeps_no_password() -> None:
    found = record("users", user())

    assert isinstance(found, UserRecord)
    assert found.given_name == "Zoë"
    assert found.student_number == "00012345"
    assert found.grades == "02"
    assert found.school_external_ids == ("sch-1",)  # the district is not a school
    assert found.email == found.middle_name == ""  # missing optional fields
    assert found.enabled is True
    assert found.raw["password"] == "********"
    assert found.line == 7


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        (True, True),
        ("true", True),
        (1, True),
        ("1", True),
        (False, False),
        ("false", False),
        (0, False),
        ("0", False),
        (None, True),
    ],
)
def test_it_reads_booleans_however_servers_send_them(value: Any, enabled: bool) -> None:
    assert record("users", user(enabledUser=value)).enabled is enabled


def test_a_user_with_a_role_we_do_not_sync_is_skipped_and_an_unknown_role_rejected() -> None:
    assert record("users", user(role="guardian")) is None

    rejected = record("users", user(role="wizard"))

    assert isinstance(rejected, Reject)
    assert (
        rejected.reason
        == "/users #7: unknown role 'wizard' (expected student, teacher or administrator)"
    )
    assert rejected.raw["password"] == "********"


def test_tobedeleted_means_deleted() -> None:
    assert record("users", user(status="tobedeleted")).status == DELETED
    assert record("users", user(status="active")).status == ACTIVE


def test_a_missing_required_field_or_a_non_object_is_rejected() -> None:
    assert (
        record("users", user(givenName="")).reason == "/users #7: missing required field givenName"
    )
    assert record("users", user(orgs=[])).reason == "/users #7: missing required field orgs"
    assert record("users", "not an object").reason == "/users #7: not a JSON object"


def test_it_maps_a_school_and_skips_other_orgs() -> None:
    school = record(
        "schools",
        {
            "sourcedId": "sch-1",
            "name": "North High",
            "type": "school",
            "identifier": 1234,
            "status": "active",
        },
    )

    assert school == SchoolRecord("sch-1", ACTIVE, "North High", "1234", "", "", school.raw, 7)
    assert record("schools", {"sourcedId": "d", "name": "D", "type": "district"}) is None


def test_it_maps_a_class_with_its_course_and_terms_whatever_the_guidref_types() -> None:
    found = record(
        "classes",
        {
            "sourcedId": "cls-1",
            "title": "Algebra I - P2",
            "classType": "Scheduled",
            "course": ref("crs-1", "academicSession"),  # a wrong type: ignored
            "school": ref("sch-1", "course"),
            "terms": [ref("t2", "term"), ref("t1", "term")],
            "grades": ["9", "10"],
            "subjects": "Math, Algebra",
            "periods": ["2", "3"],
        },
    )

    assert isinstance(found, ClassRecord)
    assert (found.course_title, found.course_code) == ("Algebra I", "ALG1")
    assert found.school_external_id == "sch-1"
    assert found.term_name == "Spring, Fall"
    assert (found.term_start, found.term_end) == (dt.date(2025, 8, 25), dt.date(2026, 6, 12))
    assert (found.grades, found.subjects, found.periods) == ("09,10", "Math,Algebra", "2,3")
    assert found.class_type == "scheduled"


def test_a_class_whose_course_the_server_did_not_list_is_rejected() -> None:
    found = record(
        "classes", {"sourcedId": "c", "title": "T", "school": ref("s"), "course": ref("crs-9")}
    )

    assert found.reason == "/classes #7: course 'crs-9' is not in /courses"


def test_it_maps_an_enrollment_with_dates_with_or_without_time() -> None:
    found = record(
        "enrollments",
        {
            "sourcedId": "enr-1",
            "class": ref("cls-1", "class"),
            "user": ref("tch-1", "user"),
            "school": ref("sch-1"),
            "role": "teacher",
            "primary": "1",
            "beginDate": "2025-08-25",
            "endDate": "2026-06-26T00:00:00Z",
        },
    )

    assert isinstance(found, EnrollmentRecord)
    assert (found.class_external_id, found.user_external_id) == ("cls-1", "tch-1")
    assert found.primary is True
    assert (found.begin_date, found.end_date) == (dt.date(2025, 8, 25), dt.date(2026, 6, 26))


def test_a_bad_date_is_rejected_with_its_field() -> None:
    found = record(
        "enrollments",
        {
            "sourcedId": "e",
            "class": ref("c"),
            "user": ref("u"),
            "role": "student",
            "beginDate": "25/08/2025",
        },
    )

    assert (
        found.reason
        == "/enrollments #7: beginDate '25/08/2025' is not a date (expected YYYY-MM-DD)"
    )
