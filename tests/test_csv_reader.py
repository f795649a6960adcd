"""The OneRoster CSV reader: bundles on disk in, normalized records and rejects out (no DB)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import ConnectorError, EntityMode
from connectors.oneroster_csv.bundle import Bundle
from connectors.oneroster_csv.connector import OneRosterCsvConnector
from connectors.oneroster_csv.reader import CsvExtraction
from staging.records import (
    ACTIVE,
    DELETED,
    ENTITIES,
    ClassRecord,
    EnrollmentRecord,
    Record,
    Reject,
    SchoolRecord,
    UserRecord,
)

Rows = list[dict[str, str]]
Content = Rows | bytes

BULK = {
    "orgs": "bulk",
    "academicSessions": "bulk",
    "courses": "bulk",
    "classes": "bulk",
    "users": "bulk",
    "enrollments": "bulk",
}


def org(sourced_id: str, org_type: str = "school", **cells: str) -> dict[str, str]:
    row = {
        "sourcedId": sourced_id,
        "status": "",
        "dateLastModified": "",
        "name": f"{sourced_id} name",
        "type": org_type,
        "identifier": "",
        "parentSourcedId": "",
    }
    return row | cells


def session(sourced_id: str, title: str, start: str, end: str) -> dict[str, str]:
    return {
        "sourcedId": sourced_id,
        "status": "",
        "dateLastModified": "",
        "title": title,
        "type": "term",
        "startDate": start,
        "endDate": end,
        "parentSourcedId": "",
        "schoolYear": "2025",
    }


def course(sourced_id: str, title: str, code: str) -> dict[str, str]:
    return {
        "sourcedId": sourced_id,
        "status": "",
        "dateLastModified": "",
        "schoolYearSourcedId": "",
        "title": title,
        "courseCode": code,
        "grades": "",
        "orgSourcedId": "sch-1",
        "subjects": "",
        "subjectCodes": "",
    }


def klass(sourced_id: str, **cells: str) -> dict[str, str]:
    row = {
        "sourcedId": sourced_id,
        "status": "",
        "dateLastModified": "",
        "title": f"{sourced_id} title",
        "grades": "",
        "courseSourcedId": "",
        "classCode": "",
        "classType": "scheduled",
        "location": "",
        "schoolSourcedId": "sch-1",
        "termSourcedIds": "",
        "subjects": "",
        "subjectCodes": "",
        "periods": "",
    }
    return row | cells


def user(sourced_id: str, role: str = "student", **cells: str) -> dict[str, str]:
    row = {
        "sourcedId": sourced_id,
        "status": "",
        "dateLastModified": "",
        "enabledUser": "true",
        "orgSourcedIds": "sch-1",
        "role": role,
        "username": f"{sourced_id}.login",
        "userIds": "",
        "givenName": "Ada",
        "familyName": "Lovelace",
        "middleName": "",
        "identifier": "",
        "email": "",
        "sms": "",
        "phone": "",
        "agentSourcedIds": "",
        "grades": "",
        "password": "",
    }
    return row | cells


def enrollment(sourced_id: str, role: str = "student", **cells: str) -> dict[str, str]:
    row = {
        "sourcedId": sourced_id,
        "status": "",
        "dateLastModified": "",
        "classSourcedId": "cls-1",
        "schoolSourcedId": "sch-1",
        "userSourcedId": "stu-1",
        "role": role,
        "primary": "",
        "beginDate": "",
        "endDate": "",
    }
    return row | cells


def base_files() -> dict[str, Content]:
    """A small but complete 1.1 bundle: a district, two schools, a class, a student, a teacher."""
    return {
        "orgs.csv": [
            org("dst-1", "district", name="Lakeview USD"),
            org("sch-1", name="Lakeview Elementary", identifier="101", parentSourcedId="dst-1"),
            org("sch-2", name="Lakeview Middle", identifier="102", parentSourcedId="dst-1"),
        ],
        "academicSessions.csv": [
            session("trm-1", "Fall 2025", "2025-08-25", "2025-12-19"),
            session("trm-2", "Spring 2026", "2026-01-05", "2026-06-26"),
        ],
        "courses.csv": [course("crs-1", "Algebra I", "ALG1")],
        "classes.csv": [
            klass(
                "cls-1",
                title="Algebra I - P1",
                grades="9",
                courseSourcedId="crs-1",
                classCode="ALG1-01",
                location="Room 12",
                termSourcedIds="trm-1,trm-2",
                subjects="Math",
                periods="1",
            )
        ],
        "users.csv": [
            user("stu-1", givenName="Ana", familyName="Ruiz", identifier="S001", grades="09"),
            user("tch-1", "teacher", givenName="Tom", familyName="Berg", email="tb@x.org"),
        ],
        "enrollments.csv": [
            enrollment("enr-1", primary="false", beginDate="2025-08-25", endDate="2026-06-26"),
            enrollment("enr-2", "teacher", userSourcedId="tch-1", primary="TRUE"),
        ],
    }


def csv_bytes(
    rows: Rows, *, newline: str = "\n", bom: bool = False, final_newline: bool = True
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(rows[0].keys())
    writer.writerows([row.values() for row in rows])
    text = out.getvalue()
    if not final_newline:
        text = text.removesuffix(newline)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def manifest_bytes(modes: dict[str, str]) -> bytes:
    rows = [
        {"propertyName": "manifest.version", "value": "1.0"},
        {"propertyName": "oneroster.version", "value": "1.1"},
    ]
    rows += [{"propertyName": f"file.{name}", "value": mode} for name, mode in modes.items()]
    return csv_bytes(rows)


def make_bundle(
    tmp_path: Path,
    files: dict[str, Content],
    *,
    manifest: dict[str, str] | None = BULK,
    as_zip: bool = False,
    top_folder: str = "",
) -> Path:
    """Writes `files` (rows, or raw bytes) as a folder bundle, or as a .zip of one."""
    contents = {n: c if isinstance(c, bytes) else csv_bytes(c) for n, c in files.items()}
    if manifest is not None:
        contents["manifest.csv"] = manifest_bytes(manifest)
    if as_zip:
        path = tmp_path / "bundle.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in contents.items():
                archive.writestr(top_folder + name, data)
        return path
    folder = tmp_path / "bundle"
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return folder


def extract(path: Path, *, mode: str = "full") -> dict[str, list[Record]]:
    with Bundle(path) as bundle:
        extraction = CsvExtraction(bundle, mode=mode)
        return {entity: list(extraction.records(entity)) for entity in ENTITIES}


def modes(path: Path, *, mode: str = "full") -> dict[str, EntityMode]:
    with Bundle(path) as bundle:
        return CsvExtraction(bundle, mode=mode).modes


def read_users(tmp_path: Path, users: Content, **files: Content) -> list[Record]:
    bundle = base_files() | {"users.csv": users} | {f"{n}.csv": c for n, c in files.items()}
    return extract(make_bundle(tmp_path, bundle))["users"]


def only(records: list[Record]) -> Record:
    assert len(records) == 1, records
    return records[0]


def rejects(records: list[Record]) -> Iterator[Reject]:
    return (r for r in records if isinstance(r, Reject))


# -- the whole bundle -----------------------------------------------------------------------


def test_it_reads_a_folder_bundle_into_records(tmp_path: Path) -> None:
    files = base_files()
    got = extract(make_bundle(tmp_path, files))

    orgs, classes, users, enrollments = (
        files["orgs.csv"],
        files["classes.csv"],
        files["users.csv"],
        files["enrollments.csv"],
    )
    assert got["schools"] == [
        SchoolRecord("sch-1", ACTIVE, "Lakeview Elementary", "101", "", "", orgs[1], line=3),
        SchoolRecord("sch-2", ACTIVE, "Lakeview Middle", "102", "", "", orgs[2], line=4),
    ]
    assert got["classes"] == [
        ClassRecord(
            external_id="cls-1",
            status=ACTIVE,
            title="Algebra I - P1",
            school_external_id="sch-1",
            class_code="ALG1-01",
            class_type="scheduled",
            location="Room 12",
            course_title="Algebra I",
            course_code="ALG1",
            term_name="Fall 2025, Spring 2026",
            term_start=dt.date(2025, 8, 25),
            term_end=dt.date(2026, 6, 26),
            subjects="Math",
            grades="09",
            periods="1",
            raw=classes[0],
            line=2,
        )
    ]
    assert got["users"] == [
        UserRecord(
            external_id="stu-1",
            status=ACTIVE,
            role="student",
            given_name="Ana",
            middle_name="",
            family_name="Ruiz",
            email="",
            username="stu-1.login",
            student_number="S001",
            grades="09",
            enabled=True,
            school_external_ids=("sch-1",),
            raw=users[0],
            line=2,
        ),
        UserRecord(
            external_id="tch-1",
            status=ACTIVE,
            role="teacher",
            given_name="Tom",
            middle_name="",
            family_name="Berg",
            email="tb@x.org",
            username="tch-1.login",
            student_number="",
            grades="",
            enabled=True,
            school_external_ids=("sch-1",),
            raw=users[1],
            line=3,
        ),
    ]
    assert got["enrollments"] == [
        EnrollmentRecord(
            "enr-1",
            ACTIVE,
            "cls-1",
            "sch-1",
            "stu-1",
            "student",
            False,
            dt.date(2025, 8, 25),
            dt.date(2026, 6, 26),
            enrollments[0],
            line=2,
        ),
        EnrollmentRecord(
            "enr-2",
            ACTIVE,
            "cls-1",
            "sch-1",
            "tch-1",
            "teacher",
            True,
            None,
            None,
            enrollments[1],
            line=3,
        ),  # fmt: skip
    ]


@pytest.mark.parametrize("top_folder", ["", "lakeview-export/"])
def test_it_reads_a_zip_bundle_the_same_as_a_folder(tmp_path: Path, top_folder: str) -> None:
    folder = make_bundle(tmp_path, base_files())
    archive = make_bundle(tmp_path, base_files(), as_zip=True, top_folder=top_folder)

    from_zip = extract(archive)

    assert archive.suffix == ".zip"
    assert from_zip == extract(folder)
    assert [r.external_id for r in from_zip["users"]] == ["stu-1", "tch-1"]
    assert modes(archive) == dict.fromkeys(ENTITIES, EntityMode.FULL)


def test_it_ignores_the_resource_forks_a_mac_adds_to_a_zip(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path, base_files())
    archive = make_bundle(tmp_path, base_files(), as_zip=True, top_folder="export/")
    with zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr("__MACOSX/export/._users.csv", b"\x00\x05\x16\x07junk")
        bundle.writestr("export/._orgs.csv", b"\x00\x05\x16\x07junk")

    assert extract(archive) == extract(folder)


def test_it_accepts_a_malformed_date_last_modified_it_never_uses(tmp_path: Path) -> None:
    files = base_files()
    files["users.csv"][0]["dateLastModified"] = "1/05/2023"  # type: ignore[index]

    users = extract(make_bundle(tmp_path, files))["users"]

    assert [type(u).__name__ for u in users] == ["UserRecord", "UserRecord"]


def test_it_rejects_a_zip_path_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "roster.zip"
    path.write_bytes(b"sourcedId,name\nsch-1,Lakeview\n")

    with pytest.raises(ConnectorError) as caught:
        Bundle(path)

    assert str(caught.value) == (
        "roster.zip is not a .zip file: upload the OneRoster bundle as a zip of CSV files"
    )
    assert caught.value.permanent


def test_it_describes_a_folder_bundle_for_test_connection(tmp_path: Path) -> None:
    path = make_bundle(tmp_path, base_files())
    connector = OneRosterCsvConnector({"bundlePath": str(path)}, options={})

    description = connector.test_connection()

    assert description.startswith("manifest.csv + ")
    assert description == "manifest.csv + 6 files, 0.0 MB"


# -- manifest modes -------------------------------------------------------------------------


def test_it_reads_bulk_files_as_full(tmp_path: Path) -> None:
    assert modes(make_bundle(tmp_path, base_files())) == dict.fromkeys(ENTITIES, EntityMode.FULL)


def test_it_reads_delta_files_as_delta(tmp_path: Path) -> None:
    manifest = BULK | {"users": "delta", "enrollments": "delta"}

    got = modes(make_bundle(tmp_path, base_files(), manifest=manifest))

    assert got == {
        "schools": EntityMode.FULL,
        "classes": EntityMode.FULL,
        "users": EntityMode.DELTA,
        "enrollments": EntityMode.DELTA,
    }


def test_it_ignores_a_file_the_manifest_calls_absent(tmp_path: Path) -> None:
    path = make_bundle(tmp_path, base_files(), manifest=BULK | {"enrollments": "absent"})

    assert modes(path)["enrollments"] is EntityMode.ABSENT
    assert extract(path)["enrollments"] == []


def test_it_accepts_an_absent_file_that_is_not_there(tmp_path: Path) -> None:
    files = base_files()
    del files["enrollments.csv"]
    path = make_bundle(tmp_path, files, manifest=BULK | {"enrollments": "absent"})

    assert modes(path)["enrollments"] is EntityMode.ABSENT
    assert extract(path)["enrollments"] == []


def test_it_treats_a_file_missing_from_the_manifest_as_absent(tmp_path: Path) -> None:
    manifest = {k: v for k, v in BULK.items() if k != "classes"}

    got = modes(make_bundle(tmp_path, base_files(), manifest=manifest))

    assert got["classes"] is EntityMode.ABSENT
    assert got["users"] is EntityMode.FULL


def test_it_reads_a_bundle_without_manifest_as_one_roster_1_0_bulk(tmp_path: Path) -> None:
    path = make_bundle(tmp_path, base_files(), manifest=None)

    assert modes(path) == dict.fromkeys(ENTITIES, EntityMode.FULL)
    assert [r.external_id for r in extract(path)["users"]] == ["stu-1", "tch-1"]


@pytest.mark.parametrize("name", ["orgs", "users", "classes", "enrollments"])
def test_it_requires_the_1_0_files_when_there_is_no_manifest(tmp_path: Path, name: str) -> None:
    files = base_files()
    del files[f"{name}.csv"]

    with pytest.raises(ConnectorError) as caught:
        modes(make_bundle(tmp_path, files, manifest=None))

    assert str(caught.value) == (
        f"The bundle has no {name}.csv (and no manifest.csv saying it is absent)"
    )
    assert caught.value.permanent


def test_it_fails_when_a_file_declared_bulk_is_missing(tmp_path: Path) -> None:
    files = base_files()
    del files["users.csv"]

    with pytest.raises(ConnectorError) as caught:
        modes(make_bundle(tmp_path, files))

    assert str(caught.value) == (
        "manifest.csv declares users.csv as bulk, but the bundle has no users.csv"
    )


def test_it_turns_bulk_files_into_delta_on_a_delta_run(tmp_path: Path) -> None:
    path = make_bundle(tmp_path, base_files(), manifest=BULK | {"classes": "absent"})

    assert modes(path, mode="delta") == {
        "schools": EntityMode.DELTA,
        "classes": EntityMode.ABSENT,
        "users": EntityMode.DELTA,
        "enrollments": EntityMode.DELTA,
    }


# -- file names, headers, encodings ---------------------------------------------------------


def test_it_matches_file_names_case_insensitively(tmp_path: Path) -> None:
    files = base_files()
    files["Users.CSV"] = files.pop("users.csv")
    files["ORGS.csv"] = files.pop("orgs.csv")
    path = make_bundle(tmp_path, files)

    got = extract(path)

    assert modes(path)["users"] is EntityMode.FULL
    assert [r.external_id for r in got["users"]] == ["stu-1", "tch-1"]
    assert [r.external_id for r in got["schools"]] == ["sch-1", "sch-2"]


def test_it_finds_columns_by_name_in_any_order_and_case(tmp_path: Path) -> None:
    row = {
        "FAMILYNAME": "Ruiz",
        "role": "STUDENT",
        "givenname": "Ana",
        "OrgSourcedIds": "sch-1",
        "SourcedId": "stu-1",
        "Email": "ana@x.org",
    }

    got = only(read_users(tmp_path, [row]))

    assert got == UserRecord(
        external_id="stu-1",
        status=ACTIVE,
        role="student",
        given_name="Ana",
        middle_name="",
        family_name="Ruiz",
        email="ana@x.org",
        username="",
        student_number="",
        grades="",
        enabled=True,
        school_external_ids=("sch-1",),
        raw={
            "familyName": "Ruiz",
            "role": "STUDENT",
            "givenName": "Ana",
            "orgSourcedIds": "sch-1",
            "sourcedId": "stu-1",
            "email": "ana@x.org",
        },
        line=2,
    )


def test_it_ignores_extension_columns_but_keeps_them_in_raw(tmp_path: Path) -> None:
    row = {"metadata.house": "Gryffindor"} | user("stu-1") | {"ext_lunch": "free"}

    got = only(read_users(tmp_path, [row]))

    assert isinstance(got, UserRecord)
    assert got.raw["metadata.house"] == "Gryffindor"
    assert got.raw["ext_lunch"] == "free"
    assert got.raw == row
    assert (got.external_id, got.given_name, got.school_external_ids) == (
        "stu-1",
        "Ada",
        ("sch-1",),
    )


def test_it_reads_utf8_with_a_bom(tmp_path: Path) -> None:
    data = csv_bytes([user("stu-1", givenName="Zoë")], bom=True)

    got = only(read_users(tmp_path, data))

    assert isinstance(got, UserRecord)
    assert (got.external_id, got.given_name) == ("stu-1", "Zoë")
    assert "sourcedId" in got.raw


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_it_reads_crlf_and_lf_with_or_without_a_final_newline(
    tmp_path: Path, newline: str, final_newline: bool
) -> None:
    rows = [user("stu-1"), user("stu-2", familyName="Hopper")]
    data = csv_bytes(rows, newline=newline, final_newline=final_newline)

    got = read_users(tmp_path, data)

    assert got == [
        UserRecord(
            "stu-1", ACTIVE, "student", "Ada", "", "Lovelace", "", "stu-1.login", "", "", True,
            ("sch-1",), rows[0], line=2,
        ),
        UserRecord(
            "stu-2", ACTIVE, "student", "Ada", "", "Hopper", "", "stu-2.login", "", "", True,
            ("sch-1",), rows[1], line=3,
        ),
    ]  # fmt: skip


def test_it_keeps_newlines_and_commas_inside_quoted_fields(tmp_path: Path) -> None:
    row = user("stu-1", givenName='Ana "Annie", Jr.', familyName="Ruiz\r\nGarcía")

    got = only(read_users(tmp_path, [row]))

    assert isinstance(got, UserRecord)
    assert (got.given_name, got.family_name) == ('Ana "Annie", Jr.', "Ruiz\r\nGarcía")


def test_it_fails_on_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    data = "sourcedId,givenName,familyName,role,orgSourcedIds\nstu-1,Zoë,Brontë,student,sch-1\n"

    with pytest.raises(ConnectorError) as caught:
        read_users(tmp_path, data.encode("latin-1"))

    assert "users.csv is not UTF-8" in str(caught.value)
    assert caught.value.permanent


def test_it_fails_on_an_unterminated_quote(tmp_path: Path) -> None:
    data = csv_bytes([user("stu-1")]) + b'stu-2,,,true,sch-1,student,x,,"Ada,Lovelace\n'

    with pytest.raises(ConnectorError) as caught:
        read_users(tmp_path, data)

    message = str(caught.value)
    assert message.startswith("users.csv cannot be read as CSV at line ")
    assert "unterminated quote" in message


def test_it_fails_on_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError) as caught:
        read_users(tmp_path, b"")

    assert str(caught.value) == "users.csv is empty: it needs at least a header row"


def test_it_fails_when_the_header_lacks_required_columns(tmp_path: Path) -> None:
    rows = [{k: v for k, v in user("stu-1").items() if k not in ("givenName", "role")}]

    with pytest.raises(ConnectorError) as caught:
        read_users(tmp_path, rows)

    assert str(caught.value).startswith(
        "users.csv is missing the required columns givenName, role (its header is: sourcedId, "
    )


def test_it_fails_when_the_header_lacks_one_required_column(tmp_path: Path) -> None:
    rows = [{k: v for k, v in klass("cls-1").items() if k != "schoolSourcedId"}]
    path = make_bundle(tmp_path, base_files() | {"classes.csv": rows})

    with pytest.raises(ConnectorError) as caught:
        extract(path)

    assert str(caught.value).startswith(
        "classes.csv is missing the required column schoolSourcedId (its header is: "
    )


# -- row values -----------------------------------------------------------------------------


def test_it_splits_and_trims_multi_valued_fields(tmp_path: Path) -> None:
    files = base_files()
    files["users.csv"] = [user("stu-1", orgSourcedIds=" sch-1, sch-2 ,")]
    files["classes.csv"] = [
        klass("cls-1", termSourcedIds="trm-1 , trm-2", subjects="Math, Science", periods="1, 2")
    ]
    got = extract(make_bundle(tmp_path, files))

    student, section = only(got["users"]), only(got["classes"])
    assert isinstance(student, UserRecord) and isinstance(section, ClassRecord)
    assert student.school_external_ids == ("sch-1", "sch-2")
    assert (section.subjects, section.periods) == ("Math,Science", "1,2")
    assert section.term_name == "Fall 2025, Spring 2026"


def test_it_pads_single_digit_grades(tmp_path: Path) -> None:
    files = base_files()
    files["users.csv"] = [user("stu-1", grades="2")]
    files["classes.csv"] = [klass("cls-1", grades="KG, 2,10")]
    got = extract(make_bundle(tmp_path, files))

    assert [r.grades for r in got["users"]] == ["02"]
    assert [r.grades for r in got["classes"]] == ["KG,02,10"]


def test_it_reads_iso_datetimes_and_plain_dates(tmp_path: Path) -> None:
    files = base_files()
    files["enrollments.csv"] = [
        enrollment(
            "enr-1",
            dateLastModified="2025-05-01T18:25:43.511Z",
            beginDate="2025-08-25T00:00:00.000Z",
            endDate="2026-06-26",
        )
    ]
    files["academicSessions.csv"] = [
        session("trm-1", "Fall 2025", "2025-08-25T08:00:00Z", "2025-12-19"),
        session("trm-2", "Spring 2026", "2026-01-05", "2026-06-26T17:00:00.000Z"),
    ]
    got = extract(make_bundle(tmp_path, files))

    record = only(got["enrollments"])
    section = only(got["classes"])
    assert isinstance(record, EnrollmentRecord) and isinstance(section, ClassRecord)
    assert (record.begin_date, record.end_date) == (dt.date(2025, 8, 25), dt.date(2026, 6, 26))
    assert (section.term_start, section.term_end) == (dt.date(2025, 8, 25), dt.date(2026, 6, 26))


def test_it_rejects_a_date_that_is_not_a_date(tmp_path: Path) -> None:
    files = base_files() | {"enrollments.csv": [enrollment("enr-1", beginDate="1/05/2023")]}

    got = only(extract(make_bundle(tmp_path, files))["enrollments"])

    assert got == Reject(
        "enrollment",
        "enr-1",
        "enrollments.csv line 2: beginDate '1/05/2023' is not a date (expected YYYY-MM-DD)",
        files["enrollments.csv"][0],
        line=2,
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [("", ACTIVE), ("active", ACTIVE), ("tobedeleted", DELETED), ("inactive", DELETED)],
)
def test_it_maps_status_to_active_or_deleted(tmp_path: Path, status: str, expected: str) -> None:
    files = base_files()
    files["orgs.csv"] = [org("sch-1", status=status)]
    files["users.csv"] = [user("stu-1", status=status, dateLastModified="2025-05-01")]
    files["classes.csv"] = [klass("cls-1", status=status.upper())]
    files["enrollments.csv"] = [enrollment("enr-1", status=status.title())]

    got = extract(make_bundle(tmp_path, files))

    assert [r.status for entity in ENTITIES for r in got[entity]] == [expected] * 4


def test_it_rejects_an_unknown_status(tmp_path: Path) -> None:
    row = user("stu-1", status="suspended")

    got = only(read_users(tmp_path, [row]))

    assert got == Reject(
        "user",
        "stu-1",
        "users.csv line 2: unknown status 'suspended' (expected active or tobedeleted)",
        row,
        line=2,
    )


def test_it_rejects_an_unknown_role_naming_it(tmp_path: Path) -> None:
    files = base_files()
    files["users.csv"] = [user("usr-1", "janitor"), user("stu-1")]
    files["enrollments.csv"] = [enrollment("enr-1", "observer")]

    got = extract(make_bundle(tmp_path, files))

    assert got["users"][0] == Reject(
        "user",
        "usr-1",
        "users.csv line 2: unknown role 'janitor' (expected student, teacher or administrator)",
        files["users.csv"][0],
        line=2,
    )
    assert [r.external_id for r in got["users"][1:]] == ["stu-1"]
    assert got["enrollments"] == [
        Reject(
            "enrollment",
            "enr-1",
            "enrollments.csv line 2: unknown role 'observer' "
            "(expected student, teacher or administrator)",
            files["enrollments.csv"][0],
            line=2,
        )
    ]


def test_it_skips_guardians_parents_and_aides(tmp_path: Path) -> None:
    files = base_files()
    files["users.csv"] = [
        user("par-1", "parent"),
        user("grd-1", "Guardian"),
        user("aid-1", "aide"),
        user("stu-1"),
    ]
    files["enrollments.csv"] = [enrollment("enr-1", "aide"), enrollment("enr-2")]

    got = extract(make_bundle(tmp_path, files))

    assert [(type(r), r.external_id, r.line) for r in got["users"]] == [(UserRecord, "stu-1", 5)]
    assert [(type(r), r.external_id) for r in got["enrollments"]] == [(EnrollmentRecord, "enr-2")]


def test_it_keeps_non_school_orgs_out_of_schools_and_users(tmp_path: Path) -> None:
    files = base_files()
    files["orgs.csv"] = [
        org("dst-1", "district"),
        org("dep-1", "Department"),
        org("sch-1"),
        org("sch-2", "School"),
    ]
    files["users.csv"] = [
        user("adm-1", "districtAdministrator", orgSourcedIds="dst-1"),
        user("tch-1", "teacher", orgSourcedIds="dst-1,sch-2,dep-1, sch-1"),
    ]

    got = extract(make_bundle(tmp_path, files))

    assert [(r.external_id, r.line) for r in got["schools"]] == [("sch-1", 4), ("sch-2", 5)]
    assert [(r.external_id, r.role, r.school_external_ids) for r in got["users"]] == [
        ("adm-1", "administrator", ()),
        ("tch-1", "teacher", ("sch-2", "sch-1")),
    ]


def test_it_reads_roles_from_roles_csv_in_the_1_2_layout(tmp_path: Path) -> None:
    users_12 = [
        {k: v for k, v in user(i).items() if k not in ("role", "orgSourcedIds")}
        for i in ("stu-1", "tch-1", "par-1", "nobody")
    ]
    roles_12 = [
        {
            "sourcedId": sourced_id,
            "status": "",
            "dateLastModified": "",
            "userSourcedId": user_id,
            "roleType": role_type,
            "role": role,
            "beginDate": "",
            "endDate": "",
            "orgSourcedId": org_id,
            "userProfileSourcedId": "",
        }
        for sourced_id, user_id, role_type, role, org_id in [
            ("rl-1", "stu-1", "primary", "student", "sch-1"),
            ("rl-2", "tch-1", "secondary", "aide", "sch-2"),
            ("rl-3", "tch-1", "primary", "teacher", "sch-1"),
            ("rl-4", "tch-1", "secondary", "teacher", "dst-1"),
            ("rl-5", "par-1", "primary", "parent", "sch-1"),
        ]
    ]

    got = read_users(tmp_path, users_12, roles=roles_12)

    assert [(type(r), r.external_id, r.line) for r in got] == [
        (UserRecord, "stu-1", 2),
        (UserRecord, "tch-1", 3),
        (Reject, "nobody", 5),
    ]
    student, teacher, reject = got
    assert isinstance(student, UserRecord) and isinstance(teacher, UserRecord)
    assert (student.role, student.school_external_ids) == ("student", ("sch-1",))
    assert (teacher.role, teacher.school_external_ids) == ("teacher", ("sch-2", "sch-1"))
    assert (teacher.given_name, teacher.family_name, teacher.raw) == (
        "Ada",
        "Lovelace",
        users_12[1],
    )
    assert reject.reason == "users.csv line 5: no role for this user in roles.csv"


def test_it_rejects_a_row_missing_a_required_field(tmp_path: Path) -> None:
    rows = [user("stu-1"), user("stu-2", givenName="  ")]

    got = read_users(tmp_path, rows)

    assert got[1] == Reject(
        "user", "stu-2", "users.csv line 3: missing required field givenName", rows[1], line=3
    )
    assert [type(r) for r in got] == [UserRecord, Reject]


def test_it_rejects_a_user_without_orgs(tmp_path: Path) -> None:
    row = user("stu-1", orgSourcedIds=" , ")

    got = only(read_users(tmp_path, [row]))

    assert got == Reject(
        "user", "stu-1", "users.csv line 2: missing required field orgSourcedIds", row, line=2
    )


def test_it_rejects_a_row_with_a_nul_byte(tmp_path: Path) -> None:
    rows = [user("stu-1", givenName="A\x00da"), user("stu-2")]

    got = read_users(tmp_path, rows)

    reject = got[0]
    assert isinstance(reject, Reject)
    assert (reject.entity, reject.external_id, reject.line) == ("user", "stu-1", 2)
    assert reject.reason == "users.csv line 2: the row contains a NUL byte"
    assert reject.raw["givenName"] == "Ada"
    assert [r.external_id for r in got[1:] if isinstance(r, UserRecord)] == ["stu-2"]


def test_it_rejects_a_ragged_row_with_extra_values(tmp_path: Path) -> None:
    data = csv_bytes([user("stu-1")]) + b"stu-2,,,true,sch-1,student,x,,Ada,Lovelace,,,,,,,,,oops\n"

    got = read_users(tmp_path, data)

    reject = got[1]
    assert isinstance(reject, Reject)
    assert (reject.external_id, reject.line) == ("stu-2", 3)
    assert reject.reason == "users.csv line 3: the row has 19 fields but the header has 18"
    assert isinstance(got[0], UserRecord)


def test_it_accepts_rows_with_extra_empty_or_missing_trailing_fields(tmp_path: Path) -> None:
    data = (
        csv_bytes([user("stu-1")])
        + b"stu-2,,,true,sch-1,student,x,,Ada,Lovelace,,,,,,,,,,\n"
        + b"stu-3,,,true,sch-1,student,y,,Ada,Lovelace\n"
    )

    got = read_users(tmp_path, data)

    assert [(type(r), r.external_id) for r in got] == [
        (UserRecord, "stu-1"),
        (UserRecord, "stu-2"),
        (UserRecord, "stu-3"),
    ]
    assert got[2].raw["password"] == ""


def test_it_rejects_a_class_whose_course_is_not_in_courses_csv(tmp_path: Path) -> None:
    row = klass("cls-2", courseSourcedId="crs-404")
    files = base_files() | {"classes.csv": [klass("cls-1", courseSourcedId="crs-1"), row]}

    got = extract(make_bundle(tmp_path, files))["classes"]

    assert got[1] == Reject(
        "class", "cls-2", "classes.csv line 3: course 'crs-404' is not in courses.csv", row, line=3
    )
    assert isinstance(got[0], ClassRecord) and got[0].course_title == "Algebra I"


def test_it_masks_the_password_in_raw(tmp_path: Path) -> None:
    rows = [
        user("stu-1", password="hunter2"),
        user("stu-2", password=""),
        user("stu-3", password="s3cret", familyName=""),
    ]

    got = read_users(tmp_path, rows)

    assert [r.raw["password"] for r in got] == ["********", "", "********"]
    assert [type(r) for r in got] == [UserRecord, UserRecord, Reject]
    assert got[0].raw == rows[0] | {"password": "********"}


def test_it_fails_on_a_damaged_zip_member(tmp_path: Path) -> None:
    path = make_bundle(tmp_path, base_files(), as_zip=True)
    data = path.read_bytes()
    at = data.index(b"Ruiz")  # stored, not deflated: the member's bytes are in the clear
    path.write_bytes(data[:at] + b"Ru1z" + data[at + 4 :])

    with pytest.raises(ConnectorError) as caught:
        extract(path)

    assert str(caught.value) == (
        "bundle.zip is damaged: users.csv cannot be extracted (Bad CRC-32 for file 'users.csv'); "
        "export the bundle again and upload the new zip"
    )
    assert caught.value.permanent


def test_it_fails_on_a_zip_member_whose_own_header_has_a_name_that_is_not_utf8(
    tmp_path: Path,
) -> None:
    path = make_bundle(tmp_path, base_files(), as_zip=True)
    data = bytearray(path.read_bytes())
    # The member's local header (not the central directory, which opens fine): flag its name
    # as UTF-8 (general purpose bit 11) and put a byte in it that UTF-8 cannot start with.
    header = bytes(data).index(b"users.csv") - 30
    assert data[header : header + 4] == b"PK\x03\x04"
    data[header + 7] |= 0x08
    data[header + 30] = 0xC8
    path.write_bytes(bytes(data))

    with pytest.raises(ConnectorError) as caught:
        extract(path)

    assert str(caught.value).startswith("bundle.zip is damaged: users.csv cannot be extracted (")
    assert caught.value.permanent


def test_it_fails_on_a_users_file_that_is_not_utf8_in_the_1_2_layout(tmp_path: Path) -> None:
    data = "sourcedId,givenName,familyName\nstu-1,Zoë,Brontë\n".encode("latin-1")
    roles = [{"sourcedId": "rl-1", "userSourcedId": "stu-1", "role": "student"}]

    with pytest.raises(ConnectorError) as caught:
        read_users(tmp_path, data, roles=roles)

    assert str(caught.value) == "users.csv is not UTF-8 text: export it again as UTF-8"
