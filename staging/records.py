"""The normalized records every connector yields and staging accepts.

Fields are already cleaned: text is stripped ('' when missing, never None), dates are
`datetime.date` or None, lists are tuples of strings. `raw` is the source record as a dict,
kept for rejects and debugging. `line` locates the record in its source (a CSV line number,
an API page), 0 when there is no such thing.

`status` is "active" or "deleted": a deleted record asks the loader to deactivate that entity.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

ENTITIES = ("schools", "classes", "users", "enrollments")

ACTIVE = "active"
DELETED = "deleted"


class SchoolRecord(NamedTuple):
    external_id: str
    status: str
    name: str
    school_number: str
    low_grade: str
    high_grade: str
    raw: dict[str, Any]
    line: int = 0


class ClassRecord(NamedTuple):
    external_id: str
    status: str
    title: str
    school_external_id: str
    class_code: str
    class_type: str
    location: str
    course_title: str
    course_code: str
    term_name: str
    term_start: dt.date | None
    term_end: dt.date | None
    subjects: str
    grades: str
    periods: str
    raw: dict[str, Any]
    line: int = 0


class UserRecord(NamedTuple):
    external_id: str
    status: str
    role: str
    given_name: str
    middle_name: str
    family_name: str
    email: str
    username: str
    student_number: str
    grades: str
    enabled: bool
    school_external_ids: tuple[str, ...]
    raw: dict[str, Any]
    line: int = 0
    # The id the source called this person by before (Clever's `legacy_id` after its v2 → v3
    # move): a person known under it is the same person, and is re-keyed to `external_id`.
    previous_external_id: str = ""
    # The source's other ids for the person (Clever's sis_id, state_id, teacher_number); ''
    # where the source has none. Stored as they come, never used to match.
    sis_id: str = ""
    state_id: str = ""
    teacher_number: str = ""
    # A contact's students: (student external id, relationship, type) each, one per student.
    student_relationships: tuple[tuple[str, str, str], ...] = ()


class EnrollmentRecord(NamedTuple):
    external_id: str
    status: str
    class_external_id: str
    school_external_id: str
    user_external_id: str
    role: str
    primary: bool
    begin_date: dt.date | None
    end_date: dt.date | None
    raw: dict[str, Any]
    line: int = 0


class Reject(NamedTuple):
    """A record the connector could not normalize: staged to the run's rejects, not loaded."""

    entity: str
    external_id: str
    reason: str
    raw: dict[str, Any]
    line: int = 0


Record = SchoolRecord | ClassRecord | UserRecord | EnrollmentRecord | Reject
