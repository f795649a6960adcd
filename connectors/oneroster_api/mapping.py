"""OneRoster 1.1 REST objects -> normalized records (staging.records), or Rejects.

Where a REST object becomes a record: an org of type school -> SchoolRecord, a class (+ its
course and terms, looked up by sourcedId) -> ClassRecord, a user -> UserRecord, an enrollment ->
EnrollmentRecord. The rules are the CSV connector's (roles kept or skipped alike, grades padded,
status active/tobedeleted), applied to JSON. Real servers are sloppy, so values are read
leniently (reference/oneroster.md §2.1): booleans as true/"true"/1/"1", dates with or without a
time, GUIDRefs whose `type` is wrong (ignored: only `sourcedId` counts) or whose `href` points at
another host (never followed), missing optional fields, extra fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.oneroster_csv.fields import RowError, parse_date
from connectors.oneroster_csv.reader import ROLES, SKIPPED_ROLES
from staging.records import (
    ACTIVE,
    DELETED,
    ClassRecord,
    EnrollmentRecord,
    Record,
    Reject,
    SchoolRecord,
    UserRecord,
)

ENTITY_SINGULAR = {
    "schools": "school",
    "classes": "class",
    "users": "user",
    "enrollments": "enrollment",
}
TRUE = {"true", "1", "yes"}
FALSE = {"false", "0", "no"}


class MappingError(ValueError):
    """This object cannot be used; the message says why."""


@dataclass
class Lookups:
    """What classes and users refer to, read before them (all small collections)."""

    courses: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> title, code
    sessions: dict[str, tuple[str, dt.date | None, dt.date | None]] = field(default_factory=dict)
    non_school_orgs: set[str] = field(default_factory=set)  # districts, departments, …
    has_courses: bool = False  # the server listed courses: an unknown course is an error
    has_sessions: bool = False


def to_record(
    entity: str, obj: Any, *, position: int, lookups: Lookups, source: str
) -> Record | None:
    """The record for one object of `entity`; a Reject naming why; None for one we skip."""
    singular = ENTITY_SINGULAR[entity]
    if not isinstance(obj, dict):
        reason = f"{source} #{position}: not a JSON object"
        return Reject(singular, "", reason, {"value": repr(obj)[:200]}, position)
    try:
        return MAPPERS[entity](obj, lookups, position)
    except MappingError as exc:
        try:
            external_id = text(obj, "sourcedId", strict=False)
        except MappingError:  # the id itself is unusable (a NUL)
            external_id = ""
        reason = f"{source} #{position}: {exc}"
        return Reject(singular, external_id, reason, without_password(obj), position)


# -- one mapper per entity type ---------------------------------------------------------------


def school(obj: dict[str, Any], lookups: Lookups, line: int = 0) -> Record | None:
    if required(obj, "type").lower() != "school":
        return None  # district, department, …: context, not a school
    return SchoolRecord(
        external_id=required(obj, "sourcedId"),
        status=status(obj),
        name=required(obj, "name"),
        school_number=text(obj, "identifier"),
        low_grade="",
        high_grade="",
        raw=obj,
        line=line,
    )


def klass(obj: dict[str, Any], lookups: Lookups, line: int = 0) -> Record | None:
    course_id = ref_id(obj, "course")
    course_title, course_code = "", ""
    if course_id:
        if course_id in lookups.courses:
            course_title, course_code = lookups.courses[course_id]
        elif lookups.has_courses:
            raise MappingError(f"course {course_id!r} is not in /courses")
    names, starts, ends = [], [], []
    for term_id in ref_ids(obj, "terms"):
        if term_id in lookups.sessions:
            title, start, end = lookups.sessions[term_id]
            names.append(title)
            starts.append(start)
            ends.append(end)
        elif lookups.has_sessions:
            raise MappingError(f"term {term_id!r} is not in /academicSessions")
    school_id = ref_id(obj, "school")
    if not school_id:
        raise MappingError("missing required field school")
    return ClassRecord(
        external_id=required(obj, "sourcedId"),
        status=status(obj),
        title=required(obj, "title"),
        school_external_id=school_id,
        class_code=text(obj, "classCode"),
        class_type=text(obj, "classType").lower(),
        location=text(obj, "location"),
        course_title=course_title,
        course_code=course_code,
        term_name=", ".join(names),
        term_start=min((s for s in starts if s), default=None),
        term_end=max((e for e in ends if e), default=None),
        subjects=",".join(values(obj, "subjects")),
        grades=grades(obj),
        periods=",".join(values(obj, "periods")),
        raw=obj,
        line=line,
    )


def user(obj: dict[str, Any], lookups: Lookups, line: int = 0) -> Record | None:
    external_id = required(obj, "sourcedId")
    role = role_of(required(obj, "role"))
    orgs = ref_ids(obj, "orgs")
    if not orgs:
        raise MappingError("missing required field orgs")
    if role is None:
        return None
    return UserRecord(
        external_id=external_id,
        status=status(obj),
        role=role,
        given_name=required(obj, "givenName"),
        middle_name=text(obj, "middleName"),
        family_name=required(obj, "familyName"),
        email=text(obj, "email"),
        username=text(obj, "username"),
        student_number=text(obj, "identifier"),
        grades=grades(obj),
        enabled=boolean(obj, "enabledUser", default=True),
        school_external_ids=tuple(o for o in orgs if o not in lookups.non_school_orgs),
        raw=without_password(obj),
        line=line,
    )


def enrollment(obj: dict[str, Any], lookups: Lookups, line: int = 0) -> Record | None:
    role = role_of(required(obj, "role"))
    class_id, user_id = ref_id(obj, "class"), ref_id(obj, "user")
    if not class_id:
        raise MappingError("missing required field class")
    if not user_id:
        raise MappingError("missing required field user")
    if role is None:
        return None
    # Positional: keywords cost a NamedTuple more than mapping the object does.
    return EnrollmentRecord(
        required(obj, "sourcedId"),  # external_id
        status(obj),
        class_id,  # class_external_id
        ref_id(obj, "school"),  # school_external_id
        user_id,  # user_external_id
        role,
        boolean(obj, "primary", default=False),
        date(obj, "beginDate"),
        date(obj, "endDate"),
        obj,  # raw
        line,
    )


MAPPERS = {"schools": school, "classes": klass, "users": user, "enrollments": enrollment}


# -- lookups ----------------------------------------------------------------------------------


def course_entry(obj: Any) -> tuple[str, tuple[str, str]] | None:
    ident = text(obj, "sourcedId", strict=False) if isinstance(obj, dict) else ""
    if not ident:
        return None
    return ident, (text(obj, "title", strict=False), text(obj, "courseCode", strict=False))


def session_entry(obj: Any) -> tuple[str, tuple[str, dt.date | None, dt.date | None]] | None:
    ident = text(obj, "sourcedId", strict=False) if isinstance(obj, dict) else ""
    if not ident:
        return None
    title = text(obj, "title", strict=False)
    try:
        return ident, (title, date(obj, "startDate"), date(obj, "endDate"))
    except MappingError:
        return ident, (title, None, None)


def org_is_school(obj: Any) -> tuple[str, bool] | None:
    ident = text(obj, "sourcedId", strict=False) if isinstance(obj, dict) else ""
    if not ident:
        return None
    return ident, text(obj, "type", strict=False).lower() == "school"


# -- value readers ----------------------------------------------------------------------------


def text(obj: dict[str, Any], key: str, *, strict: bool = True) -> str:
    value = obj.get(key)
    if type(value) is str:  # the common case first: this runs millions of times
        if "\x00" in value:  # JSON may carry \u0000; PostgreSQL text cannot hold it
            raise MappingError(f"{key} contains a NUL character")
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).strip()
    if strict:
        raise MappingError(f"{key} is a {type(value).__name__}, not text")
    return ""


def required(obj: dict[str, Any], key: str) -> str:
    value = text(obj, key)
    if not value:
        raise MappingError(f"missing required field {key}")
    return value


def status(obj: dict[str, Any]) -> str:
    value = text(obj, "status").lower()
    if value in ("", "active"):
        return ACTIVE
    if value in ("tobedeleted", "inactive", "deleted"):
        return DELETED
    raise MappingError(f"unknown status {obj.get('status')!r} (expected active or tobedeleted)")


def boolean(obj: dict[str, Any], key: str, *, default: bool) -> bool:
    value = obj.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise MappingError(f"{key} {value!r} is not true or false")


def date(obj: dict[str, Any], key: str) -> dt.date | None:
    """A date: YYYY-MM-DD, or a date-time of which the date is kept (the CSV reader's rule)."""
    try:
        return parse_date(text(obj, key), key)
    except RowError as exc:
        raise MappingError(str(exc)) from None


def ref_id(obj: dict[str, Any], key: str) -> str:
    """The sourcedId of a GUIDRef (its type and href are not trusted); a bare id is accepted."""
    return _guid(obj.get(key), key)


def ref_ids(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        value = [value]
    return tuple(i for i in (_guid(v, key) for v in value) if i)


def _guid(value: Any, key: str) -> str:
    if type(value) is dict and type(value.get("sourcedId")) is str:  # the common case first
        if "\x00" in value["sourcedId"]:
            raise MappingError(f"{key} contains a NUL character")
        return value["sourcedId"].strip()
    if value is None:
        return ""
    if isinstance(value, dict):
        value = value.get("sourcedId")
        if value is None:
            return ""
    if isinstance(value, str | int) and not isinstance(value, bool):
        if "\x00" in str(value):
            raise MappingError(f"{key} contains a NUL character")
        return str(value).strip()
    raise MappingError(f"{key} is not a reference (expected an object with a sourcedId)")


def values(obj: dict[str, Any], key: str) -> list[str]:
    """A multi-valued field: a list, or one comma-separated string; blanks dropped."""
    value = obj.get(key)
    if value is None:
        return []
    items: Iterable[Any] = value if isinstance(value, list) else str(value).split(",")
    found = []
    for item in items:
        if isinstance(item, dict | list):
            raise MappingError(f"{key} holds a {type(item).__name__}, not text")
        word = str(item).strip()
        if "\x00" in word:
            raise MappingError(f"{key} contains a NUL character")
        if word:
            found.append(word)
    return found


def grades(obj: dict[str, Any]) -> str:
    """Grade codes, comma-joined, single digits padded to two ('2' -> '02')."""
    return ",".join(g.zfill(2) if g.isdigit() and len(g) == 1 else g for g in values(obj, "grades"))


def role_of(value: str) -> str | None:
    """Our role for a OneRoster role; None for a valid role we do not sync; MappingError if
    unknown."""
    key = value.strip().lower()
    if key in ROLES:
        return ROLES[key]
    if key in SKIPPED_ROLES:
        return None
    raise MappingError(f"unknown role {value!r} (expected student, teacher or administrator)")


def without_password(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as kept in staging: a password never is."""
    if "password" not in obj:
        return obj
    return {k: ("********" if k == "password" and v else v) for k, v in obj.items()}
