"""Property tests of the OneRoster CSV reader: what is written comes back; garbage never crashes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError
from connectors.oneroster_csv.bundle import Bundle
from connectors.oneroster_csv.reader import CsvExtraction
from staging.records import (
    ACTIVE,
    DELETED,
    ENTITIES,
    ClassRecord,
    EnrollmentRecord,
    Reject,
    SchoolRecord,
    UserRecord,
)

FUZZ = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Rows = list[dict[str, str]]

# Any character but NUL and surrogates, with the ones CSV cares about drawn often.
SPECIAL = st.sampled_from([",", '"', "\n", "\r", " ", "\t", "\ufeff", "\u2028", "é", "字"])
CHAR = st.one_of(SPECIAL, st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
TEXT = st.text(CHAR, max_size=12)
NAME = TEXT.filter(lambda s: s.strip() != "")
# Ids go into comma-separated lists, so they hold no comma.
ID = st.text(
    st.one_of(
        st.sampled_from([" ", '"', "\n", "-", "é"]),
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00,"),
    ),
    min_size=1,
    max_size=8,
).filter(lambda s: s.strip() != "")
STATUS = st.sampled_from(["", "active", "Active", " tobedeleted ", "TOBEDELETED", "inactive"])
MODIFIED = st.sampled_from(["", "2025-05-01T18:25:43.511Z", "2025-05-01", "2017-05-06 08:01:05"])
GRADES = st.lists(st.sampled_from(["KG", "PK", "01", "2", "9", "10", "12", "Other"]), max_size=3)
BOOLEAN = st.sampled_from(
    [("", None), ("true", True), ("FALSE", False), ("1", True), ("no", False)]
)
SEPARATOR = st.sampled_from([",", ", ", " ,"])
USER_ROLES = {
    "student": "student",
    "Teacher": "teacher",
    "administrator": "administrator",
    "districtAdministrator": "administrator",
    "principal": "administrator",
    "guardian": None,
    "aide": None,
}
ENROLLMENT_ROLES = {"student": "student", "teacher": "teacher", "Administrator": "administrator"}
ENROLLMENT_ROLES |= {"proctor": None}


def expected_status(value: str) -> str:
    return ACTIVE if value.strip().lower() in ("", "active") else DELETED


def padded(grades: list[str]) -> str:
    return ",".join(g.zfill(2) if len(g) == 1 and g.isdigit() else g for g in grades)


class Roster:
    """Rows to write, and the records the reader must make of them (line numbers aside)."""

    def __init__(self) -> None:
        self.files: dict[str, Rows] = {}
        self.expected: dict[str, list[Any]] = {entity: [] for entity in ENTITIES}

    def __repr__(self) -> str:
        return f"Roster({self.files!r})"


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    roster = Roster()
    base = {"status": STATUS, "dateLastModified": MODIFIED}

    def row(**cells: Any) -> dict[str, str]:
        drawn = {k: draw(v) for k, v in base.items()}
        return {"sourcedId": cells.pop("sourcedId")} | drawn | cells

    org_ids = draw(st.lists(ID, min_size=1, max_size=4, unique_by=str.strip))
    schools: set[str] = set()
    roster.files["orgs.csv"] = []
    for org_id in org_ids:
        org_type = draw(st.sampled_from(["school", "School", "district", "department"]))
        org = row(sourcedId=org_id, name=draw(NAME), type=org_type, identifier=draw(TEXT))
        roster.files["orgs.csv"].append(org)
        if org_type.lower() == "school":
            schools.add(org_id.strip())
            roster.expected["schools"].append(
                SchoolRecord(
                    org_id.strip(),
                    expected_status(org["status"]),
                    org["name"].strip(),
                    org["identifier"].strip(),
                    "",
                    "",
                    org,
                )
            )

    course_ids = draw(st.lists(ID, max_size=3, unique_by=str.strip))
    courses = {c.strip(): (draw(TEXT), draw(TEXT)) for c in course_ids}
    roster.files["courses.csv"] = [
        {"sourcedId": c, "title": courses[c.strip()][0], "courseCode": courses[c.strip()][1]}
        for c in course_ids
    ]
    session_ids = draw(st.lists(ID, max_size=3, unique_by=str.strip))
    sessions = {s.strip(): (draw(TEXT), draw(st.dates()), draw(st.dates())) for s in session_ids}
    roster.files["academicSessions.csv"] = [
        {
            "sourcedId": s,
            "title": sessions[s.strip()][0],
            "startDate": sessions[s.strip()][1].isoformat(),
            "endDate": sessions[s.strip()][2].isoformat(),
        }
        for s in session_ids
    ]

    roster.files["classes.csv"] = []
    for class_id in draw(st.lists(ID, max_size=4, unique_by=str.strip)):
        course_id = draw(st.sampled_from(["", *course_ids]))
        terms = draw(st.lists(st.sampled_from(session_ids), unique=True)) if session_ids else []
        subjects = draw(st.lists(ID, max_size=3))
        periods = draw(st.lists(ID, max_size=2))
        grades = draw(GRADES)
        klass = row(
            sourcedId=class_id,
            title=draw(NAME),
            grades=",".join(grades),
            courseSourcedId=course_id,
            classCode=draw(TEXT),
            classType=draw(st.sampled_from(["homeroom", "Scheduled", ""])),
            location=draw(TEXT),
            schoolSourcedId=draw(ID),
            termSourcedIds=draw(SEPARATOR).join(terms),
            subjects=draw(SEPARATOR).join(subjects),
            periods=",".join(periods),
        )
        roster.files["classes.csv"].append(klass)
        course = courses.get(course_id.strip(), ("", ""))
        term_rows = [sessions[t.strip()] for t in terms]
        roster.expected["classes"].append(
            ClassRecord(
                external_id=class_id.strip(),
                status=expected_status(klass["status"]),
                title=klass["title"].strip(),
                school_external_id=klass["schoolSourcedId"].strip(),
                class_code=klass["classCode"].strip(),
                class_type=klass["classType"].lower(),
                location=klass["location"].strip(),
                course_title=course[0].strip(),
                course_code=course[1].strip(),
                term_name=", ".join(t[0].strip() for t in term_rows),
                term_start=min((t[1] for t in term_rows), default=None),
                term_end=max((t[2] for t in term_rows), default=None),
                subjects=",".join(s.strip() for s in subjects),
                grades=padded(grades),
                periods=",".join(p.strip() for p in periods),
                raw=klass,
            )
        )

    roster.files["users.csv"] = []
    for user_id in draw(st.lists(ID, min_size=1, max_size=4, unique_by=str.strip)):
        role = draw(st.sampled_from(sorted(USER_ROLES)))
        orgs = draw(st.lists(st.sampled_from(org_ids), min_size=1, unique=True))
        enabled, expected_enabled = draw(BOOLEAN)
        grades = draw(GRADES)
        user = row(
            sourcedId=user_id,
            enabledUser=enabled,
            orgSourcedIds=draw(SEPARATOR).join(orgs),
            role=role,
            username=draw(TEXT),
            userIds=draw(TEXT),
            givenName=draw(NAME),
            familyName=draw(NAME),
            middleName=draw(TEXT),
            identifier=draw(TEXT),
            email=draw(TEXT),
            sms=draw(TEXT),
            phone=draw(TEXT),
            agentSourcedIds=draw(TEXT),
            grades=",".join(grades),
            password=draw(TEXT),
        )
        roster.files["users.csv"].append(user)
        if USER_ROLES[role] is None:
            continue
        roster.expected["users"].append(
            UserRecord(
                external_id=user_id.strip(),
                status=expected_status(user["status"]),
                role=USER_ROLES[role],
                given_name=user["givenName"].strip(),
                middle_name=user["middleName"].strip(),
                family_name=user["familyName"].strip(),
                email=user["email"].strip(),
                username=user["username"].strip(),
                student_number=user["identifier"].strip(),
                grades=padded(grades),
                enabled=True if expected_enabled is None else expected_enabled,
                school_external_ids=tuple(o.strip() for o in orgs if o.strip() in schools),
                raw=user | {"password": "********" if user["password"] else ""},
            )
        )

    roster.files["enrollments.csv"] = []
    for enrollment_id in draw(st.lists(ID, max_size=4, unique_by=str.strip)):
        role = draw(st.sampled_from(sorted(ENROLLMENT_ROLES)))
        primary, expected_primary = draw(BOOLEAN)
        begin = draw(st.one_of(st.none(), st.dates()))
        end = draw(st.one_of(st.none(), st.dates()))
        enrollment = row(
            sourcedId=enrollment_id,
            classSourcedId=draw(ID),
            schoolSourcedId=draw(TEXT),
            userSourcedId=draw(ID),
            role=role,
            primary=primary,
            beginDate=begin.isoformat() if begin else "",
            endDate=end.isoformat() if end else "",
        )
        roster.files["enrollments.csv"].append(enrollment)
        if ENROLLMENT_ROLES[role] is None:
            continue
        roster.expected["enrollments"].append(
            EnrollmentRecord(
                external_id=enrollment_id.strip(),
                status=expected_status(enrollment["status"]),
                class_external_id=enrollment["classSourcedId"].strip(),
                school_external_id=enrollment["schoolSourcedId"].strip(),
                user_external_id=enrollment["userSourcedId"].strip(),
                role=ENROLLMENT_ROLES[role],
                primary=bool(expected_primary),
                begin_date=begin,
                end_date=end,
                raw=enrollment,
            )
        )
    return roster


# The header of a file with no rows (a header-only file is a valid, empty file).
HEADERS = {
    "courses.csv": ["sourcedId", "title", "courseCode"],
    "academicSessions.csv": ["sourcedId", "title", "startDate", "endDate"],
    "classes.csv": ["sourcedId", "title", "schoolSourcedId"],
    "enrollments.csv": ["sourcedId", "classSourcedId", "userSourcedId", "role"],
}


def csv_bytes(name: str, rows: Rows, *, newline: str, bom: bool) -> bytes:
    out = io.StringIO()
    # csv.writer quotes only the line-break characters of its own lineterminator: with "\n" a
    # bare "\r" in a field would go out unquoted (a broken file), so LF files quote every field.
    quoting = csv.QUOTE_MINIMAL if newline == "\r\n" else csv.QUOTE_ALL
    writer = csv.writer(out, lineterminator=newline, quoting=quoting)
    writer.writerow(rows[0].keys() if rows else HEADERS[name])
    writer.writerows([r.values() for r in rows])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


@contextmanager
def bundle_folder(files: dict[str, bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        yield folder


def read_all(path: Path) -> dict[str, list[Any]]:
    with Bundle(path) as bundle:
        extraction = CsvExtraction(bundle, mode="full")
        return {entity: list(extraction.records(entity)) for entity in ENTITIES}


@FUZZ
@given(rosters(), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_it_reads_back_what_a_csv_writer_wrote(roster: Roster, newline: str, bom: bool) -> None:
    files = {
        name: csv_bytes(name, rows, newline=newline, bom=bom) for name, rows in roster.files.items()
    }
    with bundle_folder(files) as folder:
        got = read_all(folder)

    for entity in ENTITIES:
        assert not [r for r in got[entity] if isinstance(r, Reject)], got[entity]
        assert [r._replace(line=0) for r in got[entity]] == roster.expected[entity]
        assert all(r.line >= 2 for r in got[entity])


# -- garbage in ------------------------------------------------------------------------------

USERS_HEADER = (
    b"sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
    b"givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password"
)
USERS_12_HEADER = b"sourcedId,status,dateLastModified,enabledUser,username,givenName,familyName"
CHUNK = st.one_of(
    st.sampled_from(
        [b",", b'"', b"\n", b"\r", b"\r\n", b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xa9"]
        + [b"stu-1", b"student", b"role", b"sch-1", b"true", b" ", b"tobedeleted", b"2025-13-01"]
    ),
    st.binary(max_size=4),
)
CSVISH = st.builds(
    lambda head, chunks: head + b"".join(chunks),
    st.sampled_from([b"", USERS_HEADER + b"\n", USERS_12_HEADER + b"\r\n", b"\xef\xbb\xbf"]),
    st.lists(CHUNK, max_size=80),
)
GARBAGE = st.one_of(st.binary(max_size=400), CSVISH)

VALID = {
    "manifest.csv": b"propertyName,value\nmanifest.version,1.0\noneroster.version,1.1\n"
    b"file.orgs,bulk\nfile.classes,bulk\nfile.users,bulk\nfile.enrollments,bulk\n"
    b"file.courses,bulk\nfile.academicSessions,bulk\n",
    "orgs.csv": b"sourcedId,status,dateLastModified,name,type\nd-1,,,North,district\n"
    b"sch-1,,,Lakeview,school\n",
    "courses.csv": b"sourcedId,title,courseCode\ncrs-1,Algebra,ALG\n",
    "academicSessions.csv": b"sourcedId,title,startDate,endDate\nt-1,Fall,2025-08-25,2025-12-19\n",
    "classes.csv": b"sourcedId,title,courseSourcedId,schoolSourcedId,termSourcedIds\n"
    b"cls-1,Algebra P1,crs-1,sch-1,t-1\n",
    "users.csv": USERS_HEADER + b"\nstu-1,,,true,sch-1,student,ana,,Ana,Ruiz,,,,,,,2,secret\n",
    "enrollments.csv": b"sourcedId,classSourcedId,schoolSourcedId,userSourcedId,role\n"
    b"enr-1,cls-1,sch-1,stu-1,student\n",
}
ROLES_12 = b"sourcedId,userSourcedId,roleType,role,orgSourcedId\nr-1,stu-1,primary,student,sch-1\n"


def zipped(files: dict[str, bytes], *, folder: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(folder + name, data)
    return out.getvalue()


VALID_ZIP = zipped(VALID)


def assert_only_records_or_connector_error(path: Path) -> None:
    try:
        got = read_all(path)
    except ConnectorError as exc:
        assert str(exc)  # a message an admin can read, never a bare error
        return
    for records in got.values():
        assert all(
            isinstance(r, SchoolRecord | ClassRecord | UserRecord | EnrollmentRecord | Reject)
            for r in records
        )


@FUZZ
@given(GARBAGE, st.sampled_from(["users.csv", "manifest.csv", "orgs.csv"]), st.booleans())
def test_it_survives_arbitrary_bytes_in_a_file(data: bytes, name: str, roles_12: bool) -> None:
    files = VALID | {name: data} | ({"roles.csv": ROLES_12} if roles_12 else {})
    with bundle_folder(files) as folder:
        assert_only_records_or_connector_error(folder)


@st.composite
def damaged_zips(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID_ZIP)
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def zips_of_garbage(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(VALID)))
    folder = draw(st.sampled_from(["", "export/", "a/b/"]))
    return zipped(VALID | {name: draw(GARBAGE)}, folder=folder)


@FUZZ
@given(st.one_of(st.binary(max_size=400), damaged_zips(), zips_of_garbage()))
def test_it_survives_arbitrary_bytes_as_a_zip(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.zip"
        path.write_bytes(data)
        assert_only_records_or_connector_error(path)


def test_it_reads_the_valid_fuzz_seed_bundle() -> None:
    """The seed the damaged zips start from is itself a good bundle (so damage is what fails)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.zip"
        path.write_bytes(VALID_ZIP)
        got = read_all(path)

    assert [(type(r), r.external_id) for e in ENTITIES for r in got[e]] == [
        (SchoolRecord, "sch-1"),
        (ClassRecord, "cls-1"),
        (UserRecord, "stu-1"),
        (EnrollmentRecord, "enr-1"),
    ]
    assert got["users"][0].raw["password"] == "********"
    assert got["classes"][0].term_start == dt.date(2025, 8, 25)
