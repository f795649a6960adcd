"""Where a Clever v3.0 record becomes a normalized record (staging.records).

- school -> SchoolRecord (name, school_number, low/high grade);
- section -> ClassRecord (name, subject, grade, period, term, course; class_code is the
  section_number, else the sis_id), and its `students`/`teachers` id arrays -> one
  EnrollmentRecord per member;
- user -> one UserRecord per Clever user, whatever its roles; a contact (a parent, a guardian)
  only when the provider asks for contacts (`contacts=True`).

Parsing is lenient, as Clever asks: every field but the id may be missing, null or "" (empty
strings are legal values of every Clever enum), strings have no length limit, emails may be
missing or malformed. Records key on Clever's top-level `id`, never on sis_id or email.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from staging.records import (
    ACTIVE,
    DELETED,
    ClassRecord,
    EnrollmentRecord,
    Reject,
    SchoolRecord,
    UserRecord,
)

Record = Mapping[str, Any]

# Clever's grade enum -> the OneRoster-style codes the platform stores for every provider
# (a school's low/high grade holds 16 characters: "TransitionalKindergarten" would not fit).
GRADE_CODES = {
    "infanttoddler": "IT",
    "preschool": "PR",
    "prekindergarten": "PK",
    "transitionalkindergarten": "TK",
    "kindergarten": "KG",
    "k": "KG",  # v1-era data
    "postgraduate": "PS",
    "ungraded": "UG",
    "other": "Other",
}

# Clever roles we keep, strongest first. A Clever user with several roles (teacher + staff +
# district_admin merge into one user; student and contact never merge with others, says
# Clever, though nothing stops the data) is one person, with the role that decides what they
# do in classes: student, then teacher, then administrator for staff and district admins, and
# contact last. Contacts are people only when the provider asks for them.
ROLE_ORDER = ("student", "teacher", "staff", "district_admin")
CONTACT = "contact"
OUR_ROLE = {
    "student": "student",
    "teacher": "teacher",
    "staff": "administrator",
    "district_admin": "administrator",
    CONTACT: "contact",
}


def clever_roles(*, contacts: bool) -> tuple[str, ...]:
    """The Clever roles synced, strongest first."""
    return (*ROLE_ORDER, CONTACT) if contacts else ROLE_ORDER


def text(value: Any) -> str:
    """A cleaned string: None and missing become '', numbers their digits, text is stripped."""
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # Lenient, as everything here: a NUL (JSON \u0000) is dropped, since PostgreSQL text
    # cannot hold it and one stray byte must not fail a district's sync.
    return str(value).replace("\x00", "").strip()


def grade(value: Any) -> str:
    """A Clever grade as a code: "Kindergarten" -> "KG", "3" -> "03", "" -> ""."""
    raw = text(value)
    if not raw:
        return ""
    if raw.isdigit():
        return raw.zfill(2) if len(raw) == 1 else raw
    code = GRADE_CODES.get(raw.lower().replace(" ", "").replace("-", ""))
    if code:
        return code
    return raw if len(raw) <= 16 else "Other"


def date(value: Any) -> dt.date | None:
    """Clever dates: "2025-08-25", an ISO timestamp, or (student dob) "M/D/YYYY"; else None."""
    raw = text(value)
    if not raw:
        return None
    try:
        if len(raw) == 10 and raw[4] == "-":
            return dt.date.fromisoformat(raw)
        if "/" in raw:
            month, day, year = (int(p) for p in raw.split("/"))
            return dt.date(year, month, day)
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def ids(value: Any) -> list[str]:
    """A list of Clever ids, cleaned, in order, without repeats."""
    if not isinstance(value, list):
        return []
    found: list[str] = []
    for item in value:
        item_id = text(item)
        if item_id and item_id not in found:
            found.append(item_id)
    return found


def email(value: Any) -> str:
    """An email, or '' for a missing or malformed one ("emails may be missing the '@' sign"):
    a malformed email must not match a person by email."""
    raw = text(value)
    local, at, domain = raw.partition("@")
    return raw if at and local and "." in domain and " " not in raw else ""


def _reject(entity: str, record: Record, reason: str, line: int) -> Reject:
    return Reject(entity, text(record.get("id")), reason, dict(record), line)


# -- schools ----------------------------------------------------------------------------------


def school(record: Record, *, status: str = ACTIVE, line: int = 0) -> SchoolRecord | Reject:
    external_id = text(record.get("id"))
    name = text(record.get("name"))
    if not external_id:
        return _reject("school", record, "Clever school without an id", line)
    if not name and status == ACTIVE:
        return _reject("school", record, "Clever school without a name", line)
    return SchoolRecord(
        external_id=external_id,
        status=status,
        name=name,
        school_number=text(record.get("school_number")),
        low_grade=grade(record.get("low_grade")),
        high_grade=grade(record.get("high_grade")),
        raw=dict(record),
        line=line,
    )


# -- sections ---------------------------------------------------------------------------------


class Term(NamedTuple):
    name: str
    start: dt.date | None
    end: dt.date | None


class Course(NamedTuple):
    name: str
    number: str


NO_TERM = Term("", None, None)
NO_COURSE = Course("", "")


def term(record: Record | None) -> Term:
    if not record:
        return NO_TERM
    return Term(
        text(record.get("name")), date(record.get("start_date")), date(record.get("end_date"))
    )


def course(record: Record | None) -> Course:
    if not record:
        return NO_COURSE
    return Course(text(record.get("name")), text(record.get("number")))


def section(
    record: Record,
    *,
    term: Term = NO_TERM,
    course: Course = NO_COURSE,
    status: str = ACTIVE,
    line: int = 0,
) -> ClassRecord | Reject:
    external_id = text(record.get("id"))
    title = text(record.get("name"))
    school_id = text(record.get("school"))
    if not external_id:
        return _reject("class", record, "Clever section without an id", line)
    if status == ACTIVE and not title:
        return _reject("class", record, "Clever section without a name", line)
    if status == ACTIVE and not school_id:
        return _reject("class", record, "Clever section without a school", line)
    subject = text(record.get("subject"))
    return ClassRecord(
        external_id=external_id,
        status=status,
        title=title,
        school_external_id=school_id,
        class_code=text(record.get("section_number")) or text(record.get("sis_id")),
        class_type="homeroom" if subject.lower() == "homeroom/advisory" else "scheduled",
        location="",
        course_title=course.name,
        course_code=course.number,
        term_name=term.name,
        term_start=term.start,
        term_end=term.end,
        subjects=subject,
        grades=grade(record.get("grade")),
        periods=text(record.get("period")),
        raw=dict(record),
        line=line,
    )


class Member(NamedTuple):
    user_id: str
    role: str  # "student" | "teacher"
    primary: bool


def members(record: Record) -> list[Member]:
    """A section's members: its teachers (the primary `teacher` flagged, and counted even when
    missing from `teachers`), then its students. A section may have no teacher at all; a user
    listed as both teacher and student is kept once, as a teacher."""
    primary = text(record.get("teacher"))
    teachers = ids(record.get("teachers"))
    if primary and primary not in teachers:
        teachers.insert(0, primary)
    found = [Member(t, "teacher", t == primary) for t in teachers]
    found += [Member(s, "student", False) for s in ids(record.get("students")) if s not in teachers]
    return found


def enrollment_id(section_id: str, user_id: str) -> str:
    """Clever has no enrollment resource: an enrollment is a (section, user) pair, so its
    stable external id is "<section id>:<user id>" (Clever ids hold no colon)."""
    return f"{section_id}:{user_id}"


def enrollment(
    section_id: str, school_id: str, member: Member, *, status: str = ACTIVE, line: int = 0
) -> EnrollmentRecord:
    return EnrollmentRecord(
        external_id=enrollment_id(section_id, member.user_id),
        status=status,
        class_external_id=section_id,
        school_external_id=school_id,
        user_external_id=member.user_id,
        role=member.role,
        primary=member.primary,
        begin_date=None,  # Clever has no per-section membership dates
        end_date=None,
        raw={"section": section_id, "user": member.user_id, "role": member.role},
        line=line,
    )


def enrollments(record: Record, *, line: int = 0) -> Iterator[EnrollmentRecord]:
    section_id = text(record.get("id"))
    school_id = text(record.get("school"))
    if not section_id:
        return
    for member in members(record):
        yield enrollment(section_id, school_id, member, line=line)


# -- users ------------------------------------------------------------------------------------


def kept_roles(record: Record, *, contacts: bool = False) -> list[str]:
    roles = record.get("roles")
    if not isinstance(roles, dict):
        return []
    return [r for r in clever_roles(contacts=contacts) if isinstance(roles.get(r), dict)]


def our_role(record: Record, *, contacts: bool = False) -> str | None:
    """The role this Clever user syncs as, or None when it has no role we keep (a contact,
    unless contacts are synced)."""
    kept = kept_roles(record, contacts=contacts)
    return OUR_ROLE[kept[0]] if kept else None


def user(
    record: Record, *, status: str = ACTIVE, line: int = 0, contacts: bool = False
) -> UserRecord | Reject | None:
    """One person per Clever user; None for a user with no role we keep (a contact, unless
    `contacts`). A contact's whole name is in `name.last` (a Clever quirk): it is kept there,
    as the family name, rather than guessed apart."""
    external_id = text(record.get("id"))
    if not external_id:
        return _reject("user", record, "Clever user without an id", line)
    kept = kept_roles(record, contacts=contacts)
    if not kept:
        return None
    roles = record["roles"]
    name = record.get("name") if isinstance(record.get("name"), dict) else {}
    given, family = text(name.get("first")), text(name.get("last"))
    if status == ACTIVE and not given and not family:
        return _reject("user", record, "Clever user without a name", line)
    schools: list[str] = []
    for role_name in kept:
        role = roles[role_name]
        # student/teacher: `school` (primary) and `schools`; staff: `schools` only;
        # district_admin: no school. A student at several schools keeps them all.
        for school_id in [text(role.get("school")), *ids(role.get("schools"))]:
            if school_id and school_id not in schools:
                schools.append(school_id)
    student = roles.get("student") if kept[0] == "student" else None
    username = next(
        (
            text(roles[r].get("credentials", {}).get("district_username"))
            for r in kept
            if isinstance(roles[r].get("credentials"), dict)
            and text(roles[r]["credentials"].get("district_username"))
        ),
        "",
    )
    return UserRecord(
        external_id=external_id,
        status=status,
        role=OUR_ROLE[kept[0]],
        given_name=given,
        middle_name=text(name.get("middle")),
        family_name=family,
        email=email(record.get("email")),
        username=username,
        student_number=text(student.get("student_number")) if student else "",
        grades=grade(student.get("grade")) if student else "",
        enabled=True,
        school_external_ids=tuple(schools),
        raw=dict(record),
        line=line,
        previous_external_id=_legacy_id(roles, kept, external_id),
        **_identifiers(roles, kept),
        student_relationships=_relationships(roles) if CONTACT in kept else (),
    )


RELATIONSHIP_LENGTH = 64  # the roster's columns; Clever's values are short enum names


def _relationships(roles: Record) -> tuple[tuple[str, str, str], ...]:
    """A contact's students: (student id, relationship, type), the first one per student."""
    found: dict[str, tuple[str, str, str]] = {}
    links = roles[CONTACT].get("student_relationships")
    for link in links if isinstance(links, list) else []:
        student = text(link.get("student")) if isinstance(link, dict) else ""
        if student and student not in found:
            relationship = text(link.get("relationship"))[:RELATIONSHIP_LENGTH]
            found[student] = (student, relationship, text(link.get("type"))[:RELATIONSHIP_LENGTH])
    return tuple(found.values())


# Where each of a person's ids is in a Clever user's roles, in the order the roles are read.
# Staff have their SIS id as `staff_id`; district admins have none of these.
IDENTIFIERS = {
    "sis_id": (
        ("student", "sis_id"),
        ("teacher", "sis_id"),
        ("staff", "staff_id"),
        (CONTACT, "sis_id"),
    ),
    "state_id": (("student", "state_id"), ("teacher", "state_id")),
    "teacher_number": (("teacher", "teacher_number"),),
}


def _identifiers(roles: Record, kept: list[str]) -> dict[str, str]:
    """A person's sis_id, state_id and teacher_number: each from the first of the user's
    roles (strongest first) that has it, or ''. A student's student_number is read above."""
    found: dict[str, str] = {}
    for name, places in IDENTIFIERS.items():
        values = (text(roles[role].get(key)) for role, key in places if role in kept)
        found[name] = next((v for v in values if v), "")
    return found


def _legacy_id(roles: Record, kept: list[str], external_id: str) -> str:
    """The v2 id of a user Clever gave a new id in v3 (teachers, staff, admins; D-V3): the first
    `roles.<role>.legacy_id` that differs from the user's id, or ''."""
    for role_name in kept:
        legacy = text(roles[role_name].get("legacy_id"))
        if legacy and legacy != external_id:
            return legacy
    return ""


# -- deletions --------------------------------------------------------------------------------


def deleted(entity: str, record: Record, *, line: int = 0, contacts: bool = False) -> Any:
    """The DELETED record of a Clever record a `*.deleted` event carries.

    Mapped like an active one where possible (a user's role and schools still matter to the
    provider's role and school filters); a record that cannot be mapped is deleted by id alone.
    """
    external_id = text(record.get("id"))
    if entity == "schools":
        mapped: Any = school(record, status=DELETED, line=line)
    elif entity == "classes":
        mapped = section(record, status=DELETED, line=line)
    else:
        mapped = user(record, status=DELETED, line=line, contacts=contacts)
        if mapped is None:  # no role we keep: delete whatever we knew under this id
            mapped = UserRecord(
                external_id, DELETED, "", "", "", "", "", "", "", "", True, (), dict(record), line
            )
    if isinstance(mapped, Reject):
        return None
    return mapped
