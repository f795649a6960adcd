"""Reads a OneRoster 1.1 CSV bundle into normalized records (staging.records).

Where a OneRoster row becomes a record: orgs.csv (type school) -> SchoolRecord, classes.csv
(+ courses.csv and academicSessions.csv for titles and dates) -> ClassRecord, users.csv (+
roles.csv in the 1.2 layout) -> UserRecord, enrollments.csv -> EnrollmentRecord. A row that
cannot be normalized becomes a Reject naming the file, line and reason; a file that cannot be
read at all raises ConnectorError.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from connectors.base import ConnectorError, EntityMode
from connectors.oneroster_csv import fields as f
from connectors.oneroster_csv.bundle import Bundle
from connectors.oneroster_csv.csvfile import read_rows
from connectors.oneroster_csv.manifest import Manifest, read_manifest
from staging.records import (
    ClassRecord,
    EnrollmentRecord,
    Record,
    Reject,
    SchoolRecord,
    UserRecord,
)

BASE = ("sourcedId", "status", "dateLastModified")
COLUMNS = {
    "orgs": BASE + ("name", "type", "identifier", "parentSourcedId"),
    "academicSessions": BASE
    + ("title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"),
    "courses": BASE
    + ("schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects"),
    "classes": BASE
    + (
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
    ),
    "users": BASE
    + (
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ),
    "roles": BASE + ("userSourcedId", "roleType", "role", "beginDate", "endDate", "orgSourcedId"),
    "enrollments": BASE
    + (
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ),
}
REQUIRED = {
    "orgs": ("sourcedId", "name", "type"),
    "academicSessions": ("sourcedId", "title"),
    "courses": ("sourcedId", "title"),
    "classes": ("sourcedId", "title", "schoolSourcedId"),
    "users": ("sourcedId", "givenName", "familyName", "role", "orgSourcedIds"),
    "users-1.2": ("sourcedId", "givenName", "familyName"),
    "roles": ("userSourcedId", "role"),
    "enrollments": ("sourcedId", "classSourcedId", "userSourcedId", "role"),
}
# Which file carries which entity type.
FILES = {"schools": "orgs", "classes": "classes", "users": "users", "enrollments": "enrollments"}
# Roles we keep, from OneRoster 1.1 user roles and 1.2 role names; other valid roles are skipped.
ROLES = {
    "student": "student",
    "teacher": "teacher",
    "administrator": "administrator",
    "districtadministrator": "administrator",
    "siteadministrator": "administrator",
    "systemadministrator": "administrator",
    "principal": "administrator",
}
SKIPPED_ROLES = {"aide", "proctor", "guardian", "parent", "relative", "counselor"}
ENTITY_SINGULAR = {
    "schools": "school",
    "classes": "class",
    "users": "user",
    "enrollments": "enrollment",
}

# A row and its line -> its record; None for a row that is not one (a district, an aide).
Producer = Callable[[dict[str, str], int], Record | None]


class CsvExtraction:
    """One pass over one bundle. See connectors.base for the contract."""

    def __init__(self, bundle: Bundle, *, mode: str) -> None:
        self.bundle = bundle
        self.mode = mode
        self.manifest: Manifest = read_manifest(bundle)
        self.announced: dict[str, int] = {}  # a CSV bundle announces no totals
        self.received: dict[str, int] = {}
        self.state_after: dict[str, Any] = {}
        self.notes: list[str] = []
        self.modes = {entity: self._mode(name, mode) for entity, name in FILES.items()}
        self._non_school_orgs: set[str] | None = None

    def _mode(self, name: str, run_mode: str) -> EntityMode:
        declared = self.manifest.files.get(name.lower(), "absent")
        if declared == "absent":
            if self.manifest.present and self.bundle.has(f"{name}.csv"):
                return EntityMode.ABSENT  # the manifest rules: a file it calls absent is ignored
            if not self.manifest.present and name in ("orgs", "users", "classes", "enrollments"):
                raise ConnectorError(
                    f"The bundle has no {name}.csv (and no manifest.csv saying it is absent)"
                )
            return EntityMode.ABSENT
        if not self.bundle.has(f"{name}.csv"):
            raise ConnectorError(
                f"manifest.csv declares {name}.csv as {declared}, but the bundle has no {name}.csv"
            )
        if declared == "delta" or run_mode == "delta":
            return EntityMode.DELTA
        return EntityMode.FULL

    def describe(self) -> str:
        return self.bundle.describe()

    def records(self, entity: str) -> Iterator[Record]:
        if self.modes[entity] is EntityMode.ABSENT:
            return iter(())
        producer: Producer = getattr(self, f"_{entity}")()
        return self._map(entity, FILES[entity], producer)

    # -- the row loop shared by every file ----------------------------------------------------

    def _map(self, entity: str, name: str, producer: Producer) -> Iterator[Record]:
        filename = self._filename(name)
        required = REQUIRED[name]
        if name == "users" and self._roles_file_layout():
            required = REQUIRED["users-1.2"]
        rows = read_rows(self.bundle, filename, columns=COLUMNS[name], required=required)
        for line, values, problem in rows:
            try:
                if problem:
                    raise f.RowError(problem)
                record = producer(values, line)
            except f.RowError as exc:
                yield Reject(
                    ENTITY_SINGULAR[entity],
                    f.text(values, "sourcedId"),
                    f"{filename} line {line}: {exc}",
                    _without_password(values),  # rejects are staged too: never keep it
                    line,
                )
                continue
            if record is not None:
                yield record

    def _filename(self, name: str) -> str:
        wanted = f"{name}.csv".lower()
        return next(n for n in self.bundle.names if n == wanted)

    def _rows(self, name: str) -> Iterator[dict[str, str]]:
        """Rows of a lookup file (courses, sessions, orgs, roles); unusable rows are skipped."""
        if not self.bundle.has(f"{name}.csv"):
            return
        filename = self._filename(name)
        rows = read_rows(self.bundle, filename, columns=COLUMNS[name], required=REQUIRED[name])
        for _, values, problem in rows:
            if not problem:
                yield values

    # -- one producer per entity type ---------------------------------------------------------

    def _schools(self) -> Producer:
        def school(row: dict[str, str], line: int) -> Record | None:
            org_type = f.required(row, "type").lower()
            if org_type != "school":
                return None  # district, department, …: context, not a school
            return SchoolRecord(
                external_id=f.required(row, "sourcedId"),
                status=f.status(row),
                name=f.required(row, "name"),
                school_number=f.text(row, "identifier"),
                low_grade="",
                high_grade="",
                raw=row,
                line=line,
            )

        return school

    def _classes(self) -> Producer:
        courses = {
            r["sourcedId"].strip(): (f.text(r, "title"), f.text(r, "courseCode"))
            for r in self._rows("courses")
        }
        sessions: dict[str, tuple[str, dt.date | None, dt.date | None]] = {}
        for r in self._rows("academicSessions"):
            try:
                sessions[r["sourcedId"].strip()] = (
                    f.text(r, "title"),
                    f.date(r, "startDate"),
                    f.date(r, "endDate"),
                )
            except f.RowError:
                sessions[r["sourcedId"].strip()] = (f.text(r, "title"), None, None)
        has_courses = self.bundle.has("courses.csv")
        has_sessions = self.bundle.has("academicSessions.csv")

        def klass(row: dict[str, str], line: int) -> Record | None:
            course_id = f.text(row, "courseSourcedId")
            course_title, course_code = "", ""
            if course_id:
                if course_id in courses:
                    course_title, course_code = courses[course_id]
                elif has_courses:
                    raise f.RowError(f"course {course_id!r} is not in courses.csv")
            names, starts, ends = [], [], []
            for term_id in f.id_list(row, "termSourcedIds"):
                if term_id in sessions:
                    title, start, end = sessions[term_id]
                    names.append(title)
                    starts.append(start)
                    ends.append(end)
                elif has_sessions:
                    raise f.RowError(f"term {term_id!r} is not in academicSessions.csv")
            return ClassRecord(
                external_id=f.required(row, "sourcedId"),
                status=f.status(row),
                title=f.required(row, "title"),
                school_external_id=f.required(row, "schoolSourcedId"),
                class_code=f.text(row, "classCode"),
                class_type=f.text(row, "classType").lower(),
                location=f.text(row, "location"),
                course_title=course_title,
                course_code=course_code,
                term_name=", ".join(names),
                term_start=min((s for s in starts if s), default=None),
                term_end=max((e for e in ends if e), default=None),
                subjects=f.joined(row, "subjects"),
                grades=f.grades(row),
                periods=f.joined(row, "periods"),
                raw=row,
                line=line,
            )

        return klass

    def _users(self) -> Producer:
        non_schools = self._non_school_org_ids()
        roles = self._roles_by_user() if self._roles_file_layout() else None

        def user(row: dict[str, str], line: int) -> Record | None:
            external_id = f.required(row, "sourcedId")
            if roles is not None:
                role_name, orgs = roles.get(external_id, ("", ()))
                if not role_name:
                    raise f.RowError("no role for this user in roles.csv")
            else:
                role_name, orgs = f.required(row, "role"), f.id_list(row, "orgSourcedIds")
                if not orgs:
                    raise f.RowError("missing required field orgSourcedIds")
            role = _role(role_name)
            if role is None:
                return None
            return UserRecord(
                external_id=external_id,
                status=f.status(row),
                role=role,
                given_name=f.required(row, "givenName"),
                middle_name=f.text(row, "middleName"),
                family_name=f.required(row, "familyName"),
                email=f.text(row, "email"),
                username=f.text(row, "username"),
                student_number=f.text(row, "identifier"),
                grades=f.grades(row),
                enabled=f.boolean(row, "enabledUser", default=True),
                school_external_ids=tuple(o for o in orgs if o not in non_schools),
                raw=_without_password(row),
                line=line,
            )

        return user

    def _enrollments(self) -> Producer:
        def enrollment(row: dict[str, str], line: int) -> Record | None:
            role = _role(f.required(row, "role"))
            if role is None:
                return None
            # Positional: keywords cost a NamedTuple more than all of this row's parsing.
            return EnrollmentRecord(
                f.required(row, "sourcedId"),  # external_id
                f.status(row),
                f.required(row, "classSourcedId"),  # class_external_id
                f.text(row, "schoolSourcedId"),  # school_external_id
                f.required(row, "userSourcedId"),  # user_external_id
                role,
                f.boolean(row, "primary", default=False),
                f.date(row, "beginDate"),
                f.date(row, "endDate"),
                row,  # raw
                line,
            )

        return enrollment

    # -- lookups -----------------------------------------------------------------------------

    def _non_school_org_ids(self) -> set[str]:
        """Districts, departments, …: orgs users may belong to that are not schools."""
        if self._non_school_orgs is None:
            self._non_school_orgs = {
                r["sourcedId"].strip()
                for r in self._rows("orgs")
                if f.text(r, "type").lower() != "school"
            }
        return self._non_school_orgs

    def _roles_file_layout(self) -> bool:
        """OneRoster 1.2 moved users' role and orgs into roles.csv."""
        return self.bundle.has("roles.csv") and not self._users_header_has("role")

    def _users_header_has(self, column: str) -> bool:
        filename = self._filename("users")
        try:
            with self.bundle.open_text(filename) as text:
                header = text.readline().lower()
        except UnicodeDecodeError:
            # This peek runs before read_rows, which would say the same thing.
            raise ConnectorError(
                f"{filename} is not UTF-8 text: export it again as UTF-8"
            ) from None
        return column.lower() in [c.strip().strip('"') for c in header.split(",")]

    def _roles_by_user(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        # Held in memory: one short entry per user. Only the 1.2 layout needs it.
        found: dict[str, tuple[str, list[str]]] = {}
        for r in self._rows("roles"):
            user_id = f.text(r, "userSourcedId")
            role, orgs = found.get(user_id, ("", []))
            if f.text(r, "roleType").lower() == "primary" or not role:
                role = f.text(r, "role")
            org = f.text(r, "orgSourcedId")
            if org:
                orgs.append(org)
            found[user_id] = (role, orgs)
        return {k: (role, tuple(orgs)) for k, (role, orgs) in found.items()}


def _role(value: str) -> str | None:
    """Our role for a OneRoster role; None for valid roles we do not sync; RowError if unknown."""
    key = value.strip().lower()
    if key in ROLES:
        return ROLES[key]
    if key in SKIPPED_ROLES:
        return None
    raise f.RowError(f"unknown role {value!r} (expected student, teacher or administrator)")


def _without_password(row: dict[str, str]) -> dict[str, Any]:
    return {k: ("********" if k == "password" and v else v) for k, v in row.items()}
