"""Where Clever v3.0 records become normalized records, quirks included."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors.clever import mapping
from staging.records import ACTIVE, DELETED, ClassRecord, Reject, SchoolRecord, UserRecord


@pytest.mark.parametrize(
    ("clever", "code"),
    [
        ("Kindergarten", "KG"),
        ("1", "01"),
        ("12", "12"),
        ("TransitionalKindergarten", "TK"),
        ("PreKindergarten", "PK"),
        ("PostGraduate", "PS"),
        ("Ungraded", "UG"),
        ("", ""),
        (None, ""),
        ("K", "KG"),
        ("Some very long grade name", "Other"),
    ],
)
def test_it_turns_clever_grades_into_codes(clever: Any, code: str) -> None:
    assert mapping.grade(clever) == code


def test_it_keeps_a_school_with_empty_grade_enums() -> None:
    record = mapping.school(
        {"id": "s1", "name": " North ", "school_number": 7, "low_grade": "", "high_grade": None}
    )
    assert record == SchoolRecord("s1", ACTIVE, "North", "7", "", "", record.raw)


def test_it_rejects_a_school_without_a_name() -> None:
    assert isinstance(mapping.school({"id": "s1", "name": ""}), Reject)


SECTION = {
    "id": "sec1",
    "school": "s1",
    "name": "Algebra I - P3",
    "sis_id": "SIS-9",
    "section_number": "",
    "period": "3",
    "grade": "9",
    "subject": "math",
    "course": "c1",
    "term_id": "t1",
    "teacher": "t-main",
    "teachers": ["t-main", "t-co"],
    "students": ["u1", "u2", "u2", ""],
}


def test_it_maps_a_section_to_a_class_with_its_term_and_course() -> None:
    term = mapping.term({"name": "Fall", "start_date": "2025-08-25", "end_date": "2026-01-23"})
    course = mapping.course({"name": "Algebra I", "number": "MA101"})

    record = mapping.section(SECTION, term=term, course=course)

    assert isinstance(record, ClassRecord)
    assert record.class_code == "SIS-9"  # no section_number: the sis_id
    assert (record.course_title, record.course_code) == ("Algebra I", "MA101")
    assert (record.term_name, record.term_start, record.term_end) == (
        "Fall",
        dt.date(2025, 8, 25),
        dt.date(2026, 1, 23),
    )
    assert (record.subjects, record.grades, record.periods, record.class_type) == (
        "math",
        "09",
        "3",
        "scheduled",
    )


def test_it_derives_enrollments_with_the_primary_teacher_and_co_teachers() -> None:
    records = list(mapping.enrollments(SECTION))

    assert [(r.external_id, r.role, r.primary) for r in records] == [
        ("sec1:t-main", "teacher", True),
        ("sec1:t-co", "teacher", False),
        ("sec1:u1", "student", False),
        ("sec1:u2", "student", False),
    ]
    assert {r.class_external_id for r in records} == {"sec1"}
    assert {r.school_external_id for r in records} == {"s1"}


def test_a_section_without_teachers_has_only_student_enrollments() -> None:
    section = {**SECTION, "teacher": None, "teachers": []}
    assert [r.role for r in mapping.enrollments(section)] == ["student", "student"]


def test_a_primary_teacher_missing_from_teachers_still_counts() -> None:
    section = {**SECTION, "teacher": "t-x", "teachers": ["t-co"], "students": []}
    members = mapping.members(section)
    assert members == [
        mapping.Member("t-x", "teacher", True),
        mapping.Member("t-co", "teacher", False),
    ]


STUDENT = {
    "id": "u1",
    "name": {"first": "Zoë", "middle": None, "last": "O'Brien"},
    "roles": {
        "student": {
            "student_number": "00010001",
            "school": "s1",
            "schools": ["s1", "s2"],
            "grade": "Kindergarten",
            "credentials": {"district_username": "zobrien"},
        }
    },
}


def test_a_student_in_several_schools_keeps_them_all_and_may_have_no_email() -> None:
    record = mapping.user(STUDENT)

    assert isinstance(record, UserRecord)
    assert (record.role, record.given_name, record.middle_name, record.family_name) == (
        "student",
        "Zoë",
        "",
        "O'Brien",
    )
    assert (record.email, record.username, record.student_number, record.grades) == (
        "",
        "zobrien",
        "00010001",
        "KG",
    )
    assert record.school_external_ids == ("s1", "s2")


@pytest.mark.parametrize(
    ("value", "kept"),
    [("a@b.org", "a@b.org"), ("ab.org", ""), ("a@b", ""), ("", ""), (None, ""), ("@b.org", "")],
)
def test_it_keeps_only_plausible_emails(value: Any, kept: str) -> None:
    assert mapping.email(value) == kept


def test_a_user_with_several_roles_is_one_teacher_with_every_school() -> None:
    record = mapping.user(
        {
            "id": "u9",
            "email": "pat@district.org",
            "name": {"first": "Pat", "last": "Lee"},
            "roles": {
                "staff": {"schools": ["s3"], "credentials": {"district_username": "plee"}},
                "teacher": {"school": "s1", "schools": ["s1", "s2"], "legacy_id": "v2-old"},
                "district_admin": {"title": "Coordinator"},
            },
        }
    )

    assert isinstance(record, UserRecord)
    assert record.role == "teacher"
    assert record.school_external_ids == ("s1", "s2", "s3")
    assert record.username == "plee"
    assert record.raw["roles"]["teacher"]["legacy_id"] == "v2-old"  # kept for the v2 -> v3 move


def test_staff_and_district_admins_are_administrators_and_contacts_are_skipped() -> None:
    staff = mapping.user({"id": "a", "name": {"last": "X"}, "roles": {"staff": {"schools": []}}})
    admin = mapping.user({"id": "b", "name": {"first": "Y"}, "roles": {"district_admin": {}}})
    contact = {"id": "c", "name": {"last": "Aaron Berge"}, "roles": {"contact": {}}}

    assert staff.role == admin.role == "administrator"
    assert mapping.user(contact) is None


def test_a_deleted_record_is_delivered_even_when_it_could_not_be_mapped() -> None:
    gone = mapping.deleted("users", {"id": "c", "roles": {"contact": {}}})
    assert (gone.external_id, gone.status) == ("c", DELETED)
    section = mapping.deleted("classes", {"id": "sec1"})
    assert (section.external_id, section.status) == ("sec1", DELETED)


def test_dates_are_read_leniently() -> None:
    assert mapping.date("2/11/2007") == dt.date(2007, 2, 11)
    assert mapping.date("2025-08-25T00:00:00Z") == dt.date(2025, 8, 25)
    assert mapping.date("soon") is None


@pytest.mark.parametrize(
    "roles, previous",
    [
        ({"teacher": {"school": "s1", "legacy_id": "v2-t9"}}, "v2-t9"),
        ({"teacher": {"school": "s1", "legacy_id": "t9"}}, ""),  # the same id: nothing to re-key
        (
            {"staff": {"schools": ["s1"], "legacy_id": ""}, "district_admin": {"legacy_id": "a"}},
            "a",
        ),
        ({"student": {"school": "s1"}}, ""),  # students kept their ids in v3
    ],
)
def test_it_keeps_the_v2_legacy_id_as_the_previous_id(roles: dict, previous: str) -> None:
    record = mapping.user({"id": "t9", "name": {"first": "A", "last": "B"}, "roles": roles})

    assert isinstance(record, UserRecord) and record.previous_external_id == previous


@pytest.mark.parametrize(
    "roles, ids",
    [
        (
            {"student": {"sis_id": " 1001 ", "student_number": "S-7", "state_id": "ST-55"}},
            ("S-7", "1001", "ST-55", ""),
        ),
        (
            {"teacher": {"sis_id": "T-1", "teacher_number": "0042", "state_id": "TS-9"}},
            ("", "T-1", "TS-9", "0042"),
        ),
        # A teacher who is staff too: the teacher role's ids first, staff_id only as a fallback.
        (
            {"teacher": {"teacher_number": "0042"}, "staff": {"staff_id": "STF-3"}},
            ("", "STF-3", "", "0042"),
        ),
        ({"staff": {"staff_id": "STF-3", "schools": []}}, ("", "STF-3", "", "")),
        ({"district_admin": {"title": "Boss"}}, ("", "", "", "")),  # no ids in that role
        ({"student": {"sis_id": None, "state_id": ""}}, ("", "", "", "")),
    ],
)
def test_it_keeps_each_role_s_ids(roles: dict, ids: tuple[str, str, str, str]) -> None:
    record = mapping.user({"id": "u1", "name": {"first": "A", "last": "B"}, "roles": roles})

    assert isinstance(record, UserRecord)
    assert (record.student_number, record.sis_id, record.state_id, record.teacher_number) == ids


def test_a_contact_is_a_person_only_when_contacts_are_synced() -> None:
    contact = {
        "id": "c1",
        "email": "aaron@example.org",
        "name": {"last": "Aaron Berge"},  # Clever: a contact's whole name, in `last`
        "roles": {"contact": {"sis_id": "C-1", "phone": "555-0101", "phone_type": "Cell"}},
    }

    assert mapping.user(contact) is None
    record = mapping.user(contact, contacts=True)
    assert isinstance(record, UserRecord)
    assert (record.role, record.given_name, record.family_name, record.email) == (
        "contact", "", "Aaron Berge", "aaron@example.org",
    )  # fmt: skip
    assert (record.sis_id, record.school_external_ids, record.student_number) == ("C-1", (), "")
    # A teacher who is a contact too stays one person, a teacher, with the teacher's ids.
    both = mapping.user(
        {
            "id": "t1",
            "name": {"first": "A", "last": "B"},
            "roles": {"contact": {"sis_id": "C-2"}, "teacher": {"school": "s1", "sis_id": "T-2"}},
        },
        contacts=True,
    )
    assert (both.role, both.sis_id, both.school_external_ids) == ("teacher", "T-2", ("s1",))
    gone = mapping.deleted("users", contact, contacts=True)
    assert (gone.external_id, gone.status, gone.role) == ("c1", DELETED, "contact")


def test_a_contact_s_students_are_kept_once_each_and_only_for_contacts() -> None:
    contact = {
        "id": "c1",
        "name": {"last": "Aaron Berge"},
        "roles": {
            "contact": {
                "student_relationships": [
                    {"student": "s1", "relationship": "Parent", "type": "Parent/Guardian"},
                    {"student": "s1", "relationship": "Other", "type": "Emergency"},  # again
                    {"student": " s2 ", "relationship": None},
                    {"relationship": "Parent"},  # no student: nothing to link
                    "s3",  # not an object
                    {"student": "s4", "relationship": "x" * 100, "type": ""},
                ]
            }
        },
    }

    record = mapping.user(contact, contacts=True)

    assert record.student_relationships == (
        ("s1", "Parent", "Parent/Guardian"),
        ("s2", "", ""),
        ("s4", "x" * 64, ""),
    )
    teacher = {"id": "t1", "name": {"last": "T"}, "roles": {"teacher": {}, **contact["roles"]}}
    assert mapping.user(teacher).student_relationships == ()  # contacts not synced
    assert len(mapping.user(teacher, contacts=True).student_relationships) == 3
